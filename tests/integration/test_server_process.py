"""The server command itself: dev mode, config errors, damaged storage."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from strongroom.physical.file import DB_NAME
from tests.support.servers import (
    file_config,
    strongroom_dev_server,
    strongroom_env,
    strongroom_server,
)


def test_dev_server_starts_unsealed_and_prints_credentials(tmp_path: Path) -> None:
    with strongroom_dev_server(tmp_path, root_token="dev-root") as srv:
        health = requests.get(srv.url + "/v1/sys/health", timeout=5)
        assert health.status_code == 200 and health.json()["sealed"] is False
        status = requests.get(srv.url + "/v1/sys/seal-status", timeout=5).json()
        assert (status["t"], status["n"], status["storage_type"]) == (1, 1, "inmem")
        token = {"X-Vault-Token": "dev-root"}
        lookup = requests.get(srv.url + "/v1/auth/token/lookup-self", headers=token, timeout=5)
        assert lookup.status_code == 200 and lookup.json()["data"]["policies"] == ["root"]
        mounts = requests.get(srv.url + "/v1/sys/mounts", headers=token, timeout=5).json()
        if "secret/" in mounts["data"]:
            assert mounts["data"]["secret/"]["options"] == {"version": "2"}
    output = (tmp_path / "dev.log").read_text()
    assert "Unseal Key: " in output and "Root Token: dev-root" in output


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('storage "file" {\n path = "/tmp/x"\n colour = "red"\n}\nlistener "tcp" {}\n', "colour"),
        ('storage "file" {}\nlistener "tcp" { tls_disable = true }\n', "path"),
        ('storage "inmem" {}\nlistener "tcp" {\n tls_disable = true\n'
         ' tls_min_version = "tls11"\n}\n', "tls_min_version"),
        ('storage "inmem" {}\nlistener "tcp" { tls_disable = true }\nworkers = "many"\n',
         "workers"),
        ('storage "inmem" {\n', "server.hcl"),
    ],
)
def test_bad_config_exits_nonzero_naming_the_key(tmp_path: Path, config: str, named: str) -> None:
    path = tmp_path / "server.hcl"
    path.write_text(config)
    proc = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "server", f"-config={path}"],
        capture_output=True, text=True, env=strongroom_env(), timeout=60, check=False,
    )
    assert proc.returncode != 0
    assert named in proc.stderr, proc.stderr


CONFIG = file_config(workers=2)


def corrupt(data_dir: Path, key: str, keep: int | None = None) -> None:
    """Flip the last byte of ``key``'s stored value (or cut it to ``keep`` bytes), behind
    the file backend's back: in its SQLite database, checksum left as it was."""
    with sqlite3.connect(data_dir / DB_NAME) as db:
        row = db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        assert row is not None, key
        (value,) = row
        blob = bytearray(value)
        blob[-1] ^= 0xFF
        db.execute("UPDATE entries SET value = ? WHERE key = ?",
                   (bytes(blob[:keep] if keep is not None else blob), key))


def _initialized(tmp_path: Path) -> str:
    """Initialize a node on tmp_path/data and stop it: the next start reads from disk."""
    with strongroom_server(tmp_path, CONFIG) as srv:
        init = requests.put(srv.url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=10).json()
    return str(init["keys"][0])


def test_corrupt_entries_are_clear_errors_not_crashes(tmp_path: Path) -> None:
    key = _initialized(tmp_path)
    corrupt(tmp_path / "data", "core/keyring")
    with strongroom_server(tmp_path, CONFIG) as srv:
        resp = requests.put(srv.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
        assert resp.status_code == 500
        assert "core/keyring" in resp.json()["errors"][0]
        assert requests.get(srv.url + "/v1/sys/seal-status", timeout=5).json()["sealed"] is True
    corrupt(tmp_path / "data", "core/keyring", keep=10)
    with strongroom_server(tmp_path, CONFIG) as srv:
        resp = requests.put(srv.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
        assert resp.status_code == 500 and "core/keyring" in resp.json()["errors"][0]
        assert requests.get(srv.url + "/v1/sys/health", timeout=5).status_code == 503


def test_corrupt_barrier_entry_keeps_the_node_sealed(tmp_path: Path) -> None:
    key = _initialized(tmp_path)
    corrupt(tmp_path / "data", "core/cluster/info")
    with strongroom_server(tmp_path, CONFIG) as srv:
        resp = requests.put(srv.url + "/v1/sys/unseal", json={"key": key}, timeout=10)
        assert resp.status_code == 500
        assert "core/cluster/info" in resp.json()["errors"][0]
        assert requests.get(srv.url + "/v1/sys/seal-status", timeout=5).json()["sealed"] is True


def test_proxy_headers_from_loopback_are_not_trusted(tmp_path: Path) -> None:
    """Vault trusts no client-supplied forwarding headers unless told to; gunicorn by
    default trusts them from 127.0.0.1, which is also where a standby's relayed requests
    (carrying the client's headers) reach the active node's API."""
    with strongroom_dev_server(tmp_path, root_token="dev-root") as srv:
        token = {"X-Vault-Token": "dev-root"}
        plain = requests.get(srv.url + "/v1/auth/token/lookup-self", headers=token, timeout=5)
        assert plain.status_code == 200
        for header in ({"SCRIPT_NAME": "/v1/auth"}, {"X-Forwarded-Proto": "https"}):
            resp = requests.get(srv.url + "/v1/auth/token/lookup-self", timeout=5,
                                headers={**token, **header})
            assert resp.status_code == 200, (header, resp.status_code, resp.text)
            assert resp.json()["data"]["id"] == "dev-root"
