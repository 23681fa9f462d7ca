"""Issue 13's runbooks and roles against real local Strongroom nodes: generate-root.yml,
rekey.yml, strongroom_init with an auto-seal (recovery keys) and unseal.yml on an
auto-sealed node (real SoftHSM partitions; no PKCS#11 mock).

As in test_runbooks.py: nodes are real Strongroom processes on 127.0.0.1 serving HTTPS,
the inventory's hosts use ansible_connection=local, every run uses -v, and every run's
output is searched for each key and anything shaped like a token.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests

from tests.ansible.runbook_support import file_node_config, write_pki
from tests.ansible.test_runbooks import (
    CUSTODY_EXTRA,
    PLAYBOOKS,
    TOKEN_SHAPE,
    Site,
    assert_ok,
    new_site,
)
from tests.support import requires
from tests.support.servers import REPO, running, strongroom_env, strongroom_server

requires.module("ansible")

pytestmark = pytest.mark.timeout(300)


def all_keys(site: Site) -> list[str]:
    data = site.secrets() if site.init_file.exists() else {}
    keys = [*data.get("strongroom_unseal_keys", []), *data.get("strongroom_recovery_keys", [])]
    return [*keys, *(base64.b64decode(k).hex() for k in keys)]


def assert_quiet(site: Site, *extra: str) -> None:
    """No key (current or given), no token in any run's output."""
    secrets = [*all_keys(site), *extra]
    for run in site.runs:
        for secret in secrets:
            assert secret not in run.output, f"a secret appeared in {run.name}'s output"
        assert not TOKEN_SHAPE.search(run.output), f"a token appeared in {run.name}'s output"


def seal_status(site: Site, name: str = "sr1") -> dict[str, Any]:
    resp = requests.get(site.nodes[name].url + "/v1/sys/seal-status", verify=site.ca, timeout=5)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def lookup(site: Site, token: str) -> requests.Response:
    return site.api("GET", "sr1", "auth/token/lookup-self", token)


# -- Shamir: one node on file storage -------------------------------------------------


