"""Sensitivity (gradient) algorithm specs, named as in SciMLSensitivity.jl."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = [
    "AbstractSensitivityAlgorithm",
    "BacksolveAdjoint",
    "DirectBackprop",
    "GaussAdjoint",
    "InterpolatingAdjoint",
    "QuadratureAdjoint",
    "ReversibleAdjoint",
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
    """Continuous adjoint that reads the state from an interpolant of the forward solution.

    The state is never integrated backwards, so this is robust for stiff or unstable
    problems where :class:`BacksolveAdjoint` drifts.

    - ``checkpointing=False`` (the default, as in SciMLSensitivity): the forward solve
      keeps its dense output (no autograd graph) and the backward solve reads ``y(t)``
      from it. Memory: the dense output of the whole forward solve.
    - ``checkpointing=True``: only the states at the save times are kept; in the
      backward pass each interval between save times is re-solved forwards with dense
      output, then the adjoint is integrated over it. Memory: the save points plus one
      interval; cost: one more forward solve. Pass more save times for finer
      checkpoints.

    Args:
        checkpointing: re-solve between save points instead of keeping the dense output.
        seminorm: as for :class:`BacksolveAdjoint`.
        rtol: relative tolerance of the backward solve (default: the forward one).
        atol: absolute tolerance of the backward solve (default: the forward one).
    """

    checkpointing: bool = False
    seminorm: bool = False
    rtol: float | None = None
    atol: float | None = None


@final
@dataclass(frozen=True)
class ReversibleAdjoint(AbstractSensitivityAlgorithm):
    """Exact gradients in O(1) memory for an algebraically reversible solver (SDEs).

    With :class:`~hybrideq.ReversibleHeun` the backward pass runs each step in reverse
    (Kidger, Foster, Li, Lyons, NeurIPS 2021, §3), reconstructing the forward states to
    rounding error, and backpropagates through one step at a time: the gradients are those
    of direct backpropagation of the same discrete solve, but no graph of the whole solve is
    kept (the name is diffrax's). Other solvers reject it.
    """


@final
@dataclass(frozen=True)
class QuadratureAdjoint(AbstractSensitivityAlgorithm):
    """Continuous adjoint with the parameter gradient as a quadrature (SciMLSensitivity).

    The adjoint state is integrated backwards alone; ``∫ λᵀ ∂f/∂p dt`` is then computed by
    adaptive Gauss–Kronrod quadrature over the forward interpolant. ODEs only. Runs on the
    Julia engine (``solve(..., engine="julia")``); on the torch engine use
    :class:`InterpolatingAdjoint`.

    Args:
        abstol: absolute tolerance of the quadrature.
        reltol: relative tolerance of the quadrature.
    """

    abstol: float = 1e-6
    reltol: float = 1e-3


@final
@dataclass(frozen=True)
class GaussAdjoint(AbstractSensitivityAlgorithm):
    """Continuous adjoint with the parameter gradient accumulated by Gauss quadrature on each
    step of the backward solve (SciMLSensitivity's recommended adjoint for ODEs).

    Runs on the Julia engine; on the torch engine use :class:`InterpolatingAdjoint`.

    Args:
        checkpointing: re-solve the forward problem between save points instead of
            keeping its dense output.
    """

    checkpointing: bool = False
