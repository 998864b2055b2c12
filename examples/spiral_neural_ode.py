"""Fit a neural ODE to a cubic spiral with hybrideq's public API (a short `hybrideq demo`).

The data follow ``dy/dt = (y**3) @ A``; the model is ``Linear(2, 50) → tanh → Linear(50, 2)``
applied to ``y**3``. Each minibatch holds 128 random windows of 10 consecutive points; every
window is one sample of a batched solve and takes its own steps.

Run:
    python examples/spiral_neural_ode.py
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

import hybrideq as hq

torch.manual_seed(0)
torch.set_num_threads(1)  # a 252-parameter model: extra threads only add overhead

# ----------------------------------------------------------------------------- data
A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
t64 = torch.linspace(0.0, 25.0, 1000, dtype=torch.float64)
y0_64 = torch.tensor([2.0, 0.0], dtype=torch.float64)
truth = hq.solve(
    hq.ODEProblem(lambda t, y, p: (y**3) @ p, y0_64, (0.0, 25.0), A),
    hq.Tsit5(),
    saveat=t64,
    rtol=1e-7,
    atol=1e-9,
)
t, y_true = t64.float(), truth.y.float()  # train in float32
print(f"data: {truth.retcode.name}, {int(truth.stats.nf)} evaluations")


# ----------------------------------------------------------------------------- model
class Field(nn.Module):
    """``f(t, y) = W2 tanh(W1 y³ + b1) + b2``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
        nn.init.normal_(self.net[0].weight, std=0.1)  # tanh near-linear for |y³| ≤ 8
        nn.init.normal_(self.net[2].weight, std=0.3)  # reach |dy/dt| ~ 16 in a few 100 steps
        nn.init.zeros_(self.net[0].bias)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.net(y**3)


model = hq.nn.NeuralODE(Field(), hq.Tsit5(), hq.DirectBackprop(), rtol=1e-5, atol=1e-6)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

# ----------------------------------------------------------------------------- training
batch, batch_time = 128, 10
start = time.perf_counter()
for step in range(1, 301):
    i0 = torch.randint(0, len(t) - batch_time + 1, (batch,))
    windows = i0[:, None] + torch.arange(batch_time)
    out = model(y_true[i0], t[:batch_time])  # autonomous: every window starts at t = 0
    loss = (out.y - y_true[windows]).abs().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        steps = out.sol.stats.naccept
        print(
            f"step {step:3d}  loss {loss.item():.4f}  NFE {out.nfe:3d}  "
            f"steps per window {int(steps.min())}-{int(steps.max())}"
        )
print(f"trained in {time.perf_counter() - start:.1f} s")

# ----------------------------------------------------------------------------- evaluation
with torch.no_grad():
    pred = model(y_true[0], t)
err = (pred.y - y_true).abs()
print(
    f"full trajectory from y0: mean |error| {err.mean():.4f}, max {err.max():.4f}, "
    f"NFE {pred.nfe}, {pred.sol.retcode.name}"
)
