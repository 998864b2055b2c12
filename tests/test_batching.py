"""Batches: per-sample stepping, spans, save times, dense output, shapes, dtypes, NumPy.

The batch rule: a 1-D ``y0`` is one problem; when ``y0.ndim >= 2`` its first dimension is
the batch. Every sample has its own ``t``, ``dt``, accept/reject decision, save times and
return code, so an easy sample in a batch with a hard one takes exactly the steps it takes
alone. Every value is checked against a closed-form solution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hybrideq as hq

F64 = torch.float64
F32 = torch.float32
ADAPTIVE = [hq.Tsit5(), hq.DP5(), hq.Vern7(), hq.BS3()]


def forced_decay(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``y' = −k y + a cos(w t)`` with per-row ``p = (k, a, w)``; rows are independent."""
    k, a, w = p[..., 0:1], p[..., 1:2], p[..., 2:3]
    tt = t[..., None] if t.ndim else t
    return -k * y + a * torch.cos(w * tt)


def forced_decay_exact(t: torch.Tensor, y0: float, k: float, a: float, w: float) -> torch.Tensor:
    """Closed form of :func:`forced_decay` from ``y(0) = y0``."""
    # Particular solution A cos(wt) + B sin(wt): wB = −kA + a, −wA = −kB.
    big_a = a * k / (k * k + w * w)
    big_b = a * w / (k * k + w * w)
    return big_a * torch.cos(w * t) + big_b * torch.sin(w * t) + (y0 - big_a) * torch.exp(-k * t)


def decay(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor:
    return -y


EASY = (1.0, 0.0, 0.0)  # y' = −y
HARD = (50.0, 50.0, 20.0)  # y' = −50 y + 50 cos(20 t): fast transient and fast forcing


# --------------------------------------------------------------------------- per-sample stepping


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: s.name)
@pytest.mark.parametrize("easy_index", [0, 1])
def test_easy_sample_steps_as_if_alone(solver: hq.AbstractSolver, easy_index: int) -> None:
    params = [HARD, HARD]
    params[easy_index] = EASY
    p = torch.tensor(params, dtype=F64)
    y0 = torch.tensor([[1.0], [2.0]], dtype=F64)
    y0[easy_index, 0] = 1.0
    ts = torch.linspace(0.0, 2.0, 11, dtype=F64)
    kw = {"saveat": ts, "rtol": 1e-7, "atol": 1e-9}
    both = hq.solve(hq.ODEProblem(forced_decay, y0, (0.0, 2.0), p), solver, **kw)
    alone = hq.solve(
        hq.ODEProblem(forced_decay, y0[easy_index], (0.0, 2.0), p[easy_index]), solver, **kw
    )
    alone_b1 = hq.solve(
        hq.ODEProblem(
            forced_decay,
            y0[easy_index : easy_index + 1],
            (0.0, 2.0),
            p[easy_index : easy_index + 1],
        ),
        solver,
        **kw,
    )
    hard_index = 1 - easy_index
    assert both.retcode == [hq.ReturnCode.Success] * 2
    st = both.stats
    for solo in (alone.stats, alone_b1.stats):
        assert int(st.naccept[easy_index]) == int(solo.naccept.reshape(-1)[0])
        assert int(st.nreject[easy_index]) == int(solo.nreject.reshape(-1)[0])
        assert int(st.nf[easy_index]) == int(solo.nf.reshape(-1)[0])
    # The hard sample really is harder: it takes many more steps.
    assert int(st.naccept[hard_index]) > 5 * int(st.naccept[easy_index])
    assert both.stats.ncalls >= int(st.nf.max())
    torch.testing.assert_close(both.y[easy_index], alone.y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(both.y[easy_index], alone_b1.y[0], rtol=1e-12, atol=1e-12)
    # Both samples are right (global error up to ~40·rtol for BS3 on the hard one).
    exact_easy = torch.exp(-ts)
    torch.testing.assert_close(both.y[easy_index, :, 0], exact_easy, rtol=0, atol=2e-5)
    exact_hard = forced_decay_exact(ts, float(y0[hard_index, 0]), *HARD)
    torch.testing.assert_close(both.y[hard_index, :, 0], exact_hard, rtol=0, atol=2e-5)


def test_decay_beside_lorenz_steps_as_if_alone() -> None:
    """A decaying sample beside a chaotic Lorenz sample (a sample-independent field)."""
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0

    def f(t: torch.Tensor, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        # Row flag p: 1 = Lorenz, 0 = y' = −y in every component.
        x, y, z = u[..., 0], u[..., 1], u[..., 2]
        lor = torch.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], -1)
        return torch.where(p[..., None] > 0, lor, -u)

    u0 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=F64)
    flags = torch.tensor([1.0, 0.0], dtype=F64)
    ts = torch.linspace(0.0, 3.0, 7, dtype=F64)
    kw = {"saveat": ts, "rtol": 1e-8, "atol": 1e-10}
    both = hq.solve(hq.ODEProblem(f, u0, (0.0, 3.0), flags), hq.Tsit5(), **kw)
    alone = hq.solve(hq.ODEProblem(f, u0[1:], (0.0, 3.0), flags[1:]), hq.Tsit5(), **kw)
    assert int(both.stats.naccept[1]) == int(alone.stats.naccept[0])
    assert int(both.stats.nreject[1]) == int(alone.stats.nreject[0])
    assert int(both.stats.nf[1]) == int(alone.stats.nf[0])
    assert int(both.stats.naccept[0]) > 5 * int(both.stats.naccept[1])
    torch.testing.assert_close(both.y[1], alone.y[0], rtol=1e-12, atol=1e-12)
    exact = u0[1][None, :] * torch.exp(-ts)[:, None]
    torch.testing.assert_close(both.y[1], exact, rtol=1e-6, atol=1e-9)


