"""Misuse raises an exception that names the argument; failures are return codes.

Decision 5 of ARCHITECTURE.md: wrong shapes, dtypes, tolerances, spans or solvers raise
``ValueError``/``TypeError`` (``RuntimeError`` for a missing engine) with a message that
names the argument and the fix. A solve that hits ``maxiters``, a too-small step or a
non-finite state returns ``ReturnCode.MaxIters``/``DtLessThanMin``/``Unstable`` per sample
and keeps everything computed so far; unreached save times hold NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import hybrideq as hq

F64 = torch.float64
F32 = torch.float32


def decay(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
    return -y


def square(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
    """``y' = y²``: ``y = y0 / (1 − y0 t)`` blows up at ``t = 1/y0`` for ``y0 > 0``."""
    return y * y


def ones(n: int = 2, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.ones(n, dtype=dtype)


def prob(**kw: object) -> hq.ODEProblem:
    args: dict[str, object] = {"f": decay, "y0": ones(), "tspan": (0.0, 1.0)}
    args.update(kw)
    return hq.ODEProblem(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- problem validation


def test_tspan_dtype_differs_from_y0() -> None:
    with pytest.raises(TypeError, match=r"tspan\[0\].*dtype"):
        hq.ODEProblem(decay, ones(), (torch.tensor(0.0, dtype=F32), 1.0))
    with pytest.raises(TypeError, match=r"tspan\[1\].*dtype"):
        hq.ODEProblem(decay, ones(dtype=F32), (0.0, torch.tensor(1.0, dtype=F64)))


def test_per_sample_tspan_of_the_wrong_shape() -> None:
    y0 = torch.ones(3, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"tspan\[1\].*\(3,\)"):
        hq.ODEProblem(decay, y0, (0.0, torch.ones(2, dtype=F64)))
    with pytest.raises(ValueError, match=r"tspan\[0\]"):
        hq.ODEProblem(decay, y0, (torch.zeros(3, 1, dtype=F64), 1.0))
    # Per-sample spans need a batch.
    with pytest.raises(ValueError, match=r"tspan\[1\]"):
        hq.ODEProblem(decay, ones(), (0.0, torch.ones(2, dtype=F64)))


def test_y0_with_nan_or_inf() -> None:
    with pytest.raises(ValueError, match=r"y0.*NaN"):
        hq.ODEProblem(decay, torch.tensor([1.0, math.nan], dtype=F64), (0.0, 1.0))
    with pytest.raises(ValueError, match="y0"):
        hq.ODEProblem(decay, torch.tensor([math.inf], dtype=F64), (0.0, 1.0))


def test_integer_y0() -> None:
    with pytest.raises(TypeError, match=r"y0.*int64"):
        hq.ODEProblem(decay, torch.tensor([1, 2]), (0.0, 1.0))
    with pytest.raises(TypeError, match="y0"):
        hq.ODEProblem(decay, np.array([1, 2]), (0.0, 1.0))


def test_empty_span() -> None:
    with pytest.raises(ValueError, match=r"tspan.*empty"):
        hq.ODEProblem(decay, ones(), (1.0, 1.0))
    # One sample with an empty span is an error too.
    with pytest.raises(ValueError, match="tspan"):
        hq.ODEProblem(
            decay, torch.ones(2, 1, dtype=F64), (0.0, torch.tensor([1.0, 0.0], dtype=F64))
        )


def test_p_of_another_dtype() -> None:
    with pytest.raises(TypeError, match="p has dtype"):
        hq.ODEProblem(decay, ones(), (0.0, 1.0), p=torch.tensor(2.0, dtype=F32))


def test_f_not_callable() -> None:
    with pytest.raises(TypeError, match="f must be callable"):
        hq.ODEProblem(torch.ones(2), ones(), (0.0, 1.0))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- solve validation


@pytest.mark.parametrize("bad", [0.0, -1e-6, math.nan, math.inf])
@pytest.mark.parametrize("name", ["rtol", "atol"])
def test_non_positive_tolerances(name: str, bad: float) -> None:
    with pytest.raises(ValueError, match=name):
        hq.solve(prob(), hq.Tsit5(), **{name: bad})  # type: ignore[arg-type]


def test_per_component_tolerance_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="atol"):
        hq.solve(prob(), hq.Tsit5(), atol=torch.tensor([1e-6, 1e-6, 1e-6], dtype=F64))
    with pytest.raises(ValueError, match="rtol"):
        hq.solve(prob(), hq.Tsit5(), rtol=torch.tensor([1e-6, -1.0], dtype=F64))


def test_saveat_outside_the_span() -> None:
    with pytest.raises(ValueError, match=r"saveat.*outside"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([0.0, 0.5, 1.5], dtype=F64))
    with pytest.raises(ValueError, match=r"saveat.*outside"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([-0.1, 0.5], dtype=F64))
    # Per sample: 0.8 lies outside the second sample's span [0, 0.5].
    batch = prob(y0=torch.ones(2, 1, dtype=F64), tspan=(0.0, torch.tensor([1.0, 0.5], dtype=F64)))
    with pytest.raises(ValueError, match=r"saveat.*outside"):
        hq.solve(batch, hq.Tsit5(), saveat=torch.tensor([0.2, 0.8], dtype=F64))


def test_saveat_not_monotone() -> None:
    with pytest.raises(ValueError, match=r"saveat.*monotone"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([0.0, 0.6, 0.4], dtype=F64))
    with pytest.raises(ValueError, match=r"saveat.*monotone"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([0.2, 0.2], dtype=F64))
    # Increasing times for a backward span.
    with pytest.raises(ValueError, match=r"saveat.*monotone"):
        hq.solve(prob(tspan=(1.0, 0.0)), hq.Tsit5(), saveat=torch.tensor([0.2, 0.4], dtype=F64))


def test_saveat_of_the_wrong_shape_or_dtype() -> None:
    with pytest.raises(ValueError, match="saveat"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.zeros(2, 3, dtype=F64))
    with pytest.raises(TypeError, match=r"saveat.*dtype"):
        hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([0.5], dtype=F32))
    with pytest.raises(TypeError, match="saveat"):
        hq.solve(prob(), hq.Tsit5(), saveat=0.1)


