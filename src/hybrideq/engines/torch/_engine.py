"""The torch engine's entry point: from a validated problem and options to a Solution."""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hybrideq.engines.torch._adjoint import adjoint_solve
from hybrideq.engines.torch._controller import PIController
from hybrideq.engines.torch._dae_init import initialize_dae
from hybrideq.engines.torch._interpolation import DenseOutput
from hybrideq.engines.torch._jacobian import user_jacobian
from hybrideq.engines.torch._linsolve import linear_solver_config
from hybrideq.engines.torch._loop import LoopOptions
from hybrideq.engines.torch._methods import (
    BDFRunner,
    CompositeRunner,
    DIRKRunner,
    ExplicitRunner,
    MethodRunner,
    RosenbrockRunner,
)
from hybrideq.engines.torch._rhs import UserRHS
from hybrideq.problems import ODEProblem
from hybrideq.sensitivity import (
    AbstractSensitivityAlgorithm,
    BacksolveAdjoint,
    DirectBackprop,
    InterpolatingAdjoint,
)
from hybrideq.solution import Heuristics, Solution, Stats
from hybrideq.solvers import (
    AbstractBDF,
    AbstractDIRK,
    AbstractExplicitRK,
    AbstractODESolver,
    AbstractRosenbrock,
)
from hybrideq.solvers._base import AbstractImplicitSolver
from hybrideq.solvers.composite import AbstractAutoSwitch

__all__ = ["SolveOptions", "gradient_parameters", "solve_ode", "user_shapes"]


@dataclass
class SolveOptions:
    """Validated, engine-ready options (tensors on the problem's device and dtype)."""

    saveat: Tensor | None  # (batch, T) or None
    saveat_shared: bool
    adaptive: bool
    dt: Tensor | None  # (batch,) signed
    rtol: Tensor
    atol: Tensor
    dtmin: Tensor
    dtmax: Tensor
    maxiters: int
    dense: bool
    heuristics: bool
    sensealg: AbstractSensitivityAlgorithm | None
    progress: bool
    joint: bool = False
    initializealg: str = "auto"  # consistent DAE initial values: auto, brown, check, none
    # Set by the regularizers (hybrideq.regularizers): leading components in the error
    # norm, the RMS form of the stiffness estimate, heuristics recorded for internal use
    # (no warning under an adjoint).
    error_components: int | None = None
    stiffness_rms: bool = False
    internal_heuristics: bool = False


def gradient_parameters(prob: Any) -> list[Tensor]:
    """Tensors an adjoint differentiates with respect to: ``p`` and module parameters.

    Looks in ``p``, ``f`` and, for an SDE, ``g``.
    """
    found: list[Tensor] = []
    seen: set[int] = set()

    def add(x: Any) -> None:
        if isinstance(x, Tensor):
            if x.requires_grad and id(x) not in seen:
                seen.add(id(x))
                found.append(x)
        elif isinstance(x, nn.Module):
            for q in x.parameters():
                add(q)
        elif isinstance(x, (tuple, list)):
            for q in x:
                add(q)
        elif isinstance(x, dict):
            for q in x.values():
                add(q)

    add(prob.p)
    add(prob.f)
    add(getattr(prob, "g", None))
    return found


def _warn_adjoint_pitfalls(
    prob: ODEProblem, params: list[Tensor], heuristics: bool, sensealg: object
) -> None:
    """Warn where an adjoint would silently give no gradient."""
    name = type(sensealg).__name__
    if heuristics:
        warnings.warn(
            f"heuristics=True with {name}: sol.heuristics carries no gradient under an "
            "adjoint (the forward solve records no graph); use sensealg=DirectBackprop() "
            "to train with solver-heuristic regularization",
            stacklevel=4,
        )
    known = {id(p) for p in params}
    try:
        found = inspect.getclosurevars(prob.f)  # the names f's code refers to
    except TypeError:  # not a Python function (a module, a builtin): nothing to see
        return
    for value in (*found.nonlocals.values(), *found.globals.values()):
        if isinstance(value, Tensor) and value.requires_grad and id(value) not in known:
            warnings.warn(
                f"f uses a tensor that requires grad from outside (a closure or a global); "
                f"{name} cannot see it and gives it no gradient. Pass it as p (a tensor or a "
                "tuple of tensors) or make f an nn.Module with it as a parameter",
                stacklevel=4,
            )
            return


