"""The stiff library problems: analytic Jacobians, batching, exact solutions, references.

The reference tests integrate each problem with SciPy's Radau (analytic Jacobian) and compare
with the IVP test set's published values: that checks the equations and the copied digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

import hybrideq as hq
from hybrideq.problems import ODEProblem

L = hq.library
F64 = torch.float64

PROBLEMS: dict[str, Callable[[], ODEProblem]] = {
    "robertson": L.robertson,
    "robertson_dae": lambda: L.robertson(dae=True),
    "hires": L.hires,
    "pollution": L.pollution,
    "orego": L.orego,
    "van_der_pol": L.van_der_pol,
    "van_der_pol_scaled": lambda: L.van_der_pol(form="scaled"),
    "brusselator_1d": lambda: L.brusselator_1d(n_grid=5),
    "prothero_robinson": lambda: L.prothero_robinson(lam=(-1.0, -1e3, -1e6), n=3),
    "stiff_linear": lambda: L.stiff_linear(n=6),
    "lorenz": L.lorenz,
}


def _state(prob: ODEProblem, *batch: int) -> Tensor:
    """A random state near ``y0``, positive where ``y0`` is (concentrations stay ≥ 0)."""
    y0 = prob.y0
    return y0 + 0.1 + torch.rand((*batch, *y0.shape), dtype=F64) * (0.5 + y0.abs())


def _time(prob: ODEProblem, *batch: int) -> Tensor:
    t0, t1 = float(prob.tspan[0]), float(prob.tspan[1])
    return t0 + (t1 - t0) * torch.rand(batch, dtype=F64)


def _assert_jac_close(actual: Tensor, expected: Tensor) -> None:
    scale = float(expected.abs().max()) or 1.0
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12 * scale)


# --------------------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("name", PROBLEMS)
def test_jacobian_matches_jacrev_for_one_problem(name: str) -> None:
    prob = PROBLEMS[name]()
    assert prob.jac is not None
    t, y = _time(prob), _state(prob)
    expected = torch.func.jacrev(lambda yy: prob.f(t, yy, prob.p))(y)
    actual = prob.jac(t, y, prob.p)
    assert actual.shape == (prob.n, prob.n)
    _assert_jac_close(actual, expected)


@pytest.mark.parametrize("name", PROBLEMS)
def test_jacobian_matches_jacrev_for_a_batch(name: str) -> None:
    prob = PROBLEMS[name]()
    assert prob.jac is not None
    batch = 4
    t, y = _time(prob, batch), _state(prob, batch)
    per_sample = torch.func.vmap(
        torch.func.jacrev(lambda tt, yy: prob.f(tt, yy, prob.p), argnums=1)
    )(t, y)
    actual = prob.jac(t, y, prob.p)
    assert actual.shape == (batch, prob.n, prob.n)
    _assert_jac_close(actual, per_sample)


def _batched_p(prob: ODEProblem, batch: int) -> Tensor:
    """Per-sample parameters: ``p`` perturbed by up to ±5 % in every entry."""
    p = prob.p
    return p.unsqueeze(0) * (1.0 + 0.05 * (2.0 * torch.rand(batch, *p.shape, dtype=F64) - 1.0))


@pytest.mark.parametrize("name", PROBLEMS)
def test_batched_p_gives_the_per_sample_rows(name: str) -> None:
    prob = PROBLEMS[name]()
    assert prob.jac is not None
    batch = 3
    t, y, p = _time(prob, batch), _state(prob, batch), _batched_p(prob, batch)
    dy, jac = prob.f(t, y, p), prob.jac(t, y, p)
    dy_shared = prob.f(t, y, prob.p)
    assert dy.shape == (batch, prob.n) and jac.shape == (batch, prob.n, prob.n)
    for i in range(batch):
        torch.testing.assert_close(dy[i], prob.f(t[i], y[i], p[i]), rtol=1e-14, atol=0)
        torch.testing.assert_close(jac[i], prob.jac(t[i], y[i], p[i]), rtol=1e-14, atol=0)
        torch.testing.assert_close(dy_shared[i], prob.f(t[i], y[i], prob.p), rtol=1e-14, atol=0)
    # The Jacobian with batched p is still ∂f/∂y of the batched right-hand side.
    expected = torch.func.vmap(torch.func.jacrev(lambda tt, yy, pp: prob.f(tt, yy, pp), argnums=1))(
        t, y, p
    )
    _assert_jac_close(jac, expected)


@pytest.mark.parametrize("name", ["robertson", "hires", "pollution", "orego", "brusselator_1d"])
def test_f_is_differentiable_in_p(name: str) -> None:
    """Autograd reaches the parameters (no in-place writes, no .item())."""
    prob = PROBLEMS[name]()
    p = prob.p.clone().requires_grad_(True)
    y = _state(prob)
    prob.f(prob.tspan[0], y, p).square().sum().backward()
    assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    assert float(p.grad.abs().sum()) > 0


def test_lorenz_jacobian_is_the_textbook_matrix() -> None:
    prob = L.lorenz()
    y = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    expected = torch.tensor(
        [[-10.0, 10.0, 0.0], [28.0 - 3.0, -1.0, -1.0], [2.0, 1.0, -8.0 / 3.0]], dtype=F64
    )
    assert prob.jac is not None
    torch.testing.assert_close(prob.jac(torch.tensor(0.0, dtype=F64), y, prob.p), expected)


# --------------------------------------------------------------------------- problem data


def test_robertson_dae_form() -> None:
    ode, dae = L.robertson(), L.robertson(dae=True)
    assert ode.mass_matrix is None
    assert dae.mass_matrix is not None
    torch.testing.assert_close(
        dae.mass_matrix, torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=F64))
    )
    assert dae.jac is not None
    t, y = torch.tensor(0.0, dtype=F64), torch.tensor([0.7, 1e-5, 0.2], dtype=F64)
    # The algebraic equation is the conservation law y1 + y2 + y3 = 1, Jacobian row (1, 1, 1).
    torch.testing.assert_close(dae.f(t, y, dae.p)[2], y.sum() - 1.0)
    torch.testing.assert_close(dae.jac(t, y, dae.p)[2], torch.ones(3, dtype=F64))
    torch.testing.assert_close(dae.f(t, y, dae.p)[:2], ode.f(t, y, ode.p)[:2])
    assert float(dae.f(t, dae.y0, dae.p)[2]) == 0.0  # y0 is consistent


def test_problem_data_match_the_test_set() -> None:
    hires = L.hires()
    assert float(hires.p[1]) == 0.43  # y1' has 0.43 y2, not 0.34
    assert float(hires.tspan[1]) == 321.8122 and float(hires.y0[7]) == 0.0057
    pol = L.pollution()
    assert pol.p.shape == (25,) and float(pol.tspan[1]) == 60.0
    nonzero = {i + 1: float(v) for i, v in enumerate(pol.y0) if v != 0}
    assert nonzero == {2: 0.2, 4: 0.04, 7: 0.1, 8: 0.3, 9: 0.01, 17: 0.007}
    assert len(L.POLLUTION_SPECIES) == 20
    assert L.orego().y0.tolist() == [1.0, 2.0, 3.0] and float(L.orego().tspan[1]) == 360.0
    vdp = L.van_der_pol()
    assert vdp.p.tolist() == [1e3] and float(vdp.tspan[1]) == 2000.0
    assert vdp.y0.tolist() == [2.0, 0.0]
    scaled = L.van_der_pol(form="scaled")
    assert scaled.p.tolist() == [1e6] and float(scaled.tspan[1]) == 6.3
    assert scaled.y0.tolist() == [2.0, 0.0]
    assert L.robertson().p.tolist() == [0.04, 3e7, 1e4]


def test_pollution_conserves_nitrogen_and_sulfur() -> None:
    """Every reaction conserves N and S atoms, so Σ N-weighted y and Σ S-weighted y are constant."""
    names = L.POLLUTION_SPECIES
    n_atoms = torch.tensor(
        [{"N2O5": 2.0}.get(s, 1.0 if "N" in s else 0.0) for s in names], dtype=F64
    )
    n_atoms[names.index("PAN")] = 1.0  # PAN holds one NO2
    s_atoms = torch.tensor([1.0 if s.startswith("SO") else 0.0 for s in names], dtype=F64)
    prob = L.pollution()
    dy = prob.f(prob.tspan[0], _state(prob), prob.p)
    for w in (n_atoms, s_atoms):
        total = float((w * dy).sum())
        assert abs(total) <= 1e-12 * float((w.abs() * dy.abs()).sum())


def test_brusselator_layout_and_initial_value() -> None:
    n_grid = 7
    prob = L.brusselator_1d(n_grid=n_grid)
    assert prob.state_shape == (2 * n_grid,)
    x = torch.arange(1, n_grid + 1, dtype=F64) / (n_grid + 1)
    torch.testing.assert_close(prob.y0[0::2], 1.0 + torch.sin(2 * math.pi * x))
    torch.testing.assert_close(prob.y0[1::2], torch.full((n_grid,), 3.0, dtype=F64))
    # The homogeneous steady state u = 1, v = 3 (the boundary values) is an equilibrium.
    steady = torch.tensor([1.0, 3.0], dtype=F64).repeat(n_grid)
    torch.testing.assert_close(
        prob.f(prob.tspan[0], steady, prob.p), torch.zeros(2 * n_grid, dtype=F64)
    )
    # Bandwidth 2: nothing outside the five central diagonals.
    assert prob.jac_prototype is not None
    idx = prob.jac_prototype.indices()
    assert int((idx[0] - idx[1]).abs().max()) == 2
    assert idx.shape[1] == 8 * n_grid - 4


@pytest.mark.parametrize("n_grid", [1, 5, 500])
def test_brusselator_sparse_jacobian(n_grid: int) -> None:
    prob = L.brusselator_1d(n_grid=n_grid)
    assert prob.jac is not None and prob.jac_prototype is not None
    t, y = prob.tspan[0], _state(prob)
    sparse = L.brusselator_1d_jac_sparse(t, y, prob.p)
    assert sparse.is_sparse and sparse.is_coalesced()
    assert torch.equal(sparse.indices(), prob.jac_prototype.indices())
    dense = prob.jac(t, y, prob.p)
    torch.testing.assert_close(sparse.to_dense(), dense, rtol=0, atol=0)
    # The pattern holds every nonzero of the true Jacobian.
    true = torch.func.jacrev(lambda yy: prob.f(t, yy, prob.p))(y)
    _assert_jac_close(dense, true)
    outside = true.clone()
    outside[prob.jac_prototype.indices()[0], prob.jac_prototype.indices()[1]] = 0.0
    assert float(outside.abs().max()) == 0.0


# --------------------------------------------------------------------------- exact solutions


def _central_difference(y: Callable[[float], Tensor], t: float, h: float) -> Tensor:
    return (y(t + h) - y(t - h)) / (2.0 * h)


@pytest.mark.parametrize("t", [0.3, 2.0, 7.5])
def test_prothero_robinson_exact_solution_satisfies_the_ode(t: float) -> None:
    prob = L.prothero_robinson(lam=(-1.0, -1e3, -1e6), n=3)
    exact = lambda s: L.prothero_robinson_exact(s, n=3)  # noqa: E731
    torch.testing.assert_close(exact(float(prob.tspan[0])), prob.y0)
    tt = torch.tensor(t, dtype=F64)
    torch.testing.assert_close(
        prob.f(tt, exact(t), prob.p), _central_difference(exact, t, 1e-5), rtol=1e-9, atol=1e-9
    )
    assert L.prothero_robinson_exact(torch.linspace(0, 1, 5, dtype=F64), n=3).shape == (5, 3)


@pytest.mark.parametrize("t", [1e-5, 1e-3, 0.5])
def test_stiff_linear_exact_solution_satisfies_the_ode(t: float) -> None:
    prob = L.stiff_linear(n=6)
    eig = torch.linalg.eigvalsh(prob.p)
    torch.testing.assert_close(eig.min(), torch.tensor(-1e5, dtype=F64))
    torch.testing.assert_close(eig.max(), torch.tensor(-1.0, dtype=F64))
    torch.testing.assert_close(L.stiff_linear_exact(prob, 0.0), prob.y0, rtol=0, atol=1e-15)

    def exact(s: float) -> Tensor:
        return L.stiff_linear_exact(prob, s)

    h = 1e-4 * t  # small against every mode still alive at t, large against round-off
    fd = _central_difference(exact, t, h)
    rhs = prob.f(torch.tensor(t, dtype=F64), exact(t), prob.p)
    assert float((rhs - fd).norm()) <= 1e-6 * float(rhs.norm())


def test_stiff_linear_exact_for_a_batch_and_many_times() -> None:
    prob = L.stiff_linear(n=4)
    y0 = torch.rand(3, 4, dtype=F64)
    batch = prob.remake(y0=y0)
    ts = torch.tensor([0.0, 1e-4, 0.2], dtype=F64)
    ys = L.stiff_linear_exact(batch, ts)
    assert ys.shape == (3, 3, 4)
    for i in range(3):
        single = prob.remake(y0=y0[i])
        torch.testing.assert_close(ys[i], L.stiff_linear_exact(single, ts))
    assert L.stiff_linear_exact(batch, 0.2).shape == (3, 4)
    # The seed fixes A.
    torch.testing.assert_close(L.stiff_linear(n=4).p, prob.p, rtol=0, atol=0)
    assert not torch.equal(L.stiff_linear(n=4, seed=1).p, prob.p)


def test_stiff_linear_exact_matches_scipy_radau() -> None:
    prob = L.stiff_linear(n=6)
    a = prob.p.numpy()
    sol = solve_ivp(
        lambda t, y: a @ y, (0.0, 1.0), prob.y0.numpy(), method="Radau", rtol=1e-10,
        atol=1e-12, jac=lambda t, y: a,
    )  # fmt: skip
    exact = L.stiff_linear_exact(prob, 1.0).numpy()
    np.testing.assert_allclose(sol.y[:, -1], exact, rtol=1e-7, atol=1e-10)


# --------------------------------------------------------------------------- references


def _radau(prob: ODEProblem, t_eval: list[float], rtol: float, atol: float) -> np.ndarray:
    """Integrate ``prob`` with SciPy's Radau and the problem's analytic Jacobian."""
    assert prob.jac is not None
    jac_fn = prob.jac

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        return prob.f(torch.tensor(t, dtype=F64), torch.tensor(y), prob.p).numpy()

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return jac_fn(torch.tensor(t, dtype=F64), torch.tensor(y), prob.p).numpy()

    sol = solve_ivp(
        fun,
        (float(prob.tspan[0]), t_eval[-1]),
        prob.y0.numpy(),
        method="Radau",
        t_eval=t_eval,
        rtol=rtol,
        atol=atol,
        jac=jac,
    )
    assert sol.status == 0, sol.message
    return sol.y.T


REFERENCE_CASES: dict[str, tuple[Callable[[], ODEProblem], float]] = {
    # name: (problem, atol): atol far below the smallest component that must be resolved.
    "hires": (L.hires, 1e-14),
    "pollution": (L.pollution, 1e-20),  # y16 ≈ 4e-17
    "robertson": (lambda: L.robertson(tspan=(0.0, 1e11)), 1e-20),  # y2 ≈ 8e-14
    "orego": (L.orego, 1e-12),
    "van_der_pol": (L.van_der_pol, 1e-12),
}


def _check_reference(name: str, rtol: float, bound: float) -> None:
    make, atol = REFERENCE_CASES[name]
    ref = L.reference(name)
    prob = make()
    assert float(prob.tspan[1]) == ref.t
    y = _radau(prob, [ref.t], rtol, atol)[-1]
    expected = np.array(ref.y)
    rel = np.abs(y - expected) / np.abs(expected)
    assert rel.max() < bound, f"{name}: relative errors {rel}"


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_reference_values_at_moderate_tolerance(name: str) -> None:
    """Radau at rtol 1e-7 agrees with the published values to 1e-6 (measured ≤ 7e-9)."""
    _check_reference(name, rtol=1e-7, bound=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "bound"),
    # Measured at rtol 1e-10: hires 1.5e-12, pollution 4.2e-12, orego 3.4e-13,
    # van_der_pol 7.6e-14; robertson 2.9e-9 in y1, y2 (≈ 6e-17 absolute: the rounding
    # of y3 ≈ 1 limits them in float64).
    [("hires", 1e-10), ("pollution", 1e-10), ("robertson", 1e-8), ("orego", 1e-10),
     ("van_der_pol", 1e-10)],
)  # fmt: skip
def test_reference_values_at_tight_tolerance(name: str, bound: float) -> None:
    _check_reference(name, rtol=1e-10, bound=bound)


@pytest.mark.slow
def test_scaled_van_der_pol_reference() -> None:
    """The computed μ = 1e6 value, and the scaling to the test-set form at t = 2 (τ = 2000)."""
    ref = L.reference("van_der_pol_scaled")
    prob = L.van_der_pol(form="scaled")
    assert float(prob.tspan[1]) == ref.t
    y = _radau(prob, [2.0, ref.t], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y[-1], ref.y, rtol=1e-9)
    testset = np.array(L.reference("van_der_pol").y) * np.array([1.0, 1e3])  # y2 is √μ larger
    np.testing.assert_allclose(y[0], testset, rtol=1e-9)


def test_reference_records() -> None:
    for name in ("hires", "pollution", "robertson", "orego", "van_der_pol"):
        ref = L.reference(name)
        assert "Test Set for IVP Solvers" in ref.source and ref.note
    assert len(L.reference("pollution").y) == 20 and len(L.reference("hires").y) == 8
    assert L.reference("robertson").t == 1e11
    with pytest.raises(AttributeError):
        L.reference("orego").t = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="form must be 'testset' or 'scaled'"):
        L.van_der_pol(form="eps")
    with pytest.raises(KeyError, match="no reference value for 'lorenz'; known: 'hires'"):
        L.reference("lorenz")
    with pytest.raises(ValueError, match="n_grid must be at least 1"):
        L.brusselator_1d(n_grid=0)
    with pytest.raises(ValueError, match="one Brusselator state of shape"):
        prob = L.brusselator_1d(n_grid=3)
        L.brusselator_1d_jac_sparse(prob.tspan[0], prob.y0.repeat(2, 1), prob.p)
    with pytest.raises(ValueError, match="lam must have 1 or n=3 entries"):
        L.prothero_robinson(lam=(-1.0, -2.0), n=3)
    with pytest.raises(ValueError, match="eig_range must hold two negative eigenvalues"):
        L.stiff_linear(eig_range=(1.0, -1e5))
    with pytest.raises(ValueError, match="n must be at least 1"):
        L.stiff_linear(n=0)
    with pytest.raises(ValueError, match="y0 must have 4 entries"):
        L.stiff_linear(n=4, y0=(1.0, 2.0))
    with pytest.raises(ValueError, match="k must have 3 entries"):
        L.robertson(k=(0.04, 3e7))
    with pytest.raises(ValueError, match="k must have 25 entries"):
        L.pollution(k=(1.0,) * 24)
