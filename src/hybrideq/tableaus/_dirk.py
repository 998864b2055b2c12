"""Butcher tableaus of diagonally implicit Runge–Kutta methods (SDIRK/ESDIRK), as plain floats.

A tableau holds numbers only; the stepper that uses them lives in the engines. Every tableau
is checked when it is constructed, so a typo in a coefficient fails at import time.

Conventions. Stage increments ``Z_i = Y_i − y`` (``Y_i`` the stage values), ``i = 1..s``::

    Z_i = h Σ_{j≤i} A_ij f(t + c_j h, y + Z_j)          (A_ii = γ for every implicit stage)

so stage ``i`` solves ``Z_i − h γ f(t + c_i h, y + Z_i) = h Σ_{j<i} A_ij f_j`` with the
Newton matrix ``I − h γ J`` (``M − h γ J`` with a mass matrix). For an ESDIRK
(``explicit_first_stage``) ``A_11 = 0``: ``Z_1 = 0``, ``f_1 = f(t, y)``.

- solution ``y1 = y + h Σ_i b_i f_i``;
- error estimate ``err = h Σ_i btilde_i f_i`` with ``btilde = b − b̂`` (``b̂`` the embedded
  weights), so ``Σ btilde_i = 0`` and the embedded solution is ``ŷ = y1 − err``;
- ``stiffly_accurate``: ``b`` equals the last row of ``A``, so ``y1 = Y_s``;
- ``predictor`` (optional): the stage predictors of OrdinaryDiffEq.jl. There the Newton
  unknown of stage ``i`` is ``k̃_i = h f(t + c_i h, Y_i)`` (its ``z``), and its initial guess is
  ``k̃_i⁰ = Σ_{j<i} predictor[i][j] k̃_j`` (``generic_imex_perform_step.jl``, e.g. line 308:
  ``zs[3] = α[3][1] * zs[1] + α[3][2] * zs[2]``). In this module's unknowns that is
  ``Z_i⁰ = h Σ_{j<i} A_ij f_j + γ Σ_{j<i} predictor[i][j] h f_j``. Each row sums to 1 (a
  constant ``f`` is predicted exactly); row ``i`` has ``i`` entries (row 0 is empty);
- ``explicit_A`` (optional): the explicit half of an additive (IMEX) pair,
  ``Y_i = y + h Σ_{j<i} explicit_A_ij f^E_j + h Σ_{j≤i} A_ij f^I_j`` with the same ``c``, ``b``
  and ``btilde`` for both halves; strictly lower-triangular rows, ``explicit_A[i]`` has ``i``
  entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["DIRKTableau"]

_TOL = 1e-10


@dataclass(frozen=True)
class DIRKTableau:
    """Coefficients of one SDIRK/ESDIRK method (and its embedded pair), see the module docstring.

    Attributes:
        name: the method's name, e.g. ``"Kvaerno5"``.
        order: order of ``y1``.
        embedded_order: order of the embedded solution ``ŷ = y1 − err``.
        gamma: the diagonal ``A_ii`` of the implicit stages.
        c: nodes, length ``s``; ``c_i = Σ_j A_ij``.
        A: lower-triangular rows including the diagonal; ``A[i]`` has ``i + 1`` entries.
        b: weights of ``y1``, length ``s``.
        btilde: error weights ``b − b̂``, length ``s``.
        stiffly_accurate: whether ``b`` is the last row of ``A``.
        explicit_first_stage: whether ``A_11 = 0`` (ESDIRK; the first stage is ``f(t, y)``).
        predictor: OrdinaryDiffEq.jl's stage predictors ``α_ij`` (rows of ``i`` entries), or
            ``None``.
        explicit_A: the explicit tableau of an IMEX (additive) pair, or ``None``.
        source: citation of the paper and of the file the numbers come from.
    """

    name: str
    order: int
    embedded_order: int
    gamma: float
    c: tuple[float, ...]
    A: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    btilde: tuple[float, ...]
    stiffly_accurate: bool
    explicit_first_stage: bool
    predictor: tuple[tuple[float, ...], ...] | None = None
    explicit_A: tuple[tuple[float, ...], ...] | None = None
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        s = len(self.c)
        n = self.name
        if not self.gamma > 0.0:
            raise ValueError(f"{n}: gamma must be positive")
        if len(self.A) != s or len(self.b) != s or len(self.btilde) != s:
            raise ValueError(f"{n}: c, A, b and btilde must all have {s} entries")
        for i, row in enumerate(self.A):
            if len(row) != i + 1:
                raise ValueError(f"{n}: row {i} of A must have {i + 1} entries")
            if abs(math.fsum(row) - self.c[i]) > _TOL:
                raise ValueError(f"{n}: row {i} of A does not sum to c[{i}]")
            first_explicit = i == 0 and self.explicit_first_stage
            diag = 0.0 if first_explicit else self.gamma
            if abs(row[i] - diag) > 1e-14:
                raise ValueError(f"{n}: diagonal entry A[{i}][{i}] must be {diag!r}")
        if abs(math.fsum(self.b) - 1.0) > _TOL:
            raise ValueError(f"{n}: the weights b do not sum to 1")
        if abs(math.fsum(self.btilde)) > _TOL:
            raise ValueError(f"{n}: the error weights btilde do not sum to 0")
        is_sa = all(abs(x - y) <= 1e-14 for x, y in zip(self.b, self.A[-1], strict=True))
        if self.stiffly_accurate != is_sa:
            raise ValueError(
                f"{n}: stiffly_accurate={self.stiffly_accurate} but b "
                f"{'equals' if is_sa else 'differs from'} the last row of A"
            )
        if self.predictor is not None:
            if len(self.predictor) != s:
                raise ValueError(f"{n}: predictor must have {s} rows")
            for i, row in enumerate(self.predictor):
                if len(row) != i:
                    raise ValueError(f"{n}: predictor row {i} must have {i} entries")
                if i > 0 and abs(math.fsum(row) - 1.0) > _TOL:
                    raise ValueError(f"{n}: predictor row {i} does not sum to 1")
        if self.explicit_A is not None:
            if len(self.explicit_A) != s:
                raise ValueError(f"{n}: explicit_A must have {s} rows")
            for i, row in enumerate(self.explicit_A):
                if len(row) != i:
                    raise ValueError(f"{n}: explicit_A row {i} must have {i} entries")
                if abs(math.fsum(row) - self.c[i]) > _TOL:
                    raise ValueError(f"{n}: explicit_A row {i} does not sum to c[{i}]")

    @property
    def stages(self) -> int:
        """Number of stages ``s`` (including an explicit first stage)."""
        return len(self.c)

    @property
    def implicit_stages(self) -> int:
        """Number of stages that need a nonlinear solve."""
        return len(self.c) - int(self.explicit_first_stage)
