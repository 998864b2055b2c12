"""Dense output: each method's own continuous extension, or cubic Hermite where it has none.

Every interpolant used here has the form ``y(t0 + θh) = y0 + Σ_j P_j(θ) V_j`` with
polynomials ``P_j(θ) = Σ_m C[j, m] θ^(m+1)`` and vectors ``V_j`` known at the end of the
step:

- a tableau's interpolant: ``V_j = h k_j`` and ``C`` its ``dense`` rows;
- cubic Hermite (``y0, y1, f0, f1``): ``V = (y1 − y0, h f0, h f1)`` with
  ``P = (3θ² − 2θ³, θ − 2θ² + θ³, −θ² + θ³)`` (the Hermite basis ``h01, h10, h11``;
  ``h00 + h01 = 1`` absorbs ``y0``).

So one step's dense data is ``y0`` and a stack ``V`` of shape ``(batch, J, n)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hybrideq.tableaus import ExplicitRKTableau

__all__ = ["DenseOutput", "InterpolationScheme"]

_HERMITE = ((0.0, 3.0, -2.0), (1.0, -2.0, 1.0), (0.0, -1.0, 1.0))


class InterpolationScheme:
    """Which vectors a step keeps for dense output, and their polynomial weights.

    Use :meth:`of` to get the (cached) scheme of a tableau.
    """

    _schemes: dict[int, InterpolationScheme] = {}

    @classmethod
    def of(cls, tableau: ExplicitRKTableau) -> InterpolationScheme:
        """The scheme of ``tableau``, built once per tableau."""
        scheme = cls._schemes.get(id(tableau))
        if scheme is None:
            scheme = cls._schemes[id(tableau)] = cls(tableau)
        return scheme

    @classmethod
    def polynomial(cls, key: str, rows: tuple[tuple[float, ...], ...]) -> InterpolationScheme:
        """A scheme whose vectors ``V_j`` the stepper computes itself (cached by ``key``).

        ``rows[j]`` holds the coefficients of ``P_j(θ) = Σ_m rows[j][m] θ^(m+1)``; with
        ``key="hermite"`` and ``rows=()`` it is the cubic Hermite scheme.
        """
        cache_key = hash(("poly", key))
        scheme = cls._schemes.get(cache_key)
        if scheme is None:
            scheme = cls.__new__(cls)
            scheme.hermite = not rows
            scheme.stage_index = ()
            scheme.needs_extras = False
            scheme.coeffs = rows if rows else _HERMITE
            scheme.degree = max(len(r) for r in scheme.coeffs)
            scheme._cache = {}
            cls._schemes[cache_key] = scheme
        return scheme

    def __init__(self, tableau: ExplicitRKTableau) -> None:
        self.hermite = tableau.dense is None
        if self.hermite:
            rows: tuple[tuple[float, ...], ...] = _HERMITE
            self.stage_index: tuple[int, ...] = ()
            self.needs_extras = False
        else:
            assert tableau.dense is not None
            keep = [i for i, row in enumerate(tableau.dense) if any(x != 0.0 for x in row)]
            rows = tuple(tableau.dense[i] for i in keep)
            self.stage_index = tuple(keep)
            self.needs_extras = any(i >= tableau.stages for i in keep)
        self.coeffs = rows
        self.degree = max(len(r) for r in rows)
        self._cache: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    def coefficient_matrix(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """``Cᵀ`` as a ``(degree, J)`` tensor (cached per dtype and device)."""
        key = (dtype, device)
        if key not in self._cache:
            c = torch.zeros(len(self.coeffs), self.degree, dtype=dtype)
            for j, row in enumerate(self.coeffs):
                c[j, : len(row)] = torch.tensor(row, dtype=dtype)
            self._cache[key] = c.T.contiguous().to(device)
        return self._cache[key]

    def vectors(
        self, h: Tensor, y0: Tensor, y1: Tensor, ks: list[Tensor], f1: Tensor | None
    ) -> Tensor:
        """The stack ``V`` ``(batch, J, n)`` of one step (``h``: ``(batch,)``)."""
        hc = h[:, None]
        if self.hermite:
            assert f1 is not None
            return torch.stack((y1 - y0, hc * ks[0], hc * f1), 1)
        return torch.stack([ks[i] for i in self.stage_index], 1) * hc[:, :, None]

    def evaluate(self, theta: Tensor, y0: Tensor, v: Tensor) -> Tensor:
        """``y0 + Σ_j P_j(θ) V_j``.

        Either ``theta`` ``(B, m)`` points within one step per sample with ``y0``
        ``(B, 1, n)`` and ``V`` ``(B, J, n)`` (a batched matrix product), or ``theta`` with
        the leading shape of ``y0`` and ``V`` gathered per point ``(..., J, n)``.
        """
        ct = self.coefficient_matrix(v.dtype, v.device)
        # (θ, θ², …, θ^deg) by a cumulative product (a tensor-exponent pow is much slower).
        powers = torch.cumprod(theta.unsqueeze(-1).expand(*theta.shape, self.degree), -1)
        w = powers @ ct  # (..., J): P_j(θ)
        if v.ndim == 3 and w.ndim == 3:  # one step's V for m points per sample: (B, m, J)
            return torch.baddbmm(y0, w, v)
        return torch.matmul(w.unsqueeze(-2), v).squeeze(-2) + y0


class DenseOutput:
    """Per-sample dense output over all accepted steps of a solve.

    Built from the stacked step records of the step loop: for iteration ``s`` and
    sample ``b``, ``t_start[s, b]``, ``h[s, b]``, ``accepted[s, b]``, ``y0[s, b]``,
    ``v[s, b]``. Records are compacted per sample (accepted steps first, in order), so a
    query is one batched ``searchsorted`` and one gather.
    """

    def __init__(
        self,
        scheme: InterpolationScheme,
        t_start: Tensor,
        h: Tensor,
        accepted: Tensor,
        y0: Tensor,
        v: Tensor,
        t_first: Tensor,
        t_last: Tensor,
        batched: bool,
        state_shape: tuple[int, ...],
    ) -> None:
        self.scheme = scheme
        self.batched = batched
        self.state_shape = state_shape
        self.t_first, self.t_last = t_first, t_last
        self.direction = torch.sign(t_last - t_first)
        self.direction = torch.where(self.direction == 0, 1.0, self.direction).to(t_first.dtype)
        # Order the iterations so that each sample's accepted steps come first.
        order = torch.argsort((~accepted).to(torch.int8), dim=0, stable=True)  # (S, B)
        nacc = accepted.sum(0)  # (B,)
        smax = max(int(nacc.max()), 1)
        order = order[:smax]
        self.nacc = nacc
        self.t_start = t_start.gather(0, order).T  # (B, smax)
        self.h = h.gather(0, order).T
        n = y0.shape[-1]
        self.y0 = y0.gather(0, order[:, :, None].expand(-1, -1, n)).transpose(0, 1)
        jn = v.shape[2:]
        idx = order.reshape((*order.shape, 1, 1)).expand(order.shape + jn)
        self.v = v.gather(0, idx).transpose(0, 1)  # (B, smax, J, n)
        # End time of each step in "forward" coordinates (direction · t), +inf past the end.
        t_end = (self.t_start + self.h) * self.direction[:, None]
        pad = torch.arange(smax, device=nacc.device)[None, :] >= nacc[:, None]
        self.t_end_dir = torch.where(pad, torch.inf, t_end).contiguous()

    def __call__(self, t: Tensor) -> Tensor:
        tb = self.t_start
        batch = tb.shape[0]
        t = t.to(dtype=tb.dtype, device=tb.device)
        scalar = t.ndim == 0
        if t.ndim <= 1:
            tq = t.reshape(1, -1).expand(batch, -1)
        elif t.ndim == 2 and self.batched and t.shape[0] == batch:
            tq = t
        else:
            raise ValueError(
                f"sol(t) takes a scalar, a (Q,) tensor or, for a batch, a ({batch}, Q) "
                f"tensor; got shape {tuple(t.shape)}"
            )
        lo = torch.minimum(self.t_first, self.t_last)[:, None]
        hi = torch.maximum(self.t_first, self.t_last)[:, None]
        span = (hi - lo).abs()
        tol = 1e-12 * torch.clamp(span, min=1.0) if tb.dtype == torch.float64 else 1e-5 * span
        if bool(((tq < lo - tol) | (tq > hi + tol)).any()):
            raise ValueError(
                "sol(t): t lies outside the integrated span "
                f"[{float(lo.min()):g}, {float(hi.max()):g}] of at least one sample"
            )
        y = self.at(tq)  # (B, Q, n)
        y = y.reshape(batch, -1, *self.state_shape)
        if not self.batched:
            y = y[0]
            return y[0] if scalar else y
        return y[:, 0] if scalar else y

    def at(self, tq: Tensor) -> Tensor:
        """Evaluate at per-sample times ``tq`` ``(batch, Q)``; returns ``(batch, Q, n)``.

        No checks: the engine's own fast path (the interpolating adjoint).
        """
        tb = self.t_start
        tq_dir = tq * self.direction[:, None]
        k = torch.searchsorted(self.t_end_dir, tq_dir.contiguous())
        k = torch.minimum(k, (self.nacc - 1).clamp_min(0)[:, None])  # (B, Q)
        t0 = tb.gather(1, k)
        h = self.h.gather(1, k)
        theta = torch.where(h == 0, torch.zeros_like(h), (tq - t0) / torch.where(h == 0, 1, h))
        n = self.y0.shape[-1]
        y0 = self.y0.gather(1, k[:, :, None].expand(-1, -1, n))
        jn = self.v.shape[2:]
        v = self.v.gather(1, k.reshape((*k.shape, 1, 1)).expand(k.shape + jn))
        return self.scheme.evaluate(theta, y0, v)
