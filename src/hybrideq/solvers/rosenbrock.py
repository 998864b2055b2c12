"""Rosenbrock solver specs: stiff, one Jacobian and one LU factorisation per step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from hybrideq.solvers._base import AbstractRosenbrock
from hybrideq.tableaus import RODAS4 as _RODAS4
from hybrideq.tableaus import RODAS5P as _RODAS5P
from hybrideq.tableaus import ROSENBROCK23 as _ROSENBROCK23
from hybrideq.tableaus import RosenbrockTableau

__all__ = ["Rodas4", "Rodas5P", "Rosenbrock23"]


@final
@dataclass(frozen=True)
class Rosenbrock23(AbstractRosenbrock):
    """Rosenbrock23: 2nd-order L-stable Rosenbrock–W method with a 3rd-order error estimate.

    The method of MATLAB's ``ode23s``: L. F. Shampine, M. W. Reichelt, "The MATLAB ODE
    Suite", SIAM J. Sci. Comput. 18 (1997) 1–22. Cheap per step and robust at loose
    tolerances (rtol ≳ 1e-3); accepts mass matrices.

    Example:
        >>> import torch, hybrideq as hq
        >>> def f(t, y, p):  # Prothero–Robinson: y = cos t, stiffness 1e4
        ...     return -1e4 * (y - torch.cos(t)) - torch.sin(t)
        >>> prob = hq.ODEProblem(f, torch.ones(1), (0.0, 1.0))
        >>> sol = hq.solve(prob, hq.Rosenbrock23(), rtol=1e-4, atol=1e-7)
        >>> bool(abs(sol.y[-1, 0] - torch.cos(torch.tensor(1.0))) < 1e-3)
        True
    """

    order: ClassVar[int] = 2
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> RosenbrockTableau:
        """The Rosenbrock23 coefficients in transformed form."""
        return _ROSENBROCK23


@final
@dataclass(frozen=True)
class Rodas4(AbstractRosenbrock):
    """Rodas4: 4th-order stiffly accurate Rosenbrock method, 6 stages, 3rd-order dense output.

    E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed., Springer
    (1996), §IV.7. Accepts mass matrices (index-1 DAEs).
    """

    order: ClassVar[int] = 4
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> RosenbrockTableau:
        """The Rodas4 coefficients."""
        return _RODAS4


@final
@dataclass(frozen=True)
class Rodas5P(AbstractRosenbrock):
    """Rodas5P: 5th-order stiffly accurate Rosenbrock method, 8 stages, 4th-order dense output.

    G. Steinebach, "Construction of Rosenbrock–Wanner method Rodas5P and numerical
    benchmarks within the Julia Differential Equations package", BIT Numer. Math. 63
    (2023) 27. The recommended default for stiff problems at medium to tight tolerances;
    accepts mass matrices (index-1 DAEs).

    Example:
        >>> import torch, hybrideq as hq
        >>> def f(t, y, p):  # Prothero–Robinson: y = cos t, stiffness 1e4
        ...     return -1e4 * (y - torch.cos(t)) - torch.sin(t)
        >>> prob = hq.ODEProblem(f, torch.ones(1, dtype=torch.float64), (0.0, 1.0))
        >>> sol = hq.solve(prob, hq.Rodas5P(), rtol=1e-8, atol=1e-10)
        >>> bool(abs(sol.y[-1, 0] - torch.cos(torch.tensor(1.0, dtype=torch.float64))) < 1e-7)
        True
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True

    @property
    def tableau(self) -> RosenbrockTableau:
        """The Rodas5P coefficients."""
        return _RODAS5P
