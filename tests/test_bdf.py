"""The variable-order BDF family (QNDF, QBDF) on the torch engine.

Accuracy on stiff problems with exact solutions (Prothero–Robinson, a stiff linear
system), Robertson against a tight Radau reference (and scipy's BDF, the same algorithm,
for the work counts), the order reaching 5, per-sample stepping in a batch, the index-1
DAE form, dense output, direct-backprop gradients against finite differences, and
failures ending in return codes. Also unit checks of the two pieces of algebra the
stepper rests on: the rescaling of backward differences and the dense-output rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import hybrideq as hq
from hybrideq.engines.torch._bdf import NDF_KAPPA, BDFStepper, dense_rows
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._methods import BDFRunner
from hybrideq.solvers.bdf import QBDF, QNDF

F64 = torch.float64
BDFS = [QNDF(), QBDF()]
ROBERTSON_K = (0.04, 3e7, 1e4)


def ids(s: Any) -> str:
    return s.name


# --------------------------------------------------------------------------- problems


def prothero_robinson(lam: float = -1e6) -> hq.ODEProblem:
    """y' = λ(y − sin t) + cos t, y(0) = 0: the exact solution is sin t for every λ."""

    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return lam * (y - torch.sin(t)) + torch.cos(t)

    return hq.ODEProblem(f, torch.zeros(1, dtype=F64), (0.0, 10.0))


