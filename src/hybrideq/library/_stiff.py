"""Stiff standard problems, each with an analytic Jacobian.

Most come from the *Test Set for IVP Solvers* (F. Mazzia, C. Magherini et al., University of
Bari, https://archimede.uniba.it/~testset/), whose published reference values are in
:func:`hybrideq.library.reference`; the Brusselator is from Hairer & Wanner, *Solving
Ordinary Differential Equations II* (2nd ed., Springer 1996), §IV.10.

Every right-hand side ``f(t, y, p)`` and Jacobian ``jac(t, y, p)`` works for one problem
(``y`` of shape ``(n,)``, ``t`` 0-d; they return ``(n,)`` and ``(n, n)``) and for a batch
(``y`` of shape ``(batch, n)``, ``t`` of shape ``(batch,)``; they return ``(batch, n)`` and
``(batch, n, n)``). ``p`` is a tensor of parameters of shape ``(P,)``, shared by the batch,
or ``(batch, P)``, one row per sample (pass it through :meth:`~hybrideq.ODEProblem.remake`).
They use torch operations only, so ``torch.func`` and autograd work through them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hybrideq.problems import ODEProblem

__all__ = [
    "POLLUTION_SPECIES",
    "brusselator_1d",
    "brusselator_1d_jac_sparse",
    "hires",
    "orego",
    "pollution",
    "prothero_robinson",
    "prothero_robinson_exact",
    "robertson",
    "stiff_linear",
    "stiff_linear_exact",
    "van_der_pol",
]

_Entry = Tensor | float


def _matrix(rows: Sequence[Sequence[_Entry]], y: Tensor, p: Tensor) -> Tensor:
    """Assemble a Jacobian ``(..., n, n)`` from its entries, broadcast over the batch.

    Entries are tensors of the batch shape (or 0-d) or plain numbers (structural zeros and
    constants); each is broadcast to ``broadcast(y.shape[:-1], p.shape[:-1])``.
    """
    shape = torch.broadcast_shapes(y.shape[:-1], p.shape[:-1])
    n = len(rows)
    consts = [0.0] * (n * n)
    idx: list[int] = []
    vals: list[Tensor] = []
    for i, row in enumerate(rows):
        for j, e in enumerate(row):
            if isinstance(e, Tensor):
                idx.append(i * n + j)
                vals.append(e)
            else:
                consts[i * n + j] = float(e)
    # The constants as a template, the tensor entries written in with one indexed copy
    # (a handful of operations instead of one per entry: this runs once per step).
    out = torch.tensor(consts, dtype=y.dtype, device=y.device).expand(*shape, n * n).clone()
    if vals:
        stacked = torch.stack(torch.broadcast_tensors(*vals), -1).expand(*shape, len(vals))
        out[..., idx] = stacked.to(y.dtype)
    return out.view(*shape, n, n)


def _params(values: Sequence[float], expected: int, name: str, dtype: torch.dtype) -> Tensor:
    """The parameter tensor ``(P,)``, after checking that ``values`` has ``expected`` entries."""
    if len(values) != expected:
        raise ValueError(f"{name} must have {expected} entries, got {len(values)}")
    return torch.tensor([float(v) for v in values], dtype=dtype)


# --------------------------------------------------------------------------- ROBER


def robertson(
    k: Sequence[float] = (0.04, 3e7, 1e4),
    tspan: tuple[float, float] = (0.0, 1e5),
    dae: bool = False,
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """ROBER: Robertson's autocatalytic reaction, three species, rates over nine decades.

    The IVP test set's problem ROBER (Mazzia & Magherini, *Test Set for IVP Solvers*;
    Hairer & Wanner II, §IV.10)::

        y1' = −k1 y1 + k3 y2 y3
        y2' =  k1 y1 − k2 y2² − k3 y2 y3
        y3' =  k2 y2²

    with ``k = (k1, k2, k3) = (0.04, 3e7, 1e4)`` and ``y(0) = (1, 0, 0)``. ``p`` is the
    tensor ``k``. The test set integrates to ``t = 1e11``; its reference value there is
    ``reference("robertson")`` (use ``tspan=(0.0, 1e11)``). The default span ``(0, 1e5)``
    is the one SciMLBenchmarks uses.

    With ``dae=True`` the index-1 DAE form replaces the third equation by the conservation
    law ``0 = y1 + y2 + y3 − 1``: ``mass_matrix = diag(1, 1, 0)`` and the Jacobian's third
    row is ``(1, 1, 1)``. It needs a solver that accepts a mass matrix.

    Args:
        k: the rate constants ``(k1, k2, k3)``.
        tspan: the span ``(t0, t1)``.
        dae: the DAE form with a singular mass matrix instead of the ODE.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac`` (and for ``dae=True``, ``mass_matrix``).

    Example:
        >>> import hybrideq as hq
        >>> hq.library.robertson().state_shape
        (3,)
        >>> hq.library.robertson(dae=True).mass_matrix.diagonal().tolist()
        [1.0, 1.0, 0.0]
    """

    # Stoichiometry S (species × reactions) of the three reactions A → B, 2B → B + C,
    # B + C → A + C: y' = S r with the rates r = (k1 y1, k2 y2², k3 y2 y3). Written as one
    # product (a few tensor operations per call instead of one per term).
    stoich = [[-1.0, 0.0, 1.0], [1.0, -1.0, -1.0], [0.0, 1.0, 0.0]]
    s_t: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        key = (y.device, y.dtype)
        st = s_t.get(key)
        if st is None:
            st = s_t[key] = torch.tensor(stoich, dtype=y.dtype, device=y.device).T.contiguous()
        y1, y2, y3 = y.unbind(-1)
        r = p * torch.stack([y1, y2 * y2, y2 * y3], -1)  # the three reaction rates
        out = r @ st
        if dae:  # 0 = y1 + y2 + y3 − 1
            return torch.cat([out[..., :2], y.sum(-1, keepdim=True) - 1.0], -1)
        return out

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        k1, k2, k3 = p[..., 0], p[..., 1], p[..., 2]
        y2, y3 = y[..., 1], y[..., 2]
        last: list[_Entry] = [1.0, 1.0, 1.0] if dae else [0.0, 2.0 * k2 * y2, 0.0]
        return _matrix(
            [
                [-k1, k3 * y3, k3 * y2],
                [k1, -2.0 * k2 * y2 - k3 * y3, -k3 * y2],
                last,
            ],
            y,
            p,
        )

    y0 = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    mass = torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=dtype)) if dae else None
    return ODEProblem(f, y0, tspan, _params(k, 3, "k", dtype), jac=jac, mass_matrix=mass)


# --------------------------------------------------------------------------- HIRES

_HIRES_K = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69, 0.0007)


def hires(
    k: Sequence[float] = _HIRES_K,
    tspan: tuple[float, float] = (0.0, 321.8122),
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """HIRES: the "High Irradiance RESponse" of photomorphogenesis, 8 species.

    The IVP test set's problem HIRES (Schäfer 1975; Mazzia & Magherini, *Test Set for IVP
    Solvers*; Hairer & Wanner II, §IV.10), with rates ``k = (k1, …, k9, o)``::

        y1' = −k1 y1 + k2 y2 + k6 y3 + o
        y2' =  k1 y1 − (k2 + k3) y2
        y3' = −(k6 + k1) y3 + k2 y4 + k5 y5
        y4' =  k3 y2 + k1 y3 − (k4 + k2) y4
        y5' = −(k5 + k1) y5 + k2 (y6 + y7)
        y6' = −k7 y6 y8 + k8 y4 + k1 y5 − k2 y6 + k8 y7
        y7' =  k7 y6 y8 − (k2 + k8 + k9) y7
        y8' = −k7 y6 y8 + (k2 + k8 + k9) y7

    ``k = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280, 0.69, 0.69, 0.0007)``: so ``y1'`` has
    ``0.43 y2`` (some copies wrongly print 0.34). ``y(0) = (1, 0, 0, 0, 0, 0, 0, 0.0057)``,
    ``t ∈ [0, 321.8122]``; the reference value at the end is ``reference("hires")``.
    ``p`` is the tensor ``k`` (10 entries).

    Args:
        k: the nine rate constants and the source term ``o``, in the order above.
        tspan: the span ``(t0, t1)``.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac``.

    Example:
        >>> import hybrideq as hq
        >>> hq.library.hires().state_shape
        (8,)
    """

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        k1, k2, k3, k4, k5 = p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4]
        k6, k7, k8, k9, o = p[..., 5], p[..., 6], p[..., 7], p[..., 8], p[..., 9]
        y1, y2, y3, y4 = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
        y5, y6, y7, y8 = y[..., 4], y[..., 5], y[..., 6], y[..., 7]
        f7 = k7 * y6 * y8 - (k2 + k8 + k9) * y7
        return torch.stack(
            [
                -k1 * y1 + k2 * y2 + k6 * y3 + o,
                k1 * y1 - (k2 + k3) * y2,
                -(k6 + k1) * y3 + k2 * y4 + k5 * y5,
                k3 * y2 + k1 * y3 - (k4 + k2) * y4,
                -(k5 + k1) * y5 + k2 * (y6 + y7),
                -k7 * y6 * y8 + k8 * y4 + k1 * y5 - k2 * y6 + k8 * y7,
                f7,
                -f7,
            ],
            -1,
        )

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        k1, k2, k3, k4, k5 = p[..., 0], p[..., 1], p[..., 2], p[..., 3], p[..., 4]
        k6, k7, k8, k9 = p[..., 5], p[..., 6], p[..., 7], p[..., 8]
        y6, y8 = y[..., 5], y[..., 7]
        a, b, c = k7 * y8, k7 * y6, k2 + k8 + k9
        z = 0.0
        return _matrix(
            [
                [-k1, k2, k6, z, z, z, z, z],
                [k1, -(k2 + k3), z, z, z, z, z, z],
                [z, z, -(k6 + k1), k2, k5, z, z, z],
                [z, k3, k1, -(k4 + k2), z, z, z, z],
                [z, z, z, z, -(k5 + k1), k2, k2, z],
                [z, z, z, k8, k1, -a - k2, k8, -b],
                [z, z, z, z, z, a, -c, b],
                [z, z, z, z, z, -a, c, -b],
            ],
            y,
            p,
        )

    y0 = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057], dtype=dtype)
    return ODEProblem(f, y0, tspan, _params(k, 10, "k", dtype), jac=jac)


# --------------------------------------------------------------------------- POLLU

# Species of the pollution model, y1 … y20 in this order (Verwer 1994).
POLLUTION_SPECIES = (
    "NO2", "NO", "O3P", "O3", "HO2", "OH", "HCHO", "CO", "ALD", "MEO2",
    "C2O3", "CO2", "PAN", "CH3O", "HNO3", "O1D", "SO2", "SO4", "NO3", "N2O5",
)  # fmt: skip

# The 25 reactions: (reactants, products), species numbered 1 … 20 as in the test set.
# Reaction j runs at r_j = k_j · Π[reactants]; y_i' = Σ_j (products − reactants)_ij r_j.
_POLLU_REACTIONS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((1,), (2, 3)),  # 1  NO2 → NO + O3P
    ((2, 4), (1,)),  # 2  NO + O3 → NO2
    ((5, 2), (1, 6)),  # 3  HO2 + NO → NO2 + OH
    ((7,), (5, 5, 8)),  # 4  HCHO → 2 HO2 + CO
    ((7,), (8,)),  # 5  HCHO → CO
    ((7, 6), (5, 8)),  # 6  HCHO + OH → HO2 + CO
    ((9,), (10, 5, 8)),  # 7  ALD → MEO2 + HO2 + CO
    ((9, 6), (11,)),  # 8  ALD + OH → C2O3
    ((11, 2), (10, 1, 12)),  # 9  C2O3 + NO → MEO2 + NO2 + CO2
    ((11, 1), (13,)),  # 10 C2O3 + NO2 → PAN
    ((13,), (11, 1)),  # 11 PAN → C2O3 + NO2
    ((10, 2), (14, 1)),  # 12 MEO2 + NO → CH3O + NO2
    ((14,), (7, 5)),  # 13 CH3O → HCHO + HO2
    ((1, 6), (15,)),  # 14 NO2 + OH → HNO3
    ((3,), (4,)),  # 15 O3P → O3
    ((4,), (16,)),  # 16 O3 → O1D
    ((4,), (3,)),  # 17 O3 → O3P
    ((16,), (6, 6)),  # 18 O1D → 2 OH
    ((16,), (3,)),  # 19 O1D → O3P
    ((17, 6), (18, 5)),  # 20 SO2 + OH → SO4 + HO2
    ((19,), (2,)),  # 21 NO3 → NO
    ((19,), (1, 3)),  # 22 NO3 → NO2 + O3P
    ((1, 4), (19,)),  # 23 NO2 + O3 → NO3
    ((19, 1), (20,)),  # 24 NO3 + NO2 → N2O5
    ((20,), (19, 1)),  # 25 N2O5 → NO3 + NO2
)

_POLLU_K = (
    0.35, 26.6, 1.23e4, 8.6e-4, 8.2e-4, 1.5e4, 1.3e-4, 2.4e4, 1.65e4, 9.0e3,
    0.022, 1.2e4, 1.88, 1.63e4, 4.8e6, 3.5e-4, 0.0175, 1.0e8, 4.44e11, 1240.0,
    2.1, 5.78, 0.0474, 1780.0, 3.12,
)  # fmt: skip


def _pollution_stoichiometry(dtype: torch.dtype) -> Tensor:
    """The net stoichiometric matrix ``S`` (20 × 25): ``y' = S r``."""
    s = torch.zeros(20, 25, dtype=dtype)
    for j, (reactants, products) in enumerate(_POLLU_REACTIONS):
        for i in reactants:
            s[i - 1, j] -= 1.0
        for i in products:
            s[i - 1, j] += 1.0
    return s


