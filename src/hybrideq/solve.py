"""``solve``: the one way in. Validates options, picks the engine, dispatches."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines import resolve_engine
from hybrideq.engines.torch import SolveOptions, solve_ode
from hybrideq.engines.torch._dae_init import INIT_ALGS
from hybrideq.problems import AbstractProblem, ODEProblem, SDEProblem
from hybrideq.sensitivity import AbstractSensitivityAlgorithm
from hybrideq.solution import Solution
from hybrideq.solvers import AbstractODESolver, AbstractSolver
from hybrideq.solvers.sde import AbstractSDESolver

__all__ = ["solve"]


def _tolerance(name: str, x: Any, prob: AbstractProblem) -> Tensor:
    t = torch.as_tensor(x, dtype=prob.dtype, device=prob.device)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be positive and finite, got {x!r}")
    if t.ndim > 0:
        n = int(np.prod(prob.state_shape))
        if t.numel() != n:
            raise ValueError(
                f"{name} must be a scalar or have one entry per state component "
                f"({n}), got shape {tuple(t.shape)}"
            )
        t = t.reshape(1, n)
    return t


def _positive(name: str, x: Any, prob: AbstractProblem) -> Tensor:
    t = torch.as_tensor(x, dtype=prob.dtype, device=prob.device)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != prob.batch_size):
        raise ValueError(f"{name} must be a scalar or a ({prob.batch_size},) tensor")
    if bool((t <= 0).any()) or bool(torch.isnan(t).any()):
        raise ValueError(f"{name} must be positive, got {x!r}")
    return t.expand(prob.batch_size).contiguous()


def _saveat(x: Any, prob: AbstractProblem) -> tuple[Tensor, bool]:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, (int, float)):
        raise TypeError(
            "saveat must be a sequence of times; to save at a fixed interval pass "
            "torch.arange(t0, t1 + dt/2, dt)"
        )
    # Lists and numbers take the problem's dtype directly (a float32 detour would round
    # e.g. 321.8122 to 321.81219482…).
    s = (
        torch.as_tensor(x, device=prob.device)
        if isinstance(x, Tensor)
        else torch.as_tensor(x, dtype=prob.dtype, device=prob.device)
    )
    if isinstance(x, Tensor):
        if x.dtype != prob.dtype:
            raise TypeError(
                f"saveat has dtype {x.dtype} but y0 has {prob.dtype}; use saveat.to(y0.dtype)"
            )
        if x.device != prob.device:
            raise ValueError(f"saveat is on {x.device} but y0 is on {prob.device}; move it")
    s = s.to(prob.dtype)
    batch = prob.batch_size
    if s.ndim == 1:
        shared = True
        s2 = s[None, :].expand(batch, -1)
    elif s.ndim == 2 and prob.batched and s.shape[0] == batch:
        shared = False
        s2 = s
    else:
        raise ValueError(
            f"saveat must have shape (T,) or, for a batch, ({batch}, T); got {tuple(s.shape)}"
        )
    if s2.shape[1] == 0:
        raise ValueError("saveat is empty; pass at least one time or leave saveat=None")
    if not bool(torch.isfinite(s2).all()):
        raise ValueError("saveat contains NaN or Inf")
    t0 = prob.tspan[0].expand(batch)[:, None]
    t1 = prob.tspan[1].expand(batch)[:, None]
    direction = torch.sign(t1 - t0)
    d = (s2[:, 1:] - s2[:, :-1]) * direction
    if bool((d <= 0).any()):
        raise ValueError(
            "saveat must be strictly monotone in the direction of integration "
            "(increasing for t1 > t0, decreasing for t1 < t0)"
        )
    span = (t1 - t0).abs()
    tol = 1e-12 * torch.clamp(span, min=1.0) if prob.dtype == torch.float64 else 1e-6 * span
    outside = ((s2 - t0) * direction < -tol) | ((s2 - t1) * direction > tol)
    if bool(outside.any()):
        raise ValueError(
            "saveat has times outside tspan; every save time must lie in [t0, t1] "
            "(per sample for per-sample spans)"
        )
    # Clamp round-off at the ends so that the last save time is exactly t1.
    lo = torch.minimum(t0, t1)
    hi = torch.maximum(t0, t1)
    s2 = torch.minimum(torch.maximum(s2, lo), hi)
    return s2.contiguous(), shared


@dataclass
class Internal:
    """Engine options that the regularizers set (never passed by users).

    Attributes:
        error_components: only the first this many state components enter the error norm.
        stiffness_rms: also record the RMS-ratio stiffness estimate.
        internal_heuristics: heuristics are recorded for internal use (no adjoint warning).
        record_eest: SDEs: record each step's scaled error estimate.
    """

    error_components: int | None = None
    stiffness_rms: bool = False
    internal_heuristics: bool = False
    record_eest: bool = False


def solve(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    *,
    saveat: Any = None,
    rtol: float | Tensor | None = None,
    atol: float | Tensor | None = None,
    dt: float | Tensor | None = None,
    adaptive: bool | None = None,
    dtmin: float | Tensor | None = None,
    dtmax: float | Tensor | None = None,
    maxiters: int = 100_000,
    dense: bool | None = None,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    heuristics: bool = False,
    progress: bool = False,
    stepping: str = "per_sample",
    initializealg: str = "auto",
    seed: int | None = None,
    brownian: Any = None,
    engine: str = "auto",
    regularizer: Any = None,
) -> Solution:
    """Solve a differential-equation problem.

    Keyword names follow DifferentialEquations.jl.

    Args:
        prob: the problem, e.g. :class:`~hybrideq.ODEProblem`.
        solver: a solver spec object, e.g. ``Tsit5()``.
        saveat: times to save at: ``(T,)`` shared by all samples, or ``(batch, T)`` per
            sample. ``None`` saves every accepted step (for a batch, rows are padded with
            the last step; ``sol.nsaved`` gives each row's length).
        rtol: relative tolerance (scalar or one per state component). Default ``1e-3``
            for ODEs, ``1e-2`` for SDEs (DifferentialEquations.jl's defaults).
        atol: absolute tolerance (scalar or one per state component). Default ``1e-6``
            for ODEs, ``1e-2`` for SDEs.
        dt: the initial step for adaptive solvers (default: automatic), the step for
            fixed-step solvers (required). A positive number; its sign follows tspan.
        adaptive: ``False`` takes fixed steps of ``dt`` with any Runge–Kutta method.
            Default: adaptive where the method has an error estimate.
        dtmin: smallest step magnitude; below it a sample stops with
            ``ReturnCode.DtLessThanMin``. Default: ``16·eps·max(|t0|, |t1|)``.
        dtmax: largest step magnitude (default: the span length).
        maxiters: largest number of attempted steps per sample (then
            ``ReturnCode.MaxIters``).
        dense: keep the dense output for ``sol(t)``. Default: ``True`` when ``saveat`` is
            ``None``.
        sensealg: how gradients are computed: ``DirectBackprop()`` (the default),
            ``BacksolveAdjoint()`` or ``InterpolatingAdjoint()``. Adjoints differentiate
            ``sol.y`` with respect to ``y0``, a tensor ``p`` (or tensors in a tuple, list,
            dict or module ``p``) and the parameters of an ``nn.Module`` ``f``.
        heuristics: record the solver's per-step heuristics (``EEst``, stiffness
            estimate) in ``sol.heuristics``. For SDEs: the scaled error estimates of the
            adaptive methods (``SRIW1``, ``SOSRI``, ``SRA1``, ``SOSRA``).
        progress: show a progress bar (tqdm) over the span.
        stepping: ``"per_sample"`` (the default): every sample of a batch has its own
            step size, accept/reject decision and error control. ``"joint"``: one step
            for the whole batch, with the error norm taken over the whole batch as if it
            were one system (what torchdiffeq does); needs a shared ``tspan``. Joint
            stepping can take fewer steps for a homogeneous batch (training minibatches),
            but a hard sample sets everyone's step and each sample's accuracy is only
            controlled on average.
        initializealg: how the initial values of a DAE (a singular ``mass_matrix``) are
            made consistent with its algebraic equations, as DifferentialEquations.jl's
            ``initializealg``. ``"auto"`` (the default): where ``y0`` violates them beyond
            the tolerances (weighted RMS norm with ``atol + rtol·|y|`` above 1), solve them
            for the algebraic variables by Newton's method, keeping the differential ones
            (Brown, Hindmarsh & Petzold's ``BrownFullBasicInit``); ``"brown"``: always
            (polishes a consistent ``y0`` too); ``"check"``: only check; ``"none"``:
            integrate ``y0`` as given. An inconsistent sample under ``"check"``, or one where
            Newton fails, is not integrated and ends with ``ReturnCode.InitialFailure``
            (under ``stepping="joint"`` the batch is one system: one such sample fails all).
            The mass matrix must be in semi-explicit form (zero rows and columns for the
            algebraic equations and variables) for ``"auto"``/``"brown"`` to correct
            ``y0``. No effect without a mass matrix. See the example below.
        seed: SDEs only: the seed of a new Brownian path (a non-negative int); the same
            seed and the same solver settings give the same path and solution. Default: a
            seed drawn from torch's global generator (so ``torch.manual_seed`` makes a
            script repeatable), recorded in ``sol.W.seed``.
        brownian: SDEs only: integrate on an existing path instead of a new one, e.g.
            ``sol.W`` of an earlier solve (the same path at other step sizes, for
            convergence studies), or a :class:`~hybrideq.BrownianInterval` /
            :class:`~hybrideq.BrownianTree` of shape ``(batch, m)`` (``(m,)`` for one
            problem).
        engine: ``"auto"``, ``"torch"`` or ``"julia"``.
        regularizer: a spec from :mod:`hybrideq.regularizers` (or a sum or list of them):
            its value per sample comes back, differentiable, in ``sol.regularization``,
            so that a loss is ``task + λ · sol.regularization.mean()``. The global
            solver-heuristic terms (``ErrorEstimate``, ``StiffnessEstimate``) need
            ``sensealg=DirectBackprop()``; the local (``LocalErrorEstimate``,
            ``LocalStiffnessEstimate``) and RNODE terms (``KineticEnergy``,
            ``JacobianFrobenius``) work with every ``sensealg``. See the regularization
            page of the docs.

    For an :class:`~hybrideq.SDEProblem`, fixed-step methods (``EM``, ``EulerHeun``,
    ``Milstein``, ``ImplicitEM``) need ``dt``; the adaptive Rößler methods (``SRIW1``,
    ``SOSRI``, ``SRA1``, ``SOSRA``) control their strong local error with ``rtol``/``atol``
    (or take fixed steps with ``adaptive=False, dt=...``). Steps end exactly on the
    ``saveat`` times; ``dense`` does not apply, and ``heuristics=True`` records the adaptive
    methods' scaled error estimates (and SOSRI2's stiffness estimate). ``sensealg`` may be
    ``DirectBackprop()`` or the stochastic ``BacksolveAdjoint()``, which integrates the
    adjoint backwards on the same Brownian path.

    Returns:
        A :class:`~hybrideq.Solution`.

    Raises:
        TypeError: for arguments of the wrong type or dtype.
        ValueError: for arguments with wrong shapes or values; each message names the
            argument and the fix.

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.ODEProblem(
        ...     lambda t, y, p: -p * y,
        ...     torch.ones(3, dtype=torch.float64),
        ...     (0.0, 1.0),
        ...     p=torch.tensor(2.0, dtype=torch.float64),
        ... )
        >>> sol = hq.solve(
        ...     prob,
        ...     hq.Tsit5(),
        ...     saveat=torch.linspace(0, 1, 11, dtype=torch.float64),
        ...     rtol=1e-8,
        ...     atol=1e-10,
        ... )
        >>> sol.y.shape, round(float(sol.y[-1, 0]), 6)
        (torch.Size([11, 3]), 0.135335)

        An index-1 DAE whose ``y0`` violates ``0 = y1 + y2 + y3 − 1``: the default
        ``initializealg="auto"`` starts from the consistent ``y3 = 0``.

        >>> rober = hq.library.robertson(dae=True, tspan=(0.0, 1.0))
        >>> rober = rober.remake(y0=torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64))
        >>> sol = hq.solve(rober, hq.Rodas5P(), saveat=[0.0, 1.0], rtol=1e-8, atol=1e-10)
        >>> sol.y[0].tolist()
        [1.0, 0.0, 0.0]
        >>> hq.solve(rober, hq.Rodas5P(), initializealg="check").retcode
        <ReturnCode.InitialFailure: 6>
    """
    _check_types(prob, solver, sensealg)
    kwargs: dict[str, Any] = dict(
        saveat=saveat,
        rtol=rtol,
        atol=atol,
        dt=dt,
        adaptive=adaptive,
        dtmin=dtmin,
        dtmax=dtmax,
        maxiters=maxiters,
        dense=dense,
        sensealg=sensealg,
        heuristics=heuristics,
        progress=progress,
        stepping=stepping,
        initializealg=initializealg,
        seed=seed,
        brownian=brownian,
        engine=engine,
    )
    if regularizer is not None:
        from hybrideq.regularizers._apply import solve_regularized

        return solve_regularized(prob, solver, regularizer, kwargs)
    return _solve(prob, solver, **kwargs)


def _check_types(prob: Any, solver: Any, sensealg: Any) -> None:
    """The type checks every solve starts with."""
    if not isinstance(prob, (ODEProblem, SDEProblem)):
        raise TypeError(f"prob must be an ODEProblem or an SDEProblem, got {type(prob).__name__}")
    if inspect.isclass(solver) and issubclass(solver, AbstractSolver):
        raise TypeError(f"pass a solver instance, e.g. {solver.__name__}(), not the class")
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be a solver object such as Tsit5(), got {solver!r}")
    if sensealg is not None and not isinstance(sensealg, AbstractSensitivityAlgorithm):
        raise TypeError(
            f"sensealg must be e.g. InterpolatingAdjoint() (an instance), got {sensealg!r}"
        )


def _solve(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    *,
    saveat: Any = None,
    rtol: float | Tensor | None = None,
    atol: float | Tensor | None = None,
    dt: float | Tensor | None = None,
    adaptive: bool | None = None,
    dtmin: float | Tensor | None = None,
    dtmax: float | Tensor | None = None,
    maxiters: int = 100_000,
    dense: bool | None = None,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    heuristics: bool = False,
    progress: bool = False,
    stepping: str = "per_sample",
    initializealg: str = "auto",
    seed: int | None = None,
    brownian: Any = None,
    engine: str = "auto",
    internal: Internal | None = None,
) -> Solution:
    """:func:`solve` without the regularizer (and with the regularizers' engine options)."""
    internal = internal if internal is not None else Internal()
    sde = isinstance(prob, SDEProblem)
    if not sde and (seed is not None or brownian is not None):
        raise ValueError("seed and brownian are for SDEProblems; an ODE solve takes neither")
    rtol = (1e-2 if sde else 1e-3) if rtol is None else rtol
    atol = (1e-2 if sde else 1e-6) if atol is None else atol
    which = resolve_engine(
        prob,
        solver,
        engine,
        sensealg=sensealg,
        options={
            "heuristics": heuristics,
            "progress": progress,
            "dense": dense,
            "stepping": stepping,
            "initializealg": initializealg,
            "brownian": brownian,
            "internal": None if internal == Internal() else internal,
            "saveat": None if saveat is None else torch.as_tensor(saveat),
        },
    )
    if which == "julia":
        from hybrideq.engines.julia._engine import solve_julia

        return solve_julia(
            prob,
            solver,
            saveat=None if saveat is None else torch.as_tensor(saveat, dtype=torch.float64),
            rtol=rtol,
            atol=atol,
            dt=dt,
            adaptive=adaptive,
            dtmin=dtmin,
            dtmax=dtmax,
            maxiters=maxiters,
            dense=dense,
            sensealg=sensealg,
            seed=seed,
        )
    if sde:
        assert isinstance(prob, SDEProblem)
        return _solve_sde(
            prob,
            solver,
            saveat=saveat,
            rtol=rtol,
            atol=atol,
            dt=dt,
            adaptive=adaptive,
            dtmin=dtmin,
            dtmax=dtmax,
            maxiters=maxiters,
            dense=dense,
            sensealg=sensealg,
            heuristics=heuristics,
            progress=progress,
            stepping=stepping,
            seed=seed,
            brownian=brownian,
            internal=internal,
        )
    if isinstance(solver, AbstractSDESolver):
        raise ValueError(
            f"{solver.name} is an SDE method; an ODEProblem needs an ODE solver such as Tsit5()"
        )
    if not isinstance(solver, AbstractODESolver):
        raise ValueError(f"{solver.name} cannot solve an ODEProblem on the torch engine")
    batch = prob.batch_size
    rt = _tolerance("rtol", rtol, prob)
    at = _tolerance("atol", atol, prob)
    eps = torch.finfo(prob.dtype).eps
    if float(rt.min()) < eps:
        warnings.warn(
            f"rtol={float(rt.min()):g} is below the resolution of {prob.dtype} "
            f"(eps = {eps:.2g}): the error control cannot meet it, so the solver takes tiny "
            "steps or stops early; use float64 (e.g. y0.double()) or rtol >= "
            f"{10 * eps:.0e}",
            stacklevel=2,
        )
    if adaptive is None:
        adaptive = solver.is_adaptive
    elif adaptive and not solver.is_adaptive:
        raise ValueError(
            f"{solver.name} has no error estimate, so it cannot be adaptive; pass dt=... "
            "for fixed steps or use an adaptive method such as Tsit5()"
        )
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    direction = torch.sign(t1 - t0)
    span = (t1 - t0).abs()
    dt_t: Tensor | None = None
    if dt is not None:
        d = torch.as_tensor(dt, dtype=prob.dtype, device=prob.device)
        if d.ndim > 1 or (d.ndim == 1 and d.shape[0] != batch):
            raise ValueError(f"dt must be a scalar or a ({batch},) tensor")
        if not bool(torch.isfinite(d).all()) or bool((d == 0).any()):
            raise ValueError(f"dt must be finite and non-zero, got {dt!r}")
        if bool(((d < 0) & (direction > 0)).any()):
            raise ValueError(
                "dt is negative but tspan runs forwards: pass a positive dt; its direction "
                "follows tspan"
            )
        dt_t = (d.abs() * direction).expand(batch).contiguous()
    if not adaptive and dt_t is None:
        raise ValueError(f"{solver.name} takes fixed steps here and needs a step size: pass dt=...")
    eps = torch.finfo(prob.dtype).eps
    dtmin_t = (
        _positive("dtmin", dtmin, prob)
        if dtmin is not None
        else 16 * eps * torch.maximum(t0.abs(), t1.abs()).clamp_min(1e-300)
    )
    dtmax_t = _positive("dtmax", dtmax, prob) if dtmax is not None else span.clone()
    if not isinstance(maxiters, (int, np.integer)) or isinstance(maxiters, bool) or maxiters < 1:
        raise ValueError(f"maxiters must be a positive integer, got {maxiters!r}")
    saveat_t: Tensor | None = None
    shared = True
    if saveat is not None:
        saveat_t, shared = _saveat(saveat, prob)
    if dense is None:
        dense = saveat is None
    if initializealg not in INIT_ALGS:
        raise ValueError(
            f"initializealg must be one of {', '.join(map(repr, INIT_ALGS))}, got {initializealg!r}"
        )
    joint = _joint(stepping, prob, saveat_t is not None and not shared)
    opts = SolveOptions(
        saveat=saveat_t,
        saveat_shared=shared,
        adaptive=bool(adaptive),
        dt=dt_t,
        rtol=rt,
        atol=at,
        dtmin=dtmin_t.contiguous(),
        dtmax=dtmax_t.contiguous(),
        maxiters=int(maxiters),
        dense=bool(dense),
        heuristics=bool(heuristics),
        sensealg=sensealg,
        progress=bool(progress),
        joint=joint,
        initializealg=initializealg,
        error_components=internal.error_components,
        stiffness_rms=internal.stiffness_rms,
        internal_heuristics=internal.internal_heuristics,
    )
    assert isinstance(prob, ODEProblem)
    return solve_ode(prob, solver, opts)


def _joint(stepping: str, prob: AbstractProblem, per_sample_saveat: bool) -> bool:
    """Validate ``stepping``; whether the batch takes one shared step."""
    if stepping not in ("per_sample", "joint"):
        raise ValueError(f"stepping must be 'per_sample' or 'joint', got {stepping!r}")
    joint = stepping == "joint" and prob.batched
    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    if joint and (bool((t0 != t0[0]).any()) or bool((t1 != t1[0]).any())):
        raise ValueError(
            "stepping='joint' needs one tspan shared by all samples; use the default "
            "stepping='per_sample' for per-sample spans"
        )
    if joint and per_sample_saveat:
        raise ValueError("stepping='joint' needs a shared saveat of shape (T,)")
    return joint


def _step_options(
    prob: AbstractProblem,
    dt: Any,
    dtmin: Any,
    dtmax: Any,
    maxiters: Any,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """Validated ``dt`` (positive, per sample or None), ``dtmin`` and ``dtmax``."""
    batch = prob.batch_size
    t0 = prob.tspan[0].expand(batch)
    t1 = prob.tspan[1].expand(batch)
    dt_t: Tensor | None = None
    if dt is not None:
        d = torch.as_tensor(dt, dtype=prob.dtype, device=prob.device)
        if d.ndim > 1 or (d.ndim == 1 and d.shape[0] != batch):
            raise ValueError(f"dt must be a scalar or a ({batch},) tensor")
        if not bool(torch.isfinite(d).all()) or bool((d <= 0).any()):
            raise ValueError(f"dt must be positive and finite, got {dt!r}")
        dt_t = d.expand(batch).contiguous()
    eps = torch.finfo(prob.dtype).eps
    dtmin_t = (
        _positive("dtmin", dtmin, prob)
        if dtmin is not None
        else 16 * eps * torch.maximum(t0.abs(), t1.abs()).clamp_min(1e-300)
    )
    dtmax_t = _positive("dtmax", dtmax, prob) if dtmax is not None else (t1 - t0).abs()
    if not isinstance(maxiters, (int, np.integer)) or isinstance(maxiters, bool) or maxiters < 1:
        raise ValueError(f"maxiters must be a positive integer, got {maxiters!r}")
    return dt_t, dtmin_t.contiguous(), dtmax_t.contiguous()


def _solve_sde(
    prob: SDEProblem,
    solver: AbstractSolver,
    *,
    saveat: Any,
    rtol: Any,
    atol: Any,
    dt: Any,
    adaptive: bool | None,
    dtmin: Any,
    dtmax: Any,
    maxiters: int,
    dense: bool | None,
    sensealg: AbstractSensitivityAlgorithm | None,
    heuristics: bool,
    progress: bool,
    stepping: str,
    seed: int | None,
    brownian: Any,
    internal: Internal,
) -> Solution:
    """Validate the SDE-specific options and call the torch engine's SDE solver."""
    from hybrideq.engines.torch._sde_engine import SDESolveOptions, solve_sde

    if not isinstance(solver, AbstractSDESolver):
        raise ValueError(
            f"{solver.name} is an ODE method; an SDEProblem needs an SDE solver such as "
            "EM(), EulerHeun(), SOSRI() (diagonal noise) or SOSRA() (additive noise)"
        )
    noise = prob.noise
    if noise == "additive" and not prob.matrix_noise:
        ok = any(k in solver.noise_types for k in ("additive", "diagonal"))
    else:
        ok = noise in solver.noise_types
    if not ok:
        raise ValueError(
            f"{solver.name} cannot integrate {noise!r} noise"
            + (" with a noise matrix" if prob.matrix_noise else "")
            + f"; it takes {', '.join(solver.noise_types)} noise. Use EM() or EulerHeun() "
            "for any noise type, or SOSRA() for additive noise"
        )
    interp = getattr(solver, "interpretation", "ito")
    if noise != "additive" and interp != prob.interpretation:
        other = "EulerHeun()" if prob.interpretation == "stratonovich" else "EM() or SOSRI()"
        raise ValueError(
            f"{solver.name} integrates {interp.capitalize()} SDEs but the problem is "
            f"{prob.interpretation.capitalize()}; use {other}, or state the problem in the "
            f"other interpretation (SDEProblem(..., interpretation={interp!r}) after converting "
            "the drift)"
        )
    if dense:
        raise ValueError(
            "dense output is not available for SDEs (a stochastic path cannot be interpolated "
            "exactly between steps); pass saveat=... instead"
        )
    if heuristics and not solver.is_adaptive:
        raise ValueError(
            f"heuristics=True records the error estimates of the adaptive SDE methods; "
            f"{solver.name} has none. Use SRIW1(), SOSRI() (diagonal noise), SRA1() or SOSRA() "
            "(additive noise)"
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if sensealg is not None and not isinstance(sensealg, AbstractSensitivityAlgorithm):
        raise TypeError(f"sensealg must be e.g. BacksolveAdjoint() (an instance), got {sensealg!r}")
    if adaptive is None:
        adaptive = solver.is_adaptive
    elif adaptive and not solver.is_adaptive:
        raise ValueError(
            f"{solver.name} has no error estimate, so it cannot be adaptive; pass dt=... for "
            "fixed steps or use an adaptive method such as SOSRI() or SOSRA()"
        )
    dt_t, dtmin_t, dtmax_t = _step_options(prob, dt, dtmin, dtmax, maxiters)
    if not adaptive and dt_t is None:
        raise ValueError(f"{solver.name} takes fixed steps and needs a step size: pass dt=...")
    rt = _tolerance("rtol", rtol, prob)
    at = _tolerance("atol", atol, prob)
    saveat_t: Tensor | None = None
    shared = True
    if saveat is not None:
        saveat_t, shared = _saveat(saveat, prob)
    joint = _joint(stepping, prob, saveat_t is not None and not shared)
    opts = SDESolveOptions(
        saveat=saveat_t,
        saveat_shared=shared,
        adaptive=bool(adaptive),
        dt=dt_t,
        rtol=rt,
        atol=at,
        dtmin=dtmin_t,
        dtmax=dtmax_t,
        maxiters=int(maxiters),
        sensealg=sensealg,
        progress=bool(progress),
        joint=joint,
        seed=None if seed is None else int(seed),
        brownian=brownian,
        record_eest=bool(heuristics) or internal.record_eest,
        error_components=internal.error_components,
    )
    return solve_sde(prob, solver, opts)
