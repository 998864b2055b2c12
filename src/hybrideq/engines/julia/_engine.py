"""The Julia engine: solve hybrideq problems with DifferentialEquations.jl through juliacall.

- A problem built by :meth:`hybrideq.symbolic.SymbolicODE.problem` runs as generated
  Julia code (``julia_source()``) with its analytic Jacobian: no Python in the loop.
- Any other problem runs with its torch right-hand side as a Python callback on
  zero-copy views (``HybridEqEngine.python_problem``); implicit methods then use finite
  differences (``AutoFiniteDiff()``) or the problem's ``jac``; the adjoints get the
  vector-Jacobian products from ``torch.func.vjp`` (``vjp``/``vjp_p`` hooks), so no Julia
  AD runs through Python.
- Gradients: :class:`_JuliaSolve` is a ``torch.autograd.Function`` whose backward runs
  SciMLSensitivity's ``adjoint_sensitivities`` with the sensealg's Julia counterpart.

Nothing here imports juliacall at import time; :func:`load_engine` does, through
:func:`hybrideq.engines.julia.import_juliacall` (environment defaults, no downloads).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.engines.julia._algorithms import (
    julia_algorithm,
    julia_gpu_ensemble,
    julia_support,
)
from hybrideq.engines.julia._convert import (
    from_julia_matrix,
    from_julia_retcode,
    from_julia_stats,
    julia_solve_kwargs,
    to_julia_matrix,
    to_julia_vector,
)
from hybrideq.engines.julia._runtime import import_juliacall
from hybrideq.problems import ODEProblem, SDEProblem
from hybrideq.sensitivity import (
    AbstractSensitivityAlgorithm,
    BacksolveAdjoint,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
)
from hybrideq.solution import ReturnCode, Solution, Stats
from hybrideq.solvers import AbstractSolver

__all__ = [
    "engine_source_dir",
    "julia_sensealg",
    "julia_unsuitable",
    "load_engine",
    "solve_julia",
]

_ENGINE: Any = None


def engine_source_dir() -> Path:
    """The ``HybridEqEngine`` Julia package: inside the wheel (``hybrideq/_julia``) or, in a
    source checkout, ``julia/HybridEqEngine`` at the repository root."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[2] / "_julia" / "HybridEqEngine",
        here.parents[4] / "julia" / "HybridEqEngine",
    ):
        if (candidate / "src" / "HybridEqEngine.jl").is_file():
            return candidate
    raise FileNotFoundError(
        "the HybridEqEngine Julia package is missing from this installation of hybrideq "
        "(expected hybrideq/_julia/HybridEqEngine); reinstall hybrideq"
    )


def load_engine() -> Any:
    """Start Julia (once) and load ``HybridEqEngine``; returns the Julia module.

    The first load in a fresh environment precompiles the SciML packages (minutes); Julia
    prints its own progress for that.
    """
    global _ENGINE
    if _ENGINE is None:
        jc = import_juliacall("the Julia engine")
        main = jc.Main
        if not bool(main.seval("isdefined(Main, :HybridEqEngine)")):
            print(
                "hybrideq: loading the Julia engine (the first time precompiles the SciML "
                "packages, which takes minutes)…",
                file=sys.stderr,
            )
            main.include(str(engine_source_dir() / "src" / "HybridEqEngine.jl"))
        _ENGINE = main.HybridEqEngine
    return _ENGINE


# --------------------------------------------------------------------------- suitability


def _symbolic_model(f: Any) -> Any:
    return getattr(f, "julia_model", None)


_LOADED_MODELS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _load_model(jl: Any, model: Any) -> Any:
    """The model's Julia module, generated and evaluated once per model (printing the
    source and compiling it in Julia cost far more than a solve)."""
    module = _LOADED_MODELS.get(model)
    if module is None:
        module = _LOADED_MODELS[model] = jl.load_model(model.julia_source())
    return module


