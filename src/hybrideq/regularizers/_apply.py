"""``solve(..., regularizer=...)``: run the solve a regularizer needs and compute its value.

- Global terms (``ErrorEstimate``, ``StiffnessEstimate``) read the per-step heuristics the
  solve records (``DirectBackprop`` only: they have no continuous adjoint).
- Integral terms (``KineticEnergy``, ``JacobianFrobenius``) ride along as extra states of
  an augmented ODE, left out of the error norm so that the steps are the plain solve's;
  their value is the extra states at ``t1``.
- Local terms take one extra step from ``(t_r, y(t_r))``. ``y(t_r)`` comes, with its
  gradient under any ``sensealg``, from an extra save time (unbiased ``t_r`` with a
  ``saveat``), from the saved steps (biased ``t_r`` without ``saveat``), from the dense
  output (``DirectBackprop`` on an ODE), or else from a short bridge solve from the last
  saved point before ``t_r`` (differentiated directly; on the same Brownian path for SDEs).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.problems import ODEProblem, SDEProblem
from hybrideq.regularizers._base import AbstractRegularizer, as_terms
from hybrideq.regularizers._rnode import AugmentedDiffusion, AugmentedField
from hybrideq.regularizers._terms import (
    ErrorEstimate,
    JacobianFrobenius,
    KineticEnergy,
    LocalErrorEstimate,
    LocalStiffnessEstimate,
    StiffnessEstimate,
)
from hybrideq.sensitivity import DirectBackprop
from hybrideq.solution import Solution
from hybrideq.solvers import (
    AbstractDIRK,
    AbstractExplicitRK,
    AbstractRosenbrock,
    AbstractSolver,
)
from hybrideq.solvers.sde import AbstractSDESolver

__all__ = ["solve_regularized"]

_STIFF_HINT = "Tsit5(), DP5() or Vern7()"


def _has_error_estimate(solver: AbstractSolver, sde: bool) -> bool:
    if sde:
        return isinstance(solver, AbstractSDESolver) and solver.is_adaptive
    if isinstance(solver, AbstractExplicitRK):
        return solver.tableau.btilde is not None
    return isinstance(solver, AbstractDIRK)


def _has_stiffness_estimate(solver: AbstractSolver, sde: bool) -> bool:
    if sde:
        return getattr(solver, "stiffness_stages", None) is not None
    return (
        isinstance(solver, AbstractExplicitRK)
        and solver.tableau.stiffness_stages is not None
        and solver.stability_size is not None
    )


def _validate(
    terms: tuple[AbstractRegularizer, ...], prob: Any, solver: AbstractSolver, kw: dict[str, Any]
) -> None:
    sde = isinstance(prob, SDEProblem)
    sensealg = kw["sensealg"]
    direct = sensealg is None or isinstance(sensealg, DirectBackprop)
    for term in terms:
        if isinstance(term, (ErrorEstimate, LocalErrorEstimate)) and isinstance(
            solver, AbstractRosenbrock
        ):
            raise ValueError(
                f"{term.name} with {solver.name}: a Rosenbrock method's error estimate depends "
                "on its Jacobian, whose dependence on the state the torch engine does not "
                "differentiate (docs/design.md), so the regularizer's gradient would be wrong. "
                "Use an ESDIRK method (KenCarp4(), Kvaerno5(), TRBDF2()) or an explicit one "
                "(Tsit5())"
            )
        if term.kind == "global" and not direct:
            raise ValueError(
                f"{term.name} reads the solver's per-step estimates, whose gradient exists "
                "only for the discrete solve; pass sensealg=DirectBackprop() (the default), "
                f"or use LocalErrorEstimate(), which works with {type(sensealg).__name__}()"
            )
        if isinstance(term, (ErrorEstimate, LocalErrorEstimate)) and not _has_error_estimate(
            solver, sde
        ):
            hint = (
                "SRIW1(), SOSRI() (diagonal noise) or SRA1(), SOSRA() (additive noise)"
                if sde
                else "Tsit5(), DP5(), Vern7(), BS3() or an ESDIRK method (KenCarp4(), "
                "Kvaerno5(), TRBDF2())"
            )
            raise ValueError(
                f"{term.name} needs a solver with an embedded error estimate; {solver.name} "
                f"has none here. Use {hint}"
            )
        stiff = isinstance(term, (StiffnessEstimate, LocalStiffnessEstimate))
        if stiff and not _has_stiffness_estimate(solver, sde):
            hint = "SOSRI2()" if sde else _STIFF_HINT
            raise ValueError(
                f"{term.name} needs a method with a stiffness estimate (two stages at the "
                f"same node): {hint}; {solver.name} has none"
            )
        if term.kind == "integral":
            if not sde and not isinstance(solver, AbstractExplicitRK):
                raise ValueError(
                    f"{term.name} integrates extra states beside y and needs an explicit "
                    f"Runge–Kutta method (Tsit5(), DP5(), Vern7(), RK4()); got {solver.name}"
                )
            if not sde and prob.mass_matrix is not None:
                raise ValueError(f"{term.name} does not take a problem with a mass_matrix")
    if kw["engine"] == "julia":
        raise ValueError(
            "regularizers run on the torch engine (they read its per-step estimates); "
            "pass engine='torch' or 'auto'"
        )


# --- save-time bookkeeping ----------------------------------------------------------------


def _user_saveat(prob: Any, saveat: Any) -> Tensor | None:
    """The user's saveat as validated ``(batch, T)`` times (``None`` if not given)."""
    if saveat is None:
        return None
    from hybrideq.solve import _saveat

    s2, _ = _saveat(saveat, prob)
    return s2


