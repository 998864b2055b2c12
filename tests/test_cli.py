"""The `hybrideq` command: version, doctor, usage errors and help (not `demo`: it trains)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybrideq import cli
from hybrideq._version import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_versions_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    assert cli.main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"hybrideq {__version__}"
    assert f"torch {torch.__version__}" in out
    assert "juliacall:" in out
    assert "device:" in out
    assert ("CUDA available" in out) == torch.cuda.is_available()


def test_python_dash_m_hybrideq_version() -> None:
    env = dict(os.environ)
    # Works whether or not the package is installed: put src/ first on the path.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    result = subprocess.run(
        [sys.executable, "-m", "hybrideq", "version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"hybrideq {__version__}" in result.stdout


def test_top_level_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hybrideq {__version__}"


def test_doctor_reports_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for dist in cli.CORE_REQUIREMENTS:
        assert re.search(rf"^\s+{dist}\s+\S+\s+ok$", out, flags=re.MULTILINE), dist
    for extra in cli.EXTRAS:
        assert re.search(rf"^\s+{extra}\s+\S", out, flags=re.MULTILINE), extra
    assert "Julia engine:" in out
    assert "no problems found" in out


def test_doctor_says_how_to_install_julia(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = cli.importlib.util.find_spec

    def no_juliacall(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "juliacall" else real_find_spec(name)

    monkeypatch.setattr(cli.importlib.util, "find_spec", no_juliacall)
    assert cli.main(["doctor"]) == 0
    assert cli.JULIA_NOT_INSTALLED in capsys.readouterr().out
    assert "hybrideq julia install" in cli.JULIA_NOT_INSTALLED


def test_doctor_fails_on_a_missing_requirement(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(cli.CORE_REQUIREMENTS, "no-such-distribution-hq", "1.0")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "no-such-distribution-hq is not installed" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "usage: hybrideq" in err
    assert "invalid choice: 'frobnicate'" in err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: hybrideq" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("version", "doctor", "demo"):
        assert re.search(rf"^\s+{command}\s", out, flags=re.MULTILINE), command


@pytest.mark.parametrize(
    ("installed", "minimum", "ok"),
    [
        ("2.13.0+cpu", "2.2", True),
        ("2.2", "2.2.0", True),
        ("1.9.3", "1.10", False),
        ("1.10.0rc1", "1.10", True),
        ("2024.1.0", "2024.1", True),
    ],
)
def test_version_comparison(installed: str, minimum: str, ok: bool) -> None:
    assert cli._at_least(installed, minimum) is ok


def test_requirement_tables_match_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def name_and_minimum(requirement: str) -> tuple[str, str | None]:
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(?:>=\s*([0-9][^,;\s]*))?", requirement)
        assert match is not None, requirement
        return match.group(1).lower(), match.group(3)

    core = dict(name_and_minimum(r) for r in project["dependencies"])
    assert core == cli.CORE_REQUIREMENTS

    extras = project["optional-dependencies"]
    assert set(extras) - {"dev"} == set(cli.EXTRAS)
    for extra, requirements in extras.items():
        if extra == "dev":
            continue
        names = {name_and_minimum(r)[0] for r in requirements}
        assert names <= set(cli.EXTRAS[extra]), extra
