"""Large sparse systems: sparse LU (SuperLU), colored Jacobians, Newton–Krylov (GMRES).

The reference for the 1-D Brusselator (n = 1000) is SciPy's Radau with the sparse
analytic Jacobian at rtol = 1e-10 (it agrees with itself at rtol = 1e-8 to 3e-11).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.integrate import solve_ivp

import hybrideq as hq
from hybrideq.engines.torch._engine import make_runner
from hybrideq.engines.torch._jacobian import (
    JacobianProvider,
    SparsePattern,
    _greedy_coloring,
    _greedy_coloring_python,
    user_sparse_jacobian,
)
from hybrideq.engines.torch._linsolve import GMRES, SparseLU
from hybrideq.library import brusselator_1d, brusselator_1d_jac_sparse

F64 = torch.float64


def _radau_reference(n_grid: int, t1: float) -> np.ndarray:
    prob = brusselator_1d(n_grid=n_grid)

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return prob.f(torch.tensor(t, dtype=F64), torch.from_numpy(y), prob.p).numpy()

    def jac(t: float, y: np.ndarray) -> sp.csc_matrix:
        J = brusselator_1d_jac_sparse(torch.tensor(t, dtype=F64), torch.from_numpy(y), prob.p)
        idx = J.indices().numpy()
        return sp.csc_matrix((J.values().numpy(), (idx[0], idx[1])), shape=J.shape)

    sol = solve_ivp(f, (0.0, t1), prob.y0.numpy(), method="Radau", jac=jac, rtol=1e-10, atol=1e-12)
    assert sol.status == 0
    return sol.y[:, -1]


@pytest.fixture(scope="module")
def radau10() -> np.ndarray:
    return _radau_reference(500, 10.0)


@pytest.fixture(scope="module")
def radau1() -> np.ndarray:
    return _radau_reference(500, 1.0)


def _rel_err(y: torch.Tensor, ref: np.ndarray) -> float:
    r = torch.from_numpy(ref)
    return float(((y - r).abs() / r.abs()).max())


# --------------------------------------------------------------------------- solves


@pytest.mark.parametrize(
    ("solver", "jac"),
    [
        (hq.Rodas5P(linsolve="sparse"), "sparse"),  # the user's sparse COO Jacobian
        (hq.KenCarp4(linsolve="sparse"), "colored"),  # colored reverse mode
    ],
    ids=["Rodas5P-userjac", "KenCarp4-colored"],
)
def test_brusselator_1000_sparse_matches_radau(
    solver: hq.solvers.AbstractImplicitSolver, jac: str, radau10: np.ndarray
) -> None:
    base = brusselator_1d(n_grid=500)
    prob = base.remake(jac=brusselator_1d_jac_sparse if jac == "sparse" else None)
    sol = hq.solve(prob, solver, rtol=1e-8, atol=1e-10, saveat=[10.0])
    assert sol.retcode == hq.ReturnCode.Success
    assert _rel_err(sol.y[-1], radau10) < 1e-6


def test_brusselator_1000_colored_finite_differences_matches_radau(radau1: np.ndarray) -> None:
    prob = brusselator_1d(n_grid=500, tspan=(0.0, 1.0)).remake(jac=None)
    sol = hq.solve(
        prob, hq.Rodas5P(linsolve="sparse", autodiff=False), rtol=1e-8, atol=1e-10, saveat=[1.0]
    )
    assert sol.retcode == hq.ReturnCode.Success
    assert _rel_err(sol.y[-1], radau1) < 1e-6


@pytest.mark.parametrize(
    "pattern",
    [pytest.param(True, marks=pytest.mark.slow), False],
    ids=["pattern-products", "matrix-free"],
)
def test_brusselator_1000_gmres_matches_radau(pattern: bool, radau1: np.ndarray) -> None:
    # Newton–Krylov: with the pattern, products with the colored Jacobian; without it,
    # finite-difference Jacobian-vector products of f (nothing n × n, no pattern at all).
    prob = brusselator_1d(n_grid=500, tspan=(0.0, 1.0)).remake(jac=None)
    if not pattern:
        prob = prob.remake(jac_prototype=None)
    sol = hq.solve(prob, hq.KenCarp4(linsolve="gmres"), rtol=1e-8, atol=1e-10, saveat=[1.0])
    assert sol.retcode == hq.ReturnCode.Success
    assert _rel_err(sol.y[-1], radau1) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["Rodas5P", "KenCarp4"])
def test_brusselator_1000_sparse_matches_dense(solver: str) -> None:
    prob = brusselator_1d(n_grid=500)
    dense = hq.solve(prob, getattr(hq, solver)(linsolve="dense"), rtol=1e-7, atol=1e-9)
    sparse = hq.solve(prob, getattr(hq, solver)(linsolve="sparse"), rtol=1e-7, atol=1e-9)
    assert float(((sparse.y[-1] - dense.y[-1]).abs() / dense.y[-1].abs()).max()) < 1e-9


@pytest.mark.slow
def test_sparse_and_gmres_agree_with_dense_on_a_batch() -> None:
    base = brusselator_1d(n_grid=60, tspan=(0.0, 1.0))
    y0 = torch.stack([base.y0, 1.1 * base.y0])
    prob = hq.ODEProblem(base.f, y0, base.tspan, base.p, jac_prototype=base.jac_prototype)
    ref = hq.solve(prob, hq.KenCarp4(linsolve="dense"), rtol=1e-8, atol=1e-10, saveat=[1.0])
    for solver in (
        hq.Rodas5P(linsolve="sparse"),
        hq.KenCarp4(linsolve="sparse"),
        hq.KenCarp4(linsolve="gmres"),
        hq.AutoTsit5(hq.Rodas5P(linsolve="sparse")),
    ):
        sol = hq.solve(prob, solver, rtol=1e-8, atol=1e-10, saveat=[1.0])
        assert all(r == hq.ReturnCode.Success for r in sol.retcode)
        err = float(((sol.y - ref.y).abs() / ref.y.abs()).max())
        assert err < 1e-6, (solver, err)


def test_sparse_rodas_with_a_mass_matrix() -> None:
    # Robertson as an index-1 DAE (M = diag(1, 1, 0)): W = M/(hγ) − J on the pattern.
    base = hq.library.robertson(dae=True, tspan=(0.0, 100.0))
    prob = base.remake(jac_prototype=np.ones((3, 3)))
    dense = hq.solve(prob, hq.Rodas5P(linsolve="dense"), rtol=1e-8, atol=1e-10)
    sparse = hq.solve(prob, hq.Rodas5P(linsolve="sparse"), rtol=1e-8, atol=1e-10)
    assert sparse.retcode == hq.ReturnCode.Success
    assert torch.allclose(sparse.y[-1], dense.y[-1], rtol=1e-9, atol=1e-14)


# --------------------------------------------------------------------------- Jacobians


def _provider(prob: hq.ODEProblem, **kw: object) -> tuple[JacobianProvider, torch.Tensor]:
    from hybrideq.engines.torch._rhs import UserRHS

    rhs = UserRHS(prob.f, prob.p, prob.batched, prob.state_shape, prob.dtype, prob.device)
    y = prob.y0.reshape(1, -1) * (1 + 0.1 * torch.rand(1, prob.n, dtype=F64))
    return JacobianProvider(rhs, prob.n, None, need_ft=False, **kw), y  # type: ignore[arg-type]


def test_colored_finite_differences_equal_dense_ones_with_few_evaluations() -> None:
    prob = brusselator_1d(n_grid=500)
    pattern = SparsePattern.from_tensor(prob.jac_prototype)
    sparse, y = _provider(prob, autodiff=False, pattern=pattern, output="sparse")
    dense, _ = _provider(prob, autodiff=False)
    t = torch.zeros(1, dtype=F64)
    f0 = sparse.rhs(t, y)
    vals, _ = sparse(t, y, f0)
    # One evaluation per color: 4 for the Brusselator (bandwidth 2), instead of n = 1000.
    assert sparse.nf <= 10
    assert sparse.nf == pattern.ncolors("col") == 4
    J, _ = dense(t, y, f0)
    assert dense.nf == prob.n
    # Same perturbations, same entries: the colored differences are the same numbers.
    assert torch.equal(pattern.to_dense(vals), J)


def test_colored_reverse_mode_equals_the_analytic_jacobian() -> None:
    prob = brusselator_1d(n_grid=50)
    pattern = SparsePattern.from_tensor(prob.jac_prototype)
    provider, y = _provider(prob, autodiff=True, pattern=pattern, output="sparse")
    vals, _ = provider(torch.zeros(1, dtype=F64), y)
    assert pattern.ncolors("row") == 4
    exact = prob.jac(torch.tensor(0.0, dtype=F64), y[0], prob.p)
    assert torch.allclose(pattern.to_dense(vals)[0], exact, rtol=1e-14, atol=1e-10)


def test_greedy_coloring_is_optimal_for_banded_patterns() -> None:
    n, w = 40, 3
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rows, cols = np.nonzero(np.abs(i - j) <= w)
    scipy_colors = _greedy_coloring(rows, cols, n)
    python_colors = _greedy_coloring_python(rows, cols, n)
    assert scipy_colors.max() + 1 == 2 * w + 1
    assert np.array_equal(scipy_colors, python_colors)
    # A valid coloring: no two columns of one color share a row.
    for c in range(2 * w + 1):
        members = np.isin(cols, np.nonzero(scipy_colors == c)[0])
        assert len(set(rows[members])) == members.sum()


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_user_sparse_jacobian_layouts() -> None:
    n = 5
    dense = torch.diag(torch.arange(1.0, n + 1, dtype=F64)) + torch.diag(
        torch.ones(n - 1, dtype=F64), 1
    )
    pattern = SparsePattern.from_tensor(dense + torch.diag(torch.ones(n - 1, dtype=F64), -1))
    want = dense[pattern.rows, pattern.cols]
    t, y = torch.zeros(2, dtype=F64), torch.zeros(2, n, dtype=F64)

    one = user_sparse_jacobian(
        lambda t, y, p: dense.to_sparse_csr(), None, False, (n,), pattern, F64
    )
    assert torch.equal(one(t[:1], y[:1])[0], want)

    def batch_coo(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.stack([dense, 2 * dense]).to_sparse()

    vals = user_sparse_jacobian(batch_coo, None, True, (n,), pattern, F64)(t, y)
    assert torch.equal(vals, torch.stack([want, 2 * want]))

    as_list = user_sparse_jacobian(
        lambda t, y, p: [dense.to_sparse(), 3 * dense.to_sparse()], None, True, (n,), pattern, F64
    )
    assert torch.equal(as_list(t, y), torch.stack([want, 3 * want]))

    outside = torch.zeros(n, n, dtype=F64)
    outside[0, n - 1] = 1.0
    bad = user_sparse_jacobian(lambda t, y, p: outside.to_sparse(), None, False, (n,), pattern, F64)
    with pytest.raises(ValueError, match=r"outside the sparsity pattern"):
        bad(t[:1], y[:1])


def test_a_sparse_jac_without_prototype_gives_the_pattern() -> None:
    base = brusselator_1d(n_grid=150, tspan=(0.0, 0.5))
    prob = base.remake(jac=brusselator_1d_jac_sparse, jac_prototype=None)
    runner = make_runner(prob, hq.Rodas5P())
    assert runner.linsolve.kind == "sparse"  # type: ignore[attr-defined]
    assert runner.linsolve.pattern.nnz == base.jac_prototype._nnz()  # type: ignore[attr-defined]
    sol = hq.solve(prob, hq.Rodas5P(), rtol=1e-8, atol=1e-10, saveat=[0.5])
    ref = hq.solve(base, hq.Rodas5P(linsolve="dense"), rtol=1e-8, atol=1e-10, saveat=[0.5])
    assert torch.allclose(sol.y, ref.y, rtol=1e-10)


# --------------------------------------------------------------------------- the solvers


def test_sparse_solve_gradients_match_finite_differences() -> None:
    torch.manual_seed(1)
    n = 7
    mat = torch.rand(n, n, dtype=F64) * (torch.rand(n, n) < 0.4) + 3 * torch.eye(n, dtype=F64)
    pattern = SparsePattern.from_tensor(mat)
    lu = SparseLU(pattern, 2)
    J = torch.stack([mat[pattern.rows, pattern.cols], 2 * mat[pattern.rows, pattern.cols]])
    J.requires_grad_(True)
    b = torch.randn(2, n, dtype=F64, requires_grad=True)
    alpha = torch.tensor([5.0, 7.0], dtype=F64, requires_grad=True)

    def solve(J: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        lu.factor(J, alpha, None, None)  # W = α I − J
        return lu.solve(b)

    # ∂/∂b through W⁻ᵀ, ∂/∂J and ∂/∂α through the entries of W on the pattern.
    assert torch.autograd.gradcheck(solve, (J, b, alpha))
    W = alpha[:, None, None] * torch.eye(n, dtype=F64) - pattern.to_dense(J)
    assert torch.allclose(solve(J, b, alpha), torch.linalg.solve(W, b), rtol=1e-12)


def test_direct_backprop_through_a_sparse_solve_matches_finite_differences() -> None:
    prob = brusselator_1d(n_grid=8, tspan=(0.0, 1.0)).remake(jac=None)

    def loss(p: torch.Tensor, **kw: object) -> torch.Tensor:
        sol = hq.solve(
            prob.remake(p=p),
            hq.Rodas5P(linsolve="sparse"),
            rtol=1e-8,
            atol=1e-10,
            saveat=[1.0],
            **kw,  # type: ignore[arg-type]
        )
        return sol.y[-1].pow(2).sum()

    d = 1e-6
    fd = (loss(prob.p + d) - loss(prob.p - d)) / (2 * d)
    p = prob.p.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(p, sensealg=hq.DirectBackprop()), p)
    assert torch.allclose(g, fd, rtol=1e-7)
    p = prob.p.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(loss(p, sensealg=hq.InterpolatingAdjoint()), p)
    assert torch.allclose(ga, fd, rtol=1e-6)


@pytest.mark.parametrize(
    "sensealg",
    [
        "direct",
        pytest.param("interpolating", marks=pytest.mark.slow),
        pytest.param("backsolve", marks=pytest.mark.slow),
    ],
)
def test_gmres_gradients(sensealg: str) -> None:
    prob = brusselator_1d(n_grid=8, tspan=(0.0, 1.0)).remake(jac=None, jac_prototype=None)
    algs = {
        "direct": hq.DirectBackprop(),
        "interpolating": hq.InterpolatingAdjoint(),
        "backsolve": hq.BacksolveAdjoint(),
    }

    def loss(p: torch.Tensor, linsolve: str, alg: object = None) -> torch.Tensor:
        sol = hq.solve(
            prob.remake(p=p),
            hq.KenCarp4(linsolve=linsolve),
            rtol=1e-8,
            atol=1e-10,
            saveat=[1.0],
            sensealg=alg,  # type: ignore[arg-type]
        )
        return sol.y[-1].pow(2).sum()

    p = prob.p.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(p, "gmres", algs[sensealg]), p)
    p = prob.p.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(loss(p, "dense", hq.DirectBackprop()), p)
    assert torch.allclose(g, ref, rtol=1e-5)


def test_gmres_solves_a_batched_linear_system() -> None:
    torch.manual_seed(0)
    n, batch = 120, 3
    A = torch.eye(n, dtype=F64) + 0.3 * torch.randn(batch, n, n, dtype=F64) / n**0.5
    b = torch.randn(batch, n, dtype=F64)
    b[1] = 0.0  # a zero right-hand side converges at once
    solver = GMRES(rhs=None, restart=10, maxiter=400)

    def op(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bij,bj->bi", A, x)

    x = solver._gmres(op, b, torch.full((batch,), 1e-11, dtype=F64))
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-9)
    assert float(x[1].abs().max()) == 0.0


# --------------------------------------------------------------------------- choice, errors


def test_auto_picks_sparse_for_large_problems_with_a_pattern() -> None:
    big = brusselator_1d(n_grid=150)  # n = 300 ≥ 200, with jac_prototype
    small = brusselator_1d(n_grid=50)  # n = 100
    assert make_runner(big, hq.Rodas5P()).linsolve.kind == "sparse"  # type: ignore[attr-defined]
    assert make_runner(big, hq.KenCarp4()).linsolve.kind == "sparse"  # type: ignore[attr-defined]
    assert make_runner(small, hq.Rodas5P()).linsolve.kind == "dense"  # type: ignore[attr-defined]
    no_pattern = big.remake(jac_prototype=None)  # its jac is dense
    assert make_runner(no_pattern, hq.Rodas5P()).linsolve.kind == "dense"  # type: ignore[attr-defined]
    assert make_runner(big, hq.Rodas5P(linsolve="dense")).linsolve.kind == "dense"  # type: ignore[attr-defined]


def test_bad_linsolve_is_rejected_with_the_options() -> None:
    with pytest.raises(
        ValueError, match=r"linsolve must be one of 'auto', 'dense', 'sparse', 'gmres'"
    ):
        hq.Rodas5P(linsolve="lu")
    with pytest.raises(ValueError, match=r"linsolve must be one of"):
        hq.QNDF(linsolve="cholesky")


def test_gmres_with_a_rosenbrock_method_is_refused() -> None:
    prob = brusselator_1d(n_grid=10)
    with pytest.raises(ValueError, match=r"linsolve='gmres' cannot be used with Rodas5P.*exact"):
        hq.solve(prob, hq.Rodas5P(linsolve="gmres"))


def test_sparse_needs_a_pattern_and_bdf_has_no_gmres_path_yet() -> None:
    prob = brusselator_1d(n_grid=10).remake(jac_prototype=None)
    with pytest.raises(ValueError, match=r"needs the Jacobian's sparsity: give jac_prototype"):
        hq.solve(prob, hq.KenCarp4(linsolve="sparse"))
    with pytest.raises(ValueError, match=r"needs the Jacobian's sparsity: give jac_prototype"):
        hq.solve(prob, hq.QNDF(linsolve="sparse"))
    with pytest.raises(ValueError, match=r"linsolve='gmres' is not available for QNDF"):
        hq.solve(brusselator_1d(n_grid=10), hq.QNDF(linsolve="gmres"))


def test_qndf_sparse_matches_radau_and_its_dense_path(radau1: np.ndarray) -> None:
    # QNDF's Newton matrix M − cJ on the pattern (SuperLU), n = 1000; the same steps,
    # orders and counts as the dense LU, to rounding.
    prob = brusselator_1d(n_grid=500, tspan=(0.0, 1.0))
    sparse = hq.solve(prob, hq.QNDF(linsolve="sparse"), rtol=1e-8, atol=1e-10, saveat=[1.0])
    assert sparse.retcode == hq.ReturnCode.Success
    assert _rel_err(sparse.y[-1], radau1) < 1e-6
    small = brusselator_1d(n_grid=40, tspan=(0.0, 1.0))
    a = hq.solve(small, hq.QNDF(linsolve="sparse"), rtol=1e-7, atol=1e-9)
    b = hq.solve(small, hq.QNDF(linsolve="dense"), rtol=1e-7, atol=1e-9)
    assert int(a.stats.naccept) == int(b.stats.naccept)
    assert int(a.stats.nlu) == int(b.stats.nlu)
    assert float(((a.y[-1] - b.y[-1]).abs() / b.y[-1].abs()).max()) < 1e-10


def test_qndf_sparse_with_a_mass_matrix() -> None:
    base = hq.library.robertson(dae=True, tspan=(0.0, 100.0))
    prob = base.remake(jac_prototype=np.ones((3, 3)))
    dense = hq.solve(prob, hq.QNDF(linsolve="dense"), rtol=1e-8, atol=1e-10)
    sparse = hq.solve(prob, hq.QNDF(linsolve="sparse"), rtol=1e-8, atol=1e-10)
    assert sparse.retcode == hq.ReturnCode.Success
    assert torch.allclose(sparse.y[-1], dense.y[-1], rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("solver", [hq.Rodas5P(linsolve="sparse"), hq.KenCarp4(linsolve="sparse")])
def test_singular_sparse_w_is_a_return_code(solver: hq.solvers.AbstractImplicitSolver) -> None:
    n = 4

    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return -y

    def jac(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        # Row 0 of J is 1/(hγ) for no h, but infinite entries make W unusable.
        d = -torch.ones(n, dtype=F64)
        d[0] = float("inf")
        return torch.diag(d).to_sparse()

    prob = hq.ODEProblem(f, torch.ones(n, dtype=F64), (0.0, 1.0), jac=jac, jac_prototype=np.eye(n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = hq.solve(prob, solver)
    assert sol.retcode != hq.ReturnCode.Success


def test_exactly_singular_sparse_w_is_a_return_code() -> None:
    # M = diag(1, 1, 0) and an algebraic row with ∂f/∂y = 0: row 2 of W = M/(hγ) − J is
    # zero for every h, and SuperLU reports "exactly singular".
    def f(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
        return torch.stack([-y[0], -y[1], torch.ones_like(y[2])])

    prob = hq.ODEProblem(
        f,
        torch.ones(3, dtype=F64),
        (0.0, 1.0),
        mass_matrix=torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=F64)),
        jac_prototype=np.eye(3),
    )
    sol = hq.solve(prob, hq.Rodas5P(linsolve="sparse"))
    assert sol.retcode != hq.ReturnCode.Success
    dense = hq.solve(prob, hq.Rodas5P(linsolve="dense"))
    assert dense.retcode == sol.retcode


# --------------------------------------------------------------------------- memory

_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, torch, hybrideq as hq
    from hybrideq.library import brusselator_1d

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    torch.set_num_threads(1)
    warm = brusselator_1d(n_grid=100, tspan=(0.0, 0.01)).remake(jac=None)
    hq.solve(warm, hq.{solver}(linsolve="{linsolve}"))  # load every code path first
    prob = brusselator_1d(n_grid={n_grid}, tspan=(0.0, {t1})).remake(jac=None)
    before = peak_mb()
    sol = hq.solve(prob, hq.{solver}(linsolve="{linsolve}"), rtol=1e-6, atol=1e-8, saveat=[{t1}])
    print(json.dumps({{"delta_mb": peak_mb() - before, "ok": sol.retcode == hq.ReturnCode.Success}}))
    """
)


