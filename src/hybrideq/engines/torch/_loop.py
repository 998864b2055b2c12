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

from hybrideq.engines.torch._controller import PIController, initial_step
from hybrideq.engines.torch._interpolation import DenseOutput, InterpolationScheme
from hybrideq.solution import ReturnCode
from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["RHS", "LoopOptions", "LoopResult", "Quadrature", "run_loop"]

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
    joint: bool = False  # one shared step for the whole batch (error norm over the batch)
    quadrature: Quadrature | None = None
    quadrature_in_norm: bool = False
    quad_rtol: float = 0.0
    quad_atol: float = 0.0
    progress: Callable[[float], None] | None = None
    # Stop times (batch, K), ordered in the direction of integration: steps end exactly on
    # them and `on_tstop(k, mask, y)` may change the state there (the adjoints' jumps).
    # `tstop_start` (batch,) is the first stop index still ahead of each sample.
    tstops: Tensor | None = None
    tstop_start: Tensor | None = None
    on_tstop: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None
    save_steps: bool = True  # with saveat=None: keep every accepted step
    # Only the first `error_components` state components enter the error norm (and the
    # initial-step norms); the rest (integrals riding along, e.g. RNODE's) are not controlled.
    error_components: int | None = None
    # Also record the stiffness estimate as an RMS ratio (the local regularizer's form).
    stiffness_rms: bool = False


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


_STAGE_CACHE: dict[tuple[int, bool, torch.dtype, torch.device], Any] = {}