@pytest.mark.parametrize(
    ("solver", "kw"), [(hq.Euler(), {}), (hq.RK4(), {}), (hq.Tsit5(), {"adaptive": False})]
)
def test_fixed_steps_without_dt(solver: hq.AbstractSolver, kw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=rf"{solver.name}.*dt="):
        hq.solve(prob(), solver, **kw)  # type: ignore[arg-type]


def test_adaptive_rk4() -> None:
    with pytest.raises(ValueError, match=r"RK4.*adaptive"):
        hq.solve(prob(), hq.RK4(), adaptive=True, dt=0.1)


@pytest.mark.parametrize("bad", [0.0, math.nan, math.inf])
def test_bad_dt(bad: float) -> None:
    with pytest.raises(ValueError, match="dt"):
        hq.solve(prob(), hq.Euler(), dt=bad)


def test_f_returns_the_wrong_shape() -> None:
    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.cat([y, y])

    with pytest.raises(ValueError, match=r"f returned shape \(4,\).*\(2,\)"):
        hq.solve(prob(f=f), hq.Tsit5())

    def g(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return y.sum(-1)  # drops the state axis of a batch

    with pytest.raises(ValueError, match="f returned shape"):
        hq.solve(prob(f=g, y0=torch.ones(3, 2, dtype=F64)), hq.Tsit5())


def test_f_returns_another_dtype() -> None:
    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return -y.float()

    with pytest.raises(TypeError, match="f returned dtype"):
        hq.solve(prob(f=f), hq.Tsit5())


def test_solver_class_instead_of_instance() -> None:
    with pytest.raises(TypeError, match=r"Tsit5\(\)"):
        hq.solve(prob(), hq.Tsit5)  # type: ignore[arg-type]


def test_solver_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="solver"):
        hq.solve(prob(), "Tsit5")  # type: ignore[arg-type]


def test_sensealg_class_instead_of_instance() -> None:
    with pytest.raises(TypeError, match="sensealg"):
        hq.solve(prob(), hq.Tsit5(), sensealg=hq.InterpolatingAdjoint)  # type: ignore[arg-type]


def test_julia_engine_missing() -> None:
    with pytest.raises(RuntimeError, match="hybrideq julia install"):
        hq.solve(prob(), hq.Tsit5(), engine="julia")


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="engine"):
        hq.solve(prob(), hq.Tsit5(), engine="jax")


def test_bad_maxiters() -> None:
    with pytest.raises(ValueError, match="maxiters"):
        hq.solve(prob(), hq.Tsit5(), maxiters=0)


