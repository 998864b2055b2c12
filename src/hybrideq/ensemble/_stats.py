"""Ensemble statistics of a batch of trajectories: :func:`summarize` and :class:`EnsembleSummary`.

A batched solve (an SDE with one Brownian path per sample, or an ODE with uncertain
``y0``/``p``) is a Monte Carlo ensemble; :func:`summarize` reduces it to per-time moments
and quantiles over the batch.

Failed samples are not averaged in silently. hybrideq fills the save times a sample never
reached with NaN, so at every save time the statistics are taken over the samples present
there, and :attr:`EnsembleSummary.n` says how many those were. A sample that failed at
``t = 0.5`` still contributes every save time before ``0.5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.solution import Solution

__all__ = ["EnsembleSummary", "summarize"]


@dataclass(frozen=True, eq=False)
class EnsembleSummary:
    """Per-time statistics of a batch of trajectories, over the batch.

    Every statistic at save time ``t[k]`` is taken over the ``n[k]`` samples present there
    (a sample is absent where any component of its state is NaN: it failed earlier). Where
    fewer than two samples are present ``var`` is NaN, and where none is, every statistic
    is NaN.

    ``mean``, ``var`` and ``quantiles`` keep the autograd graph of the trajectories they
    were computed from, so a loss on ensemble moments can be trained.

    Attributes:
        t: the save times, ``(T,)``.
        mean: the sample mean, ``(T, *state)``.
        var: the unbiased sample variance (divisor ``n - 1``), ``(T, *state)``.
        quantile_levels: the levels of ``quantiles``, in the order they were asked for.
        quantiles: the sample quantiles (linear interpolation between order statistics,
            numpy's default ``method="linear"``), ``(Q, T, *state)``.
        n: how many samples are present at each save time, an integer tensor ``(T,)``.
    """

    t: Tensor
    mean: Tensor
    var: Tensor
    quantile_levels: tuple[float, ...]
    quantiles: Tensor
    n: Tensor

    @property
    def std(self) -> Tensor:
        """The sample standard deviation ``sqrt(var)``, ``(T, *state)``."""
        return self.var.sqrt()

    @property
    def state_shape(self) -> tuple[int, ...]:
        """The shape of one state, ``mean.shape[1:]``."""
        return tuple(self.mean.shape[1:])

    def quantile(self, level: float) -> Tensor:
        """The quantile at ``level``, ``(T, *state)``: one row of ``quantiles``.

        Args:
            level: one of ``quantile_levels``.

        Raises:
            ValueError: if ``level`` was not computed.
        """
        for i, computed in enumerate(self.quantile_levels):
            if math.isclose(level, computed, rel_tol=0.0, abs_tol=1e-12):
                return self.quantiles[i]
        available = ", ".join(f"{q:g}" for q in self.quantile_levels) or "none"
        raise ValueError(
            f"quantile level {level:g} was not computed (available: {available}); "
            f"pass it in summarize(..., quantiles=...)"
        )

    def to_numpy(self) -> dict[str, Any]:
        """The statistics as numpy arrays (detached, on the CPU).

        Returns:
            A dict with keys ``t``, ``mean``, ``var``, ``std``, ``quantiles``, ``n``
            (arrays) and ``quantile_levels`` (a tuple of floats).
        """

        def arr(x: Tensor) -> np.ndarray:
            return x.detach().cpu().numpy()

        return {
            "t": arr(self.t),
            "mean": arr(self.mean),
            "var": arr(self.var),
            "std": arr(self.std),
            "quantile_levels": self.quantile_levels,
            "quantiles": arr(self.quantiles),
            "n": arr(self.n),
        }

    def __repr__(self) -> str:
        if self.n.numel() == 0:
            n = "0"
        else:
            lo, hi = int(self.n.min()), int(self.n.max())
            n = str(hi) if lo == hi else f"{lo}..{hi}"
        levels = ", ".join(f"{q:g}" for q in self.quantile_levels)
        return (
            f"EnsembleSummary(t={tuple(self.t.shape)}, state={self.state_shape}, "
            f"n={n}, quantiles=({levels}))"
        )


def summarize(
    sol_or_tensor: Solution | Tensor,
    *,
    t: Tensor | Sequence[float] | None = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    dim: int = 0,
) -> EnsembleSummary:
    """Mean, variance and quantiles over a batch of trajectories, at every save time.

    At save time ``t_k``, with ``S_k`` the samples present there and ``n_k = |S_k|``::

        mean_k = Σ_{i ∈ S_k} y_i(t_k) / n_k
        var_k  = Σ_{i ∈ S_k} (y_i(t_k) − mean_k)² / (n_k − 1)

    A sample is absent at ``t_k`` where any component of its state is NaN, which is how
    hybrideq marks the save times a failed sample never reached (its ``retcode`` is not
    ``Success``); it still counts at the times it did reach. NaN is never averaged in.

    Args:
        sol_or_tensor: a batched :class:`~hybrideq.Solution` with shared save times
            (``sol.t`` of shape ``(T,)``, ``sol.y`` of shape ``(batch, T, *state)``), or a
            floating-point tensor ``(batch, T, *state)`` (see ``dim``).
        t: the save times ``(T,)`` of a tensor (default: ``0, 1, …, T − 1``). Not allowed
            with a solution, whose ``t`` is used.
        quantiles: the quantile levels to compute, each in ``[0, 1]``.
        dim: the batch dimension of a tensor; it is moved to the front and the next
            dimension is time. A solution's batch dimension is always 0.

    Returns:
        An :class:`EnsembleSummary`. ``mean``, ``var`` and ``quantiles`` keep autograd.

    Raises:
        ValueError: for an unbatched solution, a solution with per-sample save times, a
            batch of fewer than two trajectories, a ``t`` that does not match, or a
            quantile level outside ``[0, 1]``.
        TypeError: for a tensor that is not floating point, an input that is neither a
            solution nor a tensor, or a single number as ``quantiles``.

    Example:
        >>> import torch, hybrideq as hq
        >>> y0 = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)  # 3 samples
        >>> ts = torch.linspace(0.0, 1.0, 3, dtype=torch.float64)
        >>> prob = hq.ODEProblem(lambda t, y, p: -y, y0, (0.0, 1.0))
        >>> sol = hq.solve(prob, hq.Tsit5(), saveat=ts, rtol=1e-10, atol=1e-12)
        >>> s = hq.ensemble.summarize(sol)
        >>> s
        EnsembleSummary(t=(3,), state=(1,), n=3, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95))
        >>> s.mean[:, 0]  # exp(-t)
        tensor([1.0000, 0.6065, 0.3679], dtype=torch.float64)
        >>> s.var[:, 0]  # 0.25 exp(-2t)
        tensor([0.2500, 0.0920, 0.0338], dtype=torch.float64)
        >>> s.n
        tensor([3, 3, 3])
    """
    levels = _check_levels(quantiles)
    if isinstance(sol_or_tensor, Solution):
        sol = sol_or_tensor
        if t is not None:
            raise ValueError("t is taken from the solution; pass t only with a tensor")
        if dim != 0:
            raise ValueError(f"a solution's batch dimension is always 0; got dim={dim}")
        if not sol.batched:
            raise ValueError(
                "one trajectory has no ensemble statistics; solve a batch "
                "(y0 of shape (batch, *state)) to summarize"
            )
        if sol.t.ndim != 1:
            raise ValueError(
                f"this batch has per-sample save times (t of shape {tuple(sol.t.shape)}); "
                "pass a shared saveat of shape (T,) to solve"
            )
        y, times = sol.y, sol.t
    elif isinstance(sol_or_tensor, Tensor):
        y = sol_or_tensor
        if not y.is_floating_point():
            raise TypeError(f"trajectories must be a floating-point tensor; got {y.dtype}")
        if y.ndim < 2:
            raise ValueError(
                f"trajectories must have shape (batch, T, *state); got {tuple(y.shape)}"
            )
        if not -y.ndim <= dim < y.ndim:
            raise ValueError(f"dim={dim} is out of range for a tensor of {y.ndim} dimensions")
        y = y.movedim(dim, 0)
        if t is None:
            times = torch.arange(y.shape[1], dtype=y.dtype, device=y.device)
        else:
            times = torch.as_tensor(t, dtype=y.dtype, device=y.device)
            if times.shape != (y.shape[1],):
                raise ValueError(
                    f"t must have shape (T,) = ({y.shape[1]},) to match trajectories of "
                    f"shape {tuple(y.shape)}; got {tuple(times.shape)}"
                )
    else:
        raise TypeError(
            f"summarize takes a hybrideq.Solution or a tensor; got {type(sol_or_tensor).__name__}"
        )

    batch = y.shape[0]
    if batch < 2:
        raise ValueError(f"a variance needs at least 2 trajectories; got a batch of {batch}")

    # A sample is present at a save time when no component of its state there is NaN.
    present = ~torch.isnan(y.reshape(batch, y.shape[1], -1)).any(-1)  # (batch, T)
    n = present.sum(0)  # (T,)
    mask = present.reshape(present.shape + (1,) * (y.ndim - 2))  # broadcasts over the state
    nf = n.to(y.dtype).reshape(n.shape + (1,) * (y.ndim - 2))
    nan = torch.tensor(math.nan, dtype=y.dtype, device=y.device)

    # torch.where, not nansum: the masked entries get a zero gradient, never NaN · 0.
    # mean = Σ_{i present} y_i / n
    total = torch.where(mask, y, 0.0).sum(0)
    mean = torch.where(nf > 0, total / nf.clamp(min=1), nan)
    # var = Σ_{i present} (y_i − mean)² / (n − 1), two-pass for accuracy
    dev = torch.where(mask, y - mean, 0.0)
    var = torch.where(nf > 1, (dev * dev).sum(0) / (nf - 1).clamp(min=1), nan)

    q = _nanquantile(y, mask, n, levels)
    return EnsembleSummary(t=times, mean=mean, var=var, quantile_levels=levels, quantiles=q, n=n)


def _check_levels(quantiles: Sequence[float]) -> tuple[float, ...]:
    if isinstance(quantiles, (int, float)):
        raise TypeError(f"quantiles must be a sequence of levels, e.g. (0.5,); got {quantiles!r}")
    levels = tuple(float(q) for q in quantiles)
    bad = [q for q in levels if not 0.0 <= q <= 1.0]  # also rejects NaN
    if bad:
        raise ValueError(
            f"quantile levels must lie in [0, 1]; got {', '.join(f'{q:g}' for q in bad)}"
        )
    return levels


def _nanquantile(y: Tensor, mask: Tensor, n: Tensor, levels: tuple[float, ...]) -> Tensor:
    """Quantiles over dim 0 of the present samples, ``(Q, T, *state)``.

    numpy's ``method="linear"``: with the ``n`` present values sorted, ``v_0 ≤ … ≤ v_{n−1}``,
    the level-``q`` quantile is ``v_j + (v_{j+1} − v_j) · g`` at ``j + g = q · (n − 1)``.
    Absent samples are set to +inf, so they sort after the present ones; ``torch.sort``
    is differentiable, so the result keeps autograd. Unlike ``torch.nanquantile`` this has
    no limit on the size of the input.
    """
    rest = y.shape[1:]
    if not levels:
        return y.new_empty((0, *rest))
    inf = torch.tensor(math.inf, dtype=y.dtype, device=y.device)
    srt = torch.sort(torch.where(mask, y, inf), dim=0).values  # (batch, T, *state)
    # positions j + g = q · (n − 1) in float64, on the CPU (some devices lack float64)
    lv = torch.tensor(levels, dtype=torch.float64)[:, None]  # (Q, 1)
    last = (n.cpu() - 1).clamp(min=0).to(torch.float64)  # (T,)
    pos = lv * last  # (Q, T)
    lo_cpu = pos.floor()
    frac = (pos - lo_cpu).to(device=y.device, dtype=y.dtype)
    lo = lo_cpu.long().to(y.device)
    hi = torch.minimum(lo + 1, last.long().to(y.device))
    extra = (1,) * (y.ndim - 2)
    expand = (len(levels), *rest)

    def take(idx: Tensor) -> Tensor:
        return torch.gather(srt, 0, idx.reshape(idx.shape + extra).expand(expand))

    a, b = take(lo), take(hi)
    g = frac.reshape(frac.shape + extra)
    out = a + (b - a) * g
    # where both order statistics are +inf (a real +inf), b − a is NaN: keep a
    out = torch.where(g == 0, a, out)
    nan = torch.tensor(math.nan, dtype=y.dtype, device=y.device)
    return torch.where((n > 0).reshape(n.shape + extra), out, nan)
