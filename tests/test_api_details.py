"""Smaller promises of the public API: printing, warnings, adjoint counters, docstrings."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import hybrideq as hq

F64 = torch.float64


def test_return_codes_print_by_name() -> None:
    sol = hq.solve(
        hq.ODEProblem(lambda t, y, p: -y, torch.ones(1, dtype=F64), (0.0, 1.0)), hq.Tsit5()
    )
    assert str(sol.retcode) == "ReturnCode.Success"
    assert f"{sol.retcode}" == "ReturnCode.Success"
    assert "retcode=Success" in repr(sol)
    assert sol.retcode == 1 and sol.retcode.successful


def test_closure_tensor_under_an_adjoint_warns_and_gets_no_gradient() -> None:
    k = torch.tensor(2.0, dtype=F64, requires_grad=True)
    y0 = torch.ones(2, dtype=F64, requires_grad=True)

    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        return -k * y

    ts = torch.tensor([1.0], dtype=F64)
    with pytest.warns(UserWarning, match="closure or a global"):
        sol = hq.solve(
            hq.ODEProblem(f, y0, (0.0, 1.0)),
            hq.Tsit5(),
            saveat=ts,
            sensealg=hq.InterpolatingAdjoint(),
        )
    sol.y.sum().backward()
    assert k.grad is None
    # y0's gradient is still right: d/dy0 Σ y0 e^{-2} = e^{-2} each.
    torch.testing.assert_close(
        y0.grad,
        torch.full((2,), torch.exp(torch.tensor(-2.0)).item(), dtype=F64),
        rtol=1e-5,
        atol=0,
    )


def test_heuristics_under_an_adjoint_warn() -> None:
    p = torch.tensor(1.0, dtype=F64, requires_grad=True)
    prob = hq.ODEProblem(lambda t, y, p: -p * y, torch.ones(2, dtype=F64), (0.0, 1.0), p)
    with pytest.warns(UserWarning, match="no gradient under an adjoint"):
        hq.solve(
            prob,
            hq.Tsit5(),
            saveat=torch.tensor([1.0], dtype=F64),
            heuristics=True,
            sensealg=hq.BacksolveAdjoint(),
        )


@pytest.mark.parametrize(
    "sensealg",
    [hq.BacksolveAdjoint(), hq.InterpolatingAdjoint(), hq.InterpolatingAdjoint(checkpointing=True)],
    ids=["backsolve", "interpolating", "checkpointed"],
)
def test_adjoint_stats_are_filled_by_backward(sensealg: hq.AbstractSensitivityAlgorithm) -> None:
    p = torch.tensor(2.0, dtype=F64, requires_grad=True)
    prob = hq.ODEProblem(lambda t, y, p: -p * y, torch.ones(2, dtype=F64), (0.0, 1.0), p)
    sol = hq.solve(
        prob,
        hq.Tsit5(),
        saveat=torch.linspace(0, 1, 5, dtype=F64),
        rtol=1e-8,
        atol=1e-10,
        sensealg=sensealg,
    )
    assert sol.adjoint_stats is not None and not sol.adjoint_stats.done
    sol.y.sum().backward()
    st = sol.adjoint_stats
    assert st.done and st.nf > 0 and st.naccept >= 4  # at least one step per save interval
    # Σ_k y(t_k) with y = 2 e^{-p t}: d/dp = Σ −2 t_k e^{-p t_k}.
    ts = torch.linspace(0, 1, 5, dtype=F64)
    torch.testing.assert_close(p.grad, (-2 * ts * torch.exp(-2 * ts)).sum(), rtol=1e-6, atol=0)


def test_direct_backprop_has_no_adjoint_stats() -> None:
    p = torch.tensor(2.0, dtype=F64, requires_grad=True)
    prob = hq.ODEProblem(lambda t, y, p: -p * y, torch.ones(2, dtype=F64), (0.0, 1.0), p)
    assert hq.solve(prob, hq.Tsit5()).adjoint_stats is None


def _modules() -> list[str]:
    names = ["hybrideq"]
    for info in pkgutil.walk_packages(hq.__path__, "hybrideq."):
        if info.name.endswith(("demo", "__main__", "cli")):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """Every ``>>>`` example in the package's docstrings gives the output it shows."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_progress_bar_follows_the_slowest_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar shows the fraction of the span the slowest sample has covered, up to 1."""
    from hybrideq.engines.torch import _engine

    seen: list[float] = []
    closed: list[bool] = []

    class Recorder(_engine._Progress):
        def __call__(self, frac: float) -> None:
            seen.append(frac)
            super().__call__(frac)

        def close(self) -> None:
            closed.append(True)
            super().close()

    monkeypatch.setattr(_engine, "_Progress", Recorder)
    rates = torch.tensor([1.0, 30.0], dtype=F64)  # the fast-decaying sample takes more steps
    prob = hq.ODEProblem(
        lambda t, y, p: -p[:, None] * y, torch.ones(2, 1, dtype=F64), (0.0, 2.0), rates
    )
    sol = hq.solve(prob, hq.Tsit5(), rtol=1e-8, atol=1e-10, progress=True)
    assert closed == [True]
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) == int(sol.stats.naccept.max() + sol.stats.nreject.max())


def test_a_failing_backward_solve_warns_and_names_the_sample() -> None:
    """``maxiters`` large enough for the forward solve but too small for the backward one."""
    p = torch.tensor([1.0, 40.0], dtype=F64, requires_grad=True)
    prob = hq.ODEProblem(
        lambda t, y, p: -p[:, None] * y, torch.ones(2, 1, dtype=F64), (0.0, 1.0), p
    )
    ts = torch.tensor([1.0], dtype=F64)
    probe = hq.solve(prob, hq.Tsit5(), saveat=ts, rtol=1e-8, atol=1e-10)
    maxiters = int(probe.stats.naccept.max() + probe.stats.nreject.max()) + 1
    sol = hq.solve(
        prob,
        hq.Tsit5(),
        saveat=ts,
        rtol=1e-8,
        atol=1e-10,
        maxiters=maxiters,
        sensealg=hq.BacksolveAdjoint(rtol=1e-12, atol=1e-14),
    )
    assert sol.success
    with pytest.warns(UserWarning, match=r"backward solve failed \(MaxIters\)"):
        sol.y.sum().backward()
    assert sol.adjoint_stats is not None and 1 in sol.adjoint_stats.failed_samples
