"""Shared pytest setup: seeded torch, two threads, and skips for Julia and GPU tests.

The markers themselves (slow, julia, gpu, distributed) are declared in pyproject.toml.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator

import pytest
import torch

JULIA_SKIP_REASON = (
    "needs a Julia environment (juliacall + the HybridEqEngine project): run "
    "`hybrideq julia install`; CI job .github/workflows/julia.yml runs these"
)
GPU_SKIP_REASON = "needs a CUDA device"


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    """Run every test with two torch threads (the CI machines have two cores)."""
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_torch() -> Iterator[None]:
    """Seed torch's global generator before each test, so random inputs repeat."""
    torch.manual_seed(0)
    yield


def _julia_unavailable() -> str | None:
    """Return why Julia tests cannot run, or ``None`` when juliacall imports.

    juliacall is looked up first, then a Julia executable (without downloading one), and
    juliacall is imported only when both are there: importing it starts Julia, and without
    an installed Julia it would try to download one.
    """
    if importlib.util.find_spec("juliacall") is None:
        return JULIA_SKIP_REASON
    from hybrideq.engines.julia import apply_env_defaults, find_julia

    if find_julia() is None:
        return f"{JULIA_SKIP_REASON} (juliacall is installed, but no Julia executable was found)"
    apply_env_defaults()
    try:
        importlib.import_module("juliacall")
    except Exception as exc:
        return f"{JULIA_SKIP_REASON} (import juliacall failed: {type(exc).__name__}: {exc})"
    return None


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` have deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `julia` tests without a Julia environment and `gpu` tests without CUDA."""
    julia_items = [item for item in items if item.get_closest_marker("julia") is not None]
    if julia_items:  # look for Julia only when a selected test needs it
        reason = _julia_unavailable()
        if reason is not None:
            for item in julia_items:
                item.add_marker(pytest.mark.skip(reason=reason))

    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items and not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=GPU_SKIP_REASON))
