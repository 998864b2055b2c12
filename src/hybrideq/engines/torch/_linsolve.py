"""Linear solvers of the implicit steppers: ``W x = b`` with ``W = α M − β J``.

The Rosenbrock steppers solve with ``W = M/(hγ) − J`` (``α = 1/(hγ)``, ``β = 1``), the
DIRK steppers with ``W = I − hγ J`` (``α = 1``, ``β = hγ``). A stepper holds its Jacobian
in the representation its linear solver takes and calls, per attempted step,

- :meth:`LinearSolver.where` / :meth:`LinearSolver.norm_inf` to refresh ``J`` per sample
  and read ``‖J‖_∞`` (the stiffness switch's eigenvalue bound);
- :meth:`LinearSolver.factor` to (re)factorise ``W`` for the samples that need it (it
  returns the samples whose ``W`` is singular: the stepper reports them through ``ok``,
  the loop halves ``dt``);
- :meth:`LinearSolver.solve` for every right-hand side.

Three solvers (``linsolve=`` of the implicit solver specs):

- :class:`DenseLU` (``"dense"``): batched LU, ``torch.linalg.lu_factor_ex`` and
  ``lu_solve``, on ``(B, n, n)``: the default for small systems, CPU and CUDA, fully
  differentiable by autograd.
- :class:`SparseLU` (``"sparse"``): ``W`` assembled per sample as a SciPy CSC matrix on the
  union of the Jacobian's pattern, the diagonal and the mass matrix's entries, factorised
  by SuperLU (``scipy.sparse.linalg.splu``; the column ordering is COLAMD), one sample
  after the other (large systems are usually a batch of one). Memory is ``O(nnz + fill)``
  instead of ``n²``. CPU only. A singular ``W`` (SuperLU's "exactly singular" error, or
  non-finite entries) is reported through ``ok``, as the dense ``info > 0``.
- :class:`GMRES` (``"gmres"``, Newton–Krylov; DIRK methods only): nothing is factorised.
  ``W v = α v − β J v`` where ``J v`` is the forward difference
  ``(f(t, y + εv) − f(t, y))/ε``, ``ε = √ε_mach (1 + ‖y‖₂)/‖v‖₂`` (Brown & Saad, SIAM J.
  Sci. Stat. Comput. 11 (1990) 450–481), at the point where the stepper "computed" ``J``
  (so the simplified Newton iteration and its Jacobian reuse keep their meaning), or the
  product with the Jacobian's values where those are known (a pattern or a user ``jac``).
  Restarted GMRES (Saad & Schultz, SIAM J. Sci. Stat. Comput. 7 (1986) 856–869) written in
  torch, batched over samples with a per-sample convergence mask, minimising the residual
  in the solver's weighted RMS norm (scaled GMRES, as CVODE's SPGMR), right-preconditioned
  by the diagonal of ``W`` (Jacobi) where the diagonal of ``J`` is known. A Krylov solve is
  inexact: a Rosenbrock method's order conditions assume exact solves, so it is refused
  there; a Newton iteration only needs a contraction, which the inexact solve keeps.

Differentiability (``DirectBackprop``):

- :class:`DenseLU`: autograd through ``lu_factor_ex``/``lu_solve`` (exact).
- :class:`SparseLU`: the solve is a :class:`torch.autograd.Function`: ``x = W⁻¹ b`` gives
  ``∂L/∂b = W⁻ᵀ g`` (SuperLU's ``solve(·, trans="T")`` on the same factors) and, for every
  stored entry ``W_ij`` of the pattern, ``∂L/∂W_ij = −(W⁻ᵀ g)_i x_j``; ``W``'s entries are
  torch functions of ``J``'s values, ``hγ`` and ``M``, so the gradient reaches them (and,
  through taped colored Jacobians, ``y`` and ``p``). Exact for the discrete solve; not
  twice differentiable.
- :class:`GMRES`: ordinary torch code, taped by autograd like everything else (the
  gradient of the computation actually done, finite-difference products included).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.torch._jacobian import (
    JacobianProvider,
    MatrixFreeJacobian,
    SparsePattern,
    sparse_pattern_of,
    user_jacobian,
    user_sparse_jacobian,
)

if TYPE_CHECKING:
    from hybrideq.problems import ODEProblem
    from hybrideq.solvers._base import AbstractImplicitSolver

__all__ = [
    "AUTO_SPARSE_MIN_N",
    "GMRES",
    "LINSOLVE_OPTIONS",
    "DenseLU",
    "LinearSolver",
    "LinearSolverConfig",
    "PatternJacobian",
    "SparseLU",
    "linear_solver_config",
]

LINSOLVE_OPTIONS = ("auto", "dense", "sparse", "gmres")
# "auto" takes the sparse path from this many state components on (with a pattern).
AUTO_SPARSE_MIN_N = 200

RHSFn = Any  # (t (B,), y (B, n)) -> (B, n)


class LinearSolver(abc.ABC):
    """Solves ``(α M − β J) x = b`` for a batch; see the module docstring."""

    #: evaluations of ``f`` spent inside solves (Krylov products), for the stepper's count
    nf: int = 0

    @abc.abstractmethod
    def where(self, need: Tensor, new: Any, old: Any) -> Any:
        """The Jacobian ``new`` for the samples in ``need``, ``old`` elsewhere."""

    @abc.abstractmethod
    def norm_inf(self, J: Any) -> Tensor:
        """``‖J‖_∞`` per sample ``(B,)`` (detached)."""

    @abc.abstractmethod
    def factor(
        self, J: Any, alpha: Tensor | None, beta: Tensor | None, need: Tensor | None
    ) -> Tensor:
        """Factorise ``W = α M − β J`` (``None`` meaning 1) for the samples in ``need``
        (all with ``None``); keep the old factors elsewhere. Returns ``(B,)``: singular."""

    @abc.abstractmethod
    def solve(self, b: Tensor, scale: Tensor | None = None) -> Tensor:
        """``W⁻¹ b`` ``(B, n)``; ``scale`` ``(B, n)`` are the error weights' denominators
        ``atol + rtol |y|`` (an iterative solver's norm; direct solvers ignore it)."""


# --------------------------------------------------------------------------- dense


class DenseLU(LinearSolver):
    """Batched dense LU (``torch.linalg.lu_factor_ex``/``lu_solve``), ``(B, n, n)``."""

    def __init__(self, mass: Tensor | None = None) -> None:
        self.mass = mass
        self.lu: Tensor | None = None
        self.piv: Tensor | None = None
        self._eye: Tensor | None = None

    def where(self, need: Tensor, new: Tensor, old: Tensor) -> Tensor:
        return torch.where(need[:, None, None], new, old)

    def norm_inf(self, J: Tensor) -> Tensor:
        return J.detach().abs().sum(-1).amax(-1)

    def factor(
        self, J: Tensor, alpha: Tensor | None, beta: Tensor | None, need: Tensor | None
    ) -> Tensor:
        n = J.shape[-1]
        eye = self.mass
        if eye is None:
            eye = self._eye
            if eye is None or eye.shape[-1] != n or eye.dtype != J.dtype:
                eye = self._eye = torch.eye(n, dtype=J.dtype, device=J.device)
        A = eye if alpha is None else eye * alpha[:, None, None]
        W = A - (J if beta is None else beta[:, None, None] * J)
        lu, piv, info = torch.linalg.lu_factor_ex(W)
        if need is None or self.lu is None or self.piv is None:
            self.lu, self.piv = lu, piv
        else:
            self.lu = torch.where(need[:, None, None], lu, self.lu)
            self.piv = torch.where(need[:, None], piv, self.piv)
        return info != 0

    def solve(self, b: Tensor, scale: Tensor | None = None) -> Tensor:
        assert self.lu is not None and self.piv is not None
        return torch.linalg.lu_solve(self.lu, self.piv, b[:, :, None])[:, :, 0]


# --------------------------------------------------------------------------- sparse LU


class _SparseSolve(torch.autograd.Function):
    """``x = W⁻¹ b`` per sample with SuperLU factors; gradients to ``b`` and ``W``'s data."""

    @staticmethod
    def forward(ctx: Any, solver: SparseLU, data: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        x = solver._solve_numpy(b, trans="N")
        ctx.solver = solver
        ctx.factors = list(solver.factors)  # the factors this solve used
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        solver: SparseLU = ctx.solver
        # x = W⁻¹ b:  ∂L/∂b = W⁻ᵀ g =: λ,   ∂L/∂W_ij = −λ_i x_j on the stored entries.
        lam = solver._solve_numpy(g, trans="T", factors=ctx.factors)
        grad_data = None
        if ctx.needs_input_grad[1]:
            grad_data = -lam[:, solver.w_rows] * x[:, solver.w_cols]
        grad_b = lam if ctx.needs_input_grad[2] else None
        return None, grad_data, grad_b


class SparseLU(LinearSolver):
    """SuperLU per sample on the pattern of ``W`` (module docstring). CPU only.

    Args:
        pattern: the Jacobian's sparsity pattern.
        batch: number of samples.
        mass: the mass matrix ``(n, n)`` or ``None`` (identity); only its nonzeros are used.
    """

    def __init__(self, pattern: SparsePattern, batch: int, mass: Tensor | None = None) -> None:
        n = pattern.n
        self.n, self.batch = n, batch
        self.pattern = pattern
        dev = pattern.device
        diag = torch.arange(n, device=dev)
        keys = [pattern.keys, diag * n + diag]
        self.mass_vals: Tensor | None = None
        if mass is not None:
            mr, mc = torch.nonzero(mass, as_tuple=True)
            keys.append(mr * n + mc)
            self.mass_vals = mass[mr, mc]
        ukeys, inverse = torch.unique(torch.cat(keys), return_inverse=True)  # row-major
        rows, cols = ukeys // n, ukeys % n
        # CSC order of the union: sort by (col, row).
        order = torch.argsort(cols * n + rows)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=dev)
        self.nnz_w = int(ukeys.numel())
        self.w_rows = rows[order]  # row of each stored entry of W, CSC order
        self.w_cols = cols[order]
        self.indices = self.w_rows.cpu().numpy().astype(np.int32)
        self.indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(self.w_cols.cpu().numpy(), minlength=n))]
        ).astype(np.int32)
        pos = rank[inverse]
        self.jpos = pos[: pattern.nnz]  # where J's values go
        self.dpos = pos[pattern.nnz : pattern.nnz + n]  # the diagonal
        self.mpos = pos[pattern.nnz + n :] if mass is not None else None
        self.data: Tensor | None = None  # (B, nnz_w), W's stored entries (may carry grad)
        self.factors: list[Any] = [None] * batch

    def where(self, need: Tensor, new: Tensor, old: Tensor) -> Tensor:
        return torch.where(need[:, None], new, old)

    def norm_inf(self, J: Tensor) -> Tensor:
        return self.pattern.norm_inf(J)

    def _assemble(self, J: Tensor, alpha: Tensor | None, beta: Tensor | None) -> Tensor:
        """``W``'s stored entries ``(B, nnz_w)`` in CSC order (torch ops: differentiable)."""
        B = J.shape[0]
        if self.mass_vals is not None:
            assert self.mpos is not None
            m = self.mass_vals.to(J.dtype).expand(B, -1)
            a = m if alpha is None else m * alpha[:, None]
            data = J.new_zeros(B, self.nnz_w).index_add(1, self.mpos, a)
        else:
            one = J.new_ones(B, self.n)
            a = one if alpha is None else one * alpha[:, None]
            data = J.new_zeros(B, self.nnz_w).index_add(1, self.dpos, a)
        bj = J if beta is None else beta[:, None] * J
        return data.index_add(1, self.jpos, -bj)

    def factor(
        self, J: Tensor, alpha: Tensor | None, beta: Tensor | None, need: Tensor | None
    ) -> Tensor:
        from scipy.sparse import csc_matrix
        from scipy.sparse.linalg import splu

        data = self._assemble(J, alpha, beta)
        B = data.shape[0]
        todo = range(B) if need is None else torch.nonzero(need)[:, 0].tolist()
        if need is None or self.data is None:
            self.data = data
        else:
            self.data = torch.where(need[:, None], data, self.data)
        singular = torch.zeros(B, dtype=torch.bool)
        host = data.detach().cpu().numpy()
        for b in todo:
            d = host[b]
            self.factors[b] = None
            if not np.isfinite(d).all():
                singular[b] = True
                continue
            mat = csc_matrix((d, self.indices, self.indptr), shape=(self.n, self.n))
            try:
                self.factors[b] = splu(mat)
            except RuntimeError:  # "Factor is exactly singular"
                singular[b] = True
        return singular.to(J.device)

    def _solve_numpy(self, b: Tensor, trans: str, factors: list[Any] | None = None) -> Tensor:
        factors = self.factors if factors is None else factors
        host = b.detach().cpu().numpy()
        out = np.zeros_like(host)
        for s, lu in enumerate(factors):
            if lu is not None:  # no factor (singular, never needed): zeros, ok is False
                out[s] = lu.solve(host[s], trans=trans)
        return torch.from_numpy(out).to(b.device)

    def solve(self, b: Tensor, scale: Tensor | None = None) -> Tensor:
        assert self.data is not None
        if self.data.requires_grad or b.requires_grad:
            out: Tensor = _SparseSolve.apply(self, self.data, b)
            return out
        return self._solve_numpy(b, trans="N")


