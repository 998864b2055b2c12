"""The explicit Runge–Kutta step loop of the torch engine, with per-sample stepping.

State is ``(batch, n)``. Every sample has its own ``t``, ``dt``, accept/reject decision,
save pointer and return code; one iteration of the loop attempts one step for every
sample that is still running, so the loop never iterates over samples. Finished samples
ride along with ``dt = 0`` (their state is frozen) until every sample is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from hybrideq.engines.torch._controller import PIController, error_norm, initial_step
from hybrideq.engines.torch._interpolation import DenseOutput, InterpolationScheme
from hybrideq.solution import ReturnCode
from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["LoopOptions", "LoopResult", "Quadrature", "RHS", "run_loop"]

_SUCCESS = int(ReturnCode.Success)
_MAXITERS = int(ReturnCode.MaxIters)
_DTMIN = int(ReturnCode.DtLessThanMin)
_UNSTABLE = int(ReturnCode.Unstable)


class RHS(Protocol):
    """An internal right-hand side: ``(t (batch,), y (batch, n)) -> (batch, n)``."""

    def __call__(self, t: Tensor, y: Tensor) -> Tensor: ...


class Quadrature(Protocol):
    """A batch-shared integral ``∫ Σ_b g_b(t_b, z_b) dt`` accumulated beside the state.

    Used by the adjoints for the parameter gradient: the state's right-hand side computes
    ``Σ_b w_b g_b`` at each stage as a by-product (``last``), where ``w_b`` is the weight
    the loop sets with :meth:`set_weights` (``dt_b`` for running samples, 0 otherwise;
    ``None``: compute nothing). :meth:`recompute` evaluates ``Σ_b w_b g_b`` afresh.
    """

    size: int

    def set_weights(self, w: Tensor | None) -> None: ...

    def last(self) -> Tensor: ...

    def recompute(self, t: Tensor, z: Tensor, w: Tensor) -> Tensor: ...


@dataclass
class LoopOptions:
    """Options of one run of the step loop (already validated by ``solve``)."""

    adaptive: bool
    dt: Tensor | None  # (batch,) signed initial/fixed step, or None for automatic
    rtol: Tensor
    atol: Tensor
    dtmin: Tensor  # (batch,)
    dtmax: Tensor  # (batch,)
    maxiters: int
    saveat: Tensor | None  # (batch, T) or None: save every accepted step
    dense: bool
    heuristics: bool
    error_weights: Tensor | None = None  # (n,) 0/1 mask of components in the error norm
    quadrature: Quadrature | None = None
    quadrature_in_norm: bool = False
    quad_rtol: float = 0.0
    quad_atol: float = 0.0
    progress: Callable[[float], None] | None = None


@dataclass
class LoopResult:
    """What the step loop computed."""

    t: Tensor  # (batch, T) save times
    y: Tensor  # (batch, T, n)
    nsaved: Tensor | None
    t_final: Tensor
    y_final: Tensor
    retcode: Tensor
    nf: Tensor
    naccept: Tensor
    nreject: Tensor
    ncalls: int
    dense: DenseOutput | None
    heuristics: dict[str, Any] | None
    quadrature: Tensor | None = None
    records: dict[str, Any] = field(default_factory=dict)


def _lincomb(coeffs: tuple[float, ...], ks: list[Tensor]) -> Tensor | None:
    """``Σ_j coeffs[j] ks[j]`` skipping zero coefficients (``None`` if all are zero)."""
    out: Tensor | None = None
    for a, k in zip(coeffs, ks, strict=False):
        if a == 0.0:
            continue
        out = k * a if out is None else out.add(k, alpha=a)
    return out


def run_loop(
    rhs: RHS,
    tableau: ExplicitRKTableau,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: LoopOptions,
    controller: PIController,
    ncalls_counter: Callable[[], int],
) -> LoopResult:
    """Integrate ``y' = rhs(t, y)`` from ``t0`` to ``t1`` (per-sample tensors ``(batch,)``)."""
    tab = tableau
    batch, n = y0.shape
    dtype, device = y0.dtype, y0.device
    s = tab.stages
    direction = torch.sign(t1 - t0)
    zero_span = direction == 0
    direction = torch.where(zero_span, torch.ones_like(direction), direction)
    scheme = InterpolationScheme(tab)
    adaptive = opts.adaptive
    need_err = adaptive or opts.heuristics
    quad = opts.quadrature
    ew = opts.error_weights
    rtol, atol = opts.rtol, opts.atol
    c_nodes = tab.c
    b_w = tab.b
    bt = tab.btilde

    # Per-sample loop state.
    t = t0.clone()
    y = y0
    retcode = torch.where(zero_span, _SUCCESS, 0).to(torch.int64)
    done = zero_span.clone()
    nf = torch.zeros(batch, dtype=torch.int64, device=device)
    naccept = torch.zeros_like(nf)
    nreject = torch.zeros_like(nf)
    niter = torch.zeros_like(nf)
    last_nonfinite = torch.zeros(batch, dtype=torch.bool, device=device)
    errold = torch.full((batch,), controller.qoldinit, dtype=dtype, device=device)
    if quad is not None:
        quad.set_weights(None)
    k1 = rhs(t, y)
    nf += (~done).long()
    quad_acc: Tensor | None = None
    if quad is not None:
        quad_acc = torch.zeros(quad.size, dtype=dtype, device=device)

    if opts.dt is not None:
        dt = opts.dt * (~done)
    else:
        dt = initial_step(
            k1, y0.detach(), t0, direction, tab.order, rtol, atol, opts.dtmax, rhs
        )
        nf += (~done).long()
        dt = torch.where(done, torch.zeros_like(dt), dt)

    # Saving.
    saveat = opts.saveat
    save_vals: list[Tensor] = []
    save_idx: list[Tensor] = []
    save_mask: list[Tensor] = []
    step_t: list[Tensor] = []
    step_y: list[Tensor] = []
    step_acc: list[Tensor] = []
    ar = torch.arange(batch, device=device)
    if saveat is not None:
        n_save = saveat.shape[1]
        si = torch.zeros(batch, dtype=torch.int64, device=device)

        def next_save_time(si: Tensor) -> Tensor:
            return saveat.gather(1, si.clamp(max=n_save - 1)[:, None])[:, 0]

        # Save points at t0 (θ = 0): the initial state itself.
        ts = next_save_time(si)
        need = (si < n_save) & (direction * (ts - t0) <= 0)
        while bool(need.any()):
            save_vals.append(y)
            save_idx.append(si.clone())
            save_mask.append(need)
            si = si + need.long()
            ts = next_save_time(si)
            need = (si < n_save) & (direction * (ts - t0) <= 0)

    dense_rec: dict[str, list[Tensor]] = {"t": [], "h": [], "acc": [], "y0": [], "v": []}
    heur: dict[str, list[Tensor]] = {"t": [], "dt": [], "acc": [], "eest": [], "eig": []}

    while True:
        active = ~done
        if not bool(active.any()):
            break
        with torch.no_grad():
            # Truncate the last step so that it lands exactly on t1.
            remaining = t1 - t
            hit_end = active & (direction * (t + dt - t1) >= -1e-12 * t1.abs().clamp_min(1.0))
            dt = torch.where(hit_end, remaining, dt)
            dt = torch.where(active, dt, torch.zeros_like(dt))
        dtc = dt[:, None]
        evals = s - 1
        quad_parts: list[Tensor] = []
        if quad is not None:
            # k1 was evaluated before dt was known: its quadrature term is computed again.
            quad_parts.append(quad.recompute(t, y, dt))
            evals += 1
            quad.set_weights(dt)

        # Stages: k_i = f(t + c_i h, y + h Σ_j a_ij k_j).
        ks = [k1]
        stage_states: list[Tensor] = [y]
        y1: Tensor | None = None
        for i in range(1, s):
            acc = _lincomb(tab.a[i], ks)
            yi = y if acc is None else torch.addcmul(y, dtc, acc)
            ks.append(rhs(t + c_nodes[i] * dt, yi))
            stage_states.append(yi)
            if quad is not None:
                quad_parts.append(quad.last())
        if tab.fsal:
            y1 = stage_states[-1]
        else:
            acc = _lincomb(b_w, ks)
            assert acc is not None
            y1 = torch.addcmul(y, dtc, acc)

        # Error estimate EEst and acceptance.
        eest: Tensor | None = None
        if need_err and bt is not None:
            err_c = _lincomb(bt, ks)
            assert err_c is not None
            err = dtc * err_c
            if ew is None:
                eest = error_norm(err, y, y1, rtol, atol)
            else:
                scale = atol + torch.maximum(y.abs(), y1.abs()) * rtol
                eest = ((err / scale).square() * ew).sum(-1) / ew.sum()
                eest = eest.sqrt()
        with torch.no_grad():
            finite = torch.isfinite(y1).all(-1)
            if adaptive:
                assert eest is not None
                e_ctl = eest.detach()
                if quad is not None and opts.quadrature_in_norm and quad_acc is not None:
                    # Full norm: the batch's parameter-adjoint error is charged to every
                    # sample (for one problem this is exactly the full augmented norm).
                    assert bt is not None
                    q_err = dt.new_zeros(())
                    q_step_err = _lincomb(bt, quad_parts)
                    q_incr = _lincomb(b_w, quad_parts)
                    if q_step_err is not None and q_incr is not None:
                        q_new = quad_acc + q_incr
                        qscale = (
                            opts.quad_atol
                            + torch.maximum(quad_acc.abs(), q_new.abs()) * opts.quad_rtol
                        )
                        q_err = (q_step_err / qscale).square().sum()
                    nz = float(ew.sum()) if ew is not None else float(n)
                    e_ctl = ((e_ctl.square() * nz + q_err) / (nz + quad.size)).sqrt()
                accept = active & finite & (e_ctl <= 1)
            else:
                e_ctl = None
                accept = active & finite
            reject = active & ~accept

        # Quadrature (parameter adjoint): add this step's integral for accepted samples.
        if quad is not None and quad_acc is not None:
            with torch.no_grad():
                if bool((accept == active).all()):
                    q_step = _lincomb(b_w, quad_parts)
                else:
                    w_acc = torch.where(accept, dt, torch.zeros_like(dt))
                    parts = [
                        quad.recompute(t + c_nodes[i] * dt, stage_states[i], w_acc)
                        if b_w[i] != 0.0
                        else quad_parts[i]
                        for i in range(s)
                    ]
                    q_step = _lincomb(b_w, parts)
                    evals += sum(1 for x in b_w if x != 0.0)
                if q_step is not None:
                    quad_acc = quad_acc + q_step

        # Heuristics: the stiffness estimate from two stages with equal c.
        if opts.heuristics:
            eig = None
            if tab.stiffness_stages is not None:
                i, j = tab.stiffness_stages
                gi = stage_states[i]
                gj = y1 if j == s - 1 and tab.fsal else stage_states[j]
                num = (ks[j] - ks[i]).abs()
                den = (gj - gi).abs()
                ratio = torch.where(den > 0, num / torch.where(den > 0, den, 1), 0.0)
                eig = ratio.amax(-1)
            heur["t"].append(t.detach())
            heur["dt"].append(dt.detach())
            heur["acc"].append(accept)
            heur["eest"].append(eest if eest is not None else torch.zeros_like(dt))
            if eig is not None:
                heur["eig"].append(eig)

        # The derivative at the new point: FSAL stage, or one evaluation (reused as the
        # next step's k1, so it is no extra cost).
        acc_c = accept[:, None]
        t_new = torch.where(hit_end, t1, t + dt)
        if tab.fsal:
            f1 = ks[-1]
        else:
            if quad is not None:
                quad.set_weights(None)
            f1 = rhs(torch.where(accept, t_new, t), torch.where(acc_c, y1, y))
            evals += 1

        # Dense data of this step (extra interpolation stages only when needed).
        any_save = False
        if saveat is not None:
            ts = next_save_time(si)
            need = accept & (si < n_save) & (direction * (ts - t_new) <= 0)
            any_save = bool(need.any())
        v: Tensor | None = None
        if opts.dense or any_save:
            ks_all = ks
            if scheme.needs_extras:
                if quad is not None:
                    quad.set_weights(None)
                ks_all = list(ks)
                for m, row in enumerate(tab.extra_a):
                    acc = _lincomb(row, ks_all)
                    ye = y if acc is None else torch.addcmul(y, dtc, acc)
                    ks_all.append(rhs(t + tab.extra_c[m] * dt, ye))
                evals += len(tab.extra_a)
            v = scheme.vectors(dt, y, y1, ks_all, f1)
            if opts.dense:
                dense_rec["t"].append(t.detach())
                dense_rec["h"].append(dt.detach())
                dense_rec["acc"].append(accept)
                dense_rec["y0"].append(y)
                dense_rec["v"].append(v)
        if any_save:
            assert v is not None and saveat is not None
            while True:
                theta = torch.where(dt == 0, torch.zeros_like(dt), (ts - t) / torch.where(dt == 0, 1, dt))
                save_vals.append(scheme.evaluate(theta, y, v))
                save_idx.append(si.clone())
                save_mask.append(need)
                si = si + need.long()
                ts = next_save_time(si)
                need = accept & (si < n_save) & (direction * (ts - t_new) <= 0)
                if not bool(need.any()):
                    break
        if saveat is None:
            step_t.append(t_new.detach())
            step_y.append(y1)
            step_acc.append(accept)

        # Advance accepted samples.
        nf += active.long() * evals
        y = torch.where(acc_c, y1, y)
        k1 = torch.where(acc_c, f1, k1)
        with torch.no_grad():
            t = torch.where(accept, t_new, t)
            naccept += accept.long()
            nreject += reject.long()
            niter += active.long()
            reached = accept & hit_end
            if adaptive:
                assert e_ctl is not None
                dt_acc, dt_rej, errold_acc = controller.propose(dt, e_ctl, errold, naccept == 0)
                errold = torch.where(accept, errold_acc, errold)
                dt_new = torch.where(accept, dt_acc, dt_rej)
                dt_new = direction * torch.minimum(dt_new.abs(), opts.dtmax)
                last_nonfinite = torch.where(active, ~finite, last_nonfinite)
                too_small = active & ~reached & (dt_new.abs() < opts.dtmin)
            else:
                dt_new = opts.dt if opts.dt is not None else dt
                too_small = torch.zeros_like(done)
                last_nonfinite = active & ~finite
            unstable = (active & ~finite & ~torch.as_tensor(adaptive)) | (too_small & last_nonfinite)
            maxed = active & ~reached & (niter >= opts.maxiters)
            code = torch.where(reached, _SUCCESS, 0)
            code = torch.where(maxed, _MAXITERS, code)
            code = torch.where(too_small, _DTMIN, code)
            code = torch.where(unstable, _UNSTABLE, code)
            retcode = torch.where(active & (code > 0), code, retcode)
            done = done | (code > 0)
            dt = torch.where(done, torch.zeros_like(dt_new), dt_new)
            if opts.progress is not None:
                frac = ((t - t0) / torch.where(zero_span, 1, t1 - t0)).clamp(0, 1)
                opts.progress(float(frac.min()))

    # Assemble the saved values.
    nsaved: Tensor | None = None
    if saveat is not None:
        t_out = saveat
        y_out = _scatter_saves(save_vals, save_idx, save_mask, batch, saveat.shape[1], n, y0)
    else:
        # Every accepted step, compacted per sample; rows padded with the last value.
        ts_all = torch.stack([t0, *step_t], 0)  # (S+1, B)
        ys_all = torch.stack([y0, *step_y], 0)  # (S+1, B, n)
        acc_all = torch.stack([torch.ones_like(done), *step_acc], 0)
        order = torch.argsort((~acc_all).to(torch.int8), dim=0, stable=True)
        counts = acc_all.sum(0)
        tmax = int(counts.max())
        j = torch.arange(tmax, device=device)[:, None]
        rows = order[:tmax].gather(0, torch.minimum(j, (counts - 1)[None, :]).expand(-1, batch))
        t_out = ts_all.gather(0, rows).T
        y_out = ys_all.gather(0, rows[:, :, None].expand(-1, -1, n)).transpose(0, 1)
        nsaved = counts
        del ar

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
            "eigen_est": torch.stack(heur["eig"]) if heur["eig"] else None,
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
    )


def _scatter_saves(
    vals: list[Tensor],
    idx: list[Tensor],
    mask: list[Tensor],
    batch: int,
    n_save: int,
    n: int,
    like: Tensor,
) -> Tensor:
    """Place the saved values at ``(sample, save index)``; never-reached saves are NaN."""
    out = torch.full((batch * n_save + 1, n), torch.nan, dtype=like.dtype, device=like.device)
    if vals:
        v = torch.stack(vals, 0)  # (M, B, n)
        i = torch.stack(idx, 0)  # (M, B)
        m = torch.stack(mask, 0)
        b = torch.arange(batch, device=like.device)[None, :]
        pos = torch.where(m, b * n_save + i, batch * n_save)  # unused rows go to a dump slot
        out = out.index_put((pos.reshape(-1),), v.reshape(-1, n))
    return out[:-1].reshape(batch, n_save, n)
