"""Continuous adjoints of the torch engine: backsolve and interpolating (checkpointed).

Both integrate, backwards from the last save time to ``t0``, the adjoint
``da/dt = −aᵀ ∂f/∂y`` and the parameter adjoint ``da_p/dt = −aᵀ ∂f/∂p``, adding
``∂L/∂y(t_k)`` to ``a`` at every save time ``t_k``. Then ``∂L/∂y0 = a(t0)`` and
``∂L/∂p = a_p(t0)``. Vector–Jacobian products come from ``torch.autograd.grad``.

- Backsolve: the state ``y`` is integrated backwards together with ``a`` (``z = [y, a]``),
  restarting from the forward pass's saved state at each save time.
- Interpolating: each interval between save times is first re-solved forwards from the
  saved state with dense output; the adjoint then reads ``y(t)`` from that interpolant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from hybrideq.engines.torch._controller import PIController
from hybrideq.engines.torch._loop import LoopOptions, LoopResult, run_loop
from hybrideq.engines.torch._rhs import AdjointRHS, UserRHS
from hybrideq.sensitivity import BacksolveAdjoint, InterpolatingAdjoint
from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["adjoint_solve"]


class _AdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, runner: _AdjointRunner, y0: Tensor, *params: Tensor) -> Tensor:  # type: ignore[override]
        with torch.no_grad():
            res = runner.forward(y0)
        ctx.runner = runner
        ctx.save_for_backward(res.y)
        runner.result = res
        return res.y.clone()

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (ys,) = ctx.saved_tensors
        g_y0, g_params = ctx.runner.backward(ys, grad_y)
        return (None, g_y0, *g_params)


class _AdjointRunner:
    def __init__(
        self,
        user: UserRHS,
        tableau: ExplicitRKTableau,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        controller: PIController,
        params: list[Tensor],
        sensealg: BacksolveAdjoint | InterpolatingAdjoint,
        y0: Tensor,
    ) -> None:
        self.user, self.tableau = user, tableau
        self.y0 = y0.detach()
        self.t0, self.t1 = t0, t1
        self.opts, self.controller = opts, controller
        self.params = params
        self.sensealg = sensealg
        self.result: LoopResult | None = None
        self.backward_nf = 0

    def forward(self, y0: Tensor) -> LoopResult:
        return run_loop(
            self.user,
            self.tableau,
            y0,
            self.t0,
            self.t1,
            self.opts,
            self.controller,
            lambda: self.user.ncalls,
        )

    def backward(self, ys: Tensor, grad_y: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        res = self.result
        assert res is not None
        opts = self.opts
        sa = self.sensealg
        batch, n_save, n = ys.shape
        ts = res.t if res.t.ndim == 2 else res.t.expand(batch, -1)
        rtol = torch.as_tensor(sa.rtol, dtype=ys.dtype) if sa.rtol is not None else opts.rtol
        atol = torch.as_tensor(sa.atol, dtype=ys.dtype) if sa.atol is not None else opts.atol
        interp = isinstance(sa, InterpolatingAdjoint)
        if not interp:  # per-component tolerances apply to y and to a alike
            rtol = rtol if rtol.numel() == 1 else torch.cat([rtol, rtol], -1)
            atol = atol if atol.numel() == 1 else torch.cat([atol, atol], -1)
        # Samples that failed have NaN at unreached saves: those carry no gradient.
        grad_y = torch.nan_to_num(grad_y.detach())
        ys = torch.nan_to_num(ys)
        a = torch.zeros(batch, n, dtype=ys.dtype, device=ys.device)
        g_p = torch.zeros(sum(p.numel() for p in self.params), dtype=ys.dtype, device=ys.device)
        base = dataclasses.replace(
            opts, dt=None, saveat=None, dense=False, heuristics=False, progress=None
        )
        for k in range(n_save - 1, -1, -1):
            a = a + grad_y[:, k]
            t_hi = ts[:, k]
            t_lo = ts[:, k - 1] if k > 0 else self.t0
            if bool((t_hi == t_lo).all()):
                continue
            y_lo = ys[:, k - 1] if k > 0 else self.y0
            if interp:
                fwd = run_loop(
                    self.user,
                    self.tableau,
                    y_lo,
                    t_lo,
                    t_hi,
                    dataclasses.replace(base, dense=True),
                    self.controller,
                    lambda: self.user.ncalls,
                )
                dense = fwd.dense

                lo, hi = torch.minimum(t_lo, t_hi), torch.maximum(t_lo, t_hi)

                def state_from(
                    t: Tensor,
                    dense: Any = dense,
                    y_hi: Tensor = ys[:, k],
                    lo: Tensor = lo,
                    hi: Tensor = hi,
                ) -> Tensor:
                    if dense is None:  # every sample had a zero-length interval
                        return y_hi
                    # Trial points of the initial-step heuristic may leave the interval.
                    return dense(torch.minimum(torch.maximum(t, lo), hi)[:, None])[:, 0]

                rhs = AdjointRHS(self.user, self.params, n, state_from=state_from)
                z0 = a
            else:
                rhs = AdjointRHS(self.user, self.params, n)
                z0 = torch.cat([ys[:, k], a], 1)
            bopts = dataclasses.replace(
                base,
                rtol=rtol,
                atol=atol,
                quadrature=rhs if self.params else None,
                quadrature_in_norm=not sa.seminorm,
                quad_rtol=float(rtol.max()) if rtol.numel() > 1 else float(rtol),
                quad_atol=float(atol.min()) if atol.numel() > 1 else float(atol),
            )
            back = run_loop(rhs, self.tableau, z0, t_hi, t_lo, bopts, self.controller, lambda: 0)
            self.backward_nf += int(back.nf.max())
            a = back.y_final[:, -n:]
            if back.quadrature is not None:
                g_p = g_p + back.quadrature
        grads: list[Tensor | None] = []
        offset = 0
        for p in self.params:
            grads.append(g_p[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        return a, grads


def adjoint_solve(
    user: UserRHS,
    tableau: ExplicitRKTableau,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: LoopOptions,
    controller: PIController,
    params: list[Tensor],
    sensealg: BacksolveAdjoint | InterpolatingAdjoint,
) -> tuple[LoopResult, Tensor]:
    """Solve forwards without a graph; gradients of the saved states come from an adjoint.

    Returns the loop result and the saved states ``(batch, T, n)`` attached to autograd.
    """
    runner = _AdjointRunner(user, tableau, t0, t1, opts, controller, params, sensealg, y0)
    y_saved = _AdjointFunction.apply(runner, y0, *params)
    assert runner.result is not None
    return runner.result, y_saved
