"""Engine-agnostic solver specs: WHAT to run. Options and traits only, no numerics."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hybrideq.tableaus import DIRKTableau, ExplicitRKTableau, RosenbrockTableau

__all__ = [
    "AbstractDIRK",
    "AbstractExplicitRK",
    "AbstractImplicitSolver",
    "AbstractODESolver",
    "AbstractRosenbrock",
    "AbstractSolver",
]


@dataclass(frozen=True)
class AbstractSolver(abc.ABC):
    """Base of every solver spec.

    Traits (class-level): ``order``, ``is_adaptive``, ``is_implicit``, ``noise_types``
    (empty for ODE solvers), ``stability_size`` (``alg_stability_size`` of
    OrdinaryDiffEq.jl, or ``None``).
    """

    order: ClassVar[int]
    is_adaptive: ClassVar[bool]
    is_implicit: ClassVar[bool] = False
    noise_types: ClassVar[tuple[str, ...]] = ()
    stability_size: ClassVar[float | None] = None

    @property
    def name(self) -> str:
        """The DifferentialEquations.jl name of the method."""
        return type(self).__name__


@dataclass(frozen=True)
class AbstractODESolver(AbstractSolver):
    """A solver for ordinary differential equations."""


@dataclass(frozen=True)
class AbstractExplicitRK(AbstractODESolver):
    """An explicit Runge–Kutta method given by a Butcher tableau."""

    @property
    @abc.abstractmethod
    def tableau(self) -> ExplicitRKTableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractImplicitSolver(AbstractODESolver):
    """A stiff solver: it needs the Jacobian ``∂f/∂y`` and solves linear systems.

    Options:
        autodiff: compute Jacobians with ``torch.func`` forward mode (``True``, the
            default) or by finite differences (``False``). A ``jac`` given to the
            :class:`~hybrideq.ODEProblem` is always used first.
    """

    autodiff: bool = True
    is_implicit: ClassVar[bool] = True
    supports_mass_matrix: ClassVar[bool] = False


@dataclass(frozen=True)
class AbstractRosenbrock(AbstractImplicitSolver):
    """A Rosenbrock (linearly implicit Runge–Kutta) method: one LU per step, no Newton."""

    supports_mass_matrix: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def tableau(self) -> RosenbrockTableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractDIRK(AbstractImplicitSolver):
    """A diagonally implicit Runge–Kutta method solved by simplified Newton iterations.

    Options (besides ``autodiff``):
        max_newton: Newton iterations per stage before the step is declared failed.
        kappa: the Newton iteration stops when the estimated error of the iterate,
            ``η ‖Δz‖`` with ``η = θ/(1 − θ)`` (``θ`` the observed contraction rate), is
            below ``kappa`` (in units of the error tolerance), as in OrdinaryDiffEq.jl.
    """

    max_newton: int = 10
    kappa: float = 0.01

    @property
    @abc.abstractmethod
    def tableau(self) -> DIRKTableau:
        """The method's coefficients."""
