"""BrownianInterval: law of the increments and Lévy areas, exactness, seeding, cost, errors.

Statistics use fixed seeds; thresholds are a few standard errors (about 4σ), and the
Kolmogorov–Smirnov tests ask for p > 1e-3.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch
from scipy import stats

from hybrideq.engines.torch._brownian import BrownianInterval

BATCH = 4000


def _random_intervals(n: int, t0: float, t1: float, seed: int) -> list[tuple[float, float]]:
    """``n`` disjoint intervals with random float endpoints, left to right."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(t0, t1, 2 * n))
    return [(float(times[2 * k]), float(times[2 * k + 1])) for k in range(n)]


def _corr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(np.corrcoef(x.cpu().numpy().ravel(), y.cpu().numpy().ravel())[0, 1])


@pytest.mark.parametrize("levy_area", [False, True])
def test_increments_are_gaussian_with_variance_h(levy_area: bool) -> None:
    bm = BrownianInterval(0.3, 2.1, (BATCH,), seed=11, levy_area=levy_area)
    intervals = _random_intervals(5, 0.3, 2.1, seed=1)
    dws = [bm(a, b) for a, b in intervals]
    z = torch.cat([dw / math.sqrt(b - a) for dw, (a, b) in zip(dws, intervals, strict=True)])
    n = z.numel()
    p = stats.kstest(z.numpy(), "norm").pvalue
    assert p > 1e-3, p
    assert abs(float(z.mean())) < 4.0 / math.sqrt(n)
    assert abs(float(z.var()) - 1.0) < 4.0 * math.sqrt(2.0 / n)
    # disjoint increments are independent: pairwise sample correlations ~ N(0, 1/BATCH)
    for i in range(len(dws) - 1):
        assert abs(_corr(dws[i], dws[i + 1])) < 4.0 / math.sqrt(BATCH)


def test_batch_entries_are_independent_paths() -> None:
    bm = BrownianInterval(0.0, 1.0, (BATCH, 3), seed=5)
    dw = torch.cat([bm(a, b) / math.sqrt(b - a) for a, b in _random_intervals(4, 0.0, 1.0, 2)])
    n = dw.shape[0]
    assert abs(_corr(dw[:, 0], dw[:, 1])) < 4.0 / math.sqrt(n)  # across Brownian dimensions
    assert abs(_corr(dw[:, 1], dw[:, 2])) < 4.0 / math.sqrt(n)
    assert abs(_corr(dw[:-1, 0], dw[1:, 0])) < 4.0 / math.sqrt(n)  # across neighbouring samples


def test_additivity_and_point_values() -> None:
    bm = BrownianInterval(-1.0, 3.0, (7, 2), seed=3)
    a, b, c = -0.7321, 0.1234567, 2.99
    torch.testing.assert_close(bm(a, b) + bm(b, c), bm(a, c), rtol=0, atol=1e-13)
    torch.testing.assert_close(bm(b), bm(-1.0, b))  # W(t) = W(t) − W(t0)
    torch.testing.assert_close(bm(c) - bm(a), bm(a, c), rtol=0, atol=1e-13)
    assert torch.equal(bm(b, b), torch.zeros(7, 2, dtype=torch.float64))
    assert bm(3.0).shape == (7, 2)  # the end point t1 is reachable


def _queries() -> list[tuple[float, float]]:
    rng = random.Random(4)
    times = sorted(rng.uniform(0.0, 1.0) for _ in range(12))
    steps = list(itertools.pairwise(times))
    # overlapping and nested queries too, as an adaptive solver's rejected steps make them
    return [*steps, (0.0, 0.3), (0.0, 0.1), (0.1, 0.25), (0.05, 0.95), (0.5, 1.0)]


@pytest.mark.parametrize("levy_area", [False, True])
def test_answers_do_not_depend_on_query_order_or_cache(levy_area: bool) -> None:
    queries = _queries()

    def answers(order: list[int], cache_size: int) -> dict[int, tuple[torch.Tensor, ...]]:
        bm = BrownianInterval(0.0, 1.0, (3, 2), seed=9, levy_area=levy_area, cache_size=cache_size)
        out: dict[int, tuple[torch.Tensor, ...]] = {}
        for k in order:
            a, b = queries[k]
            res = bm.increment(a, b, levy=True) if levy_area else (bm(a, b),)
            out[k] = res
        return out

    forward = list(range(len(queries)))
    shuffled = forward.copy()
    random.Random(0).shuffle(shuffled)
    reference = answers(forward, 256)
    for order, cache_size in [
        (forward[::-1], 256),
        (shuffled, 256),
        (forward, 1),
        (forward[::-1], 1),
        (shuffled, 3),
    ]:
        got = answers(order, cache_size)
        for k in forward:
            for x, y in zip(reference[k], got[k], strict=True):
                assert torch.equal(x, y), (queries[k], order[:3], cache_size)


