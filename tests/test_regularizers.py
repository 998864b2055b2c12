"""Regularizers: values against hand computations, gradients against finite differences.

Hand computations re-derive each value in plain Python floats (the Tsit5 step, the
initial-step heuristic, the integrals in closed form) on linear ODEs whose steps can be
worked out; gradients are compared with central differences of the same discrete solve
(fixed steps, so the step sizes do not move with the parameters; REFERENCES.md §1: the
gradient of a solver heuristic is that of the discrete solve).
"""

from __future__ import annotations

import math

import pytest
import torch

import hybrideq as hq
from hybrideq import regularizers as R
from hybrideq.tableaus.tsit5 import TSIT5

F64 = torch.float64


def _linear(lam: float | list[float], batch: int | None = None, requires_grad: bool = False):
    lam_t = torch.tensor(lam, dtype=F64, requires_grad=requires_grad)
    n = lam_t.numel()
    y0 = torch.ones(n, dtype=F64) if batch is None else torch.ones(batch, n, dtype=F64)
    return hq.ODEProblem(lambda t, y, p: -p * y, y0, (0.0, 1.0), lam_t), lam_t


def _tsit5_step(lam: float, y: float, h: float, rtol: float, atol: float):
    """One Tsit5 step of y' = −λy in floats: (y1, EEst, eigen estimate, RMS-ratio estimate)."""
    tab = TSIT5
    ks: list[float] = []
    gs: list[float] = []
    for i in range(tab.stages):
        g = y + h * sum(a * k for a, k in zip(tab.a[i], ks, strict=False))
        gs.append(g)
        ks.append(-lam * g)
    y1 = gs[-1]  # FSAL: the last stage state is y1
    assert tab.btilde is not None
    err = h * sum(bt * k for bt, k in zip(tab.btilde, ks, strict=True))
    eest = abs(err) / (atol + max(abs(y), abs(y1)) * rtol)
    eig = abs(ks[6] - ks[5]) / abs(gs[6] - gs[5])
    return y1, eest, eig


def _initial_step(
    lam: float, y: float, t_left: float, rtol: float, atol: float, order: int
) -> float:
    """Hairer–Nørsett–Wanner's initial step (OrdinaryDiffEq's ode_determine_initdt), floats."""
    sk = atol + abs(y) * rtol
    f0 = -lam * y
    d0, d1 = abs(y) / sk, abs(f0) / sk
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, t_left)
    f1 = -lam * (y + h0 * f0)
    d2 = abs(f1 - f0) / sk / h0
    dmax = max(d1, d2)
    h1 = max(h0 * 1e-3, 1e-6) if dmax <= 1e-15 else (0.01 / dmax) ** (1.0 / (order + 1))
    return min(100 * h0, h1, t_left)


# ----------------------------------------------------------------------- hand computations


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_error_estimate_equals_hand_computed_steps(aggregate: str) -> None:
    lam, h, rtol, atol = 3.0, 0.25, 1e-4, 1e-6
    prob, _ = _linear([lam])
    sol = hq.solve(
        prob,
        hq.Tsit5(),
        adaptive=False,
        dt=h,
        rtol=rtol,
        atol=atol,
        regularizer=R.ErrorEstimate(aggregate),
    )
    y, total = 1.0, 0.0
    for _ in range(4):
        y, eest, _ = _tsit5_step(lam, y, h, rtol, atol)
        total += eest * h
    expect = total if aggregate == "sum" else total / 4
    assert float(sol.regularization) == pytest.approx(expect, rel=1e-12)
    assert float(sol.y[-1, 0]) == pytest.approx(y, rel=1e-13)


