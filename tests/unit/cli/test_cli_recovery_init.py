"""`operator init` against an auto-sealed server: recovery key flags, as vault sends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cli_fakes import FakeApi
from conftest import Result

Cli = Callable[..., Result]

AUTO_STATUS: dict[str, Any] = {
    "type": "pkcs11", "initialized": False, "sealed": True, "t": 0, "n": 0, "progress": 0,
    "nonce": "", "version": "0.1.0", "build_date": "2026-11-28T00:00:00Z",
    "migration": False, "recovery_seal": True, "storage_type": "file",
}
AUTO_INIT = {"keys": [], "keys_base64": [], "recovery_keys": ["aa01", "bb02"],
             "recovery_keys_base64": ["qgE=", "uwI="], "root_token": "hvs.root"}


def test_recovery_flags_reach_the_request_and_the_output(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, AUTO_STATUS))
    fake_api.add("PUT", "/v1/sys/init", (200, AUTO_INIT))
    r = cli("operator", "init", "-recovery-shares=2", "-recovery-threshold=2", "-format=json")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/init") == [{
        "secret_shares": 0, "secret_threshold": 0, "recovery_shares": 2,
        "recovery_threshold": 2}]
    assert json.loads(r.out) == {
        "unseal_keys_b64": [], "unseal_keys_hex": [], "unseal_shares": 1,
        "unseal_threshold": 1, "recovery_keys_b64": ["qgE=", "uwI="],
        "recovery_keys_hex": ["aa01", "bb02"], "recovery_keys_shares": 2,
        "recovery_keys_threshold": 2, "root_token": "hvs.root"}


def test_recovery_defaults_and_table_text(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, AUTO_STATUS))
    fake_api.add("PUT", "/v1/sys/init", (200, AUTO_INIT))
    r = cli("operator", "init")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/init")[0]["recovery_shares"] == 5
    assert r.out.splitlines()[:2] == ["Recovery Key 1: qgE=", "Recovery Key 2: uwI="]
    assert "Success! Vault is initialized" in r.out
    assert "Recovery key initialized with 5 key shares and a key threshold of 3." in r.out


def test_a_shamir_server_gets_no_recovery_fields(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, {**AUTO_STATUS, "type": "shamir",
                                                       "recovery_seal": False}))
    fake_api.add("PUT", "/v1/sys/init", (200, {"keys": ["aa"], "keys_base64": ["qg=="],
                                               "root_token": "hvs.r"}))
    cli("operator", "init", "-recovery-shares=2", "-format=json")
    assert fake_api.bodies("PUT", "/v1/sys/init") == [
        {"secret_shares": 5, "secret_threshold": 3}]


def test_auto_seal_refusal_is_shown(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, AUTO_STATUS))
    fake_api.add("PUT", "/v1/sys/init", (400, {"errors": [
        "parameters secret_shares not applicable to seal type pkcs11"]}))
    r = cli("operator", "init", "-key-shares=3")
    assert r.code == 2
    assert "parameters secret_shares not applicable to seal type pkcs11" in r.err