def test_f_gets_per_sample_times() -> None:
    """For a batch, ``f`` gets ``t`` of shape ``(batch,)``: every sample has its own time."""
    seen: list[tuple[int, ...]] = []

    def f(t: torch.Tensor, y: torch.Tensor, p: None) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return torch.cos(t)[:, None].expand_as(y)

    t0 = torch.tensor([0.0, 1.0, -2.0], dtype=F64)
    t1 = torch.tensor([1.0, 3.0, 0.5], dtype=F64)
    y0 = torch.zeros(3, 1, dtype=F64)
    sol = hq.solve(hq.ODEProblem(f, y0, (t0, t1)), hq.Tsit5(), rtol=1e-10, atol=1e-12, dense=True)
    assert set(seen) == {(3,)}
    assert sol.success
    # y(t1) = sin(t1) − sin(t0)
    torch.testing.assert_close(
        sol(t1[:, None])[:, 0, 0], torch.sin(t1) - torch.sin(t0), atol=1e-9, rtol=0
    )


# --------------------------------------------------------------------------- spans and save times


def test_per_sample_spans_including_a_backward_one() -> None:
    t0 = torch.tensor([0.0, 0.0, 0.5, 1.0], dtype=F64)
    t1 = torch.tensor([1.0, 2.0, 0.7, 0.0], dtype=F64)  # the last one runs backwards
    k = torch.tensor([1.0, 0.5, 3.0, 2.0], dtype=F64)
    y0 = torch.tensor([[1.0], [2.0], [-1.0], [0.5]], dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return -p[:, None] * y

    n_save = 6
    frac = torch.linspace(0.0, 1.0, n_save, dtype=F64)
    saveat = t0[:, None] + (t1 - t0)[:, None] * frac[None, :]  # (batch, T), per-sample
    sol = hq.solve(
        hq.ODEProblem(f, y0, (t0, t1), k), hq.DP5(), saveat=saveat, rtol=1e-9, atol=1e-12
    )
    assert sol.retcode == [hq.ReturnCode.Success] * 4
    assert sol.t.shape == (4, n_save)
    assert sol.y.shape == (4, n_save, 1)
    torch.testing.assert_close(sol.t, saveat, rtol=0, atol=0)
    exact = y0 * torch.exp(-k[:, None] * (saveat - t0[:, None]))
    torch.testing.assert_close(sol.y[..., 0], exact, rtol=1e-7, atol=1e-10)
    # Samples with longer spans take more steps than the shortest one.
    assert int(sol.stats.naccept[1]) > int(sol.stats.naccept[2])
    # Ends of the spans exactly.
    torch.testing.assert_close(sol.t[:, -1], t1, rtol=0, atol=0)
    assert torch.equal(sol.y[:, 0], y0)


def test_per_sample_spans_dense_output() -> None:
    t0 = torch.tensor([0.0, 1.0, 2.0], dtype=F64)
    t1 = torch.tensor([1.0, 3.0, 1.0], dtype=F64)
    y0 = torch.tensor([[1.0], [1.0], [1.0]], dtype=F64)
    sol = hq.solve(hq.ODEProblem(decay, y0, (t0, t1)), hq.Tsit5(), rtol=1e-10, atol=1e-12)
    assert sol.success
    frac = torch.tensor([0.0, 0.13, 0.5, 0.91, 1.0], dtype=F64)
    tq = t0[:, None] + (t1 - t0)[:, None] * frac[None, :]
    got = sol(tq)
    assert got.shape == (3, 5, 1)
    exact = torch.exp(-(tq - t0[:, None]))
    torch.testing.assert_close(got[..., 0], exact, rtol=1e-8, atol=1e-10)
    # A query outside one sample's span (t = 2.5 is in sample 1's span only) is an error.
    with pytest.raises(ValueError, match="outside"):
        sol(torch.tensor([2.5], dtype=F64))


def test_shared_saveat() -> None:
    y0 = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]], dtype=F64)
    ts = torch.tensor([0.0, 0.1, 0.35, 0.8, 1.0], dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(decay, y0, (0.0, 1.0)), hq.Tsit5(), saveat=ts, rtol=1e-9, atol=1e-12
    )
    assert sol.t.shape == (5,)
    torch.testing.assert_close(sol.t, ts, rtol=0, atol=0)
    assert sol.y.shape == (3, 5, 2)
    exact = y0[:, None, :] * torch.exp(-ts)[None, :, None]
    torch.testing.assert_close(sol.y, exact, rtol=1e-7, atol=1e-12)


