"""The Julia engine.

Without Julia (this machine), everything Python-side is tested: the solver table covers
every solver spec and its expressions parse as Julia; options, return codes, stats and the
array layout translate as documented; the torch callbacks Julia calls write the right
numbers into the arrays they are given (NumPy arrays stand in for juliacall's array
wrappers: ``numpy.asarray`` views both); the engine choice; the import-order guard (with a
recording stand-in for juliacall, which the test names as such). Every ``.jl`` file parses.

With Julia (the ``julia`` marker; .github/workflows/julia.yml), the same problems and
solvers run on both engines and must agree, gradients included.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

import hybrideq as hq
from hybrideq.engines import engine_choice, resolve_engine
from hybrideq.engines.julia import JuliaNotInstalledError
from hybrideq.engines.julia._algorithms import (
    JULIA_SOLVERS,
    JuliaUnsupportedError,
    julia_algorithm,
    julia_support,
)
from hybrideq.engines.julia._convert import (
    JULIA_RETCODES,
    from_julia_matrix,
    from_julia_retcode,
    from_julia_stats,
    julia_solve_kwargs,
    to_julia_matrix,
    to_julia_retcode,
    to_julia_vector,
)
from hybrideq.engines.julia._engine import (
    _TorchCallbacks,
    engine_source_dir,
    julia_sensealg,
    julia_unsuitable,
)
from hybrideq.solvers import AbstractSolver
from hybrideq.symbolic import SymbolicODE, SymbolicSDE

ROOT = Path(__file__).resolve().parents[1]
x, y, k = sp.symbols("x y k")


def _parse_julia(source: str) -> bool:
    """True when tree-sitter-julia parses the source without an error node."""
    tsj = pytest.importorskip("tree_sitter_julia", reason="needs the tree-sitter-julia package")
    from tree_sitter import Language, Parser

    tree = Parser(Language(tsj.language())).parse(source.encode())
    return not tree.root_node.has_error


def _concrete_solvers() -> list[type[AbstractSolver]]:
    out: list[type[AbstractSolver]] = []
    todo = [AbstractSolver]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if not inspect.isabstract(sub) and not sub.__name__.startswith("Abstract"):
                out.append(sub)
    return sorted(set(out), key=lambda c: c.__name__)


# --------------------------------------------------------------------------- Julia files


def test_every_julia_file_parses() -> None:
    files = sorted((ROOT / "julia").rglob("*.jl"))
    assert len(files) >= 2, files
    for path in files:
        assert _parse_julia(path.read_text()), path
    assert (ROOT / "julia/HybridEqEngine/Project.toml").is_file()
    assert engine_source_dir() == ROOT / "julia" / "HybridEqEngine"


def _julia_keywords(source: str, name: str) -> tuple[set[str], bool] | None:
    """The keyword names of the Julia function ``name`` defined in ``source`` (long or
    short form), and whether it takes ``kwargs...``; ``None`` when it is not defined."""
    import re

    pattern = rf"(?:^|\n)\s*(?:function\s+)?{re.escape(name)}\(([^)]*)\)"
    best: tuple[set[str], bool] | None = None
    for m in re.finditer(pattern, source):
        args = m.group(1)
        if ";" not in args:
            best = best or (set(), False)
            continue
        kws = [a.strip() for a in args.split(";", 1)[1].split(",") if a.strip()]
        names = {re.split(r"[:=\s]", a)[0] for a in kws if not a.endswith("...")}
        best = (names, any(a.endswith("...") for a in kws))
    return best


def test_every_julia_call_of_the_python_side_names_a_defined_function_and_keywords() -> None:
    """The boundary, read statically: each ``jl.name(...)`` call in the engine's Python
    code names a function HybridEqEngine exports, and each keyword it passes is one the
    Julia function takes (the GPU wrappers forward to src/gpu.jl's functions)."""
    import ast

    main = (ROOT / "julia/HybridEqEngine/src/HybridEqEngine.jl").read_text()
    gpu = (ROOT / "julia/HybridEqEngine/src/gpu.jl").read_text()
    exported = set(
        main.split("\nexport ", 1)[1]
        .split("\n\n", 1)[0]
        .replace("\n", " ")
        .replace(",", " ")
        .split()
    )
    forwards = {"ensemble_kernel": "ensemble_kernel!", "ensemble_em": "ensemble_em!"}
    calls: list[tuple[str, set[str]]] = []
    for path in (ROOT / "src/hybrideq/engines/julia/_engine.py", ROOT / "src/hybrideq/cli.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "jl"
            ):
                calls.append((node.func.attr, {k.arg for k in node.keywords if k.arg}))
    names = {name for name, _ in calls}
    assert {"solve_exported", "ensemble_kernel", "ensemble_em", "adjoint_exported"} <= names
    for name, keywords in calls:
        if name == "seval":
            continue
        assert name in exported, f"jl.{name} is not exported by HybridEqEngine"
        if name in forwards or name == "ensemble_array":
            sig = _julia_keywords(gpu, forwards.get(name, name))
        else:
            sig = _julia_keywords(main, name)
        assert sig is not None, f"no definition of {name}"
        declared, open_ended = sig
        assert open_ended or keywords <= declared, (name, keywords - declared)
    # and the keywords the GPU kernel functions require are always passed
    kernel = next(kw for name, kw in calls if name == "ensemble_kernel")
    assert {"T", "saveat", "abstol", "reltol"} <= kernel
    em = next(kw for name, kw in calls if name == "ensemble_em")
    assert {"T", "saveat", "dt", "seed"} <= em


def test_juliapkg_json_matches_the_julia_package() -> None:
    import json

    import tomllib

    declared = json.loads((ROOT / "src/hybrideq/juliapkg.json").read_text())["packages"]
    project = tomllib.loads((ROOT / "julia/HybridEqEngine/Project.toml").read_text())
    for name, uuid in project["deps"].items():
        if name in ("LinearAlgebra", "PythonCall", "CUDA"):
            # stdlib; juliacall pins PythonCall; CUDA comes with `hybrideq julia install --cuda`
            continue
        assert declared[name]["uuid"] == uuid, name
        assert declared[name]["version"] == project["compat"][name], name


# --------------------------------------------------------------------------- solver table


def test_the_solver_table_covers_every_solver_spec() -> None:
    solvers = _concrete_solvers()
    assert len(solvers) >= 26
    missing = [c.__name__ for c in solvers if c not in JULIA_SOLVERS]
    assert missing == []
    engine_src = (ROOT / "julia/HybridEqEngine/src/HybridEqEngine.jl").read_text()
    for cls in solvers:
        entry = JULIA_SOLVERS[cls]
        if entry.julia is None:
            assert cls.__name__ == "ReversibleHeun" and "no reversible Heun" in entry.note
            continue
        # the engine imports every constructor the table names
        assert entry.julia in engine_src, entry.julia
        solver = cls(hq.Rodas5P()) if "Auto" in cls.__name__ else cls()  # type: ignore[call-arg]
        expr = julia_algorithm(solver)
        assert _parse_julia(expr), expr
        assert julia_support(solver) is None


def test_solver_expressions_carry_the_options() -> None:
    assert julia_algorithm(hq.Tsit5()) == "Tsit5()"
    assert julia_algorithm(hq.Rodas5P()) == "Rodas5P(autodiff = AutoForwardDiff())"
    assert julia_algorithm(hq.Rodas5P(autodiff=False)) == "Rodas5P(autodiff = AutoFiniteDiff())"
    assert (
        julia_algorithm(hq.Rodas5P(), autodiff="AutoFiniteDiff()")
        == "Rodas5P(autodiff = AutoFiniteDiff())"
    )
    assert julia_algorithm(hq.KenCarp4(max_newton=7, kappa=0.02)) == (
        "KenCarp4(autodiff = AutoForwardDiff(), nlsolve = NLNewton(κ = 0.02, max_iter = 7))"
    )
    assert julia_algorithm(hq.QBDF(max_order=3)).startswith(
        "QNDF(max_order = Val{3}(), kappa = (0.0, 0.0, 0.0, 0.0, 0.0)"
    )
    assert "kappa = (-0.185, -0.1111111111111111" in julia_algorithm(hq.QNDF())
    auto = julia_algorithm(hq.AutoTsit5(hq.Rodas5P(), maxstiffstep=4))
    assert auto.startswith("AutoTsit5(Rodas5P(autodiff = AutoForwardDiff()); maxstiffstep = 4")
    assert "stiffalgfirst = false" in auto and _parse_julia(auto)
    assert julia_algorithm(hq.Milstein(interpretation="stratonovich")) == (
        "RKMil(interpretation = SciMLBase.AlgorithmInterpretation.Stratonovich)"
    )
    assert julia_algorithm(hq.ImplicitEM(theta=1.0)).startswith("ImplicitEM(theta = 1.0")
    with pytest.raises(JuliaUnsupportedError, match="no reversible Heun"):
        julia_algorithm(hq.ReversibleHeun())
    with pytest.raises(JuliaUnsupportedError, match=r"linsolve='gmres'.*engine='torch'"):
        julia_algorithm(hq.KenCarp4(linsolve="gmres"))
    assert "delta" in (julia_support(hq.SOSRI(delta=0.5)) or "")


def test_sensealg_expressions() -> None:
    assert julia_sensealg(hq.InterpolatingAdjoint(), python_rhs=True) == (
        "InterpolatingAdjoint(autojacvec = ZygoteVJP(), checkpointing = false)"
    )
    assert julia_sensealg(hq.GaussAdjoint(checkpointing=True), python_rhs=False) == (
        "GaussAdjoint(autojacvec = EnzymeVJP(), checkpointing = true)"
    )
    quad = julia_sensealg(hq.QuadratureAdjoint(abstol=1e-9), python_rhs=True)
    assert quad is not None and "abstol = 1e-09" in quad and _parse_julia(quad)
    assert julia_sensealg(hq.DirectBackprop(), python_rhs=True) is None


# --------------------------------------------------------------------------- translation


def test_solve_options_translate_to_julia_keywords() -> None:
    saveat = torch.linspace(0, 1, 5, dtype=torch.float64)
    kw = julia_solve_kwargs(
        rtol=1e-6,
        atol=torch.tensor([1e-8, 1e-9], dtype=torch.float64),
        saveat=saveat,
        dt=torch.tensor(0.01),
        adaptive=False,
        dtmin=1e-12,
        dtmax=0.5,
        maxiters=1000,
        dense=False,
    )
    assert kw["reltol"] == 1e-6 and kw["abstol"].tolist() == [1e-8, 1e-9]
    assert np.shares_memory(kw["saveat"], saveat.numpy())  # a view, not a copy
    assert kw["dt"] == pytest.approx(0.01) and kw["adaptive"] is False
    assert (kw["dtmin"], kw["dtmax"], kw["maxiters"], kw["dense"]) == (1e-12, 0.5, 1000, False)
    assert set(julia_solve_kwargs(rtol=1e-3, atol=1e-6, saveat=None)) == {
        "reltol",
        "abstol",
        "maxiters",
    }
    with pytest.raises(ValueError, match=r"saveat: .*one \(T,\) vector"):
        julia_solve_kwargs(rtol=1e-3, atol=1e-6, saveat=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dt: the Julia engine takes one value"):
        julia_solve_kwargs(rtol=1e-3, atol=1e-6, saveat=None, dt=torch.ones(3))
    with pytest.raises(ValueError, match="maxiters must be a positive integer"):
        julia_solve_kwargs(rtol=1e-3, atol=1e-6, saveat=None, maxiters=0)


# Every member of SciMLBase's ReturnCode (SciMLBase src/retcodes.jl, v3.49)
SCIMLBASE_RETCODES = [
    *("Default", "Success", "Terminated", "DtNaN", "MaxIters", "MaxNumSub", "DtLessThanMin"),
    *("Unstable", "InitialFailure", "ConvergenceFailure", "Failure", "ExactSolutionLeft"),
    *("ExactSolutionRight", "FloatingPointLimit", "Infeasible", "MaxTime"),
    *("InternalLineSearchFailed", "ShrinkThresholdExceeded", "Stalled", "StalledSuccess"),
    *("InternalLinearSolveFailed", "APosterioriSafetyFailure"),
]


def test_return_codes_map_both_ways() -> None:
    assert sorted(JULIA_RETCODES) == sorted(SCIMLBASE_RETCODES)
    # SciMLBase.successful_retcode is true for exactly these
    ok = {"Success", "Terminated", "ExactSolutionLeft", "ExactSolutionRight"}
    ok |= {"FloatingPointLimit", "StalledSuccess"}
    assert {k for k, v in JULIA_RETCODES.items() if v == hq.ReturnCode.Success} == ok
    for code in hq.ReturnCode:
        assert from_julia_retcode(to_julia_retcode(code)) == code
    assert from_julia_retcode("DtNaN") == hq.ReturnCode.Unstable
    with pytest.raises(ValueError, match="unknown SciMLBase return code 'Bogus'"):
        from_julia_retcode("Bogus")


def test_stats_map_from_destats_fields() -> None:
    destats = {"nf": 120, "nw": 9, "nsolve": 30, "njacs": 4, "nnonliniter": 0}
    destats |= {"naccept": 40, "nreject": 3}
    assert from_julia_stats(destats) == {
        "nf": 120,
        "naccept": 40,
        "nreject": 3,
        "njac": 4,
        "nlu": 9,
        "nnonliniter": 0,
    }


def test_layout_crosses_without_copies() -> None:
    batch = torch.arange(12, dtype=torch.float64).reshape(4, 3)  # (batch, n)
    jl = to_julia_matrix(batch)
    assert jl.shape == (3, 4) and jl.flags.f_contiguous  # Julia's n × batch, column-major
    assert np.shares_memory(jl, batch.numpy())
    assert jl.__array_interface__["data"][0] == batch.data_ptr()
    assert all(jl[i, b] == batch[b, i] for i in range(3) for b in range(4))
    vec = torch.ones(5, dtype=torch.float64)
    assert to_julia_vector(vec).__array_interface__["data"][0] == vec.data_ptr()
    # a Julia n × T result, as juliacall's ArrayValue exports it (Fortran-ordered)
    julia_result = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    y = from_julia_matrix(julia_result)
    assert y.shape == (3, 2) and y.is_contiguous()
    assert y.data_ptr() == julia_result.__array_interface__["data"][0]
    assert torch.equal(y, torch.from_numpy(julia_result.T.copy()))
    with pytest.raises(ValueError, match="C-contiguous float64 CPU tensor"):
        to_julia_matrix(batch.T)
    with pytest.raises(ValueError, match="C-contiguous float64 CPU tensor"):
        to_julia_matrix(batch.float())


# --------------------------------------------------------------------------- callbacks


def _lv(t: torch.Tensor, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    a, b, c, d = p.unbind(-1)
    return torch.stack(
        [a * u[..., 0] - b * u[..., 0] * u[..., 1], c * u[..., 0] * u[..., 1] - d * u[..., 1]],
        -1,
    )


def _lv_jac(t: torch.Tensor, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return torch.func.jacrev(lambda v: _lv(t, v, p))(u)


def test_torch_callbacks_write_into_the_arrays_julia_gives() -> None:
    """NumPy arrays stand in for juliacall's ArrayValue wrappers (numpy.asarray views both)."""
    p = torch.tensor([1.3, 0.9, 0.8, 1.8], dtype=torch.float64)
    cb = _TorchCallbacks(_lv, _lv_jac, (4,), (2,))
    u = np.array([0.5, 2.0])
    du = np.zeros(2)
    cb.rhs(du, u, p.numpy(), 0.3)
    np.testing.assert_allclose(du, _lv(torch.tensor(0.3), torch.from_numpy(u), p).numpy())
    J = np.zeros((2, 2), order="F")  # a Julia Matrix is column-major
    cb.jac(J, u, p.numpy(), 0.3)
    np.testing.assert_allclose(J, [[1.3 - 0.9 * 2.0, -0.9 * 0.5], [0.8 * 2.0, 0.8 * 0.5 - 1.8]])
    lam = np.array([0.7, -1.1])
    out = np.zeros(2)
    cb.vjp(out, lam, u, p.numpy(), 0.3)
    np.testing.assert_allclose(out, J.T @ lam, rtol=1e-14)
    out_p = np.zeros(4)
    cb.vjp_p(out_p, lam, u, p.numpy(), 0.3)
    # ∂f/∂p: f1 = a x − b x y, f2 = c x y − d y
    dfdp = np.array([[0.5, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -2.0]])
    np.testing.assert_allclose(out_p, dfdp.T @ lam, rtol=1e-14)
    # an SDE's noise matrix: Julia's n × m column-major G, filled element by element
    g = _TorchCallbacks(
        lambda t, u, q: torch.outer(u, torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)),
        None,
        None,
        (2,),
    )
    G = np.zeros((2, 3), order="F")
    g.rhs(G, u, None, 0.0)
    np.testing.assert_allclose(G, np.outer(u, [1.0, 10.0, 100.0]))
    # p from Julia (an ensemble's per-trajectory parameters) is what the callback uses
    cb.rhs(du, u, np.array([0.0, 0.0, 0.0, 0.0]), 0.3)
    assert du.tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- engine choice


def _symbolic_problem() -> hq.ODEProblem:
    return SymbolicODE({x: -k * x, y: k * x}, params={k: 0.5}).problem([1.0, 0.0], (0.0, 1.0))


def test_auto_picks_torch_without_julia_and_julia_raises_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("hybrideq.engines.julia._runtime.find_julia", lambda: None)
    prob = _symbolic_problem()
    engine, why = engine_choice(prob, hq.Tsit5(), "auto")
    assert engine == "torch" and "not installed" in why
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-8, atol=1e-10)  # auto: torch, silently
    assert abs(float(sol.y[-1, 0]) - np.exp(-0.5)) < 1e-7
    with pytest.raises(JuliaNotInstalledError, match="hybrideq julia install"):
        hq.solve(prob, hq.Tsit5(), engine="julia")
    with pytest.raises(JuliaNotInstalledError, match="hybrideq julia install"):
        hq.solve(prob, hq.Tsit5(), saveat=[1.0], sensealg=hq.GaussAdjoint())
    with pytest.raises(ValueError, match="GaussAdjoint runs on the Julia engine"):
        hq.solve(prob, hq.Tsit5(), engine="torch", sensealg=hq.GaussAdjoint())


def test_auto_picks_julia_only_for_problems_that_suit_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Julia reported installed (nothing is started: only the choice is asked)."""
    monkeypatch.setattr("hybrideq.engines.julia_available", lambda: True)
    prob = _symbolic_problem()
    assert resolve_engine(prob, hq.Rodas5P(), "auto") == "julia"
    plain = prob.remake(f=lambda t, u, p: -u)
    engine, why = engine_choice(plain, hq.Tsit5(), "auto")
    assert engine == "torch" and "torch function" in why
    engine, why = engine_choice(prob, hq.ReversibleHeun(), "auto")
    assert engine == "torch" and "reversible" in why
    engine, why = engine_choice(prob, hq.Tsit5(), "auto", options={"heuristics": True})
    assert engine == "torch" and "heuristics" in why
    single = SymbolicODE({x: -k * x}, params={k: 0.5}).problem(
        [1.0], (0.0, 1.0), dtype=torch.float32
    )
    engine, why = engine_choice(single, hq.Tsit5(), "auto")
    assert engine == "torch" and "float64" in why
    grad = prob.remake(p=torch.tensor([0.5], dtype=torch.float64, requires_grad=True))
    assert engine_choice(grad, hq.Tsit5(), "auto")[0] == "torch"
    sde = SymbolicSDE({x: -x}, {x: 0.1}).problem([1.0], (0.0, 1.0))
    assert engine_choice(sde, hq.EM(), "auto")[0] == "torch"
    assert julia_unsuitable(sde, hq.Tsit5()) == "Tsit5 cannot solve an SDE problem"
    odd_p = hq.ODEProblem(
        lambda t, u, q: -q["k"] * u, torch.ones(1, dtype=torch.float64), (0, 1), {"k": 1.0}
    )
    assert "parameters must be a tensor" in (julia_unsuitable(odd_p, hq.Tsit5()) or "")


# --------------------------------------------------------------------------- import order


def _fake_julia_env(tmp_path: Path) -> dict[str, str]:
    """A recording stand-in for juliacall (NOT Julia): it records whether torch was
    already imported when it was, so the import order can be checked without Julia."""
    pkg = tmp_path / "stand_in" / "juliacall"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            with open(os.environ["RECORD"], "w") as fh:
                fh.write("torch-first" if "torch" in sys.modules else "julia-first")
            """
        )
    )
    exe = tmp_path / "julia"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path / "stand_in"), env.get("PYTHONPATH", "")]),
        PYTHON_JULIACALL_EXE=str(exe),
        RECORD=str(tmp_path / "record.txt"),
    )
    return env


