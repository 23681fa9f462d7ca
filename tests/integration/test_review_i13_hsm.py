"""Attacker-side review of issue 13 on a real multi-worker node with a real SoftHSM
token: a damaged ``core/hsm/barrier-unseal-keys`` keeps the node sealed, says which
entry once in the log (not an exception's type name at every retry), and the node
unseals once the entry is restored (and the node restarted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.physical.file import FileBackend
from strongroom.seal.base import SEALED_ROOT_KEY_PATH
from tests.support.ha import poll
from tests.support.servers import ServerProcess, file_config, strongroom_server
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)

PIN = "review-pin-31337"
SEAL = """
seal "pkcs11" {{{{
  lib          = "{lib}"
  token_label  = "tok-r"
  key_label    = "strongroom-root"
  generate_key = "true"
}}}}
"""


@pytest.fixture
def config(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> str:
    softhsm.init_token("tok-r", pin=PIN)
    monkeypatch.setenv("VAULT_HSM_PIN", PIN)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.2")
    return file_config(workers=2) + SEAL.format(lib=softhsm.lib)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "node"
    path.mkdir()
    yield path


def status(node: ServerProcess) -> dict[str, Any]:
    resp = requests.get(node.url + "/v1/sys/seal-status", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _failures(node: ServerProcess) -> list[str]:
    log = (node.workdir / "server.log").read_text(errors="replace")
    return [line for line in log.splitlines() if "event=auto_unseal_failed" in line]


def test_a_damaged_stored_root_key_keeps_the_node_sealed_and_says_why(
        config: str, workdir: Path) -> None:
    with strongroom_server(workdir, config) as node:
        resp = requests.put(node.url + "/v1/sys/init", timeout=30,
                            json={"recovery_shares": 1, "recovery_threshold": 1})
        assert resp.status_code == 200, resp.text
        poll(lambda: status(node)["sealed"] is False, 20, "auto-unseal after init")
    data = FileBackend(workdir / "data")
    good = data.get(SEALED_ROOT_KEY_PATH)
    assert good is not None
    data.put(SEALED_ROOT_KEY_PATH, b"{damaged")
    with strongroom_server(workdir, config) as node:
        poll(lambda: len(_failures(node)) >= 1, 20, "the auto-unseal failure in the log")
        (line,) = _failures(node)
        assert "core/hsm/barrier-unseal-keys is malformed" in line, line
        # The retry job keeps trying (every 0.2 s) but says it once; the node stays sealed.
        resp = requests.put(node.url + "/v1/sys/unseal", json={"reset": True}, timeout=10)
        assert status(node)["sealed"] is True
        assert len(_failures(node)) == 1, _failures(node)
    # Restored (from a backup): the next start unseals by itself.
    data.put(SEALED_ROOT_KEY_PATH, good)
    with strongroom_server(workdir, config) as node:
        poll(lambda: status(node)["sealed"] is False, 20, "unsealed once restored")
