"""Derivative estimates ``dy/dt`` from sampled (and noisy) trajectories.

Three estimators, each a small frozen spec with ``estimate(t, y) -> dy``:

- :class:`FiniteDifference`: second-order central differences (one-sided second order at
  the ends), any spacing (``numpy.gradient``); for clean data.
- :class:`SmoothedFiniteDifference`: a Savitzky–Golay filter (a local least-squares
  polynomial, ``scipy.signal.savgol_filter``) differentiated analytically; uniform
  spacing; for moderate noise.
- :class:`SplineDerivative`: a cubic smoothing spline (``scipy.interpolate.
  make_smoothing_spline``) whose penalty is picked by generalised cross-validation unless
  given; any spacing; for noisy, sparse data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import make_smoothing_spline
from scipy.signal import savgol_filter

__all__ = [
    "AbstractDerivative",
    "FiniteDifference",
    "SmoothedFiniteDifference",
    "SplineDerivative",
]


class AbstractDerivative:
    """Estimates ``dy/dt`` from samples ``y`` of shape ``(T, n)`` at times ``t`` ``(T,)``."""

    def estimate(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dy/dt`` at the sample times, shaped like ``y``."""
        raise NotImplementedError


def _check(t: np.ndarray, y: np.ndarray, need: int) -> None:
    if t.ndim != 1 or y.ndim != 2 or y.shape[0] != t.shape[0]:
        raise ValueError(f"t must be (T,) and y (T, n), got {t.shape} and {y.shape}")
    if t.shape[0] < need:
        raise ValueError(f"the derivative estimate needs at least {need} samples, got {t.shape[0]}")
    if not (np.diff(t) > 0).all():
        raise ValueError("t must be strictly increasing")


@dataclass(frozen=True)
class FiniteDifference(AbstractDerivative):
    """Finite differences of order ``order`` on any spacing.

    Each sample uses the ``order + 1`` nearest samples (a centred stencil inside, a
    one-sided one near the ends); the weights solve the moment conditions
    ``Σ_j w_j (t_j − t_i)^k = k! δ_k1`` for ``k = 0 … order`` (Fornberg's weights, found
    with one small linear solve per sample), so the error is ``O(h^order)``.

    Args:
        order: the accuracy order, an even number ``>= 2`` (2: ``numpy.gradient``'s
            central differences; 4 or 6 for clean, smooth data).
    """

    order: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or self.order < 2 or self.order % 2:
            raise ValueError(
                f"FiniteDifference: order must be an even int >= 2, got {self.order!r}"
            )

    def estimate(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        m = self.order + 1
        _check(t, y, m)
        T = t.shape[0]
        start = np.clip(np.arange(T) - self.order // 2, 0, T - m)
        idx = start[:, None] + np.arange(m)[None, :]  # (T, m) stencil indices
        h = t[idx] - t[:, None]  # offsets from the evaluation point
        scale = np.abs(h).max(axis=1, keepdims=True)
        k = np.arange(m)
        # Vandermonde rows V[k, j] = (h_j/s)^k; right-hand side k! δ_k1 → e_1 (scaled by 1/s)
        V = (h / scale)[:, None, :] ** k[None, :, None]
        rhs = np.zeros((T, m))
        rhs[:, 1] = 1.0
        w = np.linalg.solve(V, rhs[..., None])[..., 0] / scale
        return np.einsum("tj,tjn->tn", w, y[idx])


@dataclass(frozen=True)
class SmoothedFiniteDifference(AbstractDerivative):
    """Savitzky–Golay derivative: a degree-``polyorder`` least-squares fit in each window.

    Args:
        window_length: samples per window, odd (default: about a tenth of the samples, at
            least ``polyorder + 2``).
        polyorder: the local polynomial degree.
    """

    window_length: int | None = None
    polyorder: int = 3

    def estimate(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        _check(t, y, self.polyorder + 2)
        dt = np.diff(t)
        if not np.allclose(dt, dt[0], rtol=1e-6, atol=0.0):
            raise ValueError(
                "SmoothedFiniteDifference needs uniformly spaced t; use SplineDerivative() "
                "for uneven samples"
            )
        T = t.shape[0]
        w = self.window_length
        if w is None:
            w = max(self.polyorder + 2, T // 10)
            w += 1 - w % 2
        if w % 2 == 0 or w <= self.polyorder or w > T:
            raise ValueError(
                f"SmoothedFiniteDifference: window_length must be odd, > polyorder "
                f"({self.polyorder}) and <= the number of samples ({T}), got {w}"
            )
        return savgol_filter(
            y, w, self.polyorder, deriv=1, delta=float(dt[0]), axis=0, mode="interp"
        )


@dataclass(frozen=True)
class SplineDerivative(AbstractDerivative):
    """Derivative of a cubic smoothing spline fitted to each state.

    Args:
        lam: the smoothing penalty (``None``: chosen by generalised cross-validation,
            scipy's default).
    """

    lam: float | None = None

    def estimate(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        _check(t, y, 5)
        out = np.empty_like(y, dtype=float)
        for i in range(y.shape[1]):
            spline = make_smoothing_spline(t, y[:, i], lam=self.lam)
            out[:, i] = spline.derivative()(t)
        return out

    def smooth(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The smoothed states at the sample times (the spline's values)."""
        _check(t, y, 5)
        return np.stack(
            [make_smoothing_spline(t, y[:, i], lam=self.lam)(t) for i in range(y.shape[1])], 1
        )
