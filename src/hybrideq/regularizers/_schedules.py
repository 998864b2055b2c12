"""Coefficient schedules for the regularization weight ``λ(step)``."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import final

__all__ = ["AbstractSchedule", "Constant", "ExponentialDecay", "Linear"]


def _number(name: str, x: float, positive: bool = False) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise TypeError(f"{name} must be a finite number, got {x!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be positive, got {x!r}")


def _steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")


@dataclass(frozen=True)
class AbstractSchedule(abc.ABC):
    """A coefficient as a function of the training step: ``schedule(step) -> float``."""

    @abc.abstractmethod
    def __call__(self, step: int) -> float:
        """The coefficient at ``step`` (0-based)."""


@final
@dataclass(frozen=True)
class Constant(AbstractSchedule):
    """``λ(step) = value``.

    Example:
        >>> from hybrideq.regularizers import Constant
        >>> Constant(0.0285)(100)
        0.0285
    """

    value: float

    def __post_init__(self) -> None:
        _number("value", self.value)

    def __call__(self, step: int) -> float:
        return float(self.value)


@final
@dataclass(frozen=True)
class ExponentialDecay(AbstractSchedule):
    """The papers' annealing: ``λ(e) = start · exp(−k e)``, ``k = ln(start/end)/steps``.

    ``λ(0) = start`` and ``λ(steps) = end``; held at ``end`` afterwards (REFERENCES.md §1:
    ERNODE anneals 100 → 10 on MNIST, 1000 → 100 on PhysioNet).

    Example:
        >>> from hybrideq.regularizers import ExponentialDecay
        >>> s = ExponentialDecay(100.0, 10.0, steps=10)
        >>> round(s(0), 6), round(s(5), 4), round(s(10), 6), round(s(50), 6)
        (100.0, 31.6228, 10.0, 10.0)
    """

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        _number("start", self.start, positive=True)
        _number("end", self.end, positive=True)
        _steps(self.steps)

    def __call__(self, step: int) -> float:
        e = min(max(step, 0), self.steps)
        k = math.log(self.start / self.end) / self.steps
        return float(self.start * math.exp(-k * e))


@final
@dataclass(frozen=True)
class Linear(AbstractSchedule):
    """``λ`` moves linearly from ``start`` (step 0) to ``end`` (step ``steps``), then holds.

    Example:
        >>> from hybrideq.regularizers import Linear
        >>> s = Linear(0.1, 5.0, steps=49)
        >>> s(0), s(49), s(1000)
        (0.1, 5.0, 5.0)
    """

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        _number("start", self.start)
        _number("end", self.end)
        _steps(self.steps)

    def __call__(self, step: int) -> float:
        e = min(max(step, 0), self.steps)
        return float(self.start + (self.end - self.start) * e / self.steps)
