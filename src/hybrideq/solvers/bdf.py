"""BDF-family solver specs: variable order 1–5, quasi-constant step size (``ode15s``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from hybrideq.solvers._base import AbstractBDF

__all__ = ["QBDF", "QNDF"]


@final
@dataclass(frozen=True)
class QNDF(AbstractBDF):
    """QNDF: variable-order (1–5) numerical differentiation formulas, quasi-constant steps.

    The NDFs of MATLAB's ``ode15s``: L. F. Shampine, M. W. Reichelt, "The MATLAB ODE
    Suite", SIAM J. Sci. Comput. 18 (1997) 1–22, §2; ``κ = (−0.1850, −1/9, −0.0823,
    −0.0415, 0)`` for orders 1 … 5 (their Table 1), which makes the error constants
    smaller than the BDFs' at almost the same stability. Backward differences are
    rescaled when the step changes; order and step are selected per sample after
    ``k + 1`` equal steps. Cheap per step (one Jacobian kept for many steps, one LU per
    step-size change), best for large stiff systems at medium tolerances; accepts mass
    matrices (index-1 DAEs). Dense output: the BDF interpolating polynomial of each step.

    Example:
        >>> import torch, hybrideq as hq
        >>> from hybrideq.solvers.bdf import QNDF
        >>> def f(t, y, p):  # Prothero–Robinson: y = cos t, stiffness 1e4
        ...     return -1e4 * (y - torch.cos(t)) - torch.sin(t)
        >>> prob = hq.ODEProblem(f, torch.ones(1, dtype=torch.float64), (0.0, 1.0))
        >>> sol = hq.solve(prob, QNDF(), rtol=1e-6, atol=1e-9)
        >>> bool(abs(sol.y[-1, 0] - torch.cos(torch.tensor(1.0))) < 1e-5)
        True
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True
    default_kappa: ClassVar[tuple[float, ...]] = (-0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0)


@final
@dataclass(frozen=True)
class QBDF(AbstractBDF):
    """QBDF: variable-order (1–5) backward differentiation formulas, quasi-constant steps.

    :class:`QNDF` with ``κ = 0``: the classical BDFs in the backward-difference,
    quasi-constant-step implementation of L. F. Shampine, M. W. Reichelt, "The MATLAB ODE
    Suite", SIAM J. Sci. Comput. 18 (1997) 1–22, §2 (``ode15s`` with ``'BDF', 'on'``).
    Accepts mass matrices (index-1 DAEs).
    """

    order: ClassVar[int] = 5
    is_adaptive: ClassVar[bool] = True
    default_kappa: ClassVar[tuple[float, ...]] = (0.0, 0.0, 0.0, 0.0, 0.0)
