"""SDE solver specs: WHAT to run for an :class:`~hybrideq.SDEProblem`. Options and traits only.

Names, orders and noise compatibility follow StochasticDiffEq.jl (``src/alg_utils.jl``:
``alg_order``, ``alg_compatible``, ``alg_interpretation``). Strong orders are the ones the
methods reach on the noise types they accept; on additive noise Euler–Maruyama and
Euler–Heun reach strong order 1.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, final

from hybrideq.solvers._base import AbstractSolver
from hybrideq.tableaus import SOSRA as _SOSRA_TAB
from hybrideq.tableaus import SOSRI as _SOSRI_TAB
from hybrideq.tableaus import SOSRI2 as _SOSRI2_TAB
from hybrideq.tableaus import SRA1 as _SRA1_TAB
from hybrideq.tableaus import SRIW1 as _SRIW1_TAB
from hybrideq.tableaus import SRATableau, SRITableau

__all__ = [
    "EM",
    "SOSRA",
    "SOSRI",
    "SOSRI2",
    "SRA1",
    "SRIW1",
    "AbstractSDESolver",
    "AbstractSRA",
    "AbstractSRI",
    "EulerHeun",
    "ImplicitEM",
    "Milstein",
    "ReversibleHeun",
]

_ALL_NOISE = ("diagonal", "scalar", "additive", "general")


@dataclass(frozen=True)
class AbstractSDESolver(AbstractSolver):
    """A solver for stochastic differential equations.

    Traits (class-level): ``strong_order`` (on the noise types it accepts),
    ``weak_order``, ``noise_types``, ``interpretation`` (``"ito"``, ``"stratonovich"``;
    additive noise is accepted under either), ``needs_levy_area`` (the method uses the
    space-time Lévy area ``I_(1,0)`` of each step, so its Brownian path must carry it),
    ``is_adaptive``, ``is_implicit``. ``order`` (an int, for the ODE-side interfaces) is
    the strong order rounded down, at least 1.
    """

    strong_order: ClassVar[float]
    weak_order: ClassVar[float]
    interpretation: ClassVar[str] = "ito"
    needs_levy_area: ClassVar[bool] = False
    noise_types: ClassVar[tuple[str, ...]] = _ALL_NOISE
    order: ClassVar[int] = 1


@final
@dataclass(frozen=True)
class EM(AbstractSDESolver):
    """Euler–Maruyama: ``y₁ = y₀ + f(t, y₀) h + g(t, y₀) ΔW`` (Itô, fixed steps).

    Strong order 0.5 (1.0 for additive noise), weak order 1. Any noise type. One evaluation
    of ``f`` and ``g`` per step: the cheapest method, and the one used by most neural-SDE
    papers (torchsde's ``"euler"``).

    Example:
        >>> import torch, hybrideq as hq
        >>> ou = hq.SDEProblem(
        ...     lambda t, y, p: -y,
        ...     lambda t, y, p: 0.1 * torch.ones_like(y),
        ...     torch.ones(2, dtype=torch.float64),
        ...     (0.0, 1.0),
        ...     noise="additive",
        ... )
        >>> sol = hq.solve(ou, hq.EM(), dt=0.01, seed=0, saveat=[0.0, 1.0])
        >>> sol.y.shape
        torch.Size([2, 2])
    """

    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    is_adaptive: ClassVar[bool] = False


@final
@dataclass(frozen=True)
class EulerHeun(AbstractSDESolver):
    """The Euler–Heun method for **Stratonovich** SDEs (fixed steps).

    ``ỹ = y₀ + g(t, y₀) ΔW``, ``y₁ = y₀ + f(t, y₀) h + (g(t, y₀) + g(t, ỹ)) ΔW / 2``
    (StochasticDiffEq.jl ``EulerHeun``). Strong order 0.5 (1.0 for additive or commutative
    noise); any noise type. Two evaluations of ``g``, one of ``f`` per step.
    """

    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    interpretation: ClassVar[str] = "stratonovich"
    is_adaptive: ClassVar[bool] = False


@final
@dataclass(frozen=True)
class ReversibleHeun(AbstractSDESolver):
    """The reversible Heun method for **Stratonovich** SDEs (fixed steps).

    Kidger, Foster, Li, Lyons, "Efficient and Accurate Gradients for Neural SDEs",
    NeurIPS 2021, §3 (eq. (5)): with a second state ``ŷ`` and ``μ = f(ŷ)``, ``σ = g(ŷ)``
    carried from the previous step::

        ŷ₁ = 2y − ŷ + μ h + σ ΔW,   μ₁ = f(t + h, ŷ₁),   σ₁ = g(t + h, ŷ₁)
        y₁ = y + (μ + μ₁) h/2 + (σ + σ₁) ΔW/2

    One evaluation of ``f`` and ``g`` per step (Euler–Heun takes two of ``g``). The step is
    algebraically reversible, so with ``sensealg=ReversibleAdjoint()`` the backward pass
    reconstructs every state exactly (to rounding) and the gradients equal direct
    backpropagation's with O(1) memory. Strong order 0.5 (1.0 for additive noise); any
    noise type.
    """

    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    interpretation: ClassVar[str] = "stratonovich"
    is_adaptive: ClassVar[bool] = False


@final
@dataclass(frozen=True)
class Milstein(AbstractSDESolver):
    """Derivative-free (Runge–Kutta) Milstein method, strong order 1.0 (fixed steps).

    For diagonal and scalar noise (Kloeden & Platen, *Numerical Solution of SDEs*, 1992,
    §11.1, eq. (1.5))::

        Itô:           ŷ = y₀ + f h + g √h,  y₁ = y₀ + f h + g ΔW + (g(ŷ) − g)(ΔW² − h) / (2√h)
        Stratonovich:  ŷ = y₀ + g √h,        y₁ = y₀ + f h + g ΔW + (g(ŷ) − g) ΔW² / (2√h)

    (The Stratonovich supporting value leaves out the drift: with it, ``(g(ŷ) − g)/√h``
    carries a ``g'f √h`` term whose mean against ``ΔW²`` adds up to a global error of order
    1/2; StochasticDiffEq.jl's ``RKMil`` uses ``y₀ + f h + g √h`` for both.)

    Args:
        interpretation: ``"ito"`` (default) or ``"stratonovich"``; must match the problem's.
    """

    interpretation: str = "ito"  # type: ignore[misc]
    strong_order: ClassVar[float] = 1.0
    weak_order: ClassVar[float] = 1.0
    noise_types: ClassVar[tuple[str, ...]] = ("diagonal", "scalar", "additive")
    is_adaptive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.interpretation not in ("ito", "stratonovich"):
            raise ValueError(
                f"interpretation must be 'ito' or 'stratonovich', got {self.interpretation!r}"
            )


@dataclass(frozen=True)
class AbstractSRI(AbstractSDESolver):
    """A Rößler SRI method: strong order 1.5 for Itô SDEs with diagonal or scalar noise.

    Adaptive: the error estimate is ``(δ E₁ + E₂)/(atol + max(|y₀|, |y₁|) rtol)`` with
    ``E₁`` the drift stages' sum times ``h`` and ``E₂`` the ``I_(1,0)``, ``I_(1,1,1)``
    terms (StochasticDiffEq.jl ``perform_step/sri.jl``, ``DiffEqBase`` ``calculate_residuals``),
    controlled by a PI controller of order 1.5 with ``qmax = 9/8``, ``qmin = 1/5``
    (StochasticDiffEq ``alg_utils.jl``). A rejected step re-queries the same Brownian path
    on the shorter interval (the Brownian Interval conditions on what it has drawn), so
    the path stays the same whatever steps are taken.

    Options:
        delta: the weight ``δ`` of the drift error ``E₁`` (StochasticDiffEq.jl's default 1/6).
    """

    delta: float = 1.0 / 6.0
    strong_order: ClassVar[float] = 1.5
    weak_order: ClassVar[float] = 2.0
    noise_types: ClassVar[tuple[str, ...]] = ("diagonal", "scalar")
    needs_levy_area: ClassVar[bool] = True
    is_adaptive: ClassVar[bool] = True
    controller_order: ClassVar[float] = 1.5
    # Two drift stages at one node (0-based), for the stiffness estimate; None: none.
    stiffness_stages: ClassVar[tuple[int, int] | None] = None

    @property
    @abc.abstractmethod
    def tableau(self) -> SRITableau:
        """The method's coefficients."""


@dataclass(frozen=True)
class AbstractSRA(AbstractSDESolver):
    """A Rößler SRA method: strong order 1.5 for SDEs with additive noise (any ``m``).

    Adaptive, with the error estimate and controller of :class:`AbstractSRI` (controller
    order 2, StochasticDiffEq ``alg_order``).

    Options:
        delta: the weight ``δ`` of the drift error ``E₁`` (default 1/6).
    """

    delta: float = 1.0 / 6.0
    strong_order: ClassVar[float] = 1.5
    weak_order: ClassVar[float] = 2.0
    noise_types: ClassVar[tuple[str, ...]] = ("additive",)
    needs_levy_area: ClassVar[bool] = True
    is_adaptive: ClassVar[bool] = True
    controller_order: ClassVar[float] = 2.0

    @property
    @abc.abstractmethod
    def tableau(self) -> SRATableau:
        """The method's coefficients."""


@final
@dataclass(frozen=True)
class SRIW1(AbstractSRI):
    """Rößler's SRI method SRIW1 (strong 1.5, weak 2), adaptive; diagonal/scalar Itô noise.

    Coefficients: :data:`hybrideq.tableaus.SRIW1`.
    """

    @property
    def tableau(self) -> SRITableau:
        """The method's coefficients."""
        return _SRIW1_TAB


@final
@dataclass(frozen=True)
class SOSRI(AbstractSRI):
    """Stability-optimised SRI (Rackauckas & Nie 2018), strong order 1.5, adaptive.

    The recommended default for diagonal/scalar Itô noise in DifferentialEquations.jl; it
    tolerates stiffer drifts than SRIW1. Coefficients: :data:`hybrideq.tableaus.SOSRI`.
    """

    @property
    def tableau(self) -> SRITableau:
        """The method's coefficients."""
        return _SOSRI_TAB


@final
@dataclass(frozen=True)
class SOSRI2(AbstractSRI):
    """Stability-optimised SRI (Rackauckas & Nie 2018), strong order 1.5, adaptive.

    Its last two drift stages share the node ``c0 = 1``, which gives the stiffness
    (eigenvalue) estimate ``RMS(f(H0_4) − f(H0_3)) / RMS(H0_4 − H0_3)`` that
    StochasticDiffEq.jl uses for SOSRI2 in its stiffness-switching composites
    (``perform_step/sri.jl``; ``alg_stability_size(alg::SOSRI2) = 10.6``, ``alg_utils.jl``).
    ``solve(..., heuristics=True)`` records it, and ``StiffnessEstimate`` reads it.
    Coefficients: :data:`hybrideq.tableaus.SOSRI2`.
    """

    stability_size: ClassVar[float | None] = 10.6
    stiffness_stages: ClassVar[tuple[int, int] | None] = (2, 3)

    @property
    def tableau(self) -> SRITableau:
        """The method's coefficients."""
        return _SOSRI2_TAB


@final
@dataclass(frozen=True)
class SRA1(AbstractSRA):
    """Rößler's SRA1 for additive noise (strong order 1.5), adaptive.

    Coefficients: :data:`hybrideq.tableaus.SRA1`.
    """

    @property
    def tableau(self) -> SRATableau:
        """The method's coefficients."""
        return _SRA1_TAB


@final
@dataclass(frozen=True)
class SOSRA(AbstractSRA):
    """Stability-optimised SRA (Rackauckas & Nie 2018) for additive noise, adaptive.

    Coefficients: :data:`hybrideq.tableaus.SOSRA`.
    """

    @property
    def tableau(self) -> SRATableau:
        """The method's coefficients."""
        return _SOSRA_TAB


@final
@dataclass(frozen=True)
class ImplicitEM(AbstractSDESolver):
    """Drift-implicit Euler–Maruyama (the stochastic θ-method) for stiff drifts, fixed steps.

    ``y₁ = y₀ + [(1 − θ) f(t, y₀) + θ f(t + h, y₁)] h + g(t, y₀) ΔW``, solved for ``y₁`` by
    Newton's method with the Jacobian ``∂f/∂y`` (from autograd, batched LU). Itô; any noise
    type; strong order 0.5 (1.0 for additive noise). ``theta = 1`` is the
    drift-implicit Euler method (L-stable in the drift), ``theta = 1/2`` the trapezoidal
    rule (A-stable, StochasticDiffEq.jl's default).

    Options:
        theta: implicitness ``θ ∈ [0, 1]``.
        max_newton: Newton iterations per step before the step counts as failed.
        newton_tol: Newton stops when the update's RMS norm, scaled by
            ``atol + rtol |y|``, is below this.
    """

    theta: float = 0.5
    max_newton: int = 10
    newton_tol: float = 1e-3
    strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float] = 1.0
    is_adaptive: ClassVar[bool] = False
    is_implicit: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.theta) <= 1.0:
            raise ValueError(f"theta must be in [0, 1], got {self.theta!r}")
        if isinstance(self.max_newton, bool) or not isinstance(self.max_newton, int):
            raise TypeError(f"max_newton must be a positive int, got {self.max_newton!r}")
        if self.max_newton < 1:
            raise ValueError(f"max_newton must be at least 1, got {self.max_newton}")
        if not self.newton_tol > 0:
            raise ValueError(f"newton_tol must be positive, got {self.newton_tol!r}")
