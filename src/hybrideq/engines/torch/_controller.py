"""Step-size control: the PI controller and the initial step, as in OrdinaryDiffEq.jl.

Every quantity is a per-sample tensor of shape ``(batch,)``, so each sample of a batch
gets its own step size and accept/reject decision without a Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PIController", "PIState", "initial_step"]


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

    def start(self, batch: int, dtype: torch.dtype, device: torch.device) -> PIState:
        """Fresh per-sample controller memory for a batch."""
        return PIState(self, batch, dtype, device)


class PIState:
    """Per-sample memory of a :class:`PIController`: ``errold^(−β2)`` and ``1/qmax``.

    :meth:`propose` costs about a dozen tensor operations for the whole batch and needs
    no special cases: ``EEst = 0`` gives the largest growth through the clamp, and a
    non-finite ``EEst`` shrinks the step by ``qmin`` (``fmin`` ignores NaN).
    """

    def __init__(
        self, ctl: PIController, batch: int, dtype: torch.dtype, device: torch.device
    ) -> None:
        self.ctl = ctl
        self.errold_pow = torch.full((batch,), ctl.qoldinit**-ctl.beta2, dtype=dtype, device=device)
        # 1/qmax: the first accepted step may grow by qmax_first_step.
        self.inv_qmax = torch.full((batch,), 1.0 / ctl.qmax_first_step, dtype=dtype, device=device)
        self.inv_qmin = torch.full((batch,), 1.0 / ctl.qmin, dtype=dtype, device=device)
        self.inv_qmax_steady = torch.full((batch,), 1.0 / ctl.qmax, dtype=dtype, device=device)
        self.tiny = torch.finfo(dtype).tiny

    def propose(self, dt: Tensor, eest: Tensor, accept: Tensor) -> Tensor:
        """The next step of every sample: grown/shrunk after acceptance, shrunk after rejection.

        ``q = clamp(EEst^β1 · errold^(−β2) / γ, 1/qmax, 1/qmin)``; accepted:
        ``dt / q`` (``q = 1`` inside ``[qsteady_min, qsteady_max]``); rejected:
        ``dt / min(1/qmin, EEst^β1 / γ)``.
        """
        c = self.ctl
        q11 = eest.clamp_min(self.tiny).pow(c.beta1)
        q = torch.clamp(
            q11 * self.errold_pow * (1.0 / c.gamma), min=self.inv_qmax, max=self.inv_qmin
        )
        if c.qsteady_min < c.qsteady_max:
            steady = (q >= c.qsteady_min) & (q <= c.qsteady_max)
            q = torch.where(steady, torch.ones_like(q), q)
        shrink = torch.fmin(q11 * (1.0 / c.gamma), self.inv_qmin)
        dt_new = torch.where(accept, dt / q, dt / shrink)
        self.errold_pow = torch.where(
            accept, eest.clamp_min(c.qoldinit).pow(-c.beta2), self.errold_pow
        )
        self.inv_qmax = torch.where(accept, self.inv_qmax_steady, self.inv_qmax)
        return dt_new


def initial_step(
    rhs_f0: Tensor,
    y0: Tensor,
    t0: Tensor,
    direction: Tensor,
    order: int,
    rtol: Tensor,
    atol: Tensor,
    dtmax: Tensor,
    rhs: Callable[[Tensor, Tensor], Tensor],
    joint: bool = False,
    n_err: int | None = None,
) -> Tensor:
    """Automatic initial step (Hairer, Nørsett, Wanner, *Solving ODEs I*, §II.4).

    The same algorithm as OrdinaryDiffEq.jl's ``ode_determine_initdt``: with
    ``sk = atol + |y0|·rtol``, ``d0 = ‖y0/sk‖``, ``d1 = ‖f0/sk‖``, a trial Euler step of
    ``h0 = 0.01·d0/d1`` gives ``d2 = ‖(f1 − f0)/sk‖/h0``, and
    ``h = min(100 h0, (0.01/max(d1, d2))^(1/(order+1)), dtmax)``. Costs one evaluation
    of ``f`` besides ``f0``. Returns signed steps ``(batch,)``. With ``joint`` the norms
    are taken over the whole batch, as if it were one system (one shared step). With
    ``n_err`` only the first ``n_err`` components enter the norms.
    """

    def norm(x: Tensor) -> Tensor:
        if n_err is not None:
            x = x[..., :n_err]
        r = x.square().mean(-1)
        return (r.mean().expand_as(r) if joint else r).sqrt()

    with torch.no_grad():
        sk = atol + y0.abs() * rtol
        d0 = norm(y0 / sk)
        d1 = norm(rhs_f0 / sk)
        small = (d0 < 1e-5) | (d1 < 1e-5)
        h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp_min(1e-300))
        h0 = torch.minimum(h0, dtmax)
        y1 = y0 + (direction * h0)[:, None] * rhs_f0
        f1 = rhs(t0 + direction * h0, y1)
        d2 = norm((f1 - rhs_f0) / sk) / h0
        dmax = torch.maximum(d1, d2)
        h1 = torch.where(
            dmax <= 1e-15,
            torch.clamp(h0 * 1e-3, min=1e-6),
            (0.01 / dmax.clamp_min(1e-300)).pow(1.0 / (order + 1)),
        )
        h = torch.minimum(torch.minimum(100 * h0, h1), dtmax)
        return direction * h
