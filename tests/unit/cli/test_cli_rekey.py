"""`operator rekey` / `operator rotate` against a fake API: requests, output, exit codes.

The JSON output is checked against bao's in tests/compat/test_rekey_vs_bao.py; here
the table output, the recovery target, the backups and the error paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cli_fakes import FakeApi
from conftest import Result

Cli = Callable[..., Result]
NONCE = "2dbd10f1-8528-6246-09e7-82b25b8aba63"
IDLE: dict[str, Any] = {"nonce": "", "started": False, "t": 0, "n": 0, "progress": 0,
                        "required": 2, "pgp_fingerprints": None, "backup": False,
                        "verification_required": False}
STARTED = {**IDLE, "nonce": NONCE, "started": True, "t": 3, "n": 5}


def test_init_table_and_request(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/rekey/init", (200, STARTED))
    r = cli("operator", "rekey", "-init", "-key-shares=5", "-key-threshold=3")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/rekey/init") == [{
        "secret_shares": 5, "secret_threshold": 3, "backup": False,
        "require_verification": False}]
    assert "WARNING! If you lose the keys" in r.err
    assert f"Nonce                    {NONCE}" in r.out
    assert "Progress                 0/2" in r.out and "New Shares               5" in r.out


def test_recovery_target_uses_the_recovery_paths(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/rekey-recovery-key/init", (200, {**STARTED, "progress": 1}))
    fake_api.add("PUT", "/v1/sys/rekey-recovery-key/update", (200, {
        "nonce": NONCE, "complete": True, "keys": ["aa01"], "keys_base64": ["qgE="],
        "pgp_fingerprints": None, "backup": False, "verification_required": False}))
    r = cli("operator", "rekey", "-target=recovery", f"-nonce={NONCE}", "abcd")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/rekey-recovery-key/update") == [
        {"key": "abcd", "nonce": NONCE}]
    assert "Key 1: qgE=" in r.out and f"Operation nonce: {NONCE}" in r.out
    assert "recovery key shares" in r.out


def test_a_key_without_a_nonce_or_a_round_is_refused(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/rekey/init", [(200, STARTED), (200, IDLE)])
    r = cli("operator", "rekey", "abcd")
    assert (r.code, r.err.strip()) == (1, "Missing nonce value: specify it via the -nonce flag")
    r = cli("operator", "rekey", "-nonce=x", "abcd")
    assert r.code == 1 and "No rekey is in progress" in r.err
    assert fake_api.bodies("PUT", "/v1/sys/rekey/update") == []


def test_piped_key_takes_the_rounds_nonce(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/rekey/init", (200, STARTED))
    fake_api.add("PUT", "/v1/sys/rekey/update", (200, {**STARTED, "progress": 1}))
    r = cli("operator", "rekey", "-format=json", stdin="abcd\n")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/rekey/update") == [{"key": "abcd",
                                                                "nonce": NONCE}]
    assert json.loads(r.out)["progress"] == 0  # the status read after the update


def test_verify_cancel_and_status(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("DELETE", "/v1/sys/rekey/verify", (200, {"nonce": "n2", "started": True,
                                                          "t": 2, "n": 3, "progress": 0}))
    fake_api.add("GET", "/v1/sys/rekey/verify", (200, {"nonce": "n2", "started": True,
                                                       "t": 2, "n": 3, "progress": 1}))
    r = cli("operator", "rekey", "-cancel", "-verify")
    assert r.out.strip() == "Success! Canceled rekeying (if it was started)"
    r = cli("operator", "rekey", "-status", "-verify")
    assert "Verification Progress    1/2" in r.out


def test_backups(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/rekey/recovery-key-backup", (200, {"data": {
        "nonce": NONCE, "keys": {"fp": ["aa"]}, "keys_base64": {"fp": ["qg=="]}}}))
    fake_api.add("DELETE", "/v1/sys/rekey/backup", (204, None))
    r = cli("operator", "rekey", "-backup-retrieve", "-target=recovery", "-format=json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["data"] == {"keys": {"fp": ["aa"]},
                                         "keys_base64": {"fp": ["qg=="]}, "nonce": NONCE}
    r = cli("operator", "rekey", "-backup-delete")
    assert r.out.strip() == "Success! Deleted backed up keys (if they existed)"
    fake_api.add("GET", "/v1/sys/rekey/backup", (400, {"errors": ["no backed-up keys found"]}))
    r = cli("operator", "rekey", "-backup-retrieve")
    assert r.code == 2 and "no backed-up keys found" in r.err


def test_unknown_target(cli: Cli, fake_api: FakeApi) -> None:
    r = cli("operator", "rekey", "-status", "-target=nope")
    assert r.code == 1 and "Unknown target: nope" in r.err


def test_rotate_and_rotate_root_key(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/rotate", (204, None))
    fake_api.add("PUT", "/v1/sys/rotate/root", (204, None))
    fake_api.add("GET", "/v1/sys/key-status", (200, {"term": 2, "encryptions": 7,
                                                     "install_time": "2026-12-05T10:00:00Z"}))
    r = cli("operator", "rotate")
    assert r.code == 0 and r.out.startswith("Success! Rotated key")
    assert "Key Term            2" in r.out
    r = cli("operator", "rotate", "-root-key", "-format=json")
    assert r.code == 0 and json.loads(r.out) == {
        "term": 2, "install_time": "2026-12-05T10:00:00Z", "encryptions": 7}
    assert [req.url.rsplit("/v1/", 1)[1] for req in fake_api.requests
            if req.method == "PUT"] == ["sys/rotate", "sys/rotate/root"]
    fake_api.add("PUT", "/v1/sys/rotate/root", (400, {"errors": ["refused"]}))
    r = cli("operator", "rotate", "-root-key")
    assert r.code == 2 and r.err.startswith("Error rotating root key")
