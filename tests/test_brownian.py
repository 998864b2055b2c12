"""BrownianTree and BrownianInterval: law of the increments and Lévy areas, exactness,
seeding, repeatability, cost, errors.

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

from hybrideq.engines.torch._brownian import BrownianInterval, BrownianTree, _split_values

BATCH = 4000
CLASSES = [BrownianTree, BrownianInterval]
Brownian = BrownianTree | BrownianInterval


def _random_intervals(n: int, t0: float, t1: float, seed: int) -> list[tuple[float, float]]:
    """``n`` disjoint intervals with random float endpoints, left to right."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(t0, t1, 2 * n))
    return [(float(times[2 * k]), float(times[2 * k + 1])) for k in range(n)]


def _corr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(np.corrcoef(x.cpu().numpy().ravel(), y.cpu().numpy().ravel())[0, 1])


def _levy_identity(
    left: tuple[torch.Tensor, torch.Tensor],
    right: tuple[torch.Tensor, torch.Tensor],
    h1: float,
    h2: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ΔW, H)`` of a union from its two parts: ΔW = ΔW1 + ΔW2,
    h H = h1 H1 + h2 H2 + (h2 ΔW1 − h1 ΔW2)/2."""
    (w1, a1), (w2, a2) = left, right
    return w1 + w2, (h1 * a1 + h2 * a2 + 0.5 * (h2 * w1 - h1 * w2)) / (h1 + h2)


# ---------------------------------------------------------------------------- both classes


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("levy_area", [False, True])
def test_increments_are_gaussian_with_variance_h(cls: type[Brownian], levy_area: bool) -> None:
    bm = cls(0.3, 2.1, (BATCH,), seed=11, levy_area=levy_area)
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


@pytest.mark.parametrize("cls", CLASSES)
def test_batch_entries_are_independent_paths(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (BATCH, 3), seed=5)
    dw = torch.cat([bm(a, b) / math.sqrt(b - a) for a, b in _random_intervals(4, 0.0, 1.0, 2)])
    n = dw.shape[0]
    assert abs(_corr(dw[:, 0], dw[:, 1])) < 4.0 / math.sqrt(n)  # across Brownian dimensions
    assert abs(_corr(dw[:, 1], dw[:, 2])) < 4.0 / math.sqrt(n)
    assert abs(_corr(dw[:-1, 0], dw[1:, 0])) < 4.0 / math.sqrt(n)  # across neighbouring samples


@pytest.mark.parametrize("cls", CLASSES)
def test_additivity_and_point_values(cls: type[Brownian]) -> None:
    bm = cls(-1.0, 3.0, (7, 2), seed=3)
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


@pytest.mark.parametrize("cls", CLASSES)
def test_repeated_queries_after_eviction_are_identical(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (5,), seed=2, cache_size=2)
    first = bm(0.123, 0.456)
    for a, b in _random_intervals(10, 0.0, 1.0, 3):  # evicts everything
        bm(a, b)
    assert torch.equal(bm(0.123, 0.456), first)


@pytest.mark.parametrize("cls", CLASSES)
def test_seed_reproducibility(cls: type[Brownian]) -> None:
    a = cls(0.0, 2.0, (4, 3), seed=123)(0.3, 1.7)
    b = cls(0.0, 2.0, (4, 3), seed=123)(0.3, 1.7)
    c = cls(0.0, 2.0, (4, 3), seed=124)(0.3, 1.7)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a != c).all()


def test_the_two_classes_draw_different_paths() -> None:
    """Same seed, different node keys: the classes are not accidentally correlated."""
    a = BrownianTree(0.0, 1.0, (BATCH,), seed=7)(0.0, 0.5)
    b = BrownianInterval(0.0, 1.0, (BATCH,), seed=7)(0.0, 0.5)
    assert abs(_corr(a, b)) < 4.0 / math.sqrt(BATCH)


@pytest.mark.parametrize("cls", CLASSES)
def test_float32(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (BATCH,), dtype=torch.float32, seed=1, levy_area=True)
    dw, h = bm.increment(0.2, 0.7, levy=True)
    assert dw.dtype == h.dtype == torch.float32
    assert stats.kstest((dw / math.sqrt(0.5)).numpy(), "norm").pvalue > 1e-3
    torch.testing.assert_close(bm(0.2, 0.45) + bm(0.45, 0.7), dw, rtol=0, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", CLASSES)
def test_cuda(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (BATCH,), device="cuda", seed=1, levy_area=True)
    dw, h = bm.increment(0.1, 0.6, levy=True)
    assert dw.device.type == "cuda" and h.device.type == "cuda"
    assert stats.kstest((dw / math.sqrt(0.5)).cpu().numpy(), "norm").pvalue > 1e-3
    again = cls(0.0, 1.0, (BATCH,), device="cuda", seed=1, levy_area=True)
    assert torch.equal(again(0.1, 0.6), dw)
    torch.testing.assert_close(again(0.35, 0.6) + again(0.1, 0.35), dw, rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------- Lévy area


@pytest.mark.parametrize("cls", CLASSES)
def test_levy_area_law(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (BATCH,), seed=21, levy_area=True)
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


@pytest.mark.parametrize("cls", CLASSES)
def test_levy_area_split_identity_and_covariance(cls: type[Brownian]) -> None:
    """For [a, c] split at b: ΔW_ac = ΔW_ab + ΔW_bc and
    h_ac H_ac = h_ab H_ab + h_bc H_bc + (h_bc ΔW_ab − h_ab ΔW_bc)/2.

    (From U = ∫_a^c (W_s − W_a) ds = h (ΔW/2 + H) and U_ac = U_ab + U_bc + h_bc ΔW_ab.)
    The identity implies Cov(ΔW_ab, H_ac) = h_ab h_bc / (2 h_ac), checked statistically.
    """
    bm = cls(0.0, 1.0, (BATCH,), seed=8, levy_area=True)
    a, b, c = 0.1372, 0.5, 0.8531
    w_ac, h_ac = bm.increment(a, c, levy=True)
    w_ab, h_ab = bm.increment(a, b, levy=True)
    w_bc, h_bc = bm.increment(b, c, levy=True)
    hab, hbc, hac = b - a, c - b, c - a
    w_sum, h_sum = _levy_identity((w_ab, h_ab), (w_bc, h_bc), hab, hbc)
    torch.testing.assert_close(w_sum, w_ac, rtol=0, atol=1e-13)
    torch.testing.assert_close(h_sum, h_ac, rtol=0, atol=1e-13)
    cov = float((w_ab * h_ac).mean())
    expected = hab * hbc / (2.0 * hac)
    se = math.sqrt(hab * hac / 12.0 + expected**2) / math.sqrt(BATCH)
    assert abs(cov - expected) < 4.0 * se


@pytest.mark.parametrize("cls", CLASSES)
def test_levy_area_is_the_area_of_the_returned_path(cls: type[Brownian]) -> None:
    """H of [a, c] from Foster's definition, by the trapezoid rule on the path's own values.

    On each grid cell the trapezoid rule misses exactly δ·H_cell, so the quadrature error
    has variance δ²/(12 h) against Var H = h/12: with 200 cells the two agree to ~0.5%.
    """
    bm = cls(0.0, 1.0, (500,), seed=4, levy_area=True)
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


@pytest.mark.parametrize("fraction", [0.5, 0.13, 0.77, 0.999])
@pytest.mark.parametrize("levy_area", [False, True])
def test_general_split_formulas_reproduce_the_joint_law(fraction: float, levy_area: bool) -> None:
    """Split a parent drawn from its law at an arbitrary point: the two children must be
    independent with ΔWi ~ N(0, hi), Hi ~ N(0, hi/12), and satisfy the identities exactly."""
    n, h = 20000, 0.7
    h1 = fraction * h
    h2 = h - h1
    gen = torch.Generator().manual_seed(int(fraction * 1000) + levy_area)
    parent = torch.randn((2, n), generator=gen, dtype=torch.float64)
    w, hh = math.sqrt(h) * parent[0], math.sqrt(h / 12.0) * parent[1]
    z = torch.randn((2, n) if levy_area else (n,), generator=gen, dtype=torch.float64)
    (w1, a1), (w2, a2) = _split_values(w, hh if levy_area else None, h1, h2, z)
    torch.testing.assert_close(w1 + w2, w, rtol=0, atol=1e-14)
    standardised = [w1 / math.sqrt(h1), w2 / math.sqrt(h2)]
    if levy_area:
        assert a1 is not None and a2 is not None
        _, h_sum = _levy_identity((w1, a1), (w2, a2), h1, h2)
        torch.testing.assert_close(h_sum, hh, rtol=0, atol=1e-13)
        standardised += [a1 / math.sqrt(h1 / 12.0), a2 / math.sqrt(h2 / 12.0)]
    else:
        assert a1 is None and a2 is None
    for x in standardised:
        assert stats.kstest(x.numpy(), "norm").pvalue > 1e-3
        assert abs(float(x.mean())) < 4.0 / math.sqrt(n)
        assert abs(float(x.var()) - 1.0) < 4.0 * math.sqrt(2.0 / n)
    for x, y in itertools.combinations(standardised, 2):
        assert abs(_corr(x, y)) < 4.0 / math.sqrt(n)


@pytest.mark.parametrize(("h1", "h2"), [(0.3, 0.1), (0.1, 0.3), (0.9, 1e-9), (1e-9, 0.9)])
def test_general_split_is_one_linear_map_whichever_child_is_shorter(h1: float, h2: float) -> None:
    """The shorter child is drawn directly and the longer one from the identities; both
    branches equal the module docstring's formulas for the left child."""
    gen = torch.Generator().manual_seed(0)
    w, hh = torch.randn((2, 8), generator=gen, dtype=torch.float64)
    z = torch.randn((2, 8), generator=gen, dtype=torch.float64)
    h, s = h1 + h2, h1**3 + h2**3
    q = math.sqrt(h1 * h2 / s)
    w1 = (h1 / h) * w + (6 * h1 * h2 / h**2) * hh + (math.sqrt(h1 * h2 * s) / h**2) * z[0]
    a1 = (h1 / h) ** 2 * hh - (h1**2 * q / (2 * h)) * z[0] + (h2 * q / (2 * math.sqrt(3))) * z[1]
    (x1, y1), (x2, y2) = _split_values(w, hh, h1, h2, z)
    assert y1 is not None and y2 is not None
    torch.testing.assert_close(x1, w1, rtol=0, atol=1e-14)
    torch.testing.assert_close(y1, a1, rtol=0, atol=1e-14)
    torch.testing.assert_close(x1 + x2, w, rtol=0, atol=1e-14)
    # the identity holds, and no entry blows up when one part is a sliver
    torch.testing.assert_close(
        _levy_identity((x1, y1), (x2, y2), h1, h2)[1], hh, rtol=0, atol=1e-13
    )
    assert float(y1.abs().max()) < 10 * math.sqrt(h1) and float(y2.abs().max()) < 10 * math.sqrt(h2)
    (b1, _), (b2, _) = _split_values(w, None, h1, h2, z[0])  # the bridge, both branches
    torch.testing.assert_close(b1, (h1 / h) * w + math.sqrt(h1 * h2 / h) * z[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(b1 + b2, w, rtol=0, atol=1e-14)


def test_general_split_at_the_midpoint_matches_the_dyadic_formulas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At h1 = h2 the general formulas reduce to BrownianTree's midpoint formulas."""
    bm = BrownianTree(0.0, 1.0, (6,), seed=3, levy_area=True)
    w, hh = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    z = torch.randn((2, 6), dtype=torch.float64)
    general = _split_values(w, hh, 0.0625, 0.0625, z)  # children of 1/8
    # BrownianTree's own split of a level-3 node (length 1/8), with the same normals
    monkeypatch.setattr(BrownianTree, "_normals", lambda self, seed: z)
    dyadic = bm._split(3, 0, (w, hh))
    for (x1, y1), (x2, y2) in zip(general, dyadic, strict=True):
        torch.testing.assert_close(x1, x2, rtol=0, atol=1e-14)
        assert y1 is not None and y2 is not None
        torch.testing.assert_close(y1, y2, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------- BrownianTree


@pytest.mark.parametrize("levy_area", [False, True])
def test_tree_answers_do_not_depend_on_query_order_or_cache(levy_area: bool) -> None:
    queries = _queries()

    def answers(order: list[int], cache_size: int) -> dict[int, tuple[torch.Tensor, ...]]:
        bm = BrownianTree(0.0, 1.0, (3, 2), seed=9, levy_area=levy_area, cache_size=cache_size)
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


def _sequential_cost(n: int, levy_area: bool = False) -> int:
    bm = BrownianTree(0.0, 1.0, (2,), seed=0, levy_area=levy_area)
    for i in range(n):
        bm(i / n, (i + 1) / n)
    return bm.n_evaluations


def test_tree_sequential_queries_cost_linear_node_evaluations() -> None:
    small, large = _sequential_cost(100), _sequential_cost(400)
    # each query splits at most one root-to-leaf path (≤ ~55 levels for float times) …
    assert small <= 60 * 100 and large <= 60 * 400, (small, large)
    # … so four times the queries cost four times the splits, not 4·log or 16 times
    assert large / small < 4.4, (small, large)


def _adaptive_pattern(bm: Brownian, dt: float = 0.03, growth: float = 1.1) -> list[int]:
    """An adaptive solver's queries: each step is attempted, rejected, and retried smaller.

    Returns the node generations of each step (attempt + retry)."""
    t, costs = 0.0, []
    while t < bm.t1:
        before = bm.n_evaluations
        bm.increment(t, min(t + dt, bm.t1), levy=bm.levy_area)  # attempt
        t_next = min(t + dt / 3, bm.t1)
        bm.increment(t, t_next, levy=bm.levy_area)  # rejected: retry a smaller step
        t, dt = t_next, dt * growth
        costs.append(bm.n_evaluations - before)
    return costs


def test_tree_adaptive_pattern_with_rejected_steps_is_cheap() -> None:
    bm = BrownianTree(0.0, 1.0, (2,), seed=0, levy_area=True)
    costs = _adaptive_pattern(bm)
    assert len(costs) > 20
    assert max(costs) <= 2 * 60, costs
    before = bm.n_evaluations
    bm.increment(0.5, 0.6, levy=True)
    bm.increment(0.5, 0.6, levy=True)  # the same query again: in the tree and cached
    bm(0.5, 0.6)
    assert bm.n_evaluations - before <= 2 * 60


def test_tree_tiny_cache_still_costs_one_path_per_query() -> None:
    bm = BrownianTree(0.0, 1.0, (2,), seed=0, cache_size=1)
    for i in range(50):
        bm(i / 50, (i + 1) / 50)
    assert bm.n_evaluations <= 2 * 60 * 50


# ---------------------------------------------------------------------------- BrownianInterval


@pytest.mark.parametrize("levy_area", [False, True])
@pytest.mark.parametrize("cache_size", [256, 3, 1])
def test_interval_repeated_queries_are_identical_in_any_order(
    levy_area: bool, cache_size: int
) -> None:
    """After a first pass, every query repeated in any order (and interleaved with new
    queries, also after evictions) returns the identical tensor."""
    queries = _queries()
    bm = BrownianInterval(0.0, 1.0, (3, 2), seed=9, levy_area=levy_area, cache_size=cache_size)

    def ask(a: float, b: float) -> tuple[torch.Tensor, ...]:
        return bm.increment(a, b, levy=True) if levy_area else (bm(a, b),)

    first = [ask(a, b) for a, b in queries]
    order = list(range(len(queries)))
    random.Random(0).shuffle(order)
    new_times = _random_intervals(len(order), 0.0, 1.0, seed=5)
    for k, (a, b) in zip(order, new_times, strict=True):
        again = ask(*queries[k])
        for x, y in zip(first[k], again, strict=True):
            assert torch.equal(x, y), (queries[k], cache_size)
        ask(a, b)  # refines the tree and evicts
    for k in order[::-1]:
        for x, y in zip(first[k], ask(*queries[k]), strict=True):
            assert torch.equal(x, y), (queries[k], cache_size)


def test_interval_reproducible_for_the_same_query_sequence() -> None:
    queries = _queries()

    def run(seed: int, qs: list[tuple[float, float]], cache_size: int = 256) -> list:
        bm = BrownianInterval(0.0, 1.0, (4,), seed=seed, levy_area=True, cache_size=cache_size)
        return [bm.increment(a, b, levy=True) for a, b in qs]

    reference = run(3, queries)
    for cache_size in (256, 1):  # the cache never changes a value
        for (w1, h1), (w2, h2) in zip(reference, run(3, queries, cache_size), strict=True):
            assert torch.equal(w1, w2) and torch.equal(h1, h2)
    other = run(4, queries)
    assert not torch.equal(reference[0][0], other[0][0])


def test_interval_path_depends_on_the_query_sequence() -> None:
    """The paper's trade-off: new times queried in another order build another tree, so
    another (equally valid) path. BrownianTree is the order-independent alternative."""
    a = BrownianInterval(0.0, 1.0, (BATCH,), seed=1)
    b = BrownianInterval(0.0, 1.0, (BATCH,), seed=1)
    wa = a(0.0, 0.5)
    b(0.0, 0.3)  # b's root is split at 0.3 first, a's at 0.5
    wb = b(0.0, 0.5)
    assert not torch.equal(wa, wb)
    for w in (wa, wb):  # both exact samples of N(0, 0.5)
        assert stats.kstest((w / math.sqrt(0.5)).numpy(), "norm").pvalue > 1e-3
    assert torch.equal(a(0.0, 0.5), wa) and torch.equal(b(0.0, 0.5), wb)


@pytest.mark.parametrize("levy_area", [False, True])
def test_interval_backward_pass_is_consistent_with_the_forward_pass(levy_area: bool) -> None:
    """An adjoint's pattern: forward steps on a grid, then the steps reversed and halved at
    new times. The halves add up to the forward answers, which are themselves unchanged."""
    rng = np.random.default_rng(7)
    times = [0.0, *np.sort(rng.uniform(0.0, 1.0, 199)).tolist(), 1.0]
    steps = list(itertools.pairwise(times))
    bm = BrownianInterval(0.0, 1.0, (BATCH,), seed=12, levy_area=levy_area, cache_size=16)

    def ask(a: float, b: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        if levy_area:
            return bm.increment(a, b, levy=True)
        return bm(a, b), None

    forward = [ask(a, b) for a, b in steps]
    before = bm.n_evaluations
    halves = []
    for a, b in steps[::-1]:
        m = a + 0.37 * (b - a)
        right = ask(m, b)
        halves.append((ask(a, m), right))
    backward_cost = (bm.n_evaluations - before) / (2 * len(steps))
    assert backward_cost < 10, backward_cost  # not O(number of steps) per query
    halves.reverse()
    zs = []
    for (a, b), (w, area), (left, right) in zip(steps, forward, halves, strict=True):
        m = a + 0.37 * (b - a)
        if levy_area:
            assert area is not None and left[1] is not None and right[1] is not None
            w_sum, h_sum = _levy_identity((left[0], left[1]), (right[0], right[1]), m - a, b - m)
            torch.testing.assert_close(h_sum, area, rtol=0, atol=1e-12)
        else:
            w_sum = left[0] + right[0]
        torch.testing.assert_close(w_sum, w, rtol=0, atol=1e-13)
        zs.append(left[0] / math.sqrt(m - a))
    # the forward answers are unchanged by the backward pass
    for k in (0, len(steps) // 2, len(steps) - 1):
        assert torch.equal(ask(*steps[k])[0], forward[k][0])
    # the new half-steps are exact samples too
    z = torch.cat(zs[::20])
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3


def _sequential_times(n: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    times = [0.0, *np.sort(rng.uniform(0.0, 1.0, n - 1)).tolist(), 1.0]
    return list(itertools.pairwise(times))


@pytest.mark.parametrize("levy_area", [False, True])
def test_interval_sequential_queries_cost_amortised_o1(levy_area: bool) -> None:
    bm = BrownianInterval(0.0, 1.0, (2,), seed=0, levy_area=levy_area)
    steps = _sequential_times(1000, seed=1)
    for a, b in steps:
        bm.increment(a, b, levy=levy_area)
    per_query = bm.n_evaluations / len(steps)
    assert per_query < 10, per_query  # measured ~2.6
    # the tree stays small: a few nodes per query time
    assert bm.n_nodes < 10 * len(steps)


def test_interval_adaptive_pattern_with_rejected_steps_is_o1_per_step() -> None:
    # (1e-3, 1.0): accumulated step ends t + dt/3 + dt/3 + dt/3 land an ulp away from the
    # earlier attempts' ends t + dt, which are split off as slivers, not by bisection
    for dt, growth in [(0.03, 1.1), (1e-4, 1.01), (1e-3, 1.0)]:
        bm = BrownianInterval(0.0, 1.0, (2,), seed=0, levy_area=True)
        costs = _adaptive_pattern(bm, dt, growth)
        assert len(costs) > 20
        # two queries per step; measured ~3.5 on average, the same late as early
        half = len(costs) // 2
        assert np.mean(costs[:half]) < 10 and np.mean(costs[half:]) < 10, costs
        # a step crossing a long-untouched boundary costs O(log), never O(steps so far)
        assert max(costs[1:]) <= 40, costs
    before = bm.n_evaluations
    bm.increment(0.5, 0.6, levy=True)
    bm.increment(0.5, 0.6, levy=True)  # the same query again: in the tree and cached
    bm(0.5, 0.6)
    assert bm.n_evaluations - before <= 20


def test_interval_is_much_cheaper_than_tree_for_sequential_queries() -> None:
    steps = _sequential_times(300, seed=2)
    costs = {}
    for cls in CLASSES:
        bm = cls(0.0, 1.0, (2,), seed=0, levy_area=True)
        for a, b in steps:
            bm.increment(a, b, levy=True)
        costs[cls.__name__] = bm.n_evaluations / len(steps)
    # measured ~2.6 against ~45 node generations per query
    assert costs["BrownianInterval"] * 8 < costs["BrownianTree"], costs


def test_interval_tiny_cache_stays_logarithmic() -> None:
    """With cache_size=1 every value is regenerated from the root's nearest cached ancestor;
    the tree is kept shallow, so that costs O(log) per query, not O(number of nodes)."""
    bm = BrownianInterval(0.0, 1.0, (2,), seed=0, cache_size=1)
    steps = _sequential_times(400, seed=3)
    for a, b in steps:
        bm(a, b)
    before = bm.n_evaluations
    for a, b in steps[::-1]:
        bm(a, b)
    assert (bm.n_evaluations - before) / len(steps) < 60


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", CLASSES)
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
def test_constructor_errors(cls: type[Brownian], kwargs: dict, match: str) -> None:
    args = {"t0": 0.0, "t1": 1.0, "shape": (3,)} | kwargs
    with pytest.raises(ValueError, match=match):
        cls(args.pop("t0"), args.pop("t1"), args.pop("shape"), **args)


@pytest.mark.parametrize("cls", CLASSES)
def test_query_errors(cls: type[Brownian]) -> None:
    bm = cls(0.0, 1.0, (3,))
    name = cls.__name__
    with pytest.raises(ValueError, match=r"need ta ≤ tb.*-W\(tb, ta\)"):
        bm(0.5, 0.2)
    with pytest.raises(ValueError, match=rf"tb=1.5 lies outside the span \[t0, t1\].*{name}"):
        bm(0.2, 1.5)
    with pytest.raises(ValueError, match=r"ta=-0.1 lies outside"):
        bm(-0.1, 0.5)
    with pytest.raises(ValueError, match=rf"{name}\(\.\.\., levy_area=True\)"):
        bm.increment(0.1, 0.2, levy=True)
    with pytest.raises(ValueError, match="scalar time"):
        bm(torch.tensor([0.1, 0.2]), 0.5)
    with pytest.raises(ValueError, match="real number"):
        bm("0.1", 0.5)
    # 0-d tensors and numpy scalars are accepted as times
    assert torch.equal(bm(torch.tensor(0.25), np.float64(0.5)), bm(0.25, 0.5))
    assert name in repr(bm)