# --------------------------------------------------------------------------- GMRES


def _rms(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x, dim=-1) * (1.0 / math.sqrt(x.shape[-1]))


class GMRES(LinearSolver):
    """Matrix-free restarted GMRES for ``(α M − β J) x = b`` (module docstring).

    Args:
        rhs: the internal right-hand side, for the finite-difference products.
        mass: the mass matrix or ``None`` (identity).
        kappa: the Newton tolerance of the stepper (weighted units); a solve stops when
            the weighted RMS residual is below ``max(rtol ‖b‖, 1e-2 κ)``.
        rtol: the relative part of the stopping rule (``1e-2``: an inexact Newton
            iteration with forcing term 0.01; tighter costs products without helping).
        restart: Krylov vectors per cycle (30).
        maxiter: products per solve at most (150); an unconverged solve returns its best
            iterate and the Newton iteration judges it.
    """

    def __init__(
        self,
        rhs: RHSFn,
        mass: Tensor | None = None,
        kappa: float = 0.01,
        rtol: float = 1e-2,
        restart: int = 30,
        maxiter: int = 150,
    ) -> None:
        self.rhs = rhs
        self.mass = mass
        self.atol = 1e-2 * kappa
        self.rtol = rtol
        self.restart, self.maxiter = restart, maxiter
        self.J: MatrixFreeJacobian | None = None
        self.alpha: Tensor | None = None
        self.beta: Tensor | None = None
        self.wdiag: Tensor | None = None  # diag(W) for the Jacobi preconditioner
        self.nf = 0
        self.iterations = 0  # products, all solves together (diagnostics)

    def where(self, need: Tensor, new: MatrixFreeJacobian, old: MatrixFreeJacobian) -> Any:
        return new.where(need, old)

    def norm_inf(self, J: MatrixFreeJacobian) -> Tensor:
        return J.jnorm.detach()

    def factor(
        self,
        J: MatrixFreeJacobian,
        alpha: Tensor | None,
        beta: Tensor | None,
        need: Tensor | None,
    ) -> Tensor:
        B = J.y.shape[0]
        one = torch.ones(B, dtype=J.y.dtype, device=J.y.device)
        a = one if alpha is None else alpha
        b = one if beta is None else beta
        if need is None or self.alpha is None or self.beta is None:
            self.alpha, self.beta = a, b
        else:
            self.alpha = torch.where(need, a, self.alpha)
            self.beta = torch.where(need, b, self.beta)
        self.J = J
        dj = J.diagonal()
        if dj is None:
            self.wdiag = None
        else:
            m = (
                torch.ones_like(dj)
                if self.mass is None
                else self.mass.diagonal().to(dj.dtype).expand_as(dj)
            )
            wd = self.alpha[:, None] * m - self.beta[:, None] * dj
            # A zero (or non-finite) diagonal entry cannot precondition: leave it at 1.
            self.wdiag = torch.where(torch.isfinite(wd) & (wd != 0), wd, torch.ones_like(wd))
        return ~torch.isfinite(self.beta) | ~torch.isfinite(self.alpha)

    def _jv(self, v: Tensor) -> Tensor:
        """``J v`` at the stored point."""
        J = self.J
        assert J is not None
        if J.values is not None and J.pattern is not None:
            return J.pattern.matvec(J.values, v)
        if J.dense is not None:
            return torch.einsum("bij,bj->bi", J.dense, v)
        # Forward difference along v with ε = √ε_mach (1 + ‖y‖)/‖v‖ (per sample).
        eps = torch.finfo(v.dtype).eps
        nv = torch.linalg.vector_norm(v, dim=-1)
        ny = torch.linalg.vector_norm(J.y.detach(), dim=-1)
        e = torch.where(nv > 0, eps**0.5 * (1.0 + ny) / torch.where(nv > 0, nv, 1.0), 1.0)
        self.nf += 1
        return (self.rhs(J.t, J.y + e[:, None] * v) - J.f) / e[:, None]

    def _apply(self, x: Tensor) -> Tensor:
        """``W x = α M x − β J x``."""
        assert self.alpha is not None and self.beta is not None
        mx = x if self.mass is None else x @ self.mass.T
        return self.alpha[:, None] * mx - self.beta[:, None] * self._jv(x)

    def solve(self, b: Tensor, scale: Tensor | None = None) -> Tensor:
        # Scaled, right-preconditioned system: with w = 1/scale, D = diag(W) (or 1), solve
        #   Â û = b̂,   Â û = w ⊙ W (û/(w D)),   b̂ = w ⊙ b,   x = û/(w D),
        # so that the residual GMRES minimises, b̂ − Â û = w ⊙ (b − W x), is the weighted one.
        w = torch.ones_like(b) if scale is None else 1.0 / scale
        s = 1.0 / w if self.wdiag is None else 1.0 / (w * self.wdiag)
        bh = w * b
        tol = torch.clamp(self.rtol * _rms(bh.detach()), min=self.atol)

        def op(u: Tensor) -> Tensor:
            return w * self._apply(s * u)

        u = self._gmres(op, bh, tol)
        x = s * u
        # A non-finite right-hand side must not look like a converged zero step.
        bad = ~torch.isfinite(bh).all(-1)
        return torch.where(bad[:, None], torch.full_like(x, math.nan), x)

    def _gmres(self, op: Any, b: Tensor, tol: Tensor) -> Tensor:
        """Restarted GMRES for ``op(x) = b``, batched, stopping per sample at ``‖r‖_rms ≤ tol``.

        Arnoldi by classical Gram–Schmidt twice (batched products); the Hessenberg
        matrix's QR by Givens rotations accumulated in ``Qᵀ`` ``(B, m+1, m+1)`` so that an
        iteration costs a fixed number of tensor operations, whatever its index. A sample
        that has converged is frozen: its later columns count as identity columns with
        zero right-hand side, so they do not change its solution.
        """
        B, n = b.shape
        m = self.restart
        finite = torch.isfinite(b).all(-1)
        b = torch.where(finite[:, None], b, torch.zeros_like(b))
        tol2 = tol * math.sqrt(n)  # RMS → 2-norm
        x = torch.zeros_like(b)
        r = b
        beta = torch.linalg.vector_norm(r, dim=-1)
        done = beta <= tol2
        total = 0
        eye = torch.eye(m + 1, dtype=b.dtype, device=b.device)
        idx = torch.arange(m + 1, device=b.device)
        while not bool(done.all()) and total < self.maxiter:
            frozen = done.clone()
            kb = torch.zeros(B, dtype=torch.int64, device=b.device)  # columns in use
            safe = torch.where(beta > 0, beta, torch.ones_like(beta))
            v0 = torch.where(frozen[:, None], torch.zeros_like(r), r / safe[:, None])
            w0 = op(v0)
            # Krylov basis: a buffer written in place, or a list when autograd tapes it.
            taped = torch.is_grad_enabled() and (v0.requires_grad or w0.requires_grad)
            Vbuf = None if taped else b.new_zeros(B, m + 1, n)
            Vlist = [v0]
            if Vbuf is not None:
                Vbuf[:, 0] = v0
            Qt = eye.expand(B, m + 1, m + 1)
            rcols: list[Tensor] = []
            k = 0
            for j in range(min(m, self.maxiter - total)):
                wv = w0 if j == 0 else op(Vlist[j] if Vbuf is None else Vbuf[:, j])
                total += 1
                Vs = torch.stack(Vlist, 1) if Vbuf is None else Vbuf[:, : j + 1]
                # (einsum, not bmm: torch's bmm takes a very slow path for these
                # matrix-vector shapes on CPU, 100× slower measured with torch 2.13.)
                h = torch.einsum("bjn,bn->bj", Vs, wv)
                wv = wv - torch.einsum("bj,bjn->bn", h, Vs)
                h2 = torch.einsum("bjn,bn->bj", Vs, wv)
                wv = wv - torch.einsum("bj,bjn->bn", h2, Vs)
                h = h + h2
                hn = torch.linalg.vector_norm(wv, dim=-1)
                hcol = torch.cat([h, hn[:, None], h.new_zeros(B, m - j - 1)], 1)
                rcol = torch.einsum("bij,bj->bi", Qt, hcol)  # earlier rotations applied
                a_, b_ = rcol[:, j], rcol[:, j + 1]
                den = torch.sqrt(a_ * a_ + b_ * b_)
                ok = den > 0
                dsafe = torch.where(ok, den, torch.ones_like(den))
                c = torch.where(ok, a_ / dsafe, torch.ones_like(den))[:, None]
                sg = torch.where(ok, b_ / dsafe, torch.zeros_like(den))[:, None]
                rcols.append(torch.cat([rcol[:, :j], dsafe[:, None], rcol.new_zeros(B, m - j)], 1))
                # Rows j, j+1 of Qᵀ rotated by the new Givens rotation.
                qj, qj1 = Qt[:, j], Qt[:, j + 1]
                Qt = torch.cat(
                    [
                        Qt[:, :j],
                        (c * qj + sg * qj1)[:, None],
                        (c * qj1 - sg * qj)[:, None],
                        Qt[:, j + 2 :],
                    ],
                    1,
                )
                kb = torch.where(frozen, kb, torch.full_like(kb, j + 1))
                k = j + 1
                resid = beta * Qt[:, j + 1, 0].abs()  # |g_{j+1}|, g = β Qᵀ e_1
                frozen = frozen | (resid <= tol2) | ~torch.isfinite(resid) | ~ok
                hsafe = torch.where(hn > 0, hn, torch.ones_like(hn))
                vn = torch.where(
                    (frozen | (hn == 0))[:, None], torch.zeros_like(wv), wv / hsafe[:, None]
                )
                Vlist.append(vn)
                if Vbuf is not None:
                    Vbuf[:, j + 1] = vn
                if bool(frozen.all()):
                    break
            if k == 0:
                break
            # y = R⁻¹ g over each sample's own kb columns (identity beyond), x += V y.
            used = idx[:k][None, :] < kb[:, None]  # (B, k)
            R = torch.stack(rcols, 2)[:, :k, :k]
            R = torch.where(used[:, None, :], R, eye[:k, :k])
            g = torch.where(used, beta[:, None] * Qt[:, :k, 0], torch.zeros_like(R[:, 0]))
            y = torch.linalg.solve_triangular(R, g[:, :, None], upper=True)[:, :, 0]
            Vk = torch.stack(Vlist[:k], 1) if Vbuf is None else Vbuf[:, :k]
            x = x + torch.einsum("bk,bkn->bn", y, Vk)
            if total >= self.maxiter or bool(frozen.all()):
                break  # converged by the recurrence's residual (or out of products)
            # Restart from the true residual (the recurrence's may drift).
            r = b - op(x)
            total += 1
            beta = torch.linalg.vector_norm(r, dim=-1)
            done = done | (beta <= tol2) | ~torch.isfinite(beta)
        self.iterations += total
        return x