def julia_unsuitable(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    *,
    for_auto: bool = False,
) -> str | None:
    """``None`` when the Julia engine can take this solve, else the reason it cannot.

    With ``for_auto=True`` the test is stricter (what ``engine="auto"`` requires): the
    right-hand side must be generated Julia code (a sympy model), since a torch function
    called back from Julia is slower than the torch engine's batched loop.
    """
    reason = julia_support(solver)
    if reason is not None:
        return reason
    from hybrideq.solvers.sde import AbstractSDESolver

    if isinstance(prob, SDEProblem) != isinstance(solver, AbstractSDESolver):
        kind = "an SDE" if isinstance(prob, SDEProblem) else "an ODE"
        return f"{solver.name} cannot solve {kind} problem"
    if isinstance(prob, SDEProblem) and prob.noise not in solver.noise_types:
        return f"{solver.name} does not take {prob.noise} noise"
    if prob.device.type == "cuda":
        if isinstance(prob, SDEProblem):
            reason = _gpu_sde_unsuitable(prob, solver)
            if reason is not None:
                return reason
        elif _symbolic_model(prob.f) is None or julia_gpu_ensemble(solver) is None:
            return (
                "on CUDA the Julia engine runs GPU ensembles (DiffEqGPU) of sympy-defined "
                "ODEs with Tsit5, Vern7, Rosenbrock23, Rodas5P or Kvaerno5 (one GPU kernel) "
                "or DP5, BS3, Euler, RK4, Rodas4, TRBDF2 or KenCarp4 (EnsembleGPUArray); "
                "this problem runs on the torch engine"
            )
        elif prob.mass_matrix is not None:
            return "GPU ensembles take no mass matrix on the Julia engine; solve it on the CPU"
        if prob.dtype not in (torch.float32, torch.float64):
            return f"GPU ensembles compute in float32 or float64; the problem is {prob.dtype}"
        if for_auto:
            return "GPU ensembles are opt-in (engine='julia')"
    elif prob.device.type != "cpu":
        return f"the Julia engine runs on the CPU or CUDA, not {prob.device.type}"
    elif prob.dtype != torch.float64:
        return f"the Julia engine computes in float64 on the CPU; the problem is {prob.dtype}"
    if prob.tspan[0].numel() != 1 or prob.tspan[1].numel() != 1:
        return "per-sample time spans run on the torch engine"
    if len(prob.state_shape) != 1:
        return f"the Julia engine takes vector states, got state shape {prob.state_shape}"
    if prob.p is not None and not isinstance(prob.p, Tensor):
        return f"parameters must be a tensor for the Julia engine, got {type(prob.p).__name__}"
    if sensealg is not None and julia_sensealg(sensealg, python_rhs=True) is None:
        return f"{type(sensealg).__name__} has no Julia counterpart"
    if for_auto:
        if _symbolic_model(prob.f) is None:
            return "the right-hand side is a torch function (auto prefers the torch engine)"
        if isinstance(prob, SDEProblem):
            return "SDEs default to the torch engine (its Brownian paths are reproducible)"
        if prob.p is not None and isinstance(prob.p, Tensor) and prob.p.requires_grad:
            return "gradients default to the torch engine"
        if prob.y0.requires_grad:
            return "gradients default to the torch engine"
    return None


def _gpu_sde_unsuitable(prob: SDEProblem, solver: AbstractSolver) -> str | None:
    """Why a CUDA SDE cannot run as a Julia GPU ensemble (``None``: it can)."""
    from hybrideq.solvers.sde import EM

    if _symbolic_model(prob.f) is None or not isinstance(solver, EM):
        return (
            "on CUDA the Julia engine runs SDEs as GPU ensembles of sympy-defined models "
            "with EM (DiffEqGPU's GPUEM kernel); this problem runs on the torch engine"
        )
    if prob.matrix_noise or prob.noise not in ("diagonal", "additive"):
        return f"GPU SDE ensembles take diagonal noise; the problem has {prob.noise} noise"
    return None


def julia_sensealg(sensealg: AbstractSensitivityAlgorithm, *, python_rhs: bool) -> str | None:
    """The SciMLSensitivity constructor expression for ``sensealg`` (``None``: none).

    Python right-hand sides supply ``vjp``/``vjp_p`` (used before any AD,
    SciMLSensitivity ``src/derivative_wrappers.jl``); ``ZygoteVJP()`` is named so that no
    Enzyme/ReverseDiff probe of the Python function runs at set-up. Julia-native models
    use ``EnzymeVJP()``.
    """
    vjp = "ZygoteVJP()" if python_rhs else "EnzymeVJP()"
    if isinstance(sensealg, InterpolatingAdjoint):
        ck = str(bool(sensealg.checkpointing)).lower()
        return f"InterpolatingAdjoint(autojacvec = {vjp}, checkpointing = {ck})"
    if isinstance(sensealg, BacksolveAdjoint):
        return f"BacksolveAdjoint(autojacvec = {vjp})"
    if isinstance(sensealg, QuadratureAdjoint):
        return (
            f"QuadratureAdjoint(autojacvec = {vjp}, abstol = {sensealg.abstol!r}, "
            f"reltol = {sensealg.reltol!r})"
        )
    if isinstance(sensealg, GaussAdjoint):
        ck = str(bool(sensealg.checkpointing)).lower()
        return f"GaussAdjoint(autojacvec = {vjp}, checkpointing = {ck})"
    return None


