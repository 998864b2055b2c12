"""The torch engine's SDE entry point: from a validated SDEProblem to a Solution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.torch._brownian import BrownianPath, _BrownianBase
from hybrideq.engines.torch._controller import initial_step
from hybrideq.engines.torch._engine import _Progress, user_shapes
from hybrideq.engines.torch._rhs import UserRHS
from hybrideq.engines.torch._sde import (
    SDELoopOptions,
    UserDiffusion,
    make_sde_stepper,
    run_sde_loop,
)
from hybrideq.problems import SDEProblem
from hybrideq.sensitivity import (
    AbstractSensitivityAlgorithm,
    BacksolveAdjoint,
    DirectBackprop,
    ReversibleAdjoint,
)
from hybrideq.solution import Heuristics, Solution, Stats
from hybrideq.solvers.sde import AbstractSDESolver, ReversibleHeun

__all__ = ["SDESolveOptions", "make_brownian_path", "solve_sde"]


@dataclass
class SDESolveOptions:
    """Validated, engine-ready options of an SDE solve."""

    saveat: Tensor | None
    saveat_shared: bool
    adaptive: bool
    dt: Tensor | None  # (batch,) positive, or None (automatic first step when adaptive)
    rtol: Tensor
    atol: Tensor
    dtmin: Tensor
    dtmax: Tensor
    maxiters: int
    sensealg: AbstractSensitivityAlgorithm | None
    progress: bool
    joint: bool
    seed: int | None
    brownian: Any
    record_eest: bool = False  # per-step EEst for the regularizers (sol.heuristics)
    error_components: int | None = None  # leading components in the error norm


def _fresh_seed() -> int:
    """A seed from torch's global generator, so ``torch.manual_seed`` makes solves repeatable."""
    return int(torch.randint(0, 2**62, (1,)).item())


def make_brownian_path(
    prob: SDEProblem,
    brownian: Any,
    seed: int | None,
    levy: bool,
    per_sample: bool,
) -> BrownianPath:
    """The path a solve uses: the user's (checked) or a new one."""
    batch, m = prob.batch_size, prob.noise_dim
    t0 = prob.tspan[0].expand(batch).detach().cpu().double()
    t1 = prob.tspan[1].expand(batch).detach().cpu().double()
    if brownian is None:
        return BrownianPath(
            t0,
            t1,
            batch,
            m,
            seed=_fresh_seed() if seed is None else int(seed),
            levy_area=levy,
            per_sample=per_sample,
            batched=prob.batched,
            dtype=prob.dtype,
            device=prob.device,
        )
    if seed is not None:
        raise ValueError("pass either seed= (a new path) or brownian= (an existing path), not both")
    if isinstance(brownian, _BrownianBase):
        expected = (batch, m) if prob.batched else (m,)
        if tuple(brownian.shape) != expected:
            raise ValueError(
                f"brownian has shape {tuple(brownian.shape)}; this problem needs {expected} "
                "(batch, Brownian components)"
            )
        if brownian.dtype != prob.dtype or brownian.device != prob.device:
            raise ValueError(
                f"brownian draws {brownian.dtype} on {brownian.device} but y0 is "
                f"{prob.dtype} on {prob.device}; build it with the state's dtype and device"
            )
        path = BrownianPath(
            t0,
            t1,
            batch,
            m,
            seed=brownian.seed,
            batched=prob.batched,
            dtype=prob.dtype,
            device=prob.device,
            samplers=brownian if prob.batched else [brownian],
        )
        lo = np.full(batch, brownian.t0)
        hi = np.full(batch, brownian.t1)
    elif isinstance(brownian, BrownianPath):
        path = brownian
        if path.batch != batch or path.m != m:
            raise ValueError(
                f"brownian is a path of {path.batch} samples with {path.m} components; this "
                f"problem has {batch} samples with {m} Brownian components"
            )
        if path.dtype != prob.dtype or path.device != prob.device:
            raise ValueError(
                f"brownian holds {path.dtype} on {path.device} but y0 is {prob.dtype} on "
                f"{prob.device}"
            )
        lo = np.asarray(path.t0_list)
        hi = np.asarray(path.t1_list)
    else:
        raise TypeError(
            "brownian must be a path from a previous solve (sol.W), a BrownianPath, or a "
            f"BrownianInterval/BrownianTree; got {type(brownian).__name__}"
        )
    if bool((t0.numpy() < lo).any() or (t1.numpy() > hi).any()):
        raise ValueError(
            "brownian does not cover tspan: every sample's [t0, t1] must lie inside the path's span"
        )
    if levy and not path.levy_area:
        raise ValueError(
            "this solver needs the space-time Lévy area of each step, which brownian does not "
            "track; build the path with levy_area=True (or solve first with an SRI/SRA method "
            "and reuse its sol.W)"
        )
    return path


