"""The SDE side of the torch engine: steppers and the per-sample step loop.

State is ``(batch, n)`` as for ODEs, the Brownian increments ``(batch, m)``. Every sample
has its own ``t``, ``h``, accept/reject decision, save pointer and return code. Steps end
exactly on the save times (no interpolation of a stochastic path), and every step queries
its increment ``W(t + h) − W(t)`` (with the space-time Lévy area where the method needs
it) from a :class:`~hybrideq.engines.torch.BrownianPath`. A rejected step simply queries the
shorter interval: the Brownian Interval conditions on everything it has drawn, so the path
is the same whatever steps are taken (the RSwM algorithms of Rackauckas & Nie 2017 solve
the same problem for a stored, non-conditioning noise process).

Stepper formulas (each class cites its source):

- ``EM``: ``y₁ = y + f h + G ΔW``.
- ``EulerHeun`` (Stratonovich): ``ỹ = y + G ΔW``, ``y₁ = y + f h + (G + G(ỹ)) ΔW / 2``.
- ``Milstein`` (derivative-free, diagonal noise): Kloeden & Platen (1992) §11.1.
- ``SRI``/``SRA``: Rößler (2010) through the tableaus of ``hybrideq.tableaus`` (module
  docstring of ``tableaus/_sde.py``), with StochasticDiffEq.jl's error estimate.
- ``ImplicitEM``: the drift-implicit θ-method, simplified Newton with one LU per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.torch._brownian import BrownianPath
from hybrideq.engines.torch._controller import PIController
from hybrideq.engines.torch._jacobian import JacobianProvider
from hybrideq.solution import ReturnCode
from hybrideq.solvers.sde import (
    EM,
    AbstractSDESolver,
    AbstractSRA,
    AbstractSRI,
    EulerHeun,
    ImplicitEM,
    Milstein,
    ReversibleHeun,
)
from hybrideq.tableaus import SRATableau, SRITableau

__all__ = ["SDELoopOptions", "SDELoopResult", "UserDiffusion", "make_sde_stepper", "run_sde_loop"]

_SUCCESS = int(ReturnCode.Success)
_MAXITERS = int(ReturnCode.MaxIters)
_DTMIN = int(ReturnCode.DtLessThanMin)
_UNSTABLE = int(ReturnCode.Unstable)
_CONVERGENCE = int(ReturnCode.ConvergenceFailure)

RHSFn = Callable[[Tensor, Tensor], Tensor]


class UserDiffusion:
    """Calls ``g(t, y, p)`` with the user's shapes; returns ``(batch, n)`` or ``(batch, n, m)``.

    The first call checks the shape: like ``y`` for diagonal, scalar and diagonal additive
    noise; ``(*y.shape, m)`` for general and matrix additive noise.
    """

    def __init__(
        self,
        g: Callable[..., Any],
        p: Any,
        batched: bool,
        state_shape: tuple[int, ...],
        matrix: bool,
        m: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.g, self.p = g, p
        self.batched, self.state_shape = batched, state_shape
        self.matrix, self.m = matrix, m
        self.dtype, self.device = dtype, device
        self.n = int(math.prod(state_shape))
        self.ncalls = 0
        self._checked = False

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        self.ncalls += 1
        batch = y.shape[0]
        if self.batched:
            out = self.g(t, y.reshape(batch, *self.state_shape), self.p)
        else:
            out = self.g(t[0], y.reshape(self.state_shape), self.p)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=self.dtype, device=self.device)
        lead = (batch, *self.state_shape) if self.batched else self.state_shape
        expected = (*lead, self.m) if self.matrix else lead
        if not self._checked:
            if tuple(out.shape) != tuple(expected):
                what = (
                    f"(*y.shape, m) = {tuple(expected)}"
                    if self.matrix
                    else f"the shape of y, {tuple(expected)}"
                )
                raise ValueError(
                    f"g returned shape {tuple(out.shape)}; for this noise type g(t, y, p) must "
                    f"return {what}"
                )
            if out.dtype != self.dtype:
                raise TypeError(
                    f"g returned dtype {out.dtype} but y0 has {self.dtype}; return the "
                    "state's dtype"
                )
            self._checked = True
        return out.reshape(batch, self.n, self.m) if self.matrix else out.reshape(batch, self.n)


def noise_product(gv: Tensor, dw: Tensor, matrix: bool) -> Tensor:
    """``G ΔW``: ``(batch, n, m) @ (batch, m)`` for matrix noise, else elementwise.

    For diagonal noise ``dw`` is ``(batch, n)``; for scalar noise ``(batch, 1)`` (broadcast).
    """
    if matrix:
        return torch.bmm(gv, dw.unsqueeze(-1)).squeeze(-1)
    return gv * dw


# --------------------------------------------------------------------------- steppers


class SDEStepper:
    """One step of a method for the whole batch: ``(t, h, y, ΔW, H) -> (y₁, E or None)``.

    ``h`` is ``(batch, 1)`` (zero for samples that do not step), ``ΔW``/``H`` are
    ``(batch, m)``. The error ``E`` (``(batch, n)``, adaptive methods only) is already the
    residual ``δ E₁ + E₂`` before scaling by the tolerances.
    """

    nf_per_step: int = 1
    ng_per_step: int = 1
    needs_levy: bool = False
    adaptive: bool = False
    controller_order: float = 1.0

    def __init__(self, f: RHSFn, g: RHSFn, matrix: bool) -> None:
        self.f, self.g, self.matrix = f, g, matrix
        self.njac = 0
        self.nlu = 0
        self.nnewton = 0
        self.nf_extra = 0  # evaluations of f beyond nf_per_step per step (Newton iterations)

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Returns ``(y₁, error residual or None, per-sample failure mask or None)``."""
        raise NotImplementedError