# --------------------------------------------------------------------------- callbacks


def _as_tensor(a: Any) -> Tensor:
    """A juliacall array (or NumPy array) as a float64 tensor over the same memory."""
    return torch.from_numpy(np.asarray(a))


class _TorchCallbacks:
    """The Python functions Julia calls: ``f``, ``jac``, ``vjp`` and ``vjp_p``.

    Each takes its output array first and writes into it (a view of Julia's array).
    ``p`` comes from Julia (so that an ensemble's per-trajectory parameters are used) and
    is reshaped to the problem's parameter shape.
    """

    def __init__(self, f: Any, jac: Any, p_shape: tuple[int, ...] | None, state_shape: Any):
        self.f = f
        self.jac_fn = jac
        self.p_shape = p_shape
        self.state_shape = tuple(state_shape)

    def _p(self, p: Any) -> Tensor | None:
        if self.p_shape is None:
            return None
        return _as_tensor(p).view(self.p_shape)

    def rhs(self, du: Any, u: Any, p: Any, t: Any) -> None:
        with torch.no_grad():
            y = _as_tensor(u).view(self.state_shape)
            out = self.f(torch.tensor(float(t), dtype=torch.float64), y, self._p(p))
            # du is Julia's vector, or (an SDE's noise matrix) its n × m column-major matrix:
            # the NumPy view indexes [i, j] as Julia does, whatever the strides
            target = _as_tensor(du)
            target.copy_(out.reshape(target.shape))

    def jac(self, J: Any, u: Any, p: Any, t: Any) -> None:
        with torch.no_grad():
            y = _as_tensor(u).view(self.state_shape)
            out = self.jac_fn(torch.tensor(float(t), dtype=torch.float64), y, self._p(p))
            # Julia's J is column-major: its NumPy view is Fortran-ordered, so element
            # [i, j] is J[i, j] in both languages
            np.asarray(J)[...] = out.detach().numpy()

    def vjp(self, out: Any, lam: Any, u: Any, p: Any, t: Any) -> None:
        tt = torch.tensor(float(t), dtype=torch.float64)
        pp = self._p(p)
        y = _as_tensor(u).view(self.state_shape).clone()
        pull = torch.func.vjp(lambda yy: self.f(tt, yy, pp), y)[1]
        (g,) = pull(_as_tensor(lam).view(self.state_shape))
        _as_tensor(out).copy_(g.reshape(-1))

    def vjp_p(self, out: Any, lam: Any, u: Any, p: Any, t: Any) -> None:
        tt = torch.tensor(float(t), dtype=torch.float64)
        pp = self._p(p)
        if pp is None:
            return
        y = _as_tensor(u).view(self.state_shape)
        pull = torch.func.vjp(lambda q: self.f(tt, y, q), pp.clone())[1]
        (g,) = pull(_as_tensor(lam).view(self.state_shape))
        _as_tensor(out).copy_(g.reshape(-1))


# --------------------------------------------------------------------------- problems


def _per_sample_p(prob: ODEProblem | SDEProblem) -> bool:
    """Whether ``p`` is ``(batch, np)``: one parameter vector per sample."""
    p = prob.p
    return isinstance(p, Tensor) and prob.batched and p.ndim == 2 and p.shape[0] == prob.batch_size