def _stage_matrix(
    tab: ExplicitRKTableau, need_err: bool, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, list[Tensor], int, int, bool]:
    """Coefficients of the stage accumulator (cached per tableau, dtype and device).

    Column ``i − 1`` of the accumulator holds ``Σ_j a_ij k_j`` for stage ``i = 1..s−1``,
    then (if not FSAL) ``Σ b_j k_j``, then (if needed) ``Σ btilde_j k_j``. When stage
    ``k_j`` is known it is added to every column at once (``acc += k_j ⊗ M[j]``): one
    operation per stage instead of one per non-zero coefficient. Rows ``M[j]`` are shaped
    ``(ncols, 1, 1)`` so that ``acc`` is ``(ncols, batch, n)`` with contiguous columns.
    """
    key = (id(tab), need_err, dtype, device)
    if key not in _STAGE_CACHE:
        s = tab.stages
        cols = [[tab.a[i][j] if j < i else 0.0 for j in range(s)] for i in range(1, s)]
        col_b = col_bt = -1
        if not tab.fsal:
            col_b = len(cols)
            cols.append(list(tab.b))
        if need_err and tab.btilde is not None:
            col_bt = len(cols)
            cols.append(list(tab.btilde))
        coef = torch.tensor(cols, dtype=dtype, device=device).T.contiguous()  # (s, ncols)
        last_needed = bool((coef[s - 1] != 0).any())
        rows = [coef[j][:, None, None] for j in range(s)]
        c_vec = torch.tensor(tab.c, dtype=dtype, device=device)
        _STAGE_CACHE[key] = (c_vec, rows, col_b, col_bt, last_needed)
    return _STAGE_CACHE[key]  # type: ignore[no-any-return]


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
    """Integrate ``y' = rhs(t, y)`` from ``t0`` to ``t1`` (per-sample tensors ``(batch,)``).

    The loop is written for few tensor operations per iteration (each costs a few µs
    of dispatch on the CPU, which for small neural fields is the solver's overhead):
    one operation per stage for all Butcher combinations, counters summed once at the
    end, a controller without special cases, and one host synchronisation per iteration
    to decide whether anything ended or must be saved. See docs/design.md.
    """
    tab = tableau
    batch, n = y0.shape
    dtype, device = y0.dtype, y0.device
    s = tab.stages
    direction = torch.sign(t1 - t0)
    zero_span = direction == 0
    direction = torch.where(zero_span, torch.ones_like(direction), direction)
    scheme = InterpolationScheme.of(tab)
    adaptive = opts.adaptive
    need_err = adaptive or opts.heuristics
    quad = opts.quadrature
    rtol, atol = opts.rtol, opts.atol
    b_w = tab.b
    bt = tab.btilde
    n_err = opts.error_components if opts.error_components is not None else n
    inv_sqrt_n = 1.0 / n_err**0.5
    c_vec, coef_rows, col_b, col_bt, last_needed = _stage_matrix(tab, need_err, dtype, device)
    eps = torch.finfo(dtype).eps
    # Steps that end within a few ulps of t1 are stretched to land on it exactly.
    end_tol = 100 * eps * torch.maximum(t0.abs(), t1.abs()).clamp_min(1.0)
    neg_end_tol = -end_tol
    dtmax_neg = -opts.dtmax

    # Per-sample loop state.
    t = t0.clone()
    y = y0
    retcode = torch.where(zero_span, _SUCCESS, 0).to(torch.int64)
    done = zero_span.clone()
    # Counters: per-iteration masks are kept and summed once at the end.
    hist_active: list[Tensor] = []
    hist_accept: list[Tensor] = []
    hist_evals: list[int] = []
    zero_i64 = torch.zeros((), dtype=torch.int64, device=device)
    ctl = controller.start(batch, dtype, device)
    if quad is not None:
        quad.set_weights(None)
    k1 = rhs(t, y)
    nf0 = 1
    quad_acc: Tensor | None = None
    if quad is not None:
        quad_acc = torch.zeros(quad.size, dtype=dtype, device=device)

    if opts.dt is not None:
        dt = opts.dt * (~done)
    else:
        dt = initial_step(
            k1,
            y0.detach(),
            t0,
            direction,
            tab.order,
            rtol,
            atol,
            opts.dtmax,
            rhs,
            opts.joint,
            n_err=opts.error_components,
        )
        nf0 += 1
        dt = dt.masked_fill(done, 0.0)

    # Saving. The save times get one extra column at ±inf so the pointer needs no clamp.
    saveat = opts.saveat
    save_vals: list[Tensor] = []
    save_idx: list[Tensor] = []
    save_mask: list[Tensor] = []
    step_t: list[Tensor] = []
    step_y: list[Tensor] = []
    step_acc: list[Tensor] = []
    si = torch.zeros(batch, dtype=torch.int64, device=device)
    sat_dir = t0[:, None]
    if saveat is not None:
        n_save = saveat.shape[1]
        sat_dir = torch.cat(
            [saveat * direction[:, None], torch.full_like(t0[:, None], torch.inf)], 1
        ).contiguous()
        # Save points at t0 (θ = 0) are the initial state itself.
        m = torch.searchsorted(sat_dir, (t0 * direction)[:, None], right=True)[:, 0]
        m_max = int(m.max())
        if m_max > 0:
            j = torch.arange(m_max, device=device)
            save_vals.append(y[:, None, :].expand(batch, m_max, n))
            save_idx.append(si[:, None] + j)
            save_mask.append(j < m[:, None])
            si = m

    tstops = opts.tstops
    kp = tnext_dir = None
    extra_nf = torch.zeros(batch, dtype=torch.int64, device=device)
    if tstops is not None:
        assert opts.tstop_start is not None and opts.on_tstop is not None
        tst_dir = torch.cat(
            [tstops * direction[:, None], torch.full_like(t0[:, None], torch.inf)], 1
        ).contiguous()
        kp = opts.tstop_start.clone()
        tnext_dir = tst_dir.gather(1, kp[:, None])[:, 0]

    dense_rec: dict[str, list[Tensor]] = {"t": [], "h": [], "acc": [], "y0": [], "v": []}
    heur: dict[str, list[Tensor]] = {
        "t": [],
        "dt": [],
        "acc": [],
        "eest": [],
        "eig": [],
        "eig_rms": [],
    }
    progress = opts.progress
    it = 0
    all_done = bool(done.all())

    while not all_done:
        it += 1
        active = ~done
        with torch.no_grad():
            # Truncate the last step so that it lands exactly on t1.
            remaining = t1 - t
            # (Finished samples have dt = 0 and never count as accepted, so no mask here.)
            hit_end = (dt - remaining) * direction >= neg_end_tol
            dt = torch.where(hit_end, remaining, dt)
            hit_stop = None
            if tnext_dir is not None:
                # A stop before t1 that this step would pass: end the step on it instead.
                to_stop = tnext_dir - t * direction
                stop_first = to_stop < remaining * direction
                hit_stop = stop_first & (dt * direction - to_stop >= neg_end_tol)
                dt = torch.where(hit_stop, to_stop * direction, dt)
                hit_end = hit_end & ~stop_first
            # Stage times t + c_i h, all at once.
            tc = torch.addcmul(t[:, None], dt[:, None], c_vec)
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
        acc = k1 * coef_rows[0]
        for i in range(1, s):
            yi = torch.addcmul(y, dtc, acc[i - 1])
            ki = rhs(tc[:, i], yi)
            ks.append(ki)
            stage_states.append(yi)
            if i < s - 1 or last_needed:
                acc = torch.addcmul(acc, ki, coef_rows[i])
            if quad is not None:
                quad_parts.append(quad.last())
        y1 = stage_states[-1] if tab.fsal else torch.addcmul(y, dtc, acc[col_b])

        # Error estimate EEst = RMS(h Σ btilde_i k_i / (atol + max(|y0|, |y1|) rtol)).
        # Without heuristics nothing differentiates EEst, so no graph is recorded for it.
        eest: Tensor | None = None
        if need_err and bt is not None:
            with torch.set_grad_enabled(opts.heuristics and torch.is_grad_enabled()):
                err_c = acc[col_bt]
                scale = torch.addcmul(atol, torch.maximum(y.abs(), y1.abs()), rtol)
                r = err_c * dtc / scale
                if n_err != n:
                    r = r[:, :n_err]
                eest = torch.linalg.vector_norm(r, dim=-1) * inv_sqrt_n
        with torch.no_grad():
            if adaptive:
                assert eest is not None
                e_ctl = eest.detach()
                if quad is not None and opts.quadrature_in_norm and quad_acc is not None:
                    e_ctl = _with_quadrature_error(
                        e_ctl, quad_parts, quad_acc, tab, opts, float(n), quad.size
                    )
                if opts.joint:  # RMS over the whole batch, as if it were one system
                    e_ctl = e_ctl.square().mean().sqrt().expand(batch)
                accept = (e_ctl <= 1) & active  # NaN/Inf estimates are rejected
                unstable = None
            else:
                e_ctl = None
                finite = torch.isfinite(y1).all(-1)
                accept = active & finite
                unstable = active & ~finite
            t_new = torch.where(hit_end, t1, t + dt)
            if hit_stop is not None:
                assert tnext_dir is not None
                t_new = torch.where(hit_stop, tnext_dir * direction, t_new)

        # Quadrature (parameter adjoint): add this step's integral for accepted samples.
        if quad is not None and quad_acc is not None:
            with torch.no_grad():
                if bool((accept == active).all()):
                    q_step = _lincomb(b_w, quad_parts)
                else:
                    w_acc = torch.where(accept, dt, torch.zeros_like(dt))
                    parts = [
                        quad.recompute(tc[:, i], stage_states[i], w_acc)
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
            _record_heuristics(
                heur, tab, ks, stage_states, y1, t, dt, accept, eest, opts.stiffness_rms
            )

        # The derivative at the new point: FSAL stage, or one evaluation (reused as the
        # next step's k1, so it costs nothing extra).
        acc_c = accept[:, None]
        if tab.fsal:
            f1 = ks[-1]
        else:
            if quad is not None:
                quad.set_weights(None)
            f1 = rhs(torch.where(accept, t_new, t), torch.where(acc_c, y1, y))
            evals += 1

        # Next step sizes, and which samples end now.
        with torch.no_grad():
            reached = accept & hit_end
            if adaptive:
                assert e_ctl is not None
                dt_new = ctl.propose(dt, e_ctl, accept)
                dt_new = torch.clamp(dt_new, min=dtmax_neg, max=opts.dtmax)
                too_small = (dt_new.abs() < opts.dtmin) & (active ^ reached)
                ended = reached | too_small
            else:
                dt_new = opts.dt if opts.dt is not None else dt
                too_small = None
                assert unstable is not None
                ended = reached | unstable
            if it >= opts.maxiters:
                ended = ended | active
            m_max = 0
            if saveat is not None:
                # Save points in (t, t_new] of accepted samples: a contiguous block each.
                nxt = torch.searchsorted(sat_dir, (t_new * direction)[:, None], right=True)
                m = torch.where(accept, nxt[:, 0] - si, zero_i64)
                any_end, m_max = torch.stack((ended.any().long(), m.max())).tolist()
            else:
                any_end = bool(ended.any())
        any_save = m_max > 0

        # Dense data of this step (extra interpolation stages only when needed).
        if opts.dense or any_save:
            ks_all = ks
            if scheme.needs_extras:
                if quad is not None:
                    quad.set_weights(None)
                ks_all = list(ks)
                for e_i, row in enumerate(tab.extra_a):
                    comb = _lincomb(row, ks_all)
                    ye = y if comb is None else torch.addcmul(y, dtc, comb)
                    ks_all.append(rhs(t + tab.extra_c[e_i] * dt, ye))
                evals += len(tab.extra_a)
            v = scheme.vectors(dt, y, y1, ks_all, f1)
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
                    # θ = (t_save − t)/h; rows without a save (h may be 0) get θ = 0.
                    theta = ((ts - t[:, None]) / dt[:, None]).masked_fill_(~mask, 0.0)
                save_vals.append(scheme.evaluate(theta, y[:, None, :], v))
                save_idx.append(idx)
                save_mask.append(mask)
                si = si + m
        if saveat is None and opts.save_steps:
            step_t.append(t_new)
            step_y.append(y1)
            step_acc.append(accept)

        # Advance accepted samples.
        hist_active.append(active)
        hist_accept.append(accept)
        hist_evals.append(evals)
        y = torch.where(acc_c, y1, y)
        k1 = torch.where(acc_c, f1, k1)
        with torch.no_grad():
            t = torch.where(accept, t_new, t)
            dt = dt_new
        if hit_stop is not None and opts.on_tstop is not None:
            jumped = accept & hit_stop
            if bool(jumped.any()):
                assert kp is not None
                # The state jumps: apply it, and re-evaluate f there (k1 is stale).
                jc = jumped[:, None]
                y = torch.where(jc, opts.on_tstop(kp, jumped, y), y)
                if quad is not None:
                    quad.set_weights(None)
                k1 = torch.where(jc, rhs(t, y), k1)
                extra_nf = extra_nf + jumped
                with torch.no_grad():
                    kp = kp + jumped
                    tnext_dir = tst_dir.gather(1, kp[:, None])[:, 0]
        with torch.no_grad():
            if any_end:
                code = torch.where(reached, _SUCCESS, _MAXITERS)
                if too_small is not None:
                    # A step size driven below dtmin by non-finite states is instability.
                    bad = too_small & ~torch.isfinite(e_ctl) if e_ctl is not None else too_small
                    code = torch.where(too_small, _DTMIN, code)
                    code = torch.where(bad, _UNSTABLE, code)
                if unstable is not None:
                    code = torch.where(unstable, _UNSTABLE, code)
                retcode = torch.where(ended, code, retcode)
                done = done | ended
                all_done = bool(done.all())
            if any_end:
                dt = dt.masked_fill(done, 0.0)
            if progress is not None:
                frac = ((t - t0) / torch.where(zero_span, 1, t1 - t0)).clamp(0, 1)
                progress(float(frac.min()))

    # Counters of every sample: evaluations while it ran, accepted and rejected steps.
    nf = torch.full((batch,), nf0, dtype=torch.int64, device=device).masked_fill(zero_span, 0)
    nf = nf + extra_nf
    naccept = torch.zeros(batch, dtype=torch.int64, device=device)
    nreject = torch.zeros_like(naccept)
    if hist_active:
        act = torch.stack(hist_active).long()  # (iters, B)
        accd = torch.stack(hist_accept).long()
        ev = torch.tensor(hist_evals, dtype=torch.int64, device=device)
        nf = nf + (act * ev[:, None]).sum(0)
        naccept = accd.sum(0)
        nreject = (act - accd).sum(0)

    # Assemble the saved values.
    nsaved: Tensor | None = None
    if saveat is not None:
        t_out = saveat
        y_out = _scatter_saves(save_vals, save_idx, save_mask, batch, n_save, n, y0)
    elif not opts.save_steps:
        t_out, y_out = t[:, None], y[:, None, :]
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
            "eigen_rms": torch.stack(heur["eig_rms"]) if heur["eig_rms"] else None,
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


def _with_quadrature_error(
    e_ctl: Tensor,
    quad_parts: list[Tensor],
    quad_acc: Tensor,
    tab: ExplicitRKTableau,
    opts: LoopOptions,
    n_state: float,
    n_quad: int,
) -> Tensor:
    """Full norm: the batch's parameter-adjoint error is charged to every sample.

    For one problem this is exactly the RMS over the whole augmented state
    ``[z, a_p]``; for a batch it is a conservative bound (the quadrature is shared).
    """
    assert tab.btilde is not None
    q_step_err = _lincomb(tab.btilde, quad_parts)
    q_incr = _lincomb(tab.b, quad_parts)
    if q_step_err is None or q_incr is None or n_quad == 0:
        return e_ctl
    q_new = quad_acc + q_incr
    qscale = opts.quad_atol + torch.maximum(quad_acc.abs(), q_new.abs()) * opts.quad_rtol
    q_err = (q_step_err / qscale).square().sum()
    return ((e_ctl.square() * n_state + q_err) / (n_state + n_quad)).sqrt()


def _record_heuristics(
    heur: dict[str, list[Tensor]],
    tab: ExplicitRKTableau,
    ks: list[Tensor],
    stage_states: list[Tensor],
    y1: Tensor,
    t: Tensor,
    dt: Tensor,
    accept: Tensor,
    eest: Tensor | None,
    rms: bool = False,
) -> None:
    """Append this step's heuristics; the stiffness estimate is Shampine's (REFERENCES §1).

    ``λ ≈ ‖(k_j − k_i) / (g_j − g_i)‖_∞`` over two stages with equal ``c`` (for Tsit5 and
    DP5 stages 6 and 7, ``g_7 = y1``), as OrdinaryDiffEq.jl computes ``eigen_est``. With
    ``rms``, also ``RMS(k_j − k_i) / (RMS(g_j − g_i) + eps)``, the ratio of norms that
    LocalRegNeuralDE.jl's local stiffness regularizer uses (REFERENCES §2).
    """
    if tab.stiffness_stages is not None:
        i, j = tab.stiffness_stages
        gi = stage_states[i]
        gj = y1 if j == tab.stages - 1 and tab.fsal else stage_states[j]
        num = (ks[j] - ks[i]).abs()
        den = (gj - gi).abs()
        ratio = torch.where(den > 0, num / torch.where(den > 0, den, 1), 0.0)
        heur["eig"].append(ratio.amax(-1))
        if rms:
            eps = torch.finfo(y1.dtype).eps
            num_rms = (ks[j] - ks[i]).square().mean(-1).sqrt()
            den_rms = (gj - gi).square().mean(-1).sqrt()
            heur["eig_rms"].append(num_rms / (den_rms + eps))
    heur["t"].append(t.detach())
    heur["dt"].append(dt.detach())
    heur["acc"].append(accept)
    heur["eest"].append(eest if eest is not None else torch.zeros_like(dt))


def _scatter_saves(
    vals: list[Tensor],
    idx: list[Tensor],
    mask: list[Tensor],
    batch: int,
    n_save: int,
    n: int,
    like: Tensor,
) -> Tensor:
    """Place the saved blocks at ``(sample, save index)``; never-reached saves are NaN.

    Each list entry is a block ``(batch, m, ...)`` of one step; ``mask`` marks real saves.
    """
    out = torch.full((batch * n_save + 1, n), torch.nan, dtype=like.dtype, device=like.device)
    if vals:
        v = torch.cat(vals, 1)  # (B, M, n)
        i = torch.cat(idx, 1)  # (B, M)
        m = torch.cat(mask, 1)
        b = torch.arange(batch, device=like.device)[:, None]
        pos = torch.where(m, b * n_save + i, batch * n_save)  # unused entries: a dump slot
        out = out.index_put((pos.reshape(-1),), v.reshape(-1, n))
    return out[:-1].reshape(batch, n_save, n)
