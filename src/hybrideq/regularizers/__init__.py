"""Regularizers for neural differential equations: solver heuristics and RNODE.

Train a neural ODE or SDE so that it becomes cheap to solve, by adding to the loss:

- the adaptive solver's own per-step estimates over the whole solve (global):
  :class:`ErrorEstimate` (ERNODE) and :class:`StiffnessEstimate` (SRNODE), Pal, Ma, Shah &
  Rackauckas, ICML 2021; these need ``sensealg=DirectBackprop()``;
- the same estimates from one extra step at a random time (local):
  :class:`LocalErrorEstimate`, :class:`LocalStiffnessEstimate`, Pal, Edelman & Rackauckas,
  ICML 2023; any ``sensealg``;
- RNODE's integrals (Finlay et al., ICML 2020): :class:`KineticEnergy` and
  :class:`JacobianFrobenius`; any ``sensealg``.

Ask for them with ``solve(..., regularizer=...)`` or a model's ``regularizer=`` argument;
the value per sample comes back in ``sol.regularization``. Weights: the coefficient
schedules :class:`ExponentialDecay`, :class:`Constant` and :class:`Linear`.

Example:
    >>> import torch, hybrideq as hq
    >>> from hybrideq.regularizers import ErrorEstimate
    >>> prob = hq.ODEProblem(
    ...     lambda t, y, p: -p * y,
    ...     torch.ones(4, 1, dtype=torch.float64),
    ...     (0.0, 1.0),
    ...     torch.tensor(2.0, dtype=torch.float64, requires_grad=True),
    ... )
    >>> sol = hq.solve(prob, hq.Tsit5(), regularizer=ErrorEstimate())
    >>> sol.regularization.shape
    torch.Size([4])
    >>> sol.regularization.mean().backward()  # d R_E / d p
"""

from hybrideq.regularizers._base import AbstractRegularizer, RegularizerSum
from hybrideq.regularizers._schedules import AbstractSchedule, Constant, ExponentialDecay, Linear
from hybrideq.regularizers._terms import (
    ErrorEstimate,
    JacobianFrobenius,
    KineticEnergy,
    LocalErrorEstimate,
    LocalStiffnessEstimate,
    StiffnessEstimate,
)

__all__ = [
    "AbstractRegularizer",
    "AbstractSchedule",
    "Constant",
    "ErrorEstimate",
    "ExponentialDecay",
    "JacobianFrobenius",
    "KineticEnergy",
    "Linear",
    "LocalErrorEstimate",
    "LocalStiffnessEstimate",
    "RegularizerSum",
    "StiffnessEstimate",
]
