"""The stochastic adjoint (``BacksolveAdjoint`` for SDEs) on the forward Brownian path.

Li, Wong, Chen, Duvenaud, "Scalable Gradients for Stochastic Differential Equations",
AISTATS 2020, §3 (Theorem 3.3 and eq. (9)): for a **Stratonovich** SDE
``dy = f dt + G ∘ dW`` the state and its adjoint ``a = ∂L/∂y`` satisfy, backwards from
``t1``, the augmented Stratonovich SDE

    ``dy   = f dt + G ∘ dW``
    ``da   = −(∂f/∂y)ᵀ a dt − Σ_k (∂G_k/∂y)ᵀ a ∘ dW_k``
    ``da_θ = −(∂f/∂θ)ᵀ a dt − Σ_k (∂G_k/∂θ)ᵀ a ∘ dW_k``

driven by the *same* Brownian path, integrated from ``t1`` to ``t0`` (``a(t1) = ∂L/∂y(t1)``,
``a_θ(t1) = 0``; jumps ``+∂L/∂y(t_k)`` at the save times). An Itô SDE is first written in
Stratonovich form, ``f_S = f − ½ Σ_k (∂G_k/∂y) G_k`` (the correction is computed with
autograd: the diagonal of ``∂g/∂y`` for diagonal noise, Jacobian–vector products for scalar
and general noise, nothing for additive noise).

The backward pass takes the forward pass's accepted steps in reverse with the Euler–Heun
(Stratonovich) method, querying the forward pass's Brownian path on each step, and computes
every ``(∂·/∂y)ᵀ a`` and ``(∂·/∂θ)ᵀ a`` as one vector–Jacobian product. Memory: the state, the
adjoints and the list of step times; no autograd graph of the forward solve. The state is
reconstructed backwards, so the gradient agrees with direct backpropagation of the same
discrete solve up to the discretisation error (it converges as the steps shrink; tested).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hybrideq.engines.torch._brownian import BrownianPath
from hybrideq.engines.torch._engine import gradient_parameters
from hybrideq.engines.torch._sde import (
    SDELoopOptions,
    SDELoopResult,
    SDEStepper,
    UserDiffusion,
    noise_product,
    run_sde_loop,
)
from hybrideq.problems import SDEProblem

__all__ = ["sde_adjoint_solve"]


# (Δy, Δa, Δa_θ) of one term of the augmented system.
_Part = tuple[Tensor, Tensor, list[Tensor]]


class _Augmented:
    """Drift and noise of the augmented backward system, as vector–Jacobian products."""

    def __init__(
        self,
        f: Any,
        g: UserDiffusion,
        matrix: bool,
        noise: str,
        ito: bool,
        params: list[Tensor],
    ) -> None:
        self.f, self.g = f, g
        self.matrix, self.noise = matrix, noise
        self.correct = ito and noise != "additive"
        self.params = params
        self.nf = 0

    def _drift(self, t: Tensor, y: Tensor) -> Tensor:
        """The Stratonovich drift ``f_S`` at ``y`` (a differentiable function of ``y``, θ)."""
        fy = self.f(t, y)
        self.nf += 1
        if not self.correct:
            return fy
        gy = self.g(t, y)
        if self.noise == "diagonal":
            n = y.shape[1]
            eye = torch.eye(n, dtype=y.dtype, device=y.device)[:, None, :].expand(n, *y.shape)
            (rows,) = torch.autograd.grad(gy, y, eye, create_graph=True, is_grads_batched=True)
            diag = rows.diagonal(dim1=0, dim2=2)  # rows[i, b, i] -> (batch, n)
            return fy - 0.5 * diag * gy
        cols = [gy] if not self.matrix else [gy[..., k] for k in range(gy.shape[-1])]
        corr = torch.zeros_like(fy)
        for col in cols:  # (∂G_k/∂y) G_k as a Jacobian–vector product (double vjp)
            u = torch.zeros_like(col, requires_grad=True)
            (vjp,) = torch.autograd.grad(col, y, u, create_graph=True)
            (jvp,) = torch.autograd.grad(vjp, u, col, create_graph=True)
            corr = corr + jvp
        return fy - 0.5 * corr

    def evaluate(
        self, t: Tensor, y: Tensor, a: Tensor, h: Tensor, dw: Tensor, drift: bool
    ) -> tuple[_Part, _Part | None]:
        """``(Δy, Δa, Δa_θ)`` of the noise ``G dW`` and, with ``drift``, of ``f_S h``.

        One forward evaluation at ``y``; each part is one vector–Jacobian product with ``a``.
        """
        with torch.enable_grad():
            yv = y.detach().requires_grad_(True)
            gdw = noise_product(self.g(t, yv), dw, self.matrix)
            fh = h * self._drift(t, yv) if drift else None
            noise = self._vjp(gdw, yv, a, retain=fh is not None)
            return noise, (None if fh is None else self._vjp(fh, yv, a, retain=False))

    def _vjp(self, out: Tensor, yv: Tensor, a: Tensor, retain: bool) -> _Part:
        grads = torch.autograd.grad(
            out, [yv, *self.params], a, allow_unused=True, retain_graph=retain
        )
        gy = torch.zeros_like(yv) if grads[0] is None else grads[0]
        gp = [
            torch.zeros_like(p) if gq is None else gq
            for p, gq in zip(self.params, grads[1:], strict=True)
        ]
        return out.detach(), -gy, [-x for x in gp]


class _SaveJumps:
    """Adds ``∂L/∂y(t_k)`` to the adjoint when the backward pass reaches a save time ``t_k``.

    Keeps one pointer per sample to its latest save time not yet passed (backwards).
    """

    def __init__(self, res: SDELoopResult, saveat: Tensor | None, grad_out: Tensor) -> None:
        batch = res.y_final.shape[0]
        if saveat is not None:
            self.ptr = torch.full(
                (batch,), saveat.shape[1] - 1, dtype=torch.int64, device=grad_out.device
            )
            self.times = saveat
        else:
            assert res.nsaved is not None
            self.ptr = res.nsaved - 1
            self.times = res.t
        self.grad_out = grad_out

    def __call__(self, a: Tensor, at: Tensor, mask: Tensor) -> Tensor:
        batch, n = a.shape
        while True:
            idx = self.ptr.clamp_min(0)
            hit = mask & (self.ptr >= 0) & (self.times.gather(1, idx[:, None])[:, 0] == at)
            if not bool(hit.any()):
                return a
            g = self.grad_out.gather(1, idx[:, None, None].expand(batch, 1, n))[:, 0]
            a = a + torch.where(hit[:, None], torch.nan_to_num(g), torch.zeros_like(a))
            self.ptr = self.ptr - hit.long()


def _backward_pass(
    aug: _Augmented,
    path: BrownianPath,
    res: SDELoopResult,
    saveat: Tensor | None,
    grad_out: Tensor,
) -> tuple[Tensor, list[Tensor]]:
    """Integrate the augmented system from each sample's end back to ``t0``."""
    assert res.steps is not None
    y = res.y_final.detach().clone()
    batch = y.shape[0]
    a = torch.zeros_like(y)
    ap = [torch.zeros_like(p) for p in aug.params]
    t = res.t_final.clone()
    jumps = _SaveJumps(res, saveat, grad_out)
    a = jumps(a, t, torch.ones(batch, dtype=torch.bool, device=y.device))
    for rec in reversed(res.steps):
        start, end = rec[:, 0], rec[:, 1]
        moving = (start != end) & (end == t)
        if not bool(moving.any()):
            continue
        tb = torch.where(moving, start, t)
        # Reverse-time increments W(start) − W(end) = −ΔW on the forward step's interval.
        dw_fwd, _ = path.increments(tb, t, moving)
        dw = -dw_fwd
        h = (tb - t)[:, None]
        (gy0, ga0, gp0), drift = aug.evaluate(t, y, a, h, dw, drift=True)
        assert drift is not None
        dy0, da0, dp0 = drift
        # Euler–Heun predictor with the noise only (StochasticDiffEq EulerHeun), then the
        # trapezoidal noise and the explicit drift.
        (gy1, ga1, gp1), _ = aug.evaluate(t, y + gy0, a + ga0, h, dw, drift=False)
        m = moving[:, None]
        y = torch.where(m, y + dy0 + 0.5 * (gy0 + gy1), y)
        a = torch.where(m, a + da0 + 0.5 * (ga0 + ga1), a)
        for i in range(len(ap)):
            ap[i] = ap[i] + dp0[i] + 0.5 * (gp0[i] + gp1[i])
        t = torch.where(moving, tb, t)
        a = jumps(a, t, moving)
    return a, ap


