"""Sensitivity (gradient) algorithm specs, named as in SciMLSensitivity.jl."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = [
    "AbstractSensitivityAlgorithm",
    "BacksolveAdjoint",
    "DirectBackprop",
    "InterpolatingAdjoint",
]


@dataclass(frozen=True)
class AbstractSensitivityAlgorithm:
    """Base of all sensitivity algorithms."""


@final
@dataclass(frozen=True)
class DirectBackprop(AbstractSensitivityAlgorithm):
    """Backpropagate through the solver's operations (discretize-then-optimize).

    Exact for the discrete solve that was taken (step sizes are treated as constants),
    memory grows with the number of steps. Needed whenever a loss uses the solver's
    heuristics (``EEst``, stiffness), since those have no continuous adjoint.
    """


@final
@dataclass(frozen=True)
class BacksolveAdjoint(AbstractSensitivityAlgorithm):
    """Continuous adjoint that re-solves the state backwards with the adjoint (O(1) memory).

    Cheap in memory, but the backward re-solve of the state can drift from the forward
    solution on unstable or stiff problems; prefer :class:`InterpolatingAdjoint` there.

    Args:
        seminorm: if ``True``, the step-size control of the backward solve measures the
            error of the state and its adjoint only, not of the parameter adjoint
            (Kidger, Chen, Lyons, "Hey, that's not an ODE", ICML 2021): fewer steps, same
            accuracy in practice. With ``False`` the parameter adjoint of every sample
            enters the error norm too (computed with per-sample vector–Jacobian products).
        rtol: relative tolerance of the backward solve (default: the forward one).
        atol: absolute tolerance of the backward solve (default: the forward one).
    """

    seminorm: bool = False
    rtol: float | None = None
    atol: float | None = None


@final
@dataclass(frozen=True)
class InterpolatingAdjoint(AbstractSensitivityAlgorithm):
    """Continuous adjoint that reads the state from the forward solution (checkpointed).

    The checkpoints are the states at the save times (``saveat``), which the forward pass
    keeps anyway. In the backward pass each interval between checkpoints is re-solved
    forwards with dense output and the adjoint is integrated against that interpolant,
    so the state is never integrated backwards: robust for stiff or unstable problems.
    Memory: the checkpoints plus the dense output of one interval (pass more save times
    for finer checkpointing).

    Args:
        seminorm: as for :class:`BacksolveAdjoint`.
        rtol: relative tolerance of the backward solve (default: the forward one).
        atol: absolute tolerance of the backward solve (default: the forward one).
    """

    seminorm: bool = False
    rtol: float | None = None
    atol: float | None = None
