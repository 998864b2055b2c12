"""Rosenbrock steppers: one linear solve per stage, no Newton iteration.

Hairer–Wanner's transformed form (*Solving ODEs II*, §IV.7, eq. (7.25)), with a constant
mass matrix ``M`` (the identity when there is none), ``J = ∂f/∂y`` and ``f_t = ∂f/∂t`` at
the start of the step::

    W = M/(hγ) − J
    W U_i = f(t + c_i h, y + Σ_{j<i} a_ij U_j) + M Σ_{j<i} (C_ij/h) U_j + h d_i f_t
    y1 = y + Σ b_i U_i,          err = Σ btilde_i U_i

``W`` is factorised once per attempted step by the stepper's linear solver
(:mod:`._linsolve`: batched dense LU, ``torch.linalg.lu_factor_ex``, by default; SuperLU on
the sparsity pattern with ``linsolve="sparse"``), so a step costs one Jacobian, one
factorisation and ``s`` triangular solves. ``J`` is computed once per accepted point and
reused when a step from the same point is retried. A singular ``W`` (LU ``info > 0``) or a
non-finite result is reported as a failed step; the loop halves ``dt`` and retries
(OrdinaryDiffEq.jl's behaviour). Krylov solves are refused: the order conditions assume
exact linear solves.

Dense output: ``y(t + θh) = y + Σ_j P_j(θ) V_j`` with ``V_0 = y1 − y`` and
``V_j = Σ_i H_{j−1,i} U_i``, the method's own continuous extension.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hybrideq.engines.torch._implicit_loop import StepAttempt
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import DenseLU, LinearSolver
from hybrideq.engines.torch._loop import RHS

__all__ = ["RosenbrockStepper"]


def _lincomb(coeffs: Any, vecs: list[Tensor]) -> Tensor | None:
    out: Tensor | None = None
    for a, v in zip(coeffs, vecs, strict=False):
        a = float(a)
        if a == 0.0:
            continue
        out = v * a if out is None else out.add(v, alpha=a)
    return out


class RosenbrockStepper:
    """Attempts one Rosenbrock step for the whole batch (see the module docstring)."""

    def __init__(
        self,
        tableau: Any,
        rhs: RHS,
        jacobian: JacobianProvider,
        mass: Tensor | None,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
        linsolve: LinearSolver | None = None,
    ) -> None:
        self.tab = tableau
        self.linsolve = linsolve if linsolve is not None else DenseLU(mass)
        self.rhs = rhs
        self.jacobian = jacobian
        self.mass = mass
        self.order = int(tableau.order)
        self.scheme_key = f"rosenbrock:{tableau.name}"
        self.scheme = InterpolationScheme.polynomial(
            self.scheme_key, tuple(tuple(r) for r in tableau.dense_poly)
        )
        s = len(tableau.c)
        self.s = s
        # FSAL: the last stage is evaluated at (t + h, y1), so f(t + h, y1) comes for free.
        last = (*tableau.a[s - 1], 0.0)
        self.fsal = abs(float(tableau.c[s - 1]) - 1.0) < 1e-14 and all(
            abs(float(x) - float(bb)) < 1e-14 for x, bb in zip(last, tableau.b, strict=True)
        )
        self.J: Any = None  # in the linear solver's representation
        self.ft: Tensor | None = None
        self.valid = torch.zeros(batch, dtype=torch.bool, device=device)
        self.jnorm = torch.zeros(batch, dtype=dtype, device=device)
        self.dtype, self.device = dtype, device

    def _mass_times(self, v: Tensor) -> Tensor:
        return v if self.mass is None else v @ self.mass.T

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        tab = self.tab
        need = active & ~self.valid
        nf_before = self.jacobian.nf
        if self.J is None or bool(need.any()):
            jac, ft = self.jacobian(t, y, f0)
            if self.J is None:
                self.J, self.ft = jac, ft
            else:
                self.J = self.linsolve.where(need, jac, self.J)
                if ft is not None and self.ft is not None:
                    self.ft = torch.where(need[:, None], ft, self.ft)
            self.valid = self.valid | need
            # ‖J‖_∞, the eigenvalue bound the stiffness switch reads.
            self.jnorm = self.linsolve.norm_inf(self.J)
        evals = self.jacobian.nf - nf_before
        J, ft = self.J, self.ft
        assert J is not None
        # Finished samples ride along with dt = 0: give them a harmless h.
        h = torch.where(dt == 0, torch.ones_like(dt), dt)
        inv_hg = 1.0 / (h * float(tab.gamma))
        # W = M/(hγ) − J for every sample (α = 1/(hγ), β = 1).
        ok = ~self.linsolve.factor(J, inv_hg, None, None)
        hc = h[:, None]
        inv_h = (1.0 / h)[:, None]
        us: list[Tensor] = []
        f_last: Tensor | None = None
        for i in range(self.s):
            if i == 0:
                fi = f0
                ti = t
            else:
                arg = _lincomb(tab.a[i], us)
                yi = y if arg is None else y + arg
                ti = t + float(tab.c[i]) * h
                fi = self.rhs(ti, yi)
                evals += 1
                f_last = fi
            rhs_i = fi
            cu = _lincomb(tab.C[i], us) if i > 0 else None
            if cu is not None:
                rhs_i = rhs_i + self._mass_times(cu) * inv_h
            di = float(tab.d[i])
            if di != 0.0 and ft is not None:
                rhs_i = rhs_i + (hc * di) * ft
            ui = self.linsolve.solve(rhs_i)
            us.append(ui)
        incr = _lincomb(tab.b, us)
        y1 = y if incr is None else y + incr
        err = _lincomb(tab.btilde, us)
        v_parts = [y1 - y]
        for row in tab.H:
            comb = _lincomb(row, us)
            v_parts.append(comb if comb is not None else torch.zeros_like(y))
        v = torch.stack(v_parts, 1)
        f1 = f_last if self.fsal else None
        return StepAttempt(
            y1=y1,
            err=err,
            ok=ok,
            v=v,
            f1=f1,
            evals=evals,
            njac=need,
            nlu=active,
        )

    def after(self, accept: Tensor, failed: Tensor) -> None:
        # A sample that moved needs a new Jacobian at its new point.
        self.valid = self.valid & ~accept
