"""The step loop of the one-step implicit methods (Rosenbrock, ESDIRK), per-sample stepping.

The same contract as the explicit loop (:mod:`._loop`): state ``(batch, n)``, every sample
with its own ``t``, ``dt``, accept/reject decision, save pointer, stop pointer and return
code, and the same :class:`~._loop.LoopOptions`/:class:`~._loop.LoopResult`. The method
itself is a *stepper* object (:class:`ImplicitStepper`) that attempts one step for the
whole batch and owns its Jacobians and factorisations; this loop decides what to accept,
proposes the next step sizes, saves, and counts.

Besides a large error estimate, a step fails when the stepper reports it could not
solve it (a singular iteration matrix, a diverging Newton iteration, a non-finite
result): the step is then retried with half the step size (OrdinaryDiffEq.jl's
``failfactor = 2``), and a sample whose step falls below ``dtmin`` this way ends with
``ReturnCode.ConvergenceFailure``.

Parameter adjoints (``opts.quadrature``) are integrated after each accepted step by
Gauss–Legendre quadrature over the step's dense output, since the stages of an implicit
method are not the explicit-stage values the explicit loop reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.torch._controller import PIController, initial_step
from hybrideq.engines.torch._interpolation import DenseOutput, InterpolationScheme
from hybrideq.engines.torch._loop import RHS, LoopOptions, LoopResult, _scatter_saves
from hybrideq.solution import ReturnCode

__all__ = [
    "ImplicitStepper",
    "JacobianNorm",
    "SelfControlledStepper",
    "StepAttempt",
    "run_implicit_loop",
]

_SUCCESS = int(ReturnCode.Success)
_MAXITERS = int(ReturnCode.MaxIters)
_DTMIN = int(ReturnCode.DtLessThanMin)
_UNSTABLE = int(ReturnCode.Unstable)
_CONVFAIL = int(ReturnCode.ConvergenceFailure)

# Gauss–Legendre nodes on [0, 1] for the parameter-adjoint quadrature of one step.
_GAUSS_POINTS = 3
_gx, _gw = np.polynomial.legendre.leggauss(_GAUSS_POINTS)
GAUSS_NODES = tuple(float(x) for x in (_gx + 1) / 2)
GAUSS_WEIGHTS = tuple(float(w) for w in _gw / 2)


@dataclass
class StepAttempt:
    """What a stepper computed for one attempted step of every sample.

    Attributes:
        y1: the new state ``(B, n)``.
        err: the local error estimate ``(B, n)`` in the units of ``y`` (``None`` when
            the method has none).
        ok: ``(B,)`` whether the stepper solved the step (False: singular matrix,
            Newton failure or non-finite values; the loop rejects and halves ``dt``).
        v: dense-output vectors ``(B, J, n)`` of the stepper's :attr:`scheme`.
        f1: ``f(t + h, y1)`` if the stepper evaluated it (else the loop does), or ``None``.
        evals: evaluations of ``f`` made for the active samples in this attempt.
        njac: ``(B,)`` Jacobians computed for each sample in this attempt (0/1).
        nlu: ``(B,)`` factorisations made for each sample (0/1).
        nnewton: ``(B,)`` Newton iterations (0 for Rosenbrock methods).
    """

    y1: Tensor
    err: Tensor | None
    ok: Tensor
    v: Tensor
    f1: Tensor | None
    evals: int
    njac: Tensor
    nlu: Tensor
    nnewton: Tensor | None = None


class ImplicitStepper(Protocol):
    """One step of an implicit one-step method for the whole batch."""

    order: int
    scheme: InterpolationScheme

    def attempt(self, t: Tensor, y: Tensor, f0: Tensor, dt: Tensor, active: Tensor) -> StepAttempt:
        """Attempt a step of size ``dt`` ``(B,)`` from ``(t, y)`` with ``f0 = f(t, y)``."""
        ...

    def after(self, accept: Tensor, failed: Tensor) -> None:
        """Told which samples moved on (their Jacobian is stale) and which failed to solve."""
        ...


class SelfControlledStepper(ImplicitStepper, Protocol):
    """A stepper that chooses its own step sizes (and orders), e.g. variable-order BDF.

    The loop calls :meth:`propose` instead of the PI controller; it still truncates the
    proposed step at ``t1`` and at stop times, so ``attempt`` may receive a ``dt`` other
    than the one proposed and must adapt its own state to it.
    """

    def propose(self, dt: Tensor, eest: Tensor, accept: Tensor, failed: Tensor) -> Tensor:
        """The next step size of every sample (signed, like ``dt``)."""
        ...


class JacobianNorm:
    """``jnorm`` for steppers that hold a Jacobian ``J`` in their linear solver's form.

    The stepper sets ``_jnorm = None`` whenever ``J`` changes and ``_no_jnorm`` (zeros of
    shape ``(B,)``) once; the norm is computed only when a composite asks for it.
    """

    J: Any
    linsolve: Any
    _jnorm: Tensor | None
    _no_jnorm: Tensor

    @property
    def jnorm(self) -> Tensor:
        """``‖J‖_∞`` per sample (the stiffness switch's eigenvalue bound), detached.

        Of the Jacobian held, which may be from an earlier point: a composite reads it only
        where the attempt reports ``njac`` (a Jacobian computed in that attempt).
        """
        if self._jnorm is None:
            if self.J is None:
                return self._no_jnorm
            self._jnorm = self.linsolve.norm_inf(self.J)
        return self._jnorm


def _rms(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x, dim=-1) * (1.0 / x.shape[-1] ** 0.5)


def run_implicit_loop(
    rhs: RHS,
    stepper: ImplicitStepper,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: LoopOptions,
    controller: PIController,
    ncalls_counter: Callable[[], int],
) -> LoopResult:
    """Integrate ``y' = rhs(t, y)`` (or ``M y' = …``) from ``t0`` to ``t1`` with ``stepper``."""
    batch, n = y0.shape
    dtype, device = y0.dtype, y0.device
    direction = torch.sign(t1 - t0)
    zero_span = direction == 0
    direction = torch.where(zero_span, torch.ones_like(direction), direction)
    scheme = stepper.scheme
    adaptive = opts.adaptive
    rtol, atol = opts.rtol, opts.atol
    quad = opts.quadrature
    eps = torch.finfo(dtype).eps
    end_tol = 100 * eps * torch.maximum(t0.abs(), t1.abs()).clamp_min(1.0)
    neg_end_tol = -end_tol

    t = t0.clone()
    y = y0
    retcode = torch.where(zero_span, _SUCCESS, 0).to(torch.int64)
    done = zero_span.clone()
    ctl = controller.start(batch, dtype, device)
    self_controlled = hasattr(stepper, "propose")
    if quad is not None:
        quad.set_weights(None)
    f0 = rhs(t, y)
    nf0 = 1
    quad_acc: Tensor | None = None
    if quad is not None:
        quad_acc = torch.zeros(quad.size, dtype=dtype, device=device)
    if opts.dt is not None:
        dt = opts.dt * (~done)
    else:
        dt = initial_step(
            f0, y0.detach(), t0, direction, stepper.order, rtol, atol, opts.dtmax, rhs, opts.joint
        )
        nf0 += 1
        dt = dt.masked_fill(done, 0.0)

    # Counters: per-iteration tensors, summed once at the end.
    hist_active: list[Tensor] = []
    hist_accept: list[Tensor] = []
    hist_evals: list[int] = []
    hist_jac: list[Tensor] = []
    hist_lu: list[Tensor] = []
    hist_newton: list[Tensor] = []
    zero_i64 = torch.zeros((), dtype=torch.int64, device=device)

    # Saving (as in the explicit loop): an extra ±inf column so the pointer needs no clamp.
    saveat = opts.saveat
    save_vals: list[Tensor] = []
    save_idx: list[Tensor] = []
    save_mask: list[Tensor] = []
    step_t: list[Tensor] = []
    step_y: list[Tensor] = []
    step_acc: list[Tensor] = []
    si = torch.zeros(batch, dtype=torch.int64, device=device)
    sat_dir = t0[:, None]
    n_save = 0
    if saveat is not None:
        n_save = saveat.shape[1]
        sat_dir = torch.cat(
            [saveat * direction[:, None], torch.full_like(t0[:, None], torch.inf)], 1
        ).contiguous()
        m = torch.searchsorted(sat_dir, (t0 * direction)[:, None], right=True)[:, 0]
        m_max = int(m.max())
        if m_max > 0:
            j = torch.arange(m_max, device=device)
            save_vals.append(y[:, None, :].expand(batch, m_max, n))
            save_idx.append(si[:, None] + j)
            save_mask.append(j < m[:, None])
            si = m

    tstops = opts.tstops
    kp = tnext_dir = tst_dir = None
    extra_nf = torch.zeros(batch, dtype=torch.int64, device=device)
    if tstops is not None:
        assert opts.tstop_start is not None and opts.on_tstop is not None
        tst_dir = torch.cat(
            [tstops * direction[:, None], torch.full_like(t0[:, None], torch.inf)], 1
        ).contiguous()
        kp = opts.tstop_start.clone()
        tnext_dir = tst_dir.gather(1, kp[:, None])[:, 0]

    dense_rec: dict[str, list[Tensor]] = {"t": [], "h": [], "acc": [], "y0": [], "v": []}
    heur: dict[str, list[Tensor]] = {"t": [], "dt": [], "acc": [], "eest": []}
    progress = opts.progress
    it = 0
    all_done = bool(done.all())
    while not all_done:
        it += 1
        active = ~done
        with torch.no_grad():
            remaining = t1 - t
            hit_end = (dt - remaining) * direction >= neg_end_tol
            dt = torch.where(hit_end, remaining, dt)
            hit_stop = None
            if tnext_dir is not None:
                to_stop = tnext_dir - t * direction
                stop_first = to_stop < remaining * direction
                hit_stop = stop_first & (dt * direction - to_stop >= neg_end_tol)
                dt = torch.where(hit_stop, to_stop * direction, dt)
                hit_end = hit_end & ~stop_first
            dt = dt.masked_fill(done, 0.0)

        att = stepper.attempt(t, y, f0, dt, active)
        y1 = att.y1
        evals = att.evals
        finite = torch.isfinite(y1).all(-1)
        solved = att.ok & finite
        eest: Tensor | None = None
        if att.err is not None and (adaptive or opts.heuristics):
            with torch.set_grad_enabled(opts.heuristics and torch.is_grad_enabled()):
                scale = torch.addcmul(atol, torch.maximum(y.abs(), y1.abs()), rtol)
                eest = _rms(att.err / scale)
        with torch.no_grad():
            if adaptive:
                assert eest is not None
                e_ctl = torch.where(solved, eest.detach(), torch.inf)
                if opts.joint:
                    e_ctl = e_ctl.square().mean().sqrt().expand(batch)
                accept = (e_ctl <= 1) & active
            else:
                e_ctl = None
                accept = active & solved
            failed = active & ~solved
            # A step the stepper could not solve (singular W, Newton failure) is a
            # convergence failure even where its garbage result is not finite.
            unsolved = active & ~att.ok
            t_new = torch.where(hit_end, t1, t + dt)
            if hit_stop is not None:
                assert tnext_dir is not None
                t_new = torch.where(hit_stop, tnext_dir * direction, t_new)

        if opts.heuristics:
            heur["t"].append(t.detach())
            heur["dt"].append(dt.detach())
            heur["acc"].append(accept)
            heur["eest"].append(eest if eest is not None else torch.zeros_like(dt))

        acc_c = accept[:, None]
        if att.f1 is not None:
            f1 = att.f1
        else:
            if quad is not None:
                quad.set_weights(None)
            f1 = rhs(torch.where(accept, t_new, t), torch.where(acc_c, y1, y))
            evals += 1

        with torch.no_grad():
            reached = accept & hit_end
            if adaptive:
                assert e_ctl is not None
                if self_controlled:
                    dt_new = stepper.propose(dt, e_ctl, accept, failed)  # type: ignore[attr-defined]
                else:
                    dt_new = ctl.propose(dt, torch.where(failed, 0.0, e_ctl), accept)
                # A failed solve halves the step (OrdinaryDiffEq's failfactor = 2).
                dt_new = torch.where(failed, dt * 0.5, dt_new)
                dt_new = torch.clamp(dt_new, min=-opts.dtmax, max=opts.dtmax)
                too_small = (dt_new.abs() < opts.dtmin) & (active ^ reached)
                ended = reached | too_small
            else:
                dt_new = opts.dt if opts.dt is not None else dt
                too_small = None
                ended = reached | failed
            if it >= opts.maxiters:
                ended = ended | active
            m_max = 0
            if saveat is not None:
                nxt = torch.searchsorted(sat_dir, (t_new * direction)[:, None], right=True)
                m = torch.where(accept, nxt[:, 0] - si, zero_i64)
                any_end, m_max = torch.stack((ended.any().long(), m.max())).tolist()
            else:
                any_end = bool(ended.any())
        any_save = m_max > 0
        stepper.after(accept, failed)

        v = att.v
        if opts.dense:
            dense_rec["t"].append(t.detach())
            dense_rec["h"].append(dt.detach())
            dense_rec["acc"].append(accept)
            dense_rec["y0"].append(y)
            dense_rec["v"].append(v)
        if any_save:
            assert saveat is not None
            with torch.no_grad():
                j = torch.arange(m_max, device=device)
                idx = si[:, None] + j
                mask = j < m[:, None]
                ts = sat_dir.gather(1, idx.clamp(max=n_save)) * direction[:, None]
                hs = torch.where(dt == 0, 1.0, dt)[:, None]
                theta = ((ts - t[:, None]) / hs).masked_fill_(~mask, 0.0)
            save_vals.append(scheme.evaluate(theta, y[:, None, :], v))
            save_idx.append(idx)
            save_mask.append(mask)
            si = si + m
        if saveat is None and opts.save_steps:
            step_t.append(t_new)
            step_y.append(y1)
            step_acc.append(accept)

        # Parameter adjoint: Gauss–Legendre over this step's dense output (accepted only).
        if quad is not None and quad_acc is not None:
            with torch.no_grad():
                w_acc = torch.where(accept, dt, torch.zeros_like(dt))
                if bool(accept.any()):
                    theta_q = torch.tensor(GAUSS_NODES, dtype=dtype, device=device)
                    zq = scheme.evaluate(
                        theta_q.expand(batch, -1).contiguous(), y[:, None, :], v
                    )  # (B, Q, n)
                    for q, wq in enumerate(GAUSS_WEIGHTS):
                        tq = t + GAUSS_NODES[q] * dt
                        quad_acc = quad_acc + quad.recompute(tq, zq[:, q], w_acc * wq)
                    evals += _GAUSS_POINTS

        hist_active.append(active)
        hist_accept.append(accept)
        hist_evals.append(evals)
        hist_jac.append(att.njac)
        hist_lu.append(att.nlu)
        if att.nnewton is not None:
            hist_newton.append(att.nnewton)
        y = torch.where(acc_c, y1, y)
        f0 = torch.where(acc_c, f1, f0)
        with torch.no_grad():
            t = torch.where(accept, t_new, t)
            dt = dt_new
        if hit_stop is not None and opts.on_tstop is not None:
            jumped = accept & hit_stop
            if bool(jumped.any()):
                assert kp is not None and tst_dir is not None
                jc = jumped[:, None]
                y = torch.where(jc, opts.on_tstop(kp, jumped, y), y)
                if quad is not None:
                    quad.set_weights(None)
                f0 = torch.where(jc, rhs(t, y), f0)
                extra_nf = extra_nf + jumped
                stepper.after(jumped, torch.zeros_like(jumped))
                with torch.no_grad():
                    kp = kp + jumped
                    tnext_dir = tst_dir.gather(1, kp[:, None])[:, 0]
        with torch.no_grad():
            if any_end:
                code = torch.where(reached, _SUCCESS, _MAXITERS)
                if too_small is not None:
                    assert e_ctl is not None
                    code = torch.where(too_small, _DTMIN, code)
                    code = torch.where(too_small & failed & ~finite, _UNSTABLE, code)
                    code = torch.where(too_small & unsolved, _CONVFAIL, code)
                else:
                    code = torch.where(failed & ~finite, _UNSTABLE, code)
                    code = torch.where(unsolved, _CONVFAIL, code)
                retcode = torch.where(ended, code, retcode)
                done = done | ended
                all_done = bool(done.all())
                dt = dt.masked_fill(done, 0.0)
            if progress is not None:
                frac = ((t - t0) / torch.where(zero_span, 1, t1 - t0)).clamp(0, 1)
                progress(float(frac.min()))

    nf = torch.full((batch,), nf0, dtype=torch.int64, device=device).masked_fill(zero_span, 0)
    nf = nf + extra_nf
    naccept = torch.zeros(batch, dtype=torch.int64, device=device)
    nreject = torch.zeros_like(naccept)
    njac = torch.zeros_like(naccept)
    nlu = torch.zeros_like(naccept)
    nnewton = torch.zeros_like(naccept)
    if hist_active:
        act = torch.stack(hist_active).long()
        accd = torch.stack(hist_accept).long()
        ev = torch.tensor(hist_evals, dtype=torch.int64, device=device)
        nf = nf + (act * ev[:, None]).sum(0)
        naccept = accd.sum(0)
        nreject = (act - accd).sum(0)
        njac = (torch.stack(hist_jac).long() * act).sum(0)
        nlu = (torch.stack(hist_lu).long() * act).sum(0)
        if hist_newton:
            nnewton = (torch.stack(hist_newton).long() * act).sum(0)

    nsaved: Tensor | None = None
    if saveat is not None:
        t_out = saveat
        y_out = _scatter_saves(save_vals, save_idx, save_mask, batch, n_save, n, y0)
    elif not opts.save_steps:
        t_out, y_out = t[:, None], y[:, None, :]
    else:
        ts_all = torch.stack([t0, *step_t], 0)
        ys_all = torch.stack([y0, *step_y], 0)
        acc_all = torch.stack([torch.ones_like(done), *step_acc], 0)
        order = torch.argsort((~acc_all).to(torch.int8), dim=0, stable=True)
        counts = acc_all.sum(0)
        tmax = int(counts.max())
        jj = torch.arange(tmax, device=device)[:, None]
        rows = order[:tmax].gather(0, torch.minimum(jj, (counts - 1)[None, :]).expand(-1, batch))
        t_out = ts_all.gather(0, rows).T
        y_out = ys_all.gather(0, rows[:, :, None].expand(-1, -1, n)).transpose(0, 1)
        nsaved = counts

    dense_out: DenseOutput | None = None
    if opts.dense and dense_rec["t"]:
        dense_out = DenseOutput(
            scheme,
            torch.stack(dense_rec["t"]),
            torch.stack(dense_rec["h"]),
            torch.stack(dense_rec["acc"]),
            torch.stack(dense_rec["y0"]),
            torch.stack(dense_rec["v"]),
            t0,
            t,
            batched=True,
            state_shape=(n,),
        )
    heur_out: dict[str, Any] | None = None
    if opts.heuristics and heur["t"]:
        heur_out = {
            "t": torch.stack(heur["t"]),
            "dt": torch.stack(heur["dt"]),
            "accepted": torch.stack(heur["acc"]),
            "eest": torch.stack(heur["eest"]),
            "eigen_est": None,
        }
    return LoopResult(
        t=t_out,
        y=y_out,
        nsaved=nsaved,
        t_final=t,
        y_final=y,
        retcode=retcode,
        nf=nf,
        naccept=naccept,
        nreject=nreject,
        ncalls=ncalls_counter(),
        dense=dense_out,
        heuristics=heur_out,
        quadrature=quad_acc,
        records={"njac": njac, "nlu": nlu, **({"nnewton": nnewton} if hist_newton else {})},
    )