class _Progress:
    """A tqdm bar over the fraction of the span the slowest sample has covered."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=1000, desc="solve", unit="‰", leave=False)
        self.last = 0

    def __call__(self, frac: float) -> None:
        now = int(frac * 1000)
        if now > self.last:
            self.bar.update(now - self.last)
            self.last = now

    def close(self) -> None:
        self.bar.close()


def user_shapes(prob: Any, t: Tensor, y: Tensor, shared_saveat: bool) -> tuple[Tensor, Tensor]:
    """``(batch, T)`` times and ``(batch, T, n)`` states in the user's shapes.

    The state takes the problem's shape; an unbatched problem drops the batch dimension,
    and shared save times are returned once, ``(T,)``.
    """
    batch = y.shape[0]
    y_out = y.reshape(batch, y.shape[1], *prob.state_shape)
    t_out = t[0] if not prob.batched or shared_saveat else t
    return t_out, (y_out if prob.batched else y_out[0])


def make_runner(prob: ODEProblem, solver: AbstractODESolver) -> MethodRunner:
    """The loop and stepper that run ``solver`` on ``prob``'s kind of right-hand side."""
    if isinstance(solver, AbstractAutoSwitch):
        if prob.mass_matrix is not None:
            raise ValueError(
                f"{solver.name} cannot take a mass_matrix (its explicit part cannot); use "
                f"{solver.stiff_alg.name}() directly"
            )
        stiff = make_runner(prob, solver.stiff_alg)
        assert isinstance(stiff, (RosenbrockRunner, DIRKRunner, BDFRunner))
        return CompositeRunner(solver.nonstiff_tableau, stiff, solver.switch_options())
    if isinstance(solver, AbstractExplicitRK):
        tab = solver.tableau
        if prob.mass_matrix is not None:
            raise ValueError(
                f"{solver.name} is explicit and cannot take a mass_matrix; use a Rosenbrock "
                "method such as Rodas5P(), or QNDF()"
            )
        return ExplicitRunner(tab, PIController.for_order(tab.order, solver.name))
    if isinstance(solver, AbstractImplicitSolver):
        if prob.mass_matrix is not None and not solver.supports_mass_matrix:
            raise ValueError(
                f"{solver.name} does not accept a mass_matrix; use a Rosenbrock method such "
                "as Rodas5P() or QNDF()"
            )
        problem_jac = None
        if prob.jac is not None:
            problem_jac = user_jacobian(
                prob.jac, prob.p, prob.batched, prob.state_shape, prob.n, prob.dtype
            )
        # Dense LU, sparse LU or GMRES (solver.linsolve); raises where the method has none.
        linsolve = linear_solver_config(prob, solver)
        if isinstance(solver, AbstractRosenbrock):
            rtab = solver.tableau
            return RosenbrockRunner(
                rtab,
                PIController.for_order(rtab.order, solver.name),
                solver.autodiff,
                problem_jac,
                prob.mass_matrix,
                linsolve=linsolve,
            )
        if isinstance(solver, AbstractDIRK):
            dtab = solver.tableau
            return DIRKRunner(
                dtab,
                PIController.for_order(dtab.order, solver.name),
                solver.autodiff,
                problem_jac,
                solver.max_newton,
                solver.kappa,
                linsolve=linsolve,
            )
        if isinstance(solver, AbstractBDF):
            return BDFRunner(
                solver.autodiff,
                problem_jac,
                prob.mass_matrix,
                solver.max_order,
                solver.kappas,
                solver.max_newton,
                linsolve=linsolve,
            )
    raise ValueError(f"{solver.name} cannot solve an ODEProblem on the torch engine")


