"""Ensemble statistics: :func:`hybrideq.ensemble.summarize` and :func:`plot_ensemble`.

Moments and quantiles are checked against numpy (``nanmean``, ``nanvar(ddof=1)``,
``nanquantile``) on known tensors, NaN tails of failed samples are excluded per save time,
an analytic ensemble ``y_i(t) = y0_i e^{−t}`` with ``y0_i ~ N(1, 0.2²)`` has the mean,
variance and quantiles theory gives (within 4 standard errors), gradients flow through
the moments, and every validation path says what is wrong.
"""

from __future__ import annotations

import math
import sys
import warnings
from statistics import NormalDist

import numpy as np
import pytest
import torch

import hybrideq as hq
from hybrideq.ensemble import EnsembleSummary, summarize
from hybrideq.plotting import plot_ensemble

F64 = torch.float64
NAN = math.nan
LEVELS = (0.0, 0.05, 0.25, 0.5, 0.9, 1.0)


def decay(t: torch.Tensor, y: torch.Tensor, p: object) -> torch.Tensor:
    return -y


def decay_batch(y0: torch.Tensor, ts: torch.Tensor, **kwargs: object) -> hq.Solution:
    """A batched solve of ``y' = −y`` saved at the shared times ``ts``."""
    prob = hq.ODEProblem(decay, y0, (0.0, float(ts[-1])))
    return hq.solve(prob, hq.Tsit5(), saveat=ts, rtol=1e-10, atol=1e-12, **kwargs)


def numpy_reference(y: np.ndarray, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
    """numpy's statistics over axis 0, a sample being absent where any state entry is NaN."""
    y = y.copy()
    absent = np.isnan(y.reshape(y.shape[0], y.shape[1], -1)).any(-1)
    y[absent] = np.nan
    with warnings.catch_warnings():  # all-NaN slices and n − 1 = 0 warn in numpy
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "n": (~absent).sum(0),
            "mean": np.nanmean(y, axis=0),
            "var": np.nanvar(y, axis=0, ddof=1),
            "quantiles": np.nanquantile(y, levels, axis=0),
        }


