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
import warnings
from typing import Any

import torch
from torch import Tensor

from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import PatternJacobian
from hybrideq.engines.torch._loop import LoopOptions, LoopResult
from hybrideq.engines.torch._methods import JacFn, MethodRunner
from hybrideq.engines.torch._rhs import AdjointRHS, UserRHS
from hybrideq.sensitivity import BacksolveAdjoint, InterpolatingAdjoint
from hybrideq.solution import AdjointStats, ReturnCode

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
        method: MethodRunner,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        params: list[Tensor],
        sensealg: BacksolveAdjoint | InterpolatingAdjoint,
        y0: Tensor,
        problem_jac: JacFn | None = None,
        autodiff: bool = True,
    ) -> None:
        self.user, self.method = user, method
        self.y0 = y0.detach()
        self.t0, self.t1 = t0, t1
        self.opts = opts
        self.problem_jac, self.autodiff = problem_jac, autodiff
        self.params = params
        self.sensealg = sensealg
        self.result: LoopResult | None = None
        self.stats = AdjointStats()
        self._relevant = torch.ones(y0.shape[0], dtype=torch.bool, device=y0.device)

    def forward(self, y0: Tensor) -> LoopResult:
        opts = self.opts
        sa = self.sensealg
        if isinstance(sa, InterpolatingAdjoint) and not sa.checkpointing:
            opts = dataclasses.replace(opts, dense=True)  # the backward pass reads y(t) here
        return self.method.run(
            self.user, y0, self.t0, self.t1, opts, lambda: self.user.ncalls, use_problem_jac=True
        )

    def _adjoint_jacobian(self, state_from: Any) -> Any:
        """``∂(−aᵀ ∂f/∂y)ᵀ/∂a = −J_f(t, y(t))ᵀ`` for an implicit method's backward solve."""
        if not self.method.is_implicit:
            return None
        n = self.y0.shape[1]
        lin = getattr(self.method, "linsolve", None)
        if lin is None or lin.kind != "sparse" or lin.pattern is None:
            return self._dense_adjoint_jacobian(state_from, n)
        # The sparse path: −J_fᵀ as values on the transposed pattern (J_f's values from
        # the user's sparse jac, or colored autograd/differences of f, at y(t)), so the
        # backward solve factorises with SuperLU too and no n × n matrix is formed.
        pattern = lin.pattern.to(self.y0.device)
        transposed, perm = pattern.transpose()
        sparse = JacobianProvider(
            self.user, n, lin.jac, self.autodiff, need_ft=False, pattern=pattern, output="sparse"
        )

        def values(t: Tensor, a: Tensor) -> Tensor:
            y = state_from(t)
            with torch.no_grad():
                v, _ = sparse(t, y)
            return -v[:, perm]

        return PatternJacobian(transposed, values)

    def _dense_adjoint_jacobian(self, state_from: Any, n: int) -> JacFn:
        """``−J_f(t, y(t))ᵀ`` as a dense ``(B, n, n)`` matrix."""
        provider = JacobianProvider(self.user, n, self.problem_jac, self.autodiff, need_ft=False)

        def jac(t: Tensor, a: Tensor) -> Tensor:
            y = state_from(t)
            with torch.no_grad():
                j, _ = provider(t, y)
            return -j.transpose(1, 2)

        return jac

    def _tolerances(self, like: Tensor, widen: bool) -> tuple[Tensor, Tensor]:
        sa, opts = self.sensealg, self.opts
        rtol = (
            torch.as_tensor(sa.rtol, dtype=like.dtype, device=like.device) if sa.rtol else opts.rtol
        )
        atol = (
            torch.as_tensor(sa.atol, dtype=like.dtype, device=like.device) if sa.atol else opts.atol
        )
        if widen:  # per-component tolerances apply to y and to a alike
            rtol = rtol if rtol.numel() == 1 else torch.cat([rtol, rtol], -1)
            atol = atol if atol.numel() == 1 else torch.cat([atol, atol], -1)
        return rtol, atol

    def _backward_options(self, rhs: AdjointRHS, rtol: Tensor, atol: Tensor) -> LoopOptions:
        return dataclasses.replace(
            self.opts,
            dt=None,
            saveat=None,
            save_steps=False,
            dense=False,
            heuristics=False,
            error_components=None,
            progress=None,
            joint=False,
            rtol=rtol,
            atol=atol,
            quadrature=rhs if self.params else None,
            quadrature_in_norm=not self.sensealg.seminorm,
            quad_rtol=float(rtol.max()),
            quad_atol=float(atol.min()),
        )

    def backward(self, ys: Tensor, grad_y: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        sa = self.sensealg
        assert self.result is not None
        has_grad = (grad_y != 0).flatten(1).any(1)
        self._relevant = (self.result.retcode == int(ReturnCode.Success)) & has_grad
        if isinstance(sa, InterpolatingAdjoint) and sa.checkpointing:
            return self._backward_checkpointed(ys, grad_y)
        return self._backward_one_solve(ys, grad_y)

    def _backward_one_solve(self, ys: Tensor, grad_y: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """One backward solve from the last save time to ``t0``, jumping at save times.

        At every save time ``t_k`` the adjoint jumps by ``∂L/∂y(t_k)`` (and, for
        backsolve, the state restarts from the forward pass's ``y(t_k)``); the loop ends
        its steps exactly on those times.
        """
        res = self.result
        assert res is not None
        batch, _, n = ys.shape
        interp = isinstance(self.sensealg, InterpolatingAdjoint)
        ts = res.t if res.t.ndim == 2 else res.t.expand(batch, -1)
        # Samples that failed have NaN at unreached saves: those carry no gradient.
        grad_y = torch.nan_to_num(grad_y.detach())
        ys = torch.nan_to_num(ys)
        direction = torch.sign(self.t1 - self.t0)
        # Start at the last save time, or where a failed sample stopped; samples with no
        # gradient at all get an empty span (they are done at once).
        last_ok = (ts[:, -1] - res.t_final) * direction <= 0
        t_hi = torch.where(last_ok, ts[:, -1], res.t_final)
        no_grad = (grad_y == 0).flatten(1).all(1)
        t_hi = torch.where(no_grad, self.t0, t_hi)
        y_hi = torch.where(last_ok[:, None], ys[:, -1], res.y_final)
        # Save times at or beyond the start (padded rows of per-step saves, saves a failed
        # sample never reached) jump at once; the stop pointer starts after them.
        stop_t, stop_g = ts, grad_y
        if interp and self.method.is_implicit and res.dense is not None:
            # The parameter adjoint of an implicit method is a quadrature over each backward
            # step (see _implicit_loop); its steps must not straddle the forward solution's
            # layers, so the forward steps' boundaries become stops too (no jump there).
            stop_t, stop_g = _with_forward_steps(ts, grad_y, res.dense, self.t0, direction)
        at_start = (stop_t - t_hi[:, None]) * direction[:, None] >= 0
        a0 = (stop_g * at_start[..., None]).sum(1)
        rev_t, rev_g, rev_y = stop_t.flip(1), stop_g.flip(1), ys.flip(1)
        start = at_start.sum(1)

        def take(x: Tensor, k: Tensor) -> Tensor:
            idx = k.clamp(max=x.shape[1] - 1)[:, None, None].expand(-1, 1, x.shape[-1])
            return x.gather(1, idx)[:, 0]

        rtol, atol = self._tolerances(ys, widen=not interp)
        if interp:
            dense = res.dense
            assert dense is not None
            lo, hi = torch.minimum(self.t0, t_hi), torch.maximum(self.t0, t_hi)

            def state_from(t: Tensor) -> Tensor:
                # Trial points of the initial-step heuristic may leave the span: clamp.
                return dense.at(torch.minimum(torch.maximum(t, lo), hi)[:, None])[:, 0]

            rhs = AdjointRHS(self.user, self.params, n, state_from=state_from)
            adj_jac = self._adjoint_jacobian(state_from)
            z0 = a0

            def jump(k: Tensor, mask: Tensor, z: Tensor) -> Tensor:
                return z + take(rev_g, k)
        else:
            rhs = AdjointRHS(self.user, self.params, n)
            adj_jac = None
            z0 = torch.cat([y_hi, a0], 1)

            def jump(k: Tensor, mask: Tensor, z: Tensor) -> Tensor:
                return torch.cat([take(rev_y, k), z[:, n:] + take(rev_g, k)], 1)

        bopts = dataclasses.replace(
            self._backward_options(rhs, rtol, atol),
            tstops=rev_t,
            tstop_start=start,
            on_tstop=jump,
        )
        back = self.method.run(rhs, z0, t_hi, self.t0, bopts, lambda: 0, jac=adj_jac)
        self._count(back)
        a = back.y_final[:, -n:]
        # A save at t0 itself: its jump comes after the last step.
        at_t0 = (ts[:, 0] == self.t0) & ~at_start[:, 0]
        a = a + grad_y[:, 0] * at_t0[:, None]
        g_p = back.quadrature
        return a, self._split_params(g_p, ys)

    def _count(self, res: LoopResult) -> None:
        st = self.stats
        st.nf += int(res.nf.max())
        st.naccept += int(res.naccept.max())
        st.nreject += int(res.nreject.max())
        st.done = True
        # Samples that failed in the forward pass, or carry no gradient, are not reported.
        failed = (res.retcode != int(ReturnCode.Success)) & self._relevant
        if bool(failed.any()):
            bad = torch.nonzero(failed)[:, 0].tolist()
            codes = sorted({ReturnCode(int(c)).name for c in res.retcode[failed].tolist()})
            st.failed_samples = sorted(set(st.failed_samples) | set(bad))
            warnings.warn(
                f"the adjoint's backward solve failed ({', '.join(codes)}) for sample(s) "
                f"{bad[:10]}{' …' if len(bad) > 10 else ''}: their gradients are incomplete. "
                "Raise maxiters, loosen the sensealg's rtol/atol, or use "
                "InterpolatingAdjoint / DirectBackprop",
                stacklevel=2,
            )

    def _split_params(self, g_p: Tensor | None, like: Tensor) -> list[Tensor | None]:
        grads: list[Tensor | None] = []
        offset = 0
        for p in self.params:
            if g_p is None:
                grads.append(torch.zeros_like(p))
            else:
                grads.append(g_p[offset : offset + p.numel()].view_as(p).to(p.dtype))
            offset += p.numel()
        return grads

    def _backward_checkpointed(
        self, ys: Tensor, grad_y: Tensor
    ) -> tuple[Tensor, list[Tensor | None]]:
        """Interval by interval: re-solve forwards from the checkpoint, then the adjoint."""
        res = self.result
        assert res is not None
        batch, n_save, n = ys.shape
        ts = res.t if res.t.ndim == 2 else res.t.expand(batch, -1)
        direction = torch.sign(self.t1 - self.t0)
        rtol, atol = self._tolerances(ys, widen=False)
        grad_y = torch.nan_to_num(grad_y.detach())
        ys = torch.nan_to_num(ys)
        a = torch.zeros(batch, n, dtype=ys.dtype, device=ys.device)
        g_p: Tensor | None = None
        fwd_opts = dataclasses.replace(
            self.opts,
            dt=None,
            saveat=None,
            save_steps=False,
            dense=True,
            heuristics=False,
            progress=None,
            joint=False,
        )
        for k in range(n_save - 1, -1, -1):
            a = a + grad_y[:, k]
            t_hi = ts[:, k]
            t_lo = ts[:, k - 1] if k > 0 else self.t0
            if bool((t_hi == t_lo).all()):
                continue
            y_lo = ys[:, k - 1] if k > 0 else self.y0
            fwd = self.method.run(
                self.user,
                y_lo,
                t_lo,
                t_hi,
                fwd_opts,
                lambda: self.user.ncalls,
                use_problem_jac=True,
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
                return dense.at(torch.minimum(torch.maximum(t, lo), hi)[:, None])[:, 0]

            rhs = AdjointRHS(self.user, self.params, n, state_from=state_from)
            bopts = self._backward_options(rhs, rtol, atol)
            self._count(fwd)
            adj_jac = self._adjoint_jacobian(state_from)
            if self.method.is_implicit and dense is not None:
                # Stops at the forward steps' boundaries (no jump): see _with_forward_steps.
                fs = dense.t_start
                pad = torch.arange(fs.shape[1], device=fs.device)[None, :] >= dense.nacc[:, None]
                fs = torch.where(pad, t_lo[:, None].expand_as(fs), fs)
                fs = fs.gather(1, torch.argsort(-fs * direction[:, None], dim=1, stable=True))
                first = ((fs - t_hi[:, None]) * direction[:, None] >= 0).sum(1)
                bopts = dataclasses.replace(
                    bopts, tstops=fs, tstop_start=first, on_tstop=lambda k, m, z: z
                )
            back = self.method.run(rhs, a, t_hi, t_lo, bopts, lambda: 0, jac=adj_jac)
            self._count(back)
            a = back.y_final
            if back.quadrature is not None:
                g_p = back.quadrature if g_p is None else g_p + back.quadrature
        return a, self._split_params(g_p, ys)


def _with_forward_steps(
    ts: Tensor, grad_y: Tensor, dense: Any, t0: Tensor, direction: Tensor
) -> tuple[Tensor, Tensor]:
    """Save times merged with the forward steps' start times, in forward order.

    Returns stop times ``(B, T + S)`` and jumps ``(B, T + S, n)`` (``∂L/∂y`` at save
    times, zero at step boundaries). Padding rows and step starts that coincide with a
    save time are moved to ``t0``, where the backward solve ends (a stop there is never
    reached).
    """
    batch, _, n = grad_y.shape
    fs = dense.t_start  # (B, smax), accepted steps first
    pad = torch.arange(fs.shape[1], device=fs.device)[None, :] >= dense.nacc[:, None]
    dup = (fs[:, :, None] == ts[:, None, :]).any(-1)
    fs = torch.where(pad | dup, t0[:, None].expand_as(fs), fs)
    times = torch.cat([ts, fs], 1)
    jumps = torch.cat([grad_y, grad_y.new_zeros(batch, fs.shape[1], n)], 1)
    order = torch.argsort(times * direction[:, None], dim=1, stable=True)
    return times.gather(1, order), jumps.gather(1, order[:, :, None].expand(-1, -1, n))


def adjoint_solve(
    user: UserRHS,
    method: MethodRunner,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: LoopOptions,
    params: list[Tensor],
    sensealg: BacksolveAdjoint | InterpolatingAdjoint,
    problem_jac: JacFn | None = None,
    autodiff: bool = True,
) -> tuple[LoopResult, Tensor, AdjointStats]:
    """Solve forwards without a graph; gradients of the saved states come from an adjoint.

    Returns the loop result, the saved states ``(batch, T, n)`` attached to autograd, and
    the counters that the backward pass will fill in.
    """
    runner = _AdjointRunner(user, method, t0, t1, opts, params, sensealg, y0, problem_jac, autodiff)
    y_saved = _AdjointFunction.apply(runner, y0, *params)
    assert runner.result is not None
    return runner.result, y_saved, runner.stats
