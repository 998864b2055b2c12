"""The ``hybrideq`` command: ``version``, ``doctor``, ``demo`` and ``bench stiff``.

``hybrideq version`` and ``hybrideq doctor`` report what is installed; neither starts Julia
(juliacall is looked up with :func:`importlib.util.find_spec`, never imported). ``hybrideq
demo`` trains a small neural ODE; its module is imported only when that command runs, so the
other commands stay fast. ``hybrideq bench stiff`` runs work-precision studies of the stiff
solvers on the stiff problems of :mod:`hybrideq.library` (:func:`hybrideq.workprecision`);
it too imports torch only when it runs.

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
    "bench": (
        "scikit-learn",
        "torchdiffeq",
        "torchsde",
        "torchode",
        "diffrax",
        "jax",
        "optax",
        "matplotlib",
    ),
    "docs": ("mkdocs-material", "mkdocstrings"),
    "test": (
        "pytest",
        "pytest-timeout",
        "tree-sitter",
        "tree-sitter-julia",
        "matplotlib",
        "pysindy",
    ),
}

JULIA_NOT_INSTALLED = 'not installed — pip install "hybrideq[julia]", then `hybrideq julia install`'

# `hybrideq bench stiff`: what runs by default (names as on `hybrideq` / `hybrideq.library`).
STIFF_PROBLEMS: tuple[str, ...] = ("robertson", "hires", "pollution", "van_der_pol")
STIFF_SOLVERS: tuple[str, ...] = (
    "Rosenbrock23",
    "Rodas4",
    "Rodas5P",
    "TRBDF2",
    "KenCarp4",
    "Kvaerno5",
    "QNDF",
)
STIFF_PEERS: tuple[str, ...] = ("scipy:BDF", "scipy:Radau", "scipy:LSODA")
STIFF_TOLERANCES: tuple[float, ...] = (1e-4, 1e-6, 1e-8)
STIFF_TOLERANCES_QUICK: tuple[float, ...] = (1e-4, 1e-6)
NOT_AVAILABLE = "not available in this version"


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


def _julia_lines() -> list[str]:
    """What the Julia engine has and which engine ``auto`` picks, without starting Julia."""
    from hybrideq.engines import engine_choice, julia_available
    from hybrideq.engines.julia import find_julia
    from hybrideq.engines.julia._engine import engine_source_dir

    lines = []
    if importlib.util.find_spec("juliacall") is None:
        lines.append(f"juliacall: {JULIA_NOT_INSTALLED}")
    else:
        lines.append(_juliacall_line())
    exe = find_julia()
    lines.append(
        f"Julia executable: {exe}"
        if exe
        else "Julia executable: none installed (`hybrideq julia install` installs one; "
        "nothing is downloaded until you run it)"
    )
    try:
        lines.append(f"HybridEqEngine (Julia package): {engine_source_dir()}")
    except FileNotFoundError as exc:
        lines.append(f"HybridEqEngine: MISSING ({exc})")
    import sympy

    from hybrideq.solvers import Tsit5
    from hybrideq.symbolic import SymbolicODE

    x = sympy.Symbol("x")
    symbolic = SymbolicODE({x: -x}).problem([1.0], (0.0, 1.0))
    plain = symbolic.remake(f=lambda t, y, p: -y)
    for what, prob in (("a sympy model", symbolic), ("a torch function", plain)):
        engine, why = engine_choice(prob, Tsit5(), "auto")
        lines.append(f"engine='auto' for {what} with Tsit5: {engine} ({why})")
    if not julia_available():
        lines.append("engine='julia': raises, with the install command")
    return lines


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
    for line in _julia_lines():
        print(f"  {line}")

    if problems:
        print("\nproblems:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nno problems found")
    return 0


def _run_demo(demo_argv: list[str]) -> int:
    """Run the UDE Lotka–Volterra study (``hybrideq.ude_demo``), or with a first argument
    ``spiral`` the neural-ODE spiral demo (``hybrideq.demo``), with the arguments that
    followed ``demo``."""
    # Imported here, not at the top: the training code (and matplotlib) load only for `demo`.
    if demo_argv[:1] == ["spiral"]:
        demo = importlib.import_module("hybrideq.demo")
        demo_argv = demo_argv[1:]
    else:
        demo = importlib.import_module("hybrideq.ude_demo")
    result = demo.main(demo_argv)
    return result if isinstance(result, int) else 0


def _name_list(text: str) -> list[str]:
    """``"a,b, c"`` → ``["a", "b", "c"]`` (an empty string gives an empty list)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _float_list(text: str) -> list[float]:
    """``"1e-4,1e-6"`` → ``[1e-4, 1e-6]``; anything else is a usage error."""
    values: list[float] = []
    for part in _name_list(text):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a number; give tolerances like 1e-4,1e-6"
            ) from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"tolerances must be positive, got {part}")
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError("give at least one tolerance, e.g. 1e-4,1e-6")
    return values