# --------------------------------------------------------------------------- choice


@dataclass(frozen=True)
class LinearSolverConfig:
    """Which linear solver a runner builds, resolved once per solve (:func:`linear_solver_config`).

    Attributes:
        kind: ``"dense"``, ``"sparse"`` or ``"gmres"``.
        pattern: the Jacobian's sparsity pattern (``None`` for dense, optional for gmres).
        jac: the user's ``jac`` in this path's representation, for the problem's own
            right-hand side: values on ``pattern`` (:func:`user_sparse_jacobian`), or for
            GMRES without a pattern the dense ``(B, n, n)``; ``None``: differentiate ``f``
            (colored with a pattern; finite-difference products without).
        kappa: the stepper's Newton tolerance (GMRES's stopping rule).
    """

    kind: str = "dense"
    pattern: SparsePattern | None = None
    jac: Any = None
    kappa: float = 0.01

    def build(
        self,
        rhs: RHSFn,
        y0: Tensor,
        dense_jac: Any,
        own: bool,
        autodiff: bool,
        need_ft: bool,
        mass: Tensor | None,
        differentiable: bool,
    ) -> tuple[JacobianProvider, LinearSolver]:
        """A Jacobian provider and a linear solver for a stepper of ``rhs``.

        ``dense_jac`` is what a dense provider would use (the problem's dense ``jac``, an
        adjoint's, or ``None``); ``own`` says ``rhs`` is the problem's own right-hand side
        with its own Jacobian. The sparse path applies there only (an adjoint system has
        another pattern): other right-hand sides get the dense path. GMRES applies to
        every right-hand side (for an adjoint's, ``dense_jac`` is not used: products are
        differences of ``rhs``, so no ``n × n`` matrix is formed).
        """
        batch, n = y0.shape
        if self.kind == "sparse" and isinstance(dense_jac, PatternJacobian):
            # A right-hand side that brings its own pattern (an adjoint system: −J_fᵀ).
            pattern = dense_jac.pattern.to(y0.device)
            provider = JacobianProvider(
                rhs, n, dense_jac.values, False, need_ft, pattern=pattern, output="sparse"
            )
            provider.differentiable = differentiable
            return provider, SparseLU(pattern, batch, mass)
        if self.kind == "sparse" and own and self.pattern is not None:
            pattern = self.pattern.to(y0.device)
            provider = JacobianProvider(
                rhs, n, self.jac, autodiff, need_ft, pattern=pattern, output="sparse"
            )
            provider.differentiable = differentiable
            return provider, SparseLU(pattern, batch, mass)
        if self.kind == "gmres":
            known = self.pattern.to(y0.device) if (own and self.pattern is not None) else None
            provider = JacobianProvider(
                rhs,
                n,
                self.jac if own else None,
                autodiff and own,
                need_ft,
                pattern=known,
                output="matrix_free",
            )
            provider.differentiable = differentiable
            return provider, GMRES(rhs, mass, kappa=self.kappa)
        provider = JacobianProvider(rhs, n, dense_jac, autodiff, need_ft)
        provider.differentiable = differentiable
        return provider, DenseLU(mass)


