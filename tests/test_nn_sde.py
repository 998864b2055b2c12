"""Controlled paths (cubic spline, Hermite) and the (stable) neural SDE models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicSpline

import hybrideq as hq
from hybrideq.nn import (
    ControlledNeuralSDE,
    CubicSplinePath,
    GeometricSDE,
    HermitePath,
    LangevinSDE,
    LinearNoiseSDE,
)

F64 = torch.float64
PATHS = [CubicSplinePath, HermitePath]


def _irregular(batch: int = 3, T: int = 9, channels: int = 2, missing: float = 0.35):
    """Irregular times, random data and a mask with at least two observations per series."""
    g = torch.Generator().manual_seed(1)
    t = torch.cumsum(0.05 + torch.rand(T, generator=g, dtype=F64), 0)
    x = torch.randn(batch, T, channels, generator=g, dtype=F64)
    mask = torch.rand(batch, T, channels, generator=g) > missing
    mask[:, 0] = True
    mask[:, -1] = True
    return t, x, mask


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize("cls", PATHS)
def test_paths_reproduce_linear_functions(cls: type) -> None:
    """Both interpolants are exact on linear data, with missing entries, between knots too."""
    t, _, mask = _irregular()
    slope = torch.tensor([2.0, -0.5], dtype=F64)
    x = 1.0 + t[None, :, None] * slope  # (1, T, 2)
    x = x.expand(3, -1, -1).clone()
    x[~mask] = float("nan")
    path = cls(t, x)
    for tq in torch.linspace(float(t[0]), float(t[-1]), 37, dtype=F64):
        torch.testing.assert_close(path.evaluate(tq), (1.0 + tq * slope).expand(3, 2))
        torch.testing.assert_close(path.derivative(tq), slope.expand(3, 2))


@pytest.mark.parametrize("cls", PATHS)
def test_paths_interpolate_the_observed_knots(cls: type) -> None:
    t, x, mask = _irregular()
    path = cls(t, x, mask)
    for i in range(len(t)):
        value = path.evaluate(t[i])
        torch.testing.assert_close(value[mask[:, i]], x[:, i][mask[:, i]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("per_sample", [False, True])
def test_cubic_spline_matches_scipy_natural_spline(per_sample: bool) -> None:
    """Per channel over its observed points: values, slopes and curvatures to 1e-10."""
    t, x, mask = _irregular(batch=4, T=12, channels=3)
    if per_sample:
        t = t[None] * torch.tensor([[1.0], [0.5], [2.0], [1.5]], dtype=F64)
    x_nan = torch.where(mask, x, float("nan"))
    path = CubicSplinePath(t, x_nan)
    tb = t if per_sample else t.expand(4, -1)
    for b in range(4):
        queries = torch.linspace(float(tb[b, 0]), float(tb[b, -1]), 51, dtype=F64)
        for k in range(3):
            m = mask[b, :, k].numpy()
            ref = CubicSpline(tb[b].numpy()[m], x[b, :, k].numpy()[m], bc_type="natural")
            for tq in queries:
                tq_b = torch.full((4,), float(tq), dtype=F64)
                tq_b[b] = tq
                got = float(path.evaluate(tq_b)[b, k])
                slope = float(path.derivative(tq_b)[b, k])
                assert abs(got - ref(float(tq))) < 1e-10
                assert abs(slope - ref(float(tq), 1)) < 1e-10


def test_batched_fit_equals_per_sample_fits() -> None:
    """The vectorised fit gives each sample what it would get alone."""
    t, x, mask = _irregular(batch=5, T=10, channels=2)
    path = CubicSplinePath(t, x, mask, append_time=True, append_mask=True)
    tq = torch.linspace(float(t[0]), float(t[-1]), 5, dtype=F64)[[3]].expand(5)
    together = path.evaluate(tq)
    for b in range(5):
        alone = CubicSplinePath(
            t, x[b : b + 1], mask[b : b + 1], append_time=True, append_mask=True
        )
        torch.testing.assert_close(together[b], alone.evaluate(tq[:1])[0], rtol=0, atol=1e-13)


def test_sparse_channels_constant_and_zero() -> None:
    """One observation: constant; none: zero; the mask channels tell them apart."""
    t = torch.linspace(0.0, 1.0, 6, dtype=F64)
    x = torch.randn(1, 6, 3, dtype=F64)
    mask = torch.ones(1, 6, 3, dtype=torch.bool)
    mask[0, :, 1] = False
    mask[0, 2, 1] = True  # channel 1: one observation
    mask[0, :, 2] = False  # channel 2: none
    for cls in PATHS:
        path = cls(t, x, mask, append_mask=True)
        assert path.channels == 6
        for tq in (0.0, 0.3, 1.0):
            v = path.evaluate(tq)[0]
            assert float(v[1]) == float(x[0, 2, 1])
            assert float(v[2]) == 0.0
            assert float(path.derivative(tq)[0, 1]) == 0.0
        # Cumulative observation fractions at the last time: 6/6, 1/6, 0.
        torch.testing.assert_close(
            path.evaluate(1.0)[0, 3:], torch.tensor([1.0, 1 / 6, 0.0], dtype=F64)
        )


@pytest.mark.parametrize("cls", PATHS)
def test_paths_hold_the_end_values_outside_the_observations(cls: type) -> None:
    t = torch.linspace(0.0, 1.0, 6, dtype=F64)
    x = torch.randn(1, 6, 1, dtype=F64)
    x[0, 0] = float("nan")  # first observation at t = 0.2
    x[0, -1] = float("nan")  # last at t = 0.8
    path = cls(t, x)
    torch.testing.assert_close(path.evaluate(0.1)[0, 0], x[0, 1, 0])
    torch.testing.assert_close(path.evaluate(0.95)[0, 0], x[0, 4, 0])
    assert float(path.derivative(0.1)[0, 0]) == 0.0
    assert float(path.derivative(0.95)[0, 0]) == 0.0


def test_append_time_is_channel_zero() -> None:
    t, x, mask = _irregular()
    path = HermitePath(t, x, mask, append_time=True)
    assert path.channels == 3
    for tq in (float(t[0]), 1.2345, float(t[-1])):
        torch.testing.assert_close(path.evaluate(tq)[:, 0], torch.full((3,), tq, dtype=F64))


def test_hermite_path_is_causal_and_c1() -> None:
    """Later observations leave the path before them unchanged; slopes match at the knots."""
    t, x, _ = _irregular(batch=1, T=8, channels=1)
    path = HermitePath(t, x)
    changed = x.clone()
    changed[0, 5:] += 10.0
    later = HermitePath(t, changed)
    for tq in torch.linspace(float(t[0]), float(t[4]), 20, dtype=F64):
        torch.testing.assert_close(path.evaluate(tq), later.evaluate(tq), rtol=0, atol=0)
    spline = CubicSplinePath(t, x)
    assert not torch.equal(spline.evaluate(t[3]), CubicSplinePath(t, changed).evaluate(t[3] + 0.01))
    eps = 1e-7
    for i in range(1, 7):
        left = path.derivative(t[i] - eps)
        right = path.derivative(t[i] + eps)
        backward = (x[0, i] - x[0, i - 1]) / (t[i] - t[i - 1])
        torch.testing.assert_close(left[0], backward, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(right[0], backward, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", PATHS)
def test_derivative_is_the_time_derivative_of_evaluate(cls: type) -> None:
    t, x, mask = _irregular()
    path = cls(t, x, mask)
    tq = torch.tensor([0.9, 1.7, 2.6], dtype=F64, requires_grad=True)
    (dx,) = torch.autograd.grad(path.evaluate(tq)[:, 1].sum(), tq)
    torch.testing.assert_close(dx, path.derivative(tq.detach())[:, 1])


@pytest.mark.parametrize("cls", PATHS)
def test_paths_gradcheck_wrt_observations(cls: type) -> None:
    t = torch.tensor([0.0, 0.3, 0.7, 1.2, 1.5], dtype=F64)
    mask = torch.tensor([[[True], [False], [True], [True], [True]]])
    x = torch.randn(1, 5, 1, dtype=F64, requires_grad=True)
    tq = torch.tensor([0.5], dtype=F64)

    def fn(xx: torch.Tensor) -> torch.Tensor:
        path = cls(t, xx, mask, append_mask=True)
        return torch.cat([path.evaluate(tq), path.derivative(tq), path.evaluate(1.4)], dim=-1)

    assert torch.autograd.gradcheck(fn, (x,))


def test_missing_entries_get_zero_gradient() -> None:
    t = torch.linspace(0, 1, 5, dtype=F64)
    x = torch.randn(1, 5, 1, dtype=F64)
    x[0, 2] = float("nan")
    x.requires_grad_(True)
    CubicSplinePath(t, x).evaluate(0.45).sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    assert float(x.grad[0, 2, 0]) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": torch.zeros(5, 2)}, ValueError, r"x must have shape \(batch, T, channels\)"),
        ({"t": torch.linspace(0, 1, 4)}, ValueError, r"t has 4 times but x has T = 5"),
        ({"t": torch.zeros(3, 5)}, ValueError, r"t must have shape \(T,\)"),
        ({"t": torch.tensor([0.0, 0.2, 0.2, 0.5, 1.0])}, ValueError, "t must be strictly"),
        ({"t": torch.tensor([0.0, 0.2, float("nan"), 0.5, 1.0])}, ValueError, "t contains NaN"),
        ({"mask": torch.ones(2, 5, 3, dtype=torch.bool)}, ValueError, "mask must have the shape"),
        ({"mask": torch.ones(2, 5, 2)}, TypeError, "mask must be a boolean"),
        ({"x": torch.zeros(2, 5, 2, dtype=torch.long)}, TypeError, "x must be a floating"),
        ({"x": torch.zeros(2, 1, 2)}, ValueError, "at least two observation times"),
        ({"x": torch.full((2, 5, 2), float("inf"))}, ValueError, "Inf at observed"),
    ],
)
def test_path_errors_name_the_argument(kwargs: dict, error: type, match: str) -> None:
    args = {"t": torch.linspace(0, 1, 5), "x": torch.zeros(2, 5, 2), "mask": None}
    if "x" in kwargs and kwargs["x"].shape[1] != 5:
        args["t"] = torch.linspace(0, 1, kwargs["x"].shape[1])
    args.update(kwargs)
    for cls in PATHS:
        with pytest.raises(error, match=match):
            cls(args["t"], args["x"], args["mask"])


def test_path_evaluate_rejects_wrong_time_shape() -> None:
    path = CubicSplinePath(torch.linspace(0, 1, 5), torch.zeros(2, 5, 1))
    with pytest.raises(ValueError, match=r"t must be a scalar or a tensor of shape \(batch,\)"):
        path.evaluate(torch.zeros(3))


# --------------------------------------------------------------------------- NeuralSDE


class _Drift(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 2)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class _Diffusion(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.scale * y


def test_neural_sde_shapes_seeds_and_brownian_reuse() -> None:
    model = hq.nn.NeuralSDE(_Drift(), _Diffusion()).double()
    y0 = torch.randn(6, 2, dtype=F64)
    t = torch.linspace(0, 1, 4, dtype=F64)
    a = model(y0, t, seed=3)
    assert a.y.shape == (6, 4, 2)
    torch.testing.assert_close(a.y[:, 0], y0)
    torch.testing.assert_close(model(y0, t, seed=3).y, a.y, rtol=0, atol=0)
    torch.testing.assert_close(model(y0, t, brownian=a.sol.W).y, a.y, rtol=0, atol=0)
    assert not torch.equal(model(y0, t, seed=4).y, a.y)
    torch.manual_seed(7)
    b = model(y0, t)
    torch.manual_seed(7)
    torch.testing.assert_close(model(y0, t).y, b.y, rtol=0, atol=0)  # torch's seed repeats


def test_neural_sde_takes_the_solver_interpretation_and_trains() -> None:
    model = hq.nn.NeuralSDE(_Drift(), _Diffusion(), solver=hq.EulerHeun(), dt=0.05).double()
    y0 = torch.randn(4, 2, dtype=F64)
    out = model(y0, torch.linspace(0, 1, 3, dtype=F64), seed=0)
    assert out.sol.y.shape == (4, 3, 2)
    out.y[:, -1].pow(2).sum().backward()
    assert model.diffusion.scale.grad is not None and float(model.diffusion.scale.grad) != 0.0


def test_neural_sde_errors() -> None:
    with pytest.raises(TypeError, match=r"drift must be an nn\.Module"):
        hq.nn.NeuralSDE(lambda t, y: y, _Diffusion())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise must be one of"):
        hq.nn.NeuralSDE(_Drift(), _Diffusion(), noise="multiplicative")
    with pytest.raises(ValueError, match="dt must be positive"):
        hq.nn.NeuralSDE(_Drift(), _Diffusion(), dt=0.0)
    model = hq.nn.NeuralSDE(_Drift(), _Diffusion())
    with pytest.raises(ValueError, match="pass either seed"):
        model(torch.zeros(1, 2), torch.linspace(0, 1, 3), seed=1, brownian=object())


# --------------------------------------------------------------------------- stable fields

FIELDS = [LangevinSDE, LinearNoiseSDE, GeometricSDE, ControlledNeuralSDE]


@pytest.mark.parametrize("cls", FIELDS)
@pytest.mark.parametrize("stabilizers", [False, True])
def test_field_shapes_and_noise_types(cls: type, stabilizers: bool) -> None:
    field = cls(3, 4, 6, 2, stabilizers=stabilizers).double()
    z, x = torch.randn(5, 4, dtype=F64), torch.randn(5, 3, dtype=F64)
    t = torch.rand(5, dtype=F64)
    assert field.drift(t, z, x).shape == (5, 4)
    assert field.diffusion(t, z).shape == (5, 4)
    assert field.initial(x).shape == (5, 4)
    assert field.noise == ("additive" if cls is LangevinSDE else "diagonal")
    if stabilizers:  # the benchmark's tanh clipping
        with torch.no_grad():
            assert float(field.drift(t, 100 * z, 100 * x).abs().max()) <= 1.0
            assert float(field.diffusion(t, 100 * z).abs().max()) <= 1.0


@pytest.mark.parametrize("stabilizers", [False, True])
def test_langevin_drift_has_no_explicit_time(stabilizers: bool) -> None:
    """LSDE: ∂γ/∂t = 0 at fixed (z, X); LNSDE's drift does depend on t."""
    z, x = torch.randn(5, 4, dtype=F64), torch.randn(5, 3, dtype=F64)
    t = torch.rand(5, dtype=F64, requires_grad=True)
    lsde = LangevinSDE(3, 4, stabilizers=stabilizers).double()
    (grad,) = torch.autograd.grad(lsde.drift(t, z, x).sum(), t, allow_unused=True)
    assert grad is None or bool((grad == 0).all())
    lnsde = LinearNoiseSDE(3, 4, stabilizers=stabilizers).double()
    (grad,) = torch.autograd.grad(lnsde.drift(t, z, x).sum(), t)
    assert float(grad.abs().max()) > 0
    # The LSDE noise is additive: σ(t) whatever z.
    torch.testing.assert_close(lsde.diffusion(t, z), lsde.diffusion(t, 3 * z))


