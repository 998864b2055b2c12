"""ESDIRK/SDIRK solver specs: stiff, L-stable, simplified Newton with Jacobian reuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from hybrideq.solvers._base import AbstractDIRK
from hybrideq.tableaus import KENCARP4 as _KENCARP4
from hybrideq.tableaus import KVAERNO5 as _KVAERNO5
from hybrideq.tableaus import TRBDF2 as _TRBDF2
from hybrideq.tableaus import DIRKTableau

__all__ = ["TRBDF2", "KenCarp4", "Kvaerno5"]


@final
@dataclass(frozen=True)
class TRBDF2(AbstractDIRK):
    """TRBDF2: 2nd-order L-stable ESDIRK (trapezoid then BDF2), 3 stages, embedded 3rd order.

    R. E. Bank, W. M. Coughran, W. Fichtner, E. H. Grosse, D. J. Rose, R. K. Smith,
    "Transient simulation of silicon devices and circuits", IEEE Trans. CAD 4 (1985);
    error estimate of M. E. Hosea, L. F. Shampine, "Analysis and implementation of
    TR-BDF2", Appl. Numer. Math. 20 (1996) 21–37. Good at loose tolerances.

    Example:
        >>> import torch, hybrideq as hq
        >>> def f(t, y, p):  # Prothero–Robinson: y = cos t, stiffness 1e4
        ...     return -1e4 * (y - torch.cos(t)) - torch.sin(t)
        >>> prob = hq.ODEProblem(f, torch.ones(1), (0.0, 1.0))
        >>> sol = hq.solve(prob, hq.TRBDF2(), rtol=1e-5, atol=1e-8)
        >>> bool(abs(sol.y[-1, 0] - torch.cos(torch.tensor(1.0))) < 1e-5)
        True
    """

    order: ClassVar[int] = 2
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> DIRKTableau:
        """The TRBDF2 coefficients."""
        return _TRBDF2


@final
@dataclass(frozen=True)
class Kvaerno5(AbstractDIRK):
    """Kvaerno5: 5th-order L-stable, stiffly accurate ESDIRK, 7 stages, embedded 4th order.

    A. Kværnø, "Singly diagonally implicit Runge–Kutta methods with an explicit first
    stage", BIT Numer. Math. 44 (2004) 489–502. For tight tolerances.
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> DIRKTableau:
        """The Kvaerno5 coefficients."""
        return _KVAERNO5


@final
@dataclass(frozen=True)
class KenCarp4(AbstractDIRK):
    """KenCarp4: 4th-order L-stable, stiffly accurate ESDIRK, 6 stages, embedded 3rd order.

    The implicit part of ARK4(3)6L[2]SA: C. A. Kennedy, M. H. Carpenter, "Additive
    Runge–Kutta schemes for convection–diffusion–reaction equations", Appl. Numer. Math.
    44 (2003) 139–181. A good all-round ESDIRK at medium tolerances.
    """

    order: ClassVar[int] = 4
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> DIRKTableau:
        """The KenCarp4 coefficients (implicit part)."""
        return _KENCARP4
