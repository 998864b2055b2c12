"""Plots (matplotlib, optional): work-precision diagrams.

matplotlib is imported only when a plot is drawn; without it every function here raises an
``ImportError`` that says how to install it (``pip install 'hybrideq[plot]'``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hybrideq._workprecision import WorkPrecision

__all__ = ["plot_workprecision"]

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
