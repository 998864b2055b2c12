"""Coefficient tables of Rößler's stochastic Runge–Kutta methods (SRI, SRA), as plain floats.

A tableau holds numbers only; the stepper that uses them lives in the engines. Every tableau
is checked when it is constructed, so a typo in a coefficient fails at import time.

Source: A. Rößler, "Runge–Kutta methods for the strong approximation of solutions of stochastic
differential equations", SIAM J. Numer. Anal. 48 (2010) 922–952 (doi:10.1137/09076636X). The
field names are those of StochasticDiffEq.jl's ``RosslerSRI``/``RosslerSRA`` (``c₀ c₁ A₀ A₁ B₀
B₁ α β₁ β₂ β₃ β₄``, ``src/tableaus.jl`` lines 6–35), in ASCII: ``c0 … B1``, ``alpha``,
``beta1`` … ``beta4``. Matrices are stored as strictly lower-triangular rows: ``A0[i]`` has
``i`` entries (``A0[i][j]`` is Rößler's ``A^(0)_{i+1, j+1}``), as in the other tableau modules.

Random variables over a step ``[t, t + h]`` (one set per Brownian component ``k``)::

    I_(1)     = ΔW                                  ΔW ~ N(0, h)
    I_(1,1)   = (ΔW² − h) / 2
    I_(1,0)   = h (ΔW + ΔZ/√3) / 2                  ΔZ ~ N(0, h), independent of ΔW
    I_(1,1,1) = (ΔW³ − 3 h ΔW) / 6

(StochasticDiffEq.jl's ``chi1 = I_(1,1)/√h``, ``chi2 = I_(1,0)/h``, ``chi3 = I_(1,1,1)/h``,
``src/perform_step/sri.jl`` lines 278–280.)

**SRI** (Itô SDE ``dy = f(t, y) dt + g(t, y) dW``, scalar noise; applied componentwise, with
one Brownian motion per component, to diagonal noise). With ``f_j = f(t + c0_j h, H0_j)`` and
``g_j = g(t + c1_j h, H1_j)``, for ``i = 1..s``::

    H0_i = y + h Σ_{j<i} A0_ij f_j + (I_(1,0)/h) Σ_{j<i} B0_ij g_j
    H1_i = y + h Σ_{j<i} A1_ij f_j + √h        Σ_{j<i} B1_ij g_j
    y1   = y + h Σ_i alpha_i f_i
             + Σ_i (beta1_i I_(1) + beta2_i I_(1,1)/√h + beta3_i I_(1,0)/h
                    + beta4_i I_(1,1,1)/h) g_i

(the generic stepper ``perform_step!(…, ::SRIConstantCache)``, ``sri.jl`` lines 274–317, which
uses the transposes of the stored matrices, ``caches/rossler_caches.jl`` line 25). The nodes
are the row sums ``c0 = A0 e`` and ``c1 = A1 e`` (checked here).

**SRA** (``dy = f(t, y) dt + g(t) dW``, additive noise; for ``m`` Brownian motions each column
``g[:, k]`` takes its own ``I_(k)`` and ``I_(k,0)``). With ``f_j = f(t + c0_j h, H_j)`` and
``g_j = g(t + c1_j h)``::

    H_i = y + h Σ_{j<i} A0_ij f_j + (I_(1,0)/h) Σ_{j<i} B0_ij g_j
    y1  = y + h Σ_i alpha_i f_i + Σ_i (beta1_i I_(1) + beta2_i I_(1,0)/h) g_i

(``perform_step!(…, ::SRAConstantCache)``, ``sra.jl`` lines 429–457). ``c0 = A0 e`` (checked
here); ``c1`` is free (Rößler's order conditions constrain ``beta1ᵀ c1`` and ``beta2ᵀ c1``).

Checked on construction: lengths and row lengths, finite numbers, ``c0 = A0 e`` (and
``c1 = A1 e`` for SRI) and the consistency conditions ``Σ alpha = 1``, ``Σ beta1 = 1``,
``Σ beta2 = Σ beta3 = Σ beta4 = 0`` (SRI) or ``Σ beta2 = 0`` (SRA). The full lists of
strong-order-1.5 conditions are checked in ``tests/test_sde_tableaus.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SRATableau", "SRITableau"]

_TOL = 1e-12


def _check_vector(name: str, label: str, vec: Sequence[float], s: int) -> None:
    if len(vec) != s:
        raise ValueError(f"{name}: {label} must have {s} entries, got {len(vec)}")
    for i, x in enumerate(vec):
        if not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError(f"{name}: {label}[{i}] must be a finite number, got {x!r}")


def _check_matrix(name: str, label: str, rows: Sequence[Sequence[float]], s: int) -> None:
    if len(rows) != s:
        raise ValueError(f"{name}: {label} must have {s} rows, got {len(rows)}")
    for i, row in enumerate(rows):
        if len(row) != i:
            raise ValueError(
                f"{name}: row {i} of {label} must have {i} entries "
                f"(strictly lower triangular), got {len(row)}"
            )
        for j, x in enumerate(row):
            if not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValueError(f"{name}: {label}[{i}][{j}] must be a finite number, got {x!r}")


def _check_row_sums(
    name: str, c_label: str, c: Sequence[float], a_label: str, rows: Sequence[Sequence[float]]
) -> None:
    for i, row in enumerate(rows):
        total = math.fsum(row)
        if abs(total - c[i]) > _TOL:
            raise ValueError(
                f"{name}: {c_label}[{i}] = {c[i]!r} differs from the row sum {total!r} of {a_label}"
            )


def _check_sum(name: str, label: str, vec: Sequence[float], target: float) -> None:
    total = math.fsum(vec)
    if abs(total - target) > _TOL:
        raise ValueError(f"{name}: the entries of {label} sum to {total!r}, not {target!r}")


@dataclass(frozen=True)
class SRITableau:
    """Coefficients of one Rößler SRI method (Itô, scalar/diagonal noise); see the module docstring.

    Attributes:
        name: the method's name, e.g. ``"SOSRI"``.
        strong_order: strong order of convergence (1.5 for every SRI tableau here).
        c0: drift nodes, length ``s``; ``f`` is evaluated at ``t + c0_i h``; ``c0 = A0 e``.
        c1: diffusion nodes, length ``s``; ``g`` is evaluated at ``t + c1_i h``; ``c1 = A1 e``.
        A0: drift coefficients of the drift stages ``H0`` (strictly lower-triangular rows).
        A1: drift coefficients of the diffusion stages ``H1``.
        B0: diffusion coefficients of ``H0`` (multiplied by ``I_(1,0)/h``).
        B1: diffusion coefficients of ``H1`` (multiplied by ``√h``).
        alpha: drift weights, length ``s``.
        beta1: weights of ``I_(1)`` (``ΔW``).
        beta2: weights of ``I_(1,1)/√h``.
        beta3: weights of ``I_(1,0)/h``.
        beta4: weights of ``I_(1,1,1)/h``.
        source: citation of the paper and of the file the numbers come from.
    """

    name: str
    strong_order: float
    c0: tuple[float, ...]
    c1: tuple[float, ...]
    A0: tuple[tuple[float, ...], ...]
    A1: tuple[tuple[float, ...], ...]
    B0: tuple[tuple[float, ...], ...]
    B1: tuple[tuple[float, ...], ...]
    alpha: tuple[float, ...]
    beta1: tuple[float, ...]
    beta2: tuple[float, ...]
    beta3: tuple[float, ...]
    beta4: tuple[float, ...]
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        n = self.name
        s = len(self.alpha)
        if s == 0:
            raise ValueError(f"{n}: alpha must have at least one entry")
        if not (isinstance(self.strong_order, (int, float)) and self.strong_order > 0):
            raise ValueError(f"{n}: strong_order must be positive, got {self.strong_order!r}")
        for label, vec in (
            ("alpha", self.alpha),
            ("c0", self.c0),
            ("c1", self.c1),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("beta3", self.beta3),
            ("beta4", self.beta4),
        ):
            _check_vector(n, label, vec, s)
        for label, rows in (("A0", self.A0), ("A1", self.A1), ("B0", self.B0), ("B1", self.B1)):
            _check_matrix(n, label, rows, s)
        _check_row_sums(n, "c0", self.c0, "A0", self.A0)
        _check_row_sums(n, "c1", self.c1, "A1", self.A1)
        _check_sum(n, "alpha", self.alpha, 1.0)
        _check_sum(n, "beta1", self.beta1, 1.0)
        _check_sum(n, "beta2", self.beta2, 0.0)
        _check_sum(n, "beta3", self.beta3, 0.0)
        _check_sum(n, "beta4", self.beta4, 0.0)

    @property
    def stages(self) -> int:
        """Number of stages ``s`` (one ``f`` and one ``g`` evaluation each)."""
        return len(self.alpha)


@dataclass(frozen=True)
class SRATableau:
    """Coefficients of one Rößler SRA method (additive noise); see the module docstring.

    Attributes:
        name: the method's name, e.g. ``"SOSRA"``.
        strong_order: strong order of convergence (1.5 for every SRA tableau here).
        c0: drift nodes, length ``s``; ``f`` is evaluated at ``t + c0_i h``; ``c0 = A0 e``.
        c1: diffusion nodes, length ``s``; ``g`` is evaluated at ``t + c1_i h``.
        A0: drift coefficients of the stages ``H`` (strictly lower-triangular rows).
        B0: diffusion coefficients of ``H`` (multiplied by ``I_(1,0)/h``).
        alpha: drift weights, length ``s``.
        beta1: weights of ``I_(1)`` (``ΔW``).
        beta2: weights of ``I_(1,0)/h``.
        source: citation of the paper and of the file the numbers come from.
    """

    name: str
    strong_order: float
    c0: tuple[float, ...]
    c1: tuple[float, ...]
    A0: tuple[tuple[float, ...], ...]
    B0: tuple[tuple[float, ...], ...]
    alpha: tuple[float, ...]
    beta1: tuple[float, ...]
    beta2: tuple[float, ...]
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        n = self.name
        s = len(self.alpha)
        if s == 0:
            raise ValueError(f"{n}: alpha must have at least one entry")
        if not (isinstance(self.strong_order, (int, float)) and self.strong_order > 0):
            raise ValueError(f"{n}: strong_order must be positive, got {self.strong_order!r}")
        for label, vec in (
            ("alpha", self.alpha),
            ("c0", self.c0),
            ("c1", self.c1),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
        ):
            _check_vector(n, label, vec, s)
        for label, rows in (("A0", self.A0), ("B0", self.B0)):
            _check_matrix(n, label, rows, s)
        _check_row_sums(n, "c0", self.c0, "A0", self.A0)
        _check_sum(n, "alpha", self.alpha, 1.0)
        _check_sum(n, "beta1", self.beta1, 1.0)
        _check_sum(n, "beta2", self.beta2, 0.0)

    @property
    def stages(self) -> int:
        """Number of stages ``s`` (one ``f`` and one ``g`` evaluation each)."""
        return len(self.alpha)