@dataclass
class PatternJacobian:
    """A Jacobian given as values on a sparsity pattern, for a right-hand side other than
    the problem's (the adjoint system's ``−J_fᵀ``, on the transposed pattern).

    Attributes:
        pattern: where the values live.
        values: ``(t (B,), y (B, n)) -> (B, nnz)`` in the pattern's order.
    """

    pattern: SparsePattern
    values: Any


def _family(solver: AbstractImplicitSolver) -> str:
    from hybrideq.solvers._base import AbstractBDF, AbstractDIRK, AbstractRosenbrock

    if isinstance(solver, AbstractRosenbrock):
        return "rosenbrock"
    if isinstance(solver, AbstractDIRK):
        return "dirk"
    if isinstance(solver, AbstractBDF):
        return "bdf"
    return "other"


def _probe_jac(prob: ODEProblem) -> Any:
    """One call of the user's ``jac`` at ``(t0, y0)`` (to see whether it is sparse)."""
    assert prob.jac is not None
    with torch.no_grad():
        if prob.batched:
            t0 = prob.tspan[0].expand(prob.batch_size)
            return prob.jac(t0, prob.y0, prob.p)
        return prob.jac(prob.tspan[0], prob.y0, prob.p)


def linear_solver_config(prob: ODEProblem, solver: AbstractImplicitSolver) -> LinearSolverConfig:
    """Resolve ``solver.linsolve`` for ``prob``.

    ``"auto"`` is sparse when the problem has a pattern (``jac_prototype``, or a ``jac``
    that returns a torch sparse tensor, seen by calling it once at ``(t0, y0)``), has
    ``n ≥ 200`` components and lives on the CPU, and the method has a sparse path; dense
    otherwise.

    Raises:
        ValueError: GMRES with a method other than a DIRK (a Rosenbrock method needs exact
            solves; the BDF has no Krylov path yet); ``"sparse"`` without a pattern, or on
            CUDA.
    """
    requested = getattr(solver, "linsolve", "auto")
    family = _family(solver)
    kappa = float(getattr(solver, "kappa", 0.01)) if family == "dirk" else 0.01
    if requested == "gmres" and family == "rosenbrock":
        raise ValueError(
            f"linsolve='gmres' cannot be used with {solver.name}: a Rosenbrock method needs "
            "exact linear solves (its order conditions assume them) and a Krylov solve is "
            "inexact. Use linsolve='sparse' (with a jac_prototype), or a DIRK method such "
            "as KenCarp4(linsolve='gmres')"
        )
    if requested == "gmres" and family != "dirk":
        raise ValueError(
            f"linsolve='gmres' is not available for {solver.name} yet; use a DIRK method "
            "(KenCarp4(linsolve='gmres')), or linsolve='sparse' with a jac_prototype, or "
            "linsolve='dense'"
        )
    if requested == "sparse" and family not in ("rosenbrock", "dirk", "bdf"):
        raise ValueError(
            f"linsolve='sparse' is not available for {solver.name}; use a Rosenbrock, DIRK "
            "or BDF method (Rodas5P, KenCarp4, QNDF) or linsolve='dense'"
        )
    if requested == "dense" or (
        requested == "auto" and family not in ("rosenbrock", "dirk", "bdf")
    ):
        return LinearSolverConfig("dense")
    n = prob.n
    if requested == "auto" and (n < AUTO_SPARSE_MIN_N or prob.device.type != "cpu"):
        return LinearSolverConfig("dense")
    pattern = None if prob.jac_prototype is None else SparsePattern.from_tensor(prob.jac_prototype)
    if pattern is None and prob.jac is not None:
        pattern = sparse_pattern_of(_probe_jac(prob), n)
    if requested == "auto":
        if pattern is None:
            return LinearSolverConfig("dense")
        requested = "sparse"
    if requested == "sparse":
        if prob.device.type != "cpu":
            raise ValueError(
                f"linsolve='sparse' runs on the CPU (SciPy's SuperLU) but the problem is on "
                f"{prob.device}; use linsolve='gmres' with a DIRK method (matrix-free, any "
                "device) or linsolve='dense'"
            )
        if pattern is None:
            raise ValueError(
                "linsolve='sparse' needs the Jacobian's sparsity: give jac_prototype= to the "
                "ODEProblem (an (n, n) sparse or boolean matrix), or make jac return a torch "
                "sparse tensor"
            )
    jac: Any = None
    if prob.jac is not None:
        if pattern is not None:
            jac = user_sparse_jacobian(
                prob.jac, prob.p, prob.batched, prob.state_shape, pattern, prob.dtype
            )
        else:  # GMRES with a dense user Jacobian: products with it
            jac = user_jacobian(prob.jac, prob.p, prob.batched, prob.state_shape, n, prob.dtype)
    return LinearSolverConfig(requested, pattern, jac, kappa)