def _julia_problem(
    jl: Any, prob: ODEProblem | SDEProblem, y0: Tensor, p: Tensor | None
) -> tuple[Any, bool, Any]:
    """The Julia problem for one trajectory; returns ``(problem, python_rhs, callbacks)``."""
    model = _symbolic_model(prob.f)
    tspan = (float(prob.tspan[0].reshape(-1)[0]), float(prob.tspan[1].reshape(-1)[0]))
    u0 = to_julia_vector(y0.detach().reshape(-1).contiguous())
    pj = None if p is None else to_julia_vector(p.detach().reshape(-1).contiguous())
    if model is not None:
        module = _load_model(jl, model)
        if isinstance(prob, SDEProblem):
            shape = (
                model.noise_shape
                if prob.noise in ("general", "additive") and prob.matrix_noise
                else None
            )
            return (
                jl.model_sde_problem(
                    module, u0, tspan, pj, noise_shape=shape, scalar=prob.noise == "scalar"
                ),
                False,
                None,
            )
        return jl.model_problem(module, u0, tspan, pj), False, None
    p_shape = None if p is None else tuple(p.shape)
    cb = _TorchCallbacks(prob.f, getattr(prob, "jac", None), p_shape, prob.state_shape)
    if isinstance(prob, SDEProblem):
        gcb = _TorchCallbacks(prob.g, None, p_shape, prob.state_shape)
        shape = (prob.n, prob.noise_dim) if prob.matrix_noise else None
        return (
            jl.python_sde_problem(
                cb.rhs, gcb.rhs, u0, tspan, pj, noise_shape=shape, scalar=prob.noise == "scalar"
            ),
            True,
            (cb, gcb),
        )
    mass = None if prob.mass_matrix is None else prob.mass_matrix.detach().numpy()
    return (
        jl.python_problem(
            cb.rhs,
            u0,
            tspan,
            pj,
            jac=cb.jac if prob.jac is not None else None,
            vjp=cb.vjp,
            vjp_p=cb.vjp_p if p is not None else None,
            mass_matrix=mass,
        ),
        True,
        cb,
    )


# --------------------------------------------------------------------------- solve


def _stats(all_stats: list[dict[str, int]]) -> Stats:
    def col(name: str) -> Tensor:
        return torch.tensor([s[name] for s in all_stats], dtype=torch.long)

    nf = col("nf")
    return Stats(
        nf=nf,
        naccept=col("naccept"),
        nreject=col("nreject"),
        njac=col("njac"),
        nlu=col("nlu"),
        ncalls=int(nf.sum()),
        nnonliniter=col("nnonliniter"),
    )


def _one(
    jl: Any, prob: Any, alg: Any, kw: dict[str, Any]
) -> tuple[Tensor, Tensor, ReturnCode, dict[str, int]]:
    res = jl.solve_exported(prob, alg, **kw)
    t = torch.from_numpy(np.asarray(res.t))
    y = from_julia_matrix(res.u)
    return t, y, from_julia_retcode(str(res.retcode)), from_julia_stats(res.stats)


def solve_julia(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    *,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    seed: int | None = None,
    **options: Any,
) -> Solution:
    """Solve ``prob`` on the Julia engine (see the module docstring).

    A batch runs as one ``EnsembleProblem`` (threads for generated Julia code, serial for
    Python callbacks, which need the GIL). Gradients with respect to ``y0`` and ``p``
    flow through :class:`_JuliaSolve` when they require grad.

    Args:
        options: ``saveat`` (a ``(T,)`` tensor or ``None``), ``rtol``, ``atol``, ``dt``,
            ``adaptive``, ``dtmin``, ``dtmax``, ``maxiters``, ``dense``: translated by
            :func:`~hybrideq.engines.julia._convert.julia_solve_kwargs`.
    """
    reason = julia_unsuitable(prob, solver, sensealg)
    if reason is not None:
        raise ValueError(f"engine='julia' cannot run this solve: {reason}")
    jl = load_engine()
    saveat = options.get("saveat")
    kw = julia_solve_kwargs(**options)
    if seed is not None:
        kw["seed"] = int(seed)
    if prob.device.type == "cuda":
        return _solve_gpu(jl, prob, solver, kw)
    python_rhs = _symbolic_model(prob.f) is None
    alg = jl.algorithm(julia_algorithm(solver, autodiff="AutoFiniteDiff()" if python_rhs else None))
    y0 = prob.y0.detach()
    p = prob.p if isinstance(prob.p, Tensor) else None
    per_sample = _per_sample_p(prob)
    # dense output keeps Julia's solution(s) for sol(t): by default without saveat
    dense = isinstance(prob, ODEProblem) and bool(kw.get("dense", saveat is None))
    wants_grad = torch.is_grad_enabled() and (
        prob.y0.requires_grad or (isinstance(prob.p, Tensor) and prob.p.requires_grad)
    )
    if wants_grad and isinstance(prob, SDEProblem):
        raise ValueError(
            "gradients of SDE solves run on the torch engine (its adjoints query the same "
            "Brownian path); use engine='torch'"
        )
    if not prob.batched:
        if wants_grad:
            if saveat is None:
                raise ValueError("gradients on the Julia engine need saveat=... (the loss times)")
            return _JuliaSolve.run(prob, solver, sensealg or InterpolatingAdjoint(), kw)
        jprob, _, _keep = _julia_problem(jl, prob, y0, None if p is None else p.detach())
        if dense:
            return _solve_dense(jl, jprob, alg, kw, solver, _keep)
        return _single(*_one(jl, jprob, alg, kw), solver)
    if wants_grad:
        if saveat is None:
            raise ValueError("gradients on the Julia engine need saveat=... (the loss times)")
        return _batched_with_gradients(prob, solver, sensealg or InterpolatingAdjoint(), kw)
    jprob, python_cb, _keep = _julia_problem(
        jl, prob, y0[0], None if p is None else (p[0] if per_sample else p).detach()
    )
    u0s = to_julia_matrix(y0.reshape(prob.batch_size, -1).contiguous())
    ps = (
        to_julia_matrix(p.detach().reshape(prob.batch_size, -1).contiguous())
        if per_sample and p is not None
        else None
    )
    if dense:
        res = jl.ensemble_dense(jprob, alg, u0s, ps, threads=not python_cb, **kw)
        sol = _collect(prob, solver, res.exported, saveat is not None, prob.device)
        return _with_interpolant(sol, jl, list(res.sols), _keep)
    results = jl.ensemble_exported(jprob, alg, u0s, ps, threads=not python_cb, **kw)
    return _collect(prob, solver, results, saveat is not None, prob.device)


