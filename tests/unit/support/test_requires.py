"""tests/support/requires.py: a missing component skips locally and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import requires
from tests.support.servers import REPO

ABSENT = "strongroom-no-such-tool-7f3a"


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_ci_is_recognised(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert requires.in_ci()


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_not_ci(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not requires.in_ci()


def test_missing_binary_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{ABSENT} is not installed"):
        requires.binary(ABSENT, "some hint")


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true requires {ABSENT}"):
        requires.binary(ABSENT)


def test_missing_module_skips_locally_and_fails_under_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        requires.module("strongroom_no_such_module")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        requires.module("strongroom_no_such_module")


def test_present_components_are_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert requires.module("json").__name__ == "json"
    assert os.access(requires.binary("sh"), os.X_OK)


def test_a_venv_tool_is_found_without_the_venv_on_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/test.sh once ran .venv/bin/python without .venv/bin on PATH: `bao` was not
    found and 120 differential tests skipped. The interpreter's own bin directory counts."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", "/nonexistent")
    found = requires.binary("python3")
    assert Path(found).parent == Path(sys.executable).parent


def test_under_ci_a_missing_component_fails_the_pytest_run(tmp_path: Path) -> None:
    """End to end: the same test file skips (exit 0) locally and fails (exit 1) under CI."""
    test_file = tmp_path / "test_needs_tool.py"
    test_file.write_text(
        "from tests.support import requires\n\n"
        f"def test_tool() -> None:\n    requires.binary({ABSENT!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + str(REPO / "server")
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-q", "--rootdir", str(tmp_path), str(test_file)]
    local = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, check=False)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = subprocess.run(args, env={**env, "CI": "true"}, cwd=tmp_path, capture_output=True,
                        text=True, timeout=120, check=False)
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout
    assert f"CI=true requires {ABSENT} is not installed" in ci.stdout
