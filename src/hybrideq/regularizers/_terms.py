"""The regularizer specs: solver heuristics (global and local) and RNODE's integrals.

Definitions follow REFERENCES.md §1 (ERNODE/SRNODE, Pal, Ma, Shah & Rackauckas, ICML 2021),
§2 (local regularization, Pal, Edelman & Rackauckas, ICML 2023) and §4 (RNODE, Finlay,
Jacobsen, Nurbekyan & Oberman, ICML 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

import torch
from torch import Tensor

from hybrideq.regularizers._base import AbstractRegularizer
from hybrideq.solution import Heuristics

__all__ = [
    "ErrorEstimate",
    "JacobianFrobenius",
    "KineticEnergy",
    "LocalErrorEstimate",
    "LocalStiffnessEstimate",
    "StiffnessEstimate",
]


def _check_weight(weight: float) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
        raise TypeError(f"weight must be a number, got {weight!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


@final
@dataclass(frozen=True)
class ErrorEstimate(AbstractRegularizer):
    """ERNODE: the solver's own scaled local error estimates over the accepted steps.

    ``aggregate="sum"`` (the paper's): ``R_E = Σ_j EEst_j · |Δt_j|``;
    ``aggregate="mean"`` (the authors' code): the mean of ``EEst_j · |Δt_j|`` over the
    accepted steps. ``EEst`` is the error norm the step-size controller compares with 1:
    ``RMS(ũ / (atol + max(|y_n|, |y_{n+1}|)·rtol))`` with ``ũ = Δt Σ_i (b_i − b̃_i) k_i``
    (REFERENCES.md §1). For SDEs (``SRIW1``, ``SOSRI``, ``SRA1``, ``SOSRA``) it is the
    scaled strong error estimate ``(δ·E1 + E2)/(atol + max|y|·rtol)``.

    Free in the forward pass (the stages exist already), but its gradient exists only for
    the discrete solve: it needs ``sensealg=DirectBackprop()`` (the default).

    Args:
        aggregate: ``"sum"`` or ``"mean"``.
        weight: the factor of this term in a sum of regularizers.

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.ODEProblem(
        ...     lambda t, y, p: -p * y,
        ...     torch.ones(1, dtype=torch.float64),
        ...     (0.0, 1.0),
        ...     torch.tensor(1.0, dtype=torch.float64),
        ... )
        >>> sol = hq.solve(prob, hq.Tsit5(), regularizer=hq.regularizers.ErrorEstimate())
        >>> bool(sol.regularization > 0)
        True
    """

    aggregate: str = "sum"
    weight: float = 1.0
    kind: ClassVar[str] = "global"

    def __post_init__(self) -> None:
        _check_choice("aggregate", self.aggregate, ("sum", "mean"))
        _check_weight(self.weight)

    def from_heuristics(self, h: Heuristics) -> Tensor:
        """The value per sample ``(batch,)`` from a solve's recorded heuristics."""
        acc = h.accepted
        vals = torch.where(acc, h.eest * h.dt.abs(), torch.zeros_like(h.eest))
        total = vals.sum(0)
        if self.aggregate == "sum":
            return total
        return total / acc.sum(0).clamp_min(1).to(total.dtype)


@final
@dataclass(frozen=True)
class StiffnessEstimate(AbstractRegularizer):
    """SRNODE: Shampine's stiffness estimate over the accepted steps, per stability size.

    With ``s_j = |λ_j| / stability_size`` (``λ_j`` the eigenvalue estimate from two stages
    at the same node, ``stability_size`` the method's, 3.5068 for Tsit5):
    ``aggregate="max"`` (the authors' code): ``max_j s_j``;
    ``aggregate="sum"`` (the paper's ``Σ_j S_j |Δt_j|``): ``Σ_j s_j · |Δt_j|``.
    Non-finite estimates (two coinciding stage states) count as 0, as in the code.

    Needs a method with a stiffness estimate (``Tsit5``, ``DP5``, ``Vern7``; for SDEs
    ``SOSRI2``, whose estimate is ``RMS(f(H0_4) − f(H0_3))/RMS(H0_4 − H0_3)``) and
    ``sensealg=DirectBackprop()``.

    Args:
        aggregate: ``"max"`` or ``"sum"``.
        weight: the factor of this term in a sum of regularizers.
    """

    aggregate: str = "max"
    weight: float = 1.0
    kind: ClassVar[str] = "global"

    def __post_init__(self) -> None:
        _check_choice("aggregate", self.aggregate, ("max", "sum"))
        _check_weight(self.weight)

    def from_heuristics(self, h: Heuristics) -> Tensor:
        """The value per sample ``(batch,)`` from a solve's recorded heuristics."""
        if h.eigen_est is None or h.stability_size is None:
            raise ValueError(
                "this solver has no stiffness estimate; StiffnessEstimate needs Tsit5(), "
                "DP5(), Vern7() or, for SDEs, SOSRI2()"
            )
        lam = torch.nan_to_num(h.eigen_est.abs(), nan=0.0, posinf=0.0) / h.stability_size
        lam = torch.where(h.accepted, lam, torch.zeros_like(lam))
        if self.aggregate == "max":
            return lam.amax(0)
        return (lam * h.dt.abs()).sum(0)


@dataclass(frozen=True)
class _AbstractLocal(AbstractRegularizer):
    """The local terms' options: where ``t_r`` is drawn, and the weight."""

    sampling: str = "unbiased"
    weight: float = 1.0
    kind: ClassVar[str] = "local"

    def __post_init__(self) -> None:
        _check_choice("sampling", self.sampling, ("unbiased", "biased"))
        _check_weight(self.weight)


@final
@dataclass(frozen=True)
class LocalErrorEstimate(_AbstractLocal):
    """Local regularization: the error estimate of one extra step from a random time.

    ``R = EEst(t_r) · |Δt(t_r)|``: from ``(t_r, y(t_r))`` the solver takes one step of
    the size its initial-step heuristic picks there (at most ``t1 − t_r``), as a fresh
    integrator would, and returns that step's scaled error estimate times the step
    (REFERENCES.md §2). A single step costs a few evaluations and keeps
    ``O(states × stages)`` memory, so it works with every ``sensealg``.

    Args:
        sampling: ``"unbiased"``: ``t_r ~ U[t0, t1]``; ``"biased"``: ``t_r`` drawn
            uniformly from the start times of the solve's accepted steps (they crowd
            where the dynamics are hard to integrate).
        weight: the factor of this term in a sum of regularizers.

    ``t_r`` comes from torch's global generator, one per sample and solve
    (``torch.manual_seed`` makes it repeatable).
    """

    def from_heuristics(self, h: Heuristics) -> Tensor:
        """The value per sample from the heuristics of the one extra step."""
        return h.eest[0] * h.dt[0].abs()


@final
@dataclass(frozen=True)
class LocalStiffnessEstimate(_AbstractLocal):
    """Local regularization with the stiffness estimate of one extra step.

    ``R = RMS(k_j − k_i) / (RMS(g_j − g_i) + eps) / stability_size`` for the step taken as
    in :class:`LocalErrorEstimate` (the form of LocalRegNeuralDE.jl, REFERENCES.md §2).
    Its authors report that it did not work as well as the error variant; it is here for
    completeness. Needs ``Tsit5``, ``DP5`` or ``Vern7`` (``SOSRI2`` for SDEs).

    Args:
        sampling: ``"unbiased"`` or ``"biased"`` (see :class:`LocalErrorEstimate`).
        weight: the factor of this term in a sum of regularizers.
    """

    def from_heuristics(self, h: Heuristics) -> Tensor:
        """The value per sample from the heuristics of the one extra step."""
        if h.eigen_rms is None or h.stability_size is None:
            raise ValueError(
                "this solver has no stiffness estimate; LocalStiffnessEstimate needs "
                "Tsit5(), DP5() or Vern7()"
            )
        return h.eigen_rms[0] / h.stability_size


@final
@dataclass(frozen=True)
class KineticEnergy(AbstractRegularizer):
    """RNODE's kinetic energy ``∫_{t0}^{t1} ‖f(t, y)‖² dt`` per sample.

    Integrated as an extra state beside ``y`` by the same solver (excluded from its error
    control, so the steps are those of the plain solve), hence exact to the solver's
    accuracy and differentiable with every ``sensealg`` (REFERENCES.md §4). ``‖·‖`` is the
    Euclidean norm over the state. ODEs with explicit Runge–Kutta methods; SDEs with any
    method (the integral of the drift along the path, a drift-only extra state).

    Args:
        weight: the factor of this term in a sum of regularizers.
    """

    weight: float = 1.0
    kind: ClassVar[str] = "integral"

    def __post_init__(self) -> None:
        _check_weight(self.weight)


@final
@dataclass(frozen=True)
class JacobianFrobenius(AbstractRegularizer):
    """RNODE's Jacobian regularizer ``∫_{t0}^{t1} ‖∂f/∂y(t, y)‖_F² dt`` per sample.

    ``estimator="hutchinson"`` (RNODE's): ``‖εᵀ J‖²`` from one vector–Jacobian product
    with a noise vector ``ε`` drawn once per sample and solve, an unbiased estimate since
    ``E‖εᵀJ‖² = ‖J‖_F²``; ``"exact"``: ``Σ_i ‖e_iᵀ J‖²`` from one product per state
    component (for small states and for checking). Integrated beside ``y`` like
    :class:`KineticEnergy`; works with every ``sensealg`` (the adjoints differentiate the
    vector–Jacobian product once more).

    Args:
        estimator: ``"hutchinson"`` or ``"exact"``.
        noise: ``"gaussian"`` or ``"rademacher"`` (±1) entries of ``ε``.
        weight: the factor of this term in a sum of regularizers.
    """

    estimator: str = "hutchinson"
    noise: str = "gaussian"
    weight: float = 1.0
    kind: ClassVar[str] = "integral"

    def __post_init__(self) -> None:
        _check_choice("estimator", self.estimator, ("hutchinson", "exact"))
        _check_choice("noise", self.noise, ("gaussian", "rademacher"))
        _check_weight(self.weight)
