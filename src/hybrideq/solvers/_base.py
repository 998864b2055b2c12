"""Engine-agnostic solver specs: WHAT to run. Options and traits only, no numerics."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["AbstractExplicitRK", "AbstractODESolver", "AbstractSolver"]


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