# --------------------------------------------------------------------------- return codes


def test_maxiters_keeps_the_computed_part() -> None:
    ts = torch.linspace(0.0, 10.0, 201, dtype=F64)
    y0 = torch.tensor([1.0, -2.0], dtype=F64)
    sol = hq.solve(
        prob(y0=y0, tspan=(0.0, 10.0)), hq.Tsit5(), saveat=ts, maxiters=5, rtol=1e-6, atol=1e-9
    )
    assert sol.retcode == hq.ReturnCode.MaxIters
    assert not sol.success
    assert int(sol.stats.naccept) + int(sol.stats.nreject) == 5
    reached = torch.isfinite(sol.y).all(-1)
    n_ok = int(reached.sum())
    assert n_ok >= 2  # t0 and at least one more save time
    assert bool(reached[:n_ok].all()), "finite values form a prefix"
    assert bool(torch.isnan(sol.y[n_ok:]).all()), "save times never reached are NaN"
    exact = y0[None, :] * torch.exp(-ts[:n_ok])[:, None]
    torch.testing.assert_close(sol.y[:n_ok], exact, rtol=1e-5, atol=1e-9)


def test_maxiters_per_sample() -> None:
    """In a batch only the sample that needs more steps stops with MaxIters."""
    k = torch.tensor([0.1, 100.0], dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return -p[:, None] * y + torch.sin(50 * t)[:, None] * (p[:, None] > 1)

    y0 = torch.ones(2, 1, dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(f, y0, (0.0, 1.0), k),
        hq.Tsit5(),
        maxiters=30,
        rtol=1e-6,
        atol=1e-9,
        saveat=torch.tensor([1.0], dtype=F64),
    )
    assert sol.retcode == [hq.ReturnCode.Success, hq.ReturnCode.MaxIters]
    torch.testing.assert_close(
        sol.y[0, 0, 0], torch.tensor(math.exp(-0.1), dtype=F64), rtol=1e-5, atol=0
    )
    assert bool(torch.isnan(sol.y[1, 0, 0]))


def test_finite_time_blow_up_in_a_batch() -> None:
    """``y' = y²`` on ``[0, 2]``: ``y0 = 1`` blows up at ``t = 1``; ``y0 < 0`` does not."""
    y0 = torch.tensor([[1.0], [-1.0], [-0.5]], dtype=F64)
    ts = torch.linspace(0.0, 2.0, 9, dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(square, y0, (0.0, 2.0)), hq.Tsit5(), saveat=ts, rtol=1e-8, atol=1e-10
    )
    codes = sol.retcode
    assert codes[0] in (hq.ReturnCode.DtLessThanMin, hq.ReturnCode.Unstable)
    assert codes[1:] == [hq.ReturnCode.Success, hq.ReturnCode.Success]
    exact = y0 / (1.0 - y0 * ts)  # (3, T)
    # The samples without blow-up are right everywhere.
    torch.testing.assert_close(sol.y[1:, :, 0], exact[1:], rtol=1e-7, atol=0)
    # The blowing-up sample is right before the singularity and NaN after it.
    before = ts < 0.9
    torch.testing.assert_close(sol.y[0, before, 0], exact[0, before], rtol=1e-6, atol=0)
    assert bool(torch.isnan(sol.y[0, ts > 1.1, 0]).all())


def test_nan_from_f_is_unstable() -> None:
    """``f`` returns NaN for ``t > 0.5``.

    Every step that crosses ``t = 0.5`` gives a non-finite state and is rejected; the step
    shrinks towards ``t = 0.5`` until it falls below ``dtmin`` with the last attempt still
    non-finite, which the step loop reports as ``Unstable`` (not ``DtLessThanMin``).
    """

    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        bad = (t > 0.5)[:, None] if t.ndim else t > 0.5
        return torch.where(bad, torch.full_like(y, math.nan), -y)

    ts = torch.linspace(0.0, 1.0, 11, dtype=F64)
    for y0 in (torch.tensor([1.0], dtype=F64), torch.tensor([[1.0], [-2.0]], dtype=F64)):
        sol = hq.solve(
            hq.ODEProblem(f, y0, (0.0, 1.0)), hq.Tsit5(), saveat=ts, rtol=1e-8, atol=1e-10
        )
        codes = sol.retcode if isinstance(sol.retcode, list) else [sol.retcode]
        assert all(c == hq.ReturnCode.Unstable for c in codes)
        y = sol.y.reshape(-1, 11)
        ok = ts < 0.45  # t = 0.5 itself is reached only within dtmin
        exact = y0.reshape(-1, 1) * torch.exp(-ts[ok])[None, :]
        torch.testing.assert_close(y[:, ok], exact, rtol=1e-7, atol=0)
        assert bool(torch.isnan(y[:, ts > 0.55]).all())


def test_fixed_step_euler_blow_up_is_unstable() -> None:
    ts = torch.linspace(0.0, 10.0, 101, dtype=F64)
    sol = hq.solve(hq.ODEProblem(square, ones(1), (0.0, 10.0)), hq.Euler(), dt=0.1, saveat=ts)
    assert sol.retcode == hq.ReturnCode.Unstable
    # The first steps are the Euler recursion y_{k+1} = y_k + h y_k².
    y = 1.0
    for k in range(1, 6):
        y = y + 0.1 * y * y
        assert float(sol.y[k, 0]) == pytest.approx(y, rel=1e-14)
    assert bool(torch.isnan(sol.y[-1]).all())


def test_retcode_properties() -> None:
    assert hq.ReturnCode.Success.successful
    assert not hq.ReturnCode.MaxIters.successful
    assert not hq.ReturnCode.Unstable.successful


# --------------------------------------------------------------------------- dense output misuse


def test_dense_output_outside_the_span() -> None:
    sol = hq.solve(prob(), hq.Tsit5())
    with pytest.raises(ValueError, match="outside"):
        sol(1.5)
    with pytest.raises(ValueError, match="outside"):
        sol(torch.tensor([0.5, -0.2], dtype=F64))


def test_dense_output_without_dense() -> None:
    sol = hq.solve(prob(), hq.Tsit5(), saveat=torch.tensor([0.5, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="dense=True"):
        sol(0.5)
    sol2 = hq.solve(prob(), hq.Tsit5(), dense=False)
    with pytest.raises(ValueError, match="dense=True"):
        sol2(0.5)


def test_dense_output_query_of_the_wrong_shape() -> None:
    sol = hq.solve(prob(y0=torch.ones(3, 2, dtype=F64)), hq.Tsit5())
    with pytest.raises(ValueError, match="sol\\(t\\)"):
        sol(torch.zeros(2, 4, dtype=F64))


def test_dt_with_the_wrong_sign_or_shape() -> None:
    with pytest.raises(ValueError, match="dt"):
        hq.solve(prob(), hq.Euler(), dt=-0.1)
    with pytest.raises(ValueError, match="dt"):
        hq.solve(
            prob(y0=torch.ones(3, 1, dtype=F64)), hq.Euler(), dt=torch.full((2,), 0.1, dtype=F64)
        )


def test_dtmin_stops_with_dt_less_than_min() -> None:
    """Approaching the blow-up of ``y' = y²`` at ``t = 1`` needs steps below ``dtmin = 1e-3``."""
    ts = torch.tensor([0.5, 0.9, 1.5], dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(square, ones(1), (0.0, 2.0)),
        hq.Tsit5(),
        dtmin=1e-3,
        saveat=ts,
        rtol=1e-8,
        atol=1e-10,
    )
    assert sol.retcode == hq.ReturnCode.DtLessThanMin
    torch.testing.assert_close(sol.y[:2, 0], 1.0 / (1.0 - ts[:2]), rtol=1e-6, atol=0)
    assert bool(torch.isnan(sol.y[2]).all())


@pytest.mark.parametrize("name", ["dtmin", "dtmax"])
def test_bad_dtmin_dtmax(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        hq.solve(prob(), hq.Tsit5(), **{name: -1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=name):
        hq.solve(prob(), hq.Tsit5(), **{name: torch.ones(3, dtype=F64)})  # type: ignore[arg-type]


def test_rtol_below_the_dtype_resolution_warns() -> None:
    # float32 cannot resolve rtol = 1e-9: say so instead of grinding through tiny steps.
    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return -y

    prob = hq.ODEProblem(f, torch.ones(1), (0.0, 0.01))
    with pytest.warns(UserWarning, match=r"rtol=1e-09 is below the resolution of torch.float32"):
        hq.solve(prob, hq.Tsit5(), rtol=1e-9, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prob64 = hq.ODEProblem(f, torch.ones(1, dtype=torch.float64), (0.0, 0.01))
        hq.solve(prob64, hq.Tsit5(), rtol=1e-9)
