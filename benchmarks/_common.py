"""Shared helpers of the benchmark scripts (not a workload itself).

Import this module **before** torch, numpy or jax: it fixes the thread count through
environment variables that those libraries read when they start.

- :func:`setup` pins every library to the same thread count (2 by default, BENCHMARKS.md),
  enables float64 in JAX and makes ``import hybrideq`` work from a plain checkout.
- :func:`timeit` runs warm-ups, then timed repeats, and returns the median and every time.
- :func:`peers` tells which peers are installed (with versions); a missing one becomes a
  ``not installed`` row through :func:`missing_row`, never a silent skip.
- :func:`print_table`, :func:`write_results` print and save a table (JSON and CSV under
  ``benchmarks/results/``, which git ignores).
- :func:`make_parser` gives every script the same ``--quick/--json/--plot`` flags.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# BENCHMARKS.md: 2 threads for every contender. HYBRIDEQ_BENCH_THREADS overrides it (e.g.
# 1 on a machine that other jobs keep busy, where OpenMP workers are descheduled).
THREADS = int(os.environ.get("HYBRIDEQ_BENCH_THREADS", "2"))
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# Thread pinning through the environment must happen before torch/numpy/jax start.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={THREADS}"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NOT_INSTALLED = "not installed"


def setup(threads: int = THREADS) -> None:
    """Pin torch (and, when installed, JAX) to ``threads`` threads; enable JAX float64."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # interop threads can be set only once
        torch.set_num_interop_threads(1)
    if available("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")


def import_hybrideq() -> Any:
    """``import hybrideq``, falling back to the checkout's ``src/`` when not installed."""
    try:
        return importlib.import_module("hybrideq")
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
        return importlib.import_module("hybrideq")


# --------------------------------------------------------------------------- peers

_DISTRIBUTIONS = {
    "scipy": "scipy",
    "torchdiffeq": "torchdiffeq",
    "torchode": "torchode",
    "jax": "jax",
    "diffrax": "diffrax",
    "equinox": "equinox",
    "optax": "optax",
    "matplotlib": "matplotlib",
    "torch": "torch",
    "numpy": "numpy",
}


def available(module: str) -> bool:
    """Whether ``module`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(module) is not None


def version(module: str) -> str:
    """The installed version of ``module``'s distribution, or ``not installed``."""
    if not available(module):
        return NOT_INSTALLED
    try:
        return importlib.metadata.version(_DISTRIBUTIONS.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        mod = importlib.import_module(module)
        return str(getattr(mod, "__version__", "unknown"))


def peers(names: Sequence[str]) -> dict[str, str]:
    """``{module: version or 'not installed'}`` for each peer."""
    return {n: version(n) for n in names}


def missing_row(contender: str, *needs: str, **extra: Any) -> dict[str, Any]:
    """A table row for a contender whose peer(s) are missing."""
    lacking = [n for n in needs if not available(n)]
    return {
        "contender": contender,
        "status": f"{NOT_INSTALLED}: {', '.join(lacking)} (pip install {' '.join(lacking)})",
        **extra,
    }


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Median and every time (seconds) of the timed repeats, and the last result."""

    median: float
    times: list[float]
    result: Any = field(default=None, repr=False)

    @property
    def min(self) -> float:
        return min(self.times)


def timeit(fn: Callable[[], Any], warmup: int = 1, repeats: int = 5) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    ``fn`` must finish its work before it returns (block on JAX arrays inside it).
    """
    result = None
    for _ in range(warmup):
        result = fn()
    times: list[float] = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), times, result)


def timeit_interleaved(
    fns: dict[str, Callable[[], Any]], warmup: int = 1, repeats: int = 5
) -> tuple[dict[str, Timing], dict[str, str]]:
    """:func:`timeit` for several contenders, round robin.

    Repeat ``r`` of every contender runs before repeat ``r + 1`` of any, so that a change
    of the machine's load during the run hits every contender alike. A contender that
    raises is dropped; the second dict maps its name to the error.
    """
    results: dict[str, Any] = {}
    times: dict[str, list[float]] = {k: [] for k in fns}
    errors: dict[str, str] = {}
    for rep in range(warmup + max(1, repeats)):
        for name, fn in fns.items():
            if name in errors:
                continue
            t0 = time.perf_counter()
            try:
                results[name] = fn()
            except Exception as e:
                errors[name] = f"failed: {type(e).__name__}: {e}"
                continue
            if rep >= warmup:
                times[name].append(time.perf_counter() - t0)
    out = {
        k: Timing(statistics.median(v), v, results[k]) for k, v in times.items() if k not in errors
    }
    return out, errors