def test_error_estimate_sums_only_accepted_steps() -> None:
    # An adaptive solve with rejections: R_E counts the accepted steps only.
    prob, _ = _linear([50.0])
    sol = hq.solve(
        prob, hq.Tsit5(), rtol=1e-6, atol=1e-8, heuristics=True, regularizer=R.ErrorEstimate()
    )
    h = sol.heuristics
    assert h is not None and int(sol.stats.nreject) > 0
    acc = h.accepted[:, 0]
    manual = sum(
        float(e) * abs(float(d)) for e, d, a in zip(h.eest[:, 0], h.dt[:, 0], acc, strict=True) if a
    )
    assert float(sol.regularization) == pytest.approx(manual, rel=1e-12)
    assert bool((h.eest[acc, 0] <= 1).all())


@pytest.mark.parametrize("solver", [hq.Tsit5(), hq.DP5(), hq.Vern7()])
def test_stiffness_estimate_of_a_linear_system(solver: hq.AbstractSolver) -> None:
    # y' = −diag(λ) y: the component-wise quotient is exactly λ_m, its max the largest.
    prob, _ = _linear([1.0, 5.0])
    size = solver.stability_size
    assert size is not None
    s_max = hq.solve(prob, solver, rtol=1e-8, atol=1e-10, regularizer=R.StiffnessEstimate())
    s_sum = hq.solve(prob, solver, rtol=1e-8, atol=1e-10, regularizer=R.StiffnessEstimate("sum"))
    assert float(s_max.regularization) == pytest.approx(5.0 / size, rel=1e-9)
    assert float(s_sum.regularization) == pytest.approx(5.0 * 1.0 / size, rel=1e-9)  # ∫ λ dt


def test_local_error_estimate_equals_hand_computed_step() -> None:
    lam, rtol, atol = 4.0, 1e-6, 1e-9
    prob, _ = _linear([lam])
    torch.manual_seed(7)
    tr = float(torch.rand(1, dtype=F64))  # the draw the solve makes first: t_r ~ U[0, 1]
    torch.manual_seed(7)
    sol = hq.solve(prob, hq.Tsit5(), rtol=rtol, atol=atol, regularizer=R.LocalErrorEstimate())
    y_r = float(sol(tr)[0])  # the state the extra step starts from (dense output)
    assert y_r == pytest.approx(math.exp(-lam * tr), rel=1e-5)
    h = _initial_step(lam, y_r, 1.0 - tr, rtol, atol, 5)
    _, eest, _ = _tsit5_step(lam, y_r, h, rtol, atol)
    assert eest * h > 0.0
    assert float(sol.regularization) == pytest.approx(eest * h, rel=1e-9)


def test_local_error_estimate_fixed_step_takes_dt() -> None:
    # A fixed-step solve: the extra step is dt (cut at t1), from the exact grid state.
    lam, h, rtol, atol = 2.0, 0.125, 1e-4, 1e-6
    prob, _ = _linear([lam])
    torch.manual_seed(3)
    sol = hq.solve(
        prob,
        hq.Tsit5(),
        adaptive=False,
        dt=h,
        rtol=rtol,
        atol=atol,
        heuristics=True,
        regularizer=R.LocalErrorEstimate("biased"),
    )
    # Biased: t_r is an accepted step's start: a grid point k·h; y there is the solver's.
    ys = [1.0]
    for _ in range(8):
        ys.append(_tsit5_step(lam, ys[-1], h, rtol, atol)[0])
    vals = {k: _tsit5_step(lam, ys[k], h, rtol, atol)[1] * h for k in range(8)}
    got = float(sol.regularization)
    assert any(got == pytest.approx(v, rel=1e-12) for v in vals.values())


def test_local_stiffness_estimate_of_a_linear_problem() -> None:
    prob, _ = _linear([6.0], batch=3)
    sol = hq.solve(prob, hq.Tsit5(), regularizer=R.LocalStiffnessEstimate())
    # RMS(k7 − k6)/RMS(g7 − g6) = λ for y' = −λy (eps = 2.2e-16 in the denominator).
    torch.testing.assert_close(sol.regularization, torch.full((3,), 6.0 / 3.5068, dtype=F64))