def test_repeated_queries_after_eviction_are_identical() -> None:
    bm = BrownianInterval(0.0, 1.0, (5,), seed=2, cache_size=2)
    first = bm(0.123, 0.456)
    for a, b in _random_intervals(10, 0.0, 1.0, 3):  # evicts everything
        bm(a, b)
    assert torch.equal(bm(0.123, 0.456), first)


def test_seed_reproducibility() -> None:
    a = BrownianInterval(0.0, 2.0, (4, 3), seed=123)(0.3, 1.7)
    b = BrownianInterval(0.0, 2.0, (4, 3), seed=123)(0.3, 1.7)
    c = BrownianInterval(0.0, 2.0, (4, 3), seed=124)(0.3, 1.7)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a != c).all()


def test_float32() -> None:
    bm = BrownianInterval(0.0, 1.0, (BATCH,), dtype=torch.float32, seed=1, levy_area=True)
    dw, h = bm.increment(0.2, 0.7, levy=True)
    assert dw.dtype == h.dtype == torch.float32
    assert stats.kstest((dw / math.sqrt(0.5)).numpy(), "norm").pvalue > 1e-3
    torch.testing.assert_close(bm(0.2, 0.45) + bm(0.45, 0.7), dw, rtol=0, atol=1e-5)


@pytest.mark.gpu
def test_cuda() -> None:
    bm = BrownianInterval(0.0, 1.0, (BATCH,), device="cuda", seed=1, levy_area=True)
    dw, h = bm.increment(0.1, 0.6, levy=True)
    assert dw.device.type == "cuda" and h.device.type == "cuda"
    assert stats.kstest((dw / math.sqrt(0.5)).cpu().numpy(), "norm").pvalue > 1e-3
    again = BrownianInterval(0.0, 1.0, (BATCH,), device="cuda", seed=1, levy_area=True)
    assert torch.equal(again(0.35, 0.6) + again(0.1, 0.35), again(0.1, 0.6))
    assert torch.equal(again(0.1, 0.6), dw)


# ---------------------------------------------------------------------------- Lévy area


def test_levy_area_law() -> None:
    bm = BrownianInterval(0.0, 1.0, (BATCH,), seed=21, levy_area=True)
    intervals = _random_intervals(5, 0.0, 1.0, seed=6)
    pairs = [bm.increment(a, b, levy=True) for a, b in intervals]
    zh = torch.cat(
        [h / math.sqrt((b - a) / 12.0) for (_, h), (a, b) in zip(pairs, intervals, strict=True)]
    )
    zw = torch.cat([w / math.sqrt(b - a) for (w, _), (a, b) in zip(pairs, intervals, strict=True)])
    n = zh.numel()
    assert stats.kstest(zh.numpy(), "norm").pvalue > 1e-3
    assert abs(float(zh.mean())) < 4.0 / math.sqrt(n)
    assert abs(float(zh.var()) - 1.0) < 4.0 * math.sqrt(2.0 / n)  # Var H = h/12
    assert abs(_corr(zh, zw)) < 4.0 / math.sqrt(n)  # H independent of ΔW
    assert abs(_corr(pairs[0][1], pairs[1][1])) < 4.0 / math.sqrt(BATCH)  # disjoint H


def test_levy_area_split_identity_and_covariance() -> None:
    """For [a, c] split at b: ΔW_ac = ΔW_ab + ΔW_bc and
    h_ac H_ac = h_ab H_ab + h_bc H_bc + (h_bc ΔW_ab − h_ab ΔW_bc)/2.

    (From U = ∫_a^c (W_s − W_a) ds = h (ΔW/2 + H) and U_ac = U_ab + U_bc + h_bc ΔW_ab.)
    The identity implies Cov(ΔW_ab, H_ac) = h_ab h_bc / (2 h_ac), checked statistically.
    """
    bm = BrownianInterval(0.0, 1.0, (BATCH,), seed=8, levy_area=True)
    a, b, c = 0.1372, 0.5, 0.8531
    w_ac, h_ac = bm.increment(a, c, levy=True)
    w_ab, h_ab = bm.increment(a, b, levy=True)
    w_bc, h_bc = bm.increment(b, c, levy=True)
    hab, hbc, hac = b - a, c - b, c - a
    torch.testing.assert_close(w_ab + w_bc, w_ac, rtol=0, atol=1e-13)
    rhs = (hab * h_ab + hbc * h_bc + 0.5 * (hbc * w_ab - hab * w_bc)) / hac
    torch.testing.assert_close(rhs, h_ac, rtol=0, atol=1e-13)
    cov = float((w_ab * h_ac).mean())
    expected = hab * hbc / (2.0 * hac)
    se = math.sqrt(hab * hac / 12.0 + expected**2) / math.sqrt(BATCH)
    assert abs(cov - expected) < 4.0 * se


