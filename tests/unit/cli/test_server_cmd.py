"""`strongroom server -config=...`: repeated -config, files and directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strongroom.cli import server_cmd
from strongroom.config import ServerConfig

STORAGE = 'storage "file" { path = "/data" }\n'
LISTENER = 'listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n'


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Capture the configuration instead of starting gunicorn."""
    configs: list[ServerConfig] = []

    def fake_serve(config: ServerConfig, **_kwargs: Any) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(server_cmd, "serve", fake_serve)
    return configs


def test_config_directory(tmp_path: Path, served: list[ServerConfig]) -> None:
    (tmp_path / "storage.hcl").write_text(STORAGE)
    (tmp_path / "listener.hcl").write_text(LISTENER)
    assert server_cmd.run([f"-config={tmp_path}"]) == 0
    assert served[0].storage.type == "file" and served[0].listeners[0].port == 8200


def test_repeated_config_later_file_wins(tmp_path: Path, served: list[ServerConfig]) -> None:
    (tmp_path / "base.hcl").write_text(STORAGE + LISTENER + "workers = 2\n")
    (tmp_path / "more.json").write_text('{"workers": 4}')
    args = ["-config", str(tmp_path / "base.hcl"), f"--config={tmp_path / 'more.json'}"]
    assert server_cmd.run(args) == 0
    assert served[0].workers == 4


def test_conflict_is_reported_with_both_files(
        tmp_path: Path, served: list[ServerConfig], capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.hcl").write_text(STORAGE + LISTENER)
    (tmp_path / "b.hcl").write_text(STORAGE)
    assert server_cmd.run([f"-config={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error loading configuration: ")
    assert str(tmp_path / "a.hcl") in err and str(tmp_path / "b.hcl") in err
    assert not served


def test_config_required(served: list[ServerConfig], capsys: pytest.CaptureFixture[str]) -> None:
    assert server_cmd.run([]) == 1
    assert "-config" in capsys.readouterr().err
    assert not served
