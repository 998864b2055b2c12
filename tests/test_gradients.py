"""Gradients of solves: gradcheck, closed forms, adjoint vs direct backprop, NeuralODE.

``torch.autograd.gradcheck`` compares the backward pass with central finite differences
of the *adaptive* solve. The solves use tight tolerances (``rtol=1e-10, atol=1e-12``), so
the step-size sequence is smooth enough in the inputs, and gradcheck runs with
``eps=1e-6`` and ``atol=1e-6``: the finite differences carry an error of about
``tol/eps ≈ 1e-6`` from the tolerance-level noise of the solve. Direct backprop with fixed
steps is exact for the discrete map, so it passes gradcheck at a much tighter ``atol``.

The continuous adjoints (``BacksolveAdjoint``, ``InterpolatingAdjoint`` with and without
checkpointing, each with and without the seminorm) are also checked against the closed-form derivatives of
``y(t) = y0 e^{−p t}``: ``∂y/∂y0 = e^{−p t}``, ``∂y/∂p = −t y0 e^{−p t}``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import hybrideq as hq

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-12}

SENSEALGS = [
    pytest.param(hq.DirectBackprop(), id="direct"),
    pytest.param(hq.BacksolveAdjoint(), id="backsolve"),
    pytest.param(hq.BacksolveAdjoint(seminorm=True), id="backsolve-seminorm"),
    pytest.param(hq.InterpolatingAdjoint(), id="interpolating"),
    pytest.param(hq.InterpolatingAdjoint(seminorm=True), id="interpolating-seminorm"),
    pytest.param(hq.InterpolatingAdjoint(checkpointing=True), id="interpolating-checkpointed"),
    pytest.param(
        hq.InterpolatingAdjoint(checkpointing=True, seminorm=True),
        id="interpolating-checkpointed-seminorm",
    ),
]
GRADCHECK_SENSEALGS = [
    pytest.param(hq.DirectBackprop(), id="direct"),
    pytest.param(hq.BacksolveAdjoint(), id="backsolve"),
    pytest.param(hq.InterpolatingAdjoint(), id="interpolating"),
    pytest.param(hq.InterpolatingAdjoint(checkpointing=True), id="interpolating-checkpointed"),
]


def linear_decay(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -p * y


def mlp_field(t: torch.Tensor, y: torch.Tensor, p: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A 2 → 4 → 2 tanh MLP with its weights in ``p = (W1, b1, W2, b2)``."""
    w1, b1, w2, b2 = p
    return torch.tanh(y @ w1.T + b1) @ w2.T + b2


def mlp_params() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    w1 = 0.5 * torch.randn(4, 2, dtype=F64, generator=g)
    b1 = 0.1 * torch.randn(4, dtype=F64, generator=g)
    w2 = 0.5 * torch.randn(2, 4, dtype=F64, generator=g)
    b2 = 0.1 * torch.randn(2, dtype=F64, generator=g)
    return tuple(x.requires_grad_(True) for x in (w1, b1, w2, b2))