def pollution(
    k: Sequence[float] = _POLLU_K,
    tspan: tuple[float, float] = (0.0, 60.0),
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """POLLU: the air-pollution model of Verwer (1994), 20 species and 25 reactions.

    The IVP test set's problem POLLU (J. G. Verwer, "Gauss–Seidel iteration for stiff ODEs
    from chemical kinetics", SIAM J. Sci. Comput. 15 (1994); Mazzia & Magherini, *Test Set
    for IVP Solvers*, ``pollu.f``). Reaction ``j`` runs at ``r_j = k_j`` times the product
    of its reactants' concentrations, and ``y' = S r`` with ``S`` the net stoichiometry::

         1 NO2 → NO + O3P              14 NO2 + OH → HNO3
         2 NO + O3 → NO2               15 O3P → O3
         3 HO2 + NO → NO2 + OH         16 O3 → O1D
         4 HCHO → 2 HO2 + CO           17 O3 → O3P
         5 HCHO → CO                   18 O1D → 2 OH
         6 HCHO + OH → HO2 + CO        19 O1D → O3P
         7 ALD → MEO2 + HO2 + CO       20 SO2 + OH → SO4 + HO2
         8 ALD + OH → C2O3             21 NO3 → NO
         9 C2O3 + NO → MEO2 + NO2 + CO2  22 NO3 → NO2 + O3P
        10 C2O3 + NO2 → PAN            23 NO2 + O3 → NO3
        11 PAN → C2O3 + NO2            24 NO3 + NO2 → N2O5
        12 MEO2 + NO → CH3O + NO2      25 N2O5 → NO3 + NO2
        13 CH3O → HCHO + HO2

    The species ``y1 … y20`` are :data:`POLLUTION_SPECIES` (NO2, NO, O3P, O3, HO2, OH,
    HCHO, CO, ALD, MEO2, C2O3, CO2, PAN, CH3O, HNO3, O1D, SO2, SO4, NO3, N2O5). ``y(0)`` is
    zero except ``y2 = 0.2, y4 = 0.04, y7 = 0.1, y8 = 0.3, y9 = 0.01, y17 = 0.007``;
    ``t ∈ [0, 60]``; the reference value at the end is ``reference("pollution")``.
    ``p`` is the tensor of the 25 rate constants ``k``.

    Args:
        k: the 25 rate constants, in the order of the reactions.
        tspan: the span ``(t0, t1)``.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac``.

    Example:
        >>> import hybrideq as hq
        >>> prob = hq.library.pollution()
        >>> prob.state_shape, tuple(prob.p.shape)
        ((20,), (25,))
    """
    stoich = _pollution_stoichiometry(dtype)
    first = [r[0][0] - 1 for r in _POLLU_REACTIONS]
    # Bimolecular reactions: index of the second reactant; unimolecular ones use y_first.
    second = [r[0][1] - 1 if len(r[0]) == 2 else r[0][0] - 1 for r in _POLLU_REACTIONS]
    bimolecular = torch.tensor([len(r[0]) == 2 for r in _POLLU_REACTIONS])
    i_first, i_second = torch.tensor(first), torch.tensor(second)

    # The index tensors and S on the state's device and dtype, made once per (device, dtype).
    cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, ...]] = {}

    def _consts(y: Tensor) -> tuple[Tensor, ...]:
        key = (y.device, y.dtype)
        c = cache.get(key)
        if c is None:
            dev = y.device
            c = cache[key] = (
                stoich.to(device=dev, dtype=y.dtype),
                bimolecular.to(dev),
                i_first.to(dev),
                i_second.to(dev),
            )
        return c

    def _parts(y: Tensor, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(y_first, factor from the second reactant (1 if none), S) for every reaction."""
        s, mask, i1, i2 = _consts(y)
        a = y[..., i1]
        b = torch.where(mask, y[..., i2], 1.0)
        return a, b, s

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        a, b, s = _parts(y, p)
        r = p * a * b  # r_j = k_j y_first [y_second]
        return r @ s.T  # y' = S r

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        a, b, s = _parts(y, p)
        n = y.shape[-1]
        eye = torch.eye(n, dtype=y.dtype, device=y.device)
        _, mask, i1, i2 = _consts(y)
        # ∂r_j/∂y = k_j (y_second e_first + y_first e_second) for bimolecular reactions,
        # k_j e_first for unimolecular ones.
        d_first = (p * b).unsqueeze(-1) * eye[i1]
        d_second = (p * torch.where(mask, a, torch.zeros_like(a))).unsqueeze(-1) * eye[i2]
        return s @ (d_first + d_second)  # ∂f/∂y = S ∂r/∂y

    y0 = torch.zeros(20, dtype=dtype)
    for i, v in ((2, 0.2), (4, 0.04), (7, 0.1), (8, 0.3), (9, 0.01), (17, 0.007)):
        y0[i - 1] = v
    return ODEProblem(f, y0, tspan, _params(k, 25, "k", dtype), jac=jac)


# --------------------------------------------------------------------------- OREGO


def orego(
    s: float = 77.27,
    q: float = 8.375e-6,
    w: float = 0.161,
    y0: tuple[float, float, float] = (1.0, 2.0, 3.0),
    tspan: tuple[float, float] = (0.0, 360.0),
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """OREGO: the Oregonator, Field and Noyes' model of the Belousov–Zhabotinsky reaction.

    The IVP test set's problem OREGO (Mazzia & Magherini, *Test Set for IVP Solvers*;
    Hairer & Wanner II, §IV.1)::

        y1' = s (y2 + y1 (1 − q y1 − y2))
        y2' = (y3 − (1 + y1) y2) / s
        y3' = w (y1 − y3)

    with ``s = 77.27``, ``q = 8.375e-6``, ``w = 0.161``, ``y(0) = (1, 2, 3)`` and
    ``t ∈ [0, 360]``; the reference value at the end is ``reference("orego")``. ``p`` is
    the tensor ``(s, q, w)``.

    Args:
        s: the time-scale ratio ``s``.
        q: the coefficient ``q`` of the quadratic loss.
        w: the relaxation rate ``w`` of the third species.
        y0: the initial state.
        tspan: the span ``(t0, t1)``.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac``.

    Example:
        >>> import hybrideq as hq
        >>> hq.library.orego().state_shape
        (3,)
    """

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        s_, q_, w_ = p[..., 0], p[..., 1], p[..., 2]
        y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
        return torch.stack(
            [
                s_ * (y2 + y1 * (1.0 - q_ * y1 - y2)),
                (y3 - (1.0 + y1) * y2) / s_,
                w_ * (y1 - y3),
            ],
            -1,
        )

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        s_, q_, w_ = p[..., 0], p[..., 1], p[..., 2]
        y1, y2 = y[..., 0], y[..., 1]
        return _matrix(
            [
                [s_ * (1.0 - 2.0 * q_ * y1 - y2), s_ * (1.0 - y1), 0.0],
                [-y2 / s_, -(1.0 + y1) / s_, 1.0 / s_],
                [w_, 0.0, -w_],
            ],
            y,
            p,
        )

    p = torch.tensor([s, q, w], dtype=dtype)
    return ODEProblem(f, torch.tensor(y0, dtype=dtype), tspan, p, jac=jac)


# --------------------------------------------------------------------------- VDPOL


def van_der_pol(
    mu: float | None = None,
    tspan: tuple[float, float] | None = None,
    y0: tuple[float, float] = (2.0, 0.0),
    form: str = "testset",
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """VDPOL: the Van der Pol oscillator with a large damping parameter.

    Two forms of the same equation, ``p = (μ,)``:

    - ``form="testset"`` (the default; the IVP test set's problem VDPOL, Mazzia &
      Magherini, *Test Set for IVP Solvers*)::

          y1' = y2
          y2' = μ (1 − y1²) y2 − y1

      with ``μ = 1e3``, ``y(0) = (2, 0)``, ``t ∈ [0, 2000]``; the reference value at the end
      is ``reference("van_der_pol")``.
    - ``form="scaled"`` (the form of SciMLBenchmarks' "VanDerPol" work-precision
      benchmark, ``benchmarks/StiffODE/VanDerPol.jmd``, and of Hairer & Wanner II, §IV.10,
      with ``ε = 1/μ``)::

          y1' = y2
          y2' = μ ((1 − y1²) y2 − y1)

      with ``μ = 1e6``, ``y(0) = (2, 0)``, ``t ∈ [0, 6.3]``. Its ``μ`` is the square of the
      test-set form's (time ``t`` here is ``τ/√μ`` there and ``y2`` is ``√μ`` times larger).
      ``reference("van_der_pol_scaled")`` holds a value at ``t = 6.3`` computed here; there
      is no published one.

    Args:
        mu: the damping parameter; ``None`` gives ``1e3`` (testset) or ``1e6`` (scaled).
        tspan: the span; ``None`` gives ``(0, 2000)`` (testset) or ``(0, 6.3)`` (scaled).
        y0: the initial state ``(y1, y2)``.
        form: ``"testset"`` or ``"scaled"``.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac``.

    Raises:
        ValueError: ``form`` is neither ``"testset"`` nor ``"scaled"``.

    Example:
        >>> import hybrideq as hq
        >>> prob = hq.library.van_der_pol(form="scaled")
        >>> prob.p.item(), prob.tspan[1].item()
        (1000000.0, 6.3)
    """
    if form not in ("testset", "scaled"):
        raise ValueError(f"form must be 'testset' or 'scaled', got {form!r}")
    scaled = form == "scaled"
    if mu is None:
        mu = 1e6 if scaled else 1e3
    if tspan is None:
        tspan = (0.0, 6.3) if scaled else (0.0, 2000.0)

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        m = p[..., 0]
        y1, y2 = y[..., 0], y[..., 1]
        if scaled:
            return torch.stack([y2, m * ((1.0 - y1 * y1) * y2 - y1)], -1)
        return torch.stack([y2, m * (1.0 - y1 * y1) * y2 - y1], -1)

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        m = p[..., 0]
        y1, y2 = y[..., 0], y[..., 1]
        if scaled:
            row = [m * (-2.0 * y1 * y2 - 1.0), m * (1.0 - y1 * y1)]
        else:
            row = [-2.0 * m * y1 * y2 - 1.0, m * (1.0 - y1 * y1)]
        return _matrix([[0.0, 1.0], row], y, p)

    p = torch.tensor([mu], dtype=dtype)
    return ODEProblem(f, torch.tensor(y0, dtype=dtype), tspan, p, jac=jac)


# --------------------------------------------------------------------------- BRUSS


def _bruss_parts(y: Tensor) -> tuple[Tensor, Tensor, int]:
    """Split the interleaved state ``(u1, v1, u2, v2, …)`` into ``u`` and ``v``."""
    n_grid = y.shape[-1] // 2
    uv = y.reshape(*y.shape[:-1], n_grid, 2)
    return uv[..., 0], uv[..., 1], n_grid


@functools.lru_cache(maxsize=8)
def _bruss_pattern(n_grid: int) -> tuple[Tensor, Tensor]:
    """Row and column indices of the Jacobian's nonzeros, in row-major (coalesced) order.

    Row ``2i`` (``u_i``) couples to ``u_{i−1}, u_i, v_i, u_{i+1}``; row ``2i+1`` (``v_i``)
    to ``v_{i−1}, u_i, v_i, v_{i+1}``. Cached: callers must not modify the tensors.
    """
    n = 2 * n_grid
    rows, cols = [], []
    for r in range(n):
        for c in (r - 2, r - 1, r, r + 1, r + 2):
            if 0 <= c < n and (abs(c - r) != 1 or min(r, c) % 2 == 0):
                rows.append(r)
                cols.append(c)
    return torch.tensor(rows), torch.tensor(cols)


def _bruss_diagonals(y: Tensor, p: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The Jacobian's diagonals: main, +1, −1 (length 2N, 2N−1, 2N−1) and the ±2 value."""
    u, v, n_grid = _bruss_parts(y)
    c = p[..., 0] * (n_grid + 1) ** 2  # α (N+1)²
    c_col = c.unsqueeze(-1)
    uv2 = 2.0 * u * v
    usq = u * u
    main = torch.stack([uv2 - 4.0 - 2.0 * c_col, -usq - 2.0 * c_col], -1)  # ∂u_i'/∂u_i, ∂v_i'/∂v_i
    zeros = torch.zeros_like(u)
    # +1: (2i, 2i+1) = ∂u_i'/∂v_i = u_i², (2i+1, 2i+2) = 0; −1: (2i+1, 2i) = ∂v_i'/∂u_i.
    upper = torch.stack([usq, zeros], -1).reshape(*u.shape[:-1], -1)[..., :-1]
    lower = torch.stack([3.0 - uv2, zeros], -1).reshape(*u.shape[:-1], -1)[..., :-1]
    return main.reshape(*u.shape[:-1], -1), upper, lower, c