def _reversible_backward(
    f: Any,
    g: UserDiffusion,
    matrix: bool,
    params: list[Tensor],
    path: BrownianPath,
    res: SDELoopResult,
    final_state: tuple[Tensor, Tensor, Tensor],
    saveat: Tensor | None,
    grad_out: Tensor,
) -> tuple[Tensor, list[Tensor]]:
    """Run reversible Heun backwards step by step, backpropagating through each step."""
    assert res.steps is not None
    y = res.y_final.detach().clone()
    y_hat, mu, sig = (x.detach() for x in final_state)
    batch = y.shape[0]
    a_y = torch.zeros_like(y)
    a_hat = torch.zeros_like(y)
    ap = [torch.zeros_like(p) for p in params]
    t = res.t_final.clone()
    jumps = _SaveJumps(res, saveat, grad_out)
    a_y = jumps(a_y, t, torch.ones(batch, dtype=torch.bool, device=y.device))
    for rec in reversed(res.steps):
        start, end = rec[:, 0], rec[:, 1]
        moving = (start != end) & (end == t)
        if not bool(moving.any()):
            continue
        t0s = torch.where(moving, start, t)
        dw_fwd, _ = path.increments(t0s, t, moving)
        h = (t - t0s)[:, None]
        with torch.no_grad():  # invert the step (Kidger et al. 2021, §3)
            y_hat0 = 2.0 * y - y_hat - mu * h - noise_product(sig, dw_fwd, matrix)
            mu0 = f(t0s, y_hat0)
            sig0 = g(t0s, y_hat0)
            y0 = (
                y
                - 0.5 * (mu0 + mu) * h
                - 0.5 * (noise_product(sig0, dw_fwd, matrix) + noise_product(sig, dw_fwd, matrix))
            )
        with torch.enable_grad():  # the forward step again, locally, with a graph
            yv = y0.detach().requires_grad_(True)
            yhv = y_hat0.detach().requires_grad_(True)
            m0 = f(t0s, yhv)
            s0 = noise_product(g(t0s, yhv), dw_fwd, matrix)
            yh1 = 2.0 * yv - yhv + m0 * h + s0
            t1 = t0s + h[:, 0]
            y1 = (
                yv
                + 0.5 * (m0 + f(t1, yh1)) * h
                + 0.5 * (s0 + noise_product(g(t1, yh1), dw_fwd, matrix))
            )
            grads = torch.autograd.grad(
                (y1, yh1), [yv, yhv, *params], (a_y, a_hat), allow_unused=True
            )
        m = moving[:, None]
        a_y = torch.where(m, grads[0], a_y)
        a_hat = torch.where(m, grads[1], a_hat)
        for i, gq in enumerate(grads[2:]):
            if gq is not None:
                ap[i] = ap[i] + gq
        sm = m[:, :, None] if matrix else m
        y = torch.where(m, y0, y)
        y_hat = torch.where(m, y_hat0, y_hat)
        mu = torch.where(m, mu0, mu)
        sig = torch.where(sm, sig0, sig)
        t = torch.where(moving, t0s, t)
        a_y = jumps(a_y, t, moving)
    # ŷ₀ = y₀: both adjoints flow into the initial state.
    return a_y + a_hat, ap