def _first_step(
    prob: SDEProblem,
    f: UserRHS,
    g: UserDiffusion,
    y0: Tensor,
    t0: Tensor,
    opts: SDESolveOptions,
    order: float,
) -> Tensor:
    """An automatic first step from the drift and the diffusion's size at ``y0``."""
    with torch.no_grad():
        f0 = f(t0, y0)
        g0 = g(t0, y0)
        g_size = g0.abs().sum(-1) if g.matrix else g0.abs()
        # StochasticDiffEq's sde_determine_initdt measures max(|f0 + g0|, |f0 − g0|).
        eff = f0.abs() + g_size
    return initial_step(
        eff,
        y0,
        t0,
        torch.ones_like(t0),
        max(1, round(order)),
        opts.rtol,
        opts.atol,
        opts.dtmax,
        f,
        joint=opts.joint,
        n_err=opts.error_components,
    ).abs()


def solve_sde(prob: SDEProblem, solver: AbstractSDESolver, opts: SDESolveOptions) -> Solution:
    """Integrate ``prob`` with ``solver`` on the torch engine."""
    batch = prob.batch_size
    y0 = prob.y0.reshape(batch, -1)
    t0 = prob.tspan[0].expand(batch).contiguous()
    t1 = prob.tspan[1].expand(batch).contiguous()
    f = UserRHS(prob.f, prob.p, prob.batched, prob.state_shape, prob.dtype, prob.device)
    g = UserDiffusion(
        prob.g,
        prob.p,
        prob.batched,
        prob.state_shape,
        prob.matrix_noise,
        prob.noise_dim,
        prob.dtype,
        prob.device,
    )
    stepper = make_sde_stepper(solver, f, g, prob.matrix_noise, prob.n, opts.rtol, opts.atol)
    per_sample = opts.adaptive and not opts.joint
    path = make_brownian_path(prob, opts.brownian, opts.seed, stepper.needs_levy, per_sample)
    dt = opts.dt
    if dt is None:
        dt = _first_step(prob, f, g, y0, t0, opts, stepper.controller_order)
        if opts.joint:  # one step for the batch (the norms were joint; rounding is not)
            dt = dt.min().expand_as(dt).contiguous()
    bar = None
    if opts.progress:
        bar = _Progress()
    loop_opts = SDELoopOptions(
        adaptive=opts.adaptive,
        dt=dt,
        rtol=opts.rtol,
        atol=opts.atol,
        dtmin=opts.dtmin,
        dtmax=opts.dtmax,
        maxiters=opts.maxiters,
        saveat=opts.saveat,
        progress=bar,
        joint=opts.joint,
        record_eest=opts.record_eest,
        error_components=opts.error_components,
    )
    sensealg = opts.sensealg
    if sensealg is not None and not isinstance(
        sensealg, (DirectBackprop, BacksolveAdjoint, ReversibleAdjoint)
    ):
        raise TypeError(
            f"sensealg {type(sensealg).__name__} is not supported for SDEs; use "
            "DirectBackprop(), BacksolveAdjoint() or ReversibleAdjoint()"
        )
    if isinstance(sensealg, ReversibleAdjoint) and not isinstance(solver, ReversibleHeun):
        raise ValueError(
            f"ReversibleAdjoint needs an algebraically reversible solver; use "
            f"ReversibleHeun() instead of {solver.name}, or sensealg=BacksolveAdjoint()"
        )
    try:
        if isinstance(sensealg, (BacksolveAdjoint, ReversibleAdjoint)) and (
            torch.is_grad_enabled()
        ):
            from hybrideq.engines.torch._sde_adjoint import sde_adjoint_solve

            res, y_saved = sde_adjoint_solve(
                prob,
                f,
                g,
                stepper,
                path,
                y0,
                t0,
                t1,
                loop_opts,
                reversible=isinstance(sensealg, ReversibleAdjoint),
            )
        else:
            res = run_sde_loop(stepper, path, y0, t0, t1, loop_opts, lambda: f.ncalls + g.ncalls)
            y_saved = res.y
    finally:
        if bar is not None:
            bar.close()
    t_out, y_out = user_shapes(prob, res.t, y_saved, opts.saveat is not None and opts.saveat_shared)

    def per(x: Tensor) -> Tensor:
        return x if prob.batched else x[0]

    stats = Stats(
        nf=per(res.nf),
        naccept=per(res.naccept),
        nreject=per(res.nreject),
        njac=per(torch.full_like(res.nf, res.njac)),
        nlu=per(torch.full_like(res.nf, res.nlu)),
        nnonliniter=per(torch.full_like(res.nf, res.nnewton)) if res.nnewton else None,
        ng=per(res.ng),
        ncalls=res.ncalls,
    )
    heur = None
    if res.heuristics is not None:
        h = res.heuristics
        heur = Heuristics(
            t=h["t"],
            dt=h["dt"],
            accepted=h["accepted"],
            eest=h["eest"],
            eigen_est=h.get("eig"),
            stability_size=solver.stability_size,
            eigen_rms=h.get("eig"),  # an SRI estimate is a ratio of RMS norms already
        )
    return Solution(
        t=t_out,
        y=y_out,
        retcodes=res.retcode,
        stats=stats,
        batched=prob.batched,
        nsaved=res.nsaved if prob.batched else None,
        solver=solver,
        W=path,
        heuristics=heur,
    )
