"""The one way into Julia: find an installed Julia without downloading, set the environment
defaults, then import juliacall.

Everything in hybrideq that needs Julia (the Julia engine, PySR discovery) comes through
here, so they share one Julia runtime with one set of defaults.

Facts relied on (see ``shared/JULIA_BRIDGE.md`` §3–§5):

- juliacall reads ``PYTHON_JULIACALL_HANDLE_SIGNALS``, ``PYTHON_JULIACALL_THREADS`` and
  ``PYTHON_JULIACALL_OPTIMIZE`` once, at its first import (juliacall ``__init__.py``); PySR's
  ``julia_import.py`` sets the same three defaults (``yes``, ``auto``, ``3``) with
  ``os.environ.setdefault``, so whichever of PySR and hybrideq imports juliacall first,
  Julia starts with the same settings.
- juliacall, on import, asks juliapkg for an executable; juliapkg's
  ``find_julia(install=True)`` *downloads* Julia when none is found (pyjuliapkg
  ``find_julia.py``). Without network that fails slowly or hangs, so :func:`find_julia`
  looks for an installed Julia the way juliapkg does (``PYTHON_JULIACALL_EXE``,
  ``PYTHON_JULIAPKG_EXE``, juliapkg's own install prefix, ``juliaup``, ``julia`` on
  ``PATH``) without installing anything, and :func:`require_julia` raises at once when
  there is none.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "JULIA_ENV_DEFAULTS",
    "JULIA_INSTALL_HINT",
    "JuliaNotInstalledError",
    "apply_env_defaults",
    "find_julia",
    "import_juliacall",
    "require_julia",
]

JULIA_ENV_DEFAULTS: dict[str, str] = {
    # Julia's GC uses deliberate segfaults as safepoints; with threads, Julia must own the
    # signal handlers (juliacall docs, "Multi-threading"). The price: Ctrl-C is Julia's.
    "PYTHON_JULIACALL_HANDLE_SIGNALS": "yes",
    "PYTHON_JULIACALL_THREADS": "auto",
    # juliacall's option is `optimize` (`-X juliacall-optimize`, PYTHON_JULIACALL_OPTIMIZE;
    # juliacall/__init__.py `choice('optimize', ...)`); its docs' "OPTLEVEL" is not read
    "PYTHON_JULIACALL_OPTIMIZE": "3",
}
"""Environment defaults set before juliacall's first import (the values PySR uses)."""

JULIA_INSTALL_HINT = (
    'install the Python side with `pip install "hybrideq[julia,symbolic]"`, then Julia and '
    "the Julia packages with `hybrideq julia install` (it runs `juliapkg.resolve()`, which "
    "downloads Julia once, about 1 GB with the packages); or point PYTHON_JULIAPKG_EXE at a "
    "Julia you have installed"
)


class JuliaNotInstalledError(RuntimeError):
    """Raised when a feature needs Julia (or juliacall) and none is installed."""


def _juliapkg_install_prefix() -> Path | None:
    """Where juliapkg installs Julia for this Python environment (``{project}/pyjuliapkg``)."""
    if importlib.util.find_spec("juliapkg") is None:
        return None
    project = os.environ.get("PYTHON_JULIAPKG_PROJECT")
    if project:
        return Path(project) / "pyjuliapkg" / "install"
    if sys.prefix != sys.base_prefix:
        prefix: str | None = sys.prefix
    else:
        prefix = os.environ.get("CONDA_PREFIX")
    if prefix is None:
        depot = os.environ.get("JULIA_DEPOT_PATH", "").split(os.pathsep)[0]
        depot = depot or os.path.join(os.path.expanduser("~"), ".julia")
        return Path(depot) / "environments" / "pyjuliapkg" / "pyjuliapkg" / "install"
    return Path(prefix) / "julia_env" / "pyjuliapkg" / "install"


def find_julia() -> str | None:
    """The Julia executable juliacall would use, if one is installed; never downloads.

    Looks, in juliacall's and juliapkg's order, at ``PYTHON_JULIACALL_EXE``,
    ``PYTHON_JULIAPKG_EXE``, juliapkg's install prefix of this environment, ``juliaup`` and
    ``julia`` on ``PATH``.

    Returns:
        The path of the executable (or of ``juliaup``), or ``None`` when there is none.
    """
    for variable in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE"):
        exe = os.environ.get(variable)
        if exe:
            found = shutil.which(exe)
            return found if found is not None else (exe if os.path.isfile(exe) else None)
    prefix = _juliapkg_install_prefix()
    if prefix is not None:
        exe = shutil.which(str(prefix / "bin" / "julia"))
        if exe is not None:
            return exe
    return shutil.which("juliaup") or shutil.which("julia")


