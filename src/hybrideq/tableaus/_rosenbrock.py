"""Coefficient tables of Rosenbrock (linearly implicit) methods, as plain floats.

A tableau holds numbers only; the stepper that uses them lives in the engines. Every tableau
is checked when it is constructed, so a typo in a coefficient fails at import time.

Conventions: the *transformed* form of Hairer & Wanner, *Solving ODEs II*, §IV.7, eq. (7.25'),
with a constant mass matrix ``M`` (``M = I`` when there is none), ``J = ∂f/∂y(t, y)`` and
``f_t = ∂f/∂t(t, y)``, both at the start of the step. For ``i = 1..s``::

    (M/(h γ) − J) U_i = f(t + c_i h, y + Σ_{j<i} a_ij U_j) + M Σ_{j<i} (C_ij / h) U_j + h d_i f_t

- solution ``y1 = y + Σ_i b_i U_i``;
- error estimate ``err = Σ_i btilde_i U_i``, in the units of ``y``; the embedded solution is
  ``ŷ = y1 − err`` (``btilde = b − b̂``, as for the explicit tableaus);
- dense output on ``[t, t + h]``: ``y(t + θh) = y + Σ_j P_j(θ) V_j`` with ``V_0 = y1 − y``,
  ``V_j = Σ_i H[j−1][i] U_i`` for ``j ≥ 1`` and ``P_j(θ) = Σ_m dense_poly[j][m] θ^(m+1)``
  (no constant term, since ``y(t) = y``).

This is the form OrdinaryDiffEq.jl's ``RodasTableau`` uses: there the stage vectors
``ks[i] = W \\ −(f + dtd_i·dT + M Σ_j dtC_ij ks[j])`` with ``W = J − M/(dt γ)``, i.e.
``ks[i] = (M/(dt γ) − J)⁻¹(…) = U_i``; ``A``, ``C``, ``d``, ``b``, ``btilde`` and ``H`` carry
over unchanged (``rosenbrock_perform_step.jl`` lines 457–527 at SciML/OrdinaryDiffEq.jl
b211787f; ``W`` formed in ``OrdinaryDiffEqDifferentiation/src/derivative_utils.jl`` line 990).

Consistency checks. In the transformed form the row sums of ``a`` are **not** the nodes. The
standard form (HW (7.4)) has coefficients ``α``, ``Γ`` (lower triangular, diagonal ``γ``) and
weights ``β``; the two are related by ``C = diag(1/γ) − Γ⁻¹``, ``a = α Γ⁻¹``, ``b = β Γ⁻¹``.
With ``g = Γ 1`` (the row sums ``γ_i = Σ_j γ_ij`` of ``Γ``), which follows from ``C`` by forward
substitution, ``g_i = γ (1 + Σ_{k<i} C_ik g_k)``, the conditions that hold for every consistent
method are:

- ``d_i = g_i`` — the time-derivative coefficients are the row sums of ``Γ`` (this is what
  makes a method applied to ``y' = f(t, y)`` equal to the same method on the autonomous system
  with ``t`` appended as a state);
- ``Σ_k a_ik g_k = c_i`` — the nodes are the row sums of ``α = a Γ``;
- ``Σ_k b_k g_k = 1`` and ``Σ_k btilde_k g_k = 0`` — first order of ``y1`` and of ``ŷ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["RosenbrockTableau"]

_TOL = 1e-10


@dataclass(frozen=True)
class RosenbrockTableau:
    """Coefficients of one Rosenbrock method in the transformed form (see the module docstring).

    Attributes:
        name: the method's name, e.g. ``"Rodas5P"``.
        order: order of the solution ``y1``.
        embedded_order: order of the embedded solution ``ŷ = y1 − err``.
        gamma: the diagonal ``γ`` of ``Γ``; the stage matrix is ``M/(h γ) − J``.
        c: nodes, length ``s``; stage ``i`` evaluates ``f`` at ``t + c_i h``.
        d: time-derivative coefficients, length ``s`` (the term ``h d_i f_t``).
        a: strictly lower-triangular rows; ``a[i]`` has ``i`` entries.
        C: strictly lower-triangular rows; ``C[i]`` has ``i`` entries (the term
            ``M Σ_j C_ij U_j / h``).
        b: weights of ``y1 = y + Σ b_i U_i``, length ``s``.
        btilde: error weights, ``err = Σ btilde_i U_i = y1 − ŷ``, length ``s``.
        H: dense-output rows, each of length ``s``: ``V_j = Σ_i H[j−1][i] U_i``.
        dense_poly: one row per ``V_j`` (``len(H) + 1`` rows):
            ``P_j(θ) = Σ_m dense_poly[j][m] θ^(m+1)``.
        dense_order: order of the continuous extension.
        stiffly_accurate: whether ``y1`` is the argument of the last stage plus ``U_s``,
            i.e. ``b_j = a_sj`` for ``j < s`` and ``b_s = 1``.
        source: citation of the paper and of the file the numbers come from.
    """

    name: str
    order: int
    embedded_order: int
    gamma: float
    c: tuple[float, ...]
    d: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    C: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    btilde: tuple[float, ...]
    H: tuple[tuple[float, ...], ...]
    dense_poly: tuple[tuple[float, ...], ...]
    dense_order: int
    stiffly_accurate: bool
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        s = len(self.c)
        n = self.name
        if not self.gamma > 0.0:
            raise ValueError(f"{n}: gamma must be positive")
        for label, vec in (("d", self.d), ("a", self.a), ("C", self.C), ("b", self.b)):
            if len(vec) != s:
                raise ValueError(f"{n}: c and {label} must both have {s} entries")
        if len(self.btilde) != s:
            raise ValueError(f"{n}: btilde must have {s} entries")
        if abs(self.c[0]) > _TOL:
            raise ValueError(f"{n}: c[0] must be 0")
        for i in range(s):
            if len(self.a[i]) != i:
                raise ValueError(f"{n}: row {i} of a must have {i} entries")
            if len(self.C[i]) != i:
                raise ValueError(f"{n}: row {i} of C must have {i} entries")
        g = self.gamma_row_sums
        for i in range(s):
            # h d_i f_t must be the f_t-part of the autonomised method: d_i = Σ_j γ_ij.
            if abs(self.d[i] - g[i]) > _TOL:
                raise ValueError(f"{n}: d[{i}] differs from the row sum of Gamma ({g[i]!r})")
            # c_i = Σ_j α_ij with α = a Γ, i.e. Σ_k a_ik g_k.
            if abs(math.fsum(x * g[k] for k, x in enumerate(self.a[i])) - self.c[i]) > _TOL:
                raise ValueError(f"{n}: row {i} of a Γ does not sum to c[{i}]")
        # β = b Γ sums to 1; the error weights (b − b̂) Γ sum to 0.
        if abs(math.fsum(x * y for x, y in zip(self.b, g, strict=True)) - 1.0) > _TOL:
            raise ValueError(f"{n}: the weights b Γ do not sum to 1")
        if abs(math.fsum(x * y for x, y in zip(self.btilde, g, strict=True))) > _TOL:
            raise ValueError(f"{n}: the error weights btilde Γ do not sum to 0")
        last = (*self.a[-1], 1.0)
        is_sa = all(abs(x - y) <= 1e-12 for x, y in zip(self.b, last, strict=True))
        if self.stiffly_accurate != is_sa:
            raise ValueError(
                f"{n}: stiffly_accurate={self.stiffly_accurate} but b "
                f"{'equals' if is_sa else 'differs from'} (a[s-1], 1)"
            )
        for j, row in enumerate(self.H):
            if len(row) != s:
                raise ValueError(f"{n}: row {j} of H must have {s} entries")
        if len(self.dense_poly) != len(self.H) + 1:
            raise ValueError(f"{n}: dense_poly needs one row per V_j ({len(self.H) + 1})")
        # At θ = 1 the interpolant reproduces y1: P_0(1) = 1 and P_j(1) = 0 for j ≥ 1.
        for j, row in enumerate(self.dense_poly):
            if abs(math.fsum(row) - (1.0 if j == 0 else 0.0)) > 1e-12:
                raise ValueError(f"{n}: dense_poly row {j} at θ = 1 must be {int(j == 0)}")

    @property
    def stages(self) -> int:
        """Number of stages ``s`` (linear solves per step)."""
        return len(self.c)

    @property
    def gamma_row_sums(self) -> tuple[float, ...]:
        """Row sums ``g_i = Σ_j γ_ij`` of the standard-form ``Γ = (diag(1/γ) − C)⁻¹``.

        Forward substitution on ``(diag(1/γ) − C) g = 1``: ``g_i = γ (1 + Σ_{k<i} C_ik g_k)``.
        """
        g: list[float] = []
        for row in self.C:
            g.append(self.gamma * (1.0 + math.fsum(x * g[k] for k, x in enumerate(row))))
        return tuple(g)
