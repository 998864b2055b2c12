"""Convergence order of every explicit Runge–Kutta method with fixed steps.

Each method takes ``N`` fixed steps of ``h = 1/N`` on the linear system ``y' = A y`` and its
error at ``t = 1`` is measured against the exact solution ``expm(A) y0``
(``scipy.linalg.expm``). The slope of ``log(error)`` against ``log(h)``, fitted by least
squares over four or five step sizes, must be the method's order within 0.3.

The matrix has the eigenvalues ``−0.3 ± 3i`` (an oscillation) and ``≈ 0.51`` (a growing
mode), so every component of the error is exercised. The step sizes are chosen per method
so that every error lies in the asymptotic range (the ``h^(p+1)`` term no longer matters)
and far above round-off (≥ 2e-14, round-off is ~3e-15 here): Tsit5's leading error
coefficient is small, so it needs smaller steps than DP5 to reach the asymptotic range, and
Vern7 reaches round-off at ``h = 1/64``, so it uses ``h = 1/4 … 1/32``.

Dense output is checked twice, with fixed steps and ``dense=True``:

- the error of ``sol(t)`` at points inside the steps against the exact solution converges
  with order at least ``min(dense order, method order)`` (the global error at the step
  ends is included);
- the *interpolation defect*, ``sol(t_k + θh)`` against the exact flow started from the
  numerical ``y_k`` (so the global error cancels), converges with order at least
  ``min(dense order, method order) + 1``: a continuous extension of order ``q`` has a local
  error ``O(h^(q+1))``.

Dense orders: Tsit5 and DP5 have their own 4th-order interpolants, Vern7 a 7th-order one;
BS3, Euler and RK4 use cubic Hermite interpolation (order 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg
import torch

import hybrideq as hq

F64 = torch.float64

# y' = A y: eigenvalues −0.3 ± 3i and ≈ 0.508.
A_MIXED = np.array([[-0.3, 3.0, 0.0], [-3.0, -0.3, 0.5], [0.0, 0.2, 0.5]])
Y0 = np.array([1.0, 0.25, -0.5])
# Three different initial conditions for the batched solve.
Y0_BATCH = np.array([[1.0, 0.5, -0.2], [0.0, 1.0, 0.0], [-0.5, 0.3, 2.0]])


def linear_field(t: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``y' = A y`` for ``y`` of shape ``(n,)`` or ``(batch, n)``."""
    return y @ a.T


@dataclass(frozen=True)
class Case:
    solver: hq.AbstractExplicitRK
    order: int
    dense_order: int
    steps: tuple[int, ...]  # numbers of steps N on [0, 1] (h = 1/N) for the global error
    dense_steps: tuple[int, ...]  # numbers of steps on [0, 2] for the interpolation defect

    @property
    def id(self) -> str:
        return self.solver.name


CASES = [
    Case(hq.Tsit5(), 5, 4, (16, 32, 64, 128), (8, 16, 32, 64)),
    Case(hq.DP5(), 5, 4, (8, 16, 32, 64), (8, 16, 32, 64)),
    Case(hq.Vern7(), 7, 7, (4, 8, 16, 32), (4, 8, 16)),
    Case(hq.BS3(), 3, 3, (8, 16, 32, 64, 128), (8, 16, 32, 64)),
    Case(hq.Euler(), 1, 3, (32, 64, 128, 256, 512), (32, 64, 128, 256)),
    Case(hq.RK4(), 4, 3, (8, 16, 32, 64, 128), (8, 16, 32, 64)),
]
IDS = [c.id for c in CASES]


def fixed_step_kwargs(solver: hq.AbstractExplicitRK, h: float) -> dict[str, object]:
    """``adaptive=False, dt=h`` for adaptive methods, just ``dt=h`` for fixed-step ones."""
    if solver.is_adaptive:
        return {"adaptive": False, "dt": h}
    return {"dt": h}


