"""Ensemble statistics of batched solutions: per-time mean, variance and quantiles.

A batched solve (an SDE with one Brownian path per sample, or an ODE with uncertain
``y0``/``p``) is a Monte Carlo ensemble; :func:`summarize` reduces it to an
:class:`EnsembleSummary`, and :func:`hybrideq.plotting.plot_ensemble` draws one.
"""

from hybrideq.ensemble._stats import EnsembleSummary, summarize

__all__ = ["EnsembleSummary", "summarize"]
