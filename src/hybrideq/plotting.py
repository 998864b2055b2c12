"""Plots (matplotlib, optional): work-precision diagrams and ensemble bands.

matplotlib is imported only when a plot is drawn; without it every function here raises an
``ImportError`` that says how to install it (``pip install 'hybrideq[plot]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hybrideq._workprecision import WorkPrecision
    from hybrideq.ensemble import EnsembleSummary
    from hybrideq.solution import Solution

__all__ = ["plot_ensemble", "plot_workprecision"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")

_LABELS = {
    "time_s": "median time [s]",
    "nf": "right-hand-side evaluations",
    "njac": "Jacobian evaluations",
    "nlu": "LU factorizations",
    "naccept": "accepted steps",
    "nreject": "rejected steps",
    "steps": "attempted steps",
    "rtol": "rtol",
    "atol": "atol",
    "setup_s": "setup (compile) time [s]",
    "error_max": "max relative error",
}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'hybrideq[plot]'"
        ) from e
    return plt


def _axis_label(wp: WorkPrecision, key: str) -> str:
    if key == "error":
        where = "at t_end" if wp.error_kind == "final" else "over saveat"
        return f"error (RMS relative {where}, floor {wp.error_floor:g})"
    return _LABELS.get(key, key)


def plot_workprecision(
    wp: WorkPrecision,
    ax: Axes | None = None,
    *,
    x: str = "error",
    y: str = "time_s",
    annotate: bool = False,
    title: str | None = None,
    legend: bool = True,
    **line_kwargs: Any,
) -> Axes:
    """Draw a work-precision diagram on log-log axes.

    One line per contender through its successful runs, loosest tolerance first, with a
    marker at every tolerance (a different marker shape per contender). Runs that failed
    have no error to plot; the legend counts them (``"FBDF (2 failed)"``). A contender
    with no successful run gets no line.

    Args:
        wp: the study, from :func:`hybrideq.workprecision`.
        ax: the axes to draw on (default: a new figure).
        x: the row field on the horizontal axis (default ``"error"``).
        y: the row field on the vertical axis (default ``"time_s"``); both may be any of
            ``error``, ``error_max``, ``time_s``, ``nf``, ``njac``, ``nlu``, ``naccept``,
            ``nreject``, ``steps``, ``rtol``, ``atol``, ``setup_s``.
        annotate: label every marker with its ``rtol``.
        title: the axes title (default: ``wp.title``).
        legend: draw a legend.
        **line_kwargs: passed to ``ax.plot`` for every line.

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: when matplotlib is not installed.
        ValueError: for an unknown ``x`` or ``y``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import hybrideq as hq
        >>> from hybrideq._workprecision import workprecision
        >>> wp = workprecision(
        ...     hq.library.exponential_decay(), [hq.Tsit5()], [1e-3, 1e-6], repeats=1
        ... )
        >>> ax = wp.plot()
        >>> len(ax.lines)
        1
    """
    from hybrideq._workprecision import NUMERIC_FIELDS

    for name, key in (("x", x), ("y", y)):
        if key not in NUMERIC_FIELDS:
            raise ValueError(f"{name} must be one of {', '.join(NUMERIC_FIELDS)}; got {key!r}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    assert ax is not None

    def value(row: Any, key: str) -> float:
        v = getattr(row, key)
        return math.nan if v is None else float(v)

    for i, name in enumerate(wp.solvers):
        rows = [r for r in wp.rows_for(name) if r.ran]
        pts = [
            (value(r, x), value(r, y), r.rtol)
            for r in rows
            if r.success and value(r, x) > 0 and value(r, y) > 0
        ]
        if not pts:
            continue
        pts.sort(key=lambda p: -(p[2] or 0.0))  # loosest tolerance first
        failed = sum(1 for r in rows if not r.success)
        label = f"{name} ({failed} failed)" if failed else name
        kwargs = {"marker": _MARKERS[i % len(_MARKERS)], "label": label, **line_kwargs}
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **kwargs)
        if annotate:
            for px, py, rtol in pts:
                ax.annotate(
                    f"{rtol:.0e}",
                    (px, py),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_axis_label(wp, x))
    ax.set_ylabel(_axis_label(wp, y))
    ax.set_title(wp.title if title is None else title)
    ax.grid(True, which="both", alpha=0.3)
    if legend and ax.lines:
        ax.legend(fontsize=8)
    return ax


def plot_ensemble(
    summary_or_solution: EnsembleSummary | Solution,
    *,
    components: Sequence[int] | None = None,
    ax: Axes | None = None,
    band: tuple[float, float] | None = (0.05, 0.95),
    show_mean: bool = True,
    show_median: bool = False,
    n_paths: int = 0,
    labels: Sequence[str] | None = None,
) -> Axes:
    """Draw an ensemble over time: the mean and a shaded quantile band per state component.

    Each component gets one colour: its mean (solid line), its median (dashed, with
    ``show_median``), the band between the two quantile levels of ``band`` (shaded), and
    the first ``n_paths`` sample paths (thin lines). Where samples failed, the statistics
    are over the samples present (see :func:`hybrideq.ensemble.summarize`); the title gives
    the band and the number of samples.

    Args:
        summary_or_solution: an :class:`~hybrideq.ensemble.EnsembleSummary`, or a batched
            :class:`~hybrideq.Solution` with shared save times (summarized here, with the
            quantile levels the plot needs).
        components: which state components to draw, as indices into the flattened state
            (default: all).
        ax: the axes to draw on (default: a new figure).
        band: the quantile levels ``(low, high)`` of the shaded band, or ``None`` for no
            band. A summary must have computed both levels.
        show_mean: draw the mean.
        show_median: draw the median (a summary must have computed level 0.5).
        n_paths: how many sample paths to draw per component (the first ``n_paths``
            samples; needs the solution, not a summary).
        labels: one legend label per drawn component (default: ``y[i]``, ``y[i, j]`` …).

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: when matplotlib is not installed.
        ValueError: for a component out of range, a wrong number of labels, an invalid
            band, a quantile level the summary lacks, or sample paths asked of a summary.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import torch, hybrideq as hq
        >>> from hybrideq.ensemble import summarize
        >>> from hybrideq.plotting import plot_ensemble
        >>> y = torch.randn(100, 11, 2, dtype=torch.float64)  # (batch, T, state)
        >>> ax = plot_ensemble(summarize(y, t=torch.linspace(0, 1, 11)))
        >>> len(ax.lines), len(ax.collections)  # a mean and a band per component
        (2, 2)
    """
    from hybrideq.ensemble import EnsembleSummary, summarize
    from hybrideq.solution import Solution

    if n_paths < 0:
        raise ValueError(f"n_paths must be >= 0; got {n_paths}")
    if band is not None:
        lo, hi = (float(b) for b in band)
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"band must be two quantile levels 0 <= low < high <= 1; got {band}")
    if isinstance(summary_or_solution, Solution):
        levels = (*(band or ()), *((0.5,) if show_median else ()))
        summary = summarize(summary_or_solution, quantiles=levels)
        paths = summary_or_solution.y
    elif isinstance(summary_or_solution, EnsembleSummary):
        summary = summary_or_solution
        if n_paths:
            raise ValueError(
                "sample paths need the trajectories: pass the Solution, not its summary, "
                "with n_paths > 0"
            )
        paths = None
    else:
        raise TypeError(
            "plot_ensemble takes an EnsembleSummary or a batched Solution; "
            f"got {type(summary_or_solution).__name__}"
        )

    shape = summary.state_shape
    size = math.prod(shape)
    comps = list(range(size)) if components is None else [int(c) for c in components]
    for c in comps:
        if not 0 <= c < size:
            raise ValueError(
                f"component {c} is out of range for a state of shape {shape} "
                f"({size} components, indexed in the flattened state)"
            )
    if labels is None:
        labels = [_component_label(c, shape) for c in comps]
    elif len(labels) != len(comps):
        raise ValueError(f"labels has {len(labels)} entries for {len(comps)} components")
    median = summary.quantile(0.5) if show_median else None
    lower, upper = (summary.quantile(b) for b in band) if band is not None else (None, None)

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    assert ax is not None

    def flat(x: Any) -> Any:  # (T, *state) or (batch, T, *state) -> numpy, state flattened
        x = x.detach().cpu()
        return x.reshape(*x.shape[: x.ndim - len(shape)], size).numpy()

    t = summary.t.detach().cpu().numpy()
    mean = flat(summary.mean)
    med = None if median is None else flat(median)
    low = None if lower is None else flat(lower)
    high = None if upper is None else flat(upper)
    ys = None if paths is None or not n_paths else flat(paths[:n_paths])
    for i, (c, label) in enumerate(zip(comps, labels, strict=True)):
        color = f"C{i % 10}"
        if ys is not None:
            for path in ys[..., c]:
                ax.plot(t, path, color=color, lw=0.6, alpha=0.35, label="_nolegend_")
        if low is not None and high is not None:
            ax.fill_between(
                t,
                low[:, c],
                high[:, c],
                color=color,
                alpha=0.25,
                lw=0,
                label=label if not (show_mean or show_median) else "_nolegend_",
            )
        if med is not None:
            ax.plot(t, med[:, c], color=color, ls="--", label="_nolegend_" if show_mean else label)
        if show_mean:
            ax.plot(t, mean[:, c], color=color, label=label)

    shown = [w for w, on in (("mean", show_mean), ("median", show_median)) if on]
    if band is not None:
        shown.append(f"{band[0]:g}–{band[1]:g} quantiles")
    lo_n, hi_n = (int(summary.n.min()), int(summary.n.max())) if summary.n.numel() else (0, 0)
    count = f"n = {hi_n}" if lo_n == hi_n else f"n = {lo_n}…{hi_n}"
    ax.set_title(f"{', '.join(shown)} ({count})" if shown else count)
    ax.set_xlabel("t")
    ax.grid(True, alpha=0.3)
    if comps:
        ax.legend(fontsize=8)
    return ax


def _component_label(c: int, shape: tuple[int, ...]) -> str:
    """``y[c]`` in the flattened state, written as the index into ``shape``."""
    if not shape:
        return "y"
    if len(shape) == 1:
        return f"y[{c}]"
    idx = []
    for d in reversed(shape):
        idx.append(c % d)
        c //= d
    return "y[" + ", ".join(str(i) for i in reversed(idx)) + "]"
