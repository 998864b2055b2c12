"""What a solve returns: :class:`Solution`, :class:`ReturnCode` and :class:`Stats`."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["AdjointStats", "Heuristics", "ReturnCode", "Solution", "Stats"]


class ReturnCode(enum.IntEnum):
    """Why a solve (or one sample of a batched solve) stopped.

    The names follow SciMLBase's ``ReturnCode``. Only ``Success`` means the whole span
    was integrated; every other code keeps what was computed up to the failure.
    """

    Default = 0
    """The sample is still being integrated (never seen in a returned solution)."""
    Success = 1
    """The end of the time span was reached."""
    MaxIters = 2
    """``maxiters`` steps (accepted plus rejected) were taken before the end of the span."""
    DtLessThanMin = 3
    """The step size fell below ``dtmin``: the problem is likely stiff or singular there."""
    Unstable = 4
    """The state became non-finite (NaN or Inf)."""
    ConvergenceFailure = 5
    """An implicit solver could not solve its step equations (a singular iteration matrix
    or a diverging Newton iteration) even after shrinking the step below ``dtmin``."""
    InitialFailure = 6
    """The initial values of a DAE (a singular ``mass_matrix``) do not satisfy its algebraic
    equations and were not made consistent: ``initializealg="check"`` found them
    inconsistent, or Brown's initialisation (``"auto"``, ``"brown"``) did not converge. The
    sample was not integrated; its ``y0`` is kept."""

    def __str__(self) -> str:
        return f"ReturnCode.{self.name}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @property
    def successful(self) -> bool:
        """Whether this code means the span was integrated completely."""
        return self is ReturnCode.Success


@dataclass(frozen=True)
class Stats:
    """Counters of one solve. For a batch every counter is a tensor of shape ``(batch,)``.

    Attributes:
        nf: right-hand-side evaluations the sample took part in while it was being
            integrated (the NFE).
        naccept: accepted steps.
        nreject: rejected steps.
        njac: Jacobian evaluations (0 for explicit methods).
        nlu: LU factorizations (0 for explicit methods).
        ncalls: calls of ``f`` on the whole batch (the cost of the batched solve; equals
            ``nf`` for one problem).
        nnonliniter: Newton iterations (ESDIRK and BDF methods; ``None`` otherwise).
        switches: method switches of an automatic stiffness-switching solver such as
            ``AutoTsit5(Rodas5P())`` (``None`` otherwise).
        ng: evaluations of the diffusion ``g`` of an SDE (``None`` for ODEs).

    ``nf`` counts evaluations of ``f`` made by the steps and by finite-difference
    Jacobians; Jacobians from ``torch.func`` or from ``jac`` are counted in ``njac`` only.
    A counter of -1 was not counted (the Julia engine's GPU kernels count nothing).
    """

    nf: Tensor
    naccept: Tensor
    nreject: Tensor
    njac: Tensor
    nlu: Tensor
    ncalls: int
    nnonliniter: Tensor | None = None
    switches: Tensor | None = None
    ng: Tensor | None = None

    def __repr__(self) -> str:
        def fmt(x: Tensor) -> str:
            return str(int(x)) if x.numel() == 1 else str(x.tolist())

        extra = ""
        if self.nnonliniter is not None:
            extra += f", nnonliniter={fmt(self.nnonliniter)}"
        if self.switches is not None:
            extra += f", switches={fmt(self.switches)}"
        if self.ng is not None:
            extra += f", ng={fmt(self.ng)}"
        return (
            f"Stats(nf={fmt(self.nf)}, naccept={fmt(self.naccept)}, "
            f"nreject={fmt(self.nreject)}, njac={fmt(self.njac)}, nlu={fmt(self.nlu)}, "
            f"ncalls={self.ncalls}{extra})"
        )


@dataclass
class AdjointStats:
    """Counters of an adjoint's backward solve, filled in when ``backward`` runs.

    Attributes:
        nf: right-hand-side evaluations of the backward solve(s), the largest over the
            batch (each is a vector–Jacobian product), including re-solves of
            ``InterpolatingAdjoint(checkpointing=True)``.
        naccept: accepted backward steps (largest over the batch).
        nreject: rejected backward steps (largest over the batch).
        done: whether a backward pass has run.
        failed_samples: samples whose backward solve did not reach ``t0`` (a warning is
            issued too); their gradients are incomplete.
    """

    nf: int = 0
    naccept: int = 0
    nreject: int = 0
    done: bool = False
    failed_samples: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Heuristics:
    """The solver's own per-step heuristics (asked for with ``solve(..., heuristics=True)``).

    All per-step tensors have shape ``(nsteps, batch)``, one row per iteration of the
    step loop (accepted and rejected steps alike; ``accepted`` tells which). They keep
    their autograd graph under ``DirectBackprop``, so they can be used in a loss.

    Attributes:
        t: time at the start of each attempted step.
        dt: the attempted (signed) step size.
        accepted: whether the step was accepted (always ``False`` for samples that had
            already finished).
        eest: the scaled error estimate ``EEst`` (REFERENCES.md §1): the RMS over the
            state of ``ũ / (atol + max(|y0|, |y1|) · rtol)``.
        eigen_est: Shampine's stiffness (eigenvalue) estimate, where the method has one
            (Tsit5, DP5); ``None`` otherwise.
        stability_size: the method's ``alg_stability_size`` (for scaling ``eigen_est``).
        eigen_rms: the stiffness estimate as a ratio of RMS norms,
            ``RMS(k_j − k_i) / (RMS(g_j − g_i) + eps)`` (recorded only for the local
            stiffness regularizer; ``None`` otherwise).

    For an SDE (SRI and SRA methods) ``eest`` is the scaled strong error estimate
    ``(δ·E1 + E2) / (atol + max(|y0|, |y1|)·rtol)`` and ``eigen_est`` is ``None``.
    """

    t: Tensor
    dt: Tensor
    accepted: Tensor
    eest: Tensor
    eigen_est: Tensor | None
    stability_size: float | None
    eigen_rms: Tensor | None = None

    def error_integral(self) -> Tensor:
        """``R_E = Σ_j EEst_j · |Δt_j|`` over accepted steps, per sample (ERNODE)."""
        w = self.accepted.to(self.eest.dtype) * self.dt.abs()
        return (self.eest * w).sum(0)

    def stiffness_integral(self) -> Tensor:
        """``R_S = Σ_j λ_j · |Δt_j|`` over accepted steps, per sample (SRNODE)."""
        if self.eigen_est is None:
            raise ValueError(
                "this solver has no stiffness estimate; use Tsit5() or DP5() to get one"
            )
        w = self.accepted.to(self.eigen_est.dtype) * self.dt.abs()
        return (torch.nan_to_num(self.eigen_est, nan=0.0, posinf=0.0) * w).sum(0)


@dataclass(frozen=True, eq=False)
class Solution:
    """The result of :func:`hybrideq.solve`.

    Attributes:
        t: save times: ``(T,)`` when shared by all samples, ``(batch, T)`` per sample.
        y: states: ``(T, *state)`` for one problem, ``(batch, T, *state)`` for a batch.
            Save times a sample never reached (it failed earlier) hold NaN.
        retcodes: per-sample return codes as an integer tensor ``(batch,)``.
        stats: counters (see :class:`Stats`).
        heuristics: per-step solver heuristics, when asked for.
        nsaved: for a batch solved without ``saveat``, how many entries of each sample's
            row of ``t``/``y`` are real steps (the rest repeat the last one).
        adjoint_stats: under ``BacksolveAdjoint``/``InterpolatingAdjoint``, the counters
            of the backward solve, filled in once ``backward()`` has run.
        W: for an SDE, the Brownian path the solve used (a
            :class:`~hybrideq.BrownianPath`): ``sol.W(t)`` is ``W(t) − W(t0)`` per sample,
            ``(batch, m)`` (``(m,)`` for one problem), so exact solutions and strong errors
            can be computed on the same path; ``solve(..., brownian=sol.W)`` integrates
            again on it. ``None`` for ODEs.
        regularization: with ``solve(..., regularizer=...)``, the regularizer's value per
            sample, ``(batch,)`` (a 0-d tensor for one problem), differentiable: the loss
            is ``task + λ · sol.regularization.mean()``. ``None`` otherwise.
        regularization_terms: for a sum of regularizers, each weighted term by name
            (they add up to ``regularization``).

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.ODEProblem(lambda t, y, p: -y, torch.ones(2, dtype=torch.float64), (0.0, 1.0))
        >>> sol = hq.solve(prob, hq.Tsit5(), rtol=1e-8, atol=1e-10)
        >>> round(float(sol(0.5)[0]), 6)
        0.606531
    """

    t: Tensor
    y: Tensor
    retcodes: Tensor
    stats: Stats
    batched: bool
    interpolant: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)
    heuristics: Heuristics | None = field(default=None, repr=False)
    nsaved: Tensor | None = field(default=None, repr=False)
    solver: Any = field(default=None, repr=False)
    adjoint_stats: AdjointStats | None = field(default=None, repr=False)
    W: Any = field(default=None, repr=False)
    regularization: Tensor | None = field(default=None, repr=False)
    regularization_terms: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def retcode(self) -> ReturnCode | list[ReturnCode]:
        """The return code: one :class:`ReturnCode`, or a list with one per sample."""
        codes = [ReturnCode(int(c)) for c in self.retcodes.tolist()]
        return codes if self.batched else codes[0]

    @property
    def success(self) -> bool:
        """Whether every sample reached the end of its span."""
        return bool((self.retcodes == int(ReturnCode.Success)).all())

    @property
    def nfe(self) -> Tensor:
        """Right-hand-side evaluations (``stats.nf``)."""
        return self.stats.nf

    def __call__(self, t: float | Tensor) -> Tensor:
        """Evaluate the dense output at time(s) ``t``.

        Args:
            t: a scalar, a ``(Q,)`` tensor of times shared by all samples, or for a batch
                a ``(batch, Q)`` tensor of per-sample times.

        Returns:
            ``(*state)`` for a scalar ``t`` and one problem, ``(Q, *state)`` for ``Q``
            times; for a batch ``(batch, *state)`` or ``(batch, Q, *state)``.

        Under ``DirectBackprop`` the result is differentiable; under the adjoints
        (``BacksolveAdjoint``, ``InterpolatingAdjoint``) only ``sol.y`` carries gradients
        and ``sol(t)`` is a constant.

        Raises:
            ValueError: if the solve kept no dense output (``dense=False``, the default
                when ``saveat`` is given) or ``t`` lies outside a sample's span.
        """
        if self.interpolant is None and self.W is not None:
            raise ValueError(
                "an SDE solution has no dense output (interpolating a stochastic path between "
                "steps is not exact); pass the times you need as saveat=..., where the steps "
                "end exactly"
            )
        if self.interpolant is None:
            raise ValueError(
                "this solution has no dense output: solve with dense=True "
                "(the default only when saveat is not given) to evaluate sol(t)"
            )
        if not isinstance(t, Tensor):  # numbers and lists in the solution's dtype, not float32
            t = torch.as_tensor(t, dtype=self.t.dtype, device=self.t.device)
        return self.interpolant(t)

    def __repr__(self) -> str:
        rc = self.retcode
        codes = rc.name if isinstance(rc, ReturnCode) else "[" + ", ".join(c.name for c in rc) + "]"
        return (
            f"Solution(retcode={codes}, t={tuple(self.t.shape)}, "
            f"y={tuple(self.y.shape)}, {self.stats!r})"
        )
