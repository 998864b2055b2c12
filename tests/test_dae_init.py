"""Consistent initial values of mass-matrix DAEs: ``solve(..., initializealg=...)``.

Brown's basic initialisation (OrdinaryDiffEq.jl's ``BrownFullBasicInit``) keeps the
differential variables and solves the algebraic equations (zero rows of ``M``) for the
algebraic variables (zero columns); ``"check"`` only checks (``ReturnCode.InitialFailure``
where ``y0`` is inconsistent); ``"none"`` integrates ``y0`` as given. See
``src/hybrideq/engines/torch/_dae_init.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

import hybrideq as hq

F64 = torch.float64
INCONSISTENT = (1.0, 0.0, 0.5)  # Robertson's conservation law needs y3 = 1 − y1 − y2 = 0


def ids(s: hq.AbstractSolver) -> str:
    return s.name


def robertson_dae(y0: tuple[float, ...] | torch.Tensor, t1: float = 40.0) -> hq.ODEProblem:
    prob = hq.library.robertson(dae=True, tspan=(0.0, t1))
    return prob.remake(y0=torch.as_tensor(y0, dtype=F64))


# y1' = −y1 (y2² + y1 − 3), 0 = y2² + y1 − 4: on the constraint y1' = −y1, so
# y1 = y1(0) e^{−t} and y2 = ±√(4 − y1), the sign of the starting guess.
MASS_2 = torch.diag(torch.tensor([1.0, 0.0], dtype=F64))


def circle_f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
    y1, y2 = y[..., 0], y[..., 1]
    return torch.stack([-y1 * (y2 * y2 + y1 - 3.0), y2 * y2 + y1 - 4.0], -1)


def circle_jac(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
    y1, y2 = y[..., 0], y[..., 1]
    row1 = torch.stack([-(y2 * y2 + 2 * y1 - 3.0), -2 * y1 * y2], -1)
    row2 = torch.stack([torch.ones_like(y1), 2 * y2], -1)
    return torch.stack([row1, row2], -2)


# --------------------------------------------------------------------------- Brown


@pytest.mark.parametrize("solver", [hq.Rodas5P(), hq.QNDF()], ids=ids)
def test_robertson_inconsistent_y0_is_corrected(solver: hq.AbstractSolver) -> None:
    """y0 = (1, 0, 0.5) starts from (1, 0, 0) and matches the ODE form at t = 40."""
    ts = torch.tensor([0.0, 1.0, 10.0, 40.0], dtype=F64)
    kw = {"rtol": 1e-8, "atol": 1e-12, "saveat": ts}
    ode = hq.solve(hq.library.robertson(tspan=(0.0, 40.0)), hq.Rodas5P(), **kw)
    sol = hq.solve(robertson_dae(INCONSISTENT), solver, **kw)
    assert sol.retcode == hq.ReturnCode.Success
    # The constraint is linear in y3: one Newton step lands on it exactly.
    assert sol.y[0].tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(sol.y.sum(-1), torch.ones(4, dtype=F64), rtol=0, atol=1e-12)
    rel = float(((sol.y[-1] - ode.y[-1]).abs() / ode.y[-1].abs()).max())
    # Measured: 2.1e-12 (Rodas5P), 5.5e-8 (QNDF).
    assert rel < 1e-6, rel
    # From the consistent y0 the integration is the same; the initialisation cost one more
    # evaluation (the Newton trial point) and one Jacobian (the problem's jac).
    good = hq.solve(robertson_dae((1.0, 0.0, 0.0)), solver, **kw)
    torch.testing.assert_close(sol.y, good.y, rtol=0, atol=0)
    assert int(sol.stats.nf) == int(good.stats.nf) + 1
    assert int(sol.stats.njac) == int(good.stats.njac) + 1


def test_batch_with_a_consistent_and_an_inconsistent_sample() -> None:
    base = hq.library.robertson(dae=True, tspan=(0.0, 40.0))
    y0 = torch.tensor([[1.0, 0.0, 0.0], INCONSISTENT], dtype=F64)
    prob = base.remake(y0=y0, p=base.p.expand(2, 3))
    ts = torch.tensor([0.0, 40.0], dtype=F64)
    sol = hq.solve(prob, hq.Rodas5P(), rtol=1e-8, atol=1e-12, saveat=ts)
    assert sol.retcode == [hq.ReturnCode.Success, hq.ReturnCode.Success]
    assert sol.y[:, 0].tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    torch.testing.assert_close(sol.y[1], sol.y[0], rtol=0, atol=0)
    # Measured nf = [1332, 1333]: the check of y0 for both, one Newton trial for sample 1.
    assert int(sol.stats.nf[1]) == int(sol.stats.nf[0]) + 1
    assert sol.stats.njac[1] == sol.stats.njac[0] + 1
    one = hq.solve(base, hq.Rodas5P(), rtol=1e-8, atol=1e-12, saveat=ts)
    assert int(one.stats.nf) == int(sol.stats.nf[0])


@pytest.mark.parametrize(
    "solver, jac, tol",
    [
        (hq.Rodas5P(), False, 1e-8),  # measured 2.0e-10
        (hq.Rodas5P(), True, 1e-8),
        (hq.Rodas5P(autodiff=False), False, 1e-8),  # finite-difference Jacobian block
        (hq.QNDF(), False, 1e-7),  # measured 1.5e-8
    ],
    ids=["Rodas5P", "Rodas5P-jac", "Rodas5P-fd", "QNDF"],
)
def test_nonlinear_constraint_follows_the_closed_form(
    solver: hq.AbstractSolver, jac: bool, tol: float
) -> None:
    """0 = y2² + y1 − 4 from y2(0) = ±1: Newton finds y2(0) = ±√3, then y2 = ±√(4 − e^{−t})."""
    y0 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [2.0, 1.0]], dtype=F64)
    prob = hq.ODEProblem(
        circle_f, y0, (0.0, 5.0), mass_matrix=MASS_2, jac=circle_jac if jac else None
    )
    ts = torch.linspace(0.0, 5.0, 11, dtype=F64)
    sol = hq.solve(prob, solver, saveat=ts, rtol=1e-8, atol=1e-10)
    assert sol.success
    y1 = y0[:, :1] * torch.exp(-ts)[None, :]
    y2 = torch.tensor([[1.0], [-1.0], [1.0]], dtype=F64) * torch.sqrt(4.0 - y1)
    start = sol.y[:, 0, 1]
    torch.testing.assert_close(
        start,
        torch.tensor([math.sqrt(3), -math.sqrt(3), math.sqrt(2)], dtype=F64),
        rtol=1e-10,
        atol=0,
    )
    assert float((sol.y[..., 0] - y1).abs().max()) < tol
    assert float((sol.y[..., 1] - y2).abs().max()) < tol


def test_gradient_through_the_initialisation() -> None:
    """dy2(0)/dy1(0) = −1/(2√(4 − y1)) (implicit function theorem), at t = 0 and t = 1."""
    y10 = torch.tensor(1.0, dtype=F64, requires_grad=True)
    y0 = torch.stack([y10, torch.tensor(1.0, dtype=F64)])
    prob = hq.ODEProblem(circle_f, y0, (0.0, 1.0), mass_matrix=MASS_2)
    sol = hq.solve(prob, hq.Rodas5P(), saveat=[0.0, 1.0], rtol=1e-10, atol=1e-12)
    (g0,) = torch.autograd.grad(sol.y[0, 1], y10, retain_graph=True)
    (g1,) = torch.autograd.grad(sol.y[1, 1], y10)
    assert abs(float(g0) + 1 / (2 * math.sqrt(3))) < 1e-12
    e = math.exp(-1.0)
    exact = -e / (2 * math.sqrt(4 - e))
    # Measured: −0.0965152164 vs −0.0965151288 (the discrete solve's gradient).
    assert abs(float(g1) - exact) < 1e-5 * abs(exact)


def test_brown_polishes_what_auto_accepts() -> None:
    """y3 = 1e-9 is within atol = 1e-6: "auto" keeps it, "brown" solves to y3 = 0."""
    prob = robertson_dae((1.0, 0.0, 1e-9), t1=1.0)
    kw = {"rtol": 1e-6, "atol": 1e-6, "saveat": [0.0, 1.0]}
    auto = hq.solve(prob, hq.Rodas5P(), **kw)
    brown = hq.solve(prob, hq.Rodas5P(), initializealg="brown", **kw)
    assert auto.y[0].tolist() == [1.0, 0.0, 1e-9]
    # One Newton step: y3 = 1e-9 − (1 + 1e-9 − 1), zero up to the round-off of 1 + 1e-9.
    assert brown.y[0, :2].tolist() == [1.0, 0.0]
    assert abs(float(brown.y[0, 2])) < 1e-16
    assert auto.success and brown.success


def test_brown_failure_is_an_initial_failure() -> None:
    """0 = y2² + 1 has no real solution: InitialFailure with y0 kept, nothing integrated."""

    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.stack([-y[..., 0], y[..., 1] ** 2 + 1.0], -1)

    y0 = torch.tensor([[1.0, 0.0], [1.0, 0.5], [1.0, 3.0]], dtype=F64)
    prob = hq.ODEProblem(f, y0, (0.0, 1.0), mass_matrix=MASS_2)
    sol = hq.solve(prob, hq.Rodas5P(), saveat=[0.0, 0.5, 1.0])
    assert sol.retcode == [hq.ReturnCode.InitialFailure] * 3
    torch.testing.assert_close(sol.y[:, 0], y0, rtol=0, atol=0)  # y0 kept, not Newton's
    assert bool(torch.isnan(sol.y[:, 1:]).all())  # never integrated
    assert int(sol.stats.naccept.sum()) == 0
    # ∂g/∂y2 = 2 y2 is singular at y2 = 0: the check evaluation, one Jacobian, stop.
    assert sol.stats.nf.tolist()[0] == 1 and sol.stats.njac.tolist()[0] == 1
    # From y2 = 0.5 and 3 the damped Newton iteration stalls (measured nf = 15 and 17).
    assert bool((sol.stats.nf[1:] > 1).all())


def test_brown_failure_in_a_batch_leaves_the_others_alone() -> None:
    """p = 4 gives 0 = y2² − 3 (solvable), p = −1 gives 0 = y2² + 1 (not)."""

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.stack([-y[..., 0], y[..., 1] ** 2 + y[..., 0] - p], -1)

    y0 = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=F64)
    p = torch.tensor([4.0, -1.0], dtype=F64)
    prob = hq.ODEProblem(f, y0, (0.0, 1.0), p, mass_matrix=MASS_2)
    sol = hq.solve(prob, hq.Rodas5P(), rtol=1e-8, atol=1e-10)
    assert sol.retcode == [hq.ReturnCode.Success, hq.ReturnCode.InitialFailure]
    assert abs(float(sol.y[0, 0, 1]) - math.sqrt(3)) < 1e-9
    assert sol.y[1, 0].tolist() == [1.0, 1.0]
    assert int(sol.nsaved[1]) == 1  # the failed sample saved its y0 only
    y_end = sol.y[0, int(sol.nsaved[0]) - 1]
    assert abs(float(y_end[1]) - math.sqrt(4 - math.exp(-1))) < 1e-7


# --------------------------------------------------------------------------- check / none


def test_check_gives_initial_failure_and_keeps_y0() -> None:
    sol = hq.solve(robertson_dae(INCONSISTENT), hq.Rodas5P(), initializealg="check")
    assert sol.retcode == hq.ReturnCode.InitialFailure
    assert not sol.success
    assert sol.t.tolist() == [0.0]
    assert sol.y.tolist() == [list(INCONSISTENT)]  # y0 as given, no NaN
    assert int(sol.stats.nf) == 1 and int(sol.stats.naccept) == 0
    # A consistent y0 passes the check and is integrated as given.
    ok = hq.solve(robertson_dae((1.0, 0.0, 0.0)), hq.Rodas5P(), initializealg="check")
    assert ok.retcode == hq.ReturnCode.Success


@pytest.mark.parametrize("solver", [hq.Rodas5P(), hq.QNDF()], ids=ids)
def test_check_in_a_batch_backwards_with_per_sample_saveat(solver: hq.AbstractSolver) -> None:
    """Held samples keep y0 at their save times equal to t0; the others are untouched."""

    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.stack([-y[..., 0], y[..., 1] - y[..., 0]], -1)  # y2 = y1

    y0 = torch.tensor([[1.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=F64)
    prob = hq.ODEProblem(f, y0, (1.0, 0.0), mass_matrix=MASS_2)
    saveat = torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.7, 0.2], [0.9, 0.5, 0.0]], dtype=F64)
    sol = hq.solve(prob, solver, saveat=saveat, initializealg="check", rtol=1e-8, atol=1e-10)
    assert sol.retcode == [
        hq.ReturnCode.Success,
        hq.ReturnCode.InitialFailure,
        hq.ReturnCode.Success,
    ]
    torch.testing.assert_close(sol.t, saveat, rtol=0, atol=0)
    assert sol.y[1, 0].tolist() == [1.0, 0.0]
    assert bool(torch.isnan(sol.y[1, 1:]).all())
    exact = y0[[0, 2], :1, None] * torch.exp(1.0 - saveat[[0, 2]])[:, :, None]
    torch.testing.assert_close(sol.y[[0, 2]], exact.expand(-1, -1, 2), rtol=1e-6, atol=0)


def test_joint_stepping_fails_the_whole_batch() -> None:
    """Under stepping="joint" the batch is one system: one inconsistent sample stops all."""
    base = hq.library.robertson(dae=True, tspan=(0.0, 1.0))
    y0 = torch.tensor([[1.0, 0.0, 0.0], INCONSISTENT], dtype=F64)
    prob = base.remake(y0=y0)
    sol = hq.solve(prob, hq.QNDF(), initializealg="check", stepping="joint", saveat=[0.0, 1.0])
    assert sol.retcode == [hq.ReturnCode.InitialFailure] * 2
    torch.testing.assert_close(sol.y[:, 0], y0, rtol=0, atol=0)
    fixed = hq.solve(prob, hq.QNDF(), stepping="joint", saveat=[0.0, 1.0])
    assert fixed.success
    assert fixed.y[:, 0].tolist() == [[1.0, 0.0, 0.0]] * 2


def test_none_leaves_y0_untouched() -> None:
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    sol = hq.solve(
        robertson_dae(INCONSISTENT, t1=1.0),
        hq.Rodas5P(),
        initializealg="none",
        saveat=ts,
        rtol=1e-8,
        atol=1e-12,
    )
    assert sol.y[0].tolist() == list(INCONSISTENT)
    assert sol.retcode == hq.ReturnCode.Success  # Rodas5P jumps onto the constraint itself


def test_a_regular_mass_matrix_needs_no_initialisation() -> None:
    """An invertible M: every initializealg gives the same solve, at the same cost."""
    m = torch.tensor([[2.0, 0.5], [0.0, 1.0]], dtype=F64)
    prob = hq.ODEProblem(lambda t, y, p: -(y @ m.T), torch.ones(2, dtype=F64), (0.0, 1.0))
    prob = prob.remake(mass_matrix=m)
    sols = [hq.solve(prob, hq.Rodas5P(), initializealg=a) for a in ("auto", "brown", "check")]
    ref = hq.solve(prob, hq.Rodas5P(), initializealg="none")
    for s in sols:
        torch.testing.assert_close(s.y, ref.y, rtol=0, atol=0)
        assert int(s.stats.nf) == int(ref.stats.nf)


# --------------------------------------------------------------------------- errors


def test_mass_matrix_not_in_semi_explicit_form() -> None:
    """M = [[1, 1], [1, 1]]: the constraint 0 = f1 − f2 has no zero row to solve for."""

    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.stack([-y[..., 0], -y[..., 1]], -1)  # constraint: y1 = y2

    mass = torch.ones(2, 2, dtype=F64)
    bad = hq.ODEProblem(f, torch.tensor([1.0, 0.0], dtype=F64), (0.0, 1.0), mass_matrix=mass)
    good = bad.remake(y0=torch.tensor([1.0, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="mass_matrix is singular but not in semi-explicit form"):
        hq.solve(bad, hq.Rodas5P())
    with pytest.raises(ValueError, match="initializealg='check'"):
        hq.solve(bad, hq.QNDF())
    with pytest.raises(ValueError, match="mass_matrix"):
        hq.solve(good, hq.Rodas5P(), initializealg="brown")
    # "auto" has nothing to fix for a consistent y0; "check" measures the constraint W^T f.
    assert hq.solve(good, hq.Rodas5P()).success
    assert hq.solve(good, hq.Rodas5P(), initializealg="check").success
    check = hq.solve(bad, hq.Rodas5P(), initializealg="check")
    assert check.retcode == hq.ReturnCode.InitialFailure
    assert hq.solve(bad, hq.Rodas5P(), initializealg="none").y[0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("value", ["Brown", "shampine", None, 1])
def test_bad_initializealg(value: object) -> None:
    prob = robertson_dae((1.0, 0.0, 0.0), t1=1.0)
    with pytest.raises(ValueError, match="initializealg must be one of"):
        hq.solve(prob, hq.Rodas5P(), initializealg=value)  # type: ignore[arg-type]
    ode = hq.ODEProblem(lambda t, y, p: -y, torch.ones(1, dtype=F64), (0.0, 1.0))
    with pytest.raises(ValueError, match="initializealg"):  # checked without a mass matrix too
        hq.solve(ode, hq.Tsit5(), initializealg=value)  # type: ignore[arg-type]


def test_initial_failure_code() -> None:
    assert int(hq.ReturnCode.InitialFailure) == 6
    assert not hq.ReturnCode.InitialFailure.successful
    assert str(hq.ReturnCode.InitialFailure) == "ReturnCode.InitialFailure"