def test_julia_first_starts_juliacall_before_torch(tmp_path: Path) -> None:
    env = _fake_julia_env(tmp_path)
    code = "import sys, hybrideq; print('juliacall' in sys.modules)"
    plain = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert plain.stdout.strip() == "False"  # import hybrideq never starts Julia
    assert not (tmp_path / "record.txt").exists()
    env["HYBRIDEQ_JULIA_FIRST"] = "1"
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert first.stdout.strip() == "True"
    assert (tmp_path / "record.txt").read_text() == "julia-first"
    late = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import torch, hybrideq"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HYBRIDEQ_JULIA_FIRST=1 has no effect: torch was imported before" in late.stderr


# --------------------------------------------------------------------------- with Julia


def _lotka_volterra() -> SymbolicODE:
    a, b, c, d = sp.symbols("alpha beta gamma delta")
    return SymbolicODE(
        {x: a * x - b * x * y, y: c * x * y - d * y},
        params={a: 1.3, b: 0.9, c: 0.8, d: 1.8},
    )


@pytest.mark.julia
@pytest.mark.parametrize("solver", [hq.Tsit5(), hq.Vern7(), hq.Rodas5P(), hq.KenCarp4()])
def test_engines_agree_on_a_sympy_model(solver: AbstractSolver) -> None:
    prob = _lotka_volterra().problem([0.44249296, 4.6280594], (0.0, 5.0))
    t = torch.linspace(0, 5, 11, dtype=torch.float64)
    jl = hq.solve(prob, solver, saveat=t, rtol=1e-10, atol=1e-12, engine="julia")
    th = hq.solve(prob, solver, saveat=t, rtol=1e-10, atol=1e-12, engine="torch")
    assert jl.retcode == hq.ReturnCode.Success
    torch.testing.assert_close(jl.t, th.t)
    torch.testing.assert_close(jl.y, th.y, rtol=1e-7, atol=1e-8)
    assert int(jl.stats.nf) > 0


