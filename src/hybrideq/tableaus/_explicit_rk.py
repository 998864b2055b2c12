"""Butcher tableaus of explicit Runge–Kutta methods, as plain floats.

A tableau holds numbers only; how they are used lives in the engines. Every tableau is
checked when it is constructed (row sums, weights, embedded weights, dense output at
``θ = 1``), so a typo in a coefficient fails at import time, not in a user's solve.

Conventions (the same as OrdinaryDiffEq.jl's ``*_tableaus.jl``):

- stages ``k_i = f(t + c_i h, y0 + h Σ_{j<i} a_ij k_j)``, ``i = 1..s``;
- solution ``y1 = y0 + h Σ_i b_i k_i``;
- error estimate ``ỹ = h Σ_i btilde_i k_i`` with ``btilde = b − b̂`` (``b̂`` the embedded
  weights), so ``Σ btilde_i = 0``;
- dense output ``y(t0 + θh) = y0 + h Σ_i b_i(θ) k_i`` with
  ``b_i(θ) = Σ_{j=1..deg} dense[i][j-1] θ^j`` (no constant term, since ``y(t0) = y0``).
  ``dense`` may have more rows than there are stages: row ``s + m`` belongs to the
  extra stage ``m`` (see ``extra_c``/``extra_a``), evaluated only when interpolating;
- ``fsal``: the last stage is evaluated at ``(t0 + h, y1)`` and equals the next step's
  first stage (first same as last).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ExplicitRKTableau"]

_TOL = 1e-12


@dataclass(frozen=True)
class ExplicitRKTableau:
    """Coefficients of one explicit Runge–Kutta method (and its embedded pair and interpolant).

    Attributes:
        name: the method's name, e.g. ``"Tsit5"``.
        order: order of the propagated solution ``b``.
        c: nodes, length ``s``; ``c[0] == 0``.
        a: strictly lower-triangular rows; ``a[i]`` has ``i`` entries.
        b: weights of the propagated solution, length ``s``.
        btilde: ``b − b̂``, the error weights, length ``s`` (``None`` for fixed-step methods).
        embedded_order: order of ``b̂`` (``None`` for fixed-step methods).
        fsal: whether the last stage is ``f(t0 + h, y1)``.
        dense: polynomial coefficients of the continuous extension (see the module
            docstring), or ``None`` where the method has no interpolant of its own
            (cubic Hermite is used then).
        dense_order: order of the continuous extension.
        extra_c: nodes of extra stages needed only by the interpolant.
        extra_a: rows of the extra stages; row ``m`` has ``s + m`` entries.
        stiffness_stages: two 0-based stage indices with equal ``c`` whose difference
            gives Shampine's eigenvalue estimate (REFERENCES.md §1, §6).
        stability_size: ``alg_stability_size`` of OrdinaryDiffEq.jl, used to scale the
            stiffness estimate (REFERENCES.md §6).
        source: citation of the paper and the file the numbers come from.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    btilde: tuple[float, ...] | None = None
    embedded_order: int | None = None
    fsal: bool = False
    dense: tuple[tuple[float, ...], ...] | None = None
    dense_order: int | None = None
    extra_c: tuple[float, ...] = ()
    extra_a: tuple[tuple[float, ...], ...] = ()
    stiffness_stages: tuple[int, int] | None = None
    stability_size: float | None = None
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        s = len(self.c)
        if len(self.a) != s or len(self.b) != s:
            raise ValueError(f"{self.name}: c, a and b must all have {s} entries")
        if abs(self.c[0]) > _TOL:
            raise ValueError(f"{self.name}: c[0] must be 0 for an explicit method")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(f"{self.name}: row {i} of a must have {i} entries")
            if abs(math.fsum(row) - self.c[i]) > 1e-10:
                raise ValueError(f"{self.name}: row {i} of a does not sum to c[{i}]")
        if abs(math.fsum(self.b) - 1.0) > _TOL:
            raise ValueError(f"{self.name}: the weights b do not sum to 1")
        if (self.btilde is None) != (self.embedded_order is None):
            raise ValueError(f"{self.name}: btilde and embedded_order go together")
        if self.btilde is not None:
            if len(self.btilde) != s:
                raise ValueError(f"{self.name}: btilde must have {s} entries")
            if abs(math.fsum(self.btilde)) > 1e-10:
                raise ValueError(f"{self.name}: the error weights btilde do not sum to 0")
        if self.fsal and (
            abs(self.c[-1] - 1.0) > _TOL
            or any(abs(x - y) > 1e-10 for x, y in zip(self.a[-1], self.b[:-1], strict=True))
        ):
            raise ValueError(f"{self.name}: an FSAL method's last row of a must equal b")
        if len(self.extra_c) != len(self.extra_a):
            raise ValueError(f"{self.name}: extra_c and extra_a must have equal lengths")
        for m, row in enumerate(self.extra_a):
            if len(row) != s + m:
                raise ValueError(f"{self.name}: extra row {m} must have {s + m} entries")
            if abs(math.fsum(row) - self.extra_c[m]) > 1e-10:
                raise ValueError(f"{self.name}: extra row {m} does not sum to extra_c[{m}]")
        if self.dense is not None:
            if len(self.dense) != s + len(self.extra_c):
                raise ValueError(
                    f"{self.name}: dense needs one row per stage and extra stage "
                    f"({s + len(self.extra_c)})"
                )
            # At θ = 1 the interpolant reproduces the step: b_i(1) = b_i (0 for extras).
            full_b = list(self.b) + [0.0] * len(self.extra_c)
            for i, row in enumerate(self.dense):
                if abs(math.fsum(row) - full_b[i]) > 1e-9:
                    raise ValueError(f"{self.name}: dense row {i} at θ = 1 differs from b[{i}]")
        if self.stiffness_stages is not None:
            i, j = self.stiffness_stages
            if abs(self.c[i] - self.c[j]) > _TOL:
                raise ValueError(f"{self.name}: stiffness stages must have equal c")

    @property
    def stages(self) -> int:
        """Number of stages ``s`` of one step (extra interpolation stages not counted)."""
        return len(self.c)

    @property
    def is_adaptive(self) -> bool:
        """Whether the tableau has an embedded error estimate."""
        return self.btilde is not None
