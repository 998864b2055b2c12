"""Explicit Runge–Kutta solver specs: one tableau and a few traits each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from hybrideq.solvers._base import AbstractExplicitRK
from hybrideq.tableaus import BS3 as _BS3
from hybrideq.tableaus import DP5 as _DP5
from hybrideq.tableaus import EULER as _EULER
from hybrideq.tableaus import RK4 as _RK4
from hybrideq.tableaus import TSIT5 as _TSIT5
from hybrideq.tableaus import VERN7 as _VERN7
from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["BS3", "DP5", "RK4", "Euler", "Tsit5", "Vern7"]


@final
@dataclass(frozen=True)
class Tsit5(AbstractExplicitRK):
    """Tsit5: Tsitouras 5(4), 7 stages, FSAL, 4th-order dense output; the default non-stiff method.

    Reference: Ch. Tsitouras, "Runge–Kutta pairs of order 5(4) satisfying only the first
    column simplifying assumption", Comput. Math. Appl. 62 (2011) 770–775.

    Exposes the stiffness estimate of stages 6 and 7 (``heuristics=True``).
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True
    stability_size: ClassVar[float | None] = 3.5068

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The Tsit5 coefficients."""
        return _TSIT5


@final
@dataclass(frozen=True)
class DP5(AbstractExplicitRK):
    """DP5: Dormand–Prince 5(4), 7 stages, FSAL, 4th-order dense output (Shampine).

    Reference: J. R. Dormand, P. J. Prince, "A family of embedded Runge–Kutta formulae",
    J. Comput. Appl. Math. 6 (1980) 19–26; dense output: Hairer, Nørsett, Wanner,
    *Solving ODEs I*, §II.6.
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True
    stability_size: ClassVar[float | None] = 3.3066

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The DP5 coefficients."""
        return _DP5


@final
@dataclass(frozen=True)
class Vern7(AbstractExplicitRK):
    """Vern7: Verner's 7(6) pair, 10 stages, 7th-order dense output with extra stages.

    Reference: J. H. Verner, "Numerically optimal Runge–Kutta pairs with interpolants",
    Numer. Algorithms 53 (2010) 383–396. Suited to tight tolerances (rtol ≲ 1e-8).
    """

    order: ClassVar[int] = 7
    is_adaptive: ClassVar[bool] = True
    stability_size: ClassVar[float | None] = 4.64

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The Vern7 coefficients."""
        return _VERN7


@final
@dataclass(frozen=True)
class BS3(AbstractExplicitRK):
    """BS3: Bogacki–Shampine 3(2), 4 stages, FSAL, 3rd-order Hermite dense output.

    Reference: P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge–Kutta formulas",
    Appl. Math. Lett. 2 (1989) 321–325. Good at loose tolerances.
    """

    order: ClassVar[int] = 3
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The BS3 coefficients."""
        return _BS3


@final
@dataclass(frozen=True)
class Euler(AbstractExplicitRK):
    """Euler: the explicit Euler method, order 1, fixed step (needs ``dt``)."""

    order: ClassVar[int] = 1
    is_adaptive: ClassVar[bool] = False

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The Euler coefficients."""
        return _EULER


@final
@dataclass(frozen=True)
class RK4(AbstractExplicitRK):
    """RK4: the classic 4th-order Runge–Kutta method, fixed step (needs ``dt``).

    Dense output is cubic Hermite (3rd order).
    """

    order: ClassVar[int] = 4
    is_adaptive: ClassVar[bool] = False

    @property
    def tableau(self) -> ExplicitRKTableau:
        """The RK4 coefficients."""
        return _RK4