def stiff_linear(t1: float = 2.0) -> tuple[hq.ODEProblem, Any]:
    """y' = A y, eigenvalues −1, −10, …, −1e4 in a random orthogonal basis; exact e^{At} y0."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a = torch.tensor(q @ np.diag([-1.0, -10.0, -1e2, -1e3, -1e4]) @ q.T, dtype=F64)
    y0 = torch.ones(5, dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return y @ p.T

    def exact(t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=F64).reshape(-1)
        return (torch.linalg.matrix_exp(a * t[:, None, None]) @ y0).squeeze(0)

    return hq.ODEProblem(f, y0, (0.0, t1), a), exact


def robertson(
    k: Any = ROBERTSON_K, t1: float = 1e5, dae: bool = False, y0: Any = None, jac: bool = False
) -> hq.ODEProblem:
    """Robertson's chemical kinetics; ``dae``: the third equation as 0 = y1 + y2 + y3 − 1.

    ``jac``: pass the analytic Jacobian (ODE form).
    """

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
        k1, k2, k3 = p[..., 0], p[..., 1], p[..., 2]
        r3 = y1 + y2 + y3 - 1.0 if dae else k2 * y2 * y2
        return torch.stack([-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2 * y2 - k3 * y2 * y3, r3], -1)

    def jacobian(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
        k1, k2, k3 = p[..., 0], p[..., 1], p[..., 2]
        zero = torch.zeros_like(y1)
        rows = [
            [-k1 + zero, k3 * y3, k3 * y2],
            [k1 + zero, -2 * k2 * y2 - k3 * y3, -k3 * y2],
            [zero, 2 * k2 * y2, zero],
        ]
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    mass = torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=F64)) if dae else None
    p = k if isinstance(k, torch.Tensor) else torch.tensor(k, dtype=F64)
    if y0 is None:
        y0 = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    return hq.ODEProblem(
        f, y0, (0.0, t1), p, mass_matrix=mass, jac=jacobian if jac and not dae else None
    )


def _rob_np(t: float, y: Any, k: tuple[float, float, float] = ROBERTSON_K) -> list[float]:
    k1, k2, k3 = k
    return [
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
        k2 * y[1] ** 2,
    ]


def _rob_jac_np(t: float, y: Any, k: tuple[float, float, float] = ROBERTSON_K) -> Any:
    k1, k2, k3 = k
    return [
        [-k1, k3 * y[2], k3 * y[1]],
        [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
        [0.0, 2 * k2 * y[1], 0.0],
    ]


@pytest.fixture
def orders(monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """Captures the per-step orders (``records["orders"]``) of the next BDF solves."""
    seen: dict[str, torch.Tensor] = {}
    run = BDFRunner.run

    def spy(self: BDFRunner, *args: Any, **kwargs: Any) -> Any:
        res = run(self, *args, **kwargs)
        seen["orders"] = res.records["orders"]
        return res

    monkeypatch.setattr(BDFRunner, "run", spy)
    return seen


# --------------------------------------------------------------------------- the algebra


def test_rescaled_differences_are_those_of_the_new_spacing() -> None:
    """(R U)ᵀ D maps the differences of a degree-k polynomial at h to those at ρh, per sample."""
    K = 5
    n = 2
    stepper = BDFStepper(
        lambda t, y: y,
        JacobianProvider(lambda t, y: y, n, None, False, need_ft=False),
        None,
        torch.tensor(1e-6, dtype=F64),
        torch.tensor(1e-9, dtype=F64),
        K,
        NDF_KAPPA,
        4,
        False,
        4,
        F64,
        torch.device("cpu"),
    )
    rng = np.random.default_rng(1)
    k = torch.tensor([1, 2, 3, 5])
    rho = torch.tensor([0.5, 2.0, 0.3, 1.7], dtype=F64)
    h = 0.1
    coeffs = [rng.standard_normal((int(kk) + 1, n)) for kk in k]

    def diffs(c: np.ndarray, step: float) -> np.ndarray:
        # ∇^j y(t_n) at spacing ``step``, t_n = 0.3; rows 0 … K+2.
        vals = np.array([np.polynomial.polynomial.polyval(0.3 - i * step, c) for i in range(K + 3)])
        out = np.zeros((K + 3, n))
        cur = vals
        for j in range(K + 3):
            out[j] = cur[0]
            cur = cur[:-1] - cur[1:]
        return out

    D = torch.tensor(np.stack([diffs(c, h) for c in coeffs]), dtype=F64)
    change = torch.tensor([True, True, True, True])
    out = stepper._rescale(D, k, rho, change)
    for b, c in enumerate(coeffs):
        kb = int(k[b])
        want = diffs(c, h * float(rho[b]))
        np.testing.assert_allclose(out[b, : kb + 1].numpy(), want[: kb + 1], rtol=1e-10, atol=1e-12)
        # Rows above the order are left alone.
        np.testing.assert_array_equal(out[b, kb + 1 :].numpy(), D[b, kb + 1 :].numpy())
    same = stepper._rescale(D, k, rho, torch.zeros(4, dtype=torch.bool))
    assert torch.equal(same, D)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_dense_rows_interpolate_polynomials_exactly(k: int) -> None:
    """y_n + Σ_j P_j(θ) ∇^j y_{n+1} reproduces a degree-k polynomial on [t_n, t_n + h]."""
    rng = np.random.default_rng(k)
    c = rng.standard_normal(k + 1)
    h, tn = 0.2, 1.0
    ts = tn + h - h * np.arange(k + 1)  # t_{n+1}, t_n, …
    vals = np.polynomial.polynomial.polyval(ts, c)
    nabla = []
    cur = vals
    for _ in range(k + 1):
        nabla.append(cur[0])
        cur = cur[:-1] - cur[1:]
    rows = dense_rows(5)
    scheme = InterpolationScheme.polynomial("bdf:5", rows)
    v = torch.zeros(1, 5, 1, dtype=F64)
    v[0, :k, 0] = torch.tensor(nabla[1 : k + 1], dtype=F64)
    theta = torch.linspace(0, 1, 7, dtype=F64)[None]
    y0 = torch.tensor([[[np.polynomial.polynomial.polyval(tn, c)]]], dtype=F64)
    got = scheme.evaluate(theta, y0, v)[0, :, 0].numpy()
    want = np.polynomial.polynomial.polyval(tn + theta[0].numpy() * h, c)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert rows[1] == (-0.5, 0.5)  # P_2(θ) = (θ − 1)θ/2


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("solver", BDFS, ids=ids)
@pytest.mark.parametrize("rtol", [1e-6, 1e-8])
def test_prothero_robinson(solver: Any, rtol: float) -> None:
    sol = hq.solve(prothero_robinson(), solver, rtol=rtol, atol=rtol * 1e-2)
    assert sol.retcode == hq.ReturnCode.Success
    err = abs(float(sol.y[-1, 0]) - math.sin(10.0))
    # Measured 1.7e-12 (QNDF) and 1.4e-12 (QBDF) at rtol 1e-6; 3.5e-14 and 1.8e-14 at 1e-8.
    assert err < 1e-3 * rtol
    assert int(sol.stats.njac) == 1  # J is constant: never recomputed
    assert int(sol.stats.naccept) < 300 * (1e-6 / rtol) ** 0.25


@pytest.mark.parametrize("solver", BDFS, ids=ids)
def test_stiff_linear_work_precision(solver: Any) -> None:
    prob, exact = stiff_linear()
    y_end = exact(torch.tensor(2.0, dtype=F64))
    errs, steps = [], []
    for rtol in (1e-4, 1e-6, 1e-8):
        sol = hq.solve(prob, solver, rtol=rtol, atol=rtol * 1e-2)
        assert sol.retcode == hq.ReturnCode.Success
        errs.append(float((sol.y[-1] - y_end).abs().max()))
        steps.append(int(sol.stats.naccept))
    # QNDF measured: 1.9e-5, 2.4e-8, 1.3e-9 with 128, 250, 476 steps.
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-6
    assert steps[0] < steps[1] < steps[2]


def test_robertson_against_radau_and_scipy_bdf(capsys: pytest.CaptureFixture[str]) -> None:
    integrate = pytest.importorskip("scipy.integrate")
    ref = integrate.solve_ivp(
        _rob_np,
        (0.0, 1e5),
        [1.0, 0.0, 0.0],
        method="Radau",
        rtol=1e-12,
        atol=1e-14,
        jac=_rob_jac_np,
    ).y[:, -1]
    sp = integrate.solve_ivp(
        _rob_np,
        (0.0, 1e5),
        [1.0, 0.0, 0.0],
        method="BDF",
        rtol=1e-8,
        atol=1e-12,
        jac=_rob_jac_np,
    )
    sol = hq.solve(robertson(), QNDF(), rtol=1e-8, atol=1e-12)
    assert sol.retcode == hq.ReturnCode.Success
    rel = np.abs(sol.y[-1].numpy() - ref) / np.abs(ref)
    st = sol.stats
    with capsys.disabled():
        print(
            f"\nRobertson to 1e5, rtol 1e-8 atol 1e-12 — QNDF: steps {int(st.naccept)} "
            f"(+{int(st.nreject)} rejected), nf {int(st.nf)}, njac {int(st.njac)}, "
            f"nlu {int(st.nlu)}, max rel err {rel.max():.1e}; scipy BDF: steps "
            f"{len(sp.t) - 1}, nf {sp.nfev}, njac {sp.njev}, nlu {sp.nlu}, max rel err "
            f"{(np.abs(sp.y[:, -1] - ref) / np.abs(ref)).max():.1e}"
        )
    # Measured: rel err 1.0e-7; 667 steps, nf 2158, njac 12, nlu 130 (scipy: 664, 2087,
    # 12, 127 — the same algorithm).
    assert rel.max() < 1e-6
    assert int(st.njac) * 20 < int(st.naccept)  # the Jacobian is reused for many steps
    assert 0.8 < int(st.naccept) / (len(sp.t) - 1) < 1.25
    assert int(st.nlu) < int(st.naccept) / 2  # quasi-constant steps: few refactorisations


# --------------------------------------------------------------------------- orders, batches


@pytest.mark.parametrize("solver", BDFS, ids=ids)
def test_order_reaches_five(solver: Any, orders: dict[str, torch.Tensor]) -> None:
    prob, _ = stiff_linear()
    sol = hq.solve(prob, solver, rtol=1e-8, atol=1e-10)
    used = orders["orders"][:, 0]
    used = used[used > 0]
    assert used.numel() == int(sol.stats.naccept)
    assert int(used.max()) == 5
    assert int(used[0]) == 1  # starts at order 1
    # Measured: 448 of the 476 steps at order 5.
    assert float((used == 5).double().mean()) > 0.8


def test_max_order_option(orders: dict[str, torch.Tensor]) -> None:
    prob, exact = stiff_linear()
    sol = hq.solve(prob, QNDF(max_order=2), rtol=1e-6, atol=1e-8)
    used = orders["orders"]
    assert int(used.max()) == 2
    assert float((sol.y[-1] - exact(torch.tensor(2.0, dtype=F64))).abs().max()) < 1e-5


def test_batch_matches_single_solves() -> None:
    rates = torch.tensor([[0.04, 3e7, 1e4], [0.08, 1e7, 3e4]], dtype=F64)
    y0 = torch.tensor([[1.0, 0.0, 0.0]] * 2, dtype=F64)
    kw = {"rtol": 1e-8, "atol": 1e-12}
    batch = hq.solve(robertson(rates, t1=1e4, y0=y0), QNDF(), **kw)
    steps = []
    for i in range(2):
        single = hq.solve(robertson(rates[i], t1=1e4), QNDF(), **kw)
        rel = (batch.y[i, -1] - single.y[-1]).abs() / single.y[-1].abs()
        assert float(rel.max()) < 1e-10
        assert int(batch.stats.naccept[i]) == int(single.stats.naccept)
        steps.append(int(single.stats.naccept))
    assert steps[0] != steps[1]


@pytest.mark.parametrize("solver", BDFS, ids=ids)
def test_robertson_dae_matches_ode(solver: Any) -> None:
    kw = {"rtol": 1e-8, "atol": 1e-12}
    dae = hq.solve(robertson(t1=1e3, dae=True), solver, **kw)
    ode = hq.solve(robertson(t1=1e3), solver, **kw)
    assert dae.retcode == hq.ReturnCode.Success
    rel = (dae.y[-1] - ode.y[-1]).abs() / ode.y[-1].abs()
    # Measured: 1.5e-9 (QNDF).
    assert float(rel.max()) < 1e-6
    assert abs(float(dae.y[-1].sum()) - 1.0) < 1e-12  # the constraint holds


# --------------------------------------------------------------------------- dense output


def test_dense_output_stiff_linear() -> None:
    prob, exact = stiff_linear()
    ts = torch.linspace(0.0, 2.0, 50, dtype=F64)
    want = exact(ts)
    rtol = 1e-8
    sol = hq.solve(prob, QNDF(), saveat=ts, rtol=rtol, atol=rtol * 1e-2)
    rel = (sol.y - want).abs().amax(-1) / want.abs().amax(-1)
    # Measured 1.4e-8.
    assert float(rel.max()) < 10 * rtol
    # The interpolant of a step-saving solve gives the same accuracy between the steps …
    steps = hq.solve(prob, QNDF(), rtol=rtol, atol=rtol * 1e-2)
    rel_i = (steps(ts) - want).abs().amax(-1) / want.abs().amax(-1)
    assert float(rel_i.max()) < 10 * rtol
    # … and passes through the step values.
    torch.testing.assert_close(steps(steps.t), steps.y, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- gradients


def test_direct_backprop_gradient_vs_finite_differences() -> None:
    # The analytic Jacobian keeps the graph small (an automatic Jacobian on autograd's tape
    # costs a traversal of the whole solve graph per Jacobian).
    t1 = 10.0
    kw = {"rtol": 1e-10, "atol": 1e-14}
    w = torch.tensor([1.0, 1e4, 1.0], dtype=F64)

    def loss(p: torch.Tensor, **extra: Any) -> torch.Tensor:
        sol = hq.solve(robertson(p, t1=t1, jac=True), QNDF(), **kw, **extra)
        assert sol.retcode == hq.ReturnCode.Success
        return (w * sol.y[-1]).sum()

    p = torch.tensor(ROBERTSON_K, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss(p, sensealg=hq.DirectBackprop()), p)
    with torch.no_grad():
        for i in range(3):
            e = torch.zeros(3, dtype=F64)
            e[i] = 1e-4 * float(p[i])
            fd = (loss(p + e) - loss(p - e)) / (2 * e[i])
            # Measured: relative differences of 3e-9 … 9e-9.
            assert abs(float(grad[i]) - float(fd)) < 1e-4 * abs(float(fd))


# --------------------------------------------------------------------------- failures


def test_nan_in_f_ends_with_a_return_code() -> None:
    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return torch.where(t > 0.5, torch.full_like(y, torch.nan), -y)

    ts = torch.linspace(0.0, 1.0, 11, dtype=F64)
    prob = hq.ODEProblem(f, torch.ones(1, dtype=F64), (0.0, 1.0))
    sol = hq.solve(prob, QNDF(), saveat=ts, rtol=1e-6, atol=1e-9)
    assert sol.retcode != hq.ReturnCode.Success
    assert sol.retcode in (
        hq.ReturnCode.ConvergenceFailure,
        hq.ReturnCode.Unstable,
        hq.ReturnCode.DtLessThanMin,
    )
    # Saved up to the failure near t = 0.5 (the solver creeps up to it), NaN after.
    torch.testing.assert_close(sol.y[:5, 0], torch.exp(-ts[:5]), rtol=1e-5, atol=0)
    assert bool(torch.isnan(sol.y[6:]).all())
    assert 0.5 - 1e-6 < float(sol.t[5]) <= 0.5 or bool(torch.isnan(sol.y[5]).all())


def test_singularity_ends_with_a_return_code() -> None:
    """y' = 1/(1 − y), y(0) = 0: y = 1 − √(1 − 2t) reaches the pole at t = 1/2."""

    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return 1.0 / (1.0 - y)

    ts = torch.linspace(0.0, 1.0, 11, dtype=F64)
    prob = hq.ODEProblem(f, torch.zeros(1, dtype=F64), (0.0, 1.0))
    sol = hq.solve(prob, QBDF(), saveat=ts, rtol=1e-6, atol=1e-9)
    assert sol.retcode != hq.ReturnCode.Success
    exact = 1 - torch.sqrt(1 - 2 * ts[:5])
    torch.testing.assert_close(sol.y[:5, 0], exact, rtol=1e-4, atol=1e-8)


