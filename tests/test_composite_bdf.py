"""Automatic stiffness switching into the variable-order BDF: ``AutoTsit5(QNDF())``.

Van der Pol (μ = 1e3) against the IVP test set's reference, with every switch restarting
the BDF at order 1; a batch of a non-stiff and a stiff sample, each matching its own solve;
Robertson with ``AutoVern7(QBDF())`` against a tight Radau reference; ``saveat`` values
(dense output) across switches in both directions; and the errors for what a composite
cannot take.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

import hybrideq as hq
from hybrideq.engines.torch._methods import CompositeRunner

F64 = torch.float64
MU = 1e3


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """The records of the next composite solves (``on_stiff``, ``orders``, ``switches``)."""
    seen: dict[str, torch.Tensor] = {}
    run = CompositeRunner.run

    def spy(self: CompositeRunner, *args: Any, **kwargs: Any) -> Any:
        res = run(self, *args, **kwargs)
        seen.update(res.records)
        return res

    monkeypatch.setattr(CompositeRunner, "run", spy)
    return seen


def _vdp_np(t: float, y: Any) -> list[float]:
    return [y[1], MU * (1.0 - y[0] ** 2) * y[1] - y[0]]


def _vdp_jac_np(t: float, y: Any) -> list[list[float]]:
    return [[0.0, 1.0], [-2.0 * MU * y[0] * y[1] - 1.0, MU * (1.0 - y[0] ** 2)]]


def _rob_np(t: float, y: Any) -> list[float]:
    k1, k2, k3 = 0.04, 3e7, 1e4
    return [
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
        k2 * y[1] ** 2,
    ]


def _rob_jac_np(t: float, y: Any) -> list[list[float]]:
    k1, k2, k3 = 0.04, 3e7, 1e4
    return [
        [-k1, k3 * y[2], k3 * y[1]],
        [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
        [0.0, 2 * k2 * y[1], 0.0],
    ]


# --------------------------------------------------------------------------- Van der Pol


def test_autotsit5_qndf_van_der_pol(records: dict[str, torch.Tensor]) -> None:
    """μ = 1e3 on [0, 2000] (the test set's VDPOL): stiff slow arcs, non-stiff jumps."""
    prob = hq.library.van_der_pol()
    ref = torch.tensor(hq.library.reference("van_der_pol").y, dtype=F64)
    sol = hq.solve(prob, hq.AutoTsit5(hq.QNDF()), rtol=1e-6, atol=1e-8, saveat=[2000.0])
    assert sol.retcode == hq.ReturnCode.Success
    rel = float(((sol.y[-1] - ref).abs() / ref.abs()).max())
    # Measured: 4.2e-5 relative (QNDF alone: 4.9e-5), 5 switches, 595 steps (QNDF: 1112).
    assert rel < 1e-4
    assert sol.stats.switches is not None and int(sol.stats.switches) >= 1
    assert int(sol.stats.njac) > 0
    on_stiff, orders = records["on_stiff"][:, 0], records["orders"][:, 0]
    entered = torch.nonzero(on_stiff[1:] & ~on_stiff[:-1])[:, 0] + 1
    assert entered.numel() >= 1 and entered.numel() == (int(records["switches"][0]) + 1) // 2
    bounds = [*entered.tolist(), on_stiff.numel()]
    for start, stop in itertools.pairwise(bounds):
        # Every stretch on the BDF restarts it at order 1; its own selection raises it.
        ks = orders[start:stop][on_stiff[start:stop] & (orders[start:stop] > 0)]
        assert int(ks[0]) == 1
        assert int(ks.max()) >= 3


def test_batch_of_a_nonstiff_and_a_stiff_sample() -> None:
    """A batch μ = (1, 1e3): only the second switches, both match their own solves."""
    base = hq.library.van_der_pol(mu=1.0, tspan=(0.0, 20.0))
    p = torch.tensor([[1.0], [MU]], dtype=F64)
    prob = base.remake(y0=base.y0.expand(2, -1).clone(), p=p)
    solver = hq.AutoTsit5(hq.QNDF())
    kw: dict[str, Any] = {
        "rtol": 1e-8,
        "atol": 1e-10,
        "saveat": torch.linspace(0.0, 20.0, 41, dtype=F64),
    }
    sol = hq.solve(prob, solver, **kw)
    assert bool((sol.retcodes == int(hq.ReturnCode.Success)).all())
    assert sol.stats.switches is not None
    # Measured: switches (0, 1), njac (0, 1), steps (507, 68).
    assert int(sol.stats.switches[0]) == 0 and int(sol.stats.switches[1]) >= 1
    assert int(sol.stats.njac[0]) == 0 and int(sol.stats.njac[1]) > 0
    for b in range(2):
        one = hq.solve(base.remake(p=p[b]), solver, **kw)
        assert one.stats.switches is not None
        assert int(one.stats.switches) == int(sol.stats.switches[b])
        assert int(one.stats.naccept) == int(sol.stats.naccept[b])
        torch.testing.assert_close(sol.y[b], one.y, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- Robertson


def test_autovern7_qbdf_robertson() -> None:
    integrate = pytest.importorskip("scipy.integrate")
    ref = integrate.solve_ivp(
        _rob_np,
        (0.0, 1e5),
        [1.0, 0.0, 0.0],
        method="Radau",
        rtol=1e-12,
        atol=1e-14,
        jac=_rob_jac_np,
    ).y[:, -1]
    prob = hq.library.robertson()
    sol = hq.solve(prob, hq.AutoVern7(hq.QBDF()), rtol=1e-8, atol=1e-12, saveat=[1e5])
    assert sol.retcode == hq.ReturnCode.Success
    assert sol.stats.switches is not None and int(sol.stats.switches) >= 1
    rel = np.abs(sol.y[-1].numpy() - ref) / np.abs(ref)
    # Measured: 1.3e-7 (QBDF alone: 1.1e-7).
    assert rel.max() < 1e-6


# --------------------------------------------------------------------------- dense output


def test_saveat_across_a_switch_into_the_bdf() -> None:
    """The first switch (Tsit5 → QNDF at t ≈ 0.02), saveat points on both sides."""
    integrate = pytest.importorskip("scipy.integrate")
    ts = np.linspace(0.001, 0.06, 30)
    ref = integrate.solve_ivp(
        _vdp_np, (0.0, 0.06), [2.0, 0.0], "Radau", ts, rtol=1e-13, atol=1e-14, jac=_vdp_jac_np
    ).y.T
    prob = hq.library.van_der_pol(tspan=(0.0, 0.06))
    sat = torch.tensor(ts, dtype=F64)
    sol = hq.solve(prob, hq.AutoTsit5(hq.QNDF()), rtol=1e-6, atol=1e-8, saveat=sat, dense=True)
    assert sol.stats.switches is not None and int(sol.stats.switches) == 1
    err = np.abs(sol.y.numpy() - ref) / (np.abs(ref) + 1e-3)
    # Measured: 4.8e-6.
    assert err.max() < 1e-4
    torch.testing.assert_close(sol(sat), sol.y, rtol=0.0, atol=0.0)


def test_saveat_across_switches_out_of_and_back_into_the_bdf() -> None:
    """From a point on the slow arc (t = 805), starting on QNDF: out at the jump, back in."""
    integrate = pytest.importorskip("scipy.integrate")
    kw: dict[str, Any] = {"method": "Radau", "rtol": 1e-13, "atol": 1e-14, "jac": _vdp_jac_np}
    y805 = integrate.solve_ivp(_vdp_np, (0.0, 805.0), [2.0, 0.0], **kw).y[:, -1]
    ts = np.linspace(805.5, 808.0, 101)
    ref = integrate.solve_ivp(_vdp_np, (805.0, 808.0), y805, t_eval=ts, **kw).y.T
    prob = hq.library.van_der_pol(tspan=(805.0, 808.0), y0=(float(y805[0]), float(y805[1])))
    sat = torch.tensor(ts, dtype=F64)
    solver = hq.AutoTsit5(hq.QNDF(), stiffalgfirst=True)
    sol = hq.solve(prob, solver, rtol=1e-8, atol=1e-10, saveat=sat, dense=True)
    assert sol.retcode == hq.ReturnCode.Success
    assert sol.stats.switches is not None and int(sol.stats.switches) == 2
    err = np.abs(sol.y.numpy() - ref) / (np.abs(ref) + 1e-3)
    # Measured: 1.2e-6 (QNDF alone: 2.9e-5; AutoTsit5(Rodas5P()): 9.7e-8).
    assert err.max() < 1e-5
    torch.testing.assert_close(sol(sat), sol.y, rtol=0.0, atol=0.0)


# --------------------------------------------------------------------------- errors


def test_unsupported_combinations_are_clear_errors() -> None:
    assert hq.AutoTsit5(hq.QNDF()).name == "AutoTsit5(QNDF())"
    assert hq.AutoVern7(hq.QBDF(max_order=3)).name == "AutoVern7(QBDF())"
    for bad in (hq.Tsit5(), hq.AutoTsit5(hq.QNDF()), "QNDF", hq.QNDF):
        with pytest.raises(TypeError, match=r"stiff_alg.*QNDF\(\), QBDF\(\)"):
            hq.AutoTsit5(bad)  # type: ignore[arg-type]
    # A mass matrix: the explicit method cannot take one, whatever stiff_alg is.
    dae = hq.library.robertson(dae=True, tspan=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"cannot take a mass_matrix.*QNDF"):
        hq.solve(dae, hq.AutoTsit5(hq.QNDF()))
    # A sparse linear solver needs a sparsity pattern (Robertson has none).
    with pytest.raises(ValueError, match="linsolve"):
        hq.solve(hq.library.robertson(), hq.AutoTsit5(hq.QNDF(linsolve="sparse")))