def test_saveat_t0_is_exactly_y0() -> None:
    y0 = torch.tensor([[0.123456789], [-7.0], [1e-3]], dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(decay, y0, (0.0, 1.0)),
        hq.Tsit5(),
        saveat=torch.tensor([0.0, 0.5], dtype=F64),
    )
    assert torch.equal(sol.y[:, 0], y0)
    sol1 = hq.solve(
        hq.ODEProblem(decay, y0[0], (0.0, 1.0)), hq.Tsit5(), saveat=torch.tensor([0.0], dtype=F64)
    )
    assert torch.equal(sol1.y[0], y0[0])


def test_saveat_t1_is_the_last_step_value() -> None:
    y0 = torch.ones(2, 1, dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(decay, y0, (0.0, 1.5)),
        hq.Tsit5(),
        saveat=torch.tensor([1.5], dtype=F64),
        rtol=1e-9,
        atol=1e-12,
    )
    torch.testing.assert_close(
        sol.y[:, 0, 0], torch.full((2,), math.exp(-1.5), dtype=F64), rtol=1e-8, atol=0
    )


def test_plain_number_times_keep_float64() -> None:
    """saveat lists and sol(t) numbers are read in the state's dtype, never via float32."""
    prob = hq.ODEProblem(decay, torch.ones(1, dtype=F64), (0.0, 321.8122))
    sol = hq.solve(prob, hq.Tsit5(), saveat=[100.3, 321.8122])
    assert float(sol.t[-1]) == 321.8122 and float(sol.t[0]) == 100.3
    dense = hq.solve(prob, hq.Tsit5(), rtol=1e-10, atol=1e-12)
    assert float(dense(0.37)[0]) == pytest.approx(math.exp(-0.37), rel=1e-9)
    assert dense([0.37]).dtype == F64


