"""Gradients of SDE solves: direct backprop (gradcheck) and the stochastic adjoint."""

from __future__ import annotations

import math

import pytest
import torch

import hybrideq as hq

F64 = torch.float64


class _Net(torch.nn.Module):
    def __init__(self, n: int, scale: float = 1.0, positive: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n, 8), torch.nn.Tanh(), torch.nn.Linear(8, n)
        ).double()
        self.scale, self.positive = scale, positive

    def forward(self, t, y, p):
        out = self.net(y)
        return self.scale * (torch.sigmoid(out) if self.positive else out)


class _GeneralDiffusion(torch.nn.Module):
    """A (2, 3) diffusion matrix: general, non-commutative noise."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 6).double()

    def forward(self, t, y, p):
        return 0.2 * torch.tanh(self.lin(y)).reshape(-1, 2, 3)


def _grads(prob, solver, sensealg, dt, path=None, seed=None):
    kw = {"brownian": path} if path is not None else {"seed": seed}
    sol = hq.solve(prob, solver, dt=dt, saveat=[0.5, 1.0], sensealg=sensealg, **kw)
    loss = (sol.y**2).sum()
    leaves = [prob.y0, *prob.f.parameters(), *prob.g.parameters()]
    grads = torch.autograd.grad(loss, leaves)
    return torch.cat([g.reshape(-1) for g in grads]), sol.W


@pytest.mark.parametrize(
    ("interpretation", "solver", "noise"),
    [
        ("ito", hq.EM(), "diagonal"),
        ("stratonovich", hq.EulerHeun(), "diagonal"),
        ("ito", hq.EM(), "general"),
    ],
    ids=["ito-diagonal", "stratonovich-diagonal", "ito-general"],
)
def test_stochastic_adjoint_agrees_with_direct_backprop_on_the_same_path(
    interpretation, solver, noise
) -> None:
    torch.manual_seed(0)
    f = _Net(2)
    if noise == "general":
        g = _GeneralDiffusion()
        extra = {"noise": "general", "noise_dim": 3}
    else:
        g = _Net(2, 0.3, positive=True)
        extra = {}
    y0 = torch.randn(16, 2, dtype=F64, requires_grad=True)
    prob = hq.SDEProblem(f, g, y0, (0.0, 1.0), interpretation=interpretation, **extra)
    rel = []
    for dt in (1e-2, 2.5e-3):
        direct, path = _grads(prob, solver, hq.DirectBackprop(), dt, seed=1)
        adjoint, _ = _grads(prob, solver, hq.BacksolveAdjoint(), dt, path=path)
        rel.append(float((direct - adjoint).norm() / direct.norm()))
    # Measured: ~1.3e-3 at dt = 0.01 and ~3e-4 at dt = 0.0025 for diagonal noise (first
    # order in dt); 2.3e-3 and 1.3e-3 for non-commutative general noise, where EM's strong
    # order is 1/2 (the discrete gradient converges to the continuous one at that rate).
    assert rel[0] < 5e-3, rel
    assert rel[1] < rel[0] / (1.5 if noise == "general" else 2.5), rel


def test_stochastic_adjoint_with_an_adaptive_forward_solve_and_p() -> None:
    # GBM with p = (μ, σ): dL/dp of E-free loss y(1)² against the exact pathwise derivative.
    mu = torch.tensor(0.3, dtype=F64, requires_grad=True)
    sigma = torch.tensor(0.4, dtype=F64, requires_grad=True)
    prob = hq.SDEProblem(
        lambda t, y, p: p[0] * y,
        lambda t, y, p: p[1] * y,
        torch.ones(4, 1, dtype=F64),
        (0.0, 1.0),
        p=(mu, sigma),
    )
    sol = hq.solve(
        prob,
        hq.SOSRI(),
        rtol=1e-3,
        atol=1e-3,
        seed=2,
        saveat=[1.0],
        sensealg=hq.BacksolveAdjoint(),
    )
    w = sol.W(1.0)[:, 0]
    loss = sol.y[:, -1, 0].sum()
    dmu, dsigma = torch.autograd.grad(loss, [mu, sigma])
    y1 = torch.exp((mu - 0.5 * sigma**2) + sigma * w).detach()
    exact_dmu = float(y1.sum())
    exact_dsigma = float((y1 * (w - sigma.detach())).sum())
    assert abs(float(dmu) - exact_dmu) < 2e-2 * abs(exact_dmu)
    assert abs(float(dsigma) - exact_dsigma) < 2e-2 * max(1.0, abs(exact_dsigma))


def test_gradcheck_direct_backprop_on_a_small_sde() -> None:
    # With a fixed seed the solve is a deterministic function of (y0, p).
    def run(y0, p):
        prob = hq.SDEProblem(
            lambda t, y, q: -q[0] * y + torch.sin(y),
            lambda t, y, q: q[1] * torch.cos(y),
            y0,
            (0.0, 1.0),
            p=(p[0], p[1]),
        )
        return hq.solve(prob, hq.SRIW1(), dt=0.05, adaptive=False, seed=3, saveat=[0.5, 1.0]).y

    y0 = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=F64, requires_grad=True)
    p = torch.tensor([0.7, 0.25], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (y0, p), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_milstein_and_sra() -> None:
    def run_mil(p):
        prob = hq.SDEProblem(
            lambda t, y, q: q * y,
            lambda t, y, q: 0.5 * torch.sin(y),
            torch.ones(3, 1, dtype=F64),
            (0.0, 1.0),
            p=q_wrap(p),
        )
        return hq.solve(prob, hq.Milstein(), dt=0.1, seed=4, saveat=[1.0]).y

    def q_wrap(p):
        return p

    p = torch.tensor(0.3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(run_mil, (p,), eps=1e-6, atol=1e-7)

    def run_sra(p):
        prob = hq.SDEProblem(
            lambda t, y, q: -q * y**3,
            lambda t, y, q: 0.5 * torch.ones_like(y),
            torch.ones(3, 1, dtype=F64),
            (0.0, 1.0),
            p=p,
            noise="additive",
        )
        return hq.solve(prob, hq.SOSRA(), dt=0.1, adaptive=False, seed=4, saveat=[1.0]).y

    assert torch.autograd.gradcheck(run_sra, (p,), eps=1e-6, atol=1e-7)


def test_adjoint_is_rejected_for_unsupported_sensealg() -> None:
    prob = hq.SDEProblem(
        lambda t, y, p: -y, lambda t, y, p: 0.1 * y, torch.ones(2, 1, dtype=F64), (0.0, 1.0)
    )
    with pytest.raises(TypeError, match="not supported for SDEs"):
        hq.solve(prob, hq.EM(), dt=0.1, seed=0, sensealg=hq.InterpolatingAdjoint())
    assert math.isfinite(float(hq.solve(prob, hq.EM(), dt=0.1, seed=0).y.sum()))


@pytest.mark.parametrize("noise", ["diagonal", "general"])
def test_reversible_adjoint_equals_direct_backprop(noise) -> None:
    # Reversible Heun runs backwards exactly (to rounding): the O(1)-memory gradients are the
    # direct-backprop gradients of the same discrete solve (measured: 4e-16 relative).
    torch.manual_seed(1)
    f = _Net(2)
    if noise == "general":
        g = _GeneralDiffusion()
        extra = {"noise": "general", "noise_dim": 3}
    else:
        g = _Net(2, 0.3, positive=True)
        extra = {}
    y0 = torch.randn(8, 2, dtype=F64, requires_grad=True)
    prob = hq.SDEProblem(f, g, y0, (0.0, 1.0), interpretation="stratonovich", **extra)
    direct, path = _grads(prob, hq.ReversibleHeun(), hq.DirectBackprop(), 0.01, seed=2)
    rev, _ = _grads(prob, hq.ReversibleHeun(), hq.ReversibleAdjoint(), 0.01, path=path)
    assert float((direct - rev).norm() / direct.norm()) < 1e-10


def test_reversible_heun_strong_order_on_stratonovich_gbm() -> None:
    mu, sigma = 0.1, 1.0
    prob = hq.SDEProblem(
        lambda t, y, p: mu * y,
        lambda t, y, p: sigma * y,
        torch.ones(2000, 1, dtype=F64),
        (0.0, 1.0),
        interpretation="stratonovich",
    )
    path = hq.BrownianPath(0.0, 1.0, 2000, 1, seed=0, dtype=F64)
    dts = [2.0**-k for k in range(3, 8)]
    errs = [
        float(
            (
                hq.solve(prob, hq.ReversibleHeun(), dt=dt, saveat=[1.0], brownian=path).y[:, -1]
                - torch.exp(mu + sigma * path(1.0))
            )
            .abs()
            .mean()
        )
        for dt in dts
    ]
    # Scalar (commutative) noise: order 1 (measured 0.91).
    slope = float(torch.tensor(errs).log().diff().mean() / torch.tensor(dts).log().diff().mean())
    assert abs(slope - 1.0) <= 0.2, errs


def test_reversible_adjoint_needs_reversible_heun() -> None:
    prob = hq.SDEProblem(
        lambda t, y, p: -y,
        lambda t, y, p: 0.1 * y,
        torch.ones(2, 1, dtype=F64),
        (0.0, 1.0),
        interpretation="stratonovich",
    )
    with pytest.raises(ValueError, match="algebraically reversible"):
        hq.solve(prob, hq.EulerHeun(), dt=0.1, seed=0, sensealg=hq.ReversibleAdjoint())


@pytest.mark.parametrize("sensealg", [hq.ReversibleAdjoint(), hq.BacksolveAdjoint()])
def test_adjoints_without_saveat_use_every_saved_step(sensealg) -> None:
    # saveat=None: every step is saved and carries a loss term; per-sample spans make the
    # rows of different lengths (padded), which the backward pass must skip.
    torch.manual_seed(3)
    f, g = _Net(2), _Net(2, 0.3, positive=True)
    y0 = torch.randn(3, 2, dtype=F64, requires_grad=True)
    t1 = torch.tensor([1.0, 0.75, 0.5], dtype=F64)
    prob = hq.SDEProblem(f, g, y0, (0.0, t1), interpretation="stratonovich")
    solver = hq.ReversibleHeun() if isinstance(sensealg, hq.ReversibleAdjoint) else hq.EulerHeun()

    def grads(sa, **kw):
        sol = hq.solve(prob, solver, dt=0.01, sensealg=sa, **kw)
        keep = torch.arange(sol.y.shape[1])[None, :] < sol.nsaved[:, None]
        loss = (sol.y.square().sum(-1) * keep).sum()
        out = torch.autograd.grad(loss, [y0, *f.parameters(), *g.parameters()])
        return torch.cat([x.reshape(-1) for x in out]), sol.W

    direct, path = grads(hq.DirectBackprop(), seed=4)
    adj, _ = grads(sensealg, brownian=path)
    rel = float((direct - adj).norm() / direct.norm())
    assert rel < (1e-10 if isinstance(sensealg, hq.ReversibleAdjoint) else 1e-2), rel