class EMStepper(SDEStepper):
    """Euler–Maruyama (Kloeden & Platen 1992, §9.1)."""

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        return y + h * self.f(t, y) + noise_product(self.g(t, y), dw, self.matrix), None, None


class EulerHeunStepper(SDEStepper):
    """Euler–Heun for Stratonovich SDEs (StochasticDiffEq.jl ``EulerHeun``)."""

    ng_per_step = 2

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        g0 = noise_product(self.g(t, y), dw, self.matrix)
        y_bar = y + g0
        g1 = noise_product(self.g(t, y_bar), dw, self.matrix)
        return y + h * self.f(t, y) + 0.5 * (g0 + g1), None, None


class ReversibleHeunStepper(SDEStepper):
    """Reversible Heun (Kidger et al. 2021, §3); carries ``(ŷ, μ, σ)`` between steps."""

    def __init__(self, f: RHSFn, g: RHSFn, matrix: bool) -> None:
        super().__init__(f, g, matrix)
        self.state: tuple[Tensor, Tensor, Tensor] | None = None

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if self.state is None:
            self.state = (y, self.f(t, y), self.g(t, y))
        y_hat, mu, sig = self.state
        gdw = noise_product(sig, dw, self.matrix)
        y_hat1 = 2.0 * y - y_hat + mu * h + gdw
        t1 = t + h[:, 0]
        mu1 = self.f(t1, y_hat1)
        sig1 = self.g(t1, y_hat1)
        y1 = y + 0.5 * (mu + mu1) * h + 0.5 * (gdw + noise_product(sig1, dw, self.matrix))
        moving = h[:, 0] != 0
        sig_mask = moving[:, None, None] if self.matrix else moving[:, None]
        self.state = (
            torch.where(moving[:, None], y_hat1, y_hat),
            torch.where(moving[:, None], mu1, mu),
            torch.where(sig_mask, sig1, sig),
        )
        return y1, None, None


class MilsteinStepper(SDEStepper):
    """Derivative-free Milstein for diagonal/scalar noise (Kloeden & Platen 1992, §11.1)."""

    ng_per_step = 2

    def __init__(self, f: RHSFn, g: RHSFn, matrix: bool, stratonovich: bool) -> None:
        super().__init__(f, g, matrix)
        self.stratonovich = stratonovich

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        f0 = self.f(t, y)
        g0 = self.g(t, y)
        sq = h.sqrt()
        drift = y + h * f0
        if self.matrix:  # matrix noise is additive here: the correction vanishes
            return drift + noise_product(g0, dw, True), None, None
        # Itô: the supporting value of Kloeden & Platen (11.1.5), ŷ = y + f h + g √h. For
        # Stratonovich the drift must stay out of it: (g(ŷ) − g)/√h ≈ g'g + g'f √h, and
        # against ΔW² (mean h, unlike ΔW² − h) the g'f term would leave a bias of order
        # h^1.5 per step, i.e. global order 1/2.
        y_hat = (y if self.stratonovich else drift) + g0 * sq
        g_hat = self.g(t, y_hat)
        i11 = dw * dw if self.stratonovich else dw * dw - h
        corr = (g_hat - g0) * i11 / (2.0 * sq.clamp_min(torch.finfo(y.dtype).tiny))
        return drift + g0 * dw + corr, None, None


def _needed(s: int, *uses: tuple[tuple[float, ...], ...] | tuple[float, ...]) -> list[bool]:
    """Which of ``s`` stages some coefficient uses (a nonzero weight or matrix column)."""
    need = [False] * s
    for use in uses:
        for i, entry in enumerate(use):
            if isinstance(entry, tuple):
                for j, a in enumerate(entry):
                    if a != 0.0:
                        need[j] = True
            elif entry != 0.0:
                need[i] = True
    return need


