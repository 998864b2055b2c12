"""The regularizer specs' common base, weights and sums."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["AbstractRegularizer", "RegularizerSum", "as_terms"]


@dataclass(frozen=True)
class AbstractRegularizer(abc.ABC):
    """Base of every regularizer spec.

    A regularizer is a frozen spec, like a solver: ``solve(..., regularizer=spec)`` computes
    its value per sample during the solve and returns it in ``sol.regularization``.

    Specs scale and add: ``0.01 * KineticEnergy() + 0.01 * JacobianFrobenius()`` is a
    :class:`RegularizerSum` whose value is the weighted sum of its terms.

    Traits (class-level): ``kind`` is ``"global"`` (read from the solver's per-step
    estimates of the whole solve; needs ``DirectBackprop``), ``"local"`` (one extra step
    from a random time; any ``sensealg``) or ``"integral"`` (an integral carried as extra
    states beside the ODE; any ``sensealg``).
    """

    kind: ClassVar[str]

    @property
    def name(self) -> str:
        """The spec's class name (the key in ``sol.regularization_terms``)."""
        return type(self).__name__

    @property
    def scale(self) -> float:
        """The spec's weight in a sum (``weight`` field)."""
        return float(getattr(self, "weight", 1.0))

    def from_heuristics(self, h: Any) -> Any:
        """The value per sample from recorded heuristics (global and local terms)."""
        raise TypeError(f"{self.name} is not read from solver heuristics")

    def __mul__(self, c: Any) -> AbstractRegularizer:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            return NotImplemented
        return dataclasses.replace(self, weight=self.scale * float(c))  # type: ignore[call-arg]

    __rmul__ = __mul__

    def __add__(self, other: Any) -> RegularizerSum:
        if not isinstance(other, (AbstractRegularizer, RegularizerSum)):
            return NotImplemented
        return RegularizerSum((*as_terms(self), *as_terms(other)))


@dataclass(frozen=True)
class RegularizerSum:
    """A weighted sum of regularizers, ``Σ_i weight_i · R_i`` (made with ``+``).

    Example:
        >>> import hybrideq as hq
        >>> rnode = (
        ...     0.01 * hq.regularizers.KineticEnergy() + 0.01 * hq.regularizers.JacobianFrobenius()
        ... )
        >>> [t.name for t in rnode.terms], rnode.terms[0].weight
        (['KineticEnergy', 'JacobianFrobenius'], 0.01)
    """

    terms: tuple[AbstractRegularizer, ...]

    def __add__(self, other: Any) -> RegularizerSum:
        if not isinstance(other, (AbstractRegularizer, RegularizerSum)):
            return NotImplemented
        return RegularizerSum((*self.terms, *as_terms(other)))

    def __mul__(self, c: Any) -> RegularizerSum:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            return NotImplemented
        return RegularizerSum(tuple(t * c for t in self.terms))  # type: ignore[misc]

    __rmul__ = __mul__


def as_terms(reg: Any) -> tuple[AbstractRegularizer, ...]:
    """The terms of a spec, a sum, or a list/tuple of specs; raises for anything else."""
    if isinstance(reg, AbstractRegularizer):
        return (reg,)
    if isinstance(reg, RegularizerSum):
        return reg.terms
    if isinstance(reg, (list, tuple)) and reg:
        out: list[AbstractRegularizer] = []
        for r in reg:
            out.extend(as_terms(r))
        return tuple(out)
    if isinstance(reg, type) and issubclass(reg, AbstractRegularizer):
        raise TypeError(f"pass a regularizer instance, e.g. {reg.__name__}(), not the class")
    raise TypeError(
        "regularizer must be a spec from hybrideq.regularizers (e.g. ErrorEstimate()), a sum "
        f"of them, or a list of them; got {reg!r}"
    )