def _lookup_solver(hq: object, name: str) -> tuple[object | None, str]:
    """The solver object called ``name`` on the ``hybrideq`` module, or ``None`` and why not."""
    import inspect

    from hybrideq.solvers import AbstractSolver

    def is_solver(obj: object) -> bool:
        return inspect.isclass(obj) and issubclass(obj, AbstractSolver)

    cls = getattr(hq, name, None)
    if not is_solver(cls):  # case-insensitive second chance: "rodas5p" finds Rodas5P
        matches = [k for k in dir(hq) if k.lower() == name.lower() and is_solver(getattr(hq, k))]
        cls = getattr(hq, matches[0]) if len(matches) == 1 else None
    if cls is None:
        return None, f"hybrideq has no solver {name}"
    try:
        return cls(), ""  # type: ignore[operator]
    except Exception as exc:  # a solver that needs arguments
        return None, f"{name}() failed: {type(exc).__name__}: {exc}"


def _cmd_bench_stiff(args: argparse.Namespace) -> int:
    """Run a work-precision study per stiff problem; print the tables, write the files."""
    from pathlib import Path

    hq = importlib.import_module("hybrideq")
    wpm = importlib.import_module("hybrideq._workprecision")

    problems = args.problems if args.problems is not None else list(STIFF_PROBLEMS)
    solver_names = args.solvers if args.solvers is not None else list(STIFF_SOLVERS)
    peers = args.peers if args.peers is not None else list(STIFF_PEERS)
    quick = bool(args.quick)
    tolerances = args.tolerances or list(STIFF_TOLERANCES_QUICK if quick else STIFF_TOLERANCES)
    repeats = args.repeats if args.repeats is not None else (1 if quick else 3)
    warmup = args.warmup if args.warmup is not None else 1
    for peer in peers:
        prefix, _, method = peer.partition(":")
        if prefix == "scipy" and method in wpm.SCIPY_METHODS:
            continue
        if prefix == "diffrax" and method:
            continue
        print(
            f"hybrideq bench stiff: error: unknown peer {peer!r}; use scipy:METHOD with "
            f"METHOD one of {', '.join(wpm.SCIPY_METHODS)}",
            file=sys.stderr,
        )
        return 2
    if repeats < 1 or warmup < 0:
        print("hybrideq bench stiff: error: --repeats must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2

    out = Path(args.out)
    print(
        f"hybrideq {__version__}: stiff work-precision ({'quick' if quick else 'full'}): "
        f"rtol {', '.join(f'{t:g}' for t in tolerances)}, atol = {args.atol_ratio:g}·rtol; "
        f"median of {repeats} run(s) after {warmup} warm-up"
    )
    written: list[Path] = []
    for name in problems:
        print()
        factory = getattr(hq.library, name, None)
        if not callable(factory):
            print(f"== {name}: {NOT_AVAILABLE} (hybrideq.library has no {name})")
            continue
        try:
            problem = factory()
        except Exception as exc:
            print(f"== {name}: {NOT_AVAILABLE} ({name}() failed: {type(exc).__name__}: {exc})")
            continue
        contenders: list[object] = []
        missing: list[tuple[str, str, str]] = []  # (name, retcode, message)
        for solver_name in solver_names:
            solver, why = _lookup_solver(hq, solver_name)
            if solver is None:
                missing.append((solver_name, NOT_AVAILABLE, why))
            else:
                contenders.append(solver)
        for peer in peers:
            if peer.startswith("diffrax:"):
                missing.append(
                    (
                        peer,
                        "not available from the command line",
                        "diffrax needs the right-hand side in JAX; see benchmarks/w2_robertson.py",
                    )
                )
            else:
                contenders.append(peer)
        reference = None
        note = ""
        lookup = getattr(hq.library, "reference", None)
        if callable(lookup):
            try:
                reference = lookup(name)
            except Exception as exc:  # no published reference for this problem
                note = f"no library reference ({type(exc).__name__}: {exc})"
            t_ref = getattr(reference, "t", None)
            t_end = float(problem.tspan[1])
            if isinstance(t_ref, (int, float)) and abs(t_ref - t_end) > 1e-9 * max(1.0, t_end):
                note = (
                    f"hybrideq.library.reference({name!r}) is at t={t_ref:g}, the problem ends "
                    f"at t={t_end:g}: the reference is computed instead"
                )
                reference = None
        rows = []
        study = None
        if contenders:
            kwargs = {
                "repeats": repeats,
                "warmup": warmup,
                "atol_ratio": args.atol_ratio,
                "progress": bool(args.progress),
                "title": f"{name} (n={problem.n}, t ∈ [{float(problem.tspan[0]):g}, "
                f"{float(problem.tspan[1]):g}])",
            }
            try:
                study = wpm.workprecision(
                    problem, contenders, tolerances, reference=reference, **kwargs
                )
            except ValueError as exc:
                if reference is None:
                    raise
                note = f"library reference not usable ({exc}); computed one instead"
                study = wpm.workprecision(problem, contenders, tolerances, **kwargs)
            rows = study.rows
        unavailable = [
            wpm.WorkPrecisionRow(solver=n, rtol=None, atol=None, retcode=code, message=why)
            for n, code, why in missing
        ]
        if study is None:
            study = wpm.WorkPrecision(
                rows=[], title=name, warmup=warmup, repeats=repeats, reference="—"
            )
        study.rows = list(rows) + unavailable
        print(f"== {study.table()}")
        if note:
            print(f"note: {note}")
        stem = out / f"stiff_{name}"
        written += [
            study.to_csv(stem.with_suffix(".csv")),
            study.to_json(stem.with_suffix(".json")),
        ]
        if args.plot and rows:
            try:
                import matplotlib

                matplotlib.use("Agg")
                ax = study.plot()
                ax.figure.savefig(stem.with_suffix(".png"), dpi=120, bbox_inches="tight")
                import matplotlib.pyplot as plt

                plt.close(ax.figure)
                written.append(stem.with_suffix(".png"))
            except ImportError as exc:
                print(f"   no plot: {exc}")
    if written:
        print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0


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

    bench = commands.add_parser(
        "bench",
        help="benchmarks: `hybrideq bench stiff` (work-precision of the stiff solvers)",
        description="Benchmarks that run from an installed hybrideq (the side-by-side "
        "comparisons with other libraries live in the repository's benchmarks/).",
    )
    bench_commands = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    stiff = bench_commands.add_parser(
        "stiff",
        help="work-precision of stiff solvers and scipy on the library's stiff problems",
        description="Time every solver at every tolerance on each stiff problem of "
        "hybrideq.library, measure its error against a reference (the library's published "
        "one where it has it, else scipy Radau at rtol=1e-12) and print one table per "
        "problem. A solver or problem that this version does not have is reported as "
        f"'{NOT_AVAILABLE}'.",
    )
    stiff.add_argument(
        "--problems",
        type=_name_list,
        metavar="NAMES",
        help=f"comma-separated hybrideq.library problems (default: {','.join(STIFF_PROBLEMS)})",
    )
    stiff.add_argument(
        "--solvers",
        type=_name_list,
        metavar="NAMES",
        help=f"comma-separated hybrideq solvers (default: {','.join(STIFF_SOLVERS)})",
    )
    stiff.add_argument(
        "--tolerances",
        type=_float_list,
        metavar="RTOLS",
        help="comma-separated rtol values (default: 1e-4,1e-6,1e-8; --quick: 1e-4,1e-6)",
    )
    stiff.add_argument(
        "--peers",
        type=_name_list,
        metavar="NAMES",
        help=f"comma-separated peers, scipy:METHOD (default: {','.join(STIFF_PEERS)}; '' for none)",
    )
    stiff.add_argument(
        "--atol-ratio",
        type=float,
        default=1e-3,
        metavar="R",
        help="atol = R·rtol (default: 1e-3)",
    )
    stiff.add_argument(
        "--quick", action="store_true", help="two tolerances and one timed run (a smoke test)"
    )
    stiff.add_argument("--repeats", type=int, help="timed runs per solver and tolerance (3)")
    stiff.add_argument("--warmup", type=int, help="untimed runs before them (1)")
    stiff.add_argument(
        "--out",
        default="out/bench-stiff",
        metavar="DIR",
        help="folder for stiff_<problem>.csv/.json/.png (default: out/bench-stiff)",
    )
    stiff.add_argument("--plot", action="store_true", help="also draw stiff_<problem>.png")
    stiff.add_argument("--progress", action="store_true", help="show a progress bar")
    stiff.set_defaults(handler=_cmd_bench_stiff)

    # `demo` forwards everything after it to hybrideq.demo.main, which parses its own options.
    commands.add_parser(
        "demo",
        add_help=False,
        help="the UDE Lotka–Volterra study: train a hybrid model, discover its missing terms, "
        "extrapolate (see `hybrideq demo --help`); `hybrideq demo spiral` trains a neural ODE "
        "on a spiral",
        description="The UDE Lotka–Volterra study, or `demo spiral` for the spiral neural ODE.",
    )

    julia = commands.add_parser(
        "julia", help="the Julia runtime: `hybrideq julia install` installs Julia and packages"
    )
    julia_commands = julia.add_subparsers(dest="julia_command", metavar="ACTION", required=True)
    install = julia_commands.add_parser(
        "install",
        help="install Julia and the Julia packages of hybrideq and PySR with juliapkg "
        "(downloads about 1 GB once; needs `pip install hybrideq[julia]`)",
    )
    install.add_argument(
        "--no-precompile",
        action="store_true",
        help="only resolve the environment; do not start Julia to precompile the engine",
    )
    install.add_argument(
        "--cuda",
        action="store_true",
        help="also install CUDA.jl, for GPU ensembles of sympy models (engine='julia' on CUDA)",
    )
    install.set_defaults(handler=_cmd_julia_install)
    return parser


def _cmd_julia_install(args: argparse.Namespace) -> int:
    """``hybrideq julia install``: ``juliapkg.resolve()`` (Julia itself and every package in
    the ``juliapkg.json`` files of the installed Python packages, PySR's included)."""
    if importlib.util.find_spec("juliapkg") is None:
        print('juliapkg is not installed: pip install "hybrideq[julia]"', file=sys.stderr)
        return 1
    juliapkg = importlib.import_module("juliapkg")
    if args.cuda:
        # CUDA.jl for the GPU ensembles (DiffEqGPU); not in hybrideq's juliapkg.json because
        # most machines have no NVIDIA GPU. juliapkg.add(name, uuid, version=...) writes it
        # into this environment's own juliapkg.json (pyjuliapkg deps.py `add`). Version 5:
        # DLPack.jl 0.3.1's CUDA extension is written against CUDA.jl 5 (julia/HybridEqEngine
        # Project.toml says why).
        juliapkg.add("CUDA", "052768ef-5323-5732-b1bb-66c8b64840ba", version="5")
        print("added CUDA.jl to the Julia environment (GPU ensembles)")
    print("resolving the Julia environment with juliapkg (downloads Julia and packages once) …")
    juliapkg.resolve()
    print(f"Julia: {juliapkg.executable()}\nproject: {juliapkg.project()}")
    if not args.no_precompile:
        from hybrideq.engines.julia._engine import load_engine

        print("loading HybridEqEngine (precompiles the SciML packages the first time) …")
        load_engine()
        print("the Julia engine is ready: engine='julia' (or 'auto' for sympy models) uses it")
    return 0


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
