"""Gradients of a neural ODE loss with the three sensitivity algorithms: agreement and cost.

- ``DirectBackprop``: backpropagation through the solver's operations (exact for the
  discrete solve that was taken; memory grows with the number of steps).
- ``BacksolveAdjoint``: the continuous adjoint, re-solving the state backwards.
- ``InterpolatingAdjoint``: the continuous adjoint, reading the state from the forward
  solution's dense output (or, with ``checkpointing=True``, from forward re-solves between
  the save points).

The continuous adjoints agree with the discrete gradient to about the solver tolerance, so
each is compared with a reference gradient: ``DirectBackprop`` at a much tighter tolerance.

Run:
    python examples/adjoint_comparison.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor, nn

import hybrideq as hq

torch.set_num_threads(1)  # small tensors: one thread is fastest
torch.manual_seed(0)
DTYPE = torch.float64


class Field(nn.Module):
    """``f(t, y) = W2 tanh(W1 y + b1) + b2`` with 64 hidden units."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2))

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.net(y)


field = Field().to(DTYPE)
y0 = torch.randn(64, 2, dtype=DTYPE)  # a batch of 64 initial states
ts = torch.linspace(0.0, 5.0, 51, dtype=DTYPE)
target = torch.sin(ts)[None, :, None] * torch.ones(64, 1, 2, dtype=DTYPE)


def gradient(
    sensealg: hq.AbstractSensitivityAlgorithm, rtol: float, atol: float
) -> tuple[Tensor, int, float]:
    """Loss gradient w.r.t. the field's parameters and ``y0``; forward NFE; median seconds."""
    model = hq.nn.NeuralODE(field, hq.Tsit5(), sensealg, rtol=rtol, atol=atol)
    times = []
    for _ in range(3):
        field.zero_grad()
        x0 = y0.clone().requires_grad_(True)
        start = time.perf_counter()
        out = model(x0, ts)
        loss = (out.y - target).square().mean()
        loss.backward()
        times.append(time.perf_counter() - start)
    grads = [p.grad.reshape(-1) for p in field.parameters() if p.grad is not None]
    assert x0.grad is not None
    return torch.cat([*grads, x0.grad.reshape(-1)]), out.nfe, statistics.median(times)


reference, ref_nfe, _ = gradient(hq.DirectBackprop(), 1e-11, 1e-13)
print(f"reference: DirectBackprop at rtol 1e-11 (forward NFE {ref_nfe})")
print(f"{sum(p.numel() for p in field.parameters())} parameters + {y0.numel()} entries of y0\n")

rtol, atol = 1e-6, 1e-8
algorithms: dict[str, hq.AbstractSensitivityAlgorithm] = {
    "DirectBackprop": hq.DirectBackprop(),
    "BacksolveAdjoint": hq.BacksolveAdjoint(),
    "BacksolveAdjoint(seminorm)": hq.BacksolveAdjoint(seminorm=True),
    "InterpolatingAdjoint": hq.InterpolatingAdjoint(),
    "InterpolatingAdjoint(seminorm)": hq.InterpolatingAdjoint(seminorm=True),
    "InterpolatingAdjoint(checkpoints)": hq.InterpolatingAdjoint(checkpointing=True),
}
print(f"at rtol {rtol:g}, atol {atol:g}:")
print(f"{'sensealg':34s} {'time':>8s} {'fwd NFE':>8s} {'rel. error vs reference':>24s}")
results: dict[str, Tensor] = {}
for name, sensealg in algorithms.items():
    g, nfe, seconds = gradient(sensealg, rtol, atol)
    results[name] = g
    rel = float((g - reference).norm() / reference.norm())
    print(f"{name:34s} {seconds * 1e3:6.0f} ms {nfe:8d} {rel:24.2e}")

direct = results["DirectBackprop"]
print("\nagreement with DirectBackprop at the same tolerance:")
for name, g in results.items():
    if name != "DirectBackprop":
        rel = float((g - direct).norm() / direct.norm())
        print(f"  {name:34s} {rel:.2e}")