def _peak_memory(solver: str, linsolve: str, n_grid: int, t1: float) -> dict[str, object]:
    code = _MEMORY_SCRIPT.format(solver=solver, linsolve=linsolve, n_grid=n_grid, t1=t1)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_sparse_solve_of_n_10000_stays_far_below_a_dense_jacobian() -> None:
    # n = 10,000: a dense Jacobian alone is 800 MB (and its LU another 800 MB).
    res = _peak_memory("Rodas5P", "sparse", 5000, 10.0)
    assert res["ok"]
    assert isinstance(res["delta_mb"], float) and res["delta_mb"] < 100


@pytest.mark.slow
def test_gmres_solve_of_n_10000_stays_far_below_a_dense_jacobian() -> None:
    res = _peak_memory("KenCarp4", "gmres", 5000, 0.05)
    assert res["ok"]
    assert isinstance(res["delta_mb"], float) and res["delta_mb"] < 100


@pytest.mark.gpu
def test_gmres_runs_on_cuda_and_sparse_refuses() -> None:
    base = brusselator_1d(n_grid=150, tspan=(0.0, 1.0)).remake(jac=None)
    cpu = hq.solve(base, hq.KenCarp4(linsolve="sparse"), rtol=1e-8, atol=1e-10, saveat=[1.0])
    dev = torch.device("cuda")
    for pattern in (base.jac_prototype, None):
        prob = hq.ODEProblem(
            base.f, base.y0.to(dev), (0.0, 1.0), base.p.to(dev), jac_prototype=pattern
        )
        sol = hq.solve(prob, hq.KenCarp4(linsolve="gmres"), rtol=1e-8, atol=1e-10, saveat=[1.0])
        assert sol.retcode == hq.ReturnCode.Success
        assert torch.allclose(sol.y.cpu(), cpu.y, rtol=1e-6)
    prob = hq.ODEProblem(
        base.f, base.y0.to(dev), (0.0, 1.0), base.p.to(dev), jac_prototype=base.jac_prototype
    )
    assert make_runner(prob, hq.Rodas5P()).linsolve.kind == "dense"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"runs on the CPU.*linsolve='gmres'"):
        hq.solve(prob, hq.Rodas5P(linsolve="sparse"))


