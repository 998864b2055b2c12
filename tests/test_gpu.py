"""CUDA: the torch engine on a GPU agrees with the CPU (skipped where no CUDA device exists)."""

from __future__ import annotations

import pytest
import torch

import hybrideq as hq

pytestmark = pytest.mark.gpu


def _decay(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -p[:, None] * y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_solve_on_cuda_matches_cpu(dtype: torch.dtype) -> None:
    rates = torch.linspace(0.5, 20.0, 64, dtype=dtype)
    y0 = torch.ones(64, 3, dtype=dtype)
    ts = torch.linspace(0, 1, 11, dtype=dtype)
    sols = {}
    for dev in ("cpu", "cuda"):
        prob = hq.ODEProblem(_decay, y0.to(dev), (0.0, 1.0), rates.to(dev))
        sols[dev] = hq.solve(prob, hq.Tsit5(), saveat=ts.to(dev), rtol=1e-6, atol=1e-8)
    gpu, cpu = sols["cuda"], sols["cpu"]
    assert gpu.y.device.type == "cuda"
    assert gpu.success
    exact = torch.exp(-rates[:, None] * ts[None, :])[:, :, None].expand(-1, -1, 3)
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    assert torch.allclose(gpu.y.cpu(), exact, atol=tol)
    assert torch.allclose(gpu.y.cpu(), cpu.y, atol=tol)
    # Per-sample stepping is deterministic up to round-off: the step counts agree.
    assert (gpu.stats.naccept.cpu() - cpu.stats.naccept).abs().max() <= 1


def test_neural_ode_gradients_on_cuda_match_cpu() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    y0 = torch.randn(32, 2)
    ts = torch.linspace(0, 1, 5)
    grads = {}
    for dev in ("cpu", "cuda"):

        class Field(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return self.net(y)

        net.to(dev)
        model = hq.nn.NeuralODE(
            Field(), sensealg=hq.InterpolatingAdjoint(), rtol=1e-6, atol=1e-8
        ).double()
        out = model(y0.double().to(dev), ts.double().to(dev))
        loss = (out.y**2).mean()
        grads[dev] = torch.autograd.grad(loss, list(net.parameters()))
        net.float().cpu()
    for a, b in zip(grads["cpu"], grads["cuda"], strict=True):
        assert torch.allclose(a, b.cpu(), rtol=1e-5, atol=1e-7)
