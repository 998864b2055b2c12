"""Candidate libraries for sparse regression, written as sympy expressions.

A library is a list of sympy expressions in the state symbols (and ``t``); SINDy fits
``dx_i/dt ≈ Σ_k ξ_ik θ_k(x)`` over them, so the discovered right-hand side is the sympy
expression ``Σ_k ξ_ik θ_k`` with no translation step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

__all__ = [
    "AbstractLibrary",
    "CustomLibrary",
    "FourierLibrary",
    "LibrarySum",
    "PolynomialLibrary",
    "evaluate_library",
]


class AbstractLibrary:
    """A family of candidate terms; libraries add: ``PolynomialLibrary(3) + FourierLibrary()``."""

    def terms(self, states: Sequence[sympy.Symbol], t: sympy.Symbol) -> list[sympy.Expr]:
        """The candidate terms in the given state symbols and time symbol."""
        raise NotImplementedError

    def __add__(self, other: AbstractLibrary) -> LibrarySum:
        if not isinstance(other, AbstractLibrary):
            return NotImplemented
        left = self.parts if isinstance(self, LibrarySum) else (self,)
        right = other.parts if isinstance(other, LibrarySum) else (other,)
        return LibrarySum((*left, *right))


@dataclass(frozen=True)
class LibrarySum(AbstractLibrary):
    """The union of libraries, duplicates removed, in order."""

    parts: tuple[AbstractLibrary, ...]

    def terms(self, states: Sequence[sympy.Symbol], t: sympy.Symbol) -> list[sympy.Expr]:
        out: list[sympy.Expr] = []
        for part in self.parts:
            for term in part.terms(states, t):
                if term not in out:
                    out.append(term)
        return out


@dataclass(frozen=True)
class PolynomialLibrary(AbstractLibrary):
    """Monomials of the states up to total degree ``degree`` (``1, x, y, x², xy, y², …``).

    Args:
        degree: the highest total degree.
        include_bias: include the constant term ``1``.
        interaction_only: leave out powers of one state (``x²``), keep products (``xy``).
    """

    degree: int = 2
    include_bias: bool = True
    interaction_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.degree, int) or self.degree < 0:
            raise ValueError(f"PolynomialLibrary: degree must be an int >= 0, got {self.degree!r}")

    def terms(self, states: Sequence[sympy.Symbol], t: sympy.Symbol) -> list[sympy.Expr]:
        out: list[sympy.Expr] = [sympy.Integer(1)] if self.include_bias else []
        for d in range(1, self.degree + 1):
            combos = (
                itertools.combinations(states, d)
                if self.interaction_only
                else itertools.combinations_with_replacement(states, d)
            )
            out.extend(sympy.Mul(*c) for c in combos)
        return out


@dataclass(frozen=True)
class FourierLibrary(AbstractLibrary):
    """``sin(k x_i)`` and ``cos(k x_i)`` for ``k = 1 … n_frequencies`` and every state.

    Args:
        n_frequencies: the highest multiple ``k``.
        include_sin: include the sines.
        include_cos: include the cosines.
    """

    n_frequencies: int = 1
    include_sin: bool = True
    include_cos: bool = True

    def __post_init__(self) -> None:
        if self.n_frequencies < 1 or not (self.include_sin or self.include_cos):
            raise ValueError(
                "FourierLibrary: n_frequencies must be >= 1 and sin or cos included, got "
                f"n_frequencies={self.n_frequencies}, include_sin={self.include_sin}, "
                f"include_cos={self.include_cos}"
            )

    def terms(self, states: Sequence[sympy.Symbol], t: sympy.Symbol) -> list[sympy.Expr]:
        out: list[sympy.Expr] = []
        for k in range(1, self.n_frequencies + 1):
            for s in states:
                if self.include_sin:
                    out.append(sympy.sin(k * s))
                if self.include_cos:
                    out.append(sympy.cos(k * s))
        return out


@dataclass(frozen=True)
class CustomLibrary(AbstractLibrary):
    """User terms: sympy expressions, strings in the state names, or callables.

    Args:
        terms_: the terms. A string is read with the state names (and ``t``) in scope,
            e.g. ``"x*y/(1 + x)"``; a callable gets the state symbols as arguments and
            returns one expression or a list (e.g. ``lambda x, y: [x * y, sympy.exp(-x)]``).

    Example:
        >>> import hybrideq as hq
        >>> lib = hq.symbolic.PolynomialLibrary(1) + hq.symbolic.CustomLibrary(["x/(1 + x)"])
    """

    terms_: tuple[Any, ...]

    def __init__(self, terms: Sequence[Any]) -> None:
        if isinstance(terms, (str, sympy.Basic)) or callable(terms):
            terms = [terms]
        object.__setattr__(self, "terms_", tuple(terms))
        if not self.terms_:
            raise ValueError("CustomLibrary: give at least one term")

    def terms(self, states: Sequence[sympy.Symbol], t: sympy.Symbol) -> list[sympy.Expr]:
        names = {str(s): s for s in (*states, t)}
        out: list[sympy.Expr] = []
        for term in self.terms_:
            if isinstance(term, str):
                try:
                    out.append(sympy.sympify(term, locals=names))
                except (sympy.SympifyError, SyntaxError) as exc:
                    raise ValueError(f"CustomLibrary: cannot read {term!r} ({exc})") from exc
            elif isinstance(term, sympy.Basic):
                out.append(term)
            elif callable(term):
                made = _call(term, states)
                out.extend(made if isinstance(made, (list, tuple)) else [made])
            else:
                raise TypeError(
                    f"CustomLibrary: a term must be a sympy expression, a string or a callable, "
                    f"got {type(term).__name__}"
                )
        allowed = set(states) | {t}
        for e in out:
            extra = e.free_symbols - allowed
            if extra:
                raise ValueError(
                    f"CustomLibrary: the term {e} uses {sorted(map(str, extra))}, which are not "
                    f"states ({list(map(str, states))}) or {t}"
                )
        return out


def _call(fn: Callable[..., Any], states: Sequence[sympy.Symbol]) -> Any:
    return fn(*states)


def evaluate_library(
    terms: Sequence[sympy.Expr],
    t_symbol: sympy.Symbol,
    states: Sequence[sympy.Symbol],
    t: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """The library matrix ``Θ`` of shape ``(samples, len(terms))``.

    Args:
        terms: the candidate terms.
        t_symbol: the time symbol.
        states: the state symbols (the columns of ``y``).
        t: times, ``(samples,)``.
        y: states, ``(samples, n)``.
    """
    fn = sympy.lambdify([t_symbol, *states], list(terms), modules="numpy", cse=True)
    cols = fn(t, *(y[:, i] for i in range(y.shape[1])))
    theta = np.stack([np.broadcast_to(np.asarray(c, dtype=float), t.shape) for c in cols], 1)
    bad = ~np.isfinite(theta).all(axis=0)
    if bad.any():
        names = [str(terms[int(k)]) for k in np.flatnonzero(bad)]
        raise ValueError(
            f"the library terms {names} are not finite on the data (e.g. log or 1/x at 0); "
            "remove them from the library or shift the data"
        )
    return theta