@pytest.mark.parametrize("lam", [0.5, 3.0])
def test_kinetic_energy_closed_form(lam: float) -> None:
    prob, _ = _linear([lam])
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-10, atol=1e-12, regularizer=R.KineticEnergy())
    # ∫_0^1 (λ e^{−λt})² dt = λ (1 − e^{−2λ}) / 2
    assert float(sol.regularization.detach()) == pytest.approx(
        lam * (1 - math.exp(-2 * lam)) / 2, rel=1e-8
    )


def test_jacobian_frobenius_exact_and_hutchinson() -> None:
    a = torch.tensor([[-1.0, 2.0], [0.5, -3.0]], dtype=F64)
    frob2 = float(a.square().sum())  # ‖A‖_F² = 14.25; ∫_0^2 ‖A‖_F² dt = 28.5

    def f(t, y, p):
        return y @ a.T

    batch = 4000
    prob = hq.ODEProblem(f, torch.ones(batch, 2, dtype=F64), (0.0, 2.0))
    exact = hq.solve(
        prob, hq.Tsit5(), saveat=[0.0, 2.0], regularizer=R.JacobianFrobenius(estimator="exact")
    )
    torch.testing.assert_close(exact.regularization, torch.full((batch,), 2 * frob2, dtype=F64))
    for noise in ("gaussian", "rademacher"):
        est = hq.solve(
            prob, hq.Tsit5(), saveat=[0.0, 2.0], regularizer=R.JacobianFrobenius(noise=noise)
        ).regularization
        est = est.detach()
        mean, se = float(est.mean()), float(est.std()) / batch**0.5
        assert abs(mean - 2 * frob2) < 4 * se, (noise, mean, se)  # unbiased (E‖εᵀA‖² = ‖A‖_F²)
        if noise == "rademacher":
            assert float(est.min()) > 0


def test_rnode_states_do_not_change_the_steps_or_the_solution() -> None:
    def f(t, y, p):
        return torch.stack([y[..., 1], -torch.sin(y[..., 0])], -1)

    prob = hq.ODEProblem(f, torch.tensor([[1.0, 0.0], [2.0, 0.5]], dtype=F64), (0.0, 5.0))
    plain = hq.solve(prob, hq.Tsit5(), rtol=1e-6, atol=1e-8)
    reg = hq.solve(
        prob,
        hq.Tsit5(),
        rtol=1e-6,
        atol=1e-8,
        regularizer=R.KineticEnergy() + R.JacobianFrobenius(),
    )
    assert torch.equal(plain.stats.naccept, reg.stats.naccept)
    assert torch.equal(plain.stats.nreject, reg.stats.nreject)
    torch.testing.assert_close(reg.y, plain.y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(reg(2.5), plain(2.5), rtol=1e-12, atol=1e-12)  # dense: y only


def test_weighted_sums_and_terms() -> None:
    prob, _ = _linear([2.0], batch=2)
    reg = 0.5 * R.KineticEnergy() + R.JacobianFrobenius(estimator="exact") * 2.0
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-10, atol=1e-12, regularizer=reg)
    ke = 2.0 * (1 - math.exp(-4.0)) / 2
    terms = sol.regularization_terms
    assert terms is not None and set(terms) == {"KineticEnergy", "JacobianFrobenius"}
    torch.testing.assert_close(terms["KineticEnergy"], torch.full((2,), 0.5 * ke, dtype=F64))
    torch.testing.assert_close(terms["JacobianFrobenius"], torch.full((2,), 2 * 4.0, dtype=F64))
    torch.testing.assert_close(
        sol.regularization, terms["KineticEnergy"] + terms["JacobianFrobenius"]
    )
    # A list is a sum with unit weights; repeated names are numbered.
    sol2 = hq.solve(prob, hq.Tsit5(), regularizer=[R.KineticEnergy(), R.KineticEnergy()])
    assert sol2.regularization_terms is not None
    assert set(sol2.regularization_terms) == {"KineticEnergy", "KineticEnergy_2"}