def fitted_slope(hs: list[float], errors: np.ndarray) -> float:
    """Least-squares slope of ``log(error)`` against ``log(h)``."""
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def solve_fixed(case: Case, y0: np.ndarray, n_steps: int, t1: float = 1.0, **kw: object):
    prob = hq.ODEProblem(
        linear_field, torch.tensor(y0, dtype=F64), (0.0, t1), torch.tensor(A_MIXED, dtype=F64)
    )
    return hq.solve(prob, case.solver, **fixed_step_kwargs(case.solver, t1 / n_steps), **kw)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_order_unbatched(case: Case) -> None:
    exact = scipy.linalg.expm(A_MIXED) @ Y0
    save = torch.tensor([1.0], dtype=F64)
    errors = []
    for n in case.steps:
        sol = solve_fixed(case, Y0, n, saveat=save)
        assert sol.retcode == hq.ReturnCode.Success
        assert int(sol.stats.naccept) == n
        assert int(sol.stats.nreject) == 0
        errors.append(np.abs(sol.y[-1].numpy() - exact).max())
    errors_arr = np.array(errors)
    assert errors_arr.min() > 1e-14, "step sizes reach round-off; the fit would be meaningless"
    hs = [1.0 / n for n in case.steps]
    slope = fitted_slope(hs, errors_arr)
    assert abs(slope - case.order) <= 0.3, (slope, errors_arr)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_order_batched(case: Case) -> None:
    """Three initial conditions in one solve: each sample converges with the method's order."""
    exact = Y0_BATCH @ scipy.linalg.expm(A_MIXED).T  # (3, n)
    save = torch.tensor([0.5, 1.0], dtype=F64)
    errors = []
    for n in case.steps:
        sol = solve_fixed(case, Y0_BATCH, n, saveat=save)
        assert sol.y.shape == (3, 2, 3)
        assert sol.retcode == [hq.ReturnCode.Success] * 3
        assert sol.stats.naccept.tolist() == [n] * 3
        errors.append(np.abs(sol.y[:, -1].numpy() - exact).max(-1))
    errors_arr = np.array(errors)  # (len(steps), batch)
    assert errors_arr.min() > 1e-14
    hs = [1.0 / n for n in case.steps]
    for b in range(3):
        slope = fitted_slope(hs, errors_arr[:, b])
        assert abs(slope - case.order) <= 0.3, (b, slope, errors_arr[:, b])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_batched_equals_unbatched(case: Case) -> None:
    """Fixed steps of a batch give each sample the numbers of solving it alone.

    Up to round-off: ``y @ A.T`` of a batch and of one vector may round differently.
    """
    n = case.steps[0]
    save = torch.tensor([0.25, 1.0], dtype=F64)
    batched = solve_fixed(case, Y0_BATCH, n, saveat=save)
    for b in range(3):
        alone = solve_fixed(case, Y0_BATCH[b], n, saveat=save)
        torch.testing.assert_close(batched.y[b], alone.y, rtol=1e-12, atol=1e-13)


THETAS = np.array([0.2, 0.5, 0.77])  # points inside each step, as fractions of h


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dense_output_order(case: Case) -> None:
    """``sol(t)`` inside the steps converges with order ≥ min(dense order, order) − 0.3."""
    expected = min(case.dense_order, case.order)
    errors = []
    for n in case.steps:
        sol = solve_fixed(case, Y0, n, dense=True)
        h = 1.0 / n
        tq = ((np.arange(n)[:, None] + THETAS[None, :]) * h).ravel()
        exact = scipy.linalg.expm(A_MIXED[None] * tq[:, None, None]) @ Y0  # batched expm
        got = sol(torch.tensor(tq, dtype=F64)).numpy()
        assert got.shape == exact.shape
        errors.append(np.abs(got - exact).max())
    errors_arr = np.array(errors)
    assert errors_arr.min() > 1e-14
    slope = fitted_slope([1.0 / n for n in case.steps], errors_arr)
    assert slope >= expected - 0.3, (slope, errors_arr)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_interpolation_defect_order(case: Case) -> None:
    """Against the exact flow from the numerical ``y_k``: order ≥ min(q, p) + 1 − 0.3."""
    expected = min(case.dense_order, case.order) + 1
    t1 = 2.0
    errors = []
    hs = []
    for n in case.dense_steps:
        sol = solve_fixed(case, Y0, n, t1=t1, dense=True)
        h = t1 / n
        hs.append(h)
        tk = np.arange(n) * h
        yk = sol(torch.tensor(tk, dtype=F64)).numpy()  # the numerical step starts
        err = 0.0
        for theta in THETAS:
            local = yk @ scipy.linalg.expm(A_MIXED * theta * h).T
            got = sol(torch.tensor(tk + theta * h, dtype=F64)).numpy()
            err = max(err, float(np.abs(got - local).max()))
        errors.append(err)
    errors_arr = np.array(errors)
    assert errors_arr.min() > 1e-13
    slope = fitted_slope(hs, errors_arr)
    assert slope >= expected - 0.3, (slope, errors_arr)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dense_output_at_step_ends_is_the_step_value(case: Case) -> None:
    """At ``θ = 0`` and ``θ = 1`` the interpolant reproduces the steps' own values."""
    n = case.steps[0]
    grid = torch.linspace(0.0, 1.0, n + 1, dtype=F64)
    stepped = solve_fixed(case, Y0, n, saveat=grid)
    dense = solve_fixed(case, Y0, n, dense=True)
    torch.testing.assert_close(dense(grid), stepped.y, rtol=1e-12, atol=1e-13)


def test_smooth_scalar_dense_order_vern7() -> None:
    """Vern7's 7th-order interpolant on the smooth scalar ``y' = y cos t`` (y = e^{sin t})."""

    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return y * torch.cos(t)

    t1 = 4.0
    steps = (16, 32, 64)  # h = 1/4 … 1/16; larger steps are pre-asymptotic here
    errors = []
    for n in steps:
        prob = hq.ODEProblem(f, torch.ones(1, dtype=F64), (0.0, t1))
        sol = hq.solve(prob, hq.Vern7(), adaptive=False, dt=t1 / n, dense=True)
        h = t1 / n
        tq = ((np.arange(n)[:, None] + THETAS[None, :]) * h).ravel()
        got = sol(torch.tensor(tq, dtype=F64))[:, 0].numpy()
        errors.append(np.abs(got - np.exp(np.sin(tq))).max())
    errors_arr = np.array(errors)
    assert errors_arr.min() > 2e-14
    slope = fitted_slope([t1 / n for n in steps], errors_arr)
    assert slope >= 7 - 0.3, (slope, errors_arr)