def _single(
    t: Tensor, y: Tensor, rc: ReturnCode, stats: dict[str, int], solver: AbstractSolver
) -> Solution:
    """The :class:`Solution` of one (unbatched) Julia solve."""
    return Solution(
        t=t,
        y=y,
        retcodes=torch.tensor([int(rc)]),
        stats=_stats([stats]),
        batched=False,
        solver=solver,
    )


def _solve_dense(
    jl: Any, jprob: Any, alg: Any, kw: dict[str, Any], solver: AbstractSolver, keep: Any
) -> Solution:
    """One solve that keeps Julia's solution for ``sol(t)`` (its own interpolant)."""
    res = jl.solve_dense(jprob, alg, **kw)
    exported = res.exported
    t = torch.from_numpy(np.asarray(exported.t))
    y = from_julia_matrix(exported.u)
    sol = Solution(
        t=t,
        y=y,
        retcodes=torch.tensor([int(from_julia_retcode(str(exported.retcode)))]),
        stats=_stats([from_julia_stats(exported.stats)]),
        batched=False,
        solver=solver,
    )
    return _with_interpolant(sol, jl, [res.sol], keep)


def _with_interpolant(sol: Solution, jl: Any, julia_sols: list[Any], keep: Any) -> Solution:
    """``sol`` with dense output: ``sol(t)`` evaluates each Julia solution's own interpolant
    (``HybridEqEngine.interpolate_exported``) at ``t`` — a scalar, ``(Q,)`` times, or for a
    batch ``(batch, Q)`` per-sample times — within the span that sample reached."""
    ts = sol.t.reshape(-1, sol.t.shape[-1]) if sol.batched else sol.t.reshape(1, -1)
    counts = sol.nsaved.tolist() if sol.nsaved is not None else [ts.shape[-1]] * len(julia_sols)
    spans = []
    for i, count in enumerate(counts):
        row = ts[i if ts.shape[0] > 1 else 0, :count]
        spans.append((float(row.min()), float(row.max())))

    def interpolant(times: Tensor, _keep: Any = keep) -> Tensor:
        # `_keep` holds the Python callbacks the Julia solutions may call while they
        # interpolate (a torch right-hand side's lazy stages)
        tt = times.detach().to("cpu", torch.float64)
        if sol.batched and tt.ndim == 2 and tt.shape[0] != len(julia_sols):
            raise ValueError(
                f"t: per-sample times need shape (batch={len(julia_sols)}, Q), got "
                f"{tuple(tt.shape)}"
            )
        outs = []
        for i, (julia_sol, (lo, hi)) in enumerate(zip(julia_sols, spans, strict=True)):
            flat = (tt[i] if sol.batched and tt.ndim == 2 else tt).reshape(-1)
            if flat.numel() and (float(flat.min()) < lo - 1e-12 or float(flat.max()) > hi + 1e-12):
                which = f"sample {i}'s" if sol.batched else "the"
                raise ValueError(f"t must lie in {which} solved span [{lo}, {hi}]")
            out = from_julia_matrix(jl.interpolate_exported(julia_sol, flat.numpy()))
            outs.append(out[0] if tt.ndim == 0 else out)
        result = torch.stack(outs) if sol.batched else outs[0]
        return result.to(sol.y.device, sol.y.dtype)

    return dataclasses.replace(sol, interpolant=interpolant)