@pytest.mark.parametrize("solver", ADAPTIVE, ids=lambda s: s.name)
def test_backward_span(solver: hq.AbstractSolver) -> None:
    """From ``t = 2`` back to ``t = 0``: ``y(t) = y(2) e^{2 − t}``."""
    ts = torch.linspace(2.0, 0.0, 9, dtype=F64)
    y0 = torch.tensor([1.0, -0.5], dtype=F64)
    sol = hq.solve(hq.ODEProblem(decay, y0, (2.0, 0.0)), solver, saveat=ts, rtol=1e-9, atol=1e-12)
    assert sol.retcode == hq.ReturnCode.Success
    exact = y0[None, :] * torch.exp(2.0 - ts)[:, None]
    torch.testing.assert_close(sol.y, exact, rtol=1e-6, atol=1e-12)
    dense = hq.solve(hq.ODEProblem(decay, y0, (2.0, 0.0)), solver, rtol=1e-9, atol=1e-12)
    assert bool((dense.t[1:] < dense.t[:-1]).all())  # steps go backwards
    torch.testing.assert_close(dense(ts), exact, rtol=1e-6, atol=1e-12)


def test_backward_span_fixed_steps() -> None:
    """``dt`` is a positive step size; its direction follows ``tspan`` (solve's docstring)."""
    sol = hq.solve(hq.ODEProblem(decay, torch.ones(1, dtype=F64), (1.0, 0.0)), hq.RK4(), dt=0.01)
    assert sol.retcode == hq.ReturnCode.Success
    assert int(sol.stats.naccept) == 100
    torch.testing.assert_close(sol.y[-1, 0], torch.tensor(math.e, dtype=F64), rtol=1e-9, atol=0)


def test_float32() -> None:
    y0 = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=F32)
    ts = torch.linspace(0.0, 2.0, 5, dtype=F32)
    sol = hq.solve(
        hq.ODEProblem(decay, y0, (0.0, 2.0)), hq.Tsit5(), saveat=ts, rtol=1e-5, atol=1e-7
    )
    assert sol.success
    assert sol.y.dtype == F32
    assert sol.t.dtype == F32
    exact = y0.double()[:, None, :] * torch.exp(-ts.double())[None, :, None]
    err = (sol.y.double() - exact).abs().max()
    assert err < 2e-5
    # Dense output in float32 too.
    d = hq.solve(hq.ODEProblem(decay, y0, (0.0, 2.0)), hq.Tsit5(), rtol=1e-5, atol=1e-7)
    got = d(torch.tensor([0.3, 1.7], dtype=F32))
    assert got.dtype == F32
    ex = y0.double()[:, None, :] * torch.exp(-torch.tensor([0.3, 1.7], dtype=F64))[None, :, None]
    assert (got.double() - ex).abs().max() < 2e-5