def apply_env_defaults() -> dict[str, str]:
    """Set :data:`JULIA_ENV_DEFAULTS` where the user has not set them; warn if too late.

    Returns:
        The values in force for the three variables.
    """
    if "juliacall" in sys.modules:
        unset = [k for k, v in JULIA_ENV_DEFAULTS.items() if os.environ.get(k) != v]
        if unset:
            warnings.warn(
                "juliacall was imported before hybrideq could set "
                + ", ".join(unset)
                + "; Julia keeps the settings it started with (set them before the first "
                "juliacall import, e.g. PYTHON_JULIACALL_HANDLE_SIGNALS=yes when Julia uses "
                "threads)",
                RuntimeWarning,
                stacklevel=3,
            )
    for key, value in JULIA_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in JULIA_ENV_DEFAULTS}


def require_julia(feature: str, *, python_packages: tuple[str, ...] = ("juliacall",)) -> str:
    """Check, without starting or downloading anything, that ``feature`` can use Julia.

    Args:
        feature: what needs Julia, named in the error (e.g. ``"discover(method=PySR())"``).
        python_packages: Python packages it imports (checked with ``find_spec``).

    Returns:
        The Julia executable found.

    Raises:
        JuliaNotInstalledError: a Python package or Julia itself is missing; the message
            says how to install it.
    """
    missing = [name for name in python_packages if importlib.util.find_spec(name) is None]
    if missing:
        raise JuliaNotInstalledError(
            f"{feature} needs the Python package(s) {', '.join(missing)}, which are not "
            f"installed: {JULIA_INSTALL_HINT}"
        )
    exe = find_julia()
    if exe is None:
        raise JuliaNotInstalledError(
            f"{feature} needs Julia, and no Julia is installed (none at PYTHON_JULIACALL_EXE, "
            "PYTHON_JULIAPKG_EXE, juliapkg's install prefix, juliaup or `julia` on PATH); "
            f"hybrideq does not download it on the fly: {JULIA_INSTALL_HINT}"
        )
    return exe


JULIA_FIRST_VARIABLE = "HYBRIDEQ_JULIA_FIRST"
"""Set to ``1`` to make ``import hybrideq`` start Julia before it imports torch."""

_TORCH_FIRST_HINT = (
    "torch was imported before juliacall: hybrideq imports torch, and this order has "
    "crashed on some systems (heap corruption from clashing LLVM symbols: PythonCall.jl "
    "#215, pytorch #78829). If Julia crashes, set HYBRIDEQ_JULIA_FIRST=1 before starting "
    "Python (and import hybrideq before torch): `import hybrideq` then starts Julia first."
)


def import_juliacall(feature: str) -> Any:
    """Check for Julia, set the environment defaults and import juliacall.

    juliacall warns whenever torch was imported first (its ``__init__``); that warning is
    replaced by one that says what to do about it (:data:`JULIA_FIRST_VARIABLE`).

    Args:
        feature: what needs Julia, named in the error if it is missing.

    Returns:
        The ``juliacall`` module.
    """
    require_julia(feature)
    apply_env_defaults()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import juliacall
    for w in caught:
        if "torch was imported before juliacall" in str(w.message):
            warnings.warn(_TORCH_FIRST_HINT, RuntimeWarning, stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return juliacall


def import_before_torch() -> bool:
    """Start Julia before torch is imported (``HYBRIDEQ_JULIA_FIRST=1``; pitfall 1 of
    shared/JULIA_BRIDGE.md: juliacall first, as PySR does).

    Called at the top of ``hybrideq/__init__.py`` when the variable is set. Does nothing,
    with a warning, when torch is already imported (too late) or no Julia is installed.

    Returns:
        Whether juliacall was imported before torch.
    """
    if "juliacall" in sys.modules:
        return True
    if "torch" in sys.modules:
        warnings.warn(
            f"{JULIA_FIRST_VARIABLE}=1 has no effect: torch was imported before hybrideq; "
            "import hybrideq first",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    if find_julia() is None or importlib.util.find_spec("juliacall") is None:
        warnings.warn(
            f"{JULIA_FIRST_VARIABLE}=1 has no effect: no Julia is installed ({JULIA_INSTALL_HINT})",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    apply_env_defaults()
    import juliacall  # noqa: F401

    return True
