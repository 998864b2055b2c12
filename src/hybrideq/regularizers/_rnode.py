"""RNODE's integrals as extra states: the augmented right-hand side.

``d/dt [y, e_1, …, e_k] = [f(t, y), q_1(t, y), …, q_k(t, y)]`` with ``q = ‖f‖²`` for the
kinetic energy and ``q = ‖εᵀ ∂f/∂y‖²`` (Hutchinson) or ``Σ_i ‖e_iᵀ ∂f/∂y‖²`` (exact) for
the Jacobian's Frobenius norm (REFERENCES.md §4). The ``e`` states start at 0 and do not
feed back into ``f``, so ``e_i(t1)`` is the integral over the solve.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hybrideq.regularizers._terms import JacobianFrobenius, KineticEnergy

__all__ = ["AugmentedDiffusion", "AugmentedField"]


class AugmentedField(nn.Module):
    """The right-hand side of ``[y, e]`` for ``ODEProblem(AugmentedField(...), ...)``.

    An ``nn.Module`` so that the adjoints find the parameters of a module ``f``.

    Args:
        f: the user's right-hand side ``f(t, y, p)``.
        n: the number of state components (``prod(state_shape)``).
        state_shape: the user's state shape (``f`` sees ``(batch, *state_shape)``).
        batched: whether the problem is a batch.
        terms: the integral regularizers, one extra state each, in order.
        eps: Hutchinson noise ``(batch, n)`` (``(n,)`` for one problem), fixed for the solve.
    """

    def __init__(
        self,
        f: Any,
        n: int,
        state_shape: tuple[int, ...],
        batched: bool,
        terms: list[KineticEnergy | JacobianFrobenius],
        eps: Tensor | None,
    ) -> None:
        super().__init__()
        self.f = f
        self.n = n
        self.state_shape = state_shape
        self.batched = batched
        self.terms = terms
        self.eps = eps

    def forward(self, t: Tensor, y: Tensor, p: Any) -> Tensor:
        n = self.n
        lead = y.shape[:-1]
        create = torch.is_grad_enabled()
        z = y[..., :n]
        with torch.enable_grad():
            zz = z if z.requires_grad else z.detach().requires_grad_(True)
            fz = self.f(t, zz.reshape(*lead, *self.state_shape), p)
            if not isinstance(fz, Tensor):
                raise TypeError(
                    "KineticEnergy/JacobianFrobenius need f to return a torch tensor, got "
                    f"{type(fz).__name__}"
                )
            fz = fz.reshape(*lead, n)
            extra = [self._term(term, fz, zz, create) for term in self.terms]
        out = torch.cat([fz, *extra], -1)
        return out if create else out.detach()

    def _term(
        self, term: KineticEnergy | JacobianFrobenius, fz: Tensor, zz: Tensor, create: bool
    ) -> Tensor:
        if isinstance(term, KineticEnergy):
            return fz.square().sum(-1, keepdim=True)
        if not fz.requires_grad:
            raise ValueError(
                "JacobianFrobenius needs f written in torch operations (autograd computes "
                "∂f/∂y); f's output carries no graph"
            )
        if term.estimator == "hutchinson":
            assert self.eps is not None
            vs = [self._vjp(fz, zz, self.eps.expand_as(fz), create)]
        else:
            eye = torch.eye(self.n, dtype=fz.dtype, device=fz.device)
            vs = [self._vjp(fz, zz, eye[i].expand_as(fz), create) for i in range(self.n)]
        return sum(v.square().sum(-1, keepdim=True) for v in vs)  # type: ignore[return-value]

    @staticmethod
    def _vjp(fz: Tensor, zz: Tensor, v: Tensor, create: bool) -> Tensor:
        # Rows of a batch are independent (the batch rule), so one product of the summed
        # output gives every sample's vᵀ J_b at once.
        (g,) = torch.autograd.grad(
            fz, zz, v, create_graph=create, retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(zz) if g is None else g


class AugmentedDiffusion(nn.Module):
    """The diffusion of ``[y, e]`` for an SDE: ``g`` for ``y``, zero rows for ``e``.

    The integrals are ``∫ q(t, y) dt`` along the stochastic path: no noise of their own.
    """

    def __init__(
        self, g: Any, n: int, k: int, state_shape: tuple[int, ...], matrix: bool, m: int
    ) -> None:
        super().__init__()
        self.g = g
        self.n, self.k, self.m = n, k, m
        self.state_shape = state_shape
        self.matrix = matrix

    def forward(self, t: Tensor, y: Tensor, p: Any) -> Tensor:
        lead = y.shape[:-1]
        z = y[..., : self.n].reshape(*lead, *self.state_shape)
        gz = self.g(t, z, p)
        if self.matrix:
            gz = gz.reshape(*lead, self.n, self.m)
            return torch.cat([gz, gz.new_zeros(*lead, self.k, self.m)], -2)
        gz = gz.reshape(*lead, self.n)
        return torch.cat([gz, gz.new_zeros(*lead, self.k)], -1)