def test_dense_output_with_per_sample_query_times() -> None:
    y0 = torch.tensor([[1.0], [2.0], [3.0]], dtype=F64)
    k = torch.tensor([0.5, 1.0, 2.0], dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return -p[:, None] * y

    sol = hq.solve(hq.ODEProblem(f, y0, (0.0, 1.0), k), hq.Vern7(), rtol=1e-10, atol=1e-12)
    tq = torch.tensor(
        [[0.1, 0.2, 0.9, 1.0], [0.0, 0.33, 0.5, 0.75], [0.05, 0.6, 0.61, 0.99]], dtype=F64
    )
    got = sol(tq)
    assert got.shape == (3, 4, 1)
    exact = y0 * torch.exp(-k[:, None] * tq)
    torch.testing.assert_close(got[..., 0], exact, rtol=1e-9, atol=1e-12)
    # Shared query times (Q,) and a scalar.
    shared = sol(torch.tensor([0.25, 0.5], dtype=F64))
    assert shared.shape == (3, 2, 1)
    torch.testing.assert_close(
        shared[..., 0],
        y0 * torch.exp(-k[:, None] * torch.tensor([0.25, 0.5], dtype=F64)),
        rtol=1e-9,
        atol=0,
    )
    one = sol(0.5)
    assert one.shape == (3, 1)
    torch.testing.assert_close(one[:, 0], y0[:, 0] * torch.exp(-0.5 * k), rtol=1e-9, atol=0)


# --------------------------------------------------------------------------- shapes


def test_shapes_unbatched() -> None:
    y0 = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    ts = torch.linspace(0.0, 1.0, 4, dtype=F64)
    sol = hq.solve(hq.ODEProblem(decay, y0, (0.0, 1.0)), hq.Tsit5(), saveat=ts)
    assert sol.t.shape == (4,)
    assert sol.y.shape == (4, 3)
    assert sol.retcode == hq.ReturnCode.Success  # a single code, not a list
    assert sol.stats.naccept.ndim == 0
    with pytest.raises(ValueError, match="dense"):
        sol(0.5)  # no dense output is kept when saveat is given
    full = hq.solve(hq.ODEProblem(decay, y0, (0.0, 1.0)), hq.Tsit5(), rtol=1e-8, atol=1e-10)
    s = full.t.shape[0]
    assert full.t.shape == (s,) and full.y.shape == (s, 3)
    assert s == int(full.stats.naccept) + 1
    assert float(full.t[0]) == 0.0 and float(full.t[-1]) == 1.0
    torch.testing.assert_close(full.y, y0[None, :] * torch.exp(-full.t)[:, None], rtol=1e-7, atol=0)
    assert full(torch.tensor([0.2, 0.4], dtype=F64)).shape == (2, 3)
    assert full(0.5).shape == (3,)


def test_shapes_batched() -> None:
    y0 = torch.rand(5, 3, dtype=F64)
    ts = torch.linspace(0.0, 1.0, 4, dtype=F64)
    sol = hq.solve(hq.ODEProblem(decay, y0, (0.0, 1.0)), hq.Tsit5(), saveat=ts)
    assert sol.t.shape == (4,)
    assert sol.y.shape == (5, 4, 3)
    assert isinstance(sol.retcode, list) and len(sol.retcode) == 5
    assert sol.stats.naccept.shape == (5,)
    assert sol.retcodes.shape == (5,)


def test_shapes_batched_without_saveat_are_padded() -> None:
    k = torch.tensor([0.1, 5.0], dtype=F64)
    y0 = torch.ones(2, 1, dtype=F64)

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return -p[:, None] * y

    sol = hq.solve(hq.ODEProblem(f, y0, (0.0, 3.0), k), hq.Tsit5(), rtol=1e-8, atol=1e-10)
    assert sol.nsaved is not None
    steps = sol.stats.naccept + 1
    assert sol.nsaved.tolist() == steps.tolist()
    assert sol.t.shape == (2, int(steps.max()))
    assert sol.y.shape == (2, int(steps.max()), 1)
    for b in range(2):
        m = int(sol.nsaved[b])
        tb, yb = sol.t[b, :m], sol.y[b, :m, 0]
        assert float(tb[0]) == 0.0 and float(tb[-1]) == 3.0
        assert bool((tb[1:] > tb[:-1]).all())
        torch.testing.assert_close(yb, torch.exp(-k[b] * tb), rtol=1e-6, atol=1e-10)
        # Padding repeats the last value.
        assert bool((sol.t[b, m:] == tb[-1]).all())
        assert bool((sol.y[b, m:, 0] == yb[-1]).all())


def test_two_dimensional_state() -> None:
    """``y0`` of shape ``(batch, 2, 3)``: a batch of 4 problems with a (2, 3) state."""
    m = torch.tensor([[-1.0, 0.5], [0.0, -2.0]], dtype=F64)  # acts on the first state axis
    seen: list[tuple[int, ...]] = []

    def f(t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(y.shape))
        return torch.einsum("ij,bjk->bik", p, y)

    y0 = torch.rand(4, 2, 3, dtype=F64)
    ts = torch.linspace(0.0, 1.0, 5, dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(f, y0, (0.0, 1.0), m), hq.Tsit5(), saveat=ts, rtol=1e-9, atol=1e-12
    )
    assert set(seen) == {(4, 2, 3)}
    assert sol.t.shape == (5,)
    assert sol.y.shape == (4, 5, 2, 3)
    expm = torch.stack([torch.linalg.matrix_exp(m * t) for t in ts])  # (T, 2, 2)
    exact = torch.einsum("tij,bjk->btik", expm, y0)
    torch.testing.assert_close(sol.y, exact, rtol=1e-7, atol=1e-10)
    dense = hq.solve(hq.ODEProblem(f, y0, (0.0, 1.0), m), hq.Tsit5(), rtol=1e-9, atol=1e-12)
    got = dense(ts)
    assert got.shape == (4, 5, 2, 3)
    torch.testing.assert_close(got, exact, rtol=1e-7, atol=1e-10)
    assert dense(0.5).shape == (4, 2, 3)


# --------------------------------------------------------------------------- NumPy


def test_numpy_inputs() -> None:
    y0 = np.array([[1.0, 2.0], [0.5, -1.0]])
    y0_copy = y0.copy()
    k = np.array([[0.5], [2.0]])

    def f(t, y, p):  # NumPy operations throughout
        return -np.asarray(p) * np.asarray(y)

    ts = np.linspace(0.0, 1.0, 6)
    sol = hq.solve(
        hq.ODEProblem(f, y0, (0.0, 1.0), k), hq.Tsit5(), saveat=ts, rtol=1e-9, atol=1e-12
    )
    assert sol.success
    y = np.asarray(sol.y)
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.float64
    assert np.shares_memory(y, sol.y.numpy())
    assert y.ctypes.data == sol.y.data_ptr()
    exact = y0[:, None, :] * np.exp(-k[:, None, :] * ts[None, :, None])
    np.testing.assert_allclose(y, exact, rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(y0, y0_copy)  # the caller's array is not modified
    np.testing.assert_array_equal(np.asarray(sol.t), ts)


def test_numpy_function_unbatched() -> None:
    def f(t, y, p):
        return np.cos(np.asarray(t)) * np.asarray(y)

    sol = hq.solve(
        hq.ODEProblem(f, np.array([1.0]), (0.0, 3.0)),
        hq.DP5(),
        saveat=np.array([0.0, 1.0, 3.0]),
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(np.asarray(sol.y)[:, 0], np.exp(np.sin([0.0, 1.0, 3.0])), rtol=1e-7)


# --------------------------------------------------------------------------- step-size options


def test_per_sample_fixed_dt() -> None:
    y0 = torch.ones(2, 1, dtype=F64)
    sol = hq.solve(
        hq.ODEProblem(decay, y0, (0.0, 1.0)),
        hq.RK4(),
        dt=torch.tensor([0.1, 0.01], dtype=F64),
        saveat=torch.tensor([1.0], dtype=F64),
    )
    assert sol.stats.naccept.tolist() == [10, 100]
    # RK4 on y' = −y: y_N = R(−h)^N with R(z) = 1 + z + z²/2 + z³/6 + z⁴/24.
    for b, h in enumerate((0.1, 0.01)):
        r = 1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24
        assert float(sol.y[b, 0, 0]) == pytest.approx(r ** round(1 / h), rel=1e-13)


def test_dtmax_per_sample() -> None:
    y0 = torch.ones(2, 1, dtype=F64)
    dtmax = torch.tensor([0.01, 0.1], dtype=F64)
    sol = hq.solve(hq.ODEProblem(decay, y0, (0.0, 1.0)), hq.Tsit5(), dtmax=dtmax, heuristics=True)
    h = sol.heuristics
    assert h is not None
    assert bool((h.dt.abs() <= dtmax[None, :] * (1 + 1e-12)).all())
    # A smooth, slow problem: the step hits dtmax, so the steps are the span over dtmax.
    assert sol.stats.naccept.tolist() == [100, 10]
    torch.testing.assert_close(
        sol.y[:, -1, 0], torch.full((2,), math.exp(-1), dtype=F64), rtol=1e-6, atol=0
    )


def test_initial_dt_is_used() -> None:
    sol = hq.solve(
        hq.ODEProblem(decay, torch.ones(1, dtype=F64), (0.0, 1.0)),
        hq.Tsit5(),
        dt=1e-3,
        heuristics=True,
    )
    h = sol.heuristics
    assert h is not None
    assert float(h.dt[0, 0]) == 1e-3
    assert float(sol.y[-1, 0]) == pytest.approx(math.exp(-1), rel=1e-4)
