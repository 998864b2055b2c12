"""Work-precision studies (``workprecision``), their output, plots and ``hybrideq bench stiff``.

Runs with today's explicit solvers on problems with exact solutions, so every error can be
checked against a number computed here; the stiff solvers and problems are exercised by
the CLI test whether or not this version has them.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.integrate import solve_ivp

import hybrideq as hq
from hybrideq import cli
from hybrideq._workprecision import (
    DEFAULT_ATOL_RATIO,
    Contender,
    RunResult,
    WorkPrecision,
    compute_reference,
    scipy_contender,
    workprecision,
)

F64 = torch.float64
A = np.array([[-1.0, 2.0], [-2.0, -1.0]])  # a decaying rotation: y(t) = exp(A t) y0
Y0 = np.array([1.0, 0.5])
T1 = 2.0


def rotation() -> hq.ODEProblem:
    return hq.library.linear_system(torch.tensor(A), torch.tensor(Y0), (0.0, T1))


def exact(t: float | np.ndarray) -> np.ndarray:
    ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
    out = np.stack([scipy.linalg.expm(A * s) @ Y0 for s in ts])
    return out[0] if np.ndim(t) == 0 else out


def rel_rms(y: np.ndarray, ref: np.ndarray, floor: float) -> float:
    d = (y - ref) / (np.abs(ref) + floor)
    return float(np.sqrt(np.mean(d * d)))


TOLS = [1e-3, 1e-5, 1e-7, 1e-9]


@pytest.fixture(scope="module")
def study() -> WorkPrecision:
    """Tsit5, Vern7 and scipy RK45 on the rotation, exact reference, 4 tolerances."""
    return workprecision(
        rotation(),
        [hq.Tsit5(), hq.Vern7(), "scipy:RK45"],
        TOLS,
        reference=exact(T1),
        repeats=3,
        title="rotation",
    )


# --------------------------------------------------------------------------- measurements


def test_error_decreases_as_tolerance_tightens(study: WorkPrecision) -> None:
    assert study.solvers == ["Tsit5", "Vern7", "scipy:RK45"]
    assert len(study.rows) == 3 * len(TOLS)
    for name in study.solvers:
        rows = study.rows_for(name)
        assert [r.rtol for r in rows] == TOLS
        assert all(r.success for r in rows), rows
        errors = [r.error for r in rows]
        assert all(b < a for a, b in itertools.pairwise(errors)), (name, errors)
        assert errors[0] < 1e-2, (name, errors)
        assert errors[-1] < 1e-7, (name, errors)
        # Tightening rtol by 1e6 buys at least 1e3 in accuracy.
        assert errors[-1] < 1e-3 * errors[0], (name, errors)
        nfs = [r.nf for r in rows]
        assert all(b is not None and a is not None and b > a for a, b in itertools.pairwise(nfs)), (
            nfs
        )


def test_atol_follows_the_default_ratio_and_floor(study: WorkPrecision) -> None:
    for r in study.rows:
        assert r.rtol is not None and r.atol is not None
        assert r.atol == pytest.approx(DEFAULT_ATOL_RATIO * r.rtol)
    assert study.error_floor == pytest.approx(DEFAULT_ATOL_RATIO)
    assert study.reference == "given (array)"


def test_error_is_the_documented_formula(study: WorkPrecision) -> None:
    row = study.rows_for("Tsit5")[1]
    sol = hq.solve(
        rotation(),
        hq.Tsit5(),
        saveat=torch.tensor([T1], dtype=F64),
        rtol=row.rtol,
        atol=row.atol,
    )
    y = sol.y[-1].numpy()
    ref = exact(T1)
    assert row.error == pytest.approx(rel_rms(y, ref, study.error_floor), rel=1e-12)
    d = np.abs(y - ref) / (np.abs(ref) + study.error_floor)
    assert row.error_max == pytest.approx(float(d.max()), rel=1e-12)


def test_counts_match_solve_stats(study: WorkPrecision) -> None:
    for solver in (hq.Tsit5(), hq.Vern7()):
        for row in study.rows_for(solver.name):
            sol = hq.solve(
                rotation(),
                solver,
                saveat=torch.tensor([T1], dtype=F64),
                rtol=row.rtol,
                atol=row.atol,
            )
            st = sol.stats
            assert row.nf == int(st.nf)
            assert row.naccept == int(st.naccept)
            assert row.nreject == int(st.nreject)
            assert row.njac == int(st.njac) == 0
            assert row.nlu == int(st.nlu) == 0
            assert row.steps == row.naccept + row.nreject
            assert row.retcode == "Success"
            assert len(row.times) == 3
            assert row.time_s == statistics.median(row.times)
            assert row.time_s > 0


def test_scipy_rk45_is_measured_against_the_same_reference() -> None:
    prob = rotation()
    wp = workprecision(prob, [hq.Tsit5(), "scipy:RK45"], [1e-4, 1e-7], repeats=1)
    assert wp.reference.startswith("computed: scipy Radau rtol=1e-12")
    ref = compute_reference(prob, atol=1e-14)
    np.testing.assert_allclose(ref, exact(T1), rtol=1e-10, atol=1e-12)
    for row in wp.rows_for("scipy:RK45"):
        sol = solve_ivp(
            lambda t, y: A @ y, (0.0, T1), Y0, method="RK45", rtol=row.rtol, atol=row.atol
        )
        assert row.error == pytest.approx(rel_rms(sol.y[:, -1], ref, wp.error_floor), rel=1e-6)
        assert row.nf == sol.nfev
        assert row.naccept == len(sol.t) - 1
        assert row.nreject is None and row.steps is None
        assert row.njac == 0 and row.nlu == 0
    # The hybrideq rows use the very same reference.
    for row in wp.rows_for("Tsit5"):
        sol = hq.solve(
            prob, hq.Tsit5(), saveat=torch.tensor([T1], dtype=F64), rtol=row.rtol, atol=row.atol
        )
        assert row.error == pytest.approx(rel_rms(sol.y[-1].numpy(), ref, wp.error_floor))
    errs = [r.error for r in wp.rows_for("scipy:RK45")]
    assert errs[1] < errs[0] < 1e-2


def test_scipy_gets_numpy_functions_and_the_problem_jacobian() -> None:
    calls = {"jac": 0}

    def jac(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        calls["jac"] += 1
        return p

    prob = rotation().remake(jac=jac)
    wp = workprecision(
        prob,
        ["scipy:BDF", scipy_contender("BDF", rhs=lambda t, y: A @ y, jac=False, name="fd")],
        [1e-6],
        reference=exact(T1),
        repeats=1,
        warmup=0,
    )
    analytic, finite = wp.rows
    assert analytic.success and finite.success
    assert calls["jac"] == analytic.njac >= 1
    assert analytic.error < 1e-4 and finite.error < 1e-4


def test_l2_error_over_saveat() -> None:
    ts = np.linspace(0.0, T1, 9)
    ref = exact(ts)
    wp = workprecision(
        rotation(),
        [hq.Tsit5(), "scipy:RK45"],
        [1e-4, 1e-8],
        reference=ref,
        error="l2",
        saveat=torch.tensor(ts),
        repeats=1,
    )
    assert wp.error_kind == "l2"
    for name in wp.solvers:
        loose, tight = wp.rows_for(name)
        assert tight.error < 1e-2 * loose.error < 1e-4
    sol = hq.solve(rotation(), hq.Tsit5(), saveat=torch.tensor(ts), rtol=1e-4, atol=1e-7)
    row = wp.rows_for("Tsit5")[0]
    assert row.error == pytest.approx(rel_rms(sol.y.numpy(), ref, wp.error_floor), rel=1e-12)
    # A computed reference trajectory agrees.
    wp2 = workprecision(
        rotation(), [hq.Tsit5()], [1e-8], error="l2", saveat=ts, repeats=1, warmup=0
    )
    assert wp2.rows[0].error == pytest.approx(wp.rows_for("Tsit5")[1].error, rel=1e-3)


def test_reference_objects() -> None:
    prob = rotation()
    ref = SimpleNamespace(t=T1, y=tuple(exact(T1)), source="exact: expm")
    wp = workprecision(prob, [hq.Tsit5()], [1e-6], reference=ref, repeats=1)
    assert wp.reference == "exact: expm"
    sol = hq.solve(prob, hq.Vern7(), rtol=1e-12, atol=1e-14)  # a Solution: fields t and y
    wp2 = workprecision(prob, [hq.Tsit5()], [1e-6], reference=sol, repeats=1)
    assert wp2.rows[0].error == pytest.approx(wp.rows[0].error, rel=1e-4)
    with pytest.raises(ValueError, match=r"reference is at t=1 but the problem ends at t=2"):
        workprecision(prob, [hq.Tsit5()], [1e-6], reference=SimpleNamespace(t=1.0, y=(1, 2)))


def test_failed_runs_are_reported_not_hidden() -> None:
    wp = workprecision(
        rotation(),
        [hq.Tsit5(), "scipy:RK45"],
        [1e-4, 1e-8],
        reference=exact(T1),
        repeats=1,
        solve_options={"maxiters": 3},
    )
    failed = wp.rows_for("Tsit5")
    assert [r.retcode for r in failed] == ["MaxIters", "MaxIters"]
    assert all(math.isnan(r.error) and not r.success for r in failed)
    assert all(r.time_s > 0 and r.nf is not None for r in failed)
    assert wp.failed == failed
    assert "MaxIters" in wp.table()
    best = wp.best(at_error=1.0)
    assert best is not None and best.solver == "scipy:RK45"


def test_a_contender_that_raises_becomes_an_error_row() -> None:
    def prepare(problem: Any, rtol: float, atol: float, saveat: Any) -> Any:
        if rtol < 1e-5:
            raise RuntimeError("too tight for me")
        return lambda: RunResult(y=exact(T1) * (1 + rtol))

    missing = Contender("ghost", prepare, requires=("no_such_module_hq",))
    wp = workprecision(
        rotation(),
        [Contender("fragile", prepare), missing],
        [1e-4, 1e-6],
        reference=exact(T1),
        repeats=1,
    )
    ok, bad = wp.rows_for("fragile")
    ref = exact(T1)
    assert ok.success
    assert ok.error == pytest.approx(rel_rms(ref * (1 + 1e-4), ref, wp.error_floor), rel=1e-9)
    assert bad.retcode == "Error" and "RuntimeError: too tight for me" in bad.message
    (ghost,) = wp.rows_for("ghost")
    assert ghost.retcode == "not installed" and ghost.rtol is None
    assert "pip install no_such_module_hq" in ghost.message
    table = wp.table()
    assert "RuntimeError: too tight for me" in table
    assert "ghost" in table and "not installed" in table


def test_best(study: WorkPrecision) -> None:
    target = 1e-6
    best = study.best(at_error=target)
    assert best is not None and best.error <= target
    good = [r for r in study.rows if r.error <= target]
    assert best.time_s == min(r.time_s for r in good)
    assert study.best(at_error=1e-300) is None
    with pytest.raises(ValueError, match="at_error must be a positive number"):
        study.best(at_error=0.0)
    with pytest.raises(TypeError, match="at_error"):
        study.best(at_error="small")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- output


def test_table_csv_json_contain_every_row(study: WorkPrecision, tmp_path: Path) -> None:
    table = study.table()
    assert table.splitlines()[0] == "rotation"
    assert "error: RMS of the relative error at t_end, |y - ref| / (|ref| + 0.001)" in table
    body = [line for line in table.splitlines() if line.split()[0] in study.solvers]
    assert len(body) == len(study.rows)
    for row, line in zip(study.rows, body, strict=True):
        assert line.startswith(row.solver)
        assert f"{row.rtol:.2e}" in line

    csv_path = study.to_csv(tmp_path / "wp.csv")
    with csv_path.open() as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == len(study.rows)
    for row, rec in zip(study.rows, records, strict=True):
        assert rec["solver"] == row.solver
        assert float(rec["rtol"]) == row.rtol
        assert float(rec["error"]) == pytest.approx(row.error)
        assert int(rec["nf"]) == row.nf
        assert len(rec["times"].split()) == 3

    json_path = study.to_json(tmp_path / "sub" / "wp.json")
    data = json.loads(json_path.read_text())
    assert data["title"] == "rotation" and data["error_kind"] == "final"
    assert data["meta"]["hybrideq"] == hq.__version__
    assert len(data["rows"]) == len(study.rows)
    assert [r["solver"] for r in data["rows"]] == [r.solver for r in study.rows]
    again = WorkPrecision.from_json(json_path)
    assert again.rows == study.rows
    assert again.error_floor == study.error_floor


def test_json_writes_nan_as_null(tmp_path: Path) -> None:
    wp = workprecision(
        rotation(),
        [hq.Tsit5()],
        [1e-4],
        reference=exact(T1),
        repeats=1,
        solve_options={"maxiters": 2},
    )
    text = wp.to_json(tmp_path / "f.json").read_text()
    assert "NaN" not in text
    row = json.loads(text)["rows"][0]
    assert row["error"] is None and row["retcode"] == "MaxIters"
    assert math.isnan(WorkPrecision.from_json(tmp_path / "f.json").rows[0].error)


def test_repr(study: WorkPrecision) -> None:
    text = repr(study)
    assert text.startswith("WorkPrecision(title='rotation'")
    assert "'Tsit5', 'Vern7', 'scipy:RK45'" in text
    assert "rows=12" in text and "failed=0" in text


def test_plot_one_line_per_solver(study: WorkPrecision) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = study.plot()
    try:
        assert len(ax.lines) == len(study.solvers) == 3
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        labels = [line.get_label() for line in ax.lines]
        assert labels == study.solvers
        for line, name in zip(ax.lines, study.solvers, strict=True):
            xs = list(line.get_xdata())
            assert len(xs) == len(TOLS)
            assert xs == [r.error for r in study.rows_for(name)]
        assert ax.get_title() == "rotation"
    finally:
        plt.close(ax.figure)
    fig, given = plt.subplots()
    try:
        out = study.plot(ax=given, x="nf", y="error", annotate=True)
        assert out is given and len(given.lines) == 3
        assert given.get_xlabel() == "right-hand-side evaluations"
        with pytest.raises(ValueError, match="x must be one of"):
            study.plot(ax=given, x="speed")
        with pytest.raises(ValueError, match="y must be one of"):
            study.plot(ax=given, y="joules")
    finally:
        plt.close(fig)


def test_plot_without_matplotlib_says_how_to_install(
    study: WorkPrecision, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'hybrideq\[plot\]'"):
        study.plot()


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    workprecision(rotation(), [hq.Tsit5()], [1e-3], reference=exact(T1), repeats=1, progress=True)
    assert "workprecision" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_diffrax_contender() -> None:
    jax = pytest.importorskip("jax")
    pytest.importorskip("diffrax")
    import jax.numpy as jnp

    a = jnp.asarray(A)
    before = jax.config.read("jax_enable_x64")
    try:
        jax.config.update("jax_enable_x64", False)
        with pytest.raises(ValueError, match="jax_enable_x64"):
            workprecision(
                rotation(), ["diffrax:Tsit5"], [1e-6], jax_vector_field=lambda t, y, p: a @ y
            )
        jax.config.update("jax_enable_x64", True)
        a = jnp.asarray(A)
        wp = workprecision(
            rotation(),
            ["diffrax:Tsit5"],
            [1e-4, 1e-8],
            reference=exact(T1),
            repeats=1,
            jax_vector_field=lambda t, y, p: p @ y,  # args = problem.p = A
        )
    finally:
        jax.config.update("jax_enable_x64", before)
    loose, tight = wp.rows
    assert loose.success and tight.success
    assert tight.error < 1e-3 * loose.error
    assert tight.naccept is not None and tight.naccept > loose.naccept
    assert tight.nf is None and tight.setup_s is not None and tight.setup_s > 0


# --------------------------------------------------------------------------- bad input


def _bad(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "problem": rotation(),
        "solvers": [hq.Tsit5()],
        "tolerances": [1e-4],
        "reference": exact(T1),
    }
    args.update(changes)
    return args


BAD_INPUT = [
    ({"problem": "rotation"}, TypeError, "problem must be an ODEProblem"),
    ({"solvers": []}, ValueError, "solvers is empty"),
    ({"solvers": "scipy:BDF"}, TypeError, "solvers must be a list"),
    ({"solvers": hq.Tsit5()}, TypeError, "solvers must be a list"),
    ({"solvers": [hq.Tsit5]}, TypeError, r"solvers\[0\]: pass a solver instance, e.g. Tsit5\(\)"),
    ({"solvers": [3]}, TypeError, r"solvers\[0\] must be a hybrideq solver object"),
    (
        {"solvers": ["julia:Rodas5P"]},
        ValueError,
        r"solvers\[0\] = 'julia:Rodas5P' is not a known peer",
    ),
    ({"solvers": ["Tsit5"]}, ValueError, r"pass hybrideq solvers as objects, e.g. hq.Rodas5P\(\)"),
    ({"solvers": ["scipy:Nope"]}, ValueError, r"scipy has no method 'Nope'; use one of RK45"),
    ({"solvers": ["diffrax:Kvaerno5"]}, ValueError, "needs the problem's right-hand side in JAX"),
    ({"solvers": [hq.Tsit5(), hq.Tsit5()]}, ValueError, "two contenders are named 'Tsit5'"),
    ({"names": ["a", "b"]}, ValueError, "names must be a list of 1 strings"),
    ({"tolerances": []}, ValueError, "tolerances is empty"),
    ({"tolerances": 1e-4}, TypeError, "tolerances must be a list of rtol values"),
    ({"tolerances": "1e-4"}, TypeError, "tolerances must be a list of rtol values"),
    ({"tolerances": [1e-4, 0.0]}, ValueError, r"tolerances\[1\]: rtol must be positive"),
    ({"tolerances": [-1e-4]}, ValueError, r"tolerances\[0\]: rtol must be positive"),
    ({"tolerances": [math.nan]}, ValueError, r"tolerances\[0\]: rtol must be positive and finite"),
    ({"tolerances": [(1e-4, -1.0)]}, ValueError, r"tolerances\[0\]: atol must be positive"),
    ({"tolerances": [(1e-4,)]}, ValueError, r"a pair must be \(rtol, atol\)"),
    ({"tolerances": ["tight"]}, TypeError, r"tolerances\[0\]: rtol must be a number"),
    (
        {"tolerances": [(1e-4, 1e-8)], "atol_ratio": 1e-3},
        ValueError,
        "atol_ratio applies to plain rtol values",
    ),
    ({"atol_ratio": 0.0}, ValueError, "atol_ratio must be a positive number"),
    ({"error": "max"}, ValueError, "error must be 'final' or 'l2', got 'max'"),
    ({"error": "l2"}, ValueError, r"error='l2' compares trajectories: pass saveat"),
    ({"saveat": [0.0, 1.0]}, ValueError, "saveat is used only with error='l2'"),
    ({"error": "l2", "saveat": [0.0, 3.0]}, ValueError, "saveat has times outside tspan"),
    ({"error": "l2", "saveat": [1.0, 0.5]}, ValueError, "saveat must be strictly monotone"),
    ({"repeats": 0}, ValueError, "repeats must be an integer >= 1"),
    ({"warmup": -1}, ValueError, "warmup must be an integer >= 0"),
    ({"repeats": 2.5}, ValueError, "repeats must be an integer"),
    ({"engine": "jax"}, ValueError, "engine must be one of"),
    ({"error_floor": -1.0}, ValueError, "error_floor must be a positive number"),
    ({"solve_options": {"rtol": 1e-3}}, ValueError, r"solve_options must not set \['rtol'\]"),
    ({"solve_options": ["maxiters"]}, TypeError, "solve_options must be a dict"),
    (
        {"reference": [1.0, 2.0, 3.0]},
        ValueError,
        "reference must hold the 2 state components at t_end",
    ),
    ({"reference": object()}, TypeError, "reference must be None, an array/tensor"),
    ({"reference": [1.0, math.inf]}, ValueError, "reference contains NaN or Inf"),
    (
        {"error": "l2", "saveat": [0.0, 1.0]},
        ValueError,
        r"reference must have shape \(2, 2\) for error='l2'",
    ),
]


@pytest.mark.parametrize(("changes", "exc", "message"), BAD_INPUT)
def test_bad_input(changes: dict[str, Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message):
        workprecision(**_bad(**changes))


def test_bad_input_batched_problem_and_mass_matrix() -> None:
    batch = hq.library.linear_system(torch.tensor(A), torch.tensor(np.stack([Y0, Y0])))
    with pytest.raises(
        ValueError, match=r"workprecision studies one problem; this one is a batch of 2"
    ):
        workprecision(**_bad(problem=batch))
    dae = rotation().remake(mass_matrix=torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match=r"scipy:BDF cannot take a mass matrix"):
        workprecision(**_bad(problem=dae, solvers=["scipy:BDF"]))
    with pytest.raises(
        ValueError,
        match="the reference cannot be computed with scipy for a problem with a mass matrix",
    ):
        workprecision(**_bad(problem=dae, reference=None))


def test_bad_contender_factories() -> None:
    with pytest.raises(ValueError, match="unknown scipy method 'rk45'"):
        scipy_contender("rk45")
    with pytest.raises(TypeError, match="jac=True is ambiguous"):
        scipy_contender("BDF", jac=True)


# --------------------------------------------------------------------------- the CLI


def test_cli_bench_stiff_quick(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # exponential_decay exists today; the stiff problems and Rodas5P may or may not yet,
    # Rodas99 and no_such_problem never will: each must be reported, none may crash.
    argv = [
        "bench",
        "stiff",
        "--quick",
        "--problems",
        "exponential_decay,no_such_problem",
        "--solvers",
        "Tsit5,Rodas5P,Rodas99",
        "--peers",
        "scipy:RK45,scipy:BDF",
        "--tolerances",
        "1e-4",
        "--out",
        str(tmp_path),
        "--plot",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "== exponential_decay (n=1, t ∈ [0, 1])" in lines
    for name in ("Tsit5", "scipy:RK45", "scipy:BDF"):
        assert any(line.startswith(name) and "Success" in line for line in lines), name
    assert any(
        line.startswith("Rodas99") and "not available in this version" in line for line in lines
    )
    rodas = [line for line in lines if line.startswith("Rodas5P ")]
    assert rodas and ("not available in this version" in rodas[0] or "1.00e-04" in rodas[0])
    assert "== no_such_problem: not available in this version" in out
    data = json.loads((tmp_path / "stiff_exponential_decay.json").read_text())
    solvers = [r["solver"] for r in data["rows"]]
    assert {"Tsit5", "scipy:RK45", "scipy:BDF", "Rodas99", "Rodas5P"} <= set(solvers)
    with (tmp_path / "stiff_exponential_decay.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(data["rows"])
    if sys.modules.get("matplotlib") is not None or _has_matplotlib():
        assert (tmp_path / "stiff_exponential_decay.png").stat().st_size > 0
    assert not (tmp_path / "stiff_no_such_problem.json").exists()


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "stiff", "--peers", "scipy:Foo"], "unknown peer 'scipy:Foo'"),
        (["bench", "stiff", "--tolerances", "tight"], "'tight' is not a number"),
        (["bench", "stiff", "--tolerances=1e-4,-1e-6"], "tolerances must be positive"),
        (["bench"], "the following arguments are required: BENCH"),
    ],
)
def test_cli_bench_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