@pytest.mark.julia
def test_engines_agree_with_a_torch_callback_and_its_jacobian() -> None:
    p = torch.tensor([1.3, 0.9, 0.8, 1.8], dtype=torch.float64)
    prob = hq.ODEProblem(_lv, torch.tensor([0.44, 4.6], dtype=torch.float64), (0.0, 3.0), p)
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    for solver in (hq.Tsit5(), hq.Rodas5P()):
        jl = hq.solve(prob, solver, saveat=t, rtol=1e-9, atol=1e-11, engine="julia")
        th = hq.solve(prob, solver, saveat=t, rtol=1e-9, atol=1e-11, engine="torch")
        torch.testing.assert_close(jl.y, th.y, rtol=1e-6, atol=1e-8)


@pytest.mark.julia
@pytest.mark.parametrize(
    "sensealg", [hq.InterpolatingAdjoint(), hq.QuadratureAdjoint(), hq.GaussAdjoint()]
)
def test_julia_adjoint_gradients_match_the_torch_engine(sensealg: object) -> None:
    t = torch.linspace(0, 3, 7, dtype=torch.float64)

    def loss(engine: str, sense: object) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.tensor([1.3, 0.9, 0.8, 1.8], dtype=torch.float64, requires_grad=True)
        y0 = torch.tensor([0.44, 4.6], dtype=torch.float64, requires_grad=True)
        prob = hq.ODEProblem(_lv, y0, (0.0, 3.0), p)
        sol = hq.solve(
            prob, hq.Tsit5(), saveat=t, rtol=1e-10, atol=1e-12, engine=engine, sensealg=sense
        )
        (sol.y**2).sum().backward()
        assert y0.grad is not None and p.grad is not None
        return y0.grad, p.grad

    g_jl = loss("julia", sensealg)
    g_th = loss("torch", hq.InterpolatingAdjoint())
    for a, b in zip(g_jl, g_th, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.julia
def test_julia_batch_runs_as_an_ensemble_with_per_sample_parameters() -> None:
    model = SymbolicODE({x: -k * x}, params={k: 1.0})
    prob = model.problem(torch.ones(3, 1, dtype=torch.float64), (0.0, 1.0))
    prob = prob.remake(p=torch.tensor([[0.5], [1.0], [2.0]], dtype=torch.float64))
    sol = hq.solve(prob, hq.Tsit5(), saveat=[0.0, 1.0], rtol=1e-10, atol=1e-12, engine="julia")
    torch.testing.assert_close(
        sol.y[:, -1, 0], torch.exp(-torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    )


@pytest.mark.julia
def test_julia_batched_dense_output_matches_the_exact_solution() -> None:
    """sol(t) of a batch: each sample's Julia interpolant (Vern7's is 7th order)."""
    model = SymbolicODE({x: -k * x}, params={k: 1.0})
    prob = model.problem(torch.tensor([[1.0], [2.0]], dtype=torch.float64), (0.0, 2.0))
    prob = prob.remake(p=torch.tensor([[0.5], [1.5]], dtype=torch.float64))
    sol = hq.solve(prob, hq.Vern7(), rtol=1e-10, atol=1e-12, engine="julia")
    tq = torch.linspace(0.1, 1.9, 7, dtype=torch.float64)
    exact = torch.stack([1.0 * torch.exp(-0.5 * tq), 2.0 * torch.exp(-1.5 * tq)])[..., None]
    torch.testing.assert_close(sol(tq), exact, rtol=1e-8, atol=1e-10)


@pytest.mark.julia
def test_julia_failed_solve_keeps_its_prefix_and_return_code() -> None:
    prob = _lotka_volterra().problem([0.44249296, 4.6280594], (0.0, 50.0))
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-12, atol=1e-12, maxiters=20, engine="julia")
    assert sol.retcode == hq.ReturnCode.MaxIters
    assert 1 <= sol.y.shape[0] <= 21 and float(sol.t[-1]) < 50.0


def test_doctor_and_auto_never_start_or_download_julia(tmp_path: Path) -> None:
    """`hybrideq doctor` says Julia is not installed; `auto` solves on torch; neither imports
    juliacall or juliapkg (importing juliacall is what would start or download Julia)."""
    env = dict(os.environ)
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE", "HYBRIDEQ_JULIA_FIRST"):
        env.pop(var, None)
    env["PATH"] = os.path.dirname(sys.executable)  # no julia, no juliaup
    env["PYTHON_JULIAPKG_PROJECT"] = str(tmp_path / "empty_env")
    code = textwrap.dedent(
        """
        import sys, torch, hybrideq as hq
        from hybrideq import cli
        cli.main(["doctor"])
        prob = hq.ODEProblem(lambda t, y, p: -y, torch.ones(2, dtype=torch.float64), (0.0, 1.0))
        sol = hq.solve(prob, hq.Tsit5())
        print("SOLVED", sol.retcode, "juliacall" in sys.modules, "juliapkg" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "Julia executable: none installed" in out.stdout
    assert "engine='auto' for a sympy model with Tsit5: torch (Julia is not installed" in out.stdout
    assert "SOLVED ReturnCode.Success False False" in out.stdout


def test_gpu_ensemble_mapping_and_out_of_place_source() -> None:
    from hybrideq.engines.julia._algorithms import julia_gpu_algorithm

    assert [julia_gpu_algorithm(s) for s in (hq.Tsit5(), hq.Vern7(), hq.Rodas5P())] == [
        "Tsit5",
        "Vern7",
        "Rodas5P",
    ]
    assert julia_gpu_algorithm(hq.Rosenbrock23()) == "Rosenbrock23"
    assert julia_gpu_algorithm(hq.Kvaerno5()) == "Kvaerno5"
    assert julia_gpu_algorithm(hq.KenCarp4()) is None and julia_gpu_algorithm(hq.EM()) is None
    # every GPU method the table names is imported by src/gpu.jl
    gpu_src = (ROOT / "julia/HybridEqEngine/src/gpu.jl").read_text()
    for entry in JULIA_SOLVERS.values():
        if entry.gpu is not None:
            assert entry.gpu in gpu_src and f'"{entry.gpu[3:]}" => {entry.gpu}' in gpu_src
    # the out-of-place f(u, p, t) the GPU kernel calls: a tuple, one entry per state
    source = _lotka_volterra().julia_source()
    oop = source.split("function f(u, p, t)")[1].split("end")[0]
    assert "return (" in oop and oop.count(",") >= 2 and _parse_julia(source)


def test_gpu_ensemble_choice_prefers_the_kernel_then_the_array_ensemble() -> None:
    from hybrideq.engines.julia._algorithms import julia_gpu_ensemble

    assert julia_gpu_ensemble(hq.Tsit5()) == ("kernel", "Tsit5")
    assert julia_gpu_ensemble(hq.Kvaerno5()) == ("kernel", "Kvaerno5")
    assert julia_gpu_ensemble(hq.DP5()) == ("array", "DP5()")
    assert julia_gpu_ensemble(hq.Rodas4()) == ("array", "Rodas4(autodiff = AutoForwardDiff())")
    kind, expr = julia_gpu_ensemble(hq.KenCarp4())  # type: ignore[misc]
    assert kind == "array" and expr.startswith("KenCarp4(autodiff = AutoForwardDiff(), nlsolve")
    # BDF, stiffness switching and SDE methods have no GPU ensemble
    for solver in (hq.QNDF(), hq.AutoTsit5(hq.Rodas5P()), hq.EM(), hq.SRIW1()):
        assert julia_gpu_ensemble(solver) is None, solver.name
    gpu_src = (ROOT / "julia/HybridEqEngine/src/gpu.jl").read_text()
    assert "EnsembleGPUArray(CUDA.CUDABackend(), 0.0)" in gpu_src
    assert "DiffEqGPU.vectorized_asolve(" in gpu_src and "DiffEqGPU.vectorized_solve(" in gpu_src


def test_generated_julia_fixture_matches_the_generator() -> None:
    """julia/HybridEqEngine/test/forced_model.jl is what SymbolicODE.julia_source() prints
    (the Julia tests run it: f vs f!, jac vs jac!, tgrad!, Rodas5P vs Vern7)."""
    t = sp.Symbol("t")
    model = SymbolicODE({x: -k * x + sp.sin(t), y: k * x - y**2}, params={k: 0.7})
    fixture = ROOT / "julia/HybridEqEngine/test/forced_model.jl"
    assert fixture.read_text() == model.julia_source(), (
        "regenerate forced_model.jl from SymbolicODE.julia_source() (see the test)"
    )
    # the out-of-place Jacobian is column-major: (J11, J21, J12, J22)
    jac = model.julia_source().split("function jac(u, p, t)")[1].split("end")[0]
    assert "return (-p_1, p_1, 0, -2 * y_2,)" in jac
    assert [str(e) for e in model.time_derivative] == ["cos(t)", "0"]


def test_kernel_solution_marks_trajectories_that_did_not_finish() -> None:
    """The Solution of a GPU kernel ensemble from the buffers Julia wrote (CPU tensors
    stand in for the CUDA ones): an unreached save slot keeps t0, a NaN state is unstable."""
    from hybrideq.engines.julia._engine import _kernel_solution

    prob = _symbolic_problem().remake(y0=torch.ones(3, 2, dtype=torch.float64))
    saveat = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    ys = torch.arange(18, dtype=torch.float64).reshape(3, 3, 2)
    ts = saveat.repeat(3, 1)
    ts[1, 2] = 0.0  # trajectory 1 never reached t = 1
    ys[2, 1, 0] = math.inf  # trajectory 2 blew up
    sol = _kernel_solution(prob, hq.Tsit5(), ys, ts, saveat)
    assert sol.retcodes.tolist() == [
        int(hq.ReturnCode.Success),
        int(hq.ReturnCode.Unstable),
        int(hq.ReturnCode.Unstable),
    ]
    assert sol.nsaved is not None and sol.nsaved.tolist() == [3, 2, 3]
    assert sol.y.data_ptr() == ys.data_ptr()  # the buffer Julia wrote is the solution
    assert bool(torch.isnan(sol.y[1, 2]).all()) and sol.y[1, 1].tolist() == [8.0, 9.0]
    assert sol.t.shape == (3, 3) and math.isnan(float(sol.t[1, 2]))
    assert int(sol.stats.nf[0]) == -1
    full = _kernel_solution(prob, hq.Tsit5(), ys[:1].clone(), saveat.repeat(1, 1), saveat)
    assert full.nsaved is None and full.t.shape == (3,)


@pytest.mark.julia
@pytest.mark.gpu
def test_julia_gpu_ensemble_matches_the_torch_engine() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = _lotka_volterra()
    y0 = torch.tensor([[0.44, 4.6], [1.0, 1.0], [2.0, 0.5]], device="cuda")
    prob = model.problem(y0, (0.0, 3.0), dtype=torch.float32)
    t = torch.linspace(0, 3, 7, device="cuda")
    jl = hq.solve(prob, hq.Tsit5(), saveat=t, rtol=1e-6, atol=1e-6, engine="julia")
    th = hq.solve(prob, hq.Tsit5(), saveat=t, rtol=1e-6, atol=1e-6, engine="torch")
    assert jl.y.device.type == "cuda"
    torch.testing.assert_close(jl.y, th.y, rtol=1e-3, atol=1e-4)


@pytest.mark.julia
@pytest.mark.gpu
def test_julia_gpu_ensembles_array_and_em_have_the_right_numbers() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    # EnsembleGPUArray (Rodas4 has no GPU kernel): the same answers as the torch engine
    model = _lotka_volterra()
    y0 = torch.tensor([[0.44, 4.6], [1.0, 1.0]], device="cuda", dtype=torch.float64)
    prob = model.problem(y0, (0.0, 3.0))
    t = torch.linspace(0, 3, 7, device="cuda", dtype=torch.float64)
    jl = hq.solve(prob, hq.Rodas4(), saveat=t, rtol=1e-8, atol=1e-10, engine="julia")
    th = hq.solve(prob, hq.Rodas4(), saveat=t, rtol=1e-8, atol=1e-10, engine="torch")
    torch.testing.assert_close(jl.y, th.y, rtol=1e-5, atol=1e-7)
    # GPUEM on geometric Brownian motion: E[x(1)] = exp(mu) within 4 standard errors
    mu, sigma = sp.symbols("mu sigma")
    gbm = SymbolicSDE({x: mu * x}, {x: sigma * x}, params={mu: 0.5, sigma: 0.2})
    sde = gbm.problem(torch.ones(8192, 1, device="cuda"), (0.0, 1.0), dtype=torch.float32)
    sol = hq.solve(sde, hq.EM(), dt=2**-8, saveat=[0.0, 1.0], seed=1, engine="julia")
    final = sol.y[:, -1, 0].double()
    se = float(final.std()) / math.sqrt(final.numel())
    assert abs(float(final.mean()) - math.exp(0.5)) < 4 * se + 2e-3  # + EM's weak error
    var = math.exp(1.0) * (math.exp(0.04) - 1)  # Var[x(1)] of GBM
    assert abs(float(final.var()) - var) < 0.15 * var


# --------------------------------------------------------------------------- Python side of solve


class _RecordingEngine:
    """A recording stand-in for the HybridEqEngine Julia module (NOT Julia, NOT a solver of
    record): it records what the Python side sends, and for Python-callback problems it
    calls the callbacks the way Julia would (output array first, NumPy arrays standing in
    for juliacall's wrappers) with fixed RK4 steps, so that the callback plumbing is
    exercised end to end. Nothing here checks Julia's numbers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def algorithm(self, expr: str) -> str:
        self.calls.append(("algorithm", expr))
        return expr

    def load_model(self, source: str) -> str:
        self.calls.append(("load_model", source))
        return source

    def model_problem(self, module: str, u0: np.ndarray, tspan: tuple, p: object) -> dict:
        self.calls.append(("model_problem", (u0, tspan, p)))
        return {"kind": "model", "u0": u0, "tspan": tspan}

    def python_problem(self, f, u0, tspan, p, jac=None, vjp=None, vjp_p=None, mass_matrix=None):
        self.calls.append(("python_problem", {"jac": jac, "vjp": vjp, "vjp_p": vjp_p}))
        return {"kind": "python", "f": f, "u0": u0, "tspan": tspan, "p": p, "vjp": vjp}

    def _rk4(self, prob: dict, saveat: np.ndarray) -> np.ndarray:
        u = np.array(prob["u0"], dtype=float)
        p = prob["p"]
        out, t, h = [], prob["tspan"][0], 1e-3

        def rhs(tt: float, uu: np.ndarray) -> np.ndarray:
            du = np.zeros_like(uu)
            prob["f"](du, uu, p, tt)
            return du

        for ts in saveat:
            while t < ts - 1e-12:
                dt = min(h, ts - t)
                k1 = rhs(t, u)
                k2 = rhs(t + dt / 2, u + dt / 2 * k1)
                k3 = rhs(t + dt / 2, u + dt / 2 * k2)
                k4 = rhs(t + dt, u + dt * k3)
                u, t = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + dt
            out.append(u.copy())
        return np.asfortranarray(np.array(out).T)  # Julia's n × T

    def solve_exported(self, prob: dict, alg: str, **kw: object):
        from types import SimpleNamespace

        self.calls.append(("solve_exported", kw))
        saveat = np.asarray(kw["saveat"])
        u = self._rk4(prob, saveat) if prob["kind"] == "python" else np.zeros((2, len(saveat)))
        stats = {"nf": 4, "nw": 0, "nsolve": 0, "njacs": 0, "nnonliniter": 0}
        return SimpleNamespace(
            t=saveat.copy(), u=u, retcode="Success", stats=stats | {"naccept": 1, "nreject": 0}
        )

    def solve_dense(self, prob: dict, alg: str, **kw: object):
        from types import SimpleNamespace

        self.calls.append(("solve_dense", kw))
        grid = np.linspace(prob["tspan"][0], prob["tspan"][1], 11)
        export = self.solve_exported(prob, alg, saveat=grid)
        return SimpleNamespace(exported=export, sol=prob)

    def interpolate_exported(self, sol: dict, ts: np.ndarray) -> np.ndarray:
        self.calls.append(("interpolate_exported", np.asarray(ts).copy()))
        return self._rk4(sol, np.asarray(ts))

    def ensemble_exported(self, prob, alg, u0s, ps, threads, **kw):
        self.calls.append(("ensemble_exported", (u0s, ps, threads)))
        outs = []
        for b in range(u0s.shape[1]):
            one = dict(prob, u0=u0s[:, b], p=prob["p"] if ps is None else ps[:, b])
            outs.append(self.solve_exported(one, alg, **kw))
        outs[-1].retcode = "MaxIters"
        outs[-1].u = outs[-1].u[:, :2]
        outs[-1].t = outs[-1].t[:2]
        return outs

    # GPU ensembles: what DLPack.from_dlpack does in Julia is done here with
    # torch.from_dlpack (a view of the same device memory); the decay model x' = -k x,
    # y' = k x is "solved" by its exact solution, and the last trajectory stops after two
    # saves (its remaining time slots keep t0, as DiffEqGPU's kernel leaves them)
    def enable_gpu(self) -> bool:
        return True

    def seval(self, expr: str) -> str:
        return expr

    def ensemble_kernel(self, ys, ts, module, u0s, ps, n, np_, tspan, alg, **kw):
        U, P = torch.from_dlpack(u0s), torch.from_dlpack(ps)
        Y, Tm = torch.from_dlpack(ys), torch.from_dlpack(ts)
        self.calls.append(
            (
                "ensemble_kernel",
                {
                    "ptrs": (u0s.data_ptr(), U.data_ptr(), ys.data_ptr(), Y.data_ptr()),
                    "shapes": (tuple(U.shape), tuple(P.shape), n, np_, alg),
                    "contiguous": (u0s.is_contiguous(), ps.is_contiguous()),
                    "kw": kw,
                },
            )
        )
        times = torch.as_tensor(np.asarray(kw["saveat"]), dtype=Y.dtype, device=Y.device)
        decay = torch.exp(-P[:, :1] * times)  # (B, T)
        Y[..., 0] = U[:, :1] * decay
        Y[..., 1] = U[:, 1:] + U[:, :1] * (1 - decay)
        Tm[...] = times
        Tm[-1, 2:] = tspan[0]

    def ensemble_em(self, ys, ts, module, u0s, ps, n, np_, tspan, **kw):
        # records the call; writes y0 at every save time (no noise: not a solver)
        self.calls.append(("ensemble_em", {"kw": kw, "ptrs": (ys.data_ptr(), ts.data_ptr())}))
        Y, Tm = torch.from_dlpack(ys), torch.from_dlpack(ts)
        Y[...] = torch.from_dlpack(u0s)[:, None, :]
        Tm[...] = torch.as_tensor(np.asarray(kw["saveat"]), dtype=Tm.dtype, device=Tm.device)

    def ensemble_array(self, module, u0s, ps, n, np_, tspan, alg, **kw):
        from types import SimpleNamespace

        self.calls.append(("ensemble_array", {"alg": alg, "kw": kw}))
        U, P = torch.from_dlpack(u0s).cpu().double(), torch.from_dlpack(ps).cpu().double()
        saveat = np.asarray(kw["saveat"])
        outs = []
        for b in range(U.shape[0]):
            d = np.exp(-float(P[b, 0]) * saveat)
            u = np.stack([float(U[b, 0]) * d, float(U[b, 1]) + float(U[b, 0]) * (1 - d)])
            stats = {"nf": 7, "nw": 0, "nsolve": 0, "njacs": 0, "nnonliniter": 0}
            outs.append(
                SimpleNamespace(
                    t=saveat.copy(),
                    u=np.asfortranarray(u),
                    retcode="Success",
                    stats=stats | {"naccept": 3, "nreject": 0},
                )
            )
        return outs

    def ensemble_dense(self, prob, alg, u0s, ps, threads, **kw):
        from types import SimpleNamespace

        self.calls.append(("ensemble_dense", (u0s, ps, threads)))
        grid = np.linspace(prob["tspan"][0], prob["tspan"][1], 11)
        sols = [
            dict(prob, u0=u0s[:, b], p=prob["p"] if ps is None else ps[:, b])
            for b in range(u0s.shape[1])
        ]
        exported = [self.solve_exported(one, alg, saveat=grid) for one in sols]
        exported[-1].retcode = "MaxIters"
        exported[-1].u = exported[-1].u[:, :2]
        exported[-1].t = exported[-1].t[:2]
        return SimpleNamespace(exported=exported, sols=sols)

    def adjoint_exported(self, prob, alg, sense, t, dLdu, **kw):
        from types import SimpleNamespace

        self.calls.append(("adjoint_exported", (sense, np.asarray(t), dLdu, kw)))
        return SimpleNamespace(du0=np.array([1.0, 2.0]), dp=np.array([3.0]), retcode="Success")


@pytest.fixture
def recording_engine(monkeypatch: pytest.MonkeyPatch) -> _RecordingEngine:
    import hybrideq.engines.julia as jpkg
    from hybrideq.engines.julia import _engine

    stand_in = _RecordingEngine()
    monkeypatch.setattr(jpkg, "require_julia", lambda *a, **k: "/stand-in/julia")
    monkeypatch.setattr(_engine, "load_engine", lambda: stand_in)
    return stand_in


def test_solve_julia_python_side_with_a_recording_stand_in(
    recording_engine: _RecordingEngine,
) -> None:
    """Argument translation of solve(..., engine='julia'), with the recording stand-in."""
    k_ = torch.tensor([0.5], dtype=torch.float64)
    prob = hq.ODEProblem(
        lambda t, u, p: -p * u, torch.tensor([1.0, 2.0], dtype=torch.float64), (0.0, 1.0), k_
    )
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    sol = hq.solve(prob, hq.Rodas5P(), saveat=t, rtol=1e-7, atol=1e-9, engine="julia")
    names = [c[0] for c in recording_engine.calls]
    assert names[:3] == ["algorithm", "python_problem", "solve_exported"]
    assert recording_engine.calls[0][1] == "Rodas5P(autodiff = AutoFiniteDiff())"
    hooks = recording_engine.calls[1][1]
    assert isinstance(hooks, dict) and hooks["jac"] is None and callable(hooks["vjp"])
    kw = recording_engine.calls[2][1]
    assert isinstance(kw, dict) and kw["reltol"] == 1e-7 and kw["abstol"] == 1e-9
    # the torch callback, called the way Julia calls it, integrates the right equation
    expected = torch.stack([torch.exp(-0.5 * t), 2 * torch.exp(-0.5 * t)], 1)
    torch.testing.assert_close(sol.y, expected, rtol=1e-10, atol=1e-12)
    assert sol.retcode == hq.ReturnCode.Success and int(sol.stats.nf) == 4
    # a sympy model goes as generated Julia source, with ForwardDiff for the solver
    recording_engine.calls.clear()
    hq.solve(_symbolic_problem(), hq.Rodas5P(), saveat=t, engine="julia")
    assert recording_engine.calls[0] == ("algorithm", "Rodas5P(autodiff = AutoForwardDiff())")
    assert recording_engine.calls[1][0] == "load_model"
    assert "function f!(du, u, p, t)" in str(recording_engine.calls[1][1])


def test_solve_julia_batch_and_gradients_with_a_recording_stand_in(
    recording_engine: _RecordingEngine,
) -> None:
    """Ensembles (per-sample p, a trajectory that stopped early) and the adjoint's
    arguments and results, with the recording stand-in (not Julia)."""
    y0 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    p = torch.tensor([[0.1], [0.2], [0.3]], dtype=torch.float64)
    prob = hq.ODEProblem(lambda t, u, q: -q * u, y0, (0.0, 1.0), p)
    t = torch.linspace(0, 1, 4, dtype=torch.float64)
    sol = hq.solve(prob, hq.Tsit5(), saveat=t, engine="julia")
    u0s, ps, threads = recording_engine.calls[-4][1]  # type: ignore[misc]
    assert u0s.shape == (2, 3) and np.shares_memory(u0s, y0.numpy()) and threads is False
    assert ps.shape == (1, 3) and ps[0].tolist() == [0.1, 0.2, 0.3]
    assert sol.y.shape == (3, 4, 2) and sol.nsaved is not None
    assert sol.nsaved.tolist() == [4, 4, 2] and bool(torch.isnan(sol.y[2, 2:]).all())
    assert sol.retcodes.tolist() == [1, 1, int(hq.ReturnCode.MaxIters)]
    torch.testing.assert_close(sol.y[1, -1], y0[1] * torch.exp(torch.tensor(-0.2)))
    # gradients: the adjoint gets ∂L/∂u as Julia's n × T and a SciMLSensitivity expression
    y0g = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    pg = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    single = hq.ODEProblem(lambda t, u, q: -q * u, y0g, (0.0, 1.0), pg)
    out = hq.solve(single, hq.Tsit5(), saveat=t, engine="julia", sensealg=hq.GaussAdjoint())
    (out.y * torch.arange(8.0, dtype=torch.float64).reshape(4, 2)).sum().backward()
    name, (sense, ts, dLdu, kw) = recording_engine.calls[-1]  # type: ignore[misc]
    assert name == "adjoint_exported" and sense.startswith("GaussAdjoint(autojacvec = ZygoteVJP()")
    assert dLdu.shape == (2, 4) and dLdu.flags.f_contiguous and dLdu[1, 3] == 7.0
    assert ts.tolist() == t.tolist() and "saveat" not in kw
    assert y0g.grad is not None and y0g.grad.tolist() == [1.0, 2.0]
    assert pg.grad is not None and pg.grad.tolist() == [3.0]


@pytest.mark.julia
def test_julia_sde_ensemble_has_the_gbm_moments() -> None:
    """E[X_T] = x0 e^{μT}; 4000 EM paths must land within 4 standard errors."""
    mu, sigma = sp.symbols("mu sigma")
    gbm = SymbolicSDE({x: mu * x}, {x: sigma * x}, params={mu: 0.5, sigma: 0.3})
    prob = gbm.problem(torch.ones(4000, 1, dtype=torch.float64), (0.0, 1.0))
    sol = hq.solve(prob, hq.EM(), dt=1e-3, saveat=[1.0], engine="julia")
    end = sol.y[:, -1, 0]
    exact_mean = float(np.exp(0.5))
    exact_sd = exact_mean * float(np.sqrt(np.exp(0.09) - 1))
    assert abs(float(end.mean()) - exact_mean) < 4 * exact_sd / np.sqrt(4000)
    assert abs(float(end.std()) / exact_sd - 1) < 0.1


def test_batched_gradients_run_one_adjoint_per_sample_with_a_recording_stand_in(
    recording_engine: _RecordingEngine,
) -> None:
    """With the recording stand-in (not Julia): a batch with gradients is one
    differentiable solve and one adjoint call per sample; shared p gradients add up."""
    y0 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    y0.requires_grad_(True)
    p = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    prob = hq.ODEProblem(lambda t, u, q: -q * u, y0, (0.0, 1.0), p)
    t = torch.linspace(0, 1, 4, dtype=torch.float64)
    sol = hq.solve(prob, hq.Tsit5(), saveat=t, engine="julia", sensealg=hq.QuadratureAdjoint())
    assert sol.y.shape == (3, 4, 2) and sol.nsaved is None and sol.t.shape == (4,)
    torch.testing.assert_close(sol.y[2, -1], y0[2].detach() * torch.exp(torch.tensor(-0.5)))
    sol.y.sum().backward()
    adjoints = [c for c in recording_engine.calls if c[0] == "adjoint_exported"]
    assert len(adjoints) == 3
    assert y0.grad is not None and y0.grad.tolist() == [[1.0, 2.0]] * 3
    assert p.grad is not None and p.grad.tolist() == [9.0]  # 3.0 from each sample


@pytest.mark.julia
def test_julia_batched_gradients_match_the_torch_engine() -> None:
    t = torch.linspace(0, 2, 5, dtype=torch.float64)

    def grads(engine: str) -> tuple[torch.Tensor, torch.Tensor]:
        y0 = torch.tensor([[0.44, 4.6], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
        p = torch.tensor([1.3, 0.9, 0.8, 1.8], dtype=torch.float64, requires_grad=True)
        prob = hq.ODEProblem(_lv, y0, (0.0, 2.0), p)
        sol = hq.solve(prob, hq.Tsit5(), saveat=t, rtol=1e-10, atol=1e-12, engine=engine)
        sol.y.pow(2).sum().backward()
        assert y0.grad is not None and p.grad is not None
        return y0.grad, p.grad

    for a, b in zip(grads("julia"), grads("torch"), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.julia
def test_pysr_runs_in_the_julia_engines_session() -> None:
    if importlib.util.find_spec("pysr") is None:
        pytest.skip("needs PySR (pip install 'hybrideq[symbolic]')")
    from hybrideq.engines.julia._engine import load_engine
    from hybrideq.symbolic import PySR, discover

    load_engine()
    tt = np.linspace(0, 2, 40)
    model = discover(
        tt,
        np.exp(-tt)[:, None],
        -np.exp(-tt)[:, None],
        method=PySR(niterations=5, random_state=0, deterministic=True),
        states=["u"],
    )
    assert model.equations
    import juliacall

    assert bool(juliacall.Main.seval("isdefined(Main, :HybridEqEngine)"))  # one Julia session
    sol = hq.solve(_symbolic_problem(), hq.Tsit5(), saveat=[1.0], engine="julia")
    assert sol.retcode == hq.ReturnCode.Success


def test_julia_dense_output_with_a_recording_stand_in(recording_engine: _RecordingEngine) -> None:
    """Without saveat the Julia solution is kept and sol(t) asks it (recording stand-in)."""
    prob = hq.ODEProblem(
        lambda t, u, q: -q * u,
        torch.tensor([1.0, 2.0], dtype=torch.float64),
        (0.0, 1.0),
        torch.tensor([0.5], dtype=torch.float64),
    )
    sol = hq.solve(prob, hq.Tsit5(), engine="julia")
    assert [c[0] for c in recording_engine.calls if c[0].startswith("solve")] == [
        "solve_dense",
        "solve_exported",
    ]
    ts = torch.tensor([0.25, 0.75], dtype=torch.float64)
    torch.testing.assert_close(
        sol(ts), torch.exp(-0.5 * ts)[:, None] * torch.tensor([1.0, 2.0], dtype=torch.float64)
    )
    assert sol(0.5).shape == (2,)
    with pytest.raises(ValueError, match=r"t must lie in the solved span \[0.0, 1.0\]"):
        sol(1.5)
    # a batch keeps one Julia solution per sample; the stand-in's last one stopped early
    y0b = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    pb = torch.tensor([[0.1], [0.2], [0.3]], dtype=torch.float64)
    batch = prob.remake(y0=y0b, p=pb)
    sb = hq.solve(batch, hq.Tsit5(), engine="julia")
    assert "ensemble_dense" in [c[0] for c in recording_engine.calls]
    assert sb.nsaved is not None and sb.nsaved.tolist() == [11, 11, 2]
    per_sample = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.0, 0.05]], dtype=torch.float64)
    out = sb(per_sample)
    assert out.shape == (3, 2, 2)
    for i in range(3):
        expected = torch.exp(-pb[i] * per_sample[i])[:, None] * y0b[i]
        torch.testing.assert_close(out[i], expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sb(0.05)[1], torch.exp(-0.2 * torch.tensor(0.05)).double() * y0b[1])
    with pytest.raises(ValueError, match=r"t must lie in sample 2's solved span \[0.0, 0.1\]"):
        sb(ts)  # the last sample stopped at t = 0.1
    with pytest.raises(ValueError, match="per-sample times need shape"):
        sb(torch.zeros(2, 2, dtype=torch.float64))


@pytest.mark.gpu
def test_gpu_ensemble_python_side_with_a_recording_stand_in(
    recording_engine: _RecordingEngine,
) -> None:
    """CUDA tensors cross to the (stand-in) Julia side as themselves and come back as the
    buffers it wrote: no copies. Runs on a CUDA machine; the stand-in is not Julia (it
    writes the decay model's exact solution through torch.from_dlpack views)."""
    model = SymbolicODE({x: -k * x, y: k * x}, params={k: 0.5})
    y0 = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.5, 0.5]], device="cuda")
    prob = model.problem(y0, (0.0, 1.0), dtype=torch.float32)
    t = torch.linspace(0, 1, 5, device="cuda")
    sol = hq.solve(prob, hq.Tsit5(), saveat=t, rtol=1e-5, atol=1e-7, engine="julia")
    name, rec = recording_engine.calls[-1]
    assert name == "ensemble_kernel" and isinstance(rec, dict)
    y0_ptr, dl_ptr, ys_ptr, ys_dl_ptr = rec["ptrs"]
    assert dl_ptr == y0_ptr and ys_dl_ptr == ys_ptr  # DLPack views: the same memory
    assert y0_ptr == prob.y0.data_ptr()  # y0 itself crossed, no copy
    assert rec["shapes"] == ((3, 2), (3, 1), 2, 1, "Tsit5") and rec["contiguous"] == (True, True)
    kw = rec["kw"]
    assert kw["T"] == "Float32" and kw["abstol"] == 1e-7 and kw["reltol"] == 1e-5
    assert sol.y.device.type == "cuda" and sol.y.data_ptr() == ys_ptr and sol.y.shape == (3, 5, 2)
    d = torch.exp(-0.5 * t)
    torch.testing.assert_close(sol.y[1, :, 0], 2.0 * d)
    torch.testing.assert_close(sol.y[1, :, 1], 1.0 + 2.0 * (1 - d))
    assert sol.retcodes.tolist() == [1, 1, int(hq.ReturnCode.Unstable)]
    assert sol.nsaved is not None and sol.nsaved.tolist() == [5, 5, 2]
    assert bool(torch.isnan(sol.y[2, 2:]).all())

    # a solver without a GPU kernel runs as EnsembleGPUArray; results return to the device
    sol2 = hq.solve(prob, hq.Rodas4(), saveat=t, engine="julia")
    name, rec = recording_engine.calls[-1]
    assert name == "ensemble_array" and isinstance(rec, dict)
    assert rec["alg"] == "Rodas4(autodiff = AutoForwardDiff())"
    assert sol2.y.device.type == "cuda" and sol2.y.dtype == torch.float32
    torch.testing.assert_close(sol2.y[1, :, 0], 2.0 * d)
    assert int(sol2.stats.nf[0]) == 7

    # what GPU ensembles refuse, and say so
    with pytest.raises(ValueError, match="saveat"):
        hq.solve(prob, hq.Tsit5(), engine="julia")
    with pytest.raises(ValueError, match="dtmax"):
        hq.solve(prob, hq.Tsit5(), saveat=t, dtmax=0.1, engine="julia")
    with pytest.raises(ValueError, match="torch engine"):
        hq.solve(prob, hq.QNDF(), saveat=t, engine="julia")
    with pytest.raises(ValueError, match="gradients"):
        hq.solve(prob.remake(y0=y0.clone().requires_grad_()), hq.Tsit5(), saveat=t, engine="julia")
    torch_fn = hq.ODEProblem(lambda tt, u, q: -u, y0, (0.0, 1.0))
    with pytest.raises(ValueError, match="sympy-defined"):
        hq.solve(torch_fn, hq.Tsit5(), saveat=t, engine="julia")