def solve_ode(prob: ODEProblem, solver: AbstractODESolver, opts: SolveOptions) -> Solution:
    """Integrate ``prob`` with ``solver`` on the torch engine."""
    batch = prob.batch_size
    y0 = prob.y0.reshape(batch, -1)
    t0 = prob.tspan[0].expand(batch).contiguous()
    t1 = prob.tspan[1].expand(batch).contiguous()
    user = UserRHS(prob.f, prob.p, prob.batched, prob.state_shape, prob.dtype, prob.device)
    runner = make_runner(prob, solver)
    bar = _Progress() if opts.progress else None
    loop_opts = LoopOptions(
        adaptive=opts.adaptive,
        dt=opts.dt,
        rtol=opts.rtol,
        atol=opts.atol,
        dtmin=opts.dtmin,
        dtmax=opts.dtmax,
        maxiters=opts.maxiters,
        saveat=opts.saveat,
        dense=opts.dense,
        heuristics=opts.heuristics,
        progress=bar,
        joint=opts.joint,
        error_components=opts.error_components,
        stiffness_rms=opts.stiffness_rms,
    )
    sensealg = opts.sensealg
    adjoint = isinstance(sensealg, (BacksolveAdjoint, InterpolatingAdjoint))
    # Only an adjoint needs to know the parameters (direct backprop lets autograd find them).
    params = gradient_parameters(prob) if adjoint and torch.is_grad_enabled() else []
    wants_grad = torch.is_grad_enabled() and (prob.y0.requires_grad or bool(params))
    if runner.is_implicit and torch.is_grad_enabled() and not adjoint:
        # Direct backpropagation through an implicit method differentiates its Jacobians
        # too (exact discrete gradient); only worth the graph when something needs it.
        runner.differentiable = prob.y0.requires_grad or bool(gradient_parameters(prob))
    init = None
    if prob.mass_matrix is not None:  # consistent initial values of a DAE (_dae_init.py)
        init = initialize_dae(
            user,
            prob.mass_matrix,
            y0,
            t0,
            opts.rtol,
            opts.atol,
            opts.initializealg,
            jac=getattr(runner, "problem_jac", None),
            autodiff=getattr(solver, "autodiff", True),
            differentiable=runner.differentiable or wants_grad,
            joint=opts.joint,
        )
    if init is not None:
        y0 = init.y0
        t1, loop_opts.saveat = init.hold(t0, t1, loop_opts.saveat)
    adj_stats = None
    try:
        if wants_grad and isinstance(sensealg, (BacksolveAdjoint, InterpolatingAdjoint)):
            _warn_adjoint_pitfalls(
                prob, params, opts.heuristics and not opts.internal_heuristics, sensealg
            )
            if prob.mass_matrix is not None:
                raise ValueError(
                    f"{type(sensealg).__name__} does not support a mass_matrix yet; use "
                    "sensealg=DirectBackprop() for problems with a mass matrix"
                )
            problem_jac = getattr(runner, "problem_jac", None)
            res, y_saved, adj_stats = adjoint_solve(
                user,
                runner,
                y0,
                t0,
                t1,
                loop_opts,
                params,
                sensealg,
                problem_jac,
                getattr(solver, "autodiff", True),
            )
        else:
            if sensealg is not None and not isinstance(
                sensealg, (DirectBackprop, BacksolveAdjoint, InterpolatingAdjoint)
            ):
                raise TypeError(
                    f"sensealg {type(sensealg).__name__} is not supported by the torch engine; "
                    "use DirectBackprop(), BacksolveAdjoint() or InterpolatingAdjoint()"
                )
            res = runner.run(user, y0, t0, t1, loop_opts, lambda: user.ncalls, use_problem_jac=True)
            y_saved = res.y
    finally:
        if bar is not None:
            bar.close()
    if init is not None:
        res = init.finish(res, opts.saveat)

    state = prob.state_shape
    t_out, y_out = user_shapes(prob, res.t, y_saved, opts.saveat is not None and opts.saveat_shared)
    dense = copy.copy(res.dense)  # the user's view; the loop's object stays internal
    if dense is not None:
        dense.batched = prob.batched
        dense.state_shape = state
    heur = None
    if res.heuristics is not None:
        h = res.heuristics
        heur = Heuristics(
            t=h["t"],
            dt=h["dt"],
            accepted=h["accepted"],
            eest=h["eest"],
            eigen_est=h["eigen_est"],
            stability_size=runner.stability_size,
            eigen_rms=h.get("eigen_rms"),
        )
    zeros = torch.zeros_like(res.nf)
    njac = res.records.get("njac", zeros)
    nlu = res.records.get("nlu", zeros)

    def per(x: Tensor) -> Tensor:
        return x if prob.batched else x[0]

    stats = Stats(
        nf=per(res.nf),
        naccept=per(res.naccept),
        nreject=per(res.nreject),
        njac=per(njac),
        nlu=per(nlu),
        nnonliniter=per(res.records["nnewton"]) if "nnewton" in res.records else None,
        switches=per(res.records["switches"]) if "switches" in res.records else None,
        ncalls=res.ncalls,
    )
    return Solution(
        t=t_out,
        y=y_out,
        retcodes=res.retcode,
        stats=stats,
        batched=prob.batched,
        interpolant=dense if isinstance(dense, DenseOutput) else None,
        heuristics=heur,
        nsaved=res.nsaved if prob.batched else None,
        solver=solver,
        adjoint_stats=adj_stats,
    )