# --------------------------------------------------------------------------- tables


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if x == 0.0:
            return "0"
        ax = abs(x)
        if ax >= 1e5 or ax < 1e-3:
            return f"{x:.2e}"
        if ax >= 100:
            return f"{x:.1f}"
        if ax >= 1:
            return f"{x:.3g}" if ax < 10 else f"{x:.2f}"
        return f"{x:.3g}"
    return str(x)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Plain-text table: ``columns`` is ``[(key, header), ...]``; missing keys print ``—``.

    A row with a ``status`` (e.g. ``not installed``) prints it after the contender name
    instead of the figures.
    """
    cells: list[list[str]] = []
    for r in rows:
        if r.get("status"):
            cells.append([str(r.get(columns[0][0], "")), str(r["status"])])
        else:
            cells.append([_fmt(r.get(k)) for k, _ in columns])
    headers = [h for _, h in columns]
    widths = [len(h) for h in headers]
    for c in cells:
        if len(c) == len(columns):
            for i, s in enumerate(c):
                widths[i] = max(widths[i], len(s))
        else:
            widths[0] = max(widths[0], len(c[0]))
    lines = []
    lines.append(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        if len(c) == len(columns):
            lines.append(
                "  ".join(
                    s.ljust(w) if i == 0 else s.rjust(w)
                    for i, (s, w) in enumerate(zip(c, widths, strict=True))
                )
            )
        else:
            lines.append(c[0].ljust(widths[0]) + "  " + c[1])
    return "\n".join(lines)


def format_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """The same table as GitHub markdown (for the README's results)."""
    out = ["| " + " | ".join(h for _, h in columns) + " |"]
    out.append("|" + "|".join("---" for _ in columns) + "|")
    for r in rows:
        if r.get("status"):
            vals = [str(r.get(columns[0][0], "")), str(r["status"])] + [""] * (len(columns) - 2)
        else:
            vals = [_fmt(r.get(k)) for k, _ in columns]
        out.append("| " + " | ".join(vals) + " |")
    return "\n".join(out)


def print_table(
    title: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]
) -> None:
    print()
    print(title)
    print(format_table(rows, columns))
    print()


# --------------------------------------------------------------------------- output


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": THREADS,
        "loadavg_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    cpu = Path("/proc/cpuinfo")
    if cpu.exists():
        for line in cpu.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    for mod in ("torch", "numpy", "scipy", "torchdiffeq", "torchode", "jax", "diffrax"):
        info[mod] = version(mod)
    info["git"] = git_revision()
    try:
        info["hybrideq"] = import_hybrideq().__version__
    except Exception as e:  # pragma: no cover - reported, not fatal
        info["hybrideq"] = f"import failed: {e}"
    return info


def git_revision() -> str | None:
    """The checkout's commit (``+dirty`` when ``src/`` has changes), or ``None``."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def write_results(
    name: str,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    json_path: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write ``rows`` as ``results/<name>.json`` and ``.csv`` (and to ``json_path``).

    Columns whose values are lists (loss curves, per-step times) go to the JSON only.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "getloadavg"):
        meta = {**meta, "loadavg_end": round(os.getloadavg()[0], 2)}
    payload = {"benchmark": name, "meta": meta, "rows": list(rows), **(extra or {})}
    payload = _jsonable(payload)
    paths = [RESULTS_DIR / f"{name}.json"]
    if json_path is not None:
        paths.append(Path(json_path))
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(payload, indent=2))
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and not isinstance(v, (list, tuple, dict)):
                keys.append(k)
    csv_path = RESULTS_DIR / f"{name}.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _jsonable(r.get(k)) for k in keys})
    return [*paths, csv_path]


# --------------------------------------------------------------------------- CLI


def make_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark script has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a small, fast version of the workload")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--plot", metavar="PATH", help="save a plot (PNG) to PATH (needs matplotlib)")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per contender (default: by mode)"
    )
    p.add_argument(
        "--only",
        metavar="NAMES",
        default=None,
        help="comma-separated substrings: run only contenders whose name matches",
    )
    return p


def selected(name: str, only: str | None) -> bool:
    """Whether the contender ``name`` passes the ``--only`` filter."""
    if not only:
        return True
    return any(s.strip().lower() in name.lower() for s in only.split(",") if s.strip())


def print_header(title: str, args: argparse.Namespace, meta: dict[str, Any]) -> None:
    mode = "quick" if args.quick else "full"
    print(f"== {title} ({mode})")
    print(
        f"   {meta['date']}  {meta.get('cpu', meta['processor'])}  "
        f"threads={meta['threads']}  python {meta['python']}  git {meta.get('git')}"
    )
    print(
        "   "
        + "  ".join(
            f"{k} {meta[k]}"
            for k in ("hybrideq", "torch", "scipy", "torchdiffeq", "torchode", "jax", "diffrax")
        )
    )
    busy_warning(meta.get("loadavg_start"))


def busy_warning(load: float | None = None) -> None:
    """Warn when other processes keep the machine busy: timings are then noisy.

    With more runnable processes than cores, torch's OpenMP workers get descheduled and
    a single small kernel can take milliseconds instead of microseconds.
    """
    if load is None and hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        print(
            f"   WARNING: load average {load:.1f} on {cores} cores before the run: other "
            "processes compete for the CPU, so the times below are noisy (and multi-threaded "
            "torch kernels can stall); rerun on an idle machine for figures to quote."
        )
