"""The solver's own per-step heuristics (``solve(..., heuristics=True)``).

- ``eest``: the scaled error estimate ``EEst``; an adaptive step is accepted iff
  ``EEst ≤ 1``. With fixed steps on ``y' = λ y`` it has a closed form: the error estimate of
  an explicit Runge–Kutta pair is ``h Σ (b_i − b̂_i) k_i = (R(z) − R̂(z)) y0`` with
  ``z = hλ`` and the stability functions ``R(z) = 1 + z bᵀ(I − zA)⁻¹𝟙``; checked for DP5
  with the published Dormand–Prince coefficients written out below.
- ``eigen_est``: Shampine's stiffness estimate ``‖k7 − k6‖ / ‖g7 − g6‖`` from two stages at
  ``c = 1`` (Tsit5, DP5). For ``y' = λ y`` the stages satisfy ``k = λ g``, so the estimate
  is exactly ``|λ|`` up to round-off, on every step.
- ``error_integral()`` = ``Σ EEst |Δt|`` and ``stiffness_integral()`` = ``Σ λ |Δt|`` over the
  accepted steps: the ERNODE and SRNODE regularizers, differentiable under DirectBackprop.
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch

import hybrideq as hq

F64 = torch.float64
LAMBDA = -50.0


def linear(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return p * y


def lorenz(t: torch.Tensor, u: torch.Tensor, p: None) -> torch.Tensor:
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return torch.stack([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z], -1)


def van_der_pol(t: torch.Tensor, u: torch.Tensor, p: None) -> torch.Tensor:
    x, v = u[..., 0], u[..., 1]
    return torch.stack([v, 5.0 * (1.0 - x * x) * v - x], -1)


def stiff_linear(solver: hq.AbstractSolver, **kw: object) -> hq.Solution:
    prob = hq.ODEProblem(
        linear, torch.tensor([1.0, -2.0], dtype=F64), (0.0, 1.0), torch.tensor(LAMBDA, dtype=F64)
    )
    return hq.solve(prob, solver, heuristics=True, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- EEst


@pytest.mark.parametrize(
    "solver", [hq.Tsit5(), hq.DP5(), hq.Vern7(), hq.BS3()], ids=lambda s: s.name
)
@pytest.mark.parametrize(
    ("f", "y0", "t1"),
    [
        pytest.param(lorenz, [[1.0, 0.0, 0.0], [-3.0, 2.0, 20.0]], 3.0, id="lorenz"),
        pytest.param(van_der_pol, [[2.0, 0.0], [0.5, 1.0]], 5.0, id="vdp"),
    ],
)
def test_accepted_steps_have_eest_at_most_one(
    solver: hq.AbstractSolver, f: object, y0: list[list[float]], t1: float
) -> None:
    prob = hq.ODEProblem(f, torch.tensor(y0, dtype=F64), (0.0, t1))  # type: ignore[arg-type]
    sol = hq.solve(prob, solver, rtol=1e-6, atol=1e-9, heuristics=True)
    assert sol.success
    h = sol.heuristics
    assert h is not None
    steps, batch = h.eest.shape
    assert h.t.shape == h.dt.shape == h.accepted.shape == (steps, batch)
    assert batch == 2
    acc = h.accepted
    assert bool((h.eest[acc] <= 1.0).all())
    assert acc.sum(0).tolist() == sol.stats.naccept.tolist()
    # The accepted steps tile each sample's span, one after the other.
    for b in range(batch):
        t_acc, dt_acc = h.t[acc[:, b], b], h.dt[acc[:, b], b]
        assert float(t_acc[0]) == 0.0
        torch.testing.assert_close(t_acc[1:], (t_acc + dt_acc)[:-1], rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(
            dt_acc.abs().sum(), torch.tensor(t1, dtype=F64), rtol=1e-12, atol=0
        )


def test_rejected_steps_have_eest_above_one() -> None:
    prob = hq.ODEProblem(van_der_pol, torch.tensor([2.0, 0.0], dtype=F64), (0.0, 5.0))
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-6, atol=1e-9, heuristics=True)
    h = sol.heuristics
    assert h is not None
    rejected = ~h.accepted[:, 0]
    assert int(rejected.sum()) == int(sol.stats.nreject) > 0  # one problem: every row is live
    assert bool((h.eest[rejected, 0] > 1.0).all())


# Dormand & Prince, J. Comput. Appl. Math. 6 (1980) 19–26: A, b (5th order), b̂ (4th order).
_DP_A = [
    [],
    [Fr(1, 5)],
    [Fr(3, 40), Fr(9, 40)],
    [Fr(44, 45), Fr(-56, 15), Fr(32, 9)],
    [Fr(19372, 6561), Fr(-25360, 2187), Fr(64448, 6561), Fr(-212, 729)],
    [Fr(9017, 3168), Fr(-355, 33), Fr(46732, 5247), Fr(49, 176), Fr(-5103, 18656)],
    [Fr(35, 384), Fr(0), Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84)],
]
_DP_B = [Fr(35, 384), Fr(0), Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84), Fr(0)]
_DP_BHAT = [
    Fr(5179, 57600),
    Fr(0),
    Fr(7571, 16695),
    Fr(393, 640),
    Fr(-92097, 339200),
    Fr(187, 2100),
    Fr(1, 40),
]


def _stability(z: float, weights: list[Fr]) -> float:
    """``R(z) = 1 + z wᵀ (I − zA)⁻¹ 𝟙`` of the Dormand–Prince stages."""
    a = np.zeros((7, 7))
    for i, row in enumerate(_DP_A):
        a[i, : len(row)] = [float(x) for x in row]
    g = np.linalg.solve(np.eye(7) - z * a, np.ones(7))
    return 1.0 + z * float(np.array([float(w) for w in weights]) @ g)


def test_fixed_step_eest_has_the_closed_form_on_a_linear_problem() -> None:
    h, rtol, atol = 0.01, 1e-6, 1e-9
    sol = stiff_linear(hq.DP5(), adaptive=False, dt=h, rtol=rtol, atol=atol)
    heur = sol.heuristics
    assert heur is not None
    assert heur.eest.shape == (100, 1)
    assert bool(heur.accepted.all())
    z = h * LAMBDA
    r, r_hat = _stability(z, _DP_B), _stability(z, _DP_BHAT)
    y0 = np.array([1.0, -2.0])
    expected = []
    for _ in range(100):
        y1 = r * y0
        err = (r - r_hat) * y0
        scale = atol + np.maximum(np.abs(y0), np.abs(y1)) * rtol
        expected.append(math.sqrt(float(np.mean((err / scale) ** 2))))
        y0 = y1
    np.testing.assert_allclose(heur.eest[:, 0].numpy(), expected, rtol=1e-8)
    # And the steps themselves follow the stability function.
    np.testing.assert_allclose(float(sol.y[-1, 0]), r**100, rtol=1e-12)


def test_heuristics_of_fixed_steps_are_recorded() -> None:
    for solver, kw in ((hq.Tsit5(), {"adaptive": False, "dt": 0.05}), (hq.RK4(), {"dt": 0.05})):
        sol = stiff_linear(solver, **kw)
        h = sol.heuristics
        assert h is not None
        assert h.t.shape == (20, 1)
        assert bool(h.accepted.all())
        torch.testing.assert_close(h.dt[:, 0], torch.full((20,), 0.05, dtype=F64))
        torch.testing.assert_close(
            h.t[:, 0], 0.05 * torch.arange(20, dtype=F64), rtol=0, atol=1e-14
        )
        if solver.name == "Tsit5":
            assert h.eigen_est is not None
            torch.testing.assert_close(
                h.eigen_est[:, 0], torch.full((20,), 50.0, dtype=F64), rtol=1e-6, atol=0
            )
            assert bool((h.eest > 0).all())
        else:
            assert h.eigen_est is None


def test_no_heuristics_by_default() -> None:
    prob = hq.ODEProblem(
        linear, torch.ones(1, dtype=F64), (0.0, 1.0), torch.tensor(-1.0, dtype=F64)
    )
    sol = hq.solve(prob, hq.Tsit5())
    assert sol.heuristics is None


# --------------------------------------------------------------------------- stiffness estimate


@pytest.mark.parametrize("solver", [hq.Tsit5(), hq.DP5(), hq.Vern7()], ids=lambda s: s.name)
@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-9])
def test_eigen_estimate_is_exact_for_a_linear_problem(
    solver: hq.AbstractSolver, rtol: float
) -> None:
    sol = stiff_linear(solver, rtol=rtol, atol=rtol * 1e-3)
    h = sol.heuristics
    assert h is not None and h.eigen_est is not None
    eig = h.eigen_est[h.accepted]
    assert eig.numel() == int(sol.stats.naccept)
    torch.testing.assert_close(eig, torch.full_like(eig, abs(LAMBDA)), rtol=1e-6, atol=0)
    # Σ λ |Δt| over the accepted steps = |λ| · span.
    torch.testing.assert_close(
        h.stiffness_integral(), torch.tensor([abs(LAMBDA)], dtype=F64), rtol=1e-6, atol=0
    )
    assert h.stability_size == pytest.approx(solver.stability_size)


def test_eigen_estimate_per_sample() -> None:
    lam = torch.tensor([-50.0, -5.0, -0.5], dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return p[:, None] * y

    prob = hq.ODEProblem(f, torch.ones(3, 2, dtype=F64), (0.0, 2.0), lam)
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-6, atol=1e-9, heuristics=True)
    h = sol.heuristics
    assert h is not None and h.eigen_est is not None
    for b in range(3):
        eig = h.eigen_est[h.accepted[:, b], b]
        torch.testing.assert_close(eig, torch.full_like(eig, abs(float(lam[b]))), rtol=1e-6, atol=0)
    torch.testing.assert_close(h.stiffness_integral(), 2.0 * lam.abs(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("solver", [hq.BS3()], ids=lambda s: s.name)
def test_no_stiffness_estimate(solver: hq.AbstractSolver) -> None:
    sol = stiff_linear(solver, rtol=1e-6, atol=1e-9)
    h = sol.heuristics
    assert h is not None
    assert h.eigen_est is None
    with pytest.raises(ValueError, match="stiffness estimate"):
        h.stiffness_integral()
    # The error integral exists for every adaptive method.
    assert float(h.error_integral()[0]) > 0


# --------------------------------------------------------------------------- regularizers


def test_error_integral_is_the_sum_over_accepted_steps() -> None:
    sol = stiff_linear(hq.Tsit5(), rtol=1e-6, atol=1e-9)
    h = sol.heuristics
    assert h is not None
    acc = h.accepted[:, 0]
    expected = float((h.eest[acc, 0] * h.dt[acc, 0].abs()).sum())
    assert float(h.error_integral()[0]) == pytest.approx(expected, rel=1e-14)
    # Every accepted EEst ≤ 1, so R_E ≤ span.
    assert 0.0 < expected <= 1.0


def test_error_integral_is_differentiable_under_direct_backprop() -> None:
    p = torch.tensor(-3.0, dtype=F64, requires_grad=True)
    prob = hq.ODEProblem(linear, torch.tensor([1.0, 0.5], dtype=F64), (0.0, 1.0), p)
    sol = hq.solve(
        prob, hq.Tsit5(), rtol=1e-6, atol=1e-9, heuristics=True, sensealg=hq.DirectBackprop()
    )
    assert sol.heuristics is not None
    r_e = sol.heuristics.error_integral().sum()
    (g,) = torch.autograd.grad(r_e, p, retain_graph=True)
    assert math.isfinite(float(g))
    assert float(g) != 0.0
    r_s = sol.heuristics.stiffness_integral().sum()
    (gs,) = torch.autograd.grad(r_s, p)
    # R_S = |p| · span for this linear problem, so dR_S/dp = sign(p) · 1 = −1.
    assert float(gs) == pytest.approx(-1.0, rel=1e-6)


def test_error_integral_gradient_matches_finite_differences_with_fixed_steps() -> None:
    """With fixed steps ``R_E(p)`` is a smooth function of ``p``: autograd = central FD."""

    def r_e(p: torch.Tensor) -> torch.Tensor:
        prob = hq.ODEProblem(linear, torch.tensor([1.0, 0.5], dtype=F64), (0.0, 1.0), p)
        sol = hq.solve(
            prob,
            hq.DP5(),
            adaptive=False,
            dt=0.05,
            rtol=1e-6,
            atol=1e-3,
            heuristics=True,
            sensealg=hq.DirectBackprop(),
        )
        assert sol.heuristics is not None
        return sol.heuristics.error_integral().sum()

    p = torch.tensor(-3.0, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(r_e(p), p)
    # EEst comes from a cancelling sum (h Σ btilde_i k_i), so R_E carries round-off of
    # ~1e-11 relative: a step of 1e-4 keeps the finite difference's round-off and
    # truncation error both below 1e-7 relative.
    eps = 1e-4
    with torch.no_grad():
        fd = (
            r_e(torch.tensor(-3.0 + eps, dtype=F64)) - r_e(torch.tensor(-3.0 - eps, dtype=F64))
        ) / (2 * eps)
    assert float(g) != 0.0
    assert float(g) == pytest.approx(float(fd), rel=1e-6)
