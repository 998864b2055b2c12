"""Engine-agnostic solver specs: WHAT to run. Options and traits only, no numerics."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hybrideq.tableaus import DIRKTableau, ExplicitRKTableau, RosenbrockTableau

__all__ = [
    "AbstractBDF",
    "AbstractDIRK",
    "AbstractExplicitRK",
    "AbstractImplicitSolver",
    "AbstractODESolver",
    "AbstractRosenbrock",
    "AbstractSolver",
]


@dataclass(frozen=True)
class AbstractSolver(abc.ABC):
    """Base of every solver spec.

    Traits (class-level): ``order``, ``is_adaptive``, ``is_implicit``, ``noise_types``
    (empty for ODE solvers), ``stability_size`` (``alg_stability_size`` of
    OrdinaryDiffEq.jl, or ``None``).
    """

    order: ClassVar[int]
    is_adaptive: ClassVar[bool]
    is_implicit: ClassVar[bool] = False
    noise_types: ClassVar[tuple[str, ...]] = ()
    stability_size: ClassVar[float | None] = None

    @property
    def name(self) -> str:
        """The DifferentialEquations.jl name of the method."""
        return type(self).__name__


@dataclass(frozen=True)
class AbstractODESolver(AbstractSolver):
    """A solver for ordinary differential equations."""


@dataclass(frozen=True)
class AbstractExplicitRK(AbstractODESolver):
    """An explicit Runge–Kutta method given by a Butcher tableau."""

    @property
    @abc.abstractmethod
    def tableau(self) -> ExplicitRKTableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractImplicitSolver(AbstractODESolver):
    """A stiff solver: it needs the Jacobian ``∂f/∂y`` and solves linear systems.

    Options:
        autodiff: compute Jacobians by automatic differentiation (``True``, the
            default; reverse mode, colored on a sparsity pattern) or by finite differences
            (``False``). A ``jac`` given to the :class:`~hybrideq.ODEProblem` is always
            used first.
        linsolve: how the linear systems ``W x = b`` are solved (keyword only):
            ``"dense"``: batched dense LU of ``(n, n)`` matrices; ``"sparse"``: SuperLU on
            the Jacobian's sparsity pattern (``jac_prototype``, or a ``jac`` returning a
            torch sparse tensor), with colored differentiation, never forming ``n × n``
            (CPU); ``"gmres"``: Newton–Krylov, matrix-free GMRES with Jacobian-vector
            products (DIRK methods only; any device); ``"auto"`` (default): ``"sparse"``
            when the problem has a pattern and ``n ≥ 200`` on the CPU, else ``"dense"``.
            The BDF methods have the dense path only, for now. See the "Large sparse
            systems" guide.
    """

    autodiff: bool = True
    linsolve: str = field(default="auto", kw_only=True)
    is_implicit: ClassVar[bool] = True
    supports_mass_matrix: ClassVar[bool] = False
    linsolve_options: ClassVar[tuple[str, ...]] = ("auto", "dense", "sparse", "gmres")

    def __post_init__(self) -> None:
        if self.linsolve not in self.linsolve_options:
            raise ValueError(
                f"linsolve must be one of {', '.join(repr(o) for o in self.linsolve_options)}, "
                f"got {self.linsolve!r}"
            )


@dataclass(frozen=True)
class AbstractRosenbrock(AbstractImplicitSolver):
    """A Rosenbrock (linearly implicit Runge–Kutta) method: one LU per step, no Newton."""

    supports_mass_matrix: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def tableau(self) -> RosenbrockTableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractDIRK(AbstractImplicitSolver):
    """A diagonally implicit Runge–Kutta method solved by simplified Newton iterations.

    Options (besides ``autodiff``):
        max_newton: Newton iterations per stage before the step is declared failed.
        kappa: the Newton iteration stops when the estimated error of the iterate,
            ``η ‖Δz‖`` with ``η = θ/(1 − θ)`` (``θ`` the observed contraction rate), is
            below ``kappa`` (in units of the error tolerance), as in OrdinaryDiffEq.jl.
    """

    max_newton: int = 10
    kappa: float = 0.01

    @property
    @abc.abstractmethod
    def tableau(self) -> DIRKTableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractBDF(AbstractImplicitSolver):
    """A variable-order (1 … 5) backward differentiation method, quasi-constant step size.

    Order and step size are selected per sample; the implicit equations are solved by
    simplified Newton iterations with Jacobian reuse. The family of MATLAB's ``ode15s`` (L. F. Shampine, M. W. Reichelt, "The MATLAB ODE
    Suite", SIAM J. Sci. Comput. 18 (1997) 1–22, §2). Accepts mass matrices (index-1
    DAEs).

    Options (besides ``autodiff``):
        max_order: the highest order used, 1 … 5.
        kappa: the NDF coefficients ``(κ_1, …, κ_5)``; ``None`` takes the method's own
            (:attr:`default_kappa`). All zeros give the classical BDFs.
        max_newton: Newton iterations per step before the step counts as failed (4 in
            ``ode15s``).
    """

    max_order: int = 5
    kappa: tuple[float, ...] | None = None
    max_newton: int = 4
    supports_mass_matrix: ClassVar[bool] = True
    default_kappa: ClassVar[tuple[float, ...]] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.max_order, bool) or not isinstance(self.max_order, int):
            raise TypeError(f"max_order must be an int 1 … 5, got {self.max_order!r}")
        if not 1 <= self.max_order <= 5:
            raise ValueError(f"max_order must be 1 … 5, got {self.max_order}")
        if self.kappa is not None:
            kap = tuple(float(x) for x in self.kappa)
            if len(kap) != 5 or not all(math.isfinite(x) and abs(x) < 1 for x in kap):
                raise ValueError(
                    "kappa must hold 5 finite NDF coefficients (κ_1, …, κ_5) with |κ| < 1, "
                    f"got {self.kappa!r}"
                )
            object.__setattr__(self, "kappa", kap)
        if isinstance(self.max_newton, bool) or not isinstance(self.max_newton, int):
            raise TypeError(f"max_newton must be a positive int, got {self.max_newton!r}")
        if self.max_newton < 1:
            raise ValueError(f"max_newton must be at least 1, got {self.max_newton}")

    @property
    def kappas(self) -> tuple[float, ...]:
        """The NDF coefficients in use: ``kappa`` if given, else :attr:`default_kappa`."""
        return self.kappa if self.kappa is not None else self.default_kappa