def _batched_with_gradients(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    sensealg: AbstractSensitivityAlgorithm,
    kw: dict[str, Any],
) -> Solution:
    """A batch with gradients: one differentiable solve (and one adjoint) per sample.

    Each sample is a :class:`_JuliaSolve` of ``y0[i]`` with ``p[i]`` (or the shared ``p``);
    autograd sums the shared parameters' gradients over the samples. A sample that fails
    keeps its prefix, padded with NaN; its gradient is NaN.
    """
    per_sample = _per_sample_p(prob)
    sols = []
    for i in range(prob.batch_size):
        p = prob.p[i] if per_sample else prob.p
        assert isinstance(prob, ODEProblem)
        sols.append(_JuliaSolve.run(prob.remake(y0=prob.y0[i], p=p), solver, sensealg, kw))
    T = max(s.y.shape[0] for s in sols)
    rows = [
        torch.cat([s.y, s.y.new_full((T - s.y.shape[0], s.y.shape[1]), math.nan)])
        if s.y.shape[0] < T
        else s.y
        for s in sols
    ]
    nsaved = torch.tensor([s.y.shape[0] for s in sols])
    full = bool((nsaved == T).all())
    return Solution(
        t=sols[0].t
        if full
        else torch.stack(
            [torch.nn.functional.pad(s.t, (0, T - s.t.shape[0]), value=math.nan) for s in sols]
        ),
        y=torch.stack(rows),
        retcodes=torch.cat([s.retcodes for s in sols]),
        stats=_stats([_stat_row(s.stats) for s in sols]),
        batched=True,
        nsaved=None if full else nsaved,
        solver=solver,
    )


def _stat_row(stats: Stats) -> dict[str, int]:
    """One sample's counters back as the dict :func:`_stats` takes."""
    assert stats.nnonliniter is not None
    return {
        "nf": int(stats.nf),
        "naccept": int(stats.naccept),
        "nreject": int(stats.nreject),
        "njac": int(stats.njac),
        "nlu": int(stats.nlu),
        "nnonliniter": int(stats.nnonliniter),
    }


def _collect(
    prob: ODEProblem | SDEProblem,
    solver: AbstractSolver,
    results: Any,
    has_saveat: bool,
    device: torch.device,
) -> Solution:
    """One batched :class:`Solution` from the exported trajectories of an ensemble.

    Trajectories that stopped early are padded with NaN (``nsaved`` says how many rows
    each has); shared save times stay ``(T,)``.
    """
    ts, ys, rcs, sts = [], [], [], []
    for res in results:
        ts.append(torch.from_numpy(np.asarray(res.t)))
        ys.append(from_julia_matrix(res.u))
        rcs.append(int(from_julia_retcode(str(res.retcode))))
        sts.append(from_julia_stats(res.stats))
    T = max(t.shape[0] for t in ts)
    nsaved = torch.tensor([t.shape[0] for t in ts])
    y_out = torch.full((prob.batch_size, T, ys[0].shape[1]), math.nan, dtype=prob.dtype)
    t_out = torch.full((prob.batch_size, T), math.nan, dtype=prob.dtype)
    for i, (t, y) in enumerate(zip(ts, ys, strict=True)):
        y_out[i, : y.shape[0]] = y
        t_out[i, : t.shape[0]] = t
    shared = has_saveat and bool((nsaved == T).all())
    return Solution(
        t=(t_out[0] if shared else t_out).to(device),
        y=y_out.to(device),
        retcodes=torch.tensor(rcs, device=device),
        stats=_stats(sts),
        batched=True,
        nsaved=None if shared else nsaved,
        solver=solver,
    )


