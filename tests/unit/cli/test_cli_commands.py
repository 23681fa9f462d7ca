"""`status` and `operator` commands against a fake API: output, requests, exit codes."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from cli_fakes import FakeApi
from conftest import Result, TtyInput

Cli = Callable[..., Result]

SEALED: dict[str, Any] = {
    "type": "shamir", "initialized": True, "sealed": True, "t": 2, "n": 3, "progress": 1,
    "nonce": "abc-123", "version": "0.1.0", "build_date": "2026-11-28T00:00:00Z",
    "migration": False, "recovery_seal": False, "storage_type": "inmem",
}
UNSEALED: dict[str, Any] = {
    **SEALED, "sealed": False, "progress": 0, "nonce": "",
    "cluster_name": "strongroom-cluster-1", "cluster_id": "cid-1",
}
ROOT = "s.root-token-value"


def sealed_api(api: FakeApi) -> FakeApi:
    api.add("GET", "/v1/sys/seal-status", (200, SEALED))
    api.add("GET", "/v1/sys/leader", (200, {"ha_enabled": False}))
    return api


def table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines()[2:]:
        key, _, value = line.partition("    ")
        rows[key.strip()] = value.strip()
    return rows


# --- status --------------------------------------------------------------------

def test_status_sealed_table_and_exit_2(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    r = cli("status", env={"VAULT_TOKEN": ROOT})
    assert r.code == 2
    lines = r.out.splitlines()
    assert lines[0].split() == ["Key", "Value"] and lines[1].split() == ["---", "-----"]
    rows = table_rows(r.out)
    assert list(rows) == ["Seal Type", "Initialized", "Sealed", "Total Shares", "Threshold",
                          "Unseal Progress", "Unseal Nonce", "Version", "Build Date",
                          "Storage Type", "HA Enabled"]
    assert rows["Unseal Progress"] == "1/2"
    assert rows["Sealed"] == "true"
    assert ROOT not in r.out + r.err


def test_status_unsealed_exit_0_shows_cluster(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, UNSEALED))
    fake_api.add("GET", "/v1/sys/leader", (200, {"ha_enabled": False}))
    r = cli("status")
    assert r.code == 0
    rows = table_rows(r.out)
    assert "Unseal Progress" not in rows
    assert rows["Cluster Name"] == "strongroom-cluster-1"
    assert rows["HA Enabled"] == "false"


def test_status_json_merges_leader_fields(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, UNSEALED))
    fake_api.add("GET", "/v1/sys/leader", (200, {
        "ha_enabled": True, "is_self": True, "active_time": "2026-01-01T00:00:00Z",
        "leader_address": "https://a:8200", "leader_cluster_address": "https://a:8201",
        "performance_standby": False, "raft_committed_index": 0}))
    r = cli("status", "-format=json")
    assert r.code == 0
    data = json.loads(r.out)
    assert list(data)[: len(UNSEALED)] == list(UNSEALED)
    assert data["ha_enabled"] is True and data["is_self"] is True
    assert "performance_standby" not in data and "raft_committed_index" not in data


def test_status_ha_rows(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, UNSEALED))
    fake_api.add("GET", "/v1/sys/leader", [
        (200, {"ha_enabled": True, "is_self": True, "active_time": "2026-01-01T00:00:00Z",
               "leader_cluster_address": "https://a:8201"}),
        (200, {"ha_enabled": True, "is_self": False, "leader_address": "",
               "active_time": "0001-01-01T00:00:00Z"}),
    ])
    active = table_rows(cli("status").out)
    assert (active["HA Cluster"], active["HA Mode"]) == ("https://a:8201", "active")
    assert active["Active Since"] == "2026-01-01T00:00:00Z"
    standby = table_rows(cli("status").out)
    assert (standby["HA Cluster"], standby["HA Mode"]) == ("n/a", "standby")
    assert standby["Active Node Address"] == "<none>"
    assert "Active Since" not in standby


def test_status_masks_sealed_leader_error_as_ha(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, SEALED))
    fake_api.add("GET", "/v1/sys/leader", (503, {"errors": ["Vault is sealed"]}))
    r = cli("status")
    assert r.code == 2
    assert table_rows(r.out)["HA Enabled"] == "true"


def test_status_commit_date_fallback_for_openbao(cli: Cli, fake_api: FakeApi) -> None:
    bao = {k: v for k, v in SEALED.items() if k != "build_date"}
    bao["commit_date"] = "2026-10-26T20:32:27Z"
    fake_api.add("GET", "/v1/sys/seal-status", (200, bao))
    fake_api.add("GET", "/v1/sys/leader", (200, {"ha_enabled": False}))
    r = cli("status")
    assert table_rows(r.out)["Commit Date"] == "2026-10-26T20:32:27Z"
    assert json.loads(cli("status", "-format=json").out)["build_date"] == ""


@pytest.mark.parametrize(("route", "reply", "prefix"), [
    ("/v1/sys/seal-status", (500, {"errors": ["storage down"]}), "Error checking seal status"),
    ("/v1/sys/leader", (500, {"errors": ["no leader"]}), "Error checking leader status"),
])
def test_status_errors_exit_1(cli: Cli, fake_api: FakeApi, route: str, reply: Any,
                              prefix: str) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", (200, UNSEALED))
    fake_api.add("GET", route, reply)
    r = cli("status")
    assert r.code == 1
    assert r.err.startswith(f"{prefix}: Error making API request.")
    assert "Code: 500. Errors:\n\n* " in r.err


def test_status_unreachable_exit_1(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/seal-status", requests.ConnectionError("refused"))
    r = cli("status")
    assert r.code == 1
    assert r.err.startswith('Error checking seal status: GET "http://vault.test:8200/')


def test_status_field(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    assert (cli("status", "-field=progress").out, cli("status", "-field=sealed").code) == ("1", 2)
    missing = cli("status", "-field=nope")
    assert missing.code == 2  # still sealed; the missing field is reported on stderr
    assert 'Field "nope" not present in seal status' in missing.err


def test_address_flag_reaches_the_request(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    cli("status", "-address=https://other.test:9999")
    assert fake_api.requests[0].url == "https://other.test:9999/v1/sys/seal-status"


# --- operator init ---------------------------------------------------------------

INIT_RESPONSE = {"keys": ["aa01", "bb02", "cc03"], "keys_base64": ["qgE=", "uwI=", "zAM="],
                 "root_token": ROOT}


def test_init_json_has_vault_cli_shape(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    r = cli("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")
    assert r.code == 0, r.err
    assert json.loads(r.out) == {
        "unseal_keys_b64": ["qgE=", "uwI=", "zAM="], "unseal_keys_hex": ["aa01", "bb02", "cc03"],
        "unseal_shares": 3, "unseal_threshold": 2,
        "recovery_keys_b64": None, "recovery_keys_hex": None,
        "recovery_keys_shares": 0, "recovery_keys_threshold": 0, "root_token": ROOT,
    }
    assert fake_api.bodies("PUT", "/v1/sys/init") == [{"secret_shares": 3, "secret_threshold": 2}]


def test_init_defaults_and_aliases(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    cli("operator", "init", "-format=json")
    cli("operator", "init", "-n", "4", "-t=2", "-format=json")
    assert fake_api.bodies("PUT", "/v1/sys/init") == [
        {"secret_shares": 5, "secret_threshold": 3}, {"secret_shares": 4, "secret_threshold": 2}]


def test_init_table_text(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    r = cli("operator", "init", "-n=3", "-t=2")
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[:5] == ["Unseal Key 1: qgE=", "Unseal Key 2: uwI=", "Unseal Key 3: zAM=", "",
                         f"Initial Root Token: {ROOT}"]
    assert "3 key shares and a key threshold of 2" in r.out


def test_init_field(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    assert cli("operator", "init", "-field=root_token").out == ROOT


def test_init_api_error_exit_2(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (400, {"errors": ["Vault is already initialized"]}))
    r = cli("operator", "init")
    assert r.code == 2
    assert r.err.startswith("Error initializing: Error making API request.")
    assert r.err.rstrip().endswith("* Vault is already initialized")


@pytest.mark.parametrize(("reply", "code", "text"), [
    ((200, {"initialized": True}), 0, "Vault is initialized"),
    ((200, {"initialized": False}), 2, "Vault is not initialized"),
])
def test_init_status(cli: Cli, fake_api: FakeApi, reply: Any, code: int, text: str) -> None:
    fake_api.add("GET", "/v1/sys/init", reply)
    r = cli("operator", "init", "-status")
    assert (r.code, r.out.strip()) == (code, text)
    assert not any(req.method == "PUT" for req in fake_api.requests)


def test_init_status_error_exit_1(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/init", requests.ConnectionError("refused"))
    r = cli("operator", "init", "-status")
    assert r.code == 1
    assert r.err.startswith("Error checking init status:")


# --- operator unseal / seal ------------------------------------------------------

def test_unseal_with_argument_prints_status(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    fake_api.add("PUT", "/v1/sys/unseal", (200, SEALED))
    r = cli("operator", "unseal", "KEY-1")
    assert r.code == 0  # like vault: success even while still sealed
    assert table_rows(r.out)["Unseal Progress"] == "1/2"
    assert fake_api.bodies("PUT", "/v1/sys/unseal") == [{"key": "KEY-1"}]
    assert "KEY-1" not in r.out + r.err


def test_unseal_reads_piped_stdin(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    fake_api.add("PUT", "/v1/sys/unseal", (200, UNSEALED))
    r = cli("operator", "unseal", "-format=json", stdin="  KEY-2  \nignored\n")
    assert r.code == 0
    assert json.loads(r.out)["sealed"] is False
    assert fake_api.bodies("PUT", "/v1/sys/unseal") == [{"key": "KEY-2"}]


def test_unseal_prompts_on_a_terminal(cli: Cli, fake_api: FakeApi,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str, stream: Any = None) -> str:
        prompts.append(prompt)
        return "KEY-3"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    sealed_api(fake_api)
    fake_api.add("PUT", "/v1/sys/unseal", (200, SEALED))
    r = cli("operator", "unseal", stdin=TtyInput(""))
    assert r.code == 0
    assert prompts == ["Unseal Key (will be hidden): "]
    assert fake_api.bodies("PUT", "/v1/sys/unseal") == [{"key": "KEY-3"}]


def test_unseal_without_any_key_exit_1(cli: Cli, fake_api: FakeApi) -> None:
    r = cli("operator", "unseal", stdin="")
    assert r.code == 1
    assert "no unseal key" in r.err
    assert not fake_api.requests


def test_unseal_reset(cli: Cli, fake_api: FakeApi) -> None:
    sealed_api(fake_api)
    fake_api.add("PUT", "/v1/sys/unseal", (200, {**SEALED, "progress": 0}))
    r = cli("operator", "unseal", "-reset")
    assert r.code == 0
    assert table_rows(r.out)["Unseal Progress"] == "0/2"
    assert fake_api.bodies("PUT", "/v1/sys/unseal") == [{"reset": True}]


def test_unseal_bad_key_shows_server_error(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/unseal",
                 (400, {"errors": ["'key' must be a valid hex or base64 string"]}))
    r = cli("operator", "unseal", "not-a-key")
    assert r.code == 2
    assert r.err == ("Error unsealing: Error making API request.\n\n"
                     "URL: PUT http://vault.test:8200/v1/sys/unseal\n"
                     "Code: 400. Errors:\n\n* 'key' must be a valid hex or base64 string\n")


def test_seal_success_sends_token(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/seal", (204, None))
    r = cli("operator", "seal", env={"VAULT_TOKEN": ROOT})
    assert (r.code, r.out) == (0, "Success! Vault is sealed.\n")
    assert fake_api.requests[0].headers["X-Vault-Token"] == ROOT
    assert ROOT not in r.out + r.err


def test_seal_forbidden_exit_2(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/seal", (403, {"errors": ["permission denied"]}))
    r = cli("operator", "seal", env={"VAULT_TOKEN": ROOT})
    assert r.code == 2
    assert r.err.startswith("Error sealing: Error making API request.")
    assert "Code: 403" in r.err and "* permission denied" in r.err
    assert ROOT not in r.err


def test_seal_takes_no_output_flags(cli: Cli) -> None:
    assert cli("operator", "seal", "-format=json").code == 1
