"""Method runners: one object per solver family that runs the right loop for a right-hand side.

The engine and the adjoints integrate several right-hand sides with the user's solver
(the problem itself, the adjoint system, checkpointed re-solves). A runner hides which
loop and which stepper that takes:

- :class:`ExplicitRunner`: the explicit Runge–Kutta loop with the method's tableau;
- :class:`RosenbrockRunner`, :class:`DIRKRunner`: the implicit loop with a stepper that
  owns a :class:`~._jacobian.JacobianProvider` for that right-hand side.

``jac`` passed to :meth:`run` overrides how the Jacobian of that right-hand side is
formed (the interpolating adjoint passes ``−J_fᵀ`` built from the forward problem's
Jacobian; with ``jac=None`` the problem's own ``jac`` is used for the problem's
right-hand side, and automatic or finite-difference Jacobians otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from hybrideq.engines.torch._bdf import BDFStepper
from hybrideq.engines.torch._composite import CompositeStepper, ExplicitRKStepper
from hybrideq.engines.torch._controller import PIController
from hybrideq.engines.torch._dirk import DIRKStepper
from hybrideq.engines.torch._implicit_loop import run_implicit_loop
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.engines.torch._linsolve import LinearSolver, LinearSolverConfig
from hybrideq.engines.torch._loop import RHS, LoopOptions, LoopResult, run_loop
from hybrideq.engines.torch._rosenbrock import RosenbrockStepper
from hybrideq.tableaus import ExplicitRKTableau

__all__ = [
    "BDFRunner",
    "CompositeRunner",
    "DIRKRunner",
    "ExplicitRunner",
    "MethodRunner",
    "RosenbrockRunner",
]

JacFn = Callable[[Tensor, Tensor], Tensor]


class MethodRunner(Protocol):
    """Runs one solve of ``rhs`` with a fixed method."""

    order: int
    stability_size: float | None
    is_implicit: bool
    differentiable: bool

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult: ...


class ExplicitRunner:
    """An explicit Runge–Kutta method."""

    is_implicit = False
    differentiable = False

    def __init__(self, tableau: ExplicitRKTableau, controller: PIController) -> None:
        self.tableau = tableau
        self.controller = controller
        self.order = tableau.order
        self.stability_size = tableau.stability_size

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult:
        return run_loop(rhs, self.tableau, y0, t0, t1, opts, self.controller, ncalls)


def _linear_parts(
    runner: Any,
    rhs: RHS,
    y0: Tensor,
    jac: Any,
    use_problem_jac: bool,
    need_ft: bool,
    mass: Tensor | None,
) -> tuple[JacobianProvider, LinearSolver]:
    """The Jacobian provider and linear solver of an implicit runner's stepper for ``rhs``.

    ``jac`` is a right-hand side's own Jacobian (an adjoint's); without it the problem's
    ``jac`` serves the problem's own ``rhs``. Right-hand sides other than the problem's call
    autograd inside: automatic Jacobians are for the problem's own ``f`` only, finite
    differences for the others.
    """
    j = jac if jac is not None else (runner.problem_jac if use_problem_jac else None)
    return runner.linsolve.build(
        rhs,
        y0,
        j,
        use_problem_jac and jac is None,
        runner.autodiff and use_problem_jac,
        need_ft,
        mass,
        runner.differentiable and use_problem_jac,
    )


class RosenbrockRunner:
    """A Rosenbrock method (one Jacobian and one LU per step)."""

    is_implicit = True
    stability_size: float | None = None
    differentiable = False  # build automatic Jacobians on autograd's tape

    def __init__(
        self,
        tableau: Any,
        controller: PIController,
        autodiff: bool,
        problem_jac: JacFn | None,
        mass: Tensor | None,
        linsolve: LinearSolverConfig | None = None,
    ) -> None:
        self.tableau = tableau
        self.controller = controller
        self.autodiff = autodiff
        self.problem_jac = problem_jac
        self.mass = mass
        self.linsolve = linsolve if linsolve is not None else LinearSolverConfig()
        self.order = int(tableau.order)

    def stepper(
        self,
        rhs: RHS,
        y0: Tensor,
        opts: LoopOptions,
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> RosenbrockStepper:
        """A fresh stepper for ``rhs``."""
        batch = y0.shape[0]
        mass = self.mass if use_problem_jac else None
        provider, lin = _linear_parts(self, rhs, y0, jac, use_problem_jac, True, mass)
        return RosenbrockStepper(
            self.tableau, rhs, provider, mass, batch, y0.dtype, y0.device, linsolve=lin
        )

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult:
        stepper = self.stepper(rhs, y0, opts, jac, use_problem_jac)
        return run_implicit_loop(rhs, stepper, y0, t0, t1, opts, self.controller, ncalls)


class DIRKRunner:
    """An (E)SDIRK method with simplified Newton iterations and Jacobian/LU reuse."""

    is_implicit = True
    stability_size: float | None = None
    differentiable = False  # build automatic Jacobians on autograd's tape

    def __init__(
        self,
        tableau: Any,
        controller: PIController,
        autodiff: bool,
        problem_jac: JacFn | None,
        max_newton: int,
        kappa: float,
        linsolve: LinearSolverConfig | None = None,
    ) -> None:
        self.tableau = tableau
        self.controller = controller
        self.autodiff = autodiff
        self.problem_jac = problem_jac
        self.max_newton, self.kappa = max_newton, kappa
        self.linsolve = linsolve if linsolve is not None else LinearSolverConfig()
        self.order = int(tableau.order)

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult:
        stepper = self.stepper(rhs, y0, opts, jac, use_problem_jac)
        return run_implicit_loop(rhs, stepper, y0, t0, t1, opts, self.controller, ncalls)

    def stepper(
        self,
        rhs: RHS,
        y0: Tensor,
        opts: LoopOptions,
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> DIRKStepper:
        """A fresh stepper for ``rhs``."""
        batch = y0.shape[0]
        provider, lin = _linear_parts(self, rhs, y0, jac, use_problem_jac, False, None)
        return DIRKStepper(
            self.tableau,
            rhs,
            provider,
            opts.rtol,
            opts.atol,
            self.max_newton,
            self.kappa,
            batch,
            y0.dtype,
            y0.device,
            linsolve=lin,
        )


class CompositeRunner:
    """Automatic switching between an explicit and a stiff method, per sample.

    The stiff method is a Rosenbrock, an ESDIRK or a variable-order BDF runner; a BDF
    steps itself while a sample is on it (:class:`~._composite.CompositeStepper`).
    """

    is_implicit = True

    @property
    def differentiable(self) -> bool:
        return self.stiff.differentiable

    @differentiable.setter
    def differentiable(self, value: bool) -> None:
        self.stiff.differentiable = value

    def __init__(
        self,
        nonstiff: ExplicitRKTableau,
        stiff: RosenbrockRunner | DIRKRunner | BDFRunner,
        options: dict[str, Any],
    ) -> None:
        if not isinstance(stiff, (RosenbrockRunner, DIRKRunner, BDFRunner)):
            raise TypeError(
                "the stiff method (stiff_alg) of a composite must be a Rosenbrock, ESDIRK "
                f"or BDF method (e.g. Rodas5P(), KenCarp4(), QNDF()), got {type(stiff).__name__}"
            )
        if nonstiff.stability_size is None or nonstiff.stiffness_stages is None:
            raise ValueError(f"{nonstiff.name} has no stiffness estimate to switch on")
        self.tableau = nonstiff
        self.stiff = stiff
        self.options = options
        self.order = nonstiff.order
        self.stability_size: float | None = nonstiff.stability_size
        self.problem_jac = stiff.problem_jac
        self.controller = PIController.for_order(nonstiff.order, nonstiff.name)

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult:
        assert self.stability_size is not None
        stiff_opts = opts
        if isinstance(self.stiff, BDFRunner) and opts.joint:
            # The switch is decided per sample, so the samples of a batch do not share their
            # steps on a composite anyway; the BDF chooses per sample too (a joint choice
            # would average in the samples on the explicit method).
            stiff_opts = dataclasses.replace(opts, joint=False)
        stiff = self.stiff.stepper(rhs, y0, stiff_opts, jac, use_problem_jac)
        stepper = CompositeStepper(
            ExplicitRKStepper(self.tableau, rhs),
            stiff,
            self.stability_size,
            self.controller,
            self.stiff.controller,
            y0.shape[0],
            y0.dtype,
            y0.device,
            **self.options,
        )
        res = run_implicit_loop(rhs, stepper, y0, t0, t1, opts, self.controller, ncalls)
        res.records["switches"] = stepper.switched
        res.records["stiff_at_end"] = stepper.is_stiff
        if stepper.multistep:
            res.records["on_stiff"], res.records["orders"] = stepper.orders()
        return res


def zero_like_counts(res: LoopResult) -> tuple[Tensor, Tensor]:
    """``njac`` and ``nlu`` of a result (zeros for explicit methods)."""
    zeros = torch.zeros_like(res.nf)
    return res.records.get("njac", zeros), res.records.get("nlu", zeros)


class BDFRunner:
    """A variable-order BDF/NDF method (QNDF, QBDF): a self-controlled :class:`BDFStepper`."""

    is_implicit = True
    stability_size: float | None = None
    differentiable = False  # build automatic Jacobians on autograd's tape

    def __init__(
        self,
        autodiff: bool,
        problem_jac: JacFn | None,
        mass: Tensor | None,
        max_order: int,
        kappa: tuple[float, ...],
        max_newton: int,
        linsolve: LinearSolverConfig | None = None,
    ) -> None:
        self.autodiff = autodiff
        self.problem_jac = problem_jac
        self.mass = mass
        self.max_order, self.kappa, self.max_newton = max_order, kappa, max_newton
        self.linsolve = linsolve if linsolve is not None else LinearSolverConfig()
        self.order = max_order
        # The loop needs a controller; the stepper chooses its own steps (propose).
        self.controller = PIController.for_order(1)

    def stepper(
        self,
        rhs: RHS,
        y0: Tensor,
        opts: LoopOptions,
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> BDFStepper:
        """A fresh stepper for ``rhs``."""
        batch = y0.shape[0]
        mass = self.mass if use_problem_jac else None
        provider, lin = _linear_parts(self, rhs, y0, jac, use_problem_jac, False, mass)
        return BDFStepper(
            rhs,
            provider,
            mass,
            opts.rtol,
            opts.atol,
            self.max_order,
            self.kappa,
            self.max_newton,
            opts.joint,
            batch,
            y0.dtype,
            y0.device,
            linsolve=lin,
        )

    def run(
        self,
        rhs: RHS,
        y0: Tensor,
        t0: Tensor,
        t1: Tensor,
        opts: LoopOptions,
        ncalls: Callable[[], int],
        jac: JacFn | None = None,
        use_problem_jac: bool = False,
    ) -> LoopResult:
        stepper = self.stepper(rhs, y0, opts, jac, use_problem_jac)
        res = run_implicit_loop(rhs, stepper, y0, t0, t1, opts, self.controller, ncalls)
        res.records["orders"] = stepper.orders()
        return res