def _solve_gpu(
    jl: Any, prob: ODEProblem | SDEProblem, solver: AbstractSolver, kw: dict[str, Any]
) -> Solution:
    """A batch of a sympy model on CUDA as one DiffEqGPU ensemble solve (an SDE: the
    Euler-Maruyama kernel ``GPUEM``).

    ``y0`` and ``p`` cross to Julia as the CUDA tensors themselves, through DLPack.
    With a kernel method (``EnsembleGPUKernel``) the saved states and times are written on
    the device into tensors allocated here (no host round trip); with
    ``EnsembleGPUArray`` DiffEqGPU returns host solutions, moved back to the device.
    """
    if prob.y0.requires_grad or (isinstance(prob.p, Tensor) and prob.p.requires_grad):
        raise ValueError("GPU ensembles on the Julia engine have no gradients; use engine='torch'")
    saveat = kw.get("saveat")
    if saveat is None:
        raise ValueError(
            "GPU ensembles on the Julia engine save at given times: pass saveat=... "
            "(a (T,) tensor of times)"
        )
    unsupported = sorted({"dtmin", "dtmax", "dense"} & kw.keys())
    how = ("em", "EM") if isinstance(prob, SDEProblem) else julia_gpu_ensemble(solver)
    assert how is not None  # julia_unsuitable checked it
    if how[0] == "em" and unsupported:
        raise ValueError(
            f"{', '.join(unsupported)}: the GPU Euler-Maruyama kernel takes saveat and dt only"
        )
    if how[0] == "kernel" and unsupported:
        raise ValueError(
            f"{', '.join(unsupported)}: DiffEqGPU's kernel methods take saveat, dt, adaptive, "
            "rtol and atol only (vectorized_asolve); leave them out, or pick a solver that "
            "runs in EnsembleGPUArray (DP5, BS3, Rodas4, TRBDF2, KenCarp4)"
        )
    if not bool(jl.enable_gpu()):
        raise RuntimeError(
            "Julia sees no functional CUDA device (CUDA.functional() is false); check the "
            "driver, or run `hybrideq julia install --cuda` to add CUDA.jl"
        )
    module = _load_model(jl, _symbolic_model(prob.f))
    y0, ps = _gpu_inputs(prob)
    B, n = y0.shape
    np_ = 0 if ps is None else ps.shape[1]
    tspan = (float(prob.tspan[0].reshape(-1)[0]), float(prob.tspan[1].reshape(-1)[0]))
    T = jl.seval("Float32") if prob.dtype == torch.float32 else jl.seval("Float64")
    # Julia reads the inputs and writes the outputs on its own CUDA stream: torch's
    # pending work on them must be finished first (DLPack.jl passes no stream)
    torch.cuda.current_stream(prob.device).synchronize()
    if how[0] == "array":
        alg = jl.algorithm(how[1])
        results = jl.ensemble_array(module, y0, ps, n, np_, tspan, alg, T=T, **kw)
        return _collect(prob, solver, results, True, prob.device)
    times = torch.as_tensor(saveat, dtype=torch.float64)  # the (T,) save times, as sent
    ys = torch.empty((B, times.numel(), n), dtype=prob.dtype, device=prob.device)
    ts = torch.empty((B, times.numel()), dtype=prob.dtype, device=prob.device)
    if how[0] == "em":
        if "dt" not in kw:
            raise ValueError("EM on the GPU takes fixed steps: pass dt=...")
        # no seed: draw one from torch's generator, so that torch.manual_seed reproduces it
        seed = kw["seed"] if "seed" in kw else int(torch.randint(0, 2**63 - 1, ()).item())
        jl.ensemble_em(
            ys, ts, module, y0, ps, n, np_, tspan, T=T, saveat=kw["saveat"], dt=kw["dt"], seed=seed
        )
        return _kernel_solution(prob, solver, ys, ts, times.to(prob.device, prob.dtype))
    options = {k: kw[k] for k in ("dt", "adaptive") if k in kw}
    jl.ensemble_kernel(
        ys,
        ts,
        module,
        y0,
        ps,
        n,
        np_,
        tspan,
        how[1],
        T=T,
        saveat=kw["saveat"],
        abstol=kw["abstol"],
        reltol=kw["reltol"],
        **options,
    )
    return _kernel_solution(prob, solver, ys, ts, times.to(prob.device, prob.dtype))


def _gpu_inputs(prob: ODEProblem | SDEProblem) -> tuple[Tensor, Tensor | None]:
    """``y0`` as a C-contiguous ``(B, n)`` CUDA tensor and ``p`` as ``(B, np)`` (a shared
    ``p`` repeated) or ``None``, in the problem's dtype: the dense layout DLPack.jl wraps."""
    y0 = prob.y0.detach().reshape(prob.batch_size, -1).contiguous()
    p = prob.p.detach() if isinstance(prob.p, Tensor) else None
    if p is not None and not _per_sample_p(prob):
        p = p.reshape(1, -1).expand(prob.batch_size, -1)
    ps = None if p is None else p.to(prob.dtype).contiguous()
    return y0, ps


