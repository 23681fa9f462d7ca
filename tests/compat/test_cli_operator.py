"""The strongroom CLI, run as a subprocess, against a real non-dev server.

Each test gets a fresh, uninitialized server (in-memory storage, so init and
unseal are really exercised). The ``server`` fixture is parametrized over
:data:`LAUNCHERS`; adding Strongroom's own server there runs the same tests
against it, which is the point: the CLI must behave identically on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.servers import (
    REPO,
    ServerProcess,
    bao_server,
    file_config,
    free_port,
    strongroom_server,
)

CLI_TIMEOUT = 60.0


@dataclass(frozen=True)
class ServerHandle:
    """A running server under test.

    Attributes:
        addr: Base URL, e.g. ``http://127.0.0.1:40123``.
        kind: Which implementation is running (``"bao"``, later ``"strongroom"``).
        workdir: Private directory (config, logs, HOME for CLI runs).
    """

    addr: str
    kind: str
    workdir: Path


#: Server implementations the CLI is checked against; each starts a fresh,
#: uninitialized, non-dev server in the given directory (skipping the test if
#: the implementation is unavailable).
STRONGROOM_CONFIG = file_config(workers=2)
LAUNCHERS: dict[str, Callable[[Path], AbstractContextManager[ServerProcess]]] = {
    "bao": bao_server,
    "strongroom": lambda wd: strongroom_server(wd, STRONGROOM_CONFIG),
}


@pytest.fixture(params=sorted(LAUNCHERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerHandle]:
    """A fresh, uninitialized server of each registered kind."""
    with LAUNCHERS[request.param](tmp_path) as proc:
        # The launcher's readiness check accepts any answer; the CLI needs the
        # seal-status endpoint specifically, so confirm that one is serving.
        assert requests.get(f"{proc.url}/v1/sys/seal-status", timeout=10).status_code == 200
        yield ServerHandle(proc.url, request.param, tmp_path)


def strongroom(server: ServerHandle, *args: str, token: str | None = None,
               stdin: str = "", addr: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m strongroom.cli.main ARGS`` against ``server``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "server"), os.environ.get("PYTHONPATH", "")) if p)
    env["VAULT_ADDR"] = addr or server.addr
    env["HOME"] = str(server.workdir)  # keep any real ~/.vault-token out of it
    if token is not None:
        env["VAULT_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args], input=stdin,
        capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT, check=False,
    )


def init(server: ServerHandle, shares: int = 3, threshold: int = 2) -> dict[str, object]:
    r = strongroom(server, "operator", "init", f"-key-shares={shares}",
                   f"-key-threshold={threshold}", "-format=json")
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


def status_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines()[2:]:
        key, _, value = line.partition("    ")
        rows[key.strip()] = value.strip()
    return rows


def test_full_lifecycle(server: ServerHandle) -> None:
    out = init(server)
    assert set(out) == {"unseal_keys_b64", "unseal_keys_hex", "unseal_shares",
                        "unseal_threshold", "recovery_keys_b64", "recovery_keys_hex",
                        "recovery_keys_shares", "recovery_keys_threshold", "root_token"}
    keys, root = out["unseal_keys_b64"], out["root_token"]
    assert isinstance(keys, list) and len(keys) == 3
    assert isinstance(out["unseal_keys_hex"], list) and len(out["unseal_keys_hex"]) == 3
    assert (out["unseal_shares"], out["unseal_threshold"]) == (3, 2)
    assert isinstance(root, str) and root

    r = strongroom(server, "status")
    assert r.returncode == 2, r.stderr
    rows = status_rows(r.stdout)
    assert r.stdout.splitlines()[1].split() == ["---", "-----"]
    assert (rows["Initialized"], rows["Sealed"], rows["Total Shares"],
            rows["Threshold"], rows["Unseal Progress"]) == ("true", "true", "3", "2", "0/2")

    r = strongroom(server, "operator", "unseal", keys[0])
    assert r.returncode == 0, r.stderr
    assert status_rows(r.stdout)["Unseal Progress"] == "1/2"
    assert strongroom(server, "status").returncode == 2

    r = strongroom(server, "operator", "unseal", "-format=json", stdin=f"{keys[1]}\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sealed"] is False

    r = strongroom(server, "status")
    assert r.returncode == 0, r.stderr
    assert status_rows(r.stdout)["Sealed"] == "false"
    assert "Unseal Progress" not in status_rows(r.stdout)

    r = strongroom(server, "operator", "seal")  # no token
    assert r.returncode == 2
    assert "Error sealing:" in r.stderr and "Code: 403" in r.stderr
    assert strongroom(server, "status").returncode == 0

    r = strongroom(server, "operator", "seal", token=root)
    assert (r.returncode, r.stdout.strip()) == (0, "Success! Vault is sealed."), r.stderr
    assert root not in r.stdout + r.stderr

    r = strongroom(server, "status", "-format=json")
    assert r.returncode == 2
    assert json.loads(r.stdout)["sealed"] is True


def test_bad_key_shows_the_servers_error(server: ServerHandle) -> None:
    init(server)
    bad = "this-is-not-a-key"
    # What the server itself says about this key; the CLI must pass it through.
    api = requests.put(f"{server.addr}/v1/sys/unseal", json={"key": bad}, timeout=10)
    assert api.status_code == 400
    expected = api.json()["errors"]

    r = strongroom(server, "operator", "unseal", bad)
    assert r.returncode == 2
    assert r.stderr.startswith("Error unsealing: Error making API request.")
    assert f"URL: PUT {server.addr}/v1/sys/unseal" in r.stderr
    assert "Code: 400. Errors:" in r.stderr
    for message in expected:
        assert f"* {message}" in r.stderr


def test_init_status_and_double_init(server: ServerHandle) -> None:
    r = strongroom(server, "operator", "init", "-status")
    assert (r.returncode, r.stdout.strip()) == (2, "Vault is not initialized")
    init(server)
    r = strongroom(server, "operator", "init", "-status")
    assert (r.returncode, r.stdout.strip()) == (0, "Vault is initialized")
    r = strongroom(server, "operator", "init")
    assert r.returncode == 2
    assert r.stderr.startswith("Error initializing: Error making API request.")
    assert "Code: 400" in r.stderr


def test_init_table_output_keys_unseal(server: ServerHandle) -> None:
    r = strongroom(server, "operator", "init", "-n", "2", "-t", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    keys = [line.split(": ", 1)[1] for line in lines if line.startswith("Unseal Key ")]
    assert len(keys) == 2
    assert any(line.startswith("Initial Root Token: ") for line in lines)
    for key in keys:
        assert strongroom(server, "operator", "unseal", key).returncode == 0
    assert strongroom(server, "status").returncode == 0


def test_unseal_reset(server: ServerHandle) -> None:
    keys = init(server)["unseal_keys_b64"]
    assert isinstance(keys, list)
    strongroom(server, "operator", "unseal", keys[0])
    r = strongroom(server, "operator", "unseal", "-reset", "-format=json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["progress"] == 0


def test_status_json_extends_the_api_answer(server: ServerHandle) -> None:
    api = requests.get(f"{server.addr}/v1/sys/seal-status", timeout=10).json()
    r = strongroom(server, "status", "-format=json")
    assert r.returncode == 2
    data = json.loads(r.stdout)
    assert {k: data[k] for k in api} == api
    assert data["ha_enabled"] is False
    assert strongroom(server, "status", "-field=initialized").stdout == "false"


def test_unreachable_server(server: ServerHandle) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    r = strongroom(server, "status", addr=dead)
    assert r.returncode == 1
    assert r.stderr.startswith(f'Error checking seal status: GET "{dead}/v1/sys/seal-status"')
    r = strongroom(server, "operator", "seal", addr=dead)
    assert r.returncode == 2
    assert r.stderr.startswith("Error sealing: ")