@pytest.mark.gpu
def test_gpu_sde_ensemble_python_side_with_a_recording_stand_in(
    recording_engine: _RecordingEngine,
) -> None:
    """A sympy SDE with diagonal noise on CUDA goes to the GPUEM kernel with its dt, save
    times and a seed (drawn from torch's generator when none is given), and comes back in
    the buffers it was handed. The stand-in is not Julia: it writes y0 at every time."""
    mu, sigma = sp.symbols("mu sigma")
    gbm = SymbolicSDE({x: mu * x}, {x: sigma * x}, params={mu: 0.5, sigma: 0.2})
    prob = gbm.problem(torch.ones(4, 1, device="cuda"), (0.0, 1.0), dtype=torch.float32)
    t = torch.linspace(0, 1, 3, device="cuda")
    sol = hq.solve(prob, hq.EM(), dt=0.01, saveat=t, seed=7, engine="julia")
    name, rec = recording_engine.calls[-1]
    assert name == "ensemble_em" and isinstance(rec, dict)
    assert rec["kw"]["seed"] == 7 and rec["kw"]["dt"] == 0.01 and rec["kw"]["T"] == "Float32"
    assert sol.y.data_ptr() == rec["ptrs"][0] and sol.y.shape == (4, 3, 1)
    assert sol.success and bool((sol.y == 1.0).all())
    seeds = []
    for _ in range(2):
        torch.manual_seed(3)
        hq.solve(prob, hq.EM(), dt=0.01, saveat=t, engine="julia")
        seeds.append(recording_engine.calls[-1][1]["kw"]["seed"])  # type: ignore[index]
    assert seeds[0] == seeds[1]  # reproducible under torch.manual_seed
    with pytest.raises(ValueError, match="dt="):
        hq.solve(prob, hq.EM(), saveat=t, engine="julia")
    with pytest.raises(ValueError, match="GPUEM"):
        hq.solve(prob, hq.SRIW1(), dt=0.01, saveat=t, engine="julia")
    s1 = sp.Symbol("s1")
    general = SymbolicSDE({x: -x, y: -y}, [[s1 * x, 0.0], [0.0, s1]], params={s1: 0.1})
    gprob = general.problem(torch.ones(2, 2, device="cuda"), (0.0, 1.0), dtype=torch.float32)
    with pytest.raises(ValueError, match="diagonal noise"):
        hq.solve(gprob, hq.EM(), dt=0.01, saveat=t, engine="julia")
