"""Variable-order BDF/NDF stepper (orders 1–5), quasi-constant step size, per sample.

The formulas are those of MATLAB's ``ode15s``: L. F. Shampine, M. W. Reichelt, "The
MATLAB ODE Suite", SIAM J. Sci. Comput. 18 (1997) 1–22, §2 (cited below as SR97). Each
sample ``b`` of the batch carries its own order ``k``, step ``h``, backward differences and
Jacobian/LU state; nothing loops over samples.

**Backward differences.** ``D[j] = ∇^j y_n`` (``D[0] = y_n``), computed at the constant
spacing ``h``; rows ``0 … K+2`` are kept (``K`` the maximum order; ``∇^{k+1}`` and
``∇^{k+2}`` feed the error estimates of the neighbouring orders). In that form the
order-``k`` NDF reads (SR97 §2, with ``γ_k = Σ_{j=1}^k 1/j``)::

    Σ_{m=1}^k (1/m) ∇^m y_{n+1} = h f(t_{n+1}, y_{n+1}) + κ_k γ_k (y_{n+1} − y⁰_{n+1})

with the predictor ``y⁰_{n+1} = Σ_{j=0}^k ∇^j y_n``. Writing ``y_{n+1} = y⁰ + d`` (so
``d = ∇^{k+1} y_{n+1}``) it becomes, with ``α_k = (1 − κ_k) γ_k`` and a mass matrix ``M``::

    α_k M d + M Σ_{j=1}^k γ_j ∇^j y_n − h f(t_{n+1}, y⁰ + d) = 0,

i.e. ``M (ψ + d) = c f(t_{n+1}, y⁰ + d)`` with ``ψ = Σ_j γ_j D[j] / α_k`` and
``c = h/α_k``. ``κ = 0`` gives the classical BDFs; the NDF values
``κ = (−0.1850, −1/9, −0.0823, −0.0415, 0)`` (SR97 Table 1) trade a little stability for a
smaller error constant.

**Newton.** Simplified Newton with the iteration matrix ``M − c J``::

    (M − c J) Δ = c f(t_{n+1}, y⁰ + d) − M (ψ + d),      d ← d + Δ

at most ``max_newton`` iterations (4, as in ``ode15s``), stopped with the rate test of
``ode15s`` (SR97 §2; L. F. Shampine, "Implementation of implicit formulas for the
solution of ODEs", SIAM J. Sci. Stat. Comput. 1 (1980)): with ``ρ = ‖Δ_i‖/‖Δ_{i−1}‖``,
divergence when ``ρ ≥ 1`` or the predicted error after the remaining iterations
``ρ^{4−i}/(1 − ρ) ‖Δ_i‖`` exceeds the tolerance;
convergence when ``ρ/(1 − ρ) ‖Δ_i‖ < tol`` (``tol = max(10 ε/rtol, min(0.03, √rtol))``).
``J`` is kept from step to step (it is not recomputed after acceptance); the LU of
``M − cJ`` is redone when ``c`` (step or order) changes. When Newton fails with a Jacobian
from an earlier point, ``J`` is recomputed at the current point and the step is retried
in the same attempt; a failure with a current Jacobian is reported through ``ok`` and the
loop halves the step. A singular ``M`` (index-1 DAE) needs nothing special: its
algebraic rows make Newton solve ``0 = g(y)``.

**Error and order selection** (SR97 §2): the local error of order ``k`` is
``(κ_k γ_k + 1/(k+1)) d``. After ``k + 1`` accepted steps of equal size, the scaled norms
of ``err_{k−1} = C_{k−1} ∇^k y_{n+1}`` and ``err_{k+1} = C_{k+1} ∇^{k+2} y_{n+1}`` are
compared with the current one: each gives a step factor ``err_q^{−1/(q+1)}``; the order
with the largest factor wins and the step is multiplied by ``min(10, s · factor)``
(``s = 0.9 (2·4 + 1)/(2·4 + iterations)``, a safety factor that shrinks with the Newton
work). A rejected step shrinks by ``max(0.2, s · EEst^{−1/(k+1)})``.

**Changing the step size** (SR97 §2): the differences at spacing
``h`` become those at ``ρh`` by ``D_new[1:k+1] = (R U)ᵀ D[1:k+1]`` with
``R_ij = Π_{m=1}^{i} (m − 1 − ρ j)/m`` and ``U = R|_{ρ=1}`` (``U_ij = (−1)^i C(j, i)``).
The entries of ``R U`` do not depend on ``k``, and ``U_lj = 0`` for ``l > j``, so the
top-left ``k × k`` block of the ``K × K`` product is exactly the order-``k`` matrix: one
batched ``bmm`` with per-sample ``ρ``, masked to ``i, j ≤ k``, rescales every sample at
once. Row 0 (``y_n``) never changes. This happens inside :meth:`BDFStepper.attempt`
whenever the loop hands in a ``dt`` other than the stepper's ``h`` (a new proposal, a
rejection, a halving after a failed solve, truncation at ``t1`` or at a stop time), and
resets the count of equal steps.

**Bookkeeping** (who does what, per loop iteration):

- :meth:`~BDFStepper.attempt` rescales, predicts, solves, and computes the *tentative*
  new differences ``∇^j y_{n+1}`` (``∇^{k+1} = d``, ``∇^{k+2} = d − ∇^{k+1} y_n``,
  ``∇^j y_{n+1} = ∇^j y_n + ∇^{j+1} y_{n+1}`` downward), used for the dense output;
- :meth:`~BDFStepper.propose` (adaptive runs; called under ``no_grad``) decides the next
  order and step from the tentative differences;
- :meth:`~BDFStepper.after` commits the differences of the accepted samples (outside
  ``no_grad``, so direct backpropagation sees them) and the order decision. Without
  :meth:`propose` (``adaptive=False``) it also chooses the order, keeping the step.

**Dense output.** The order-``k`` interpolant of the accepted step is the polynomial
through ``y_{n+1}, y_n, …`` at spacing ``h`` (Newton's backward form, SR97 §2)::

    y(t_{n+1} + s h) = Σ_{j=0}^k b_j(s) ∇^j y_{n+1},   b_j(s) = s(s+1)…(s+j−1)/j!.

With ``t = t_n + θh`` (``s = θ − 1``) and ``y_{n+1} = y_n + ∇y_{n+1}``::

    y(t_n + θh) = y_n + θ ∇y_{n+1} + Σ_{j=2}^k b_j(θ − 1) ∇^j y_{n+1},

and ``b_j(θ − 1) = (θ−1)θ(θ+1)…(θ+j−2)/j!`` vanishes at ``θ = 0`` for ``j ≥ 2``: the
:class:`~._interpolation.InterpolationScheme` form with ``V_j = ∇^j y_{n+1}``
(``j = 1 … K``, zero above the sample's order), ``P_1 = θ`` and ``P_j = b_j(θ − 1)``.
It interpolates ``y_n`` (``θ = 0``) and ``y_{n+1}`` (``θ = 1``) exactly.

**Start.** Order 1 with ``D[1] = h y'_0`` (``y'_0 = M⁺ f(t_0, y_0)``, the pseudo-inverse
for a singular ``M``) and the loop's initial step, which is computed for the stepper's
:attr:`~BDFStepper.order` ``= 1``, the order the first steps are taken at (scipy's and
``ode15s``'s choice: the step from the Hairer–Nørsett–Wanner rule for an order-1 method).
A state that changed under the stepper between steps (a jump at a stop time) restarts
that sample at order 1, and so does :meth:`BDFStepper.restart` (a composite method's
switch into BDF; :mod:`._composite`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.torch._implicit_loop import JacobianNorm, StepAttempt
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import DenseLU, LinearSolver
from hybrideq.engines.torch._loop import RHS

__all__ = ["NDF_KAPPA", "BDFStepper", "dense_rows"]

# SR97 Table 1: the NDF coefficients κ_k for k = 1 … 5 (κ_5 = 0: order 5 is the BDF).
NDF_KAPPA = (-0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0)
MAX_ORDER = 5
MAX_FACTOR = 10.0
MIN_FACTOR = 0.2
SAFETY = 0.9


def dense_rows(max_order: int) -> tuple[tuple[float, ...], ...]:
    """Coefficients of ``P_1 … P_K`` (``θ¹ … θ^K``) of the BDF interpolant (module docstring)."""
    rows: list[tuple[float, ...]] = [(1.0,)]
    for j in range(2, max_order + 1):
        # b_j(θ − 1) = Π_{m=0}^{j−1} (θ − 1 + m) / j!: roots 1 − m.
        poly = np.polynomial.polynomial.polyfromroots([1.0 - m for m in range(j)])
        poly = poly / math.factorial(j)
        assert abs(poly[0]) < 1e-15
        rows.append(tuple(float(x) for x in poly[1:]))
    return tuple(rows)


def _u_matrix(k: int) -> list[list[float]]:
    """``U_ij = (−1)^i C(j, i)`` for ``i, j = 1 … k`` (SR97 §2 at ρ = 1), exact."""
    return [[(-1.0) ** i * math.comb(j, i) for j in range(1, k + 1)] for i in range(1, k + 1)]


class BDFStepper(JacobianNorm):
    """Variable-order, quasi-constant-step BDF/NDF for the whole batch (module docstring).

    Args:
        rhs: the right-hand side ``(t (B,), y (B, n)) -> (B, n)``.
        jacobian: provider of ``J = ∂f/∂y``.
        mass: constant mass matrix ``(n, n)`` or ``None`` (identity).
        rtol, atol: the loop's tolerances (scalars or ``(1, n)``).
        max_order: the highest order used (1 … 5).
        kappa: ``κ_1 … κ_5`` (zeros: BDF; :data:`NDF_KAPPA`: NDF).
        max_newton: Newton iterations per solve (4 in ``ode15s``).
        joint: one shared step and order for the whole batch (the loop's ``joint``).
    """

    def __init__(
        self,
        rhs: RHS,
        jacobian: JacobianProvider,
        mass: Tensor | None,
        rtol: Tensor,
        atol: Tensor,
        max_order: int,
        kappa: tuple[float, ...],
        max_newton: int,
        joint: bool,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
        linsolve: LinearSolver | None = None,
    ) -> None:
        if not 1 <= max_order <= MAX_ORDER:
            raise ValueError(f"max_order must be 1 … {MAX_ORDER}, got {max_order}")
        self.rhs = rhs
        self.jacobian = jacobian
        self.mass = mass
        # W = M − cJ is factorised and solved by the linear solver (α = 1, β = c): batched
        # dense LU by default, SuperLU on the sparsity pattern with linsolve="sparse".
        self.linsolve = linsolve if linsolve is not None else DenseLU(mass)
        self.rtol, self.atol = rtol, atol
        self.K = K = int(max_order)
        self.max_newton = int(max_newton)
        self.joint = joint
        self.order = 1  # the order of the first step (the loop's initial step uses it)
        self.scheme_key = f"bdf:{K}"
        self.scheme = InterpolationScheme.polynomial(self.scheme_key, dense_rows(K))
        eps = torch.finfo(dtype).eps
        r = float(torch.as_tensor(rtol).min())
        self.newton_tol = max(10 * eps / r, min(0.03, r**0.5))

        # Coefficients indexed by the order q = 0 … K+1 (q = 0 and q = K+1 only pad).
        kap = [0.0, *[float(x) for x in kappa[:K]], 0.0]
        gam = [0.0] + [sum(1.0 / j for j in range(1, q + 1)) for q in range(1, K + 2)]
        self.gamma = torch.tensor(gam, dtype=dtype, device=device)
        self.alpha = torch.tensor(
            [(1 - kq) * gq for kq, gq in zip(kap, gam, strict=True)], dtype=dtype, device=device
        )
        # Local error constant of order q: κ_q γ_q + 1/(q + 1) (SR97 §2).
        self.err_const = torch.tensor(
            [kq * gq + 1.0 / (q + 1) for q, (kq, gq) in enumerate(zip(kap, gam, strict=True))],
            dtype=dtype,
            device=device,
        )
        self.U = torch.tensor(_u_matrix(K), dtype=dtype, device=device)
        idx = torch.arange(1, K + 1, device=device)
        self._i = idx.to(dtype)[:, None]  # (K, 1): row index i of R
        self._j = idx.to(dtype)[None, :]  # (1, K): column index j of R
        self._rows = torch.arange(K + 3, device=device)  # difference rows 0 … K+2
        self.eye_k = torch.eye(K, dtype=dtype, device=device)
        self.mass_pinv = torch.linalg.pinv(mass) if mass is not None else None

        z = torch.zeros(batch, dtype=torch.bool, device=device)
        self.D: Tensor | None = None  # (B, K+3, n) backward differences at spacing h
        self.k = torch.ones(batch, dtype=torch.int64, device=device)
        self.h = torch.ones(batch, dtype=dtype, device=device)
        self.n_equal = torch.zeros(batch, dtype=torch.int64, device=device)
        self.started = z.clone()
        self.J: Any = None  # in the linear solver's representation
        self._jnorm: Tensor | None = None  # ‖J‖_∞, computed when asked for
        self._no_jnorm = torch.zeros(batch, dtype=dtype, device=device)
        self.j_valid = z.clone()  # a Jacobian is held
        self.j_fresh = z.clone()  # … and it was computed at the current point
        self.c_lu = torch.zeros(batch, dtype=dtype, device=device)  # c of the LU
        self.lu_valid = z.clone()
        # The attempt waiting for its verdict, and the decision taken by propose().
        self._pending: dict[str, Tensor] | None = None
        self._decided: Tensor | None = None
        # Debug record: the order of every accepted step (0 where none), per iteration.
        self.order_log: list[Tensor] = []

    # ------------------------------------------------------------------ helpers

    def _m(self, v: Tensor) -> Tensor:
        """``M v`` for a batch of vectors."""
        return v if self.mass is None else v @ self.mass.T

    def _norm(self, x: Tensor, scale: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x / scale, dim=-1) * (1.0 / x.shape[-1] ** 0.5)

    def _rescale(self, D: Tensor, k: Tensor, rho: Tensor, change: Tensor) -> Tensor:
        """Differences at spacing ``ρh`` from those at ``h`` (SR97 §2)."""
        # R_ij = Π_{m=1}^{i} (m − 1 − ρ j)/m, i, j = 1 … K, per sample: a cumulative product
        # down the rows of (i − 1 − ρ j)/i.
        fac = (self._i - 1 - rho[:, None, None] * self._j) / self._i  # (B, K, K)
        R = torch.cumprod(fac, dim=1)
        RU = R @ self.U
        inside = (self._i[None] <= k[:, None, None]) & (self._j[None] <= k[:, None, None])
        A = torch.where(inside, RU, self.eye_k)
        A = torch.where(change[:, None, None], A, self.eye_k)
        K = self.K
        top = torch.bmm(A.transpose(1, 2), D[:, 1 : K + 1])  # D_new[a] = Σ_b (RU)_ba D[b]
        return torch.cat((D[:, :1], top, D[:, K + 1 :]), 1)

    def _gather_row(self, D: Tensor, row: Tensor) -> Tensor:
        """``D[b, row[b]]`` for every sample: ``(B, n)``."""
        n = D.shape[-1]
        return D.gather(1, row.clamp(0, D.shape[1] - 1)[:, None, None].expand(-1, 1, n))[:, 0]

    def _factor(self, need: Tensor, c: Tensor) -> Tensor:
        """Refactorise ``M − cJ`` for the samples in ``need``; returns the singular ones."""
        assert self.J is not None
        singular = self.linsolve.factor(self.J, None, c, need)
        self.c_lu = torch.where(need, c, self.c_lu)
        self.lu_valid = self.lu_valid | need
        return need & singular

    def _jac(self, need: Tensor, t: Tensor, y: Tensor) -> None:
        jac, _ = self.jacobian(t, y, None)
        self.J = jac if self.J is None else self.linsolve.where(need, jac, self.J)
        self.j_valid = self.j_valid | need
        self.j_fresh = self.j_fresh | need
        self._jnorm = None

    def restart(self, mask: Tensor) -> None:
        """Forget the history of the samples in ``mask`` (a composite's switch into BDF).

        Their next :meth:`attempt` starts afresh at order 1 from the ``(t, y, f0)`` it is
        given, with the ``dt`` it is given (module docstring, *Start*), and computes a new
        Jacobian there: the one held is from before the samples left this method.
        """
        self.started = self.started & ~mask
        self.j_valid = self.j_valid & ~mask
        self.j_fresh = self.j_fresh & ~mask
        self.lu_valid = self.lu_valid & ~mask

    def _newton(
        self,
        t_new: Tensor,
        y_pred: Tensor,
        psi: Tensor,
        c: Tensor,
        scale: Tensor,
        todo: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, int]:
        """Simplified Newton for ``d`` on the samples in ``todo`` (module docstring).

        Returns ``d``, the converged mask, iterations per sample and evaluations of ``f``.
        """
        tol = self.newton_tol
        maxit = self.max_newton
        d = torch.zeros_like(y_pred)
        cc = c[:, None]
        still = todo.clone()
        conv = torch.zeros_like(todo)
        iters = torch.zeros(todo.shape, dtype=torch.int64, device=todo.device)
        ndy_old = torch.ones_like(c)
        evals = 0
        for it in range(maxit):
            f = self.rhs(t_new, y_pred + d)
            evals += 1
            still = still & torch.isfinite(f).all(-1)
            # (M − cJ) Δ = c f(t_{n+1}, y⁰ + d) − M (ψ + d)
            res = cc * f - self._m(psi + d)
            dy = self.linsolve.solve(res, scale)
            ndy = self._norm(dy.detach(), scale)
            iters = iters + still
            rate = one_minus = ndy  # placeholders, used from the second iteration on
            if it > 0:
                rate = ndy / ndy_old.clamp_min(torch.finfo(c.dtype).tiny)
                one_minus = (1 - rate).clamp_min(torch.finfo(c.dtype).tiny)
                diverge = (rate >= 1) | ~torch.isfinite(rate)
                diverge = diverge | (rate.pow(maxit - it) / one_minus * ndy > tol)
                still = still & ~diverge
            d = torch.where(still[:, None], d + dy, d)
            done = ndy == 0
            if it > 0:
                done = done | (rate / one_minus * ndy < tol)  # ρ/(1 − ρ) ‖Δ‖ < tol
            done = still & done
            conv = conv | done
            still = still & ~done
            ndy_old = ndy
            if not bool(still.any()):
                break
        return d, conv, iters, evals

    # ------------------------------------------------------------------ the protocol

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        batch, n = y.shape
        K = self.K
        nf_before = self.jacobian.nf
        if self.D is None:
            self.D = torch.zeros(batch, K + 3, n, dtype=y.dtype, device=y.device)
        D = self.D
        with torch.no_grad():
            # Start (or restart after the state was changed under us): order 1, D[1] = h y'.
            moved = (y.detach() != D[:, 0].detach()).any(-1)
            restart = active & (~self.started | moved)
            h_eff = torch.where(active, dt, self.h)
            rho = h_eff / self.h
            change = active & ~restart & (rho != 1)
        if bool(restart.any()):
            yp = f0 if self.mass_pinv is None else f0 @ self.mass_pinv.T
            fresh = torch.zeros_like(D)
            fresh = torch.cat((y[:, None], (dt[:, None] * yp)[:, None], fresh[:, 2:]), 1)
            D = torch.where(restart[:, None, None], fresh, D)
            self.k = torch.where(restart, 1, self.k)
            self.n_equal = self.n_equal.masked_fill(restart, 0)
            self.started = self.started | restart
        if bool(change.any()):
            with torch.no_grad():
                rho_c = torch.where(change, rho, torch.ones_like(rho))
            D = self._rescale(D, self.k, rho_c, change)
            self.n_equal = self.n_equal.masked_fill(change, 0)
        # Row 0 is the loop's y (same values; one autograd graph).
        D = torch.cat((y[:, None], D[:, 1:]), 1)
        self.D = D
        self.h = torch.where(active, dt, self.h)
        h = self.h
        k = self.k

        # Predictor y⁰ = Σ_{j≤k} D[j]; ψ = Σ_{j=1}^k γ_j D[j] / α_k; c = h/α_k.
        rows = self._rows[: K + 1]
        w_pred = (rows[None, :] <= k[:, None]).to(y.dtype)  # (B, K+1)
        alpha_k = self.alpha[k]
        w_psi = w_pred * self.gamma[: K + 1][None, :] / alpha_k[:, None]
        Dk = D[:, : K + 1]
        y_pred = torch.bmm(w_pred[:, None, :], Dk)[:, 0]
        psi = torch.bmm(w_psi[:, None, :], Dk)[:, 0]
        c = h / alpha_k
        t_new = t + h

        need_j = active & ~self.j_valid
        if bool(need_j.any()):
            self._jac(need_j, t, y)
        need_lu = active & (~self.lu_valid | need_j | (c != self.c_lu))
        singular = torch.zeros_like(active)
        if bool(need_lu.any()):
            singular = self._factor(need_lu, c)
        with torch.no_grad():
            scale = torch.addcmul(self.atol, y_pred.detach().abs(), self.rtol)
        d, conv, iters, evals = self._newton(t_new, y_pred, psi, c, scale, active & ~singular)
        nlu = need_lu.long()
        njac = need_j.long()
        # Newton failed with a Jacobian from an earlier point: a new J here, and once more.
        retry = active & ~conv & ~self.j_fresh
        if bool(retry.any()):
            self._jac(retry, t, y)
            sing2 = self._factor(retry, c)
            d2, conv2, iters2, ev2 = self._newton(t_new, y_pred, psi, c, scale, retry & ~sing2)
            d = torch.where(retry[:, None], d2, d)
            conv = torch.where(retry, conv2, conv)
            iters = iters + iters2
            singular = torch.where(retry, sing2, singular)
            evals += ev2
            njac = njac + retry
            nlu = nlu + retry
        evals += self.jacobian.nf - nf_before
        y1 = y_pred + d
        ok = active & conv & ~singular & torch.isfinite(d).all(-1)
        err = self.err_const[k][:, None] * d

        # Tentative differences of y_{n+1} (SR97 §2): ∇^{k+2} = d − ∇^{k+1} y_n,
        # ∇^{k+1} = d, ∇^j y_{n+1} = ∇^j y_n + ∇^{j+1} y_{n+1} for j = k … 1, ∇^0 = y_{n+1}.
        d_k1 = self._gather_row(D, k + 1)
        run = d
        new_rows: list[Tensor] = []
        for i in range(K + 2, 0, -1):
            Di = D[:, i]
            below = (k >= i)[:, None]
            row = torch.where(below, Di + run, Di)
            row = torch.where((k == i - 1)[:, None], d, row)
            row = torch.where((k == i - 2)[:, None], d - d_k1, row)
            run = torch.where(below, row, run)
            new_rows.append(row)
        new_rows.append(y1)
        Dn = torch.stack(new_rows[::-1], 1)  # (B, K+3, n)
        v_mask = (self._rows[1 : K + 1][None, :] <= k[:, None]).to(y.dtype)
        v = Dn[:, 1 : K + 1] * v_mask[:, :, None]
        # At convergence M (ψ + d) = c f(t_{n+1}, y_{n+1}): f at the new point for free.
        f1 = self._m(psi + d) / c[:, None]
        self._pending = {
            "Dn": Dn,
            "y0": y.detach(),
            "y1": y1.detach(),
            "err": err.detach(),
            "iters": iters,
            "k": k,
        }
        self._decided = None
        return StepAttempt(
            y1=y1,
            err=err,
            ok=ok,
            v=v,
            f1=f1,
            evals=evals,
            njac=njac,
            nlu=nlu,
            nnewton=iters,
        )

    def _scaled(self, x: Tensor, scale: Tensor) -> Tensor:
        e = self._norm(x, scale)
        if self.joint:
            e = e.square().mean().sqrt().expand_as(e)
        return e

    def _choose(self, accept: Tensor, eest: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Order selection after ``k + 1`` equal steps (SR97 §2; module docstring).

        Returns the new order, the step factor (1 where nothing is decided) and the
        safety factor of every sample.
        """
        p = self._pending
        assert p is not None
        k = p["k"]
        K = self.K
        iters = p["iters"]
        if self.joint:
            iters = iters.max().expand_as(iters)
        safety = SAFETY * (2 * self.max_newton + 1) / (2 * self.max_newton + iters.to(eest.dtype))
        decide = accept & (self.n_equal + 1 >= k + 1)
        if not bool(decide.any()):
            return k, torch.ones_like(eest), safety
        Dn = p["Dn"].detach()
        scale = torch.addcmul(self.atol, torch.maximum(p["y0"].abs(), p["y1"].abs()), self.rtol)
        inf = torch.full_like(eest, torch.inf)
        e_m = self._scaled(self.err_const[k - 1][:, None] * self._gather_row(Dn, k), scale)
        e_m = torch.where(k > 1, e_m, inf)
        kp = (k + 1).clamp(max=K + 1)
        e_p = self._scaled(self.err_const[kp][:, None] * self._gather_row(Dn, k + 2), scale)
        e_p = torch.where(k < K, e_p, inf)
        tiny = torch.finfo(eest.dtype).tiny
        kf = k.to(eest.dtype)
        errs = torch.stack((e_m, eest, e_p), 1).clamp_min(tiny)  # orders k−1, k, k+1
        expo = -1.0 / (kf[:, None] + torch.arange(3, device=k.device, dtype=eest.dtype))
        factors = errs.pow(expo)
        best = factors.argmax(1)
        k_new = torch.where(decide, k + best - 1, k)
        fac = torch.clamp(safety * factors.amax(1), max=MAX_FACTOR)
        fac = torch.where(decide, fac, torch.ones_like(fac))
        return k_new, fac, safety

    def propose(self, dt: Tensor, eest: Tensor, accept: Tensor, failed: Tensor) -> Tensor:
        """Next step per sample: order selection after acceptance, shrink after rejection."""
        p = self._pending
        assert p is not None
        k = p["k"]
        k_new, fac, safety = self._choose(accept, eest)
        tiny = torch.finfo(eest.dtype).tiny
        shrink = torch.clamp(
            safety * eest.clamp_min(tiny).pow(-1.0 / (k.to(eest.dtype) + 1)), min=MIN_FACTOR
        )
        shrink = torch.where(torch.isfinite(shrink), shrink, torch.full_like(shrink, MIN_FACTOR))
        shrink = shrink.clamp(max=1.0)
        self._decided = k_new
        return torch.where(accept, dt * fac, dt * shrink)

    def after(self, accept: Tensor, failed: Tensor) -> None:
        p = self._pending
        self.j_fresh = self.j_fresh & ~accept
        if p is None:  # a second call (a jump at a stop time): nothing to commit
            return
        k = p["k"]
        if self._decided is None:
            # Fixed steps (no propose): choose the order, keep the step.
            err = p["err"]
            scale = torch.addcmul(self.atol, torch.maximum(p["y0"].abs(), p["y1"].abs()), self.rtol)
            with torch.no_grad():
                k_new, _, _ = self._choose(accept, self._scaled(err, scale))
        else:
            k_new = self._decided
        self._pending = None
        assert self.D is not None
        self.D = torch.where(accept[:, None, None], p["Dn"], self.D)
        self.n_equal = torch.where(accept, self.n_equal + 1, self.n_equal)
        # After a decision (k + 1 equal steps), the count restarts (scipy, ode15s).
        chosen = accept & (self.n_equal >= k + 1)
        self.n_equal = self.n_equal.masked_fill(chosen, 0)
        self.k = torch.where(accept, k_new, k)
        self.order_log.append(torch.where(accept, k, torch.zeros_like(k)))

    def orders(self) -> Tensor:
        """The order of every accepted step ``(iterations, B)`` (0: none that iteration)."""
        if not self.order_log:
            return torch.zeros(0, self.k.shape[0], dtype=torch.int64, device=self.k.device)
        return torch.stack(self.order_log)
