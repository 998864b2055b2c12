"""Step-size control: the PI controller and the initial step, as in OrdinaryDiffEq.jl.

Every quantity is a per-sample tensor of shape ``(batch,)``, so each sample of a batch
gets its own step size and accept/reject decision without a Python loop over samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PIController", "error_norm", "initial_step"]


@dataclass(frozen=True)
class PIController:
    """Proportional–integral step-size controller with DifferentialEquations.jl's defaults.

    ``q = clamp(EEst^β1 / errold^β2 / γ, 1/qmax, 1/qmin)``, ``dt_new = dt / q``
    (Hairer, Nørsett, Wanner, *Solving ODEs II*, §IV.2). Defaults: ``β2 = 2/(5p)``,
    ``β1 = 7/(10p)`` with ``p`` the method's order (DP5: ``β2 = 0.04``,
    ``β1 = 1/5 − 0.75 β2``), ``qmin = 1/5``, ``qmax = 10`` (``10⁴`` before the first
    accepted step), ``γ = 9/10``, ``qsteady = [1, 1]``, ``qoldinit = 1e-4``
    (``OrdinaryDiffEqCore/src/integrators/controllers.jl`` and ``alg_utils.jl``).
    """

    beta1: float
    beta2: float
    qmin: float = 0.2
    qmax: float = 10.0
    qmax_first_step: float = 10000.0
    gamma: float = 0.9
    qsteady_min: float = 1.0
    qsteady_max: float = 1.0
    qoldinit: float = 1e-4

    @staticmethod
    def for_order(order: int, name: str = "") -> PIController:
        """The default controller of a method of the given order."""
        if name == "DP5":
            beta2 = 0.04
            return PIController(beta1=1.0 / order - 0.75 * beta2, beta2=beta2)
        return PIController(beta1=7.0 / (10.0 * order), beta2=2.0 / (5.0 * order))

    def propose(
        self, dt: Tensor, eest: Tensor, errold: Tensor, first: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Next step sizes after accepting and after rejecting, and the new ``errold``.

        Args:
            dt: the step just attempted, ``(batch,)`` signed.
            eest: its scaled error estimate (detached), ``(batch,)``.
            errold: the controller memory, ``(batch,)``.
            first: whether no step has been accepted yet, ``(batch,)`` bool.

        Returns:
            ``(dt_if_accepted, dt_if_rejected, errold_if_accepted)``.
        """
        finite = torch.isfinite(eest)
        e = torch.where(finite, eest, torch.ones_like(eest))
        qmax = torch.where(first, self.qmax_first_step, self.qmax).to(e.dtype)
        q11 = e.clamp_min(1e-300 if e.dtype == torch.float64 else 1e-37).pow(self.beta1)
        q = q11 / errold.pow(self.beta2)
        q = torch.minimum(torch.maximum(q / self.gamma, 1.0 / qmax), torch.full_like(q, 1 / self.qmin))
        q = torch.where(e == 0, 1.0 / qmax, q)
        steady = (q >= self.qsteady_min) & (q <= self.qsteady_max)
        q_acc = torch.where(steady, torch.ones_like(q), q)
        dt_acc = dt / q_acc
        # Rejected: shrink by at most 1/qmin; a non-finite estimate shrinks by the most.
        shrink = torch.clamp(q11 / self.gamma, max=1.0 / self.qmin)
        dt_rej = torch.where(finite, dt / shrink, dt * self.qmin)
        return dt_acc, dt_rej, torch.clamp(e, min=self.qoldinit)


def error_norm(err: Tensor, y0: Tensor, y1: Tensor, rtol: Tensor, atol: Tensor) -> Tensor:
    """Scaled RMS error per sample: ``sqrt(mean((err / (atol + max(|y0|,|y1|)·rtol))²))``.

    This is OrdinaryDiffEq.jl's ``EEst`` (``calculate_residuals`` with
    ``ODE_DEFAULT_NORM``; REFERENCES.md §1). ``err``, ``y0``, ``y1``: ``(batch, n)``;
    ``rtol``/``atol`` broadcast against them. Returns ``(batch,)``.
    """
    scale = atol + torch.maximum(y0.abs(), y1.abs()) * rtol
    return (err / scale).square().mean(-1).sqrt()


def initial_step(
    rhs_f0: Tensor,
    y0: Tensor,
    t0: Tensor,
    direction: Tensor,
    order: int,
    rtol: Tensor,
    atol: Tensor,
    dtmax: Tensor,
    rhs,  # type: ignore[no-untyped-def]
) -> Tensor:
    """Automatic initial step (Hairer, Nørsett, Wanner, *Solving ODEs I*, §II.4).

    The same algorithm as OrdinaryDiffEq.jl's ``ode_determine_initdt``: with
    ``sk = atol + |y0|·rtol``, ``d0 = ‖y0/sk‖``, ``d1 = ‖f0/sk‖``, a trial Euler step of
    ``h0 = 0.01·d0/d1`` gives ``d2 = ‖(f1 − f0)/sk‖/h0``, and
    ``h = min(100 h0, (0.01/max(d1, d2))^(1/(order+1)), dtmax)``. Costs one evaluation
    of ``f`` besides ``f0``. Returns signed steps ``(batch,)``.
    """
    with torch.no_grad():
        sk = atol + y0.abs() * rtol
        d0 = (y0 / sk).square().mean(-1).sqrt()
        d1 = (rhs_f0 / sk).square().mean(-1).sqrt()
        small = (d0 < 1e-5) | (d1 < 1e-5)
        h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp_min(1e-300))
        h0 = torch.minimum(h0, dtmax)
        y1 = y0 + (direction * h0)[:, None] * rhs_f0
        f1 = rhs(t0 + direction * h0, y1)
        d2 = ((f1 - rhs_f0) / sk).square().mean(-1).sqrt() / h0
        dmax = torch.maximum(d1, d2)
        h1 = torch.where(
            dmax <= 1e-15,
            torch.clamp(h0 * 1e-3, min=1e-6),
            (0.01 / dmax.clamp_min(1e-300)).pow(1.0 / (order + 1)),
        )
        h = torch.minimum(torch.minimum(100 * h0, h1), dtmax)
        return direction * h
