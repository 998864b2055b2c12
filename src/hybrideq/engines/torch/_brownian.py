"""Brownian motion for the SDE solvers: an exact, seeded, order-independent Brownian Interval.

The SDE adjoint integrates backwards in time on the *same* Brownian path as the forward
solve, querying it in reverse and at other times. :class:`BrownianInterval` answers any
increment ``W(tb) − W(ta)`` (and, optionally, the space-time Lévy area of ``[ta, tb]``)
exactly, from a fixed seed, in O(1) memory per cached node, without storing the path.

Construction (after Kidger, Foster, Li, Lyons, "Efficient and Accurate Gradients for Neural
SDEs", NeurIPS 2021, arXiv 2105.13493, §4 and App. D: the *Brownian Interval*; compared
against the reference implementation ``google-research/torchsde``,
``torchsde/_brownian/brownian_interval.py``):

- The path lives on a binary tree of intervals whose root is ``[t0, t0 + L]``, ``L = 2^E``
  the smallest power of two with ``L ≥ t1 − t0``. Each node carries ``(ΔW, H)`` of its
  interval; a node's two children come from its own values and fresh normals drawn from a
  per-node seed, ``SeedSequence(entropy=seed, spawn_key=(level, index))``.
- **Exact and order-independent.** The paper's Brownian Interval splits a leaf at each new
  query time, so the tree (and the sample drawn) depends on the order of the queries. Here
  every node is split at its midpoint instead. Every float64 ``t`` makes ``t − t0`` a dyadic
  rational, so every query time is exactly a node boundary, at depth at most the number of
  significant bits of ``(t − t0)/L`` (≤ 55 for ordinary times). A node's values depend only
  on its position and the seed, so every answer is a fixed function of ``(seed, ta, tb)``:
  identical in any query order and after any cache eviction (values are regenerated from
  the seeds, bit for bit).
- **Cheap sequential queries.** ``[ta, tb]`` is the union of at most two chains of maximal
  dyadic nodes; their values are built top-down from the deepest ancestor still in an LRU
  cache. Consecutive queries of a solver (also a rejected step followed by a smaller one)
  share most ancestors, so each costs a bounded number of node splits, independent of how
  many queries came before (:attr:`BrownianInterval.n_evaluations` counts them).

Split formulas (Gaussian conditioning; checked in the tests). Foster's space-time Lévy area
of ``[a, a + h]`` is ``H = (1/h) ∫_a^{a+h} (W_s − W_a − (s − a)/h · ΔW) ds``, with
``H ~ N(0, h/12)`` independent of ``ΔW ~ N(0, h)``. Writing ``U = ∫(W_s − W_a) ds =
h(ΔW/2 + H)`` and adding ``U`` over ``[a, b]`` and ``[b, c]`` gives, for a parent of length
``h`` split into children of lengths ``h1 + h2 = h``,

    ``ΔW = ΔW1 + ΔW2``,    ``h H = h1 H1 + h2 H2 + (h2 ΔW1 − h1 ΔW2)/2``.

The four child quantities are independent normals before conditioning; conditioning them on
the parent's ``(ΔW, H)`` at the midpoint (``h1 = h2 = h/2``) gives, with ``Z1, Z2 ~ N(0, 1)``,

    ``ΔW1 = ΔW/2 + (3/2) H + (√h/4) Z1``,
    ``H1  = H/4 − (√h/8) Z1 + (√h/(4√3)) Z2``,

and the right child from the two identities above (torchsde's ``_Interval`` formulas at
``left_diff = right_diff = h/2``). Without Lévy area the Brownian bridge is enough:
``ΔW1 = ΔW/2 + (√h/2) Z1``.
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

__all__ = ["BrownianInterval"]

_SQRT3 = math.sqrt(3.0)

# A node is (level, index): the interval [t0 + index·L/2^level, t0 + (index + 1)·L/2^level].
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


class BrownianInterval:
    """An exact, seeded Brownian motion on ``[t0, t1]`` queried by increments.

    Every entry of ``shape`` is an independent Brownian path (for a batch of SDEs,
    ``shape = (batch, m)``: each sample has its own ``m``-dimensional path). Increments are
    exact samples of the Brownian law for any ``t0 ≤ ta ≤ tb ≤ t1``, consistent with each
    other (``W(a, b) + W(b, c) = W(a, c)`` to rounding), and a fixed function of
    ``(seed, ta, tb)``: the same in any query order and after cache evictions. See the module
    docstring for the construction (Kidger et al., NeurIPS 2021, arXiv 2105.13493).

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
        >>> bm = BrownianInterval(0.0, 1.0, (3, 2), seed=1)
        >>> dW = bm(0.25, 0.5)  # W(0.5) − W(0.25), one value per entry
        >>> dW.shape
        torch.Size([3, 2])
        >>> torch.allclose(bm(0.0, 0.25) + dW, bm(0.5))  # bm(t) = W(t) − W(t0)
        True
        >>> torch.equal(BrownianInterval(0.0, 1.0, (3, 2), seed=1)(0.25, 0.5), dW)
        True
        >>> bl = BrownianInterval(0.0, 1.0, (4,), seed=2, levy_area=True)
        >>> dW, H = bl.increment(0.1, 0.3, levy=True)  # H ~ N(0, 0.2/12), independent of dW
        >>> dW.shape, H.shape
        (torch.Size([4]), torch.Size([4]))
    """

    __slots__ = (
        "_cache",
        "_cache_size",
        "_device",
        "_dtype",
        "_exp",
        "_length",
        "_levy_area",
        "_n_evaluations",
        "_root",
        "_seed",
        "_shape",
        "_t0",
        "_t0_exact",
        "_t1",
    )

    _t0: float
    _t1: float
    _t0_exact: Fraction
    _shape: tuple[int, ...]
    _dtype: torch.dtype
    _device: torch.device
    _seed: int
    _levy_area: bool
    _cache_size: int
    _cache: OrderedDict[_Key, _Value]
    _n_evaluations: int
    _exp: int
    _length: float
    _root: _Value

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
        self._t0_exact = Fraction(t0f)
        self._shape = tuple(int(s) for s in shape)
        self._dtype = dtype
        self._device = torch.device(device)
        self._seed = int(seed)
        self._levy_area = bool(levy_area)
        self._cache_size = int(cache_size)
        self._cache = OrderedDict()
        self._n_evaluations = 0

        # Root [t0, t0 + 2^E] with 2^E the smallest power of two ≥ t1 − t0 (exact rationals).
        span = Fraction(t1f) - self._t0_exact
        exp = span.numerator.bit_length() - span.denominator.bit_length()
        while Fraction(2) ** exp < span:
            exp += 1
        while Fraction(2) ** (exp - 1) >= span:
            exp -= 1
        self._exp = exp
        self._length = math.ldexp(1.0, exp)

        # Root values: ΔW ~ N(0, L), H ~ N(0, L/12), independent.
        z = self._normals(_node_seed(self._seed, ()))
        if self._levy_area:
            self._root = (
                math.sqrt(self._length) * z[0],
                math.sqrt(self._length / 12.0) * z[1],
            )
        else:
            self._root = (math.sqrt(self._length) * z, None)

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
            f"BrownianInterval(t0={self._t0}, t1={self._t1}, shape={self._shape}, "
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
        a = _as_time("ta", ta)
        b = _as_time("tb", tb)
        if levy and not self._levy_area:
            raise ValueError(
                "levy=True needs the Lévy area: construct BrownianInterval(..., levy_area=True)"
            )
        for name, t in (("ta", a), ("tb", b)):
            if not self._t0 <= t <= self._t1:
                raise ValueError(
                    f"{name}={t} lies outside the span [t0, t1] = [{self._t0}, {self._t1}]; "
                    "query times inside it, or build the BrownianInterval on a wider span"
                )
        if a > b:
            raise ValueError(f"need ta ≤ tb, got ta={a}, tb={b}; for W(ta) − W(tb) use -W(tb, ta)")
        if a == b:
            zero = torch.zeros(self._shape, dtype=self._dtype, device=self._device)
            return (zero, zero.clone()) if levy else zero

        memo: dict[_Key, _Value] = {}
        w: Tensor | None = None
        hh: Tensor | None = None
        h = 0.0
        for level, index in self._decompose(a, b):
            w_j, h_j_area = self._value(level, index, memo)
            h_j = math.ldexp(self._length, -level)
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

    # ------------------------------------------------------------------ tree

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

    def _normals(self, seed: int) -> Tensor:
        """Standard normals for one node: ``(2, *shape)`` with Lévy area, else ``shape``."""
        generator = torch.Generator(device=self._device).manual_seed(seed)
        size = (2, *self._shape) if self._levy_area else self._shape
        return torch.randn(size, generator=generator, dtype=self._dtype, device=self._device)

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
