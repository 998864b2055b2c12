"""The `hybrideq demo` training script: it runs, writes its figure, and the loss goes down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from hybrideq import demo


def test_main_runs_writes_figure_and_lowers_the_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / "d.png"
    assert demo.main(["--steps", "20", "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 0
    printed = capsys.readouterr().out
    match = re.search(r"before ([0-9.]+)\s+after ([0-9.]+)", printed)
    assert match is not None, printed
    before, after = float(match.group(1)), float(match.group(2))
    assert after < before
    assert "evaluation from y0" in printed and "Success" in printed


def test_main_no_plot_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    assert demo.main(["--steps", "2", "--no-plot", "--out", str(out)]) == 0
    assert not out.exists()


def test_main_restores_thread_count() -> None:
    threads = torch.get_num_threads()
    demo.main(["--steps", "0", "--no-plot", "--threads", "1"])
    assert torch.get_num_threads() == threads


def test_train_lowers_the_loss() -> None:
    data = demo.make_data()
    torch.manual_seed(0)
    model = demo.make_model()
    before = demo.window_loss(model, data)
    result = demo.train(40, batch_size=32, seed=0, data=data, model=model, progress=False)
    after = demo.window_loss(result.model, data)
    assert len(result.losses) == len(result.nfe) == 40
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert after < 0.9 * before
    first, last = result.losses[:10], result.losses[-10:]
    assert sum(last) < sum(first)
    # Every window of a minibatch is its own sample: it takes its own number of steps.
    assert all(lo <= hi for lo, hi in zip(result.steps_min, result.steps_max, strict=True))


def test_get_batch_shapes() -> None:
    data = demo.make_data(n_points=50, t_end=1.0)
    y0, t, y = demo.get_batch(data, 7, 5, torch.Generator().manual_seed(0))
    assert y0.shape == (7, 2) and t.shape == (5,) and y.shape == (7, 5, 2)
    assert torch.equal(y[:, 0], y0)
    assert float(t[0]) == 0.0


def test_evaluate_reports_the_fit() -> None:
    data = demo.make_data(n_points=100, t_end=2.0)
    torch.manual_seed(0)
    ev = demo.evaluate(demo.make_model(), data)
    assert ev.y.shape == data.y.shape
    assert ev.retcode.successful and ev.nfe > 0 and ev.mae >= 0.0
