"""Translation at the Python/Julia boundary: options, return codes, stats and array layout.

Pure Python (NumPy and torch only), so every rule here is unit-tested without Julia.

Layout (ARCHITECTURE decision 9): a C-contiguous torch tensor ``(batch, n)`` and a Julia
column-major ``(n, batch)`` matrix are the same bytes. On the CPU a tensor crosses as the
NumPy view ``tensor.numpy().T`` (Fortran-contiguous ``(n, batch)``), which juliacall wraps
as a linearly indexable ``PyArray`` without copying (PythonCall ``src/Wrap/PyArray.jl``:
fast linear indexing for Fortran strides). A Julia ``n × T`` result comes back through
``numpy.asarray`` (a view: juliacall exports Julia's strides through
``__array_interface__``) and ``.T`` to ``(T, n)``, then ``torch.from_numpy`` (a view).
CUDA tensors cross through DLPack (``tensor.__dlpack__`` / DLPack.jl ``from_dlpack``,
dimensions reversed, i.e. the same ``(n, batch)`` view).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrideq.solution import ReturnCode

__all__ = [
    "JULIA_RETCODES",
    "from_julia_matrix",
    "from_julia_retcode",
    "from_julia_stats",
    "julia_solve_kwargs",
    "to_julia_matrix",
    "to_julia_retcode",
    "to_julia_vector",
]

# --------------------------------------------------------------------------- return codes

JULIA_RETCODES: dict[str, ReturnCode] = {
    # SciMLBase src/retcodes.jl: every member, mapped to the nearest hybrideq code.
    "Default": ReturnCode.Default,
    "Success": ReturnCode.Success,
    "Terminated": ReturnCode.Success,  # a callback ended the solve early, as asked
    "ExactSolutionLeft": ReturnCode.Success,
    "ExactSolutionRight": ReturnCode.Success,
    "FloatingPointLimit": ReturnCode.Success,
    "StalledSuccess": ReturnCode.Success,
    "MaxIters": ReturnCode.MaxIters,
    "MaxNumSub": ReturnCode.MaxIters,
    "MaxTime": ReturnCode.MaxIters,
    "DtLessThanMin": ReturnCode.DtLessThanMin,
    "DtNaN": ReturnCode.Unstable,
    "Unstable": ReturnCode.Unstable,
    "InitialFailure": ReturnCode.InitialFailure,
    "ConvergenceFailure": ReturnCode.ConvergenceFailure,
    "Failure": ReturnCode.ConvergenceFailure,
    "Infeasible": ReturnCode.ConvergenceFailure,
    "InternalLineSearchFailed": ReturnCode.ConvergenceFailure,
    "InternalLinearSolveFailed": ReturnCode.ConvergenceFailure,
    "ShrinkThresholdExceeded": ReturnCode.ConvergenceFailure,
    "Stalled": ReturnCode.ConvergenceFailure,
    "APosterioriSafetyFailure": ReturnCode.ConvergenceFailure,
}
"""Every ``SciMLBase.ReturnCode`` member → a hybrideq :class:`ReturnCode`. The successful
ones are those of ``SciMLBase.successful_retcode``."""

_TO_JULIA = {
    ReturnCode.Default: "Default",
    ReturnCode.Success: "Success",
    ReturnCode.MaxIters: "MaxIters",
    ReturnCode.DtLessThanMin: "DtLessThanMin",
    ReturnCode.Unstable: "Unstable",
    ReturnCode.ConvergenceFailure: "ConvergenceFailure",
    ReturnCode.InitialFailure: "InitialFailure",
}


def from_julia_retcode(name: str) -> ReturnCode:
    """The hybrideq code for a SciMLBase ``ReturnCode`` member name (``"MaxIters"`` …)."""
    try:
        return JULIA_RETCODES[str(name)]
    except KeyError:
        raise ValueError(
            f"unknown SciMLBase return code {name!r}; known: {sorted(JULIA_RETCODES)}"
        ) from None


def to_julia_retcode(code: ReturnCode) -> str:
    """The SciMLBase ``ReturnCode`` member with the same name (every hybrideq code has one)."""
    return _TO_JULIA[ReturnCode(code)]


# --------------------------------------------------------------------------- stats


def from_julia_stats(stats: Any) -> dict[str, int]:
    """hybrideq's counters from the fields of ``sol.stats`` (SciMLBase ``DEStats``).

    ``nf → nf``, ``naccept``, ``nreject``, ``njacs → njac``, ``nw → nlu`` (factorizations
    of ``W``), ``nnonliniter``; ``-1`` (no stats) stays ``-1``. ``stats`` is anything with
    those attributes or keys (the Julia NamedTuple ``HybridEqEngine`` exports).
    """

    def get(name: str) -> int:
        value = stats[name] if isinstance(stats, dict) else getattr(stats, name)
        return int(value)

    return {
        "nf": get("nf"),
        "naccept": get("naccept"),
        "nreject": get("nreject"),
        "njac": get("njacs"),
        "nlu": get("nw"),
        "nnonliniter": get("nnonliniter"),
    }


# --------------------------------------------------------------------------- options


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name}: the Julia engine takes one value per solve (a problem of the batch "
                f"is solved per trajectory); got shape {tuple(value.shape)}"
            )
        value = value.item()
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def julia_solve_kwargs(
    *,
    rtol: Any,
    atol: Any,
    saveat: Tensor | None,
    dt: Any = None,
    adaptive: bool | None = None,
    dtmin: Any = None,
    dtmax: Any = None,
    maxiters: int = 100_000,
    dense: bool | None = None,
) -> dict[str, Any]:
    """The ``solve`` keywords of OrdinaryDiffEq/StochasticDiffEq for hybrideq's options.

    ``rtol → reltol``, ``atol → abstol`` (scalars, or one per component as a vector),
    ``saveat`` (a vector of times), ``dt``, ``adaptive``, ``dtmin``, ``dtmax``,
    ``maxiters``, ``dense`` (names: OrdinaryDiffEqCore ``src/solve.jl``; SciMLBase
    ``allowedkeywords``). Options left at ``None`` are not passed, so Julia's defaults
    apply. Tensors become NumPy arrays (views where they already are CPU float64).
    """
    kw: dict[str, Any] = {}
    for jl, name, value in (("reltol", "rtol", rtol), ("abstol", "atol", atol)):
        if isinstance(value, Tensor) and value.numel() > 1:
            kw[jl] = value.detach().to("cpu", torch.float64).reshape(-1).numpy()
        else:
            kw[jl] = _scalar(name, value)
    if saveat is not None:
        s = saveat.detach().to("cpu", torch.float64)
        if s.ndim != 1:
            raise ValueError(
                "saveat: the Julia engine takes one (T,) vector of save times shared by the "
                f"batch, got shape {tuple(s.shape)}"
            )
        kw["saveat"] = s.numpy()
    if dt is not None:
        kw["dt"] = _scalar("dt", dt)
    if adaptive is not None:
        kw["adaptive"] = bool(adaptive)
    if dtmin is not None:
        kw["dtmin"] = _scalar("dtmin", dtmin)
    if dtmax is not None:
        kw["dtmax"] = _scalar("dtmax", dtmax)
    if isinstance(maxiters, bool) or int(maxiters) < 1:
        raise ValueError(f"maxiters must be a positive integer, got {maxiters!r}")
    kw["maxiters"] = int(maxiters)
    if dense is not None:
        kw["dense"] = bool(dense)
    return kw


# --------------------------------------------------------------------------- layout


def to_julia_matrix(x: Tensor) -> np.ndarray:
    """A CPU ``(batch, n)`` tensor as the ``(n, batch)`` Fortran-ordered NumPy view Julia
    wraps without copying (the same bytes).

    Raises:
        ValueError: ``x`` is not a C-contiguous float64 CPU matrix (the caller decides
            whether to copy; nothing is copied silently here).
    """
    if x.ndim != 2:
        raise ValueError(f"expected a (batch, n) tensor, got shape {tuple(x.shape)}")
    if x.device.type != "cpu" or x.dtype != torch.float64 or not x.is_contiguous():
        raise ValueError(
            "the zero-copy path needs a C-contiguous float64 CPU tensor; got "
            f"{x.dtype} on {x.device}, contiguous={x.is_contiguous()}"
        )
    view = x.detach().numpy().T
    assert view.flags.f_contiguous
    return view


def to_julia_vector(x: Tensor) -> np.ndarray:
    """A contiguous float64 CPU vector as a NumPy view (Julia wraps it without copying)."""
    if x.ndim != 1 or x.device.type != "cpu" or x.dtype != torch.float64:
        raise ValueError(
            f"expected a float64 CPU vector, got shape {tuple(x.shape)} {x.dtype} on {x.device}"
        )
    return x.detach().numpy()


def from_julia_matrix(a: Any) -> Tensor:
    """A Julia ``n × T`` matrix (or anything NumPy views as one) as a ``(T, n)`` tensor.

    ``numpy.asarray`` on a juliacall ``ArrayValue`` is a view (Fortran-ordered), ``.T`` a
    C-contiguous view of it and ``torch.from_numpy`` shares its memory: no copy. The view
    keeps the Julia array alive (the buffer references its wrapper).
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"expected an n × T matrix from Julia, got shape {arr.shape}")
    return torch.from_numpy(arr.T)
