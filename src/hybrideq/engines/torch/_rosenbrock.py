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

from hybrideq.engines.torch._implicit_loop import JacobianNorm, StepAttempt
from hybrideq.engines.torch._interpolation import InterpolationScheme
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import DenseLU, LinearSolver
from hybrideq.engines.torch._loop import RHS

__all__ = ["RosenbrockStepper"]


class RosenbrockStepper(JacobianNorm):
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

        # The stage combinations as matrix products over the stacked stages (one product
        # per stage instead of one multiply-add per coefficient; per-step dispatch is the
        # cost on small systems): row i of ``self._ac[i]`` is (a_i·; C_i·) over the
        # stages j < i, and ``self._out`` stacks (b; H rows; btilde) over all stages.
        def coeffs(rows: Any) -> Tensor:
            return torch.tensor([[float(x) for x in r] for r in rows], dtype=dtype, device=device)

        # The products read Z = (y; U_1; …; U_s) (s + 1, B·n): row i of the stage matrix
        # is (1, a_i·) for the stage state y + Σ a_ij U_j, and (0, C_i·) for Σ C_ij U_j.
        self._ac: list[Tensor | None] = [None]
        for i in range(1, s):
            a_row = [1.0, *list(tableau.a[i])[:i]]
            c_row = [0.0, *list(tableau.C[i])[:i]]
            self._ac.append(coeffs([a_row, c_row]))
        self._c = [float(x) for x in tableau.c]
        self._d = [float(x) for x in tableau.d]
        # (1, b) gives y1; (0, b) = y1 − y and (0, H_j) the dense vectors V_0, V_j;
        # (0, btilde) the error.
        self._out = coeffs(
            [
                [1.0, *list(tableau.b)],
                [0.0, *list(tableau.b)],
                *([0.0, *list(r)] for r in tableau.H),
                [0.0, *list(tableau.btilde)],
            ]
        )
        self._nv = 1 + len(tableau.H)
        self.J: Any = None  # in the linear solver's representation
        self.ft: Tensor | None = None
        self.valid = torch.zeros(batch, dtype=torch.bool, device=device)
        self._jnorm: Tensor | None = None  # ‖J‖_∞, computed when asked for
        self._no_jnorm = torch.zeros(batch, dtype=dtype, device=device)
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
            self._jnorm = None
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
        B, n = y.shape
        # Z = (y; U_1; …; U_s) (s + 1, B, n), the stages written in place (autograd
        # records the copies; the products read Z through constant coefficients, so
        # nothing they saved for the backward pass is overwritten).
        Z = y.new_empty(self.s + 1, B, n)
        Z[0] = y
        f_last: Tensor | None = None
        for i in range(self.s):
            ac = self._ac[i]
            if ac is None:
                rhs_i = f0
            else:
                # (y + a_i·U; C_i·U) in one product over y and the stages so far.
                comb = torch.mm(ac, Z[: i + 1].view(i + 1, B * n)).view(2, B, n)
                fi = self.rhs(torch.add(t, h, alpha=self._c[i]), comb[0])
                evals += 1
                f_last = fi
                if self.mass is None:
                    rhs_i = torch.addcmul(fi, comb[1], inv_h)
                else:
                    rhs_i = torch.addcmul(fi, self._mass_times(comb[1]), inv_h)
            di = self._d[i]
            if di != 0.0 and ft is not None:
                rhs_i = rhs_i + (hc * di) * ft
            Z[i + 1] = self.linsolve.solve(rhs_i)
        # (1, b; 0, b; 0, H; 0, btilde)·Z: y1, the dense vectors, the error.
        out = torch.mm(self._out, Z.view(self.s + 1, B * n)).view(-1, B, n)
        y1 = out[0]
        err = out[-1]
        v = out[1 : 1 + self._nv].transpose(0, 1)
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