def _kernel_solution(
    prob: ODEProblem | SDEProblem, solver: AbstractSolver, ys: Tensor, ts: Tensor, saveat: Tensor
) -> Solution:
    """The :class:`Solution` of a kernel ensemble from the states and times it wrote.

    The kernel writes each save time when it saves there (``ts[k] = saveat[k]``,
    DiffEqGPU ``src/ensemblegpukernel/integrators/integrator_utils.jl``); a slot a
    trajectory never reached (its ``while t < t1`` loop ended early, ``kernels.jl``) keeps
    ``t0``. Such trajectories get ``ReturnCode.Unstable`` and NaN after their last saved
    row, as do trajectories whose saved states are not finite. The kernels count no
    steps or evaluations: every counter is -1.
    """
    B, T, _ = ys.shape
    reached = ts == saveat  # slots written with their save time
    filled = torch.cumprod(reached.to(torch.int8), dim=1).bool()
    nsaved = filled.sum(dim=1)
    ys.masked_fill_(~filled[..., None], math.nan)  # in place: the solution keeps ys
    finite = torch.isfinite(ys).all(dim=2) | ~filled
    ok = (nsaved == T) & finite.all(dim=1)
    retcodes = torch.where(
        ok,
        torch.tensor(int(ReturnCode.Success), device=ys.device),
        torch.tensor(int(ReturnCode.Unstable), device=ys.device),
    )
    full = bool((nsaved == T).all())
    none = torch.full((B,), -1, dtype=torch.long)
    return Solution(
        t=saveat if full else ts.masked_fill_(~filled, math.nan),
        y=ys,
        retcodes=retcodes,
        stats=Stats(
            nf=none,
            naccept=none,
            nreject=none,
            njac=none,
            nlu=none,
            ncalls=-1,
            nnonliniter=none,
        ),
        batched=True,
        nsaved=None if full else nsaved.cpu(),
        solver=solver,
    )


class _JuliaSolve(torch.autograd.Function):
    """Forward: a Julia solve saved at ``saveat``; backward: SciMLSensitivity's adjoint."""

    @staticmethod
    def run(
        prob: Any,
        solver: AbstractSolver,
        sensealg: AbstractSensitivityAlgorithm,
        kw: dict[str, Any],
    ) -> Solution:
        p = prob.p if isinstance(prob.p, Tensor) else torch.zeros(0, dtype=torch.float64)
        ctx_box: dict[str, Any] = {}
        y = _JuliaSolve.apply(prob.y0, p, prob, solver, sensealg, kw, ctx_box)
        return _single(ctx_box["t"], y, ctx_box["rc"], ctx_box["stats"], solver)

    @staticmethod
    def forward(
        ctx: Any,
        y0: Tensor,
        p: Tensor,
        prob: Any,
        solver: Any,
        sensealg: Any,
        kw: Any,
        box: dict[str, Any],
    ) -> Tensor:  # type: ignore[override]
        jl = load_engine()
        pp = p.detach() if p.numel() else None
        jprob, python_rhs, keep = _julia_problem(jl, prob, y0.detach(), pp)
        alg = jl.algorithm(
            julia_algorithm(solver, autodiff="AutoFiniteDiff()" if python_rhs else None)
        )
        t, y, rc, st = _one(jl, jprob, alg, kw)
        box.update(t=t, rc=rc, stats=st)
        ctx.julia = (
            jprob,
            alg,
            jl.algorithm(julia_sensealg(sensealg, python_rhs=python_rhs)),
            kw,
            keep,
            rc,
        )
        ctx.shapes = (y0.shape, p.shape)
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        jl = load_engine()
        jprob, alg, sense, kw, _keep, rc = ctx.julia
        y0_shape, p_shape = ctx.shapes
        if rc != ReturnCode.Success:
            nan = torch.full(y0_shape, math.nan, dtype=torch.float64)
            return (
                nan,
                torch.full(p_shape, math.nan, dtype=torch.float64),
                None,
                None,
                None,
                None,
                None,
            )
        dLdu = grad_y.detach().to(torch.float64).contiguous()  # (T, n): Julia sees n × T
        t = kw["saveat"]
        rest = {k: v for k, v in kw.items() if k != "saveat"}
        res = jl.adjoint_exported(jprob, alg, sense, t, to_julia_matrix(dLdu), **rest)
        du0 = torch.from_numpy(np.asarray(res.du0).copy()).view(y0_shape)
        dp = torch.from_numpy(np.asarray(res.dp).copy())
        dp = (
            dp.view(p_shape)
            if dp.numel() == int(np.prod(p_shape))
            else torch.zeros(p_shape, dtype=torch.float64)
        )
        return du0, dp, None, None, None, None, None