# --------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("sensealg", GRADCHECK_SENSEALGS)
def test_gradcheck_linear(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    ts = torch.tensor([0.3, 0.7, 1.0], dtype=F64)

    def fn(y0: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        prob = hq.ODEProblem(linear_decay, y0, (0.0, 1.0), p)
        return hq.solve(prob, hq.Tsit5(), saveat=ts, sensealg=sensealg, **TIGHT).y

    y0 = torch.tensor([0.7, -0.4], dtype=F64, requires_grad=True)
    p = torch.tensor(1.3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (y0, p), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("sensealg", GRADCHECK_SENSEALGS)
def test_gradcheck_mlp_field(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    ts = torch.tensor([0.5, 1.0], dtype=F64)

    def fn(y0: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        prob = hq.ODEProblem(mlp_field, y0, (0.0, 1.0), tuple(p))
        return hq.solve(prob, hq.Tsit5(), saveat=ts, sensealg=sensealg, **TIGHT).y

    y0 = torch.tensor([[0.5, -0.3], [1.0, 0.2]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (y0, *mlp_params()), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("solver", [hq.RK4(), hq.Tsit5()], ids=lambda s: s.name)
def test_gradcheck_direct_backprop_fixed_steps(solver: hq.AbstractSolver) -> None:
    """Fixed steps make the solve a smooth map: gradcheck passes at round-off level."""
    ts = torch.tensor([0.5, 1.0], dtype=F64)
    kw = {"dt": 0.05} if not solver.is_adaptive else {"dt": 0.05, "adaptive": False}

    def fn(y0: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        prob = hq.ODEProblem(mlp_field, y0, (0.0, 1.0), tuple(p))
        return hq.solve(prob, solver, saveat=ts, sensealg=hq.DirectBackprop(), **kw).y

    y0 = torch.tensor([[0.5, -0.3], [1.0, 0.2]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (y0, *mlp_params()), eps=1e-6, atol=1e-8, rtol=1e-6)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("sensealg", SENSEALGS)
@pytest.mark.parametrize("solver", [hq.Tsit5(), hq.DP5(), hq.Vern7()], ids=lambda s: s.name)
def test_gradient_matches_closed_form(
    sensealg: hq.AbstractSensitivityAlgorithm, solver: hq.AbstractSolver
) -> None:
    """``L = Σ_k w_k · y(t_k)``; ``∂L/∂y0`` and ``∂L/∂p`` against ``y = y0 e^{−p t}``."""
    ts = torch.tensor([0.25, 0.5, 1.0, 2.0], dtype=F64)
    wts = torch.tensor([1.0, -0.5, 2.0, 0.3], dtype=F64)
    y0 = torch.tensor([0.7, -0.4, 1.5], dtype=F64, requires_grad=True)
    p = torch.tensor(0.8, dtype=F64, requires_grad=True)
    sol = hq.solve(
        hq.ODEProblem(linear_decay, y0, (0.0, 2.0), p),
        solver,
        saveat=ts,
        sensealg=sensealg,
        **TIGHT,
    )
    loss = (wts[:, None] * sol.y).sum()
    g_y0, g_p = torch.autograd.grad(loss, (y0, p))
    e = torch.exp(-0.8 * ts)
    exact_y0 = (wts * e).sum().expand(3)
    exact_p = (wts * (-ts) * e).sum() * y0.detach().sum()
    torch.testing.assert_close(g_y0, exact_y0, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(g_p, exact_p, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sensealg", SENSEALGS)
def test_gradient_of_per_component_atol_solve(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    """Per-component tolerances; components with very different scales."""
    y0 = torch.tensor([1e3, 1.0, 1e-3], dtype=F64, requires_grad=True)
    rates = torch.tensor([0.5, 1.0, 2.0], dtype=F64, requires_grad=True)
    atol = torch.tensor([1e-7, 1e-10, 1e-13], dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(linear_decay, y0, (0.0, 1.0), rates),
        hq.Tsit5(),
        saveat=torch.tensor([1.0], dtype=F64),
        rtol=1e-10,
        atol=atol,
        sensealg=sensealg,
    )
    scale = torch.tensor([1e-3, 1.0, 1e3], dtype=F64)  # so every term has weight ~1
    loss = (scale * sol.y[-1]).sum()
    g_y0, g_k = torch.autograd.grad(loss, (y0, rates))
    e = torch.exp(-rates.detach())
    torch.testing.assert_close(g_y0, scale * e, rtol=1e-7, atol=0)
    torch.testing.assert_close(g_k, -scale * y0.detach() * e, rtol=1e-7, atol=0)


@pytest.mark.parametrize("sensealg", SENSEALGS)
def test_gradient_through_per_sample_spans(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    """A batch whose samples end at different times; ``p`` is shared, ``y0`` per sample."""
    t1 = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    y0 = torch.tensor([[1.0], [2.0], [-0.5]], dtype=F64, requires_grad=True)
    p = torch.tensor(0.7, dtype=F64, requires_grad=True)
    saveat = torch.stack([0.5 * t1, t1], 1)  # (batch, 2)
    sol = hq.solve(
        hq.ODEProblem(linear_decay, y0, (0.0, t1), p),
        hq.Tsit5(),
        saveat=saveat,
        sensealg=sensealg,
        **TIGHT,
    )
    assert sol.success
    loss = sol.y.sum()
    g_y0, g_p = torch.autograd.grad(loss, (y0, p))
    e = torch.exp(-0.7 * saveat)  # (batch, 2)
    torch.testing.assert_close(g_y0[:, 0], e.sum(1), rtol=1e-8, atol=1e-10)
    exact_p = (-(saveat * e).sum(1) * y0.detach()[:, 0]).sum()
    torch.testing.assert_close(g_p, exact_p, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sensealg", SENSEALGS)
def test_gradient_through_a_backward_span(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    """From ``t = 1`` back to ``0``: ``y(0) = y1 e^{p}``."""
    y1 = torch.tensor([0.6], dtype=F64, requires_grad=True)
    p = torch.tensor(0.9, dtype=F64, requires_grad=True)
    sol = hq.solve(
        hq.ODEProblem(linear_decay, y1, (1.0, 0.0), p),
        hq.Tsit5(),
        saveat=torch.tensor([0.0], dtype=F64),
        sensealg=sensealg,
        **TIGHT,
    )
    g_y1, g_p = torch.autograd.grad(sol.y.sum(), (y1, p))
    torch.testing.assert_close(g_y1, torch.full((1,), math.exp(0.9), dtype=F64), rtol=1e-8, atol=0)
    torch.testing.assert_close(g_p, torch.tensor(0.6 * math.exp(0.9), dtype=F64), rtol=1e-8, atol=0)


# --------------------------------------------------------------------------- neural ODE


class Field(nn.Module):
    def __init__(self, n: int = 2, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n, width), nn.Tanh(), nn.Linear(width, n))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def neural_gradients(sensealg: hq.AbstractSensitivityAlgorithm, rtol: float) -> list[torch.Tensor]:
    torch.manual_seed(3)
    field = Field().double()
    model = hq.nn.NeuralODE(field, sensealg=sensealg, rtol=rtol, atol=rtol * 1e-2)
    torch.manual_seed(4)
    y0 = torch.randn(16, 2, dtype=F64)
    ts = torch.linspace(0.0, 1.0, 10, dtype=F64)
    target = torch.sin(ts)[None, :, None] * y0[:, None, :]
    out = model(y0, ts)
    loss = ((out.y - target) ** 2).mean()
    return [g.detach() for g in torch.autograd.grad(loss, list(model.parameters()))]


@pytest.mark.parametrize(
    "sensealg",
    [
        pytest.param(hq.BacksolveAdjoint(), id="backsolve"),
        pytest.param(hq.BacksolveAdjoint(seminorm=True), id="backsolve-seminorm"),
        pytest.param(hq.InterpolatingAdjoint(), id="interpolating"),
        pytest.param(hq.InterpolatingAdjoint(seminorm=True), id="interpolating-seminorm"),
        pytest.param(hq.InterpolatingAdjoint(checkpointing=True), id="interpolating-checkpointed"),
    ],
)
def test_adjoint_agrees_with_direct_backprop_on_neural_ode(
    sensealg: hq.AbstractSensitivityAlgorithm,
) -> None:
    """Both approximate the same continuous gradient: agree to ~1e3 × the tolerance."""
    rtol = 1e-8
    direct = neural_gradients(hq.DirectBackprop(), rtol)
    adjoint = neural_gradients(sensealg, rtol)
    flat_d = torch.cat([g.reshape(-1) for g in direct])
    flat_a = torch.cat([g.reshape(-1) for g in adjoint])
    assert float(flat_d.norm()) > 1e-3  # a non-trivial gradient
    rel = float((flat_a - flat_d).norm() / flat_d.norm())
    assert rel < 1e3 * rtol, rel


def test_neural_ode_output() -> None:
    model = hq.nn.NeuralODE(Field(3), rtol=1e-6, atol=1e-8).double()
    y0 = torch.randn(5, 3, dtype=F64)
    ts = torch.linspace(0.0, 1.0, 7, dtype=F64)
    out = model(y0, ts)
    assert out.y.shape == (5, 7, 3)
    assert isinstance(out.nfe, int)
    assert out.nfe > 0
    assert out.nfe == int(out.sol.stats.nf.max())
    torch.testing.assert_close(out.y[:, 0], y0, rtol=0, atol=0)
    # The same trajectory as a plain solve of the field.
    prob = hq.ODEProblem(lambda t, y, m: m(t, y), y0, (0.0, 1.0), model.vector_field)
    with torch.no_grad():
        ref = hq.solve(prob, hq.Tsit5(), saveat=ts, rtol=1e-10, atol=1e-12).y
    torch.testing.assert_close(out.y.detach(), ref, rtol=1e-4, atol=1e-6)


def test_neural_ode_training_reduces_the_loss() -> None:
    """30 Adam steps fitting ``y' = A y`` data: the loss goes down substantially."""
    a = torch.tensor([[-0.1, 1.0], [-1.0, -0.1]], dtype=F64)
    ts = torch.linspace(0.0, 2.0, 8, dtype=F64)
    y0 = torch.randn(16, 2, dtype=F64)
    target = torch.einsum(
        "tij,bj->bti", torch.stack([torch.linalg.matrix_exp(a * t) for t in ts]), y0
    )
    model = hq.nn.NeuralODE(Field(2, 16), rtol=1e-5, atol=1e-7).double()  # DirectBackprop
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(y0, ts).y - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize(
    "sensealg",
    [
        pytest.param(hq.DirectBackprop(), id="direct"),
        pytest.param(hq.BacksolveAdjoint(), id="backsolve"),
        pytest.param(hq.InterpolatingAdjoint(), id="interpolating"),
        pytest.param(hq.InterpolatingAdjoint(checkpointing=True), id="interpolating-checkpointed"),
    ],
)
def test_gradient_of_the_good_samples_when_one_fails(
    sensealg: hq.AbstractSensitivityAlgorithm,
) -> None:
    """``y' = p y²``: ``y0 = 1`` blows up at ``t = 1``, ``y0 = −1`` does not.

    The loss uses the successful sample only; its gradient is
    ``∂y(t)/∂y0 = 1/(1 − p y0 t)²`` and ``∂y(t)/∂p = y0² t/(1 − p y0 t)²``.
    """
    p = torch.tensor(1.0, dtype=F64, requires_grad=True)
    y0 = torch.tensor([[1.0], [-1.0]], dtype=F64, requires_grad=True)
    ts = torch.tensor([0.5, 2.0], dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(lambda t, y, p: p * y * y, y0, (0.0, 2.0), p),
        hq.Tsit5(),
        saveat=ts,
        sensealg=sensealg,
        **TIGHT,
    )
    assert sol.retcode[1] == hq.ReturnCode.Success
    assert sol.retcode[0] != hq.ReturnCode.Success
    g_y0, g_p = torch.autograd.grad(sol.y[1].sum(), (y0, p))
    denom = 1.0 + ts  # 1 − p y0 t with p = 1, y0 = −1
    torch.testing.assert_close(g_y0[1, 0], (1.0 / denom**2).sum(), rtol=1e-7, atol=0)
    torch.testing.assert_close(g_p, (ts / denom**2).sum(), rtol=1e-7, atol=0)
    assert float(g_y0[0, 0]) == 0.0