# --------------------------------------------------------------------------- options


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_order"):
        QNDF(max_order=6)
    with pytest.raises(ValueError, match="kappa"):
        QNDF(kappa=(0.1, 0.2))
    with pytest.raises(ValueError, match="max_newton"):
        QBDF(max_newton=0)
    assert QNDF().kappas == NDF_KAPPA
    assert QBDF().kappas == (0.0,) * 5
    assert QNDF().supports_mass_matrix


def test_qndf_with_zero_kappa_is_qbdf() -> None:
    prob, _ = stiff_linear()
    a = hq.solve(prob, QNDF(kappa=(0.0,) * 5), rtol=1e-6, atol=1e-8)
    b = hq.solve(prob, QBDF(), rtol=1e-6, atol=1e-8)
    assert torch.equal(a.y, b.y)


def test_backward_in_time_and_fixed_steps() -> None:
    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return -2.0 * y

    back = hq.solve(
        hq.ODEProblem(f, torch.ones(1, dtype=F64), (1.0, 0.0)), QNDF(), rtol=1e-8, atol=1e-10
    )
    assert abs(float(back.y[-1, 0]) - math.exp(2.0)) < 1e-5
    fixed = hq.solve(
        hq.ODEProblem(f, torch.ones(1, dtype=F64), (0.0, 1.0)), QNDF(), dt=0.01, adaptive=False
    )
    assert int(fixed.stats.naccept) == 100
    # Starts at order 1 and raises the order: far better than backward Euler's 1.4e-3.
    assert abs(float(fixed.y[-1, 0]) - math.exp(-2.0)) < 1e-4