@pytest.mark.parametrize(
    ("solver", "jac", "checkpointing"),
    [
        ("Rodas5P", "sparse", False),
        ("KenCarp4", "colored", True),
        ("QNDF", "sparse", False),
    ],
    ids=["Rodas5P-userjac", "KenCarp4-colored-checkpointed", "QNDF-userjac"],
)
def test_interpolating_adjoint_of_a_sparse_solve_stays_sparse(
    solver: str, jac: str, checkpointing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backward solve's matrix −J_fᵀ lives on the transposed pattern: SuperLU there
    too, never a dense n × n factorisation (DenseLU is made to fail), and the gradient
    agrees with direct backpropagation through the dense solve."""
    from hybrideq.engines.torch import _linsolve

    base = brusselator_1d(n_grid=30, tspan=(0.0, 1.0))
    prob = base.remake(jac=brusselator_1d_jac_sparse if jac == "sparse" else None)

    def loss(p: torch.Tensor, linsolve: str, alg: object) -> torch.Tensor:
        sol = hq.solve(
            prob.remake(p=p),
            getattr(hq, solver)(linsolve=linsolve),
            rtol=1e-9,
            atol=1e-11,
            saveat=[0.5, 1.0],
            sensealg=alg,  # type: ignore[arg-type]
        )
        return sol.y.pow(2).sum()

    p = prob.p.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(loss(p, "dense", hq.DirectBackprop()), p)

    def no_dense(*args: object, **kw: object) -> None:
        raise AssertionError("the dense LU was used")

    monkeypatch.setattr(_linsolve.DenseLU, "factor", no_dense)
    p = prob.p.clone().requires_grad_(True)
    alg = hq.InterpolatingAdjoint(checkpointing=checkpointing)
    (g,) = torch.autograd.grad(loss(p, "sparse", alg), p)
    assert torch.allclose(g, ref, rtol=1e-5), (g, ref)
