"""Automatic stiffness switching: a non-stiff explicit method that hands over to a stiff one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, final

from hybrideq.solvers._base import (
    AbstractBDF,
    AbstractDIRK,
    AbstractImplicitSolver,
    AbstractODESolver,
    AbstractRosenbrock,
)
from hybrideq.tableaus import TSIT5, VERN7

if TYPE_CHECKING:
    from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["AbstractAutoSwitch", "AutoTsit5", "AutoVern7"]


@dataclass(frozen=True)
class AbstractAutoSwitch(AbstractODESolver):
    """A composite method: explicit while the problem is non-stiff, ``stiff_alg`` when stiff.

    The switching rule and its defaults are OrdinaryDiffEq.jl's ``AutoSwitch``
    (REFERENCES.md §6): stiffness ``|eigen_est·dt|/stability_size`` above ``nonstifftol``
    on more than ``maxstiffstep`` consecutive steps moves a sample to ``stiff_alg`` (its
    step doubled); below ``stifftol`` on more than ``maxnonstiffstep`` consecutive steps
    moves it back (its step halved). Decided per sample of a batch.

    While a sample is on ``stiff_alg`` its stiffness estimate is ``‖J‖_∞``, taken whenever
    ``stiff_alg`` computes a new Jacobian. With a variable-order BDF (``QNDF()``,
    ``QBDF()``) a sample that switches to it restarts the BDF at order 1 from its current
    state, with the doubled step, and from then on the BDF chooses the sample's steps and
    orders itself, as when it runs alone (OrdinaryDiffEq.jl's FBDF restarts the same way
    after a switch). Dense output and ``saveat`` use each step's own method's interpolant.

    Args:
        stiff_alg: the stiff method, an instance of a Rosenbrock method (``Rodas5P()``,
            ``Rodas4()``, ``Rosenbrock23()``), an ESDIRK method (``KenCarp4()``,
            ``Kvaerno5()``, ``TRBDF2()``) or a variable-order BDF method (``QNDF()``,
            ``QBDF()``). Anything else is a ``TypeError``. A composite cannot take a
            mass matrix (its explicit method cannot), whatever ``stiff_alg`` is.
        maxstiffstep: consecutive stiff detections before switching to ``stiff_alg``.
        maxnonstiffstep: consecutive non-stiff detections before switching back.
        nonstifftol: the stiffness threshold on the explicit method.
        stifftol: the stiffness threshold on ``stiff_alg``.
        dtfac: the step factor at a switch (times ``dtfac`` into ``stiff_alg``, divided
            by it out of it).
        stiffalgfirst: start every sample on ``stiff_alg``.
    """

    stiff_alg: AbstractImplicitSolver
    maxstiffstep: int = 10
    maxnonstiffstep: int = 3
    nonstifftol: float = 0.9
    stifftol: float = 0.9
    dtfac: float = 2.0
    stiffalgfirst: bool = False
    is_adaptive: ClassVar[bool] = True
    is_implicit: ClassVar[bool] = True
    supports_mass_matrix: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not isinstance(self.stiff_alg, (AbstractRosenbrock, AbstractDIRK, AbstractBDF)):
            raise TypeError(
                f"{type(self).__name__} needs a stiff solver instance as stiff_alg: a "
                "Rosenbrock method (e.g. Rodas5P()), an ESDIRK method (e.g. KenCarp4()) or a "
                f"BDF method (QNDF(), QBDF()); got {self.stiff_alg!r}"
            )
        for name in ("maxstiffstep", "maxnonstiffstep"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative")
        if self.dtfac <= 0:
            raise ValueError("dtfac must be positive")

    @property
    def nonstiff_tableau(self) -> ExplicitRKTableau:
        """The explicit method's coefficients."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The DifferentialEquations.jl name, e.g. ``AutoTsit5(Rodas5P())``."""
        return f"{type(self).__name__}({self.stiff_alg.name}())"

    def switch_options(self) -> dict[str, float | int | bool]:
        """The switching rule's parameters."""
        return {
            "maxstiffstep": self.maxstiffstep,
            "maxnonstiffstep": self.maxnonstiffstep,
            "nonstifftol": self.nonstifftol,
            "stifftol": self.stifftol,
            "dtfac": self.dtfac,
            "stiffalgfirst": self.stiffalgfirst,
        }


@final
@dataclass(frozen=True)
class AutoTsit5(AbstractAutoSwitch):
    """AutoTsit5: Tsit5 with automatic switching to a stiff method (per sample).

    ``stiff_alg`` is a Rosenbrock (``AutoTsit5(Rodas5P())``), ESDIRK
    (``AutoTsit5(KenCarp4())``) or variable-order BDF method (``AutoTsit5(QNDF())``); see
    :class:`AbstractAutoSwitch` for the switching rule and the other options.

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.library.van_der_pol(mu=1e3, tspan=(0.0, 100.0))
        >>> sol = hq.solve(prob, hq.AutoTsit5(hq.Rodas5P()), rtol=1e-6, atol=1e-8)
        >>> print(sol.retcode, int(sol.stats.switches))
        ReturnCode.Success 1
    """

    order: ClassVar[int] = 5
    stability_size: ClassVar[float | None] = 3.5068

    @property
    def nonstiff_tableau(self) -> ExplicitRKTableau:
        """Tsit5."""
        return TSIT5


@final
@dataclass(frozen=True)
class AutoVern7(AbstractAutoSwitch):
    """AutoVern7: Vern7 with automatic switching to a stiff method (per sample).

    ``stiff_alg`` is a Rosenbrock (``AutoVern7(Rodas5P())``), ESDIRK
    (``AutoVern7(KenCarp4())``) or variable-order BDF method (``AutoVern7(QBDF())``); see
    :class:`AbstractAutoSwitch` for the switching rule and the other options.
    """

    order: ClassVar[int] = 7
    stability_size: ClassVar[float | None] = 4.64

    @property
    def nonstiff_tableau(self) -> ExplicitRKTableau:
        """Vern7."""
        return VERN7