def assert_matches(s: EnsembleSummary, ref: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(s.n.numpy(), ref["n"])
    np.testing.assert_allclose(s.mean.numpy(), ref["mean"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(s.var.numpy(), ref["var"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(s.quantiles.numpy(), ref["quantiles"], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- against numpy


def test_moments_and_quantiles_match_numpy() -> None:
    y = torch.randn(200, 9, 3, dtype=F64) * torch.linspace(0.5, 2.0, 3, dtype=F64) + 1.0
    ts = torch.linspace(0.0, 2.0, 9, dtype=F64)
    s = summarize(y, t=ts, quantiles=LEVELS)
    yn = y.numpy()
    assert s.mean.shape == s.var.shape == (9, 3)
    assert s.quantiles.shape == (len(LEVELS), 9, 3)
    assert s.n.dtype == torch.int64 and s.n.tolist() == [200] * 9
    assert s.quantile_levels == LEVELS and s.state_shape == (3,)
    torch.testing.assert_close(s.t, ts, rtol=0, atol=0)
    np.testing.assert_allclose(s.mean.numpy(), yn.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.var.numpy(), yn.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(s.std.numpy(), yn.std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(s.quantiles.numpy(), np.quantile(yn, LEVELS, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(s.quantile(0.0).numpy(), yn.min(0))
    np.testing.assert_array_equal(s.quantile(1.0).numpy(), yn.max(0))
    torch.testing.assert_close(s.quantile(0.9), s.quantiles[4], rtol=0, atol=0)

    arrays = s.to_numpy()
    assert set(arrays) == {"t", "mean", "var", "std", "quantile_levels", "quantiles", "n"}
    assert isinstance(arrays["mean"], np.ndarray) and arrays["quantile_levels"] == LEVELS
    np.testing.assert_array_equal(arrays["quantiles"], s.quantiles.numpy())
    assert repr(s) == (
        "EnsembleSummary(t=(9,), state=(3,), n=200, quantiles=(0, 0.05, 0.25, 0.5, 0.9, 1))"
    )


@pytest.mark.parametrize("state", [(), (1,), (2, 3)], ids=["scalar", "one", "matrix"])
def test_any_state_shape(state: tuple[int, ...]) -> None:
    y = torch.randn(31, 5, *state, dtype=F64)
    s = summarize(y, quantiles=LEVELS)
    assert s.mean.shape == (5, *state) and s.quantiles.shape == (len(LEVELS), 5, *state)
    assert s.t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the save indices without t
    assert_matches(s, numpy_reference(y.numpy(), LEVELS))


def test_dim_names_the_batch_dimension() -> None:
    y = torch.randn(7, 40, 2, dtype=F64)  # (T, batch, state)
    ref = summarize(y.movedim(1, 0))
    for dim in (1, -2):
        s = summarize(y, dim=dim)
        torch.testing.assert_close(s.mean, ref.mean, rtol=0, atol=0)
        torch.testing.assert_close(s.var, ref.var, rtol=0, atol=0)
        torch.testing.assert_close(s.quantiles, ref.quantiles, rtol=0, atol=0)


def test_float32_stays_float32() -> None:
    s = summarize(torch.randn(10, 4, 2))
    assert s.mean.dtype == s.var.dtype == s.quantiles.dtype == s.t.dtype == torch.float32


# --------------------------------------------------------------------------- NaN: failed samples


def test_nan_tails_are_excluded_per_time() -> None:
    y = torch.randn(6, 8, 2, dtype=F64)
    y[1, 3:] = NAN  # sample 1 failed between save times 2 and 3
    y[4, 5:] = NAN
    y[[0, 2, 3, 5], 7] = NAN  # the others reached t6 …
    y[[2, 3, 5], 6] = NAN  # … of which only sample 0 is left there (a raw tensor may)
    s = summarize(y, quantiles=LEVELS)
    assert s.n.tolist() == [6, 6, 6, 5, 5, 4, 1, 0]
    assert_matches(s, numpy_reference(y.numpy(), LEVELS))
    # one sample: a mean and quantiles, no variance; no sample: NaN throughout
    torch.testing.assert_close(s.mean[6], y[0, 6])
    assert torch.isnan(s.var[6]).all()
    torch.testing.assert_close(s.quantiles[:, 6], y[0, 6].expand(len(LEVELS), 2))
    assert torch.isnan(s.mean[7]).all() and torch.isnan(s.var[7]).all()
    assert torch.isnan(s.quantiles[:, 7]).all()
    assert "n=0..6" in repr(s)


def test_a_partly_nan_state_excludes_the_whole_sample() -> None:
    y = torch.randn(5, 3, 2, dtype=F64)
    y[2, 1, 0] = NAN  # its component 1 is finite, but sample 2 is absent at t1
    s = summarize(y)
    assert s.n.tolist() == [5, 4, 5]
    keep = torch.tensor([0, 1, 3, 4])
    torch.testing.assert_close(s.mean[1], y[keep, 1].mean(0))
    torch.testing.assert_close(s.var[1], y[keep, 1].var(0))


def test_a_failed_sample_contributes_the_times_it_reached() -> None:
    # y' = y² blows up at t = 1/y0: the sample with y0 = 2 fails at t = 0.5.
    y0 = torch.tensor([[0.5], [2.0], [0.3], [0.4]], dtype=F64)
    ts = torch.linspace(0.0, 1.0, 11, dtype=F64)
    prob = hq.ODEProblem(lambda t, y, p: y**2, y0, (0.0, 1.0))
    sol = hq.solve(prob, hq.Tsit5(), saveat=ts)
    codes = sol.retcode
    assert isinstance(codes, list)
    assert codes[1] is not hq.ReturnCode.Success
    assert all(c is hq.ReturnCode.Success for c in (codes[0], codes[2], codes[3]))
    reached = int((~torch.isnan(sol.y[1, :, 0])).sum())
    assert 1 <= reached <= 5  # t < 0.5
    s = summarize(sol, quantiles=LEVELS)
    assert s.n.tolist() == [4] * reached + [3] * (11 - reached)
    assert_matches(s, numpy_reference(sol.y.numpy(), LEVELS))
    assert torch.isfinite(s.mean).all() and torch.isfinite(s.var).all()


# --------------------------------------------------------------------------- analytic ensembles


def test_analytic_ensemble_within_four_standard_errors() -> None:
    """``y_i(t) = y0_i e^{−t}``, ``y0_i ~ N(1, 0.2²)``: mean ``e^{−t}``, variance
    ``0.04 e^{−2t}``, quantiles ``(1 + 0.2 z_p) e^{−t}``."""
    n, sigma = 20_000, 0.2
    gen = torch.Generator().manual_seed(1234)
    y0 = 1.0 + sigma * torch.randn(n, dtype=F64, generator=gen)
    ts = torch.linspace(0.0, 2.0, 11, dtype=F64)
    decay_t = torch.exp(-ts)
    s = summarize(y0[:, None, None] * decay_t[:, None], t=ts, quantiles=(0.05, 0.5, 0.95))
    assert s.n.tolist() == [n] * 11

    sd = sigma * decay_t  # the exact standard deviation at each time
    # standard errors: of the mean σ/√n, of the variance σ²√(2/(n−1)) (normal samples),
    # of the p-quantile √(p(1−p)) / (n^{1/2} f(q_p)) with f the normal density
    se_mean = sd / math.sqrt(n)
    se_var = sd**2 * math.sqrt(2 / (n - 1))
    assert ((s.mean[:, 0] - decay_t).abs() < 4 * se_mean).all()
    assert ((s.var[:, 0] - sd**2).abs() < 4 * se_var).all()
    for p in (0.05, 0.5, 0.95):
        z = NormalDist().inv_cdf(p)
        density = math.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * sd)
        se_q = math.sqrt(p * (1 - p) / n) / density
        exact = (1 + sigma * z) * decay_t
        assert ((s.quantile(p)[:, 0] - exact).abs() < 4 * se_q).all()


def test_batched_ode_solution_matches_the_closed_form_ensemble() -> None:
    y0 = 1.0 + 0.2 * torch.randn(64, 2, dtype=F64)
    ts = torch.linspace(0.0, 1.0, 11, dtype=F64)
    sol = decay_batch(y0, ts)
    assert sol.batched and sol.success and sol.t.shape == (11,)
    s = summarize(sol)
    exact = summarize(y0[:, None, :] * torch.exp(-ts)[:, None], t=ts)
    torch.testing.assert_close(s.t, ts, rtol=0, atol=0)
    assert s.n.tolist() == [64] * 11
    for a, b in ((s.mean, exact.mean), (s.var, exact.var), (s.quantiles, exact.quantiles)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- gradients


def test_gradient_flows_through_mean_and_var() -> None:
    """``y_i(t) = y0_i e^{−t}``: ``∂ mean_k/∂y0_i = e^{−t_k}/N`` and
    ``∂ var_k/∂y0_i = 2 (y_ik − mean_k) e^{−t_k}/(N − 1)``."""
    n = 50
    y0 = (1.0 + 0.2 * torch.randn(n, dtype=F64)).requires_grad_()
    ts = torch.linspace(0.0, 1.0, 6, dtype=F64)
    e = torch.exp(-ts)
    s = summarize(y0[:, None, None] * e[:, None], t=ts)
    (s.mean.sum() + s.var.sum()).backward()
    assert y0.grad is not None
    y = y0.detach()[:, None] * e
    expected = (e / n).sum() + (2 * (y - y.mean(0)) * e / (n - 1)).sum(1)
    torch.testing.assert_close(y0.grad, expected, rtol=1e-12, atol=1e-14)


def test_gradient_through_a_batched_solve() -> None:
    """Train-style: a loss on the ensemble moments of a solve reaches ``y0``."""
    n = 16
    y0 = (1.0 + 0.2 * torch.randn(n, 1, dtype=F64)).requires_grad_()
    ts = torch.linspace(0.0, 1.0, 6, dtype=F64)

    def loss(s: EnsembleSummary) -> torch.Tensor:
        return ((s.mean[:, 0] - 0.5) ** 2).sum() + ((s.var[:, 0] - 0.01) ** 2).sum()

    loss(summarize(decay_batch(y0, ts))).backward()
    assert y0.grad is not None
    # the same loss on the closed form y0 e^{−t}
    y0_exact = y0.detach().clone().requires_grad_()
    loss(summarize(y0_exact[:, None, :] * torch.exp(-ts)[:, None], t=ts)).backward()
    torch.testing.assert_close(y0.grad, y0_exact.grad, rtol=1e-7, atol=1e-10)


def test_gradcheck_with_absent_samples() -> None:
    mask = torch.ones(7, 4, 2, dtype=torch.bool)
    mask[2, 2:] = False
    mask[5, 3:] = False

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = summarize(torch.where(mask, x, NAN), quantiles=(0.1, 0.5, 0.8))
        return s.mean, s.var, s.quantiles

    x = torch.randn(7, 4, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(stats, (x,))


def test_nan_entries_get_a_zero_gradient() -> None:
    y = torch.randn(5, 4, 1, dtype=F64)
    y[3, 2:] = NAN
    y.requires_grad_()
    s = summarize(y)
    (s.mean.sum() + s.var.sum() + s.quantiles.sum()).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    assert (y.grad[3, 2:] == 0).all()


# --------------------------------------------------------------------------- bad input


def test_an_unbatched_solution_has_no_ensemble() -> None:
    ts = torch.linspace(0.0, 1.0, 5, dtype=F64)
    sol = decay_batch(torch.ones(2, dtype=F64), ts)
    with pytest.raises(
        ValueError, match="one trajectory has no ensemble statistics; solve a batch"
    ):
        summarize(sol)


def test_per_sample_save_times_are_refused() -> None:
    prob = hq.ODEProblem(decay, torch.ones(3, 2, dtype=F64), (0.0, 1.0))
    sol = hq.solve(prob, hq.Tsit5())  # no saveat: each sample saves its own steps
    assert sol.t.ndim == 2
    with pytest.raises(ValueError, match=r"pass a shared saveat of shape \(T,\)"):
        summarize(sol)


@pytest.mark.parametrize("level", [-0.1, 1.5, NAN])
def test_quantile_levels_outside_0_1(level: float) -> None:
    with pytest.raises(ValueError, match=r"quantile levels must lie in \[0, 1\]"):
        summarize(torch.randn(4, 3), quantiles=(0.5, level))


def test_quantiles_must_be_a_sequence() -> None:
    with pytest.raises(TypeError, match="quantiles must be a sequence of levels"):
        summarize(torch.randn(4, 3), quantiles=0.5)  # type: ignore[arg-type]


def test_fewer_than_two_trajectories() -> None:
    with pytest.raises(
        ValueError, match="a variance needs at least 2 trajectories; got a batch of 1"
    ):
        summarize(torch.randn(1, 5, 2))
    sol = decay_batch(torch.ones(1, 2, dtype=F64), torch.linspace(0.0, 1.0, 3, dtype=F64))
    with pytest.raises(ValueError, match="at least 2 trajectories"):
        summarize(sol)


def test_quantile_that_was_not_computed() -> None:
    s = summarize(torch.randn(4, 3), quantiles=(0.25, 0.75))
    with pytest.raises(
        ValueError, match=r"quantile level 0.9 was not computed \(available: 0.25, 0.75\)"
    ):
        s.quantile(0.9)
    assert summarize(torch.randn(4, 3), quantiles=()).quantiles.shape == (0, 3)


def test_bad_tensors_and_arguments() -> None:
    ts = torch.linspace(0.0, 1.0, 3, dtype=F64)
    sol = decay_batch(torch.ones(2, 1, dtype=F64), ts)
    with pytest.raises(ValueError, match="t is taken from the solution"):
        summarize(sol, t=ts)
    with pytest.raises(ValueError, match="a solution's batch dimension is always 0"):
        summarize(sol, dim=1)
    with pytest.raises(ValueError, match=r"t must have shape \(T,\) = \(3,\)"):
        summarize(torch.randn(4, 3), t=torch.zeros(4))
    with pytest.raises(TypeError, match=r"must be a floating-point tensor; got torch\.int64"):
        summarize(torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"must have shape \(batch, T, \*state\); got \(4,\)"):
        summarize(torch.randn(4))
    with pytest.raises(ValueError, match="dim=3 is out of range"):
        summarize(torch.randn(4, 3, 2), dim=3)
    with pytest.raises(TypeError, match=r"takes a hybrideq\.Solution or a tensor; got ndarray"):
        summarize(np.zeros((4, 3)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- plot_ensemble


@pytest.fixture
def plt() -> object:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.fixture
def ensemble() -> hq.Solution:
    y0 = 1.0 + 0.2 * torch.randn(40, 3, dtype=F64)
    return decay_batch(y0, torch.linspace(0.0, 1.0, 11, dtype=F64))


def test_plot_summary_mean_and_band(plt: object, ensemble: hq.Solution) -> None:
    s = summarize(ensemble)
    ax = plot_ensemble(s)
    assert len(ax.lines) == 3 and len(ax.collections) == 3  # a mean and a band each
    for c, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), s.t.numpy())
        np.testing.assert_array_equal(line.get_ydata(), s.mean[:, c].numpy())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y[0]", "y[1]", "y[2]"]
    assert ax.get_title() == "mean, 0.05–0.95 quantiles (n = 40)"
    assert ax.get_xlabel() == "t"


def test_plot_solution_with_paths_and_median(plt: object, ensemble: hq.Solution) -> None:
    _, given = plt.subplots()  # type: ignore[attr-defined]
    ax = plot_ensemble(
        ensemble,
        ax=given,
        components=[0, 2],
        band=(0.25, 0.75),
        show_median=True,
        n_paths=4,
        labels=["x", "z"],
    )
    assert ax is given
    # per component: 4 paths, a median and a mean; one band
    assert len(ax.lines) == 2 * (4 + 1 + 1) and len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "z"]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), ensemble.y[0, :, 0].numpy())
    s = summarize(ensemble)
    np.testing.assert_allclose(ax.lines[5].get_ydata(), s.mean[:, 0].numpy(), rtol=1e-15)
    np.testing.assert_allclose(ax.lines[4].get_ydata(), s.quantile(0.5)[:, 0].numpy(), rtol=1e-15)


def test_plot_without_band_or_mean(plt: object, ensemble: hq.Solution) -> None:
    ax = plot_ensemble(ensemble, band=None, show_mean=False, show_median=True)
    assert len(ax.lines) == 3 and len(ax.collections) == 0
    ax = plot_ensemble(ensemble, components=[1], show_mean=False)  # the band carries the label
    assert len(ax.collections) == 1 and len(ax.lines) == 0  # on a new figure
    assert ax.get_title() == "0.05–0.95 quantiles (n = 40)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y[1]"]


def test_plot_matrix_state_labels(plt: object) -> None:
    ax = plot_ensemble(summarize(torch.randn(20, 5, 2, 2)), components=[1, 2])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y[0, 1]", "y[1, 0]"]


def test_plot_failed_samples_count_in_title(plt: object) -> None:
    y = torch.randn(10, 5, 1)
    y[0, 3:] = NAN
    assert plot_ensemble(summarize(y)).get_title().endswith("(n = 9…10)")


def test_plot_bad_input(plt: object, ensemble: hq.Solution) -> None:
    s = summarize(ensemble, quantiles=(0.5,))
    with pytest.raises(ValueError, match="sample paths need the trajectories: pass the Solution"):
        plot_ensemble(s, band=None, n_paths=2)
    with pytest.raises(ValueError, match=r"quantile level 0\.05 was not computed"):
        plot_ensemble(s)
    with pytest.raises(
        ValueError, match=r"component 3 is out of range for a state of shape \(3,\)"
    ):
        plot_ensemble(ensemble, components=[0, 3])
    with pytest.raises(ValueError, match="labels has 1 entries for 3 components"):
        plot_ensemble(ensemble, labels=["a"])
    with pytest.raises(ValueError, match="band must be two quantile levels"):
        plot_ensemble(ensemble, band=(0.9, 0.1))
    with pytest.raises(ValueError, match="n_paths must be >= 0"):
        plot_ensemble(ensemble, n_paths=-1)
    one = decay_batch(torch.ones(2, dtype=F64), torch.linspace(0.0, 1.0, 3, dtype=F64))
    with pytest.raises(ValueError, match="one trajectory has no ensemble statistics"):
        plot_ensemble(one)
    with pytest.raises(TypeError, match="takes an EnsembleSummary or a batched Solution"):
        plot_ensemble(ensemble.y)  # type: ignore[arg-type]


def test_plot_without_matplotlib_says_how_to_install(
    ensemble: hq.Solution, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'hybrideq\[plot\]'"):
        plot_ensemble(ensemble)


def test_summary_of_an_sde_ensemble_matches_the_ornstein_uhlenbeck_law() -> None:
    # dX = θ(μ − X) dt + σ dW, X0 = 1: mean μ + (1 − μ)e^{−θt}, variance σ²(1 − e^{−2θt})/(2θ).
    theta, mu, sigma, n = 2.0, 0.5, 0.4, 4000
    prob = hq.SDEProblem(
        lambda t, y, p: theta * (mu - y),
        lambda t, y, p: sigma * torch.ones_like(y),
        torch.ones(n, 1, dtype=torch.float64),
        (0.0, 1.0),
        noise="additive",
    )
    ts = torch.linspace(0, 1, 5, dtype=torch.float64)
    sol = hq.solve(prob, hq.SOSRA(), seed=0, saveat=ts, stepping="joint")
    s = hq.ensemble.summarize(sol)
    mean = mu + (1 - mu) * torch.exp(-theta * ts)
    var = sigma**2 * (1 - torch.exp(-2 * theta * ts)) / (2 * theta)
    se_mean = (var / n).sqrt().clamp_min(1e-12)
    assert bool(((s.mean[:, 0] - mean).abs() <= 4 * se_mean + 1e-12).all())
    se_var = var * (2 / (n - 1)) ** 0.5
    assert bool(((s.var[:, 0] - var).abs() <= 4 * se_var + 1e-12).all())