@pytest.mark.parametrize("cls", [LinearNoiseSDE, GeometricSDE])
@pytest.mark.parametrize("stabilizers", [False, True])
def test_multiplicative_noise_vanishes_at_zero(cls: type, stabilizers: bool) -> None:
    """LNSDE and GSDE: g(t, z) = σ(t)·z, so g(t, 0) = 0 and g is linear in z (pure form)."""
    field = cls(3, 4, stabilizers=stabilizers).double()
    t = torch.rand(5, dtype=F64)
    assert bool((field.diffusion(t, torch.zeros(5, 4, dtype=F64)) == 0).all())
    if not stabilizers:
        z = torch.randn(5, 4, dtype=F64)
        torch.testing.assert_close(field.diffusion(t, 2 * z), 2 * field.diffusion(t, z))
        if cls is GeometricSDE:  # the drift is γ·z too
            x = torch.randn(5, 3, dtype=F64)
            assert bool((field.drift(t, torch.zeros(5, 4, dtype=F64), x) == 0).all())


def _data(batch: int = 64, T: int = 25, missing: float = 0.3, seed: int = 0):
    """Two classes of noisy trends (up or down) with entries dropped."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, T)
    labels = torch.arange(batch) % 2
    sign = (2 * labels - 1).float()[:, None]
    x = (sign * t + 0.2 * torch.randn(batch, T, generator=g))[..., None]
    x[torch.rand(x.shape, generator=g) < missing] = float("nan")
    return t, x, labels


def test_gsde_latent_stays_positive() -> None:
    """Pure GSDE under Euler–Maruyama, and in log space even with a large noise."""
    t, x, _ = _data(batch=32)
    model = hq.nn.SDEClassifier("gsde", 1, 8, 2)
    path = model.path(t, x)
    prob = model.field.problem(path)
    sol = hq.solve(prob, hq.EM(), dt=0.01, seed=0, saveat=torch.linspace(0, 1, 11))
    assert bool((sol.y > 0).all())

    loud = GeometricSDE(path.channels, 8, log_space=True)
    with torch.no_grad():
        loud.g_net[-1].bias.fill_(6.0)  # σ ≈ 6: EM on z itself would step below zero
    prob = loud.problem(path)
    assert prob.noise == "additive"
    sol = hq.solve(prob, hq.EM(), dt=0.05, seed=0, saveat=torch.linspace(0, 1, 11))
    z = loud.from_state(sol.y)
    assert bool((z > 0).all()) and bool(torch.isfinite(z).all())
    direct = GeometricSDE(path.channels, 8)
    direct.load_state_dict(loud.state_dict())
    sol = hq.solve(direct.problem(path), hq.EM(), dt=0.05, seed=0, saveat=torch.linspace(0, 1, 11))
    assert bool((sol.y < 0).any())  # what log_space avoids


@pytest.mark.parametrize(
    ("solver", "log_solver"),
    [(hq.Milstein(), hq.EM()), (hq.EulerHeun(), hq.EulerHeun())],
    ids=["ito", "stratonovich"],
)
def test_gsde_log_space_matches_the_direct_form(
    solver: hq.AbstractSolver, log_solver: hq.AbstractSolver
) -> None:
    """On the same Brownian path, log z and z converge to the same solution (Itô: with the
    −σ²/2 correction; Stratonovich: without). Both solves have strong order 1 here."""
    t, x, _ = _data(batch=4)
    t, x = t.double(), x.double()
    direct = GeometricSDE(3, 4, gamma_bound=2.0).double()
    logged = GeometricSDE(3, 4, gamma_bound=2.0, log_space=True).double()
    logged.load_state_dict(direct.state_dict())
    with torch.no_grad():
        direct.g_net[-1].bias.fill_(0.8)  # a noise large enough for the correction to matter
        logged.g_net[-1].bias.fill_(0.8)
    path = CubicSplinePath(t, x, append_time=True, append_mask=True)
    kind = str(solver.interpretation)
    a = hq.solve(direct.problem(path, interpretation=kind), solver, dt=1e-3, seed=5, saveat=t[[-1]])
    b = hq.solve(
        logged.problem(path, interpretation=kind), log_solver, dt=1e-3, seed=5, saveat=t[[-1]]
    )
    # Without the correction the Itô solutions would differ by a factor exp(σ²T/2) ≈ 1.4.
    torch.testing.assert_close(logged.from_state(b.y), a.y, rtol=5e-3, atol=0)


def test_gsde_gamma_bound_bounds_the_growth_rate() -> None:
    field = GeometricSDE(3, 4, gamma_bound=0.5).double()
    z, x = torch.rand(64, 4, dtype=F64) + 0.1, 100 * torch.randn(64, 3, dtype=F64)
    with torch.no_grad():
        rate = field.drift(0.3, z, x) / z
    assert float(rate.abs().max()) <= 0.5
    model = hq.nn.SDEClassifier("gsde", 1, 4, 2, field_kwargs={"gamma_bound": 0.5})
    assert model.field.gamma_bound == 0.5


@pytest.mark.parametrize("kind", ["lsde", "lnsde", "gsde", "sde", "ode"])
def test_classifiers_learn_a_toy_task(kind: str) -> None:
    torch.manual_seed(0)
    t, x, labels = _data()
    if kind == "ode":
        model: torch.nn.Module = hq.nn.ODEClassifier(1, 8, 2)
    else:
        model = hq.nn.SDEClassifier(kind, 1, 8, 2, dt=0.04)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for step in range(15):
        kwargs = {} if kind == "ode" else {"seed": step}
        loss = torch.nn.functional.cross_entropy(model(t, x, **kwargs).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_classifier_options_and_per_sample_times() -> None:
    t, x, _ = _data(batch=6, T=10)
    tt = t[None] * torch.linspace(1.0, 2.0, 6)[:, None]  # per-sample grids
    model = hq.nn.SDEClassifier("lnsde", 1, 4, 3, interpolation="hermite", stabilizers=True)
    out = model(tt, x, seed=0)
    assert out.logits.shape == (6, 3) and out.z.shape == (6, 4)
    mask = ~torch.isnan(x[..., 0])
    assert model(t, torch.nan_to_num(x), mask, seed=0).logits.shape == (6, 3)
    field = LangevinSDE(2 * 1 + 1, 4)
    assert hq.nn.SDEClassifier(field, 1, 4, 2).field is field
    ode = hq.nn.ODEClassifier(1, 4, 2, append_time=False, append_mask=False)
    assert ode.field.input_channels == 1
    assert ode(tt, x).logits.shape == (6, 2)


def test_classifier_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="field must be one of"):
        hq.nn.SDEClassifier("csde", 1, 4, 2)
    with pytest.raises(TypeError, match="field must be 'lsde'"):
        hq.nn.SDEClassifier(torch.nn.Linear(1, 1), 1, 4, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the field has input_channels = 1 but the path has 3"):
        hq.nn.SDEClassifier(LangevinSDE(1, 4), 1, 4, 2)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        hq.nn.SDEClassifier("lsde", 1, 4, 2, interpolation="linear")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        hq.nn.SDEClassifier("lsde", 1, 4, 0)
    with pytest.raises(ValueError, match="log_space=True needs stabilizers=False"):
        GeometricSDE(1, 4, stabilizers=True, log_space=True)
    with pytest.raises(ValueError, match="gamma_bound needs stabilizers=False"):
        GeometricSDE(1, 4, stabilizers=True, gamma_bound=1.0)
    with pytest.raises(ValueError, match="gamma_bound must be positive"):
        GeometricSDE(1, 4, gamma_bound=0.0)
    with pytest.raises(ValueError, match="field_kwargs apply to a field named by a string"):
        hq.nn.SDEClassifier(GeometricSDE(3, 4), 1, 4, 2, field_kwargs={"log_space": True})
    with pytest.raises(ValueError, match="hidden_channels must be a positive integer"):
        LangevinSDE(1, 0)
    model = hq.nn.SDEClassifier("lsde", 2, 4, 2)
    with pytest.raises(ValueError, match="x has 1 channels but the model was built with"):
        model(torch.linspace(0, 1, 5), torch.zeros(3, 5, 1))
    path = CubicSplinePath(torch.linspace(0, 1, 5), torch.zeros(3, 5, 1))
    with pytest.raises(ValueError, match=r"input_channels=path\.channels"):
        LangevinSDE(2, 4).problem(path)


def test_float64_classifier_is_deterministic_under_a_seed() -> None:
    t, x, _ = _data(batch=4, T=8)
    model = hq.nn.SDEClassifier("gsde", 1, 4, 2).double()
    a = model(t.double(), x.double(), seed=11).logits
    b = model(t.double(), x.double(), seed=11).logits
    assert a.dtype == F64
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert np.isfinite(a.detach().numpy()).all()


def _gradients(kind: str, **kwargs: object) -> torch.Tensor:
    t, x, labels = _data(batch=8, T=11)
    torch.manual_seed(0)
    model = hq.nn.SDEClassifier(kind, 1, 4, 2, **kwargs).double()  # type: ignore[arg-type]
    loss = torch.nn.functional.cross_entropy(model(t.double(), x.double(), seed=3).logits, labels)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("kind", ["lsde", "gsde"])
def test_backsolve_adjoint_matches_direct_backprop(kind: str) -> None:
    """The stochastic adjoint on the same Brownian path gives the discrete gradient to O(dt)
    (measured: 1e-4 relative for LSDE, 2e-3 for GSDE at dt = 1e-3)."""
    direct = _gradients(kind, dt=1e-3)
    adjoint = _gradients(kind, dt=1e-3, sensealg=hq.BacksolveAdjoint())
    torch.testing.assert_close(adjoint, direct, rtol=0, atol=1e-2 * float(direct.abs().max()))


def test_reversible_adjoint_equals_direct_backprop() -> None:
    """Reversible Heun (Stratonovich) with its exact O(1)-memory adjoint, through the model."""
    solver = hq.ReversibleHeun()
    direct = _gradients("lnsde", solver=solver, dt=0.05)
    exact = _gradients("lnsde", solver=solver, dt=0.05, sensealg=hq.ReversibleAdjoint())
    torch.testing.assert_close(exact, direct, rtol=1e-9, atol=1e-12)
