"""Brownian motion for the SDE solvers: two exact, seeded samplers queried by increments.

The SDE adjoint integrates backwards in time on the *same* Brownian path as the forward
solve, querying it in reverse and at other times. Both classes here answer any increment
``W(tb) − W(ta)`` (and, optionally, the space-time Lévy area of ``[ta, tb]``) exactly, from
a fixed seed, without storing the path: node values live in an LRU cache and are regenerated
bit for bit from per-node seeds when evicted.

Reference: Kidger, Foster, Li, Lyons, "Efficient and Accurate Gradients for Neural SDEs",
NeurIPS 2021, arXiv 2105.13493, §4 and App. D (the *Brownian Interval*); compared against
the reference implementation ``google-research/torchsde``,
``torchsde/_brownian/brownian_interval.py`` (its ``_Interval`` split formulas and its
search from the last queried interval).

Which one to use
----------------
- :class:`BrownianInterval` (the paper's construction) — the default for solves. A binary
  tree of intervals split *at the queried times*; a search starts at the most recently used
  node, so sequential queries, also an adaptive solver's reject-and-retry pattern, cost
  amortised O(1) node generations (a handful, measured by
  :attr:`~BrownianInterval.n_evaluations`). For one object every answer is consistent with
  every other, and a repeated query returns the identical tensor, in any order and after
  cache evictions; the same seed and the same *sequence* of queries reproduce the same
  values. But the sample path depends on the order in which new times are first queried:
  two objects with one seed queried in different orders give different (equally valid)
  paths. The forward solve and its adjoint use *one* object, so they share one path.
- :class:`BrownianTree` — exact at every float time, order-independent: the same
  ``(seed, ta, tb)`` always gives the same value; ~log2 cost per query (about 46 node
  splits for a new non-dyadic float time, ~1–2.5 ms for small shapes on CPU). Use it when
  answers must not depend on the order of queries, e.g. comparing solvers on one path
  across separate solves (separate objects with one seed).

Construction of :class:`BrownianTree`
-------------------------------------
The root is ``[t0, t0 + L]``, ``L = 2^E`` the smallest power of two with ``L ≥ t1 − t0``,
and every node is split at its midpoint, drawing fresh normals from
``SeedSequence(entropy=seed, spawn_key=(level, index))``. Every float64 ``t`` makes
``t − t0`` a dyadic rational, so every query time is exactly a node boundary, at depth at
most the number of significant bits of ``(t − t0)/L`` (≤ 55 for ordinary times). A node's
values depend only on its position and the seed, so every answer is a fixed function of
``(seed, ta, tb)``. ``[ta, tb]`` is the union of at most two chains of maximal dyadic nodes,
built top-down from the deepest ancestor still cached.

Construction of :class:`BrownianInterval`
-----------------------------------------
The root is ``[t0, t1]``. A query ``[ta, tb]`` is located by walking up from the last node
returned until a node contains it, then down; a leaf that contains ``ta`` or ``tb`` in its
interior is split there. Splitting only there, a forward sweep would build a chain as deep
as the number of steps, and regenerating an evicted value (e.g. on the adjoint's backward
pass) would cost O(number of steps). To keep the tree shallow, a leaf ``[a, b]`` is split at
``s`` directly only if both parts are at least a quarter of it; otherwise it is first split
at its midpoint and the half containing ``s`` is treated the same way. (torchsde keeps its
tree shallow by pre-splitting at midpoints down to a length estimated from the observed
step sizes; this local rule does the same job without a heuristic.) The one exception is a
*sliver*, a shorter part at most 2⁻¹⁰ of the query's length (a query time a few ulps from
an existing boundary, as accumulated step times make): it is split off directly, at depth
cost one. Apart from slivers every node is at most ``log_{4/3}((t1 − t0)/length)`` levels
deep, so a value regenerated after eviction costs O(log) splits, and a forward sweep
followed by a backward sweep (the adjoint) costs O(1) per query amortised.
The tree *structure* (split times, per-node seeds: a few Python objects per node) is always
kept; only the value tensors are cached. A split node draws its normals from
``SeedSequence(entropy=seed, spawn_key=(0x42494E54, path))``, ``path`` the node's position
(binary digits 1 = right, after a leading 1).

Split formulas (Gaussian conditioning; checked in the tests). Foster's space-time Lévy area
of ``[a, a + h]`` is ``H = (1/h) ∫_a^{a+h} (W_s − W_a − (s − a)/h · ΔW) ds``, with
``H ~ N(0, h/12)`` independent of ``ΔW ~ N(0, h)``. Writing ``U = ∫(W_s − W_a) ds =
h(ΔW/2 + H)`` and adding ``U`` over ``[a, b]`` and ``[b, c]`` gives, for a parent of length
``h`` split into children of lengths ``h1 + h2 = h``,

    ``ΔW = ΔW1 + ΔW2``,    ``h H = h1 H1 + h2 H2 + (h2 ΔW1 − h1 ΔW2)/2``.

The four child quantities are independent normals before conditioning, so
``Cov(ΔW1, ΔW) = h1``, ``Cov(ΔW1, H) = h1 h2/(2h)``, ``Cov(H1, ΔW) = 0``,
``Cov(H1, H) = h1²/(12h)``, and conditioning on the parent's ``(ΔW, H)`` gives, with
``S = h1³ + h2³`` and ``Z1, Z2 ~ N(0, 1)``,

    ``ΔW1 = (h1/h) ΔW + (6 h1 h2/h²) H + (√(h1 h2 S)/h²) Z1``,
    ``H1  = (h1/h)² H − (h1²/(2h)) √(h1 h2/S) Z1 + (h2/(2√3)) √(h1 h2/S) Z2``,

i.e. conditional variances ``Var ΔW1 = h1 h2 S/h⁴``, ``Var H1 = h1 (h³ − h1³)/(12 h³)`` and
covariance ``−h1³ h2/(2h³)``; the right child follows from the two identities above. At the
midpoint (``h1 = h2 = h/2``, :class:`BrownianTree`) this is
``ΔW1 = ΔW/2 + (3/2) H + (√h/4) Z1``, ``H1 = H/4 − (√h/8) Z1 + (√h/(4√3)) Z2``.
Without Lévy area the Brownian bridge is enough:
``ΔW1 = (h1/h) ΔW + √(h1 h2/h) Z1`` (``ΔW/2 + (√h/2) Z1`` at the midpoint).
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from fractions import Fraction
from typing import Any, Literal, overload

import numpy as np
import torch
from torch import Tensor

__all__ = ["BrownianInterval", "BrownianPath", "BrownianTree"]

_SQRT3 = math.sqrt(3.0)
# Tag in the spawn keys of BrownianInterval nodes, so that they never coincide with the
# (level, index) keys of BrownianTree.
_INTERVAL_TAG = 0x42494E54
# BrownianInterval splits a leaf at a query time directly only if both parts are at least
# _MIN_FRACTION of the leaf, or the shorter part is a sliver: at most _SLIVER times the
# length of the query that asks for the split (module docstring).
_MIN_FRACTION = 0.25
_SLIVER = 2.0**-10

# A BrownianTree node is (level, index): [t0 + index·L/2^level, t0 + (index + 1)·L/2^level].
_Key = tuple[int, int]
# A node's values: (ΔW, H), with H None when Lévy area is not tracked.
_Value = tuple[Tensor, Tensor | None]


def _as_time(name: str, t: Any) -> float:
    """``t`` as a finite Python float, or a ValueError naming ``name``."""
    if isinstance(t, Tensor):
        if t.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar time, got a tensor of shape {tuple(t.shape)}; "
                "pass one float (per-sample query times are not supported)"
            )
        t = t.item()
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise ValueError(f"{name} must be a real number (float), got {type(t).__name__}")
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _node_seed(entropy: int, spawn_key: tuple[int, ...]) -> int:
    """A 64-bit torch seed for one node, derived from the root seed by ``SeedSequence``."""
    state = np.random.SeedSequence(entropy=entropy, spawn_key=spawn_key).generate_state(
        1, np.uint64
    )
    return int(state[0])


def _split_values(
    w: Tensor, hh: Tensor | None, h1: float, h2: float, z: Tensor
) -> tuple[_Value, _Value]:
    """Children of an interval of length ``h1 + h2`` split after ``h1``, given its ``(ΔW, H)``.

    ``z`` holds standard normals: of ``w``'s shape without Lévy area (``hh`` None), else
    ``(2, *w.shape)``. Exact conditional law (module docstring). The shorter child is drawn
    from its conditional law, the longer one follows from ``ΔW = ΔW1 + ΔW2`` and
    ``h H = h1 H1 + h2 H2 + (h2 ΔW1 − h1 ΔW2)/2``: dividing by the longer length keeps
    the rounding error of ``H`` small however unequal the parts. Both branches are the same
    linear map of ``(ΔW, H, z)`` (up to rounding), so the sample does not depend on which
    child is the shorter.
    """
    h = h1 + h2
    if hh is None:
        # Brownian bridge: ΔW1 | ΔW ~ N((h1/h) ΔW, h1 h2/h).
        noise = math.sqrt(h1 * h2 / h) * z
        if h1 <= h2:
            w1 = (h1 / h) * w + noise
            return (w1, None), (w - w1, None)
        w2 = (h2 / h) * w - noise
        return (w - w2, None), (w2, None)
    z1, z2 = z[0], z[1]
    s = h1**3 + h2**3
    q = math.sqrt(h1 * h2 / s)
    coupling = 6.0 * h1 * h2 / (h * h)  # E[ΔW1 | ΔW, H] = (h1/h) ΔW + coupling H
    noise_w = (math.sqrt(h1 * h2 * s) / (h * h)) * z1
    if h1 <= h2:
        w1 = (h1 / h) * w + coupling * hh + noise_w
        a1 = (h1 / h) ** 2 * hh - (h1 * h1 * q / (2.0 * h)) * z1 + (h2 * q / (2.0 * _SQRT3)) * z2
        w2 = w - w1
        a2 = (h * hh - h1 * a1 - 0.5 * (h2 * w1 - h1 * w2)) / h2
    else:
        # the mirror image: E[ΔW2 | ΔW, H] = (h2/h) ΔW − coupling H, E[H2 | ·] = (h2/h)² H
        w2 = (h2 / h) * w - coupling * hh - noise_w
        a2 = (h2 / h) ** 2 * hh - (h2 * h2 * q / (2.0 * h)) * z1 - (h1 * q / (2.0 * _SQRT3)) * z2
        w1 = w - w2
        a1 = (h * hh - h2 * a2 - 0.5 * (h2 * w1 - h1 * w2)) / h1
    return (w1, a1), (w2, a2)


class _BrownianBase:
    """Arguments, properties and the query front end shared by both samplers."""

    __slots__ = (
        "_cache_size",
        "_device",
        "_dtype",
        "_levy_area",
        "_n_evaluations",
        "_seed",
        "_shape",
        "_t0",
        "_t1",
    )

    _t0: float
    _t1: float
    _shape: tuple[int, ...]
    _dtype: torch.dtype
    _device: torch.device
    _seed: int
    _levy_area: bool
    _cache_size: int
    _n_evaluations: int

    def __init__(
        self,
        t0: float,
        t1: float,
        shape: tuple[int, ...] | torch.Size | int = (),
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
        levy_area: bool = False,
        cache_size: int = 256,
    ) -> None:
        t0f = _as_time("t0", t0)
        t1f = _as_time("t1", t1)
        if not t0f < t1f:
            raise ValueError(f"need t0 < t1, got t0={t0f}, t1={t1f}; swap or widen the span")
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (int(shape),)
        if not isinstance(shape, tuple | list | torch.Size) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise ValueError(
                f"shape must be a tuple of non-negative ints, e.g. (batch, m), got {shape!r}"
            )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(
                f"dtype must be a floating torch dtype (torch.float64 or torch.float32), got {dtype!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if (
            isinstance(cache_size, bool)
            or not isinstance(cache_size, numbers.Integral)
            or cache_size < 1
        ):
            raise ValueError(f"cache_size must be an int ≥ 1, got {cache_size!r}")

        self._t0, self._t1 = t0f, t1f
        self._shape = tuple(int(s) for s in shape)
        self._dtype = dtype
        self._device = torch.device(device)
        self._seed = int(seed)
        self._levy_area = bool(levy_area)
        self._cache_size = int(cache_size)
        self._n_evaluations = 0
        self._build()

    def _build(self) -> None:
        """Set up the subclass's tree (called once by ``__init__``, after validation)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ properties

    @property
    def t0(self) -> float:
        """Start of the span."""
        return self._t0

    @property
    def t1(self) -> float:
        """End of the span."""
        return self._t1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of each increment."""
        return self._shape

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the values."""
        return self._dtype

    @property
    def device(self) -> torch.device:
        """Device of the values."""
        return self._device

    @property
    def seed(self) -> int:
        """The root seed."""
        return self._seed

    @property
    def levy_area(self) -> bool:
        """Whether the space-time Lévy area is tracked."""
        return self._levy_area

    @property
    def cache_size(self) -> int:
        """Capacity of the LRU cache of node values."""
        return self._cache_size

    @property
    def n_evaluations(self) -> int:
        """Node splits computed so far (each draws fresh normals); a cost counter."""
        return self._n_evaluations

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(t0={self._t0}, t1={self._t1}, shape={self._shape}, "
            f"dtype={self._dtype}, device={str(self._device)!r}, seed={self._seed}, "
            f"levy_area={self._levy_area}, cache_size={self._cache_size})"
        )

    # ------------------------------------------------------------------ queries

    @overload
    def __call__(self, ta: float, tb: float | None = None) -> Tensor: ...

    @overload
    def __call__(self, ta: Tensor, tb: Tensor | float | None = None) -> Tensor: ...

    def __call__(self, ta: Any, tb: Any = None) -> Tensor:
        """``W(tb) − W(ta)``; with one argument ``W(ta) − W(t0)``."""
        if tb is None:
            return self.increment(self._t0, ta)
        return self.increment(ta, tb)

    @overload
    def increment(self, ta: Any, tb: Any, levy: Literal[False] = False) -> Tensor: ...

    @overload
    def increment(self, ta: Any, tb: Any, levy: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def increment(self, ta: Any, tb: Any, levy: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The increment ``W(tb) − W(ta)``, and with ``levy=True`` also its Lévy area.

        Args:
            ta: start time, ``t0 ≤ ta ≤ tb``.
            tb: end time, ``tb ≤ t1``.
            levy: also return ``H = (1/h) ∫_ta^tb (W_s − W_ta − (s − ta)/h ΔW) ds``,
                ``h = tb − ta`` (needs ``levy_area=True`` at construction).

        Returns:
            ``ΔW`` (a new tensor of :attr:`shape`), or ``(ΔW, H)``.
        """
        name = type(self).__name__
        a = _as_time("ta", ta)
        b = _as_time("tb", tb)
        if levy and not self._levy_area:
            raise ValueError(
                f"levy=True needs the Lévy area: construct {name}(..., levy_area=True)"
            )
        for arg, t in (("ta", a), ("tb", b)):
            if not self._t0 <= t <= self._t1:
                raise ValueError(
                    f"{arg}={t} lies outside the span [t0, t1] = [{self._t0}, {self._t1}]; "
                    f"query times inside it, or build the {name} on a wider span"
                )
        if a > b:
            raise ValueError(f"need ta ≤ tb, got ta={a}, tb={b}; for W(ta) − W(tb) use -W(tb, ta)")
        if a == b:
            zero = torch.zeros(self._shape, dtype=self._dtype, device=self._device)
            return (zero, zero.clone()) if levy else zero

        w: Tensor | None = None
        hh: Tensor | None = None
        h = 0.0
        for (w_j, h_j_area), h_j in self._pieces(a, b):
            if w is None:
                w = w_j.clone()
                hh = None if h_j_area is None else h_j_area.clone()
            else:
                if hh is not None and h_j_area is not None:
                    # h H = h_l H_l + h_r H_r + (h_r ΔW_l − h_l ΔW_r)/2   (module docstring)
                    hh = (h * hh + h_j * h_j_area + 0.5 * (h_j * w - h * w_j)) / (h + h_j)
                w = w + w_j
            h += h_j
        assert w is not None
        if levy:
            assert hh is not None
            return w, hh
        return w

    def _pieces(self, a: float, b: float) -> list[tuple[_Value, float]]:
        """Values and lengths of tree nodes whose union is ``[a, b]``, left to right."""
        raise NotImplementedError

    def _normals(self, seed: int) -> Tensor:
        """Standard normals for one node: ``(2, *shape)`` with Lévy area, else ``shape``."""
        generator = torch.Generator(device=self._device).manual_seed(seed)
        size = (2, *self._shape) if self._levy_area else self._shape
        return torch.randn(size, generator=generator, dtype=self._dtype, device=self._device)

    def _root_value(self, length: float, spawn_key: tuple[int, ...]) -> _Value:
        """``ΔW ~ N(0, length)`` and ``H ~ N(0, length/12)``, independent."""
        z = self._normals(_node_seed(self._seed, spawn_key))
        if self._levy_area:
            return math.sqrt(length) * z[0], math.sqrt(length / 12.0) * z[1]
        return math.sqrt(length) * z, None


class BrownianTree(_BrownianBase):
    """An exact, seeded, order-independent Brownian motion on ``[t0, t1]`` (dyadic tree).

    Exact at every float time, order-independent: the same ``(seed, ta, tb)`` always gives
    the same value; ~log2 cost per query (about 46 node splits for a new non-dyadic float
    time). Use it when answers must not depend on the order of queries, e.g. comparing
    solvers on one path across separate solves; for a single solve (and its adjoint)
    :class:`BrownianInterval` is much cheaper per query.

    Every entry of ``shape`` is an independent Brownian path (for a batch of SDEs,
    ``shape = (batch, m)``: each sample has its own ``m``-dimensional path). Increments are
    exact samples of the Brownian law for any ``t0 ≤ ta ≤ tb ≤ t1`` and consistent with each
    other (``W(a, b) + W(b, c) = W(a, c)`` to rounding). See the module docstring for the
    construction.

    Random numbers are drawn on ``device`` by a per-node ``torch.Generator``, so a CPU and a
    CUDA object with the same seed give different (each exact) paths.

    Args:
        t0: start of the time span.
        t1: end of the time span, ``t1 > t0``.
        shape: shape of ``W(t)``, e.g. ``(batch, m)``; ``()`` for one scalar path.
        dtype: a floating dtype (float64 by default; float32 works).
        device: where the values live and are drawn ("cpu", "cuda", a ``torch.device``).
        seed: non-negative integer; equal seeds give equal paths.
        levy_area: also track Foster's space-time Lévy area ``H`` (for
            ``increment(ta, tb, levy=True)``); it changes the sample drawn.
        cache_size: how many node values the LRU cache keeps. Each holds one or two tensors
            of ``shape``. Sequential queries stay cheap when it holds about four root-to-leaf
            paths (the default 256 does for ordinary float times); any size ≥ 1 gives the
            same values, only more slowly.

    Example:
        >>> bm = BrownianTree(0.0, 1.0, (3, 2), seed=1)
        >>> dW = bm(0.25, 0.5)  # W(0.5) − W(0.25), one value per entry
        >>> dW.shape
        torch.Size([3, 2])
        >>> torch.allclose(bm(0.0, 0.25) + dW, bm(0.5))  # bm(t) = W(t) − W(t0)
        True
        >>> other = BrownianTree(0.0, 1.0, (3, 2), seed=1)
        >>> _ = other(0.7, 0.9)  # other queries first: the answer does not change
        >>> torch.equal(other(0.25, 0.5), dW)
        True
        >>> bl = BrownianTree(0.0, 1.0, (4,), seed=2, levy_area=True)
        >>> dW, H = bl.increment(0.1, 0.3, levy=True)  # H ~ N(0, 0.2/12), independent of dW
        >>> dW.shape, H.shape
        (torch.Size([4]), torch.Size([4]))
    """

    __slots__ = ("_cache", "_exp", "_length", "_root", "_t0_exact")

    _t0_exact: Fraction
    _cache: OrderedDict[_Key, _Value]
    _exp: int
    _length: float
    _root: _Value

    def _build(self) -> None:
        self._t0_exact = Fraction(self._t0)
        self._cache = OrderedDict()

        # Root [t0, t0 + 2^E] with 2^E the smallest power of two ≥ t1 − t0 (exact rationals).
        span = Fraction(self._t1) - self._t0_exact
        exp = span.numerator.bit_length() - span.denominator.bit_length()
        while Fraction(2) ** exp < span:
            exp += 1
        while Fraction(2) ** (exp - 1) >= span:
            exp -= 1
        self._exp = exp
        self._length = math.ldexp(1.0, exp)
        self._root = self._root_value(self._length, ())

    # ------------------------------------------------------------------ tree

    def _pieces(self, a: float, b: float) -> list[tuple[_Value, float]]:
        memo: dict[_Key, _Value] = {}
        return [
            (self._value(level, index, memo), math.ldexp(self._length, -level))
            for level, index in self._decompose(a, b)
        ]

    def _position(self, t: float) -> tuple[int, int]:
        """``(t − t0)/L`` as ``numerator / 2^depth`` in lowest terms (exact)."""
        x = (Fraction(t) - self._t0_exact) / (Fraction(2) ** self._exp)
        return x.numerator, x.denominator.bit_length() - 1

    def _decompose(self, a: float, b: float) -> list[_Key]:
        """The maximal dyadic nodes whose union is ``[a, b]``, left to right."""
        na, da = self._position(a)
        nb, db = self._position(b)
        level = max(da, db)
        lo, hi = na << (level - da), nb << (level - db)  # [lo, hi) at the finest level
        left: list[_Key] = []
        right: list[_Key] = []
        while lo < hi:  # bottom-up segment-tree walk: O(level) steps
            if lo & 1:
                left.append((level, lo))
                lo += 1
            if hi & 1:
                hi -= 1
                right.append((level, hi))
            lo >>= 1
            hi >>= 1
            level -= 1
        return left + right[::-1]

    def _lookup(self, key: _Key, memo: dict[_Key, _Value]) -> _Value | None:
        value = memo.get(key)
        if value is None:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
        return value

    def _store(self, key: _Key, value: _Value, memo: dict[_Key, _Value]) -> None:
        memo[key] = value
        cache = self._cache
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _value(self, level: int, index: int, memo: dict[_Key, _Value]) -> _Value:
        """Values of node ``(level, index)``, split down from the deepest known ancestor.

        ``memo`` keeps this query's nodes, so one query costs O(depth) splits even when the
        cache is tiny.
        """
        if level == 0:
            return self._root
        found = self._lookup((level, index), memo)
        if found is not None:
            return found
        k = level
        value: _Value | None = None
        while k > 1:
            k -= 1
            value = self._lookup((k, index >> (level - k)), memo)
            if value is not None:
                break
        if value is None:
            k, value = 0, self._root
        while k < level:
            j = index >> (level - k)
            left, right = self._split(k, j, value)
            self._store((k + 1, 2 * j), left, memo)
            self._store((k + 1, 2 * j + 1), right, memo)
            k += 1
            value = right if (index >> (level - k)) & 1 else left
        return value

    def _split(self, level: int, index: int, value: _Value) -> tuple[_Value, _Value]:
        """Children of node ``(level, index)`` given its ``(ΔW, H)``, drawn from its seed."""
        self._n_evaluations += 1
        z = self._normals(_node_seed(self._seed, (level, index)))
        h = math.ldexp(self._length, -level)
        rh = math.sqrt(h)
        w, hh = value
        if hh is None:
            # Brownian bridge at the midpoint: ΔW1 | ΔW ~ N(ΔW/2, h/4).
            w1 = 0.5 * w + (0.5 * rh) * z
            return (w1, None), (w - w1, None)
        z1, z2 = z[0], z[1]
        # (ΔW1, H1) | (ΔW, H): mean (ΔW/2 + 3H/2, H/4), covariance h·[[1/16, −1/32], [−1/32, 7/192]]
        w1 = 0.5 * w + 1.5 * hh + (0.25 * rh) * z1
        h1 = 0.25 * hh - (0.125 * rh) * z1 + (rh / (4.0 * _SQRT3)) * z2
        w2 = w - w1
        # h H = (h/2)(H1 + H2) + (h/4)(ΔW1 − ΔW2)  ⇒  H2 = 2H − H1 − (ΔW1 − ΔW2)/2
        h2 = 2.0 * hh - h1 - 0.5 * (w1 - w2)
        return (w1, h1), (w2, h2)


class _Node:
    """One interval ``[start, end]`` of a :class:`BrownianInterval`'s tree (structure only)."""

    __slots__ = ("end", "left", "mid", "parent", "path", "right", "seed", "start")

    def __init__(self, start: float, end: float, parent: _Node | None, path: int) -> None:
        self.start = start
        self.end = end
        self.parent = parent
        self.path = path  # position: binary digits after a leading 1, 0 = left, 1 = right
        self.mid: float | None = None  # split time once split
        self.left: _Node | None = None
        self.right: _Node | None = None
        self.seed: int | None = None  # seed of this node's split normals, once drawn


class BrownianInterval(_BrownianBase):
    """The Brownian Interval (Kidger et al. 2021): exact, seeded, cheap sequential queries.

    A binary tree of intervals split at the queried times, with node values in an LRU cache
    and regenerated from per-node seeds when evicted; a search starts from the most recently
    used node, so sequential queries, also an adaptive solver's reject-and-retry pattern
    ``(0, 0.3), (0, 0.1), (0.1, 0.25), …``, cost amortised O(1) node generations (see
    :attr:`n_evaluations`). The module docstring describes the construction.

    Semantics:

    - Exact: every increment (and Lévy area) is an exact sample of the Brownian law.
    - Consistent: all answers of one object are additive with each other
      (``W(a, b) + W(b, c) = W(a, c)`` to rounding, and the Lévy areas likewise).
    - Repeatable: a query repeated later returns the identical tensor, whatever was queried
      in between and after any cache eviction.
    - Reproducible: the same seed and the same *sequence* of queries give the same values.
    - Order-dependent: the sample path depends on the order in which new times are first
      queried, so two objects with one seed queried in different orders may give different,
      equally valid, paths (the paper's trade-off for speed). :class:`BrownianTree` is the
      order-independent alternative. A forward solve and its adjoint share one object, so
      the backward pass sees the forward pass's path.

    Every entry of ``shape`` is an independent Brownian path (for a batch of SDEs,
    ``shape = (batch, m)``). Random numbers are drawn on ``device`` by a per-node
    ``torch.Generator``, so a CPU and a CUDA object with the same seed give different (each
    exact) paths.

    Args:
        t0: start of the time span.
        t1: end of the time span, ``t1 > t0``.
        shape: shape of ``W(t)``, e.g. ``(batch, m)``; ``()`` for one scalar path.
        dtype: a floating dtype (float64 by default; float32 works).
        device: where the values live and are drawn ("cpu", "cuda", a ``torch.device``).
        seed: non-negative integer; equal seeds and equal query sequences give equal paths.
        levy_area: also track Foster's space-time Lévy area ``H`` (for
            ``increment(ta, tb, levy=True)``); it changes the sample drawn.
        cache_size: how many node values the LRU cache keeps (each one or two tensors of
            ``shape``). Sequential queries need only a few; the default 256 also keeps a
            backward sweep over recent steps cheap. Any size ≥ 1 gives the same values,
            only more slowly. The tree structure (split times and seeds) is always kept.

    Example:
        >>> bm = BrownianInterval(0.0, 1.0, (3, 2), seed=1)
        >>> dW = bm(0.25, 0.5)  # W(0.5) − W(0.25), one value per entry
        >>> dW.shape
        torch.Size([3, 2])
        >>> torch.allclose(bm(0.0, 0.25) + dW, bm(0.5))  # bm(t) = W(t) − W(t0)
        True
        >>> _ = bm(0.1, 0.9)  # later queries never change an earlier answer
        >>> torch.equal(bm(0.25, 0.5), dW)
        True
        >>> again = BrownianInterval(0.0, 1.0, (3, 2), seed=1)  # same seed, same queries
        >>> torch.equal(again(0.25, 0.5), dW)
        True
        >>> bl = BrownianInterval(0.0, 1.0, (4,), seed=2, levy_area=True)
        >>> dW, H = bl.increment(0.1, 0.3, levy=True)  # H ~ N(0, 0.2/12), independent of dW
        >>> dW.shape, H.shape
        (torch.Size([4]), torch.Size([4]))
    """

    __slots__ = ("_cache", "_last", "_n_nodes", "_root", "_root_val")

    _cache: OrderedDict[_Node, _Value]
    _root: _Node
    _root_val: _Value
    _last: _Node
    _n_nodes: int

    def _build(self) -> None:
        self._cache = OrderedDict()
        self._root = _Node(self._t0, self._t1, None, 1)
        self._root_val = self._root_value(self._t1 - self._t0, (_INTERVAL_TAG,))
        self._last = self._root
        self._n_nodes = 1

    @property
    def n_nodes(self) -> int:
        """Intervals in the tree so far (structure only; values are cached separately)."""
        return self._n_nodes

    # ------------------------------------------------------------------ tree structure

    def _pieces(self, a: float, b: float) -> list[tuple[_Value, float]]:
        nodes = self._locate(a, b)
        self._last = nodes[-1]
        memo: dict[_Node, _Value] = {}
        return [(self._value(node, memo), node.end - node.start) for node in nodes]

    def _locate(self, a: float, b: float) -> list[_Node]:
        """The maximal tree nodes inside ``[a, b]`` (splitting leaves at ``a``, ``b``), in order.

        The search walks up from the last node returned, so nearby queries are found in
        amortised O(1) steps.
        """
        span = b - a
        node = self._last
        while a < node.start or b > node.end:
            assert node.parent is not None  # the root spans [t0, t1]
            node = node.parent
        out: list[_Node] = []
        pending = [(node, a, b)]
        while pending:
            node, a, b = pending.pop()
            while not (a == node.start and b == node.end):
                if node.mid is None:
                    self._split_leaf(node, a if a > node.start else b, span)
                mid, left, right = node.mid, node.left, node.right
                assert mid is not None and left is not None and right is not None
                if b <= mid:
                    node = left
                elif a >= mid:
                    node = right
                else:  # straddles the split: the left part first, the right part later
                    pending.append((right, mid, b))
                    node, b = left, mid
            out.append(node)
        return out

    def _split_leaf(self, node: _Node, s: float, span: float) -> None:
        """Split leaf ``node`` so that ``s`` (strictly inside it) becomes a node boundary.

        Split at ``s`` directly if both parts are at least ``_MIN_FRACTION`` of the leaf, or
        if the shorter part is a sliver (at most ``_SLIVER`` times ``span``, the length of
        the query); otherwise at the midpoint first, then the half containing ``s`` in the
        same way. Balanced splits bound the depth by ``log_{4/3}`` of the length ratio; the
        sliver exception keeps a query time a few ulps from an existing boundary (e.g. a
        step end accumulated as ``t + dt/3 + dt/3 + dt/3`` next to an earlier ``t + dt``)
        from costing ``log2(dt/ulp)`` midpoint splits.
        """
        while True:
            a, b = node.start, node.end
            m = a + 0.5 * (b - a)
            shorter = min(s - a, b - s)
            if shorter >= _MIN_FRACTION * (b - a) or shorter <= _SLIVER * span or not a < m < b:
                self._make_children(node, s)
                return
            left, right = self._make_children(node, m)
            if s == m:
                return
            node = left if s < m else right

    def _make_children(self, node: _Node, t: float) -> tuple[_Node, _Node]:
        node.mid = t
        node.left = _Node(node.start, t, node, 2 * node.path)
        node.right = _Node(t, node.end, node, 2 * node.path + 1)
        self._n_nodes += 2
        return node.left, node.right

    # ------------------------------------------------------------------ values

    def _lookup(self, node: _Node, memo: dict[_Node, _Value]) -> _Value | None:
        if node is self._root:
            return self._root_val
        value = memo.get(node)
        if value is None:
            value = self._cache.get(node)
            if value is not None:
                self._cache.move_to_end(node)
        return value

    def _store(self, node: _Node, value: _Value, memo: dict[_Node, _Value]) -> None:
        memo[node] = value
        cache = self._cache
        cache[node] = value
        cache.move_to_end(node)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _value(self, node: _Node, memo: dict[_Node, _Value]) -> _Value:
        """Values of ``node``, split down from its deepest ancestor with known values."""
        chain: list[_Node] = []
        value = self._lookup(node, memo)
        while value is None:
            chain.append(node)
            assert node.parent is not None
            node = node.parent
            value = self._lookup(node, memo)
        for child in reversed(chain):
            parent = child.parent
            assert parent is not None and parent.left is not None and parent.right is not None
            left, right = self._split(parent, value)
            self._store(parent.left, left, memo)
            self._store(parent.right, right, memo)
            value = left if child is parent.left else right
        return value

    def _split(self, node: _Node, value: _Value) -> tuple[_Value, _Value]:
        """Children values of split ``node`` given its ``(ΔW, H)``, drawn from its seed."""
        assert node.mid is not None
        self._n_evaluations += 1
        if node.seed is None:
            node.seed = _node_seed(self._seed, (_INTERVAL_TAG, node.path))
        z = self._normals(node.seed)
        w, hh = value
        return _split_values(w, hh, node.mid - node.start, node.end - node.mid, z)


class BrownianPath:
    """The Brownian paths of a batch of SDEs: what ``sol.W`` is and what ``brownian=`` takes.

    Sample ``b`` of a batch has its own path ``W_b`` with ``m`` independent components on its
    own span ``[t0_b, t1_b]``. The paths are stored in one of two ways, chosen by
    :func:`hybrideq.solve` (the values are exact either way):

    - *joint*: one :class:`BrownianInterval` (or a user's :class:`BrownianTree`) of shape
      ``(batch, m)``, queried once per step when all samples step together (fixed steps,
      ``stepping="joint"``);
    - *per sample*: one :class:`BrownianInterval` of shape ``(m,)`` per sample, with seeds
      spawned from the root seed (``numpy.random.SeedSequence(seed).spawn``), for
      per-sample adaptive steps, so that a sample's path does not depend on the others'
      step times.

    Calling it gives ``W(t) − W(t0)``: ``path(t)`` with a scalar or a ``(batch,)`` tensor
    ``t`` returns ``(batch, m)`` (``(m,)`` for an unbatched problem); ``path(ta, tb)`` the
    increments between two times.

    Args:
        t0: start of each sample's span: a number or a ``(batch,)`` tensor.
        t1: end of each sample's span.
        batch: number of samples.
        m: Brownian components per sample.
        seed: root seed (non-negative int).
        levy_area: also track the space-time Lévy area (the SRI/SRA methods need it).
        per_sample: one sampler per sample (see above) instead of one joint sampler.
        batched: whether calls return the batch dimension (``False`` for a 1-D problem).
        dtype: floating dtype of the values.
        device: where the values are drawn.
        samplers: wrap existing samplers instead of creating new ones: one with shape
            ``(batch, m)`` (joint) or a list of ``batch`` samplers of shape ``(m,)``.

    Example:
        >>> import torch, hybrideq as hq
        >>> W = hq.BrownianPath(0.0, 1.0, batch=3, m=2, seed=0)
        >>> W(0.5).shape
        torch.Size([3, 2])
        >>> torch.allclose(W(0.0, 0.5) + W(0.5, 1.0), W(1.0))
        True
    """

    def __init__(
        self,
        t0: float | Tensor,
        t1: float | Tensor,
        batch: int,
        m: int,
        *,
        seed: int = 0,
        levy_area: bool = False,
        per_sample: bool = False,
        batched: bool = True,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        samplers: _BrownianBase | list[_BrownianBase] | None = None,
    ) -> None:
        t0t = torch.as_tensor(t0, dtype=torch.float64).reshape(-1).expand(batch)
        t1t = torch.as_tensor(t1, dtype=torch.float64).reshape(-1).expand(batch)
        self.t0_list: list[float] = t0t.tolist()
        self.t1_list: list[float] = t1t.tolist()
        self.batch, self.m = int(batch), int(m)
        self.seed = int(seed)
        self.batched = batched
        self.dtype, self.device = dtype, torch.device(device)
        if samplers is not None:
            self.joint: _BrownianBase | None = None
            self.rows: list[_BrownianBase] | None = None
            if isinstance(samplers, list):
                self.rows = samplers
            else:
                self.joint = samplers
            self.levy_area = bool(
                samplers[0].levy_area if isinstance(samplers, list) else samplers.levy_area
            )
            return
        self.levy_area = bool(levy_area)
        if per_sample or len(set(self.t0_list)) > 1 or len(set(self.t1_list)) > 1:
            seeds = np.random.SeedSequence(self.seed).spawn(self.batch)
            self.rows = [
                BrownianInterval(
                    a,
                    b,
                    (self.m,),
                    dtype=dtype,
                    device=device,
                    seed=int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)),
                    levy_area=levy_area,
                )
                for a, b, s in zip(self.t0_list, self.t1_list, seeds, strict=True)
            ]
            self.joint = None
        else:
            self.joint = BrownianInterval(
                self.t0_list[0],
                self.t1_list[0],
                (self.batch, self.m),
                dtype=dtype,
                device=device,
                seed=self.seed,
                levy_area=levy_area,
            )
            self.rows = None

    @property
    def per_sample(self) -> bool:
        """Whether each sample has its own sampler."""
        return self.rows is not None

    def __repr__(self) -> str:
        kind = "per_sample" if self.per_sample else "joint"
        return (
            f"BrownianPath(batch={self.batch}, m={self.m}, seed={self.seed}, {kind}, "
            f"levy_area={self.levy_area})"
        )

    def increments(
        self, ta: Tensor, tb: Tensor, rows: Tensor | None = None, levy: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """``(ΔW, H)`` over ``[ta_b, tb_b]`` for every sample, ``(batch, m)`` each.

        Rows not in ``rows`` (a boolean ``(batch,)`` mask), or with ``ta_b == tb_b``, get
        zeros. ``H`` is ``None`` unless ``levy``.
        """
        zeros = torch.zeros(self.batch, self.m, dtype=self.dtype, device=self.device)
        act = ta != tb
        if rows is not None:
            act = act & rows
        if self.joint is not None:
            if not bool(act.any()):
                return zeros, (zeros.clone() if levy else None)
            a_act, b_act = ta[act], tb[act]
            if bool((a_act == a_act[0]).all()) and bool((b_act == b_act[0]).all()):
                # One interval for every active sample (fixed or joint steps): one query.
                out = self.joint.increment(float(a_act[0]), float(b_act[0]), levy=levy)  # type: ignore[call-overload]
                dw1, hh1 = (out[0], out[1]) if levy else (out, None)
                if bool(act.all()):
                    return dw1, hh1
                keep = act.to(device=self.device)[:, None]
                return (
                    torch.where(keep, dw1, zeros),
                    None if hh1 is None else torch.where(keep, hh1, zeros),
                )
            pairs = torch.stack([ta, tb], 1)[act].tolist()
            idx_all = act.nonzero().squeeze(1).tolist()
            groups: dict[tuple[float, float], list[int]] = {}
            for i, (a, b) in zip(idx_all, pairs, strict=True):
                groups.setdefault((a, b), []).append(i)
            dw = zeros
            hh = zeros.clone() if levy else None
            for (a, b), idx in groups.items():
                out = self.joint.increment(a, b, levy=levy)  # type: ignore[call-overload]
                ix = torch.tensor(idx, device=self.device)
                if levy:
                    dw[ix] = out[0][ix]
                    assert hh is not None
                    hh[ix] = out[1][ix]
                else:
                    dw[ix] = out[ix]
            return dw, hh
        active = act.nonzero().squeeze(1).tolist()
        if not active:
            return zeros, (zeros.clone() if levy else None)
        a_list = ta.tolist()
        b_list = tb.tolist()
        assert self.rows is not None
        ws: list[Tensor] = []
        hs: list[Tensor] = []
        for i in active:
            out = self.rows[i].increment(a_list[i], b_list[i], levy=levy)  # type: ignore[call-overload]
            if levy:
                ws.append(out[0])
                hs.append(out[1])
            else:
                ws.append(out)
        if len(active) == self.batch:
            return torch.stack(ws), (torch.stack(hs) if levy else None)
        ix = torch.tensor(active, device=self.device)
        dw = zeros.index_copy(0, ix, torch.stack(ws))
        return dw, (zeros.index_copy(0, ix, torch.stack(hs)) if levy else None)

    def __call__(self, ta: Any, tb: Any = None) -> Tensor:
        """``W(ta) − W(t0)`` (one argument) or ``W(tb) − W(ta)``, per sample.

        Times are scalars (shared) or ``(batch,)`` tensors (per sample), inside each
        sample's span. Returns ``(batch, m)``, or ``(m,)`` for an unbatched problem.
        """

        def times(x: Any, name: str) -> Tensor:
            tt = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()
            if tt.numel() == 1:
                tt = tt.expand(self.batch)
            if tt.numel() != self.batch:
                raise ValueError(
                    f"{name} must be a scalar or have one time per sample ({self.batch}), "
                    f"got {tt.numel()} values"
                )
            return tt

        if tb is None:
            a = torch.tensor(self.t0_list, dtype=torch.float64)
            b = times(ta, "t")
        else:
            a, b = times(ta, "ta"), times(tb, "tb")
        for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            lo, hi = self.t0_list[i], self.t1_list[i]
            for v in (x, y):
                if not lo <= v <= hi:
                    raise ValueError(
                        f"time {v} lies outside sample {i}'s span [{lo}, {hi}] of this path"
                    )
        sign = torch.where(b >= a, 1.0, -1.0).to(self.dtype).to(self.device)
        lo_t = torch.minimum(a, b)
        hi_t = torch.maximum(a, b)
        dw, _ = self.increments(lo_t, hi_t)
        out = dw * sign[:, None]
        return out if self.batched else out[0]
