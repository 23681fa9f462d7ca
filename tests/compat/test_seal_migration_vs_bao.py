"""Seal migration Shamir -> auto-seal -> Shamir: Strongroom against OpenBao 2.7, side by side.

OpenBao has no PKCS#11 seal, but it has a ``static`` auto-seal (a key in a file) and the
same migration code as Vault (vault/core.go). The same scenario runs on both, each a
real server restarted with the step's configuration: Strongroom on file storage with a
real SoftHSM token (``seal "pkcs11"``), OpenBao on raft storage with ``seal "static"``.
Vault's way is followed: Shamir to auto-seal by adding the auto-seal stanza alone, back
by marking it ``disabled = "true"``. What a client observes (seal-status fields during
and after the migration, the refusal of a plain unseal, progress, the secret, the
auto-unseal) must be equal; the seal type is compared as "shamir" or "auto".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.ha import poll
from tests.support.servers import (
    ServerProcess,
    bao_binary,
    file_config,
    free_port_pair,
    running,
    strongroom_server,
)
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)
PIN = "pin-for-compat-4711"
SEEN = ("sealed", "t", "n", "progress", "migration", "recovery_seal", "recovery_seal_type",
        "initialized")

# Start a server with the step's seal stanzas ("" for Shamir, "auto", "auto-disabled").
Launch = Callable[[str], AbstractContextManager[ServerProcess]]


def bao_launcher(workdir: Path) -> Launch:
    bao = bao_binary()
    (workdir / "raft").mkdir()
    key = workdir / "static.key"
    key.write_bytes(bytes(range(32)))
    port = free_port_pair()
    base = (f'storage "raft" {{\n  path = "{workdir / "raft"}"\n  node_id = "n1"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "http://127.0.0.1:{port}"\n'
            f'cluster_addr = "http://127.0.0.1:{port + 1}"\n')
    stanza = ('seal "static" {\n  current_key_id = "k1"\n'
              f'  current_key = "file://{key}"' + '{disabled}\n}\n')
    starts = iter(range(100))

    @contextmanager
    def launch(seals: str) -> Iterator[ServerProcess]:
        text = base
        if seals:
            text += stanza.replace("{disabled}", '\n  disabled = "true"' if seals.endswith(
                "disabled") else "")
        config = workdir / f"bao-{next(starts)}.hcl"
        config.write_text(text)
        with running([bao, "server", f"-config={config}"], workdir, config.stem + ".log",
                     f"http://127.0.0.1:{port}") as server:
            yield server

    return launch


def strongroom_launcher(workdir: Path, hsm: SoftHsm) -> Launch:
    base = file_config(workers=2)
    stanza = ('seal "pkcs11" {{{{\n  lib = "' + hsm.lib + '"\n  token_label = "tok"\n'
              '  key_label = "root"\n  generate_key = "true"{disabled}\n}}}}\n')

    def launch(seals: str) -> AbstractContextManager[ServerProcess]:
        text = base
        if seals:
            text += stanza.format(disabled='\n  disabled = "true"' if seals.endswith(
                "disabled") else "")
        return strongroom_server(workdir, text)

    return launch


def seen(node: ServerProcess) -> dict[str, Any]:
    def fetch() -> dict[str, Any] | None:
        resp = requests.get(node.url + "/v1/sys/seal-status", timeout=10)
        # OpenBao answers with an error for a moment while it turns active after unsealing.
        return resp.json() if resp.status_code == 200 else None  # type: ignore[no-any-return]
    body: dict[str, Any] = poll(fetch, 30, "sys/seal-status")
    out = {k: body.get(k) for k in SEEN}
    out["type"] = "shamir" if body["type"] == "shamir" else "auto"
    return out


def put(node: ServerProcess, path: str, body: dict[str, Any],
        token: str | None = None) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.put(node.url + "/v1/" + path, json=body, headers=headers, timeout=30)


def secret(node: ServerProcess, token: str) -> str:
    # Right after an unseal OpenBao (raft) may need a moment to become active.
    def read() -> str | None:
        resp = requests.get(node.url + "/v1/secret/data/app", timeout=10,
                            headers={"X-Vault-Token": token})
        return str(resp.json()["data"]["data"]["v"]) if resp.status_code == 200 else None
    value: str = poll(read, 30, "the secret")
    return value


def migrate(node: ServerProcess, keys: list[str]) -> list[Any]:
    steps = []
    for key in (keys[0], keys[2]):
        resp = put(node, "sys/unseal", {"key": key, "migrate": True})
        steps.append((resp.status_code, resp.json()["sealed"], resp.json()["progress"]))
    poll(lambda: seen(node)["migration"] is False, 30, "the migration to complete")
    return steps


def scenario(launch: Launch) -> dict[str, Any]:
    record: dict[str, Any] = {}
    with launch("") as node:
        init = put(node, "sys/init", {"secret_shares": 3, "secret_threshold": 2}).json()
        keys, token = init["keys"], init["root_token"]
        for key in keys[:2]:
            put(node, "sys/unseal", {"key": key})
        poll(lambda: put(node, "sys/mounts/secret", {"type": "kv-v2"}, token).status_code
             == 204, 30, "the secret mount")
        assert requests.post(node.url + "/v1/secret/data/app", json={"data": {"v": "kept"}},
                             headers={"X-Vault-Token": token}, timeout=10).status_code == 200
        no_seal = put(node, "sys/unseal", {"key": keys[0], "migrate": True})
        # Unsealed: Vault answers "can't perform a seal migration" before anything else.
        record["migrate_without_seal"] = (no_seal.status_code, no_seal.json())
    with launch("auto") as node:
        record["to_auto_pending"] = seen(node)
        plain = put(node, "sys/unseal", {"key": keys[0]})
        record["plain_unseal"] = (plain.status_code, plain.json())
        record["to_auto_steps"] = migrate(node, keys)
        record["to_auto_done"] = seen(node)
        record["to_auto_secret"] = secret(node, token)
    with launch("auto") as node:
        poll(lambda: seen(node)["sealed"] is False, 30, "auto-unseal")
        record["auto_alone"] = seen(node)
        record["auto_secret"] = secret(node, token)
    with launch("auto-disabled") as node:
        record["to_shamir_pending"] = seen(node)
        record["to_shamir_steps"] = migrate(node, keys)
        record["to_shamir_done"] = seen(node)
        record["to_shamir_secret"] = secret(node, token)
    with launch("") as node:
        record["shamir_alone"] = seen(node)
        for key in keys[1:]:
            put(node, "sys/unseal", {"key": key})
        record["shamir_secret"] = secret(node, token)
    return record


def test_migration_same_as_bao(tmp_path: Path, softhsm: SoftHsm,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    softhsm.init_token("tok", pin=PIN)
    monkeypatch.setenv("VAULT_HSM_PIN", PIN)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
    records = {}
    for kind in ("bao", "strongroom"):
        workdir = tmp_path / kind
        workdir.mkdir()
        launch = (bao_launcher(workdir) if kind == "bao"
                  else strongroom_launcher(workdir, softhsm))
        started = time.monotonic()
        records[kind] = scenario(launch)
        print(f"{kind}: {time.monotonic() - started:.1f}s")
    bao = records["bao"]
    assert bao["to_auto_pending"]["migration"] is True
    assert bao["plain_unseal"] == (500, {"errors": [
        "migrate option not provided and seal migration is pending"]})
    assert bao["to_auto_secret"] == bao["shamir_secret"] == "kept"
    for step, value in bao.items():
        assert records["strongroom"][step] == value, step