def test_levy_area_is_the_area_of_the_returned_path() -> None:
    """H of [a, c] from Foster's definition, by the trapezoid rule on the path's own values.

    On each grid cell the trapezoid rule misses exactly δ·H_cell, so the quadrature error
    has variance δ²/(12 h) against Var H = h/12: with 200 cells the two agree to ~0.5%.
    """
    bm = BrownianInterval(0.0, 1.0, (500,), seed=4, levy_area=True)
    a, c = 0.21, 0.93
    s = torch.linspace(a, c, 201, dtype=torch.float64).tolist()
    w = torch.stack([bm(a, t) for t in s])  # W_s − W_a on the grid, (201, 500)
    dw = w[-1]
    h = c - a
    bridge = w - torch.tensor([(t - a) / h for t in s], dtype=torch.float64)[:, None] * dw
    h_trap = torch.trapezoid(bridge, torch.tensor(s, dtype=torch.float64), dim=0) / h
    _, h_exact = bm.increment(a, c, levy=True)
    assert torch.equal(dw, bm(a, c))
    rel = float((h_trap - h_exact).std() / h_exact.std())
    assert rel < 0.02, rel
    assert _corr(h_trap, h_exact) > 0.999


# ---------------------------------------------------------------------------- cost


def _sequential_cost(n: int, levy_area: bool = False) -> int:
    bm = BrownianInterval(0.0, 1.0, (2,), seed=0, levy_area=levy_area)
    for i in range(n):
        bm(i / n, (i + 1) / n)
    return bm.n_evaluations


def test_sequential_queries_cost_linear_node_evaluations() -> None:
    small, large = _sequential_cost(100), _sequential_cost(400)
    # each query splits at most one root-to-leaf path (≤ ~55 levels for float times) …
    assert small <= 60 * 100 and large <= 60 * 400, (small, large)
    # … so four times the queries cost four times the splits, not 4·log or 16 times
    assert large / small < 4.4, (small, large)


def test_adaptive_pattern_with_rejected_steps_is_cheap() -> None:
    bm = BrownianInterval(0.0, 1.0, (2,), seed=0, levy_area=True)
    t, dt, costs, last = 0.0, 0.03, [], (0.0, 0.0)
    while t < 1.0:
        before = bm.n_evaluations
        bm.increment(t, min(t + dt, 1.0), levy=True)  # attempt
        t_next = min(t + dt / 3, 1.0)
        bm.increment(t, t_next, levy=True)  # rejected: retry a smaller step
        last, t, dt = (t, t_next), t_next, dt * 1.1
        costs.append(bm.n_evaluations - before)
    assert len(costs) > 20
    assert max(costs) <= 2 * 60, costs
    before = bm.n_evaluations
    bm.increment(*last, levy=True)  # the last query again: in the tree and cached
    bm(*last)
    assert bm.n_evaluations == before


def test_tiny_cache_still_costs_one_path_per_query() -> None:
    bm = BrownianInterval(0.0, 1.0, (2,), seed=0, cache_size=1)
    for i in range(50):
        bm(i / 50, (i + 1) / 50)
    assert bm.n_evaluations <= 2 * 60 * 50


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t0": 1.0, "t1": 1.0}, "t0 < t1"),
        ({"t0": 0.0, "t1": float("nan")}, "t1 must be finite"),
        ({"shape": (2, -1)}, "shape must be a tuple of non-negative ints"),
        ({"shape": "ab"}, "shape must be"),
        ({"shape": (2.0,)}, "shape must be"),
        ({"dtype": torch.int64}, "dtype must be a floating"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"cache_size": 0}, "cache_size must be an int ≥ 1"),
    ],
)
def test_constructor_errors(kwargs: dict, match: str) -> None:
    args = {"t0": 0.0, "t1": 1.0, "shape": (3,)} | kwargs
    with pytest.raises(ValueError, match=match):
        BrownianInterval(args.pop("t0"), args.pop("t1"), args.pop("shape"), **args)


def test_query_errors() -> None:
    bm = BrownianInterval(0.0, 1.0, (3,))
    with pytest.raises(ValueError, match=r"need ta ≤ tb.*-W\(tb, ta\)"):
        bm(0.5, 0.2)
    with pytest.raises(ValueError, match=r"tb=1.5 lies outside the span \[t0, t1\]"):
        bm(0.2, 1.5)
    with pytest.raises(ValueError, match=r"ta=-0.1 lies outside"):
        bm(-0.1, 0.5)
    with pytest.raises(ValueError, match="levy_area=True"):
        bm.increment(0.1, 0.2, levy=True)
    with pytest.raises(ValueError, match="scalar time"):
        bm(torch.tensor([0.1, 0.2]), 0.5)
    with pytest.raises(ValueError, match="real number"):
        bm("0.1", 0.5)
    # 0-d tensors and numpy scalars are accepted as times
    assert torch.equal(bm(torch.tensor(0.25), np.float64(0.5)), bm(0.25, 0.5))
