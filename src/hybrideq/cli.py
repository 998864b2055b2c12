"""The ``hybrideq`` command: ``version``, ``doctor`` and ``demo``.

``hybrideq version`` and ``hybrideq doctor`` report what is installed; neither starts Julia
(juliacall is looked up with :func:`importlib.util.find_spec`, never imported). ``hybrideq
demo`` trains a small neural ODE; its module is imported only when that command runs, so the
other commands stay fast.

Example:
    $ hybrideq version
    hybrideq 0.1.0
    torch 2.13.0+cpu
    juliacall: not installed
    device: cpu (CUDA not available)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import platform
import re
import shutil
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

from hybrideq._version import __version__

__all__ = ["main"]

# Required distributions and their minimum versions; keep in step with
# `[project] dependencies` in pyproject.toml (tests/test_cli.py checks this).
CORE_REQUIREMENTS: dict[str, str] = {
    "numpy": "1.24",
    "scipy": "1.10",
    "sympy": "1.12",
    "torch": "2.2",
    "tqdm": "4.60",
}

# The distributions behind each optional extra, by name as pip knows them; keep in step with
# `[project.optional-dependencies]` in pyproject.toml (`dev` only gathers others).
EXTRAS: dict[str, tuple[str, ...]] = {
    "julia": ("juliacall", "juliapkg"),
    "symbolic": ("pysr", "pysindy"),
    "distributed": ("dask", "distributed"),
    "plot": ("matplotlib",),
    "bench": ("torchdiffeq", "torchsde", "torchode", "diffrax", "jax", "optax", "matplotlib"),
    "docs": ("mkdocs-material", "mkdocstrings"),
    "test": ("pytest", "pytest-timeout", "tree-sitter", "tree-sitter-julia", "matplotlib"),
}

JULIA_NOT_INSTALLED = "not installed — run `hybrideq julia install` (not yet available)"


# --------------------------------------------------------------------------- helpers


def _installed_version(dist: str) -> str | None:
    """Return the installed version of distribution ``dist``, or ``None`` if it is absent."""
    try:
        return dist_version(dist)
    except PackageNotFoundError:
        return None


def _version_tuple(text: str) -> tuple[int, ...]:
    """Return the leading numeric release of a version string: ``"2.13.0+cpu"`` → ``(2, 13, 0)``."""
    parts: list[int] = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):  # "0rc1", "0+cpu": the release ends here
            break
    return tuple(parts)


def _at_least(installed: str, minimum: str) -> bool:
    """Whether version ``installed`` is at least ``minimum`` (release numbers only)."""
    have, need = _version_tuple(installed), _version_tuple(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def _juliacall_line() -> str:
    """Describe juliacall without importing it (importing juliacall starts Julia)."""
    if importlib.util.find_spec("juliacall") is None:
        return "juliacall: not installed"
    found = _installed_version("juliacall")
    return f"juliacall: installed ({found})" if found else "juliacall: installed"


def _device_lines() -> list[str]:
    """Describe the compute devices torch can see."""
    import torch

    lines = [f"torch threads: {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        cuda = torch.version.cuda or "?"
        lines.append(f"device: CUDA available ({count} device(s), CUDA {cuda})")
        lines.extend(f"  cuda:{i}: {torch.cuda.get_device_name(i)}" for i in range(count))
    else:
        lines.append("device: cpu (CUDA not available)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        lines.append("device: Apple MPS available")
    return lines


def _torch_line() -> str:
    """Report the torch version (imported, so the one Python actually loads)."""
    import torch

    return f"torch {torch.__version__}"


# --------------------------------------------------------------------------- commands


def _cmd_version(args: argparse.Namespace) -> int:
    """Print the hybrideq and torch versions, juliacall's presence and the devices."""
    print(f"hybrideq {__version__}")
    print(_torch_line())
    print(_juliacall_line())
    for line in _device_lines():
        print(line)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation; return 1 when a required dependency is missing or too old."""
    problems: list[str] = []
    print(f"hybrideq {__version__}")
    print(f"python {platform.python_version()} ({sys.executable})")
    print(f"platform {platform.platform()}")

    print("\nrequired:")
    for dist, minimum in CORE_REQUIREMENTS.items():
        found = _installed_version(dist)
        if found is None:
            status = f"MISSING (need >={minimum})"
            problems.append(f"{dist} is not installed: pip install '{dist}>={minimum}'")
        elif not _at_least(found, minimum):
            status = f"{found}  TOO OLD (need >={minimum})"
            problems.append(
                f"{dist} {found} is older than {minimum}: pip install -U '{dist}>={minimum}'"
            )
        else:
            status = f"{found}  ok"
        print(f"  {dist:<12} {status}")

    print("\noptional extras (pip install 'hybrideq[EXTRA]'):")
    for extra, dists in EXTRAS.items():
        found_dists = {dist: _installed_version(dist) for dist in dists}
        missing = [dist for dist, found in found_dists.items() if found is None]
        if not missing:
            state = "installed"
        elif len(missing) == len(dists):
            state = "not installed"
        else:
            state = "partly installed (missing: " + ", ".join(missing) + ")"
        print(f"  {extra:<12} {state}")

    print("\ncompute:")
    try:
        print(f"  {_torch_line()}")
        for line in _device_lines():
            print(f"  {line}")
    except Exception as exc:  # torch missing or broken: already reported above
        print(f"  torch cannot be imported: {type(exc).__name__}: {exc}")
        problems.append(f"torch cannot be imported: {exc}")

    print("\nJulia engine:")
    if importlib.util.find_spec("juliacall") is None:
        print(f"  {JULIA_NOT_INSTALLED}")
    else:
        print(f"  {_juliacall_line()}")
        julia_exe = shutil.which("julia")
        print(f"  julia executable on PATH: {julia_exe or 'none (juliapkg can download one)'}")
        print("  engine: not yet available in this version (the torch engine is used)")

    if problems:
        print("\nproblems:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nno problems found")
    return 0


def _run_demo(demo_argv: list[str]) -> int:
    """Run ``hybrideq.demo.main`` with the arguments that followed ``demo``."""
    # Imported here, not at the top: the training code (and matplotlib) load only for `demo`.
    demo = importlib.import_module("hybrideq.demo")
    result = demo.main(demo_argv)
    return result if isinstance(result, int) else 0


# --------------------------------------------------------------------------- parser and entry


def build_parser() -> argparse.ArgumentParser:
    """Build the ``hybrideq`` argument parser.

    Returns:
        The parser, with one sub-command per command.
    """
    parser = argparse.ArgumentParser(
        prog="hybrideq",
        description="hybrideq: differential equations with neural parts.",
    )
    parser.add_argument("--version", action="version", version=f"hybrideq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    version = commands.add_parser(
        "version",
        help="print the hybrideq and torch versions, juliacall's presence and the devices",
        description="Print the hybrideq and torch versions, whether juliacall is installed "
        "and which devices torch can use.",
    )
    version.set_defaults(handler=_cmd_version)

    doctor = commands.add_parser(
        "doctor",
        help="check the installation: dependencies, optional extras, devices, Julia",
        description="Check the installation: required dependencies and their versions, "
        "optional extras, devices, the Julia engine. Exits with 1 if a required "
        "dependency is missing or too old.",
    )
    doctor.set_defaults(handler=_cmd_doctor)

    # `demo` forwards everything after it to hybrideq.demo.main, which parses its own options.
    commands.add_parser(
        "demo",
        add_help=False,
        help="train a small neural ODE on a spiral and plot it "
        "(options: --steps N, --out PATH, --no-plot, --seed S; see `hybrideq demo --help`)",
        description="Train a small neural ODE on a spiral and plot it.",
    )
    return parser


def _system_exit_code(exc: SystemExit) -> int:
    """Turn a ``SystemExit`` (argparse's way out) into an exit status."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hybrideq`` command.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 for a usage error (argparse's convention, with its
        message on stderr), 1 when ``doctor`` finds a problem, or what ``demo`` returns.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(args_list)
        if args.command == "demo":
            # The top-level parser takes no option with a value, so the first "demo" token is
            # the command; everything after it, in order, belongs to the demo.
            return _run_demo(args_list[args_list.index("demo") + 1 :])
        if extra:
            parser.error("unrecognized arguments: " + " ".join(extra))
        return int(args.handler(args))
    except SystemExit as exc:  # --help, --version, a usage error, or the demo's own exit
        return _system_exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