class _ForwardWithoutGraph(torch.autograd.Function):
    """The forward solve under ``no_grad``; ``backward`` calls the adjoint given in ``box``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, box: dict[str, Any], y0: Tensor, *params: Tensor
    ) -> Tensor:
        with torch.no_grad():
            res = run_sde_loop(
                box["stepper"],
                box["path"],
                y0.detach(),
                box["t0"],
                box["t1"],
                box["opts"],
                box["ncalls"],
            )
        box["res"] = res
        box["final_state"] = getattr(box["stepper"], "state", None)  # reversible Heun's
        ctx.box = box
        return res.y

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        a, ap = ctx.box["backward"](ctx.box, grad_out)
        return (None, a, *ap)


def sde_adjoint_solve(
    prob: SDEProblem,
    f: Any,
    g: UserDiffusion,
    stepper: SDEStepper,
    path: BrownianPath,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: SDELoopOptions,
    reversible: bool,
) -> tuple[SDELoopResult, Tensor]:
    """Forward solve without a graph; gradients by an adjoint on the same Brownian path.

    ``reversible=False``: the stochastic adjoint (module docstring); ``True``: reversible
    Heun run backwards step by step (exact gradients of the discrete solve).
    """
    params = gradient_parameters(prob)
    opts.record_steps = True
    if reversible:

        def backward(box: dict[str, Any], grad_out: Tensor) -> tuple[Tensor, list[Tensor]]:
            return _reversible_backward(
                f,
                g,
                prob.matrix_noise,
                params,
                path,
                box["res"],
                box["final_state"],
                opts.saveat,
                grad_out,
            )

    else:
        aug = _Augmented(f, g, prob.matrix_noise, prob.noise, prob.interpretation == "ito", params)

        def backward(box: dict[str, Any], grad_out: Tensor) -> tuple[Tensor, list[Tensor]]:
            return _backward_pass(aug, path, box["res"], opts.saveat, grad_out)

    box: dict[str, Any] = {
        "stepper": stepper,
        "path": path,
        "t0": t0,
        "t1": t1,
        "opts": opts,
        "ncalls": lambda: f.ncalls + g.ncalls,
        "backward": backward,
    }
    y_saved = _ForwardWithoutGraph.apply(box, y0, *params)
    return box["res"], y_saved
