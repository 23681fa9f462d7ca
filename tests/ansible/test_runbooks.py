"""strongroom_init and the runbooks in playbooks/, run by real ansible-playbook.

The nodes are real Strongroom processes on 127.0.0.1 serving HTTPS with a certificate
from a test CA kept where the roles look for it (``<inventory>/.secrets/pki/ca.pem``);
the inventory's hosts use ansible_connection=local and every API call goes from the
controller to ``strongroom_api_addr``, as in production. Every run uses -v, and every
run's output is searched for each unseal key, the operator token and anything shaped like
a token (``hvs.``: the root token is revoked and never stored, so it is looked for by form).

Key custody: init ends with an operator token holding exactly the strongroom-operator
policy (roles/strongroom_init/files/strongroom-operator.hcl), stored in its own vaulted
file, and the root token revoked; every runbook uses the operator token.

The HA tests (step-down, the rolling upgrade's order, init of several nodes) need the
3-server Consul cluster of tests/support/consul.py and are marked ``consul``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.ansible.runbook_support import (
    VAULT_PASSWORD,
    Run,
    ansible_env,
    file_node_config,
    ha_node_config,
    run_playbook,
    start_playbook,
    vault_password_file,
    write_inventory,
    write_pki,
)
from tests.support import requires
from tests.support.consul import consul_binary, consul_cluster
from tests.support.gpg import gnupg_home
from tests.support.servers import REPO, ServerProcess, free_port, strongroom_server

requires.module("ansible")
from ansible.parsing.vault import VaultLib, VaultSecret  # noqa: E402

pytestmark = pytest.mark.timeout(240)

PLAYBOOKS = REPO / "playbooks"
RUNBOOKS = ("unseal.yml", "seal.yml", "step-down.yml", "rotate.yml", "rolling-upgrade.yml",
            "renew-token.yml", "revoke-prefix.yml")
OPERATOR_POLICY = (REPO / "roles" / "strongroom_init" / "files" / "strongroom-operator.hcl")
TOKEN_SHAPE = re.compile(r"hvs\.[A-Za-z0-9]{20,}")
# Test-only: a token with what the tests need to look at the cluster after the root token
# is gone (strongroom_init_extra_policies/_tokens, made with the root token before its
# revocation), and that lacks every capability of the operator policy but renew-self.
AUDITOR_POLICY = """\
path "sys/policies/acl/*" { capabilities = ["read"] }
path "auth/token/accessors" { capabilities = ["list", "sudo"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/roles/breakglass" { capabilities = ["create", "update"] }
path "auth/token/create/breakglass" { capabilities = ["update"] }
"""
CUSTODY_EXTRA = {"strongroom_init_extra_policies": {"test-auditor": AUDITOR_POLICY},
                 "strongroom_init_extra_tokens": {"test-auditor": {"policies": ["test-auditor"],
                                                                   "period": "1h"}}}
INIT_PLAY = """\
- name: Initialise Strongroom
  hosts: strongroom_servers
  gather_facts: false
  roles:
    - strongroom_init
"""


@dataclass
class Site:
    """An inventory directory (with its .secrets/) whose strongroom_servers are live nodes."""

    directory: Path
    inventory: Path
    env: dict[str, str]
    nodes: dict[str, ServerProcess]
    ca: str
    runs: list[Run] = field(default_factory=list)

    @property
    def init_file(self) -> Path:
        return self.directory / ".secrets" / "strongroom" / "init.vault.yml"

    def play(self, playbook: str | Path, extra: dict[str, Any] | None = None,
             env: dict[str, str] | None = None) -> Run:
        run = run_playbook(playbook, self.inventory, {**self.env, **(env or {})}, extra)
        run.name = Path(playbook).name
        self.runs.append(run)
        return run

    def timings(self) -> str:
        """One line per run (shown with pytest -s): wall and CPU seconds."""
        return "\n".join(f"  {run.name:22} {run.seconds:6.1f}s wall {run.cpu_seconds:6.1f}s cpu"
                         for run in self.runs)

    def init(self, extra: dict[str, Any] | None = None) -> Run:
        play = self.directory / "init.yml"
        play.write_text(INIT_PLAY)
        return self.play(play, extra)

    def secrets(self) -> dict[str, Any]:
        vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
        data: dict[str, Any] = yaml.safe_load(vault.decrypt(self.init_file.read_bytes()))
        return data

    @property
    def operator_file(self) -> Path:
        return self.directory / ".secrets" / "strongroom" / "operator.vault.yml"

    def token_file(self, name: str) -> Path:
        return self.directory / ".secrets" / "strongroom" / "tokens" / f"{name}.vault.yml"

    @staticmethod
    def decrypt(path: Path) -> dict[str, Any]:
        vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
        data: dict[str, Any] = yaml.safe_load(vault.decrypt(path.read_bytes()))
        return data

    def operator_token(self) -> str:
        token: str = self.decrypt(self.operator_file)["strongroom_operator_token"]
        return token

    def auditor_token(self) -> str:
        token: str = self.decrypt(self.token_file("test-auditor"))["strongroom_token"]
        return token

    def secret_strings(self) -> list[str]:
        """Every key (base64 and hex) and the operator token: none may appear in any output."""
        keys = self.secrets()["strongroom_unseal_keys"] if self.init_file.exists() else []
        tokens = [self.operator_token()] if self.operator_file.exists() else []
        return [*tokens, *keys, *(base64.b64decode(k).hex() for k in keys)]

    def assert_no_secret_in_output(self) -> None:
        secrets = self.secret_strings()
        for run in self.runs:
            for secret in secrets:
                assert secret not in run.output, "a secret appeared in ansible's output"
            assert not TOKEN_SHAPE.search(run.output), "a token appeared in ansible's output"

    def health(self, name: str) -> int:
        return requests.get(self.nodes[name].url + "/v1/sys/health", verify=self.ca,
                            timeout=5).status_code

    def api(self, method: str, name: str, path: str, token: str | None = None,
            **kwargs: Any) -> requests.Response:
        """A call with the operator token (the root token is revoked after init)."""
        token = self.operator_token() if token is None else token
        return requests.request(method, f"{self.nodes[name].url}/v1/{path}", verify=self.ca,
                                headers={"X-Vault-Token": token}, timeout=10, **kwargs)

    def key_term(self, name: str = "sr1") -> int:
        term: int = self.api("GET", name, "sys/key-status").json()["term"]
        return term

    def token_entries(self, name: str = "sr1") -> list[dict[str, Any]]:
        """Every live token's lookup (through the test-only auditor token)."""
        auditor = self.auditor_token()
        listed = self.api("LIST", name, "auth/token/accessors", auditor)
        assert listed.status_code == 200, listed.text
        entries = []
        for accessor in listed.json()["data"]["keys"]:
            looked = self.api("POST", name, "auth/token/lookup-accessor", auditor,
                              json={"accessor": accessor})
            assert looked.status_code == 200, looked.text
            entries.append(looked.json()["data"])
        return entries


def new_site(directory: Path, nodes: dict[str, ServerProcess], ca: Path,
             addr_from_defaults: bool = False) -> Site:
    inventory = write_inventory(directory, {name: node.url for name, node in nodes.items()},
                                addr_from_defaults=addr_from_defaults)
    env = ansible_env(directory, vault_password_file(directory))
    return Site(directory, inventory, env, nodes, str(ca))


def assert_ok(run: Run) -> None:
    assert run.returncode == 0, run.output[-6000:]


# -- one node on file storage ------------------------------------------------------------


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("runbooks")
    pki = write_pki(directory)
    node_dir = directory / "node"
    node_dir.mkdir()
    with strongroom_server(node_dir, file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(directory, {"sr1": node}, pki.ca)
        yield site
        print(f"\nansible-playbook runs (one node):\n{site.timings()}")


@dataclass
class InitRuns:
    first: Run
    file_after_first: bytes
    operator_after_first: bytes
    second: Run


@pytest.fixture(scope="module")
def initialized(single: Site) -> InitRuns:
    first = single.init(CUSTODY_EXTRA)
    assert_ok(first)
    written = single.init_file.read_bytes()
    operator = single.operator_file.read_bytes()
    # The second run gets no vault password for the keys' file and no root token: on an
    # initialised, unsealed cluster with its operator token stored it needs neither.
    second = single.init(CUSTODY_EXTRA)
    assert_ok(second)
    return InitRuns(first, written, operator, second)


def test_init_initialises_once_and_keeps_the_keys_vaulted(single: Site,
                                                          initialized: InitRuns) -> None:
    assert initialized.first.recap()["sr1"]["changed"] > 0
    health = requests.get(single.nodes["sr1"].url + "/v1/sys/health", verify=single.ca,
                          timeout=5).json()
    assert health["initialized"] is True and health["sealed"] is False

    # Stored only ansible-vault encrypted, owner-only, in an owner-only directory.
    raw = single.init_file.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.2;AES256;strongroom\n")
    assert single.init_file.stat().st_mode & 0o777 == 0o600
    assert single.init_file.parent.stat().st_mode & 0o777 == 0o700
    data = single.secrets()
    assert len(data["strongroom_unseal_keys"]) == 5
    assert data["strongroom_unseal_threshold"] == 3
    # The root token was there only until it was revoked, at the end of the same run.
    assert "strongroom_root_token" not in data

    # The second run changes nothing: no re-init, no second operator token, files untouched.
    assert initialized.second.recap()["sr1"]["changed"] == 0, initialized.second.output
    assert "skipping: [sr1]" in initialized.second.output.split("Call sys/init]")[1][:300]
    made = initialized.second.output.split("Create the operator token]")
    assert len(made) == 1 or made[1].split("\n", 2)[1].startswith("skipping: [sr1]"), made[-1][:300]
    assert raw == initialized.file_after_first
    assert single.operator_file.read_bytes() == initialized.operator_after_first
    single.assert_no_secret_in_output()


def test_init_makes_the_operator_token_with_exactly_the_runbooks_policy(
        single: Site, initialized: InitRuns) -> None:
    # Its own file, ansible-vault encrypted under its own vault id, owner-only.
    raw = single.operator_file.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.2;AES256;strongroom-operator\n")
    assert single.operator_file.stat().st_mode & 0o777 == 0o600
    stored = single.decrypt(single.operator_file)
    assert stored["strongroom_operator_token_policies"] == ["strongroom-operator"]

    # The token: orphan, periodic, renewable, exactly one policy (no "default").
    renewed = single.api("PUT", "sr1", "auth/token/renew-self", json={})
    assert renewed.status_code == 200, renewed.text
    auth = renewed.json()["auth"]
    assert auth["policies"] == auth["token_policies"] == ["strongroom-operator"]
    assert auth["orphan"] is True and auth["renewable"] is True
    assert auth["lease_duration"] == 768 * 3600
    # The policy the server holds is the role's file, word for word.
    policy = single.api("GET", "sr1", "sys/policies/acl/strongroom-operator",
                        single.auditor_token())
    assert policy.status_code == 200, policy.text
    assert policy.json()["data"]["policy"] == OPERATOR_POLICY.read_text().rstrip("\n")
    paths = re.findall(r'^path "([^"]+)" \{\n  capabilities = (\[.*\])',
                       OPERATOR_POLICY.read_text(), re.MULTILINE)
    assert {path: json.loads(caps) for path, caps in paths} == {
        "sys/seal": ["update", "sudo"],
        "sys/step-down": ["update", "sudo"],
        "sys/rotate": ["update", "sudo"],
        "sys/key-status": ["read"],
        "sys/leases/revoke-prefix/*": ["update", "sudo"],
        "sys/leases/revoke-force/*": ["update", "sudo"],
        "sys/leases/lookup/*": ["list", "sudo"],
        "auth/token/renew-self": ["update"],
    }


def test_root_token_is_revoked_at_the_end_of_init(single: Site, initialized: InitRuns) -> None:
    """No live token has the root policy; the live ones are the operator's and the test's."""
    entries = single.token_entries()
    assert sorted(tuple(e["policies"]) for e in entries) == [
        ("strongroom-operator",), ("test-auditor",)]
    assert all(e["orphan"] for e in entries)


def test_operator_token_can_do_nothing_outside_the_runbooks(single: Site,
                                                            initialized: InitRuns) -> None:
    refused = [
        ("GET", "secret/data/app", None),
        ("GET", "cubbyhole/x", None),  # not even "default"'s paths
        ("GET", "auth/token/lookup-self", None),
        ("POST", "auth/token/create", {"policies": ["strongroom-operator"]}),
        ("POST", "auth/token/create-orphan", {}),
        ("PUT", "sys/policies/acl/mine", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
        ("GET", "sys/policies/acl/strongroom-operator", None),
        ("GET", "sys/mounts", None),
        ("POST", "sys/mounts/kv", {"type": "kv"}),
        ("POST", "sys/auth/userpass", {"type": "userpass"}),
        ("LIST", "auth/token/accessors", None),
        ("PUT", "sys/revoke-prefix/auth/token/", None),
    ]
    for method, path, body in refused:
        reply = single.api(method, "sr1", path, json=body)
        assert reply.status_code == 403, (method, path, reply.status_code, reply.text)
    assert single.health("sr1") == 200


def test_seal_then_unseal_round_trip(single: Site, initialized: InitRuns) -> None:
    sealed = single.play(PLAYBOOKS / "seal.yml", {"strongroom_seal_confirm": True})
    assert_ok(sealed)
    assert single.health("sr1") == 503
    unsealed = single.play(PLAYBOOKS / "unseal.yml")
    assert_ok(unsealed)
    assert single.health("sr1") == 200
    assert "sr1 is unsealed and active" in unsealed.output
    # The vaulted file's keys unseal the node without Ansible, too.
    assert single.api("PUT", "sr1", "sys/seal").status_code == 204
    data = single.secrets()
    for key in data["strongroom_unseal_keys"][: data["strongroom_unseal_threshold"]]:
        status = requests.put(single.nodes["sr1"].url + "/v1/sys/unseal", json={"key": key},
                              verify=single.ca, timeout=10).json()
    assert status["sealed"] is False
    single.assert_no_secret_in_output()


# roles/strongroom's restart handler includes strongroom_ops' unseal.yml (and with it
# load_secrets.yml) by path: what a handler includes must stay free of nested blocks.
HANDLER_PLAY = """\
- name: Unseal from a handler, as the strongroom role's restart handler does
  hosts: strongroom_servers
  gather_facts: false
  roles:
    - strongroom_ops
  tasks:
    - name: Notify the handler
      ansible.builtin.debug:
        msg: restart
      changed_when: true
      notify: Unseal from a handler
  handlers:
    - name: Unseal from a handler
      ansible.builtin.include_tasks: "{tasks}/unseal.yml"
"""


def test_unseal_from_a_handler(single: Site, initialized: InitRuns) -> None:
    play = single.directory / "handler.yml"
    play.write_text(HANDLER_PLAY.format(tasks=REPO / "roles" / "strongroom_ops" / "tasks"))
    assert single.api("PUT", "sr1", "sys/seal").status_code == 204
    run = single.play(play)
    assert_ok(run)
    assert single.health("sr1") == 200
    single.assert_no_secret_in_output()


def test_rotate_bumps_the_key_term(single: Site, initialized: InitRuns) -> None:
    before = single.key_term()
    run = single.play(PLAYBOOKS / "rotate.yml")
    assert_ok(run)
    after = single.key_term()
    assert after == before + 1
    assert f"term {before} -> {after}" in run.output
    single.assert_no_secret_in_output()


def test_renew_token_runbook_renews_the_operator_token(single: Site,
                                                       initialized: InitRuns) -> None:
    run = single.play(PLAYBOOKS / "renew-token.yml")
    assert_ok(run)
    assert (f"Operator token renewed through sr1: valid for {768 * 3600} s from now "
            "(policies strongroom-operator)") in " ".join(run.output.split())
    single.assert_no_secret_in_output()


def test_revoke_prefix_revokes_every_lease_under_it_and_nothing_else(
        single: Site, initialized: InitRuns) -> None:
    """Break-glass: five tokens issued through one role are revoked; their issuer, the
    operator token and a lease outside the prefix are not."""
    auditor = single.auditor_token()
    role = single.api("POST", "sr1", "auth/token/roles/breakglass", auditor,
                      json={"token_period": "1h"})
    assert role.status_code == 204, role.text
    made = []
    for _ in range(5):
        reply = single.api("POST", "sr1", "auth/token/create/breakglass", auditor, json={})
        assert reply.status_code == 200, reply.text
        made.append(reply.json()["auth"]["client_token"])
        assert single.api("PUT", "sr1", "auth/token/renew-self", made[-1],
                          json={}).status_code == 200
    run = single.play(PLAYBOOKS / "revoke-prefix.yml",
                      {"strongroom_revoke_prefix": "auth/token/create/breakglass/"})
    assert_ok(run)
    assert ("Revoked every lease under auth/token/create/breakglass through sr1 (5 entries "
            "listed under it before, none after)") in " ".join(run.output.split())
    for token in made:  # (the tokens' policy allows renew-self: 200 while they live)
        assert single.api("PUT", "sr1", "auth/token/renew-self", token, json={}).status_code == 403
    assert single.api("PUT", "sr1", "auth/token/renew-self", auditor, json={}).status_code == 200
    assert single.api("PUT", "sr1", "auth/token/renew-self", json={}).status_code == 200
    # Run again: nothing left to revoke is not an error.
    again = single.play(PLAYBOOKS / "revoke-prefix.yml",
                        {"strongroom_revoke_prefix": "auth/token/create/breakglass"})
    assert_ok(again)
    assert "(0 entries listed under it before, none after)" in " ".join(again.output.split())
    single.assert_no_secret_in_output()
    for token in made:
        assert token not in run.output


def test_revoke_prefix_refuses_an_empty_or_odd_prefix(single: Site,
                                                      initialized: InitRuns) -> None:
    auditor = single.auditor_token()
    single.api("POST", "sr1", "auth/token/roles/breakglass", auditor, json={})
    child = single.api("POST", "sr1", "auth/token/create/breakglass", auditor, json={})
    assert child.status_code == 200, child.text
    token = child.json()["auth"]["client_token"]
    assert single.api("PUT", "sr1", "auth/token/renew-self", token, json={}).status_code == 200
    cases: list[dict[str, Any]] = [{}, {"strongroom_revoke_prefix": ""},
                                   {"strongroom_revoke_prefix": "/"},
                                   {"strongroom_revoke_prefix": " "},
                                   {"strongroom_revoke_prefix": "auth/../sys"}]
    procs = [start_playbook(PLAYBOOKS / "revoke-prefix.yml", single.inventory, single.env,
                            extra) for extra in cases]
    for extra, proc in zip(cases, procs, strict=True):
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode != 0, (extra, output)
        assert "Say which leases to revoke" in output, (extra, output)
        assert "Load the operator token" not in output  # refused before any call
    assert single.api("PUT", "sr1", "auth/token/renew-self", token, json={}).status_code == 200


def test_runbooks_fail_with_a_token_lacking_the_operator_policy(single: Site,
                                                                initialized: InitRuns) -> None:
    """A valid, renewable token without the policy: refused by the server, nothing changed."""
    other = {"strongroom_operator_token": single.auditor_token(),
             "strongroom_seal_confirm": True}
    term = single.key_term()
    cases = [("rotate.yml", "Reading sys/key-status through sr1 failed (status 403"),
             ("seal.yml", "Sealing sr1 failed (status 403")]
    procs = [start_playbook(PLAYBOOKS / name, single.inventory, single.env, other)
             for name, _ in cases]
    for (name, message), proc in zip(cases, procs, strict=True):
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode != 0, (name, output)
        assert message in " ".join(output.split()), (name, output)
        assert not TOKEN_SHAPE.search(output)
    assert single.health("sr1") == 200
    assert single.key_term() == term


def test_every_runbook_checks_its_targets() -> None:
    """Each runbook first checks the inventory, then that its play hosts are Strongroom's."""
    for name in RUNBOOKS:
        plays = yaml.safe_load((PLAYBOOKS / name).read_text())
        first, second = plays[0], plays[1]
        assert first["hosts"] == "localhost", name
        assert first["tasks"][0]["ansible.builtin.include_role"]["tasks_from"] == (
            "check_inventory.yml"), name
        assert second["hosts"] == ("{{ strongroom_runbook_hosts | default(strongroom_servers_group"
                                   " | default('strongroom_servers')) }}")
        assert second["pre_tasks"][0]["ansible.builtin.include_role"]["tasks_from"] == (
            "check_targets.yml"), name


def test_refusals(single: Site, initialized: InitRuns) -> None:
    """Wrong group, missing confirmation or input, bad settings: refused before any change."""
    # A cluster's secrets kept outside the inventory (strongroom_secrets_dir): its CA is
    # there, its init file is not, so the runbook must look there and say so.
    elsewhere = single.directory / "cluster-secrets"
    (elsewhere / "pki").mkdir(parents=True, exist_ok=True)
    (elsewhere / "pki" / "ca.pem").write_bytes(Path(single.ca).read_bytes())
    cases: list[tuple[Path, dict[str, Any], str]] = [
        # The group name is a variable: the checks use it, not a hard-coded name.
        (PLAYBOOKS / "seal.yml", {"strongroom_servers_group": "consul_servers",
                                  "strongroom_runbook_hosts": "sr1",
                                  "strongroom_seal_confirm": True},
         "only runs against the consul_servers group (1 hosts in this inventory). "
         "The pattern 'sr1' matches hosts outside it: sr1."),
        (PLAYBOOKS / "rotate.yml", {"strongroom_secrets_dir": str(elsewhere)},
         f"{elsewhere}/strongroom/operator.vault.yml does not exist on the controller"),
        # A revoked or expired operator token: refused at its renewal, before any change.
        (PLAYBOOKS / "seal.yml", {"strongroom_operator_token": "not-a-valid-token",
                                  "strongroom_seal_confirm": True},
         "The operator token was refused by sr1 (auth/token/renew-self: status 403"),
        # restore.yml: a confirmation, and Strongroom stopped or sealed, before Consul is touched.
        (PLAYBOOKS / "restore.yml", {"snapshot": "/nonexistent.snap"},
         "run with -e consul_restore_confirm=true to go ahead"),
        (PLAYBOOKS / "restore.yml", {"snapshot": "/nonexistent.snap",
                                     "consul_restore_confirm": True},
         "Not stopped or sealed: sr1 (active)."),
        (PLAYBOOKS / "seal.yml", {"strongroom_runbook_hosts": "consul_servers",
                                  "strongroom_seal_confirm": True},
         "only runs against the strongroom_servers group (1 hosts in this inventory). "
         "The pattern 'consul_servers' matches hosts outside it: consul1."),
        (PLAYBOOKS / "seal.yml", {}, "Run with -e strongroom_seal_confirm=true"),
        (PLAYBOOKS / "rolling-upgrade.yml", {}, "Say what to upgrade to"),
        (single.directory / "init.yml", {"strongroom_init_secret_threshold": 6},
         "strongroom_init_secret_threshold (6) between 1 and the number of shares"),
    ]
    term = single.key_term()
    # Side by side: each run stops in its first tasks, so the cost is ansible's start-up.
    procs = [start_playbook(playbook, single.inventory, single.env, extra)
             for playbook, extra, _ in cases]
    for (playbook, _, message), proc in zip(cases, procs, strict=True):
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode != 0, (playbook, output)
        assert message in " ".join(output.split()), (playbook, output)
    assert single.health("sr1") == 200
    assert single.key_term() == term


def test_init_refuses_to_replace_keys_of_an_earlier_init(tmp_path: Path) -> None:
    """An uninitialised node next to a controller file that holds keys: stop, touch nothing."""
    pki = write_pki(tmp_path)
    (tmp_path / "node").mkdir()
    with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(tmp_path, {"sr1": node}, pki.ca)
        site.init_file.parent.mkdir(parents=True)
        site.init_file.write_text("older keys\n")
        run = site.init()
        assert run.returncode != 0
        assert "already holds the output of an earlier init" in " ".join(run.output.split())
        assert requests.get(node.url + "/v1/sys/init", verify=str(pki.ca),
                            timeout=5).json() == {"initialized": False}
        assert site.init_file.read_text() == "older keys\n"

        # unseal.yml has nothing to unseal and says why, without waiting out its timeout.
        unseal = site.play(PLAYBOOKS / "unseal.yml")
        assert unseal.returncode != 0
        assert "An uninitialised cluster needs the strongroom_init role" in " ".join(
            unseal.output.split())
        assert "RETRYING" not in unseal.output


def test_init_with_pgp_keys_then_keyholders_unseal(tmp_path: Path) -> None:
    """PGP mode: only ciphertexts are stored; the holders' decrypted shares unseal."""
    with gnupg_home() as gpg:
        holders = [gpg.generate(name) for name in ("alice", "bob", "carol")]
        operator = gpg.generate("ops")
        pki = write_pki(tmp_path)
        (tmp_path / "node").mkdir()
        with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                               verify=str(pki.ca)) as node:
            site = new_site(tmp_path, {"sr1": node}, pki.ca)
            settings = {"strongroom_init_secret_shares": 3,
                        "strongroom_init_secret_threshold": 2,
                        "strongroom_init_pgp_keys": [h.b64 for h in holders],
                        "strongroom_init_pgp_keyholders": ["alice", "bob", "carol"],
                        "strongroom_init_root_token_pgp_key": operator.b64}
            run = site.init(settings)
            assert_ok(run)
            assert "The nodes stay sealed" in run.output
            # No serving node and no root token yet: the custody step says what is missing.
            assert "The operator token is not made yet" in run.output
            assert site.health("sr1") == 503
            assert not site.init_file.exists() and not site.operator_file.exists()
            stored = site.init_file.parent / "init.pgp.yml"
            assert stored.stat().st_mode & 0o777 == 0o600
            data = yaml.safe_load(stored.read_text())
            assert len(data["strongroom_unseal_keys_pgp"]) == 3
            assert data["strongroom_unseal_keyholders"] == ["alice", "bob", "carol"]
            assert data["strongroom_unseal_threshold"] == 2

            # Two holders decrypt their share (echo KEY | base64 -d | gpg -d) and give
            # them to unseal.yml as extra vars (there is no vaulted file to read).
            shares = [gpg.decrypt_b64(k) for k in data["strongroom_unseal_keys_pgp"][1:]]
            token = gpg.decrypt_b64(data["strongroom_root_token_pgp"])
            unseal = site.play(PLAYBOOKS / "unseal.yml", {"strongroom_unseal_keys": shares})
            assert_ok(unseal)
            assert site.health("sr1") == 200
            me = requests.get(node.url + "/v1/auth/token/lookup-self", verify=str(pki.ca),
                              headers={"X-Vault-Token": token}, timeout=10)
            assert me.json()["data"]["policies"] == ["root"]
            # The root token's holder finishes the init (playbooks/init.yml -e @root.yml).
            finish = site.play(PLAYBOOKS / "init.yml", {**settings, "strongroom_root_token": token})
            assert_ok(finish)
            me = requests.get(node.url + "/v1/auth/token/lookup-self", verify=str(pki.ca),
                              headers={"X-Vault-Token": token}, timeout=10)
            assert me.status_code == 403
            assert site.api("PUT", "sr1", "auth/token/renew-self").json()["auth"][
                "policies"] == ["strongroom-operator"]
            after = yaml.safe_load(stored.read_text())
            assert "strongroom_root_token_pgp" not in after
            assert after["strongroom_unseal_keys_pgp"] == data["strongroom_unseal_keys_pgp"]
            # The runbooks work with the operator token; a rerun needs no root token.
            assert_ok(site.play(PLAYBOOKS / "seal.yml", {"strongroom_seal_confirm": True}))
            assert site.health("sr1") == 503
            again = site.play(PLAYBOOKS / "init.yml", settings)
            assert_ok(again)
            assert again.recap()["sr1"]["changed"] == 0
            for secret in [token, *shares, site.operator_token()]:
                assert all(secret not in r.output for r in site.runs), "a secret leaked"
            site.assert_no_secret_in_output()


def init_keeping_the_root_token(site: Site, url: str, ca: Path) -> tuple[str, list[str], VaultLib]:
    """Initialise (1 share) outside Ansible and keep the root token in the vaulted init
    file, as runs before the operator token did (or one that failed before revoking)."""
    reply = requests.put(url + "/v1/sys/init", verify=str(ca), timeout=30,
                         json={"secret_shares": 1, "secret_threshold": 1}).json()
    root, keys = reply["root_token"], reply["keys_base64"]
    vault = VaultLib([("strongroom", VaultSecret(VAULT_PASSWORD.encode()))])
    site.init_file.parent.mkdir(parents=True, mode=0o700)
    site.init_file.write_bytes(vault.encrypt(yaml.safe_dump(
        {"strongroom_unseal_keys": keys, "strongroom_unseal_threshold": 1,
         "strongroom_root_token": root}), vault_id="strongroom"))
    return root, keys, vault


def test_init_hands_an_earlier_cluster_over_to_the_operator_token(tmp_path: Path) -> None:
    """A cluster initialised before operator tokens (root token in the vaulted init file):
    one run of init makes the operator token, revokes the root token, and rewrites the
    init file with the keys alone; the keys still unseal."""
    pki = write_pki(tmp_path)
    (tmp_path / "node").mkdir()
    with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(tmp_path, {"sr1": node}, pki.ca)
        root, keys, vault = init_keeping_the_root_token(site, node.url, pki.ca)
        run = site.init()  # unseals with the kept keys, then hands over
        assert_ok(run)
        assert site.health("sr1") == 200
        me = requests.get(node.url + "/v1/auth/token/lookup-self", verify=str(pki.ca),
                          headers={"X-Vault-Token": root}, timeout=10)
        assert me.status_code == 403, me.text
        assert site.secrets() == {"strongroom_unseal_keys": keys,
                                  "strongroom_unseal_threshold": 1}
        assert site.init_file.stat().st_mode & 0o777 == 0o600
        assert not list(site.init_file.parent.glob("*.new"))
        assert site.api("GET", "sr1", "sys/key-status").status_code == 200
        # Without the root token, a later run with only the kept keys unseals a sealed node.
        assert site.api("PUT", "sr1", "sys/seal").status_code == 204
        again = site.init()
        assert_ok(again)
        assert site.health("sr1") == 200
        assert all(root not in r.output for r in site.runs)
        site.assert_no_secret_in_output()


def test_a_root_token_left_by_a_failed_handover_is_revoked_on_the_next_run(
        tmp_path: Path) -> None:
    """A run that stored the operator token and failed before revoking the root token
    (simulated: operator file present, root token still in the init file) must not leave
    the root token valid and kept for ever: the next init run revokes and drops it."""
    pki = write_pki(tmp_path)
    (tmp_path / "node").mkdir()
    with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(tmp_path, {"sr1": node}, pki.ca)
        root, keys, vault = init_keeping_the_root_token(site, node.url, pki.ca)
        stored = vault.encrypt(yaml.safe_dump({"strongroom_operator_token": "stored-earlier"}),
                               vault_id="strongroom")
        site.operator_file.write_bytes(stored)
        run = site.init()
        assert_ok(run)
        me = requests.get(node.url + "/v1/auth/token/lookup-self", verify=str(pki.ca),
                          headers={"X-Vault-Token": root}, timeout=10)
        assert me.status_code == 403, me.text
        assert site.secrets() == {"strongroom_unseal_keys": keys,
                                  "strongroom_unseal_threshold": 1}
        assert site.operator_file.read_bytes() == stored  # not made a second time
        assert root not in run.output


def test_a_kept_root_token_other_than_the_one_given_is_revoked_too(tmp_path: Path) -> None:
    """Init finished with -e strongroom_root_token while the init file keeps another root
    token: both are revoked, and the file keeps the keys alone."""
    pki = write_pki(tmp_path)
    (tmp_path / "node").mkdir()
    with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(tmp_path, {"sr1": node}, pki.ca)
        kept, keys, _ = init_keeping_the_root_token(site, node.url, pki.ca)
        requests.put(node.url + "/v1/sys/unseal", verify=str(pki.ca), timeout=30,
                     json={"key": keys[0]}).raise_for_status()
        given = requests.post(node.url + "/v1/auth/token/create", verify=str(pki.ca),
                              timeout=30, headers={"X-Vault-Token": kept},
                              json={"policies": ["root"]}).json()["auth"]["client_token"]
        run = site.init({"strongroom_root_token": given})
        assert_ok(run)
        for token in (given, kept):
            me = requests.get(node.url + "/v1/auth/token/lookup-self", verify=str(pki.ca),
                              headers={"X-Vault-Token": token}, timeout=10)
            assert me.status_code == 403, me.text
        assert site.secrets() == {"strongroom_unseal_keys": keys,
                                  "strongroom_unseal_threshold": 1}
        assert kept not in run.output and given not in run.output


def test_operator_token_under_its_own_password(tmp_path: Path) -> None:
    """strongroom_operator_vault_password_file: whoever runs the runbooks needs that
    password only, not the one that protects the unseal keys."""
    pki = write_pki(tmp_path)
    (tmp_path / "node").mkdir()
    operator_password = tmp_path / "operator-password"
    operator_password.write_text("a different operator password\n")
    operator_password.chmod(0o600)
    with strongroom_server(tmp_path / "node", file_node_config(pki), scheme="https",
                           verify=str(pki.ca)) as node:
        site = new_site(tmp_path, {"sr1": node}, pki.ca)
        own = {"strongroom_operator_vault_password_file": str(operator_password)}
        assert_ok(site.init({"strongroom_init_secret_shares": 1,
                             "strongroom_init_secret_threshold": 1, **own}))
        raw = site.operator_file.read_bytes()
        assert raw.startswith(b"$ANSIBLE_VAULT;1.2;AES256;strongroom-operator\n")
        vault = VaultLib([("x", VaultSecret(b"a different operator password"))])
        token = yaml.safe_load(vault.decrypt(raw))["strongroom_operator_token"]
        with pytest.raises(Exception, match="[Dd]ecrypt"):
            site.decrypt(site.operator_file)  # not under the keys' password
        # The operator's environment names only the operator password: the runbook needs
        # nothing else (the keys' password file is not given at all).
        run = site.play(PLAYBOOKS / "rotate.yml",
                        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(operator_password)})
        assert_ok(run)
        for done in site.runs:
            assert token not in done.output and not TOKEN_SHAPE.search(done.output)


def test_production_example_defaults_to_pgp_shares_for_named_keyholders() -> None:
    example = REPO / "inventories" / "production-example" / "group_vars"
    text = (example / "strongroom_servers.yml").read_text()
    settings = yaml.safe_load(text)
    shares = settings["strongroom_init_secret_shares"]
    assert len(settings["strongroom_init_pgp_keys"]) == shares
    assert len(settings["strongroom_init_pgp_keyholders"]) == shares
    assert settings["strongroom_init_root_token_pgp_key"]
    for holder, key in zip(settings["strongroom_init_pgp_keyholders"],
                           settings["strongroom_init_pgp_keys"], strict=True):
        assert f"/pgp/{holder}.b64" in key


# -- two nodes on Consul (active/standby) --------------------------------------------------

# The per-host upgrade (roles/strongroom tasks_from upgrade.yml) installs a wheel and
# restarts a systemd service, which these local nodes do not have: this stand-in reports
# the node's role when its turn comes; the runbook then waits for the node
# (wait_ready.yml) as it does after a real upgrade.
STAND_IN_UPGRADE = """\
---
- name: Read the node's health
  ansible.builtin.include_role:
    name: strongroom_ops
    tasks_from: health.yml

- name: Report the turn
  ansible.builtin.debug:
    msg: >-
      TURN {{ inventory_hostname }} {{ 'active' if strongroom_health.active else 'standby' }}
      {{ strongroom_version }}
"""


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if consul_binary() is None:
        requires.missing("consul", "scripts/install-consul.sh")
    directory = tmp_path_factory.mktemp("runbooks-ha")
    pki = write_pki(directory)
    with consul_cluster(directory) as consul, ExitStack() as stack:
        prefix = f"strongroom-runbooks-{directory.name}/"
        token = consul.make_token(prefix)
        nodes = {}
        for index, name in enumerate(("sr1", "sr2")):
            node_dir = directory / name
            node_dir.mkdir()
            config = ha_node_config(pki, consul.host_ports[index], prefix, token, free_port())
            nodes[name] = stack.enter_context(strongroom_server(
                node_dir, config, scheme="https", verify=str(pki.ca)))
        # strongroom_api_addr from the role defaults here (the single-node site sets it).
        site = new_site(directory, nodes, pki.ca, addr_from_defaults=True)
        # One share here (the single-node tests use the default 5/3): each simulated
        # restart of the rolling upgrade then takes one unseal call.
        assert_ok(site.init({"strongroom_init_secret_shares": 1,
                             "strongroom_init_secret_threshold": 1, **CUSTODY_EXTRA}))
        yield site
        print(f"\nansible-playbook runs (HA):\n{site.timings()}")


def roles(site: Site) -> dict[str, str]:
    names = {200: "active", 429: "standby", 503: "sealed"}
    return {name: names.get(site.health(name), "?") for name in site.nodes}


@pytest.mark.consul
def test_init_unseals_every_ha_node(ha: Site) -> None:
    assert sorted(roles(ha).values()) == ["active", "standby"]
    assert len(ha.secrets()["strongroom_unseal_keys"]) == 1
    ha.assert_no_secret_in_output()


@pytest.mark.consul
def test_step_down_refused_to_a_token_lacking_the_operator_policy(ha: Site) -> None:
    before = roles(ha)
    active = next(name for name, role in before.items() if role == "active")
    run = ha.play(PLAYBOOKS / "step-down.yml",
                  {"strongroom_operator_token": ha.auditor_token()})
    assert run.returncode != 0
    assert f"Stepping down {active} failed (status 403" in " ".join(run.output.split())
    assert roles(ha) == before
    ha.assert_no_secret_in_output()


@pytest.mark.consul
def test_step_down_moves_the_active_node(ha: Site) -> None:
    before = roles(ha)
    run = ha.play(PLAYBOOKS / "step-down.yml")
    assert_ok(run)
    after = roles(ha)
    old = next(name for name, role in before.items() if role == "active")
    new = next(name for name, role in after.items() if role == "active")
    assert new != old and after[old] == "standby", (before, after)
    assert f"The active node moved from {old} to {new}" in run.output
    ha.assert_no_secret_in_output()


@pytest.mark.consul
def test_rolling_upgrade_standbys_first_active_last(ha: Site, tmp_path: Path) -> None:
    stand_in = tmp_path / "roles" / "strongroom" / "tasks"
    stand_in.mkdir(parents=True)
    (stand_in / "upgrade.yml").write_text(STAND_IN_UPGRADE)
    before = roles(ha)
    active = next(name for name, role in before.items() if role == "active")
    standby = next(name for name, role in before.items() if role == "standby")
    run = ha.play(PLAYBOOKS / "rolling-upgrade.yml",
                  {"strongroom_version": "9.9.9"},
                  env={"ANSIBLE_ROLES_PATH": f"{tmp_path / 'roles'}:{REPO / 'roles'}"})
    assert_ok(run)
    # The standby first; the active node last, and no longer active when its turn came.
    turns = re.findall(r'"msg": "TURN (\S+ \S+ \S+)"', run.output)
    assert turns == [f"{standby} standby 9.9.9", f"{active} standby 9.9.9"], run.output
    assert sorted(roles(ha).values()) == ["active", "standby"]
    ha.assert_no_secret_in_output()


@pytest.mark.consul
def test_seal_then_unseal_every_ha_node(ha: Site) -> None:
    """seal.yml loads (and renews) the operator token through a standby first."""
    sealed = ha.play(PLAYBOOKS / "seal.yml", {"strongroom_seal_confirm": True})
    assert_ok(sealed)
    assert roles(ha) == {"sr1": "sealed", "sr2": "sealed"}
    assert_ok(ha.play(PLAYBOOKS / "unseal.yml"))
    assert sorted(roles(ha).values()) == ["active", "standby"]
    ha.assert_no_secret_in_output()


# One host loaded the token earlier in the run, the others not: each must load its own.
PARTLY_LOADED_PLAY = """\
- name: Load the operator token on one host, then on all
  hosts: strongroom_servers
  gather_facts: false
  tasks:
    - name: Load it on the first host only
      ansible.builtin.include_role:
        name: strongroom_ops
        tasks_from: load_secrets.yml
      vars:
        strongroom_ops_secrets_needed: token
      when: inventory_hostname == ansible_play_hosts[0]

    - name: Then on every host (the first has it already)
      ansible.builtin.include_role:
        name: strongroom_ops
        tasks_from: load_secrets.yml
      vars:
        strongroom_ops_secrets_needed: token

    - name: Every host has it
      ansible.builtin.assert:
        that: strongroom_ops_token | length > 0
        quiet: true
"""


@pytest.mark.consul
def test_token_loads_on_hosts_that_lack_it_when_the_first_has_it(ha: Site) -> None:
    play = ha.directory / "partly-loaded.yml"
    play.write_text(PARTLY_LOADED_PLAY)
    assert_ok(ha.play(play))
    ha.assert_no_secret_in_output()
