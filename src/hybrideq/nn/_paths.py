"""Controlled paths: continuous-time interpolants of irregular, partly missing observations.

A neural CDE or a stable neural SDE reads its data through a path ``X(t)`` that can be
evaluated at any time the solver asks for. The data are observations ``x[b, i, k]`` of
channel ``k`` of sample ``b`` at time ``t[i]`` (or ``t[b, i]``); an entry is missing where
it is NaN or where ``mask`` is ``False``. Each channel of each sample is interpolated over
its **own** observed points, as torchcde does (Kidger, Morrill, Foster, Lyons, "Neural
Controlled Differential Equations for Irregular Time Series", NeurIPS 2020, §3.5):

- :class:`CubicSplinePath`: the natural cubic spline (C², zero second derivative at the
  first and last observation). Smooth, but each piece depends on all observations.
- :class:`HermitePath`: the cubic Hermite interpolant with backward differences
  (torchcde's ``hermite_cubic_coefficients_with_backward_differences``; Morrill, Kidger,
  Yang, Lyons, "Neural CDEs for Online Prediction Tasks", arXiv 2106.11028). C¹ and causal:
  the path up to an observation time depends only on the observations up to that time.

Outside a channel's first and last observation the path holds the end value (derivative
zero). A channel with one observation is constant; one with none is zero, which
``append_mask=True`` lets a model tell apart from a genuine zero.

Every sample and channel is fitted at once: the observations of each series are moved to
the front of a ``(batch, channels, T)`` array (padded at the back), and the knot
equations are solved for all series together (a batched Thomas sweep for the spline's
tridiagonal system, a Python loop over ``T`` and never over samples).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["AbstractPath", "CubicSplinePath", "HermitePath"]


def _as_tensor(name: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor (or array-like), got {type(value)}") from e


class AbstractPath:
    """A batch of continuous paths ``X: [t_0, t_{T-1}] → R^channels`` through observations.

    Subclasses fit piecewise cubics ``a + b s + c s² + d s³`` (``s = t − t_j``) on the
    intervals between each series' observed knots; this class validates the data and
    evaluates. Attributes after construction:

    Attributes:
        t: the observation times, ``(batch, T)`` (a shared ``(T,)`` grid is expanded).
        batch_size: number of samples.
        channels: number of output channels (``input channels`` plus one for
            ``append_time`` plus ``input channels`` for ``append_mask``).
        input_channels: number of channels of ``x``.
        append_time: whether channel 0 is time.
        append_mask: whether the last ``input_channels`` channels are observation counts.
    """

    t: Tensor
    batch_size: int
    channels: int
    input_channels: int
    append_time: bool
    append_mask: bool

    def __init__(
        self,
        t: Any,
        x: Any,
        mask: Any = None,
        *,
        append_time: bool = False,
        append_mask: bool = False,
    ) -> None:
        xt = _as_tensor("x", x)
        if not xt.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {xt.dtype}")
        if xt.ndim != 3:
            raise ValueError(
                f"x must have shape (batch, T, channels), got {tuple(xt.shape)}; for one "
                "sample use x[None], for one channel x[..., None]"
            )
        batch, T, channels = xt.shape
        if T < 2:
            raise ValueError(f"x must hold at least two observation times (T >= 2), got T = {T}")
        if channels < 1 or batch < 1:
            raise ValueError(f"x must have at least one sample and one channel, got {xt.shape}")

        tt = _as_tensor("t", t).to(dtype=xt.dtype, device=xt.device)
        if tt.ndim == 1:
            if tt.shape[0] != T:
                raise ValueError(
                    f"t has {tt.shape[0]} times but x has T = {T} (x.shape[1]); "
                    "give one time per observation row"
                )
            tt = tt.expand(batch, T)
        elif tt.ndim == 2:
            if tuple(tt.shape) != (batch, T):
                raise ValueError(
                    f"t must have shape (T,) = ({T},) or (batch, T) = ({batch}, {T}); "
                    f"got {tuple(tt.shape)}"
                )
        else:
            raise ValueError(
                f"t must have shape (T,) or (batch, T); got {tuple(tt.shape)} with {tt.ndim} "
                "dimensions"
            )
        if not bool(torch.isfinite(tt).all()):
            raise ValueError("t contains NaN or Inf; every observation time must be finite")
        if not bool((tt[:, 1:] > tt[:, :-1]).all()):
            raise ValueError(
                "t must be strictly increasing along the time axis; sort the observations by "
                "time and merge duplicate times"
            )

        observed = ~torch.isnan(xt)
        if mask is not None:
            m = _as_tensor("mask", mask).to(device=xt.device)
            if m.dtype != torch.bool:
                raise TypeError(
                    f"mask must be a boolean tensor (True = observed), got dtype {m.dtype}"
                )
            if m.ndim == 2 and tuple(m.shape) == (batch, T):
                m = m[:, :, None]
            elif tuple(m.shape) != (batch, T, channels):
                raise ValueError(
                    f"mask must have the shape of x, (batch, T, channels) = "
                    f"({batch}, {T}, {channels}), or (batch, T) = ({batch}, {T}) for whole "
                    f"rows; got {tuple(m.shape)}"
                )
            observed = observed & m
        if bool(torch.isinf(xt[observed]).any()):
            raise ValueError(
                "x contains ±Inf at observed entries; mark missing entries with NaN or mask"
            )
        # Missing entries never reach the arithmetic (NaN · 0 is NaN, also in gradients).
        xf = torch.where(observed, xt, torch.zeros((), dtype=xt.dtype, device=xt.device))

        cols = [xf]
        obs_cols = [observed]
        if append_time:
            cols.insert(0, tt[:, :, None])
            obs_cols.insert(0, torch.ones_like(observed[:, :, :1]))
        if append_mask:
            # Observational intensity: observations of each channel so far, over T (in [0, 1]).
            counts = observed.to(xt.dtype).cumsum(dim=1) / T
            cols.append(counts)
            obs_cols.append(torch.ones_like(observed))
        values = torch.cat(cols, dim=-1)
        obs_all = torch.cat(obs_cols, dim=-1)

        self.t = tt
        self.batch_size = batch
        self.input_channels = channels
        self.channels = values.shape[-1]
        self.append_time = append_time
        self.append_mask = append_mask
        self._fit(tt, values, obs_all)

    # ------------------------------------------------------------------ fitting

    def _fit(self, t: Tensor, values: Tensor, observed: Tensor) -> None:
        batch, T, C = values.shape
        obs = observed.transpose(1, 2)  # (batch, C, T)
        n = obs.sum(dim=-1)  # observed knots per series
        # A stable sort of "missing" puts each series' observed points first, in time order.
        order = torch.sort((~obs).to(torch.uint8), dim=-1, stable=True).indices
        tk = t[:, None, :].expand(batch, C, T).gather(-1, order)
        xk = values.transpose(1, 2).gather(-1, order)
        k = torch.arange(T, device=t.device)
        valid = k < n[..., None]
        last = (n - 1).clamp(min=0)[..., None]
        t_last = tk.gather(-1, last)
        x_last = torch.where(n[..., None] > 0, xk.gather(-1, last), torch.zeros_like(t_last))
        # Padding after the last knot: unit-spaced times, the last value repeated (so the
        # padded pieces are constant and every interval has a positive length).
        tk = torch.where(valid, tk, t_last + (k - n[..., None] + 1).to(t.dtype))
        xk = torch.where(valid, xk, x_last)
        self._tk = tk.contiguous()
        self._n = n
        h = tk[..., 1:] - tk[..., :-1]  # (batch, C, T-1), > 0
        delta = (xk[..., 1:] - xk[..., :-1]) / h  # secant slopes
        self._a, self._b, self._c, self._d = self._coefficients(xk, h, delta, n)
        # Evaluation range of each series: its first and last observation.
        self._t_lo = tk[..., 0]
        self._t_hi = t_last[..., 0]

    def _coefficients(
        self, xk: Tensor, h: Tensor, delta: Tensor, n: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ evaluation

    def _locate(self, t: Any) -> tuple[Tensor, Tensor, Tensor]:
        """Interval index, offset ``s`` and in-range flag for each series at time ``t``."""
        tq = torch.as_tensor(t, dtype=self._tk.dtype, device=self._tk.device)
        if tq.ndim == 0:
            tq = tq.expand(self.batch_size)
        elif tq.ndim != 1 or tq.shape[0] != self.batch_size:
            raise ValueError(
                f"t must be a scalar or a tensor of shape (batch,) = ({self.batch_size},); "
                f"got shape {tuple(tq.shape)}"
            )
        tq = tq[:, None].expand_as(self._t_lo)  # (batch, C)
        inside = (tq >= self._t_lo) & (tq <= self._t_hi)
        tc = torch.minimum(torch.maximum(tq, self._t_lo), self._t_hi)  # hold the end values
        B, C, T = self._tk.shape
        j = torch.searchsorted(
            self._tk.reshape(B * C, T), tc.detach().reshape(B * C, 1).contiguous(), right=True
        ).reshape(B, C)
        j = torch.minimum((j - 1).clamp(min=0), (self._n - 2).clamp(min=0))
        s = tc - self._tk.gather(-1, j[..., None])[..., 0]
        return j[..., None], s, inside

    def evaluate(self, t: Any) -> Tensor:
        """The path's value ``X(t)``, shape ``(batch, channels)``.

        Args:
            t: a scalar (all samples at the same time) or a tensor of shape ``(batch,)``
                (each sample at its own time, as the solvers call a batched right-hand side).
        """
        j, s, _ = self._locate(t)
        a, b = self._a.gather(-1, j)[..., 0], self._b.gather(-1, j)[..., 0]
        c, d = self._c.gather(-1, j)[..., 0], self._d.gather(-1, j)[..., 0]
        return a + s * (b + s * (c + s * d))  # Horner

    def derivative(self, t: Any) -> Tensor:
        """The path's time derivative ``dX/dt(t)``, shape ``(batch, channels)``.

        Zero outside each channel's first and last observation (the path holds its value).
        """
        j, s, inside = self._locate(t)
        b = self._b.gather(-1, j)[..., 0]
        c, d = self._c.gather(-1, j)[..., 0], self._d.gather(-1, j)[..., 0]
        dx = b + s * (2 * c + 3 * s * d)
        return torch.where(inside, dx, torch.zeros_like(dx))

    def tensors(self) -> tuple[Tensor, ...]:
        """The coefficient tensors, for an adjoint that differentiates with respect to them."""
        return (self._a, self._b, self._c, self._d)

    @property
    def t0(self) -> Tensor:
        """First observation time of each sample, ``(batch,)``."""
        return self.t[:, 0]

    @property
    def t1(self) -> Tensor:
        """Last observation time of each sample, ``(batch,)``."""
        return self.t[:, -1]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch={self.batch_size}, T={self.t.shape[1]}, "
            f"channels={self.channels}, append_time={self.append_time}, "
            f"append_mask={self.append_mask})"
        )


class CubicSplinePath(AbstractPath):
    """Natural cubic spline through each channel's observed points.

    On each interval ``[t_j, t_{j+1}]`` of a series' observed knots (``h_j = t_{j+1} − t_j``,
    second derivatives ``M_j``)::

        X(t) = x_j + b_j s + (M_j / 2) s² + (M_{j+1} − M_j) / (6 h_j) s³,   s = t − t_j,
        b_j  = (x_{j+1} − x_j) / h_j − h_j (2 M_j + M_{j+1}) / 6,

    where ``M_0 = M_{n−1} = 0`` (natural end conditions) and, for ``0 < j < n − 1``,
    ``h_{j−1} M_{j−1} + 2 (h_{j−1} + h_j) M_j + h_j M_{j+1} = 6 (δ_j − δ_{j−1})`` with
    ``δ_j = (x_{j+1} − x_j) / h_j``. The system is strictly diagonally dominant, so the
    Thomas algorithm (no pivoting) is stable; it runs for all samples and channels at once.
    This is the interpolation torchcde's ``natural_cubic_coeffs`` computes and the stable
    neural SDEs use (Oh, Lim, Kim, ICLR 2024, §3.4).

    Args:
        t: observation times, ``(T,)`` shared by the batch or ``(batch, T)`` per sample,
            strictly increasing.
        x: observations, ``(batch, T, channels)``; NaN marks a missing entry.
        mask: optional boolean ``(batch, T, channels)`` (or ``(batch, T)`` for whole rows),
            ``True`` where observed. An entry is used where it is observed and not NaN.
        append_time: prepend time as channel 0 (the path ``X(t)`` then tells the model
            the time, as neural CDEs do).
        append_mask: append, per input channel, the number of observations of that
            channel up to the current time divided by ``T`` (the cumulative-count channels
            of Kidger et al. 2020, §3.5, scaled to ``[0, 1]``); they let the model see
            where data were missing.

    Example:
        >>> import torch, hybrideq as hq
        >>> t = torch.linspace(0, 1, 5, dtype=torch.float64)
        >>> x = torch.stack([t, t**2], dim=-1)[None]  # (1, 5, 2)
        >>> x[0, 2, 1] = float("nan")  # a missing entry
        >>> path = hq.nn.CubicSplinePath(t, x, append_time=True)
        >>> path.evaluate(0.5).shape  # time, then the two channels
        torch.Size([1, 3])
        >>> round(float(path.evaluate(0.3)[0, 1]), 12)  # linear data are reproduced
        0.3
    """

    def _coefficients(
        self, xk: Tensor, h: Tensor, delta: Tensor, n: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        M = _natural_second_derivatives(h, delta, n)
        M0, M1 = M[..., :-1], M[..., 1:]
        a = xk[..., :-1]
        b = delta - h * (2 * M0 + M1) / 6
        c = M0 / 2
        d = (M1 - M0) / (6 * h)
        return a, b, c, d


def _natural_second_derivatives(h: Tensor, delta: Tensor, n: Tensor) -> Tensor:
    """Solve the natural spline's tridiagonal system for every series, ``(batch, C, T)``.

    Rows ``0 < i < n − 1`` are the continuity equations; every other row (the two natural
    end conditions and the padding) is ``M_i = 0``.
    """
    B, C, Tm1 = h.shape
    T = Tm1 + 1
    if T == 2:
        return torch.zeros(B, C, 2, dtype=h.dtype, device=h.device)
    i = torch.arange(1, T - 1, device=h.device)
    interior = i < (n[..., None] - 1)  # (B, C, T-2)
    zero, one = torch.zeros_like(h[..., :1]), torch.ones_like(h[..., :1])
    hl, hr = h[..., :-1], h[..., 1:]
    lower = torch.cat([zero, torch.where(interior, hl, 0.0), zero], dim=-1)
    diag = torch.cat([one, torch.where(interior, 2 * (hl + hr), 1.0), one], dim=-1)
    upper = torch.cat([zero, torch.where(interior, hr, 0.0), zero], dim=-1)
    rhs = torch.cat(
        [zero, torch.where(interior, 6 * (delta[..., 1:] - delta[..., :-1]), 0.0), zero], dim=-1
    )
    # Thomas algorithm: forward elimination c'_i = u_i / m_i, d'_i = (r_i − l_i d'_{i−1}) / m_i
    # with m_i = diag_i − l_i c'_{i−1}; back substitution M_i = d'_i − c'_i M_{i+1}.
    cp = [upper[..., 0] / diag[..., 0]]
    dp = [rhs[..., 0] / diag[..., 0]]
    for k in range(1, T):
        m = diag[..., k] - lower[..., k] * cp[-1]
        cp.append(upper[..., k] / m)
        dp.append((rhs[..., k] - lower[..., k] * dp[-1]) / m)
    sol = [dp[-1]]
    for k in range(T - 2, -1, -1):
        sol.append(dp[k] - cp[k] * sol[-1])
    return torch.stack(sol[::-1], dim=-1)


class HermitePath(AbstractPath):
    """Cubic Hermite interpolation with backward differences: C¹ and causal.

    On each interval ``[t_j, t_{j+1}]`` of a series' observed knots, the cubic matches the
    values ``x_j``, ``x_{j+1}`` and the slopes ``m_j = δ_{j−1}`` (the backward difference
    at ``t_j``; ``m_0 = δ_0``) and ``m_{j+1} = δ_j``, where ``δ_j = (x_{j+1} − x_j) / h_j``::

        X(t) = x_j + m_j s + (3 δ_j − 2 m_j − m_{j+1}) / h_j s² + (m_j + m_{j+1} − 2 δ_j) / h_j² s³.

    The piece on ``[t_j, t_{j+1}]`` uses only ``x_{j−1}, x_j, x_{j+1}``: the path up to an
    observation time never depends on later observations, which suits online prediction
    (torchcde's ``hermite_cubic_coefficients_with_backward_differences``; Morrill, Kidger,
    Yang, Lyons, arXiv 2106.11028). Arguments as :class:`CubicSplinePath`.

    Example:
        >>> import torch, hybrideq as hq
        >>> t = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
        >>> x = torch.tensor([[[0.0], [1.0], [0.0], [2.0]]], dtype=torch.float64)
        >>> before = hq.nn.HermitePath(t, x).evaluate(1.5)
        >>> x[0, 3, 0] = 100.0  # a later observation …
        >>> bool((hq.nn.HermitePath(t, x).evaluate(1.5) == before).all())  # … leaves the past
        True
    """

    def _coefficients(
        self, xk: Tensor, h: Tensor, delta: Tensor, n: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m0 = torch.cat([delta[..., :1], delta[..., :-1]], dim=-1)  # slope at t_j
        m1 = delta  # slope at t_{j+1}
        a = xk[..., :-1]
        b = m0
        c = (3 * delta - 2 * m0 - m1) / h
        d = (m0 + m1 - 2 * delta) / (h * h)
        return a, b, c, d
