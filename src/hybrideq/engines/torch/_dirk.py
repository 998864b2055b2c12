"""(E)SDIRK steppers: diagonally implicit Runge–Kutta stages solved by simplified Newton.

Stage ``i`` solves for its increment ``z_i`` (stage value ``y + z_i``)::

    z_i = r_i + hγ f(t + c_i h, y + z_i),     r_i = h Σ_{j<i} A_ij f_j

with simplified Newton iterations ``W Δ = −(z − r_i − hγ f(t_i, y + z))``,
``W = I − hγ J``, one factorisation of ``W`` shared by all stages (every stage has the same
``γ``): a batched dense LU by default, SuperLU on the sparsity pattern
(``linsolve="sparse"``), or none at all with Newton–Krylov (``linsolve="gmres"``: restarted
GMRES with Jacobian-vector products, an inexact Newton iteration judged by the same
convergence test); see :mod:`._linsolve`. The stage derivative is recovered without another evaluation as
``f_i = (z_i − r_i)/(hγ)``. Then ``y1 = y + h Σ b_i f_i`` and the error estimate is
``W⁻¹ (h Σ btilde_i f_i)``, the estimate filtered through the iteration matrix
(Hairer–Wanner, *Solving ODEs II*, §IV.8, eq. (8.20); OrdinaryDiffEq.jl's
``smooth_est = true``), which keeps it bounded on very stiff components.

Newton convergence follows Hairer–Wanner §IV.8 and OrdinaryDiffEq.jl's ``nlsolve!``
(``OrdinaryDiffEqNonlinearSolve/src/nlsolve.jl``): with the contraction rate
``θ_k = max(0.3 θ_{k−1}, ‖Δ_k‖/‖Δ_{k−1}‖)`` (the first iteration reuses the last solve's
``θ``, or 1 after a rejected step) and ``η = θ/(1 − θ)``, the iteration has converged when
``η ‖Δ_k‖ < κ`` (or ``‖Δ_1‖ < 1e-5`` at once), and has failed when ``θ > 2``, when an
iterate is not finite, or after ``max_newton`` iterations. ``θ ≈ 1`` within
``100 √ε`` is the round-off limit: converged if ``‖Δ‖ ≤ 1``, failed otherwise. Norms are the
solver's weighted RMS norm.

Reuse, per sample: the Jacobian is kept from step to step while Newton converges fast
(every ``θ ≤ 1/5``, OrdinaryDiffEq's ``fast_convergence_cutoff``); it is recomputed after
slow convergence or a failure. ``W`` is refactorised when ``J`` changes or ``hγ`` moved by
more than 20 % since the last factorisation (``new_W_γdt_cutoff``), otherwise reused.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hybrideq.engines.torch._implicit_loop import JacobianNorm, StepAttempt
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import DenseLU, LinearSolver
from hybrideq.engines.torch._loop import RHS

__all__ = ["DIRKStepper"]

FAST_CONVERGENCE = 0.2
NEW_W_CUTOFF = 0.2


class DIRKStepper(JacobianNorm):
    """Attempts one (E)SDIRK step for the whole batch (see the module docstring)."""

    def __init__(
        self,
        tableau: Any,
        rhs: RHS,
        jacobian: JacobianProvider,
        rtol: Tensor,
        atol: Tensor,
        max_newton: int,
        kappa: float,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
        linsolve: LinearSolver | None = None,
    ) -> None:
        self.tab = tableau
        self.linsolve = linsolve if linsolve is not None else DenseLU()
        self.rhs = rhs
        self.jacobian = jacobian
        self.rtol, self.atol = rtol, atol
        self.max_newton, self.kappa = max_newton, kappa
        self.order = int(tableau.order)
        self.scheme_key = "hermite"
        self.scheme = InterpolationScheme.polynomial(self.scheme_key, ())
        self.s = len(tableau.c)
        self.gamma = float(tableau.gamma)
        self.explicit_first = bool(getattr(tableau, "explicit_first_stage", False))
        self.J: Any = None  # in the linear solver's representation
        z = torch.zeros(batch, dtype=torch.bool, device=device)
        self.j_valid = z.clone()  # a Jacobian is held (possibly from an earlier point)
        self.j_fresh = z.clone()  # it was computed at the current point
        self.hg_w = torch.zeros(batch, dtype=dtype, device=device)  # hγ of the factorised W
        self.w_valid = z.clone()
        # Contraction rate of the last Newton iteration, carried to the next solve's first
        # iteration (1 after a rejected step: no evidence of convergence yet).
        self.prev_theta = torch.ones(batch, dtype=dtype, device=device)
        self.stall = 100 * torch.finfo(dtype).eps ** 0.5
        self.slow = z.clone()  # slow convergence seen in the last attempt
        self._jnorm: Tensor | None = None  # ‖J‖_∞, computed when asked for
        self._no_jnorm = torch.zeros(batch, dtype=dtype, device=device)
        self.eps = torch.finfo(dtype).eps

    def _norm(self, x: Tensor, scale: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x / scale, dim=-1) * (1.0 / x.shape[-1] ** 0.5)

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        tab = self.tab
        batch = y.shape[0]
        nf_before = self.jacobian.nf
        lin_nf_before = self.linsolve.nf
        need_j = active & ~self.j_valid
        if bool(need_j.any()):
            jac, _ = self.jacobian(t, y, f0)
            self.J = jac if self.J is None else self.linsolve.where(need_j, jac, self.J)
            self.j_valid = self.j_valid | need_j
            self.j_fresh = self.j_fresh | need_j
            self.w_valid = self.w_valid & ~need_j
            self._jnorm = None
        assert self.J is not None
        evals = self.jacobian.nf - nf_before
        h = torch.where(dt == 0, torch.ones_like(dt), dt)
        hg = h * self.gamma
        # Refactorise W where J changed or hγ moved by more than 20 %.
        moved = (hg / torch.where(self.hg_w == 0, hg, self.hg_w) - 1).abs() > NEW_W_CUTOFF
        need_w = active & (~self.w_valid | moved)
        if bool(need_w.any()):
            # W = I − hγ J (α = 1, β = hγ), refactorised for the samples in need_w.
            singular = need_w & self.linsolve.factor(self.J, None, hg, need_w)
            self.hg_w = torch.where(need_w, hg, self.hg_w)
            self.w_valid = self.w_valid | need_w
        else:
            singular = torch.zeros_like(active)
        lin = self.linsolve

        scale = torch.addcmul(self.atol, y.abs(), self.rtol)
        hc = h[:, None]
        hgc = hg[:, None]
        fs: list[Tensor] = []
        ok = active & ~singular
        theta_max = torch.zeros_like(dt)
        nnewton = torch.zeros(batch, dtype=torch.int64, device=y.device)
        for i in range(self.s):
            row = tab.A[i]
            if i == 0 and self.explicit_first:
                fs.append(f0)
                continue
            r = torch.zeros_like(y)
            for j_, a in enumerate(row[:i]):
                if float(a) != 0.0:
                    r = r.add(fs[j_], alpha=float(a))
            r = r * hc
            ti = t + float(tab.c[i]) * h
            # Predictor (OrdinaryDiffEq.jl's stage predictors α, see tableaus/_dirk.py):
            # the guess for h f_i is Σ_j α_ij h f_j, i.e. z_i⁰ = r_i + hγ Σ_j α_ij f_j;
            # without α, the previous stage's derivative.
            pred = tab.predictor[i] if tab.predictor is not None else ()
            if pred and any(float(x) != 0.0 for x in pred):
                guess = torch.zeros_like(y)
                for j_, alpha in enumerate(pred):
                    if float(alpha) != 0.0:
                        guess = guess.add(fs[j_], alpha=float(alpha))
            else:
                guess = fs[-1] if fs else f0
            z = r + hgc * guess
            done = ~ok  # samples already failed (or inactive) take no more iterations
            converged = torch.zeros_like(ok)
            ndz_old = torch.ones_like(dt)
            theta = self.prev_theta
            for k in range(self.max_newton):
                fz = self.rhs(ti, y + z)
                evals += 1
                g = z - r - hgc * fz
                dz = lin.solve(-g, scale)
                ndz = self._norm(dz, scale)
                still = ~done
                nnewton = nnewton + still
                if k > 0:
                    # θ, damped from below as OrdinaryDiffEq does (max(0.3 θ_prev, ·)).
                    theta = torch.where(
                        still, torch.maximum(0.3 * theta, ndz / ndz_old.clamp_min(1e-300)), theta
                    )
                    theta_max = torch.where(still, torch.maximum(theta_max, theta), theta_max)
                    stalled = (theta - 1).abs() <= self.stall
                    diverge = still & ((theta > 2) | ~torch.isfinite(ndz) | (stalled & (ndz > 1)))
                    at_limit = still & stalled & (ndz <= 1)  # round-off limit: accept
                    converged = converged | at_limit
                    done = done | diverge | at_limit
                    still = still & ~diverge & ~at_limit
                else:
                    diverge = still & ~torch.isfinite(ndz)
                    done = done | diverge
                    still = still & ~diverge
                z = torch.where(still[:, None], z + dz, z)
                eta = theta / (1 - theta)
                ok_now = (ndz < 1e-5) if k == 0 else torch.zeros_like(still)
                ok_now = still & (ok_now | ((eta >= 0) & (eta * ndz < self.kappa)))
                converged = converged | ok_now
                done = done | ok_now
                ndz_old = torch.where(still, ndz, ndz_old)
                if bool(done.all()):
                    break
            self.prev_theta = torch.where(converged, theta, self.prev_theta)
            ok = ok & converged & torch.isfinite(z).all(-1)
            fs.append((z - r) / hgc)
        y1 = y
        for bi, fi in zip(tab.b, fs, strict=True):
            if float(bi) != 0.0:
                y1 = y1 + hc * float(bi) * fi
        err0 = torch.zeros_like(y)
        for bi, fi in zip(tab.btilde, fs, strict=True):
            if float(bi) != 0.0:
                err0 = err0.add(fi, alpha=float(bi))
        err = lin.solve(hc * err0, scale)
        f1 = self.rhs(t + h, y1)
        evals += 1 + lin.nf - lin_nf_before  # Krylov products are evaluations of f too
        v = torch.stack((y1 - y, hc * f0, hc * f1), 1)
        self.slow = theta_max > FAST_CONVERGENCE
        return StepAttempt(
            y1=y1,
            err=err,
            ok=ok,
            v=v,
            f1=f1,
            evals=evals,
            njac=need_j,
            nlu=need_w,
            nnewton=nnewton,
        )

    def after(self, accept: Tensor, failed: Tensor) -> None:
        # A failure or slow convergence with a Jacobian from an earlier point: recompute it
        # here; after slow convergence, also at the next point.
        stale = ((failed | self.slow) & ~self.j_fresh) | (accept & self.slow)
        self.j_valid = self.j_valid & ~stale
        self.j_fresh = self.j_fresh & ~accept
        self.prev_theta = torch.where(accept, self.prev_theta, torch.ones_like(self.prev_theta))