def _merge(s2: Tensor, x: Tensor, t0: Tensor, t1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Save times ``s2 (B, T)`` with one extra time ``x (B,)`` per sample.

    Returns the merged times ``(B, T + 1)``, strictly monotone per row, the column of every
    original save ``(B, T)`` and the column of ``x`` ``(B, 1)``. Where ``x`` is already a
    save time, that column serves both and a harmless filler time takes the extra column.
    """
    d = torch.sign(t1 - t0)[:, None]
    sd, xd = s2 * d, x[:, None] * d
    m = torch.cat([sd, xd], 1).sort(1).values
    dup = m[:, 1:] == m[:, :-1]  # (B, T): column i + 1 repeats column i
    if bool(dup.any()):
        lo, hi = (t0[:, None] * d), (t1[:, None] * d)
        nxt = torch.cat([m[:, 2:], hi], 1)  # the value after column i + 1
        prv = torch.cat([lo, m[:, :-2]], 1)  # the value before column i
        room_after = nxt > m[:, 1:]
        filler = torch.where(room_after, 0.5 * (m[:, 1:] + nxt), 0.5 * (prv + m[:, :-1]))
        m = torch.cat([m[:, :1], torch.where(dup, filler, m[:, 1:])], 1).sort(1).values
    cols = torch.searchsorted(m.contiguous(), sd.contiguous())
    col_x = torch.searchsorted(m.contiguous(), xd.contiguous())
    return m * d, cols, col_x


def _saveat_arg(times: Tensor, prob: Any) -> Tensor:
    """``(B, T)`` save times as a solve argument (``(T,)`` when shared or unbatched)."""
    if not prob.batched or bool((times == times[:1]).all()):
        return times[0]
    return times


def _flat(y: Tensor, prob: Any) -> Tensor:
    """The solve's ``y`` as ``(batch, T, n)``."""
    batch = prob.batch_size
    yb = y if prob.batched else y[None]
    return yb.reshape(batch, yb.shape[1], -1)


def _rows(t: Tensor, batch: int) -> Tensor:
    return t if t.ndim == 2 else t[None, :].expand(batch, -1)


def _subproblem(prob: Any, y0: Tensor, t0: Tensor, t1: Tensor) -> Any:
    """``prob`` from ``y0`` (``(batch, n)``) on per-sample spans, zero-length ones allowed.

    A user may not pass an empty span; inside the engine a zero span is finished at once.
    """
    batch = prob.batch_size
    y_user = (
        y0.reshape(batch, *prob.state_shape) if prob.batched else y0[0].reshape(prob.state_shape)
    )
    sub = prob.remake(y0=y_user)
    if prob.batched:
        span = (t0.contiguous(), t1.contiguous())
    else:
        span = (t0[0], t1[0])
    sub = copy.copy(sub)
    object.__setattr__(sub, "tspan", span)
    return sub


def _take(y: Tensor, col: Tensor) -> Tensor:
    """Row ``col[b]`` of every sample's saved states: ``y (B, T, n)``, ``col (B, 1)`` → ``(B, n)``."""
    return y.gather(1, col[:, :, None].expand(-1, 1, y.shape[-1]))[:, 0]


def _last_col(y: Tensor, prob: Any) -> Tensor:
    """The final state ``(batch, n)`` of a solve saved without saveat (padded rows)."""
    return _flat(y, prob)[:, -1]


# --- the local step ------------------------------------------------------------------------


def _draw_unbiased(prob: Any, joint: bool) -> Tensor:
    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    u = torch.rand(1 if joint else batch, dtype=torch.float64).expand(batch)
    u = u.clamp(1e-12, 1 - 1e-12).to(dtype=prob.dtype, device=prob.device)
    tr = t0 + u * (t1 - t0)
    # Strictly inside (t0, t1) after rounding.
    tr = torch.where(tr == t1, torch.nextafter(t1, t0), tr)
    return torch.where(tr == t0, torch.nextafter(t0, t1), tr).detach()


def _draw_biased(sol: Solution, prob: Any) -> Tensor:
    """A start time of an accepted step, uniformly per sample (``t0`` if none)."""
    h = sol.heuristics
    assert h is not None
    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    acc = h.accepted.T.to(torch.float64)  # (B, iters)
    none = acc.sum(1) == 0
    acc[none, 0] = 1.0
    row = torch.multinomial(acc, 1)[:, 0]
    tr = h.t.T.gather(1, row[:, None].to(h.t.device))[:, 0]
    return torch.where(none.to(tr.device), t0, tr).detach()


def _local_step(
    prob: Any,
    solver: AbstractSolver,
    tr: Tensor,
    ur: Tensor,
    kw: dict[str, Any],
    need_rms: bool,
) -> Any:
    """One step from ``(t_r, u_r)`` with the step a fresh integrator would take there.

    That is the initial-step heuristic's step for an adaptive solve, ``dt`` for a
    fixed-step one (at most ``t1 − t_r``). The step size is a constant for the gradient,
    as every step size is under ``DirectBackprop``.
    """
    from hybrideq.solve import Internal, _solve

    batch = prob.batch_size
    t1 = prob.tspan[1].expand(batch)
    sub = _subproblem(prob, ur, tr, t1)
    sde = isinstance(prob, SDEProblem)
    internal = Internal(stiffness_rms=need_rms, internal_heuristics=True, record_eest=sde)
    fixed = kw["dt"] if kw["adaptive"] is False else None
    s = _solve(
        sub,
        solver,
        rtol=kw["rtol"],
        atol=kw["atol"],
        adaptive=fixed is None,
        dt=fixed,
        maxiters=1,
        dtmax=kw["dtmax"],
        sensealg=DirectBackprop(),
        heuristics=not sde,
        internal=internal,
    )
    return s.heuristics


def _bridge(
    prob: Any,
    solver: AbstractSolver,
    sol: Solution,
    y_flat: Tensor,
    tr: Tensor,
    kw: dict[str, Any],
) -> Tensor:
    """``y(t_r)`` by a short solve from the last saved point at or before ``t_r``."""
    from hybrideq.solve import _solve

    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    d = torch.sign(t1 - t0)
    ts = _rows(sol.t, batch)
    ts = torch.nan_to_num(ts, nan=math.inf)
    k = torch.searchsorted((ts * d[:, None]).contiguous(), (tr * d)[:, None], right=True) - 1
    before = k[:, 0] < 0
    kk = k.clamp_min(0)
    ts_k = ts.gather(1, kk)[:, 0]
    ys_k = _take(y_flat, kk)
    y0 = prob.y0.reshape(batch, -1)
    t_s = torch.where(before, t0, ts_k)
    y_s = torch.where(before[:, None], y0, ys_k)
    if bool((t_s == tr).all()):
        return y_s
    sub = _subproblem(prob, y_s, t_s, tr)
    extra: dict[str, Any] = {}
    if isinstance(prob, SDEProblem):
        extra["brownian"] = sol.W
    b = _solve(
        sub,
        solver,
        rtol=kw["rtol"],
        atol=kw["atol"],
        dt=kw["dt"],
        adaptive=kw["adaptive"],
        dtmax=kw["dtmax"],
        maxiters=kw["maxiters"],
        sensealg=DirectBackprop(),
        **extra,
    )
    return _last_col(b.y, sub)


# --- the orchestration ---------------------------------------------------------------------


def solve_regularized(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    regularizer: Any,
    kwargs: dict[str, Any],
) -> Solution:
    """``solve(prob, solver, **kwargs, regularizer=regularizer)``; see the module docstring."""
    from hybrideq.solve import Internal, _solve

    terms = as_terms(regularizer)
    _validate(terms, prob, solver, kwargs)
    sde = isinstance(prob, SDEProblem)
    kw = dict(kwargs)
    sensealg = kw["sensealg"]
    direct = sensealg is None or isinstance(sensealg, DirectBackprop)
    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    joint = kw["stepping"] == "joint" and prob.batched
    glob = [t for t in terms if t.kind == "global"]
    local = [t for t in terms if t.kind == "local"]
    integ = [t for t in terms if isinstance(t, (KineticEnergy, JacobianFrobenius))]
    user_heur = bool(kw["heuristics"])
    user_dense = kw["dense"]
    internal = Internal()

    # Integral terms: the augmented problem [y, e].
    main_prob: Any = prob
    n = prob.n
    if integ:
        eps = None
        jf = [t for t in integ if isinstance(t, JacobianFrobenius) and t.estimator == "hutchinson"]
        if jf:
            shape = (batch, n) if prob.batched else (n,)
            if jf[0].noise == "gaussian":
                eps = torch.randn(shape, dtype=torch.float64)
            else:
                eps = torch.randint(0, 2, shape).to(torch.float64) * 2 - 1
            eps = eps.to(dtype=prob.dtype, device=prob.device)
        field = AugmentedField(prob.f, n, prob.state_shape, prob.batched, integ, eps)
        k = len(integ)
        y0f = prob.y0.reshape(batch, n) if prob.batched else prob.y0.reshape(n)
        y0_aug = torch.cat([y0f, y0f.new_zeros((*y0f.shape[:-1], k))], -1)
        if sde:
            assert isinstance(prob, SDEProblem)
            matrix = prob.matrix_noise
            m = prob.noise_dim
            gfield = AugmentedDiffusion(prob.g, n, k, prob.state_shape, matrix, m)
            main_prob = SDEProblem(
                field,
                gfield,
                y0_aug,
                prob.tspan,
                prob.p,
                noise=prob.noise,
                noise_dim=m if matrix else None,
                interpretation=prob.interpretation,
            )
        else:
            main_prob = ODEProblem(field, y0_aug, prob.tspan, prob.p)
        internal.error_components = n
        for name in ("rtol", "atol"):
            tol = kw[name]
            if isinstance(tol, Tensor) and tol.numel() > 1:  # per component: pad (unused)
                kw[name] = torch.cat([tol.reshape(-1), tol.new_ones(k)])

    # Where y(t_r) of a local term comes from.
    samplings = {t.sampling for t in local}  # type: ignore[attr-defined]
    if len(samplings) > 1:
        raise ValueError(
            "the local regularizers of one solve must share their sampling ('unbiased' or "
            "'biased'): they take the same extra step"
        )
    sampling = samplings.pop() if samplings else None
    s_user = _user_saveat(prob, kw["saveat"])
    use_dense = (
        bool(local) and not sde and direct and (s_user is not None or sampling == "unbiased")
    )
    extra_times: list[Tensor] = []
    tr: Tensor | None = None
    if sampling == "unbiased":
        tr = _draw_unbiased(prob, joint)
        if s_user is not None and not use_dense:
            extra_times.append(tr)
    # The integrals are read at t1: a save time there, unless every sample has one.
    t1_extra = integ and s_user is not None and not bool((s_user[:, -1] == t1).all())
    if t1_extra:
        extra_times.append(t1.clone())

    # The main solve.
    cols_user: Tensor | None = None
    cols_extra: list[Tensor] = []
    if s_user is not None and extra_times:
        merged = s_user
        cols_user = torch.arange(s_user.shape[1], device=s_user.device)[None, :].expand(batch, -1)
        for x in extra_times:
            merged, cols_prev, col_x = _merge(merged, x, t0, t1)
            cols_user = cols_prev.gather(1, cols_user)
            cols_extra = [cols_prev.gather(1, c) for c in cols_extra]
            cols_extra.append(col_x)
        kw["saveat"] = _saveat_arg(merged, prob)
    if glob or sampling == "biased":
        kw["heuristics"] = True
        internal.internal_heuristics = not user_heur
        internal.record_eest = sde
    if use_dense:
        kw["dense"] = True
    sol = _solve(main_prob, solver, internal=internal, **kw)

    y_flat = _flat(sol.y, main_prob)  # (B, T, n [+ k])
    values: list[Tensor] = []
    for term in glob:
        assert sol.heuristics is not None
        values.append(term.from_heuristics(sol.heuristics))

    # Local terms: y(t_r), then one step.
    if local:
        if sampling == "biased":
            tr = _draw_biased(sol, prob)
        assert tr is not None
        if use_dense:
            dense = sol.interpolant
            assert dense is not None
            ur = dense.at(tr[:, None])[:, 0]  # type: ignore[attr-defined]
        elif cols_extra and sampling == "unbiased":
            ur = _take(y_flat, cols_extra[0])
        else:
            ur = _bridge(main_prob, solver, sol, y_flat, tr, kw)
        ur = ur[:, :n]
        need_rms = any(isinstance(t, LocalStiffnessEstimate) for t in local)
        h = _local_step(prob, solver, tr, ur, kw, need_rms)
        for term in local:
            if h is None:  # every sample had t_r = t1: a zero step
                values.append(torch.zeros(batch, dtype=prob.dtype, device=prob.device))
            else:
                values.append(term.from_heuristics(h))

    # Integral terms: the extra states at t1.
    if integ:
        # The t1 column, or the last one (a per-step save is padded with the final state).
        y_end = _take(y_flat, cols_extra[-1]) if t1_extra else y_flat[:, -1]
        for i, _ in enumerate(integ):
            values.append(y_end[:, n + i])

    # Values in the order of the terms, weighted.
    order = [*glob, *local, *integ]
    by_term = {id(t): v for t, v in zip(order, values, strict=True)}
    named: dict[str, Tensor] = {}
    total: Tensor | None = None
    for term in terms:
        v = term.scale * by_term[id(term)]
        v = v if prob.batched else v[0]
        key, i = term.name, 2
        while key in named:
            key, i = f"{term.name}_{i}", i + 1
        named[key] = v
        total = v if total is None else total + v
    user_shared = not prob.batched or kwargs["saveat"] is None or np.ndim(kwargs["saveat"]) == 1
    keep_dense = bool(user_dense) or (user_dense is None and s_user is None)
    return _finish(
        sol, prob, main_prob, n, cols_user, user_shared, keep_dense, user_heur, total, named
    )


def _finish(
    sol: Solution,
    prob: Any,
    main_prob: Any,
    n: int,
    cols_user: Tensor | None,
    user_shared: bool,
    keep_dense: bool,
    user_heur: bool,
    total: Tensor | None,
    named: dict[str, Tensor],
) -> Solution:
    """The user's view: their state, their save times; the regularization attached."""
    batch = prob.batch_size
    y = _flat(sol.y, main_prob)
    t = sol.t
    if cols_user is not None:  # drop the extra save times
        y = y.gather(1, cols_user[:, :, None].expand(-1, -1, y.shape[-1]))
        t_rows = _rows(t, batch).gather(1, cols_user)
        t = t_rows[0] if user_shared else t_rows
    y = y[..., :n].reshape(batch, y.shape[1], *prob.state_shape)
    interp = sol.interpolant if keep_dense else None
    if interp is not None and main_prob is not prob:
        interp = _Sliced(interp, n, prob.state_shape)
    return dataclasses.replace(
        sol,
        t=t,
        y=y if prob.batched else y[0],
        interpolant=interp,
        heuristics=sol.heuristics if user_heur else None,
        regularization=total,
        regularization_terms=named,
    )


class _Sliced:
    """The dense output of ``[y, e]`` seen as ``y`` in the user's state shape."""

    def __init__(self, dense: Any, n: int, state_shape: tuple[int, ...]) -> None:
        self.dense, self.n, self.state_shape = dense, n, state_shape

    def __call__(self, t: Tensor) -> Tensor:
        y = self.dense(t)
        return y[..., : self.n].reshape(*y.shape[:-1], *self.state_shape)