def _comb(coeffs: tuple[float, ...], ks: list[Tensor | None]) -> Tensor | None:
    """``Σ_j coeffs[j] ks[j]`` over the nonzero terms (one fused op per term), or ``None``."""
    out: Tensor | None = None
    for a, k in zip(coeffs, ks, strict=False):
        if a == 0.0 or k is None:
            continue
        out = k * a if out is None else out.add(k, alpha=a)
    return out


class SRIStepper(SDEStepper):
    """Rößler's SRI methods (StochasticDiffEq.jl ``perform_step/sri.jl``, generic SRI)."""

    needs_levy = True
    adaptive = True
    controller_order = 1.5

    def __init__(
        self,
        f: RHSFn,
        g: RHSFn,
        tab: SRITableau,
        delta: float,
        stiffness_stages: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(f, g, False)
        self.tab, self.delta = tab, delta
        # Two drift stages at one node: the last step's stiffness estimate, per sample
        # (set by each step when asked for with `record_stiffness`).
        self.stiffness_stages = stiffness_stages
        self.record_stiffness = False
        self.eigen_est: Tensor | None = None
        s = tab.stages
        # SRIW1 evaluates f on its first two stages only (α₃ = α₄ = 0): E₁ sums those
        # (StochasticDiffEq ``error_terms``); the other methods sum every stage.
        last = max(i for i in range(s) if tab.alpha[i] != 0.0)
        self.error_terms = last + 1
        self.need_f = _needed(s, tab.alpha, tab.A0, tab.A1)
        for i in range(self.error_terms):
            self.need_f[i] = True
        self.need_g = _needed(s, tab.beta1, tab.beta2, tab.beta3, tab.beta4, tab.B0, tab.B1)
        self.nf_per_step = sum(self.need_f)
        self.ng_per_step = sum(self.need_g)

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        tab = self.tab
        assert hh is not None
        sq = h.sqrt()
        safe_h = torch.where(h > 0, h, torch.ones_like(h))
        safe_sq = safe_h.sqrt()
        chi1 = (dw * dw - h) / (2.0 * safe_sq)  # I_(1,1)/√h
        chi2 = 0.5 * dw + hh  # I_(1,0)/h = ΔW/2 + H (H the space-time Lévy area)
        chi3 = (dw * dw * dw - 3.0 * h * dw) / (6.0 * safe_h)  # I_(1,1,1)/h
        fs: list[Tensor | None] = []
        gs: list[Tensor | None] = []
        h0s: list[Tensor | None] = []
        for i in range(tab.stages):
            fi = gi = h0 = None
            if self.need_f[i]:
                a = _comb(tab.A0[i], fs)
                b = _comb(tab.B0[i], gs)
                h0 = y if a is None else y + h * a
                h0 = h0 if b is None else h0 + chi2 * b
                fi = self.f(t + tab.c0[i] * h[:, 0], h0)
            h0s.append(h0)
            if self.need_g[i]:
                a = _comb(tab.A1[i], fs)
                b = _comb(tab.B1[i], gs)
                h1 = y if a is None else y + h * a
                h1 = h1 if b is None else h1 + sq * b
                gi = self.g(t + tab.c1[i] * h[:, 0], h1)
            fs.append(fi)
            gs.append(gi)
        drift = _comb(tab.alpha, fs)
        assert drift is not None
        b1 = _comb(tab.beta1, gs)
        b2 = _comb(tab.beta2, gs)
        b3 = _comb(tab.beta3, gs)
        b4 = _comb(tab.beta4, gs)
        e2 = torch.zeros_like(y)
        if b3 is not None:
            e2 = e2 + chi2 * b3
        if b4 is not None:
            e2 = e2 + chi3 * b4
        y1 = y + h * drift + e2
        if b1 is not None:
            y1 = y1 + dw * b1
        if b2 is not None:
            y1 = y1 + chi1 * b2
        e1 = _comb((1.0,) * self.error_terms, fs)
        assert e1 is not None
        if self.record_stiffness and self.stiffness_stages is not None:
            # ϱ = RMS(f(H0_j) − f(H0_i)) / RMS(H0_j − H0_i), both stages at c0 = 1
            # (StochasticDiffEq.jl perform_step/sri.jl, SOSRI2 in a composite).
            i, j = self.stiffness_stages
            fi, fj, gi_, gj_ = fs[i], fs[j], h0s[i], h0s[j]
            assert fi is not None and fj is not None and gi_ is not None and gj_ is not None
            num = torch.linalg.vector_norm(fj - fi, dim=-1)
            den = torch.linalg.vector_norm(gj_ - gi_, dim=-1)
            self.eigen_est = torch.where(den > 0, num / torch.where(den > 0, den, 1), 0.0)
        return y1, self.delta * (h * e1).abs() + e2.abs(), None


class SRAStepper(SDEStepper):
    """Rößler's SRA methods for additive noise (StochasticDiffEq.jl ``perform_step/sra.jl``)."""

    needs_levy = True
    adaptive = True
    controller_order = 2.0

    def __init__(self, f: RHSFn, g: RHSFn, matrix: bool, tab: SRATableau, delta: float) -> None:
        super().__init__(f, g, matrix)
        self.tab, self.delta = tab, delta
        s = tab.stages
        self.nf_per_step = s
        self.need_g = _needed(s, tab.beta1, tab.beta2, tab.B0)
        self.ng_per_step = sum(self.need_g)

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        tab = self.tab
        assert hh is not None
        chi2 = 0.5 * dw + hh  # I_(1,0)/h per Brownian component
        fs: list[Tensor | None] = []
        gchi: list[Tensor | None] = []  # G_j I_(1,0)/h
        gdw: list[Tensor | None] = []  # G_j ΔW
        for i in range(tab.stages):
            a = _comb(tab.A0[i], fs)
            b = _comb(tab.B0[i], gchi)
            hi = y if a is None else y + h * a
            hi = hi if b is None else hi + b
            fs.append(self.f(t + tab.c0[i] * h[:, 0], hi))
            if self.need_g[i]:
                # Additive noise: g does not depend on the state (called at H_i, as
                # StochasticDiffEq does, so a user's g may still read y).
                gv = self.g(t + tab.c1[i] * h[:, 0], hi)
                gchi.append(noise_product(gv, chi2, self.matrix))
                gdw.append(noise_product(gv, dw, self.matrix))
            else:
                gchi.append(None)
                gdw.append(None)
        drift = _comb(tab.alpha, fs)
        assert drift is not None
        e2 = _comb(tab.beta2, gchi)
        noise = _comb(tab.beta1, gdw)
        y1 = y + h * drift
        if noise is not None:
            y1 = y1 + noise
        if e2 is not None:
            y1 = y1 + e2
        e1 = _comb((1.0,) * tab.stages, fs)
        assert e1 is not None
        err = self.delta * (h * e1).abs()
        if e2 is not None:
            err = err + e2.abs()
        return y1, err, None


class ImplicitEMStepper(SDEStepper):
    """Drift-implicit θ-Euler–Maruyama with simplified Newton (one Jacobian/LU per step).

    Solves ``R(z) = z − y − h[(1 − θ) f(t, y) + θ f(t + h, z)] − G ΔW = 0`` with
    ``(I − θ h J(t, y)) Δz = −R(z)``, from the explicit predictor ``z = y + f h + G ΔW``.
    """

    def __init__(
        self,
        f: RHSFn,
        g: RHSFn,
        matrix: bool,
        n: int,
        theta: float,
        max_newton: int,
        newton_tol: float,
        rtol: Tensor,
        atol: Tensor,
    ) -> None:
        super().__init__(f, g, matrix)
        self.theta, self.max_newton, self.newton_tol = theta, max_newton, newton_tol
        self.rtol, self.atol = rtol, atol
        self.jac = JacobianProvider(f, n, None, True, False)
        self.n = n

    def step(
        self, t: Tensor, h: Tensor, y: Tensor, dw: Tensor, hh: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        th = self.theta
        f0 = self.f(t, y)
        gdw = noise_product(self.g(t, y), dw, self.matrix)
        explicit = y + (1.0 - th) * h * f0 + gdw
        z = y + h * f0 + gdw
        if th == 0.0:
            return explicit, None, None
        jac, _ = self.jac(t, y, f0)
        self.njac += 1
        eye = torch.eye(self.n, dtype=y.dtype, device=y.device)
        w = eye - (th * h)[:, :, None] * jac
        lu, piv, info = torch.linalg.lu_factor_ex(w)
        self.nlu += 1
        failed = info != 0
        t1 = t + h[:, 0]
        scale = self.atol + self.rtol * y.abs()
        converged = torch.zeros_like(failed)
        for _ in range(self.max_newton):
            self.nf_extra += 1
            res = z - explicit - th * h * self.f(t1, z)
            dz = torch.linalg.lu_solve(lu, piv, -res.unsqueeze(-1)).squeeze(-1)
            z = z + dz
            self.nnewton += 1
            nrm = (dz / scale).square().mean(-1).sqrt()
            converged = converged | (nrm <= self.newton_tol)
            if bool(converged.all()):
                break
        bad = failed | ~converged | ~torch.isfinite(z).all(-1)
        return z, None, bad


def make_sde_stepper(
    solver: AbstractSDESolver,
    f: RHSFn,
    g: RHSFn,
    matrix: bool,
    n: int,
    rtol: Tensor,
    atol: Tensor,
) -> SDEStepper:
    """The stepper that runs ``solver``."""
    if isinstance(solver, EM):
        return EMStepper(f, g, matrix)
    if isinstance(solver, EulerHeun):
        return EulerHeunStepper(f, g, matrix)
    if isinstance(solver, ReversibleHeun):
        return ReversibleHeunStepper(f, g, matrix)
    if isinstance(solver, Milstein):
        return MilsteinStepper(f, g, matrix, solver.interpretation == "stratonovich")
    if isinstance(solver, AbstractSRI):
        return SRIStepper(f, g, solver.tableau, solver.delta, solver.stiffness_stages)
    if isinstance(solver, AbstractSRA):
        return SRAStepper(f, g, matrix, solver.tableau, solver.delta)
    if isinstance(solver, ImplicitEM):
        return ImplicitEMStepper(
            f, g, matrix, n, solver.theta, solver.max_newton, solver.newton_tol, rtol, atol
        )
    raise ValueError(f"{solver.name} cannot solve an SDEProblem on the torch engine")


# --------------------------------------------------------------------------- loop


@dataclass
class SDELoopOptions:
    """Options of one run of the SDE step loop (validated by ``solve``)."""

    adaptive: bool
    dt: Tensor  # (batch,) positive: the fixed step, or the first adaptive step
    rtol: Tensor
    atol: Tensor
    dtmin: Tensor
    dtmax: Tensor
    maxiters: int
    saveat: Tensor | None  # (batch, T) or None: save every accepted step
    progress: Callable[[float], None] | None = None
    record_steps: bool = False  # keep the accepted step times (the adjoint's grid)
    joint: bool = False  # one step for the whole batch (error norm over the batch)
    # Record every attempted step's scaled error estimate EEst (with its autograd graph),
    # step size and acceptance: the solver heuristics the regularizers read.
    record_eest: bool = False
    # Only the first `error_components` state components enter the error norm.
    error_components: int | None = None


@dataclass
class SDELoopResult:
    """What the SDE step loop computed."""

    t: Tensor  # (batch, T)
    y: Tensor  # (batch, T, n)
    nsaved: Tensor | None
    y_final: Tensor
    t_final: Tensor
    retcode: Tensor
    nf: Tensor
    ng: Tensor
    naccept: Tensor
    nreject: Tensor
    ncalls: int
    njac: int
    nlu: int
    nnewton: int
    steps: list[Tensor] | None  # accepted (t_start, t_end) per iteration, when recorded
    heuristics: dict[str, Tensor] | None = None  # t, dt, accepted, eest: (iterations, batch)


def _lockstep(
    opts: SDELoopOptions, path: BrownianPath, t0: Tensor, t1: Tensor, dt: Tensor, dtype: torch.dtype
) -> bool:
    """Whether every sample takes the same steps (the fast path of :func:`run_sde_loop`).

    Fixed steps, or adaptive steps with ``stepping="joint"``, on one span with one save grid
    and one joint Brownian sampler.
    """
    if opts.adaptive and not opts.joint:
        return False
    if path.joint is None or dtype not in (torch.float64, torch.float32):
        return False
    if bool((t0 != t0[0]).any()) or bool((t1 != t1[0]).any()) or bool((dt != dt[0]).any()):
        return False
    return opts.saveat is None or bool((opts.saveat == opts.saveat[0]).all())


def run_sde_loop(
    stepper: SDEStepper,
    path: BrownianPath,
    y0: Tensor,
    t0: Tensor,
    t1: Tensor,
    opts: SDELoopOptions,
    ncalls: Callable[[], int],
) -> SDELoopResult:
    """Integrate every sample from ``t0`` to ``t1`` with its own steps (see module docstring)."""
    batch, n = y0.shape
    dtype, device = y0.dtype, y0.device
    y = y0
    t = t0.clone()
    dt = opts.dt.abs().clone()
    running = torch.ones(batch, dtype=torch.bool, device=device)
    retcode = torch.zeros(batch, dtype=torch.int64, device=device)
    naccept = torch.zeros(batch, dtype=torch.int64, device=device)
    nreject = torch.zeros(batch, dtype=torch.int64, device=device)
    nsteps = torch.zeros(batch, dtype=torch.int64, device=device)
    controller = None
    if opts.adaptive:
        order = stepper.controller_order
        ctl = PIController(
            beta1=7.0 / (10.0 * order),
            beta2=2.0 / (5.0 * order),
            qmax=9.0 / 8.0,
            qmax_first_step=9.0 / 8.0,
        )
        controller = ctl.start(batch, dtype, device)
    # Saving: rows (sample index, slot) and values, assembled once at the end.
    save_b: list[Tensor] = []
    save_k: list[Tensor] = []
    save_y: list[Tensor] = []
    save_t: list[Tensor] = []
    saveat = opts.saveat
    if saveat is not None:
        ptr = torch.zeros(batch, dtype=torch.int64, device=device)
        first = saveat[:, 0] == t0
        if bool(first.any()):
            idx = first.nonzero().squeeze(1)
            save_b.append(idx)
            save_k.append(torch.zeros_like(idx))
            save_y.append(y0[idx])
            ptr = ptr + first.long()
        tpad = torch.cat([saveat, t1[:, None]], 1)
    else:
        idx = torch.arange(batch, device=device)
        save_b.append(idx)
        save_k.append(torch.zeros_like(idx))
        save_y.append(y0)
        save_t.append(t0)
        count = torch.ones(batch, dtype=torch.int64, device=device)
    steps: list[Tensor] | None = [] if opts.record_steps else None
    heur: dict[str, list[Tensor]] = {"t": [], "dt": [], "accepted": [], "eest": [], "eig": []}
    n_err = opts.error_components if opts.error_components is not None else n
    if opts.record_eest and getattr(stepper, "stiffness_stages", None) is not None:
        stepper.record_stiffness = True  # type: ignore[attr-defined]
    span = (t1 - t0).abs()
    snap = 1e-9 * dt.clamp_min(torch.finfo(dtype).eps)
    iters = 0
    if _lockstep(opts, path, t0, t1, dt, dtype):
        # Every sample takes the same steps (fixed dt, one span, one save grid, one joint
        # Brownian sampler): step times in scalars, one query and one finiteness check per
        # step, none of the per-sample bookkeeping. The first anomaly (a non-finite state,
        # a failed Newton solve) hands over to the general loop below, which redoes that
        # step per sample; the times and values are those of the general loop, bit for bit.
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        tf = np_dtype(float(t0[0]))
        t_end = np_dtype(float(t1[0]))
        dtf = np_dtype(float(dt[0]))
        snapf = np_dtype(float(snap[0]))
        save_times = [np_dtype(x) for x in saveat[0].tolist()] if saveat is not None else None
        k_save = int(ptr[0]) if saveat is not None else 0
        joint = path.joint
        assert joint is not None
        ones = torch.ones(batch, 1, dtype=dtype, device=device)
        done_steps = 0
        rejected = 0
        failed_dtmin = False
        if controller is not None:  # PIState.propose on scalars (the batch is one system)
            ctl = controller.ctl
            errold_pow = float(controller.errold_pow[0])
            inv_qmax = float(controller.inv_qmax[0])
            inv_qmin = 1.0 / ctl.qmin
            dtmaxf = float(opts.dtmax[0])
            dtminf = float(opts.dtmin[0])
            tiny = torch.finfo(dtype).tiny
        while tf != t_end and iters < opts.maxiters:
            stop = t_end
            if save_times is not None and k_save < len(save_times):
                stop = min(stop, save_times[k_save])
            hf = min(dtf, np_dtype(stop - tf))
            tbf = np_dtype(tf + hf)
            if abs(stop - tbf) <= snapf:
                tbf = stop
            hf = np_dtype(tbf - tf)
            out = joint.increment(float(tf), float(tbf), levy=stepper.needs_levy)  # type: ignore[call-overload]
            dw, hh = (out[0], out[1]) if stepper.needs_levy else (out, None)
            t_vec = torch.full((batch,), float(tf), dtype=dtype, device=device)
            y_new, err, bad = stepper.step(t_vec, ones * float(hf), y, dw, hh)
            if opts.record_eest and err is not None:
                heur["t"].append(t_vec)
                heur["dt"].append(torch.full_like(t_vec, float(hf)))
                heur["eest"].append(_scaled_error(err, y, y_new, opts, n_err))
                _record_eigen(heur, stepper)
            if controller is not None and err is not None:
                eest_b = _scaled_error(err, y, y_new, opts, n_err).detach()
                eest_f = float((eest_b.square().sum() / batch).sqrt())
                if not math.isfinite(eest_f):
                    eest_f = math.inf
                iters += 1
                q11 = max(eest_f, tiny) ** ctl.beta1
                accepted = eest_f <= 1.0
                if accepted:
                    q = min(max(q11 * errold_pow * (1.0 / ctl.gamma), inv_qmax), inv_qmin)
                    proposal = float(dtf) / q
                    errold_pow = max(eest_f, ctl.qoldinit) ** (-ctl.beta2)
                    inv_qmax = 1.0 / ctl.qmax
                else:
                    proposal = float(dtf) / min(q11 * (1.0 / ctl.gamma), inv_qmin)
                dtf = np_dtype(min(proposal, dtmaxf))
                if opts.record_eest:
                    heur["accepted"].append(torch.full((batch,), accepted, device=device))
                if not accepted:
                    rejected += 1
                    if dtf < dtminf:
                        failed_dtmin = True
                        break
                    continue
                if tbf != t_end and dtf < dtminf:
                    failed_dtmin = True  # after this accepted step
            else:
                if (bad is not None and bool(bad.any())) or not bool(torch.isfinite(y_new).all()):
                    if opts.record_eest and err is not None:  # the general loop redoes it
                        for key in ("t", "dt", "eest", "eig"):
                            if heur[key]:
                                heur[key].pop()
                    break
                iters += 1
                if opts.record_eest and err is not None:
                    heur["accepted"].append(torch.ones(batch, dtype=torch.bool, device=device))
            done_steps += 1
            y = y_new
            if steps is not None:
                steps.append(
                    torch.tensor([float(tf), float(tbf)], dtype=dtype, device=device).expand(
                        batch, 2
                    )
                )
            tf = tbf
            if save_times is not None:
                if k_save < len(save_times) and tbf == save_times[k_save]:
                    save_b.append(torch.arange(batch, device=device))
                    save_k.append(torch.full((batch,), k_save, device=device))
                    save_y.append(y)
                    k_save += 1
            else:
                save_b.append(torch.arange(batch, device=device))
                save_k.append(count)
                save_y.append(y)
                save_t.append(torch.full((batch,), float(tbf), dtype=dtype, device=device))
                count = count + 1
            if opts.progress is not None:
                opts.progress(float((tf - t0[0]) / span[0]))
            if failed_dtmin:
                break
        t = torch.full((batch,), float(tf), dtype=dtype, device=device)
        dt = torch.full_like(dt, float(dtf))
        naccept = naccept + done_steps
        nreject = nreject + rejected
        nsteps = nsteps + done_steps + rejected
        if failed_dtmin and tf != t_end:
            retcode = torch.full_like(retcode, _DTMIN)
            running = torch.zeros_like(running)
        if saveat is not None:
            ptr = torch.full((batch,), k_save, dtype=torch.int64, device=device)
        done = t == t1
        retcode = torch.where(done, torch.full_like(retcode, _SUCCESS), retcode)
        running = running & ~done
    while bool(running.any()):
        if iters >= opts.maxiters:
            retcode = torch.where(running, torch.full_like(retcode, _MAXITERS), retcode)
            break
        iters += 1
        stop = tpad.gather(1, ptr[:, None]).squeeze(1) if saveat is not None else t1
        stop = torch.minimum(stop, t1)
        h = torch.minimum(dt, stop - t)
        tb = t + h
        # Land exactly on the stop when within round-off of it (accumulated fixed steps).
        tb = torch.where((stop - tb).abs() <= snap, stop, tb)
        tb = torch.where(running, tb, t)
        h = tb - t
        dw, hh = path.increments(t, tb, running, stepper.needs_levy)
        y_new, err, bad = stepper.step(t, h[:, None], y, dw, hh)
        eest_rec = None
        if err is not None and opts.record_eest:
            eest_rec = _scaled_error(err, y, y_new, opts, n_err)
        if err is not None and opts.adaptive:
            # The controller never carries a graph (step sizes are constants).
            eest = (
                eest_rec if eest_rec is not None else _scaled_error(err, y, y_new, opts, n_err)
            ).detach()
            eest = torch.where(torch.isfinite(eest), eest, torch.full_like(eest, math.inf))
            if opts.joint:  # one system: RMS over the running samples
                share = eest.square().where(running, torch.zeros_like(eest))
                eest = (share.sum() / running.sum().clamp_min(1)).sqrt().expand(batch)
            accept = running & (eest <= 1.0)
        else:
            eest = None
            accept = running.clone()
        if bad is not None:
            accept = accept & ~bad
        finite = torch.isfinite(y_new).all(-1)
        unstable = accept & ~finite
        if bool(unstable.any()):
            retcode = torch.where(unstable, torch.full_like(retcode, _UNSTABLE), retcode)
            running = running & ~unstable
            accept = accept & ~unstable
        if eest_rec is not None:
            heur["t"].append(t)
            heur["dt"].append(h.where(running, torch.zeros_like(h)))
            heur["accepted"].append(accept)
            heur["eest"].append(eest_rec)
            _record_eigen(heur, stepper)
        y = torch.where(accept[:, None], y_new, y)
        t = torch.where(accept, tb, t)
        naccept = naccept + accept.long()
        nreject = nreject + (running & ~accept).long()
        nsteps = nsteps + running.long()
        if steps is not None:
            steps.append(torch.where(accept[:, None], torch.stack([tb - h, tb], 1), tb[:, None]))
        if saveat is not None:
            hit = accept & (tb == stop) & (ptr < saveat.shape[1])
            hit = hit & (
                stop == saveat.gather(1, ptr.clamp_max(saveat.shape[1] - 1)[:, None])[:, 0]
            )
            if bool(hit.any()):
                idx = hit.nonzero().squeeze(1)
                save_b.append(idx)
                save_k.append(ptr[idx])
                save_y.append(y[idx])
                ptr = ptr + hit.long()
        elif bool(accept.any()):
            idx = accept.nonzero().squeeze(1)
            save_b.append(idx)
            save_k.append(count[idx])
            save_y.append(y[idx])
            save_t.append(t[idx])
            count = count + accept.long()
        done = running & (t == t1)
        retcode = torch.where(done, torch.full_like(retcode, _SUCCESS), retcode)
        running = running & ~done
        if controller is not None and eest is not None:
            proposal = controller.propose(dt, eest, accept | ~running)
            # A step shortened to land on a stop keeps the controller's own proposal.
            dt = torch.where(running, torch.minimum(proposal, opts.dtmax), dt)
            small = running & (dt < opts.dtmin)
            if bool(small.any()):
                retcode = torch.where(small, torch.full_like(retcode, _DTMIN), retcode)
                running = running & ~small
        if bad is not None:
            failed = running & bad
            if bool(failed.any()):
                if opts.adaptive:
                    dt = torch.where(failed, dt / 4, dt)
                    small = failed & (dt < opts.dtmin)
                else:
                    small = failed
                if bool(small.any()):
                    retcode = torch.where(small, torch.full_like(retcode, _CONVERGENCE), retcode)
                    running = running & ~small
        if opts.progress is not None:
            opts.progress(float((1.0 - (t1 - t).abs() / span).min()))
    # Assemble the saved values (differentiable: one index_put of the saved rows).
    if saveat is not None:
        T = saveat.shape[1]
        t_out = saveat
        nsaved = None
    else:
        T = int(count.max())
        nsaved = count
    out = torch.full((batch, T, n), math.nan, dtype=dtype, device=device)
    b_all = torch.cat(save_b)
    k_all = torch.cat(save_k)
    out = out.index_put((b_all, k_all), torch.cat(save_y))
    if saveat is None:
        tt = torch.full((batch, T), math.nan, dtype=dtype, device=device)
        tt = tt.index_put((b_all, k_all), torch.cat(save_t))
        last = (count - 1).clamp_min(0)
        fill = torch.arange(T, device=device)[None, :].expand(batch, T)
        src = torch.minimum(fill, last[:, None])
        out = out.gather(1, src[:, :, None].expand(batch, T, n))
        t_out = tt.gather(1, src)
    nf = nsteps * stepper.nf_per_step
    return SDELoopResult(
        t=t_out,
        y=out,
        nsaved=nsaved,
        y_final=y,
        t_final=t,
        retcode=retcode,
        nf=nf + stepper.nf_extra,
        ng=nsteps * stepper.ng_per_step,
        naccept=naccept,
        nreject=nreject,
        ncalls=ncalls(),
        njac=stepper.njac,
        nlu=stepper.nlu,
        nnewton=stepper.nnewton,
        steps=steps,
        heuristics={k: torch.stack(v) for k, v in heur.items() if v} if heur["t"] else None,
    )


def _record_eigen(heur: dict[str, list[Tensor]], stepper: SDEStepper) -> None:
    eig = getattr(stepper, "eigen_est", None)
    if getattr(stepper, "record_stiffness", False) and eig is not None:
        heur["eig"].append(eig)


def _scaled_error(
    err: Tensor, y: Tensor, y_new: Tensor, opts: SDELoopOptions, n_err: int | None = None
) -> Tensor:
    """``EEst = RMS(err / (atol + max(|y|, |y_new|)·rtol))`` per sample.

    Only the first ``n_err`` components count (extra states riding along do not).
    """
    scale = opts.atol + torch.maximum(y.abs(), y_new.abs()) * opts.rtol
    r = err / scale
    if n_err is not None and n_err != r.shape[-1]:
        r = r[..., :n_err]
    # vector_norm has a zero gradient at 0 (a zero step); sqrt(mean(x²)) would give NaN.
    return torch.linalg.vector_norm(r, dim=-1) * (1.0 / r.shape[-1] ** 0.5)