def test_schedules() -> None:
    s = R.ExponentialDecay(100.0, 10.0, steps=75)
    assert s(0) == pytest.approx(100.0)
    assert s(75) == pytest.approx(10.0)
    k = math.log(10.0) / 75
    assert s(30) == pytest.approx(100 * math.exp(-k * 30))
    assert s(500) == pytest.approx(10.0)
    assert R.Linear(0.1, 5.0, steps=10)(5) == pytest.approx(2.55)
    assert R.Constant(0.0285)(12345) == 0.0285
    with pytest.raises(ValueError, match="positive"):
        R.ExponentialDecay(0.0, 1.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        R.Linear(1.0, 2.0, steps=0)


# ----------------------------------------------------------------------- gradients


def _nonlinear(p: torch.Tensor, batch: int = 2):
    def f(t, y, q):
        return torch.stack(
            [-q[0] * y[..., 0] + q[1] * torch.sin(y[..., 1]), -q[2] * y[..., 1] * y[..., 0]], -1
        )

    y0 = torch.tensor([[1.0, 0.5], [0.3, -1.0]], dtype=F64)[:batch]
    return hq.ODEProblem(f, y0, (0.0, 1.5), p)


_P0 = [1.3, 2.0, 0.7]

_CASES = [
    R.ErrorEstimate(),
    R.ErrorEstimate("mean"),
    R.StiffnessEstimate(),
    R.StiffnessEstimate("sum"),
    R.LocalErrorEstimate(),
    R.LocalErrorEstimate("biased"),
    R.LocalStiffnessEstimate(),
    R.KineticEnergy(),
    R.JacobianFrobenius(),
    R.JacobianFrobenius(estimator="exact", noise="rademacher"),
]


@pytest.mark.parametrize(
    "reg",
    _CASES,
    ids=lambda r: (
        f"{r.name}-{getattr(r, 'aggregate', getattr(r, 'sampling', getattr(r, 'estimator', '')))}"
    ),
)
def test_gradient_matches_finite_differences(reg: R.AbstractRegularizer) -> None:
    def value(q: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(11)  # the same t_r, Hutchinson noise and steps every time
        sol = hq.solve(
            _nonlinear(q),
            hq.Tsit5(),
            adaptive=False,
            dt=0.1,
            rtol=1e-3,
            atol=1e-5,
            saveat=torch.linspace(0, 1.5, 4, dtype=F64),
            regularizer=reg,
        )
        return sol.regularization.sum()

    p = torch.tensor(_P0, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(value(p), p)
    fd = torch.zeros(3, dtype=F64)
    # Central differences: O(eps²) truncation, roundoff below it. The stiffness quotients
    # max_m |k_j − k_i|_m / |g_j − g_i|_m vary fast with p and need a smaller eps.
    stiff = isinstance(reg, R.StiffnessEstimate)
    eps = 1e-6 if stiff else 1e-4
    for i in range(3):
        e = torch.zeros(3, dtype=F64)
        e[i] = eps
        with torch.no_grad():
            fd[i] = (value(p.detach() + e) - value(p.detach() - e)) / (2 * eps)
    assert float(g.abs().max()) > 1e-8
    # The stiffness quotients divide small differences: their roundoff limits FD to ~1e-6.
    quotient = isinstance(reg, (R.StiffnessEstimate, R.LocalStiffnessEstimate))
    torch.testing.assert_close(g, fd, rtol=1e-5 if quotient else 1e-6, atol=1e-10)


@pytest.mark.parametrize("sampling", ["unbiased", "biased"])
@pytest.mark.parametrize("saveat", [True, False])
@pytest.mark.parametrize(
    "sensealg", [hq.BacksolveAdjoint(), hq.InterpolatingAdjoint()], ids=["backsolve", "interp"]
)
def test_local_gradient_under_adjoints_matches_direct(
    sampling: str, saveat: bool, sensealg
) -> None:
    reg = R.LocalErrorEstimate(sampling)

    def grad(sa):
        torch.manual_seed(5)
        p = torch.tensor(_P0, dtype=F64, requires_grad=True)
        sol = hq.solve(
            _nonlinear(p),
            hq.Tsit5(),
            rtol=1e-9,
            atol=1e-11,
            sensealg=sa,
            saveat=torch.linspace(0, 1.5, 4, dtype=F64) if saveat else None,
            regularizer=reg,
        )
        (g,) = torch.autograd.grad(sol.regularization.sum() + sol.y.square().sum(), p)
        return sol.regularization.detach(), g

    r_direct, g_direct = grad(None)
    r_adj, g_adj = grad(sensealg)
    torch.testing.assert_close(r_adj, r_direct, rtol=1e-5, atol=1e-14)
    torch.testing.assert_close(g_adj, g_direct, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize(
    "sensealg", [hq.BacksolveAdjoint(), hq.InterpolatingAdjoint()], ids=["backsolve", "interp"]
)
def test_rnode_gradient_under_adjoints_matches_direct(sensealg) -> None:
    reg = R.KineticEnergy() + R.JacobianFrobenius()

    def grad(sa):
        torch.manual_seed(5)
        p = torch.tensor(_P0, dtype=F64, requires_grad=True)
        sol = hq.solve(
            _nonlinear(p),
            hq.Tsit5(),
            rtol=1e-10,
            atol=1e-12,
            sensealg=sa,
            saveat=torch.linspace(0, 1.2, 4, dtype=F64),
            regularizer=reg,
        )
        (g,) = torch.autograd.grad(sol.regularization.sum(), p)
        return g

    torch.testing.assert_close(grad(sensealg), grad(None), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solver", [hq.KenCarp4(), hq.Kvaerno5(), hq.TRBDF2()])
def test_esdirk_error_estimates_match_finite_differences(solver) -> None:
    # The stages come from Newton iterations stopped at κ·tol: agreement to ~1e-4 at rtol 1e-8.
    def value(q):
        torch.manual_seed(2)
        reg = R.ErrorEstimate() + R.LocalErrorEstimate()
        sol = hq.solve(
            _nonlinear(q), solver, adaptive=False, dt=0.1, rtol=1e-8, atol=1e-10, regularizer=reg
        )
        return sol.regularization.sum()

    p = torch.tensor(_P0, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(value(p), p)
    fd = torch.zeros(3, dtype=F64)
    for i in range(3):
        e = torch.zeros(3, dtype=F64)
        e[i] = 1e-4
        with torch.no_grad():
            fd[i] = (value(p.detach() + e) - value(p.detach() - e)) / 2e-4
    torch.testing.assert_close(g, fd, rtol=1e-3, atol=1e-8)


# ----------------------------------------------------------------------- SDEs


def _sde(p: torch.Tensor, batch: int = 3):
    return hq.SDEProblem(
        lambda t, y, q: -q[0] * y + q[1] * torch.sin(y),
        lambda t, y, q: q[2] * y,
        torch.linspace(0.5, 1.5, batch * 2, dtype=F64).reshape(batch, 2),
        (0.0, 1.0),
        p,
    )


@pytest.mark.parametrize(
    ("reg", "solver"),
    [
        (R.ErrorEstimate(), hq.SOSRI()),
        (R.ErrorEstimate("mean"), hq.SRIW1()),
        (R.LocalErrorEstimate(), hq.SOSRI()),
        (R.LocalErrorEstimate("biased"), hq.SRIW1()),
        (R.StiffnessEstimate(), hq.SOSRI2()),
        (R.LocalStiffnessEstimate(), hq.SOSRI2()),
        (R.KineticEnergy() + R.JacobianFrobenius(), hq.SOSRI()),
        (R.KineticEnergy(), hq.EM()),
    ],
    ids=[
        "error",
        "error-mean",
        "local",
        "local-biased",
        "stiffness",
        "local-stiffness",
        "rnode",
        "rnode-em",
    ],
)
def test_sde_gradient_matches_finite_differences(reg, solver) -> None:
    def value(q):
        torch.manual_seed(4)
        sol = hq.solve(
            _sde(q),
            solver,
            adaptive=False,
            dt=0.05,
            seed=9,
            saveat=torch.linspace(0, 1, 3, dtype=F64),
            regularizer=reg,
        )
        return sol.regularization.sum()

    p = torch.tensor([1.0, 0.5, 0.3], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(value(p), p)
    fd = torch.zeros(3, dtype=F64)
    for i in range(3):
        e = torch.zeros(3, dtype=F64)
        e[i] = 1e-4
        with torch.no_grad():
            fd[i] = (value(p.detach() + e) - value(p.detach() - e)) / 2e-4
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-10)


def test_sde_stiffness_estimate_of_a_linear_drift() -> None:
    # SOSRI2's two drift stages at c0 = 1: RMS(f(H0_4) − f(H0_3))/RMS(H0_4 − H0_3) = λ.
    prob = hq.SDEProblem(
        lambda t, y, p: -3.0 * y, lambda t, y, p: 0.2 * y, torch.ones(4, 2, dtype=F64), (0.0, 1.0)
    )
    sol = hq.solve(
        prob,
        hq.SOSRI2(),
        seed=3,
        heuristics=True,
        regularizer=R.StiffnessEstimate() + R.StiffnessEstimate("sum"),
    )
    assert sol.regularization_terms is not None
    torch.testing.assert_close(
        sol.regularization_terms["StiffnessEstimate"], torch.full((4,), 3.0 / 10.6, dtype=F64)
    )
    torch.testing.assert_close(
        sol.regularization_terms["StiffnessEstimate_2"], torch.full((4,), 3.0 / 10.6, dtype=F64)
    )  # ∫_0^1 λ dt / S
    assert sol.heuristics is not None and sol.heuristics.stability_size == 10.6


def test_sde_kinetic_energy_without_noise_is_the_ode_integral() -> None:
    lam = 2.0
    prob = hq.SDEProblem(
        lambda t, y, p: -lam * y, lambda t, y, p: 0.0 * y, torch.ones(2, 1, dtype=F64), (0.0, 1.0)
    )
    sol = hq.solve(prob, hq.SOSRI(), seed=0, adaptive=False, dt=0.01, regularizer=R.KineticEnergy())
    expect = lam * (1 - math.exp(-2 * lam)) / 2
    torch.testing.assert_close(
        sol.regularization, torch.full((2,), expect, dtype=F64), rtol=3e-4, atol=0
    )
    assert sol.y.shape[0] == 2 and sol.y.shape[-1] == 1


def test_sde_error_estimate_is_the_recorded_sum() -> None:
    p = torch.tensor([1.0, 0.5, 0.3], dtype=F64)
    sol = hq.solve(_sde(p), hq.SOSRI(), seed=1, heuristics=True, regularizer=R.ErrorEstimate())
    h = sol.heuristics
    assert h is not None and h.eigen_est is None
    manual = torch.where(h.accepted, h.eest * h.dt.abs(), torch.zeros_like(h.eest)).sum(0)
    torch.testing.assert_close(sol.regularization, manual)
    assert bool((h.eest[h.accepted] <= 1).all())


def test_sde_local_under_backsolve_adjoint() -> None:
    def run(sa):
        torch.manual_seed(8)
        p = torch.tensor([1.0, 0.5, 0.3], dtype=F64, requires_grad=True)
        sol = hq.solve(
            _sde(p),
            hq.SOSRI(),
            adaptive=False,
            dt=0.01,
            seed=2,
            sensealg=sa,
            saveat=torch.linspace(0, 1, 3, dtype=F64),
            regularizer=R.LocalErrorEstimate(),
        )
        (g,) = torch.autograd.grad(sol.regularization.sum(), p)
        return g

    torch.testing.assert_close(run(hq.BacksolveAdjoint()), run(None), rtol=2e-2, atol=1e-8)


# ----------------------------------------------------------------------- errors and shapes


def test_global_terms_need_direct_backprop() -> None:
    prob, _ = _linear([1.0])
    for reg in (R.ErrorEstimate(), R.StiffnessEstimate()):
        with pytest.raises(ValueError, match=r"DirectBackprop.*LocalErrorEstimate"):
            hq.solve(prob, hq.Tsit5(), sensealg=hq.InterpolatingAdjoint(), regularizer=reg)


def test_clear_errors() -> None:
    prob, _ = _linear([1.0])
    with pytest.raises(ValueError, match=r"embedded error estimate.*RK4"):
        hq.solve(prob, hq.RK4(), dt=0.1, regularizer=R.ErrorEstimate())
    with pytest.raises(ValueError, match=r"stiffness estimate.*BS3 has none"):
        hq.solve(prob, hq.BS3(), regularizer=R.StiffnessEstimate())
    with pytest.raises(ValueError, match=r"stiffness estimate.*Rodas5P has none"):
        hq.solve(prob, hq.Rodas5P(), regularizer=R.LocalStiffnessEstimate())
    with pytest.raises(ValueError, match=r"Rosenbrock method's error estimate.*KenCarp4"):
        hq.solve(prob, hq.Rodas5P(), regularizer=R.LocalErrorEstimate())
    with pytest.raises(ValueError, match="explicit Runge–Kutta"):
        hq.solve(prob, hq.Rodas5P(), regularizer=R.KineticEnergy())
    with pytest.raises(TypeError, match="instance"):
        hq.solve(prob, hq.Tsit5(), regularizer=R.ErrorEstimate)
    with pytest.raises(TypeError, match="regularizer must be"):
        hq.solve(prob, hq.Tsit5(), regularizer="error")
    with pytest.raises(ValueError, match="aggregate"):
        R.ErrorEstimate("max")
    with pytest.raises(ValueError, match="sampling"):
        R.LocalErrorEstimate("random")
    with pytest.raises(ValueError, match="share their sampling"):
        hq.solve(
            prob,
            hq.Tsit5(),
            regularizer=R.LocalErrorEstimate() + R.LocalStiffnessEstimate("biased"),
        )
    sde = _sde(torch.tensor([1.0, 0.5, 0.3], dtype=F64))
    with pytest.raises(ValueError, match=r"error estimate.*SOSRI"):
        hq.solve(sde, hq.EM(), dt=0.1, regularizer=R.LocalErrorEstimate())
    with pytest.raises(ValueError, match=r"SOSRI2.*SOSRI has none"):
        hq.solve(sde, hq.SOSRI(), regularizer=R.StiffnessEstimate())
    with pytest.raises(ValueError, match="SRIW1"):
        hq.solve(sde, hq.EM(), dt=0.1, heuristics=True)


def test_shapes_and_saves_are_the_users() -> None:
    prob, _ = _linear([1.0, 2.0], batch=3)
    s = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    for reg in (R.LocalErrorEstimate(), R.KineticEnergy()):
        for sa in (None, hq.InterpolatingAdjoint()):
            sol = hq.solve(prob, hq.Tsit5(), saveat=s, sensealg=sa, regularizer=reg)
            assert sol.y.shape == (3, 3, 2) and torch.equal(sol.t, s)
            assert sol.regularization is not None and sol.regularization.shape == (3,)
            assert sol.heuristics is None and sol.interpolant is None
            plain = hq.solve(prob, hq.Tsit5(), saveat=s, sensealg=sa)
            torch.testing.assert_close(sol.y, plain.y, rtol=1e-12, atol=1e-12)
    one, _ = _linear([1.0, 2.0])
    sol = hq.solve(one, hq.Tsit5(), saveat=[0.0, 0.5, 1.0], regularizer=R.KineticEnergy())
    assert sol.y.shape == (3, 2) and sol.regularization.shape == ()
    # Per-sample save times whose last entry is not t1: the integral still covers [t0, t1].
    ps = torch.tensor([[0.0, 0.5], [0.1, 0.9], [0.2, 1.0]], dtype=F64)
    sol = hq.solve(
        prob,
        hq.Tsit5(),
        saveat=ps,
        rtol=1e-10,
        atol=1e-12,
        sensealg=hq.BacksolveAdjoint(),
        regularizer=R.KineticEnergy(),
    )
    assert torch.equal(sol.t, ps) and sol.y.shape == (3, 2, 2)
    ke = sum(lam * (1 - math.exp(-2 * lam)) / 2 for lam in (1.0, 2.0))
    torch.testing.assert_close(sol.regularization, torch.full((3,), ke, dtype=F64))


def test_merge_keeps_every_save_time_when_the_extra_one_is_already_there() -> None:
    from hybrideq.regularizers._apply import _merge

    s = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.25, 1.0]], dtype=F64)
    x = torch.tensor([0.5, 1.0], dtype=F64)
    m, cols, cx = _merge(s, x, torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64))
    assert bool((m[:, 1:] > m[:, :-1]).all())
    torch.testing.assert_close(m.gather(1, cols), s)
    torch.testing.assert_close(m.gather(1, cx)[:, 0], x)


def test_neural_ode_and_sde_models_take_a_regularizer() -> None:
    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, t, y):
            return torch.tanh(self.lin(y))

    t = torch.linspace(0, 1, 4, dtype=F64)
    model = hq.nn.NeuralODE(Field(), regularizer=R.LocalErrorEstimate()).double()
    out = model(torch.randn(5, 2, dtype=F64), t)
    assert out.regularization is not None and out.regularization.shape == (5,)
    out.regularization.mean().backward()
    assert model.vector_field.lin.weight.grad is not None
    model.eval()
    assert model(torch.randn(5, 2, dtype=F64), t).regularization is None

    class Diff(torch.nn.Module):
        def forward(self, t, y):
            return 0.1 * y

    sde = hq.nn.NeuralSDE(
        Field(), Diff(), solver=hq.SOSRI(), regularizer=R.ErrorEstimate()
    ).double()
    out2 = sde(torch.randn(5, 2, dtype=F64), t, seed=0)
    assert out2.regularization is not None and out2.regularization.shape == (5,)
    out2.regularization.mean().backward()
    assert sde.drift.lin.weight.grad is not None


def test_path_classifiers_take_a_regularizer() -> None:
    t = torch.linspace(0, 1, 12, dtype=F64)
    x = torch.randn(6, 12, 2, dtype=F64)
    ode = hq.nn.ODEClassifier(
        input_channels=2, hidden_channels=4, num_classes=3, regularizer=R.LocalErrorEstimate()
    ).double()
    out = ode(t, x)
    assert out.regularization is not None and out.regularization.shape == (6,)
    out.regularization.mean().backward()
    # The drift's parameters train (the field's unused noise net, if any, does not).
    grads = [p.grad for p in ode.field.parameters() if p.grad is not None]
    assert grads and any(bool(g.abs().sum() > 0) for g in grads)
    sde = hq.nn.SDEClassifier(
        "lnsde",
        input_channels=2,
        hidden_channels=4,
        num_classes=3,
        regularizer=R.KineticEnergy(),
    ).double()
    out2 = sde(t, x, seed=0)
    assert out2.regularization is not None and bool((out2.regularization > 0).all())
    sde.eval()
    assert sde(t, x, seed=0).regularization is None