@pytest.fixture(scope="module")
def shamir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("keys-runbooks")
    pki = write_pki(directory)
    node_dir = directory / "node"
    node_dir.mkdir()
    with strongroom_server(node_dir, file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(directory, {"sr1": node}, pki.ca)
        assert_ok(site.init(CUSTODY_EXTRA))
        yield site
        print(f"\nansible-playbook runs (keys runbooks):\n{site.timings()}")


def test_generate_root_stores_a_vaulted_root_token(shamir: Site) -> None:
    out = shamir.directory / ".secrets" / "strongroom" / "root-token.vault.yml"
    run = shamir.play(PLAYBOOKS / "generate-root.yml")
    assert_ok(run)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    token = shamir.decrypt(out)["strongroom_root_token"]
    looked = lookup(shamir, token)
    assert looked.status_code == 200 and looked.json()["data"]["policies"] == ["root"]
    # Not shown anywhere, nor the unseal keys that authorized it.
    assert_quiet(shamir, token)
    # A second run would replace a token that is still valid: refused, file untouched.
    before = out.read_bytes()
    again = shamir.play(PLAYBOOKS / "generate-root.yml")
    assert again.returncode != 0
    assert "already exists: the root token in it is valid" in " ".join(again.output.split())
    assert out.read_bytes() == before
    assert shamir.api("POST", "sr1", "auth/token/revoke-self", token).status_code == 204
    out.unlink()


def test_generate_root_refuses_an_attempt_in_progress_unless_told_to_cancel(
        shamir: Site) -> None:
    started = requests.put(shamir.nodes["sr1"].url + "/v1/sys/generate-root/attempt",
                           json={}, verify=shamir.ca, timeout=10)
    assert started.status_code == 200, started.text
    nonce = started.json()["nonce"]
    out = shamir.directory / "elsewhere.vault.yml"
    refused = shamir.play(PLAYBOOKS / "generate-root.yml",
                          {"strongroom_generate_root_file": str(out)})
    assert refused.returncode != 0
    assert f"already in progress (nonce {nonce}" in " ".join(refused.output.split())
    assert not out.exists()
    done = shamir.play(PLAYBOOKS / "generate-root.yml",
                       {"strongroom_generate_root_file": str(out),
                        "strongroom_generate_root_cancel": True})
    assert_ok(done)
    token = shamir.decrypt(out)["strongroom_root_token"]
    assert lookup(shamir, token).json()["data"]["policies"] == ["root"]
    assert_quiet(shamir, token)
    shamir.api("POST", "sr1", "auth/token/revoke-self", token)


def test_generate_root_with_wrong_keys_fails_and_says_so(shamir: Site) -> None:
    wrong = [base64.b64encode(os.urandom(33)).decode() for _ in range(3)]
    run = shamir.play(PLAYBOOKS / "generate-root.yml",
                      {"strongroom_generate_root_keys": wrong,
                       "strongroom_generate_root_file": str(shamir.directory / "no.yml"),
                       "strongroom_generate_root_cancel": True})
    assert run.returncode != 0
    assert "did not complete" in run.output
    assert not (shamir.directory / "no.yml").exists()
    for key in wrong:
        assert key not in run.output
    requests.delete(shamir.nodes["sr1"].url + "/v1/sys/generate-root/attempt",
                    verify=shamir.ca, timeout=10)


def test_rekey_refuses_bad_numbers_before_starting(shamir: Site) -> None:
    before = shamir.init_file.read_bytes()
    run = shamir.play(PLAYBOOKS / "rekey.yml", {"strongroom_rekey_shares": 3,
                                                "strongroom_rekey_threshold": 4})
    assert run.returncode != 0
    assert "between 2 and the shares" in " ".join(run.output.split())
    recovery = shamir.play(PLAYBOOKS / "rekey.yml", {"strongroom_rekey_target": "recovery"})
    assert recovery.returncode != 0
    assert "Recovery keys exist only with an auto-seal" in " ".join(recovery.output.split())
    assert shamir.init_file.read_bytes() == before
    status = requests.get(shamir.nodes["sr1"].url + "/v1/sys/rekey/init", verify=shamir.ca,
                          timeout=10)
    assert status.status_code == 200 and status.json()["started"] is False


@pytest.mark.parametrize("verify", [False, True])
def test_rekey_replaces_the_vaulted_unseal_keys(shamir: Site, verify: bool) -> None:
    old = shamir.secrets()["strongroom_unseal_keys"]
    run = shamir.play(PLAYBOOKS / "rekey.yml", {
        "strongroom_rekey_shares": 3 if not verify else 4, "strongroom_rekey_threshold": 2,
        "strongroom_rekey_require_verification": verify})
    assert_ok(run)
    data = shamir.secrets()
    new = data["strongroom_unseal_keys"]
    assert len(new) == (4 if verify else 3) and data["strongroom_unseal_threshold"] == 2
    assert not set(new) & set(old)
    assert not (shamir.init_file.parent / "init.vault.yml.pending").exists()
    status = seal_status(shamir)
    assert (status["t"], status["n"]) == (2, len(new))
    assert_quiet(shamir, *old, *(base64.b64decode(k).hex() for k in old))
    # The new keys unseal: seal with the operator token, then unseal.yml from the file.
    assert_ok(shamir.play(PLAYBOOKS / "seal.yml", {"strongroom_seal_confirm": True}))
    assert seal_status(shamir)["sealed"] is True
    assert_ok(shamir.play(PLAYBOOKS / "unseal.yml"))
    assert seal_status(shamir)["sealed"] is False
    assert_quiet(shamir)


# -- an auto-seal: two SoftHSM partitions ----------------------------------------------

PIN_A, PIN_B = "ansible-pin-a-3141", "ansible-pin-b-2718"
SEALS = """
enable_multiseal = true
seal "pkcs11" {{
  name         = "hsm_a"
  priority     = "1"
  lib          = "%(lib)s"
  token_label  = "sr-a"
  key_label    = "strongroom-root"
  generate_key = "true"
}}
seal "pkcs11" {{
  name         = "hsm_b"
  priority     = "2"
  lib          = "%(lib)s"
  token_label  = "sr-b"
  key_label    = "strongroom-root"
  generate_key = "true"
}}
"""


@pytest.fixture(scope="module")
def auto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from tests.support.softhsm import make_softhsm

    directory = tmp_path_factory.mktemp("auto-runbooks")
    hsm = make_softhsm(directory / "softhsm")
    hsm.init_token("sr-a", pin=PIN_A)
    hsm.init_token("sr-b", pin=PIN_B)
    pki = write_pki(directory)
    node_dir = directory / "node"
    node_dir.mkdir()
    config = file_node_config(pki) + SEALS % {"lib": hsm.lib}
    with pytest.MonkeyPatch.context() as mp, ExitStack() as stack:
        mp.setenv("SOFTHSM2_CONF", str(hsm.conf))
        mp.setenv("VAULT_HSM_PIN_HSM_A", PIN_A)
        mp.setenv("VAULT_HSM_PIN_HSM_B", PIN_B)
        mp.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
        node = stack.enter_context(strongroom_server(node_dir, config, scheme="https",
                                                     verify=str(pki.ca)))
        site = new_site(directory, {"sr1": node}, pki.ca)
        run = site.init({**CUSTODY_EXTRA, "strongroom_init_recovery_shares": 3,
                         "strongroom_init_recovery_threshold": 2})
        assert_ok(run)
        site.hsm = hsm  # type: ignore[attr-defined]
        site.stack = stack  # type: ignore[attr-defined]
        yield site
        print(f"\nansible-playbook runs (auto-seal):\n{site.timings()}")


def restart(site: Site) -> None:
    """Stop the node and start it again on the same port and configuration."""
    node = site.nodes["sr1"]
    node.stop()
    args = [sys.executable, "-m", "strongroom.cli.main", "server",
            f"-config={node.workdir / 'server.hcl'}"]
    site.nodes["sr1"] = site.stack.enter_context(  # type: ignore[attr-defined]
        running(args, node.workdir, "server-restarted.log", node.url, env=strongroom_env(),
                verify=site.ca))


def test_init_with_an_auto_seal_keeps_recovery_keys(auto: Site) -> None:
    data = auto.secrets()
    assert len(data["strongroom_recovery_keys"]) == 3
    assert data["strongroom_recovery_threshold"] == 2
    assert "strongroom_unseal_keys" not in data and "strongroom_root_token" not in data
    status = seal_status(auto)
    assert status["type"] == "pkcs11" and status["recovery_seal"] is True
    assert status["sealed"] is False and (status["t"], status["n"]) == (2, 3)
    assert_quiet(auto, PIN_A, PIN_B)


def test_unseal_runbook_feeds_nothing_to_an_auto_sealed_node(auto: Site) -> None:
    restart(auto)
    run = auto.play(PLAYBOOKS / "unseal.yml")
    assert_ok(run)
    assert seal_status(auto)["sealed"] is False
    # No key was sent: the only change-reporting tasks of unseal.yml submit keys.
    assert run.recap()["sr1"]["changed"] == 0, run.output[-3000:]


def test_unseal_runbook_says_why_an_auto_sealed_node_stays_sealed(auto: Site) -> None:
    hsm = auto.hsm  # type: ignore[attr-defined]
    moved = [hsm.delete_token("sr-a"), hsm.delete_token("sr-b")]
    try:
        restart(auto)
        run = auto.play(PLAYBOOKS / "unseal.yml", {"strongroom_ready_timeout": 3})
        assert run.returncode != 0
        said = " ".join(run.output.split())
        assert "has a pkcs11 seal and did not unseal itself within 3s; the node says:" in said
        assert "hsm_a" in said and "Recovery keys do not unseal" in said
    finally:
        for path in moved:
            hsm.restore_token(path)
    # The tokens are back: the node's retry job unseals it; unseal.yml waits for that.
    assert_ok(auto.play(PLAYBOOKS / "unseal.yml"))
    assert seal_status(auto)["sealed"] is False
    assert_quiet(auto, PIN_A, PIN_B)


def test_generate_root_with_recovery_keys(auto: Site) -> None:
    out = auto.directory / "root.vault.yml"
    run = auto.play(PLAYBOOKS / "generate-root.yml", {"strongroom_generate_root_file": str(out)})
    assert_ok(run)
    assert "with 2 recovery keys" in run.output
    token = auto.decrypt(out)["strongroom_root_token"]
    assert lookup(auto, token).json()["data"]["policies"] == ["root"]
    assert_quiet(auto, token)
    auto.api("POST", "sr1", "auth/token/revoke-self", token)


def test_rekey_recovery_keys(auto: Site) -> None:
    old = auto.secrets()["strongroom_recovery_keys"]
    run = auto.play(PLAYBOOKS / "rekey.yml", {"strongroom_rekey_shares": 4,
                                              "strongroom_rekey_threshold": 3})
    assert_ok(run)
    data = auto.secrets()
    assert len(data["strongroom_recovery_keys"]) == 4
    assert data["strongroom_recovery_threshold"] == 3
    assert not set(data["strongroom_recovery_keys"]) & set(old)
    status = seal_status(auto)
    assert (status["t"], status["n"]) == (3, 4) and status["sealed"] is False
    assert_quiet(auto, *old)
    # The new recovery keys authorize generate-root.
    out = auto.directory / "root2.vault.yml"
    assert_ok(auto.play(PLAYBOOKS / "generate-root.yml",
                        {"strongroom_generate_root_file": str(out)}))
    token = auto.decrypt(out)["strongroom_root_token"]
    auto.api("POST", "sr1", "auth/token/revoke-self", token)


def test_new_runbooks_check_their_targets() -> None:
    import yaml

    for name in ("rekey.yml", "generate-root.yml", "seal-migrate.yml"):
        plays = yaml.safe_load((PLAYBOOKS / name).read_text())
        first, second = plays[0], plays[1]
        assert first["hosts"] == "localhost", name
        assert first["tasks"][0]["ansible.builtin.include_role"]["tasks_from"] == (
            "check_inventory.yml"), name
        assert second["pre_tasks"][0]["ansible.builtin.import_role"]["tasks_from"] == (
            "check_targets.yml"), name
    assert (REPO / "roles" / "softhsm" / "tasks" / "main.yml").is_file()