def brusselator_1d(
    n_grid: int = 500,
    alpha: float = 1.0 / 50.0,
    tspan: tuple[float, float] = (0.0, 10.0),
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """BRUSS: the one-dimensional Brusselator with diffusion, discretised by the method of lines.

    Hairer & Wanner II, §IV.10 (problem BRUSS): on ``N = n_grid`` interior points
    ``x_i = i/(N+1)``::

        u_i' = 1 + u_i² v_i − 4 u_i + α (N+1)² (u_{i−1} − 2 u_i + u_{i+1})
        v_i' = 3 u_i − u_i² v_i     + α (N+1)² (v_{i−1} − 2 v_i + v_{i+1})

    with boundary values ``u_0 = u_{N+1} = 1``, ``v_0 = v_{N+1} = 3`` and initial values
    ``u_i(0) = 1 + sin(2π x_i)``, ``v_i(0) = 3``; ``α = 1/50``, ``t ∈ [0, 10]``. The state
    interleaves the two fields, ``(u_1, v_1, u_2, v_2, …)``, so that the Jacobian is banded
    with bandwidth 2; ``n = 2N`` (1000 by default). ``p`` is the tensor ``(α,)``.

    The problem carries ``jac_prototype``, the sparsity pattern (``8N − 4`` nonzeros), and
    ``jac``, the dense Jacobian ``(n, n)`` (or ``(batch, n, n)``): fine at small ``N`` and
    for checks. For large ``N`` use :func:`brusselator_1d_jac_sparse` (same signature
    ``(t, y, p)``, one problem), which returns the Jacobian as a sparse COO tensor whose
    indices are exactly ``prob.jac_prototype.indices()``.

    Args:
        n_grid: the number ``N`` of interior grid points.
        alpha: the diffusion coefficient ``α``.
        tspan: the span ``(t0, t1)``.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac`` and ``jac_prototype``.

    Raises:
        ValueError: ``n_grid < 1``.

    Example:
        >>> import hybrideq as hq
        >>> prob = hq.library.brusselator_1d()
        >>> prob.state_shape, prob.jac_prototype.indices().shape[1]
        ((1000,), 3996)
    """
    if n_grid < 1:
        raise ValueError(f"n_grid must be at least 1, got {n_grid}")

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        u, v, n = _bruss_parts(y)
        c = (p[..., 0] * (n + 1) ** 2).unsqueeze(-1)  # α (N+1)², broadcast over the grid
        one, three = torch.ones_like(u[..., :1]), torch.full_like(v[..., :1], 3.0)
        u_ext = torch.cat([one, u, one], -1)  # with the boundary values u_0 = u_{N+1} = 1
        v_ext = torch.cat([three, v, three], -1)  # and v_0 = v_{N+1} = 3
        lap_u = u_ext[..., :-2] - 2.0 * u + u_ext[..., 2:]
        lap_v = v_ext[..., :-2] - 2.0 * v + v_ext[..., 2:]
        u2v = u * u * v
        du = 1.0 + u2v - 4.0 * u + c * lap_u
        dv = 3.0 * u - u2v + c * lap_v
        return torch.stack([du, dv], -1).reshape(y.shape)

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        main, upper, lower, c = _bruss_diagonals(y, p)
        band = c.unsqueeze(-1) * torch.ones_like(main[..., 2:])
        return (
            torch.diag_embed(main)
            + torch.diag_embed(upper, 1)
            + torch.diag_embed(lower, -1)
            + torch.diag_embed(band, 2)
            + torch.diag_embed(band, -2)
        )

    x = torch.arange(1, n_grid + 1, dtype=dtype) / (n_grid + 1)
    y0 = torch.stack([1.0 + torch.sin(2.0 * math.pi * x), torch.full_like(x, 3.0)], -1)
    rows, cols = _bruss_pattern(n_grid)
    n = 2 * n_grid
    proto = torch.sparse_coo_tensor(
        torch.stack([rows, cols]),
        torch.ones(rows.numel(), dtype=torch.bool),
        (n, n),
        check_invariants=True,
    ).coalesce()
    p = torch.tensor([alpha], dtype=dtype)
    return ODEProblem(f, y0.reshape(-1), tspan, p, jac=jac, jac_prototype=proto)


def brusselator_1d_jac_sparse(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
    """The Jacobian of :func:`brusselator_1d` as a sparse COO tensor ``(n, n)``.

    For one problem (``y`` of shape ``(n,)``, ``n = 2N``); ``N`` is read off ``y``. The
    result is coalesced and its indices equal ``brusselator_1d(N).jac_prototype.indices()``,
    so solvers can keep one symbolic factorisation and refresh the values.

    Args:
        t: the time (unused: the problem is autonomous).
        y: the interleaved state ``(u_1, v_1, …, u_N, v_N)``.
        p: the parameter tensor ``(α,)``.

    Returns:
        The Jacobian, ``8N − 4`` stored values.

    Raises:
        ValueError: ``y`` is not 1-D of even length.

    Example:
        >>> import hybrideq as hq
        >>> prob = hq.library.brusselator_1d(n_grid=3)
        >>> J = hq.library.brusselator_1d_jac_sparse(prob.tspan[0], prob.y0, prob.p)
        >>> bool((J.to_dense() == prob.jac(prob.tspan[0], prob.y0, prob.p)).all())
        True
    """
    if y.ndim != 1 or y.shape[0] % 2 != 0 or y.shape[0] == 0:
        raise ValueError(
            f"y must be one Brusselator state of shape (2N,), got {tuple(y.shape)}; "
            "for a batch call it per sample"
        )
    main, upper, lower, c = _bruss_diagonals(y, p)
    n = y.shape[0]
    rows, cols = _bruss_pattern(n // 2)
    rows, cols = rows.to(y.device), cols.to(y.device)
    off = cols - rows
    # Pick each stored value from its diagonal: offset 0 → main[r], +1 → upper[r],
    # −1 → lower[c], ±2 → c.
    r0 = torch.clamp(rows, max=n - 2)
    c0 = torch.clamp(cols, max=n - 2)
    vals = torch.where(
        off == 0,
        main[rows],
        torch.where(
            off == 1, upper[r0], torch.where(off == -1, lower[c0], c.expand_as(main)[rows])
        ),
    )
    return torch.sparse_coo_tensor(
        torch.stack([rows, cols]), vals, (n, n), check_invariants=True
    ).coalesce()


# --------------------------------------------------------------------------- exact solutions


def prothero_robinson(
    lam: float | Sequence[float] = -1e6,
    tspan: tuple[float, float] = (0.0, 10.0),
    n: int = 1,
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """The Prothero–Robinson problem ``y' = λ (y − φ(t)) + φ'(t)``, ``φ = sin``: exact ``sin t``.

    Prothero & Robinson, "On the stability and accuracy of one-step methods for solving stiff
    systems of ordinary differential equations", Math. Comp. 28 (1974); Hairer & Wanner II,
    §IV.15. With ``y(t0) = sin t0`` the solution is ``y(t) = sin t`` for every ``λ``: a stiff
    problem (``λ ≪ 0``) with a smooth exact solution, for order-reduction and convergence
    tests. :func:`prothero_robinson_exact` returns it.

    ``n`` independent copies make a state ``(n,)``; ``lam`` may give one ``λ_i`` per copy.
    ``p`` is the tensor ``(λ_1, …, λ_n)``; the Jacobian is ``diag(λ)``.

    Args:
        lam: ``λ`` (one number for all components, or ``n`` numbers).
        tspan: the span ``(t0, t1)``.
        n: the number of components.
        dtype: floating dtype of the state and parameters.

    Returns:
        The problem, with ``jac``.

    Raises:
        ValueError: ``lam`` has neither 1 nor ``n`` entries.

    Example:
        >>> import hybrideq as hq
        >>> hq.library.prothero_robinson(lam=(-1.0, -1e6), n=2).p.tolist()
        [-1.0, -1000000.0]
    """
    lams = [float(lam)] * n if isinstance(lam, (int, float)) else [float(v) for v in lam]
    if len(lams) == 1:
        lams = lams * n
    if len(lams) != n:
        raise ValueError(f"lam must have 1 or n={n} entries, got {len(lams)}")

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        tc = torch.as_tensor(t, dtype=y.dtype, device=y.device).unsqueeze(-1)
        return p * (y - torch.sin(tc)) + torch.cos(tc)

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        return torch.diag_embed(torch.broadcast_tensors(p, y)[0])

    y0 = torch.full((n,), math.sin(float(tspan[0])), dtype=dtype)
    return ODEProblem(f, y0, tspan, torch.tensor(lams, dtype=dtype), jac=jac)


def prothero_robinson_exact(
    t: Tensor | float, n: int = 1, dtype: torch.dtype = torch.float64
) -> Tensor:
    """The exact solution ``y(t) = sin t`` of :func:`prothero_robinson`, with ``n`` components.

    Args:
        t: a time (number or 0-d tensor) or a tensor of times ``(T,)``.
        n: the number of components of the problem.
        dtype: the dtype when ``t`` is a number.

    Returns:
        ``(n,)`` for one time, ``(T, n)`` for ``T`` times (``sol.y``'s layout).

    Example:
        >>> import hybrideq as hq
        >>> hq.library.prothero_robinson_exact(0.0, n=2).tolist()
        [0.0, 0.0]
    """
    tt = t if isinstance(t, Tensor) else torch.tensor(t, dtype=dtype)
    s = torch.sin(tt).unsqueeze(-1)
    return s.expand(*s.shape[:-1], n)


def stiff_linear(
    n: int = 8,
    eig_range: tuple[float, float] = (-1.0, -1e5),
    tspan: tuple[float, float] = (0.0, 1.0),
    y0: Sequence[float] | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """A stiff linear system ``y' = A y`` with exact solution ``exp(A (t − t0)) y0``.

    ``A = Q diag(λ) Qᵀ`` is symmetric (so normal and perfectly conditioned) with eigenvalues
    ``λ`` spaced geometrically from ``eig_range[0]`` to ``eig_range[1]`` (both negative;
    default −1 … −1e5, stiffness ratio 1e5), and ``Q`` the orthogonal factor of a seeded
    Gaussian matrix: the same ``seed`` gives the same ``A`` on every machine. The classic
    linear test for stiff solvers (Hairer & Wanner II, §IV.2); :func:`stiff_linear_exact`
    evaluates the exact solution with ``torch.linalg.matrix_exp``.

    ``p`` is the matrix ``A`` itself, ``(n, n)`` shared or ``(batch, n, n)`` per sample; the
    Jacobian is ``A``.

    Args:
        n: the dimension.
        eig_range: the first and last eigenvalue, both negative.
        tspan: the span ``(t0, t1)``.
        y0: the initial state; ``None`` gives all ones.
        seed: the seed of the random orthogonal ``Q``.
        dtype: floating dtype of the state and ``A``.

    Returns:
        The problem, with ``jac``.

    Raises:
        ValueError: ``n < 1``, an eigenvalue is not negative, or ``y0`` has the wrong length.

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.library.stiff_linear(n=4)
        >>> torch.linalg.eigvalsh(prob.p).round().tolist()
        [-100000.0, -2154.0, -46.0, -1.0]
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    lo, hi = float(eig_range[0]), float(eig_range[1])
    if not (lo < 0 and hi < 0):
        raise ValueError(f"eig_range must hold two negative eigenvalues, got {eig_range}")
    # λ_i = −exp(linspace(log|λ_first|, log|λ_last|, n)): geometric spacing.
    lam = -torch.exp(torch.linspace(math.log(-lo), math.log(-hi), n, dtype=torch.float64))
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # unique Q: positive diagonal of R
    a = (q * lam) @ q.T
    a = 0.5 * (a + a.T)  # symmetric to the last bit
    y0t = torch.ones(n, dtype=dtype) if y0 is None else torch.tensor(y0, dtype=dtype)
    if y0t.shape != (n,):
        raise ValueError(f"y0 must have {n} entries, got shape {tuple(y0t.shape)}")

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        return (p @ y.unsqueeze(-1)).squeeze(-1)

    def jac(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        return p.expand(*y.shape[:-1], *p.shape[-2:])

    return ODEProblem(f, y0t, tspan, a.to(dtype), jac=jac)


def stiff_linear_exact(prob: ODEProblem, t: Tensor | float) -> Tensor:
    """The exact solution ``y(t) = exp(A (t − t0)) y0`` of a :func:`stiff_linear` problem.

    Works for any problem whose ``p`` is the matrix ``A`` of ``y' = A y`` (``(n, n)``, or
    ``(batch, n, n)`` for a batch), including per-sample ``t0``.

    Args:
        prob: the problem (its ``p``, ``y0`` and ``tspan[0]`` are used).
        t: a time (number or 0-d tensor) or times ``(T,)``.

    Returns:
        One problem: ``(n,)`` for one time, ``(T, n)`` for ``T`` times. A batch:
        ``(batch, n)`` and ``(batch, T, n)`` (``sol.y``'s layout).

    Example:
        >>> import hybrideq as hq
        >>> prob = hq.library.stiff_linear(n=3)
        >>> hq.library.stiff_linear_exact(prob, 0.0).tolist()
        [1.0, 1.0, 1.0]
    """
    a, y0, t0 = prob.p, prob.y0, prob.tspan[0]
    tt = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
    scalar = tt.ndim == 0
    tt = tt.reshape(-1)  # (T,)
    if prob.batched:
        dt = tt - t0.reshape(-1, 1)  # (batch or 1, T)
        dt = dt.expand(prob.batch_size, tt.shape[0])
        m = torch.linalg.matrix_exp(a.unsqueeze(-3) * dt[..., None, None])  # (batch, T, n, n)
        y = (m @ y0[:, None, :, None]).squeeze(-1)  # (batch, T, n)
        return y[:, 0] if scalar else y
    m = torch.linalg.matrix_exp(a * (tt - t0)[:, None, None])  # (T, n, n)
    y = (m @ y0[:, None]).squeeze(-1)  # (T, n)
    return y[0] if scalar else y
