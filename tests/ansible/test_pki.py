"""Issue #10: separate CAs for Consul and Strongroom, no regeneration against a running
cluster, renewal before expiry.

The roles' own task files run with ansible-playbook on the controller (connection local,
every host path under tmp_path); nothing here needs a test host. What a running agent or
node serves after a renewal is checked by the Molecule scenarios (default: Strongroom,
ha: Consul's SIGHUP reload).
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.runbook_support import (
    ansible_env,
    playbook_args,
    run_playbook,
    vault_password_file,
)
from tests.support import requires

requires.module("ansible")
requires.module("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

pytestmark = pytest.mark.timeout(240)

USER = getpass.getuser()
GROUP = grp.getgrgid(os.getgid()).gr_name


def inventory(directory: Path, hosts: list[str]) -> Path:
    path = directory / "hosts.yml"
    path.write_text(json.dumps({"all": {"hosts": {name: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ansible_host": "127.0.0.1", "host_root": str(directory / "hosts" / name),
    } for name in hosts}}}))
    return path


# Every path the roles would use on a host is moved under host_root; the service accounts
# are the test's own user.
PLAY = """\
- name: Role task files on local hosts
  hosts: all
  gather_facts: false
  vars:
    strongroom_secrets_dir: "{{{{ playbook_dir }}}}/secrets"
    strongroom_tls_dir: "{{{{ host_root }}}}/etc/strongroom/tls"
    strongroom_user: {user}
    strongroom_group: {group}
    strongroom_storage: consul
    consul_config_dir: "{{{{ host_root }}}}/etc/consul.d"
    consul_data_dir: "{{{{ host_root }}}}/var/lib/consul"
    consul_user: {user}
    consul_group: {group}
  tasks:
{tasks}
    # The consul role's TLS step notifies its restart handler on a first install: there is
    # no agent to restart here.
    - name: End before the handlers
      ansible.builtin.meta: end_play
"""

CONSUL_TLS = """\
    - name: Consul's TLS step
      ansible.builtin.include_role:
        name: consul
        tasks_from: tls.yml
"""
CONSUL_GOSSIP = """\
    - name: Consul's gossip key and configuration
      ansible.builtin.include_role:
        name: consul
        tasks_from: config.yml
"""
STRONGROOM_TLS = """\
    - name: Strongroom's TLS step
      ansible.builtin.include_role:
        name: strongroom
        tasks_from: tls.yml
"""


def play(tmp_path: Path, hosts: list[str], *tasks: str, extra: dict[str, object] | None = None,
         check: bool = False, limit: str = "") -> tuple[int, str]:
    book = tmp_path / "play.yml"
    book.write_text(PLAY.format(user=USER, group=GROUP, tasks="".join(tasks)))
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    inv = inventory(tmp_path, hosts)
    if not check and not limit:
        run = run_playbook(book, inv, env, extra)
        return run.returncode, run.output
    options = (["--check"] if check else []) + (["--limit", limit] if limit else [])
    res = subprocess.run([*playbook_args(book, inv, extra), *options], capture_output=True,
                         text=True, env=env, timeout=240, cwd=tmp_path, check=False)
    return res.returncode, res.stdout + res.stderr


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def eku(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def signed_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_consul_and_strongroom_get_separate_cas_and_strongroom_no_client_auth(
        tmp_path: Path) -> None:
    """Strongroom's API certificate is serverAuth only, from a CA Consul does not trust;
    Consul's agents (mutual TLS RPC) keep serverAuth + clientAuth from their own CA, and
    Strongroom verifies its agent with a readable copy of Consul's CA."""
    rc, out = play(tmp_path, ["node"], CONSUL_TLS, STRONGROOM_TLS)
    assert rc == 0, out[-4000:]
    secrets, host = tmp_path / "secrets", tmp_path / "hosts" / "node"
    strongroom_ca = cert(secrets / "pki" / "ca.pem")
    consul_ca = cert(secrets / "pki-consul" / "ca.pem")
    assert strongroom_ca.public_key() != consul_ca.public_key()
    assert strongroom_ca.subject != consul_ca.subject

    api = cert(host / "etc/strongroom/tls/node.pem")
    assert eku(api) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert signed_by(api, strongroom_ca) and not signed_by(api, consul_ca)
    strongroom_host_ca = (host / "etc/strongroom/tls/ca.pem").read_bytes()
    assert strongroom_host_ca == (secrets / "pki/ca.pem").read_bytes()

    agent = cert(host / "etc/consul.d/tls/consul-node.pem")
    assert eku(agent) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert signed_by(agent, consul_ca) and not signed_by(agent, strongroom_ca)
    consul_host_ca = (host / "etc/consul.d/tls/ca.pem").read_bytes()
    assert consul_host_ca == (secrets / "pki-consul/ca.pem").read_bytes()

    # Strongroom's storage stanza verifies the agent with its own copy of Consul's CA.
    assert (host / "etc/strongroom/tls/consul-ca.pem").read_bytes() == consul_host_ca
    assert oct((host / "etc/strongroom/tls/consul-ca.pem").stat().st_mode & 0o777) == "0o644"
    assert oct((host / "etc/strongroom/tls/node-key.pem").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-mode"])
def test_no_new_ca_against_hosts_that_hold_one(tmp_path: Path, check: bool) -> None:
    """A controller without the CA (lost .secrets/) stops when a host already holds a CA,
    naming the host and the reset switch, also in check mode; the switch lets it pass."""
    held = tmp_path / "hosts" / "node2" / "etc/strongroom/tls"
    held.mkdir(parents=True)
    (held / "ca.pem").write_text("an older CA\n")
    rc, out = play(tmp_path, ["node1", "node2"], STRONGROOM_TLS, check=check,
                   extra={"strongroom_storage": "file"})
    assert rc != 0, out[-4000:]
    found = re.search(r'"msg": "(The controller has no CA in [^"]*)"', out)
    assert found, out[-4000:]
    message = found.group(1)
    assert re.search(r", but (.*) already holds? ", message).group(1) == "node2", message
    assert "-e strongroom_tls_ca_reset=true" in message
    assert not (tmp_path / "secrets" / "pki" / "ca.pem").exists()

    if not check:
        rc, out = play(tmp_path, ["node1", "node2"], STRONGROOM_TLS,
                       extra={"strongroom_tls_ca_reset": True, "strongroom_storage": "file"})
        assert rc == 0, out[-4000:]
        assert (held / "ca.pem").read_bytes() == (tmp_path / "secrets/pki/ca.pem").read_bytes()


@pytest.mark.parametrize("tasks", [STRONGROOM_TLS, CONSUL_GOSSIP], ids=["ca", "gossip-key"])
def test_no_first_ca_or_gossip_key_under_limit(tmp_path: Path, tasks: str) -> None:
    """--limit hides the hosts that may already hold a CA or gossip key (node2 does here):
    a run that would mint the first one with part of the inventory in view stops instead."""
    for held in (tmp_path / "hosts/node2/etc/strongroom/tls/ca.pem",
                 tmp_path / "hosts/node2/etc/consul.d/gossip.hcl"):
        held.parent.mkdir(parents=True)
        held.write_text("held already\n")
    rc, out = play(tmp_path, ["node1", "node2"], tasks, limit="node1",
                   extra={"strongroom_storage": "file"})
    assert rc != 0, out[-4000:]
    assert "this run covers only node1 (--limit node1)" in out, out[-4000:]
    assert not (tmp_path / "secrets" / "pki" / "ca.pem").exists()
    assert not (tmp_path / "secrets" / "consul" / "gossip.key").exists()


def test_check_mode_on_a_deployment_without_a_ca_says_deploy_first(tmp_path: Path) -> None:
    """--check with no CA anywhere (nothing deployed) stops with the reason, before the
    certificate tasks fail on files an unrun task would have made; nothing is written."""
    rc, out = play(tmp_path, ["node1"], STRONGROOM_TLS, check=True,
                   extra={"strongroom_storage": "file"})
    assert rc != 0, out[-4000:]
    assert "--check needs a deployed cluster" in out, out[-4000:]
    assert not (tmp_path / "secrets").exists()


def test_no_new_consul_ca_against_agents_that_hold_one(tmp_path: Path) -> None:
    held = tmp_path / "hosts" / "node" / "etc/consul.d/tls"
    held.mkdir(parents=True)
    (held / "ca.pem").write_text("an older CA\n")
    rc, out = play(tmp_path, ["node"], CONSUL_TLS)
    assert rc != 0 and "node already holds" in out, out[-4000:]
    assert "-e consul_tls_ca_reset=true" in out
    assert not (tmp_path / "secrets" / "pki-consul").exists()


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-mode"])
def test_no_new_gossip_key_against_agents_that_have_one(tmp_path: Path, check: bool) -> None:
    """gossip.hcl on one agent, a serf keyring on another: both named, no key generated."""
    etc = tmp_path / "hosts" / "a1" / "etc/consul.d"
    etc.mkdir(parents=True)
    (etc / "gossip.hcl").write_text('encrypt = "old"\n')
    serf = tmp_path / "hosts" / "a2" / "var/lib/consul/serf"
    serf.mkdir(parents=True)
    (serf / "local.keyring").write_text('["old"]\n')
    rc, out = play(tmp_path, ["a1", "a2", "a3"], CONSUL_GOSSIP, check=check)
    assert rc != 0, out[-4000:]
    assert "a1, a2 already have one" in out, out[-4000:]
    assert "-e consul_gossip_key_reset=true" in out
    assert not (tmp_path / "secrets" / "consul" / "gossip.key").exists()


def test_gossip_key_reset_generates_a_key(tmp_path: Path) -> None:
    etc = tmp_path / "hosts" / "a1" / "etc/consul.d"
    etc.mkdir(parents=True)
    (etc / "gossip.hcl").write_text('encrypt = "old"\n')
    # The role goes on to render consul.hcl (whether that works here does not matter):
    # what counts is that the reset lets the key be generated.
    _, out = play(tmp_path, ["a1"], CONSUL_GOSSIP, extra={"consul_gossip_key_reset": True})
    key = tmp_path / "secrets" / "consul" / "gossip.key"
    assert key.exists(), out[-4000:]
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert "The controller has no gossip key" not in out


def test_certificates_are_renewed_within_the_threshold(tmp_path: Path) -> None:
    """Valid longer than the threshold: kept. Expiring within it: issued again (same key)
    and installed on the host, for Strongroom's and Consul's certificates."""
    short = {"pki_cert_valid_days": 10}
    rc, out = play(tmp_path, ["node"], CONSUL_TLS, STRONGROOM_TLS,
                   extra={**short, "strongroom_tls_renew_before_days": 5,
                          "consul_tls_renew_before_days": 5})
    assert rc == 0, out[-4000:]
    host = tmp_path / "hosts" / "node"
    files = [host / "etc/strongroom/tls/node.pem", host / "etc/consul.d/tls/consul-node.pem"]
    first = [cert(f) for f in files]

    rc, out = play(tmp_path, ["node"], CONSUL_TLS, STRONGROOM_TLS,
                   extra={**short, "strongroom_tls_renew_before_days": 5,
                          "consul_tls_renew_before_days": 5})
    assert rc == 0, out[-4000:]
    assert [cert(f).serial_number for f in files] == [c.serial_number for c in first]

    rc, out = play(tmp_path, ["node"], CONSUL_TLS, STRONGROOM_TLS,
                   extra={**short, "strongroom_tls_renew_before_days": 20,
                          "consul_tls_renew_before_days": 20})
    assert rc == 0, out[-4000:]
    renewed = [cert(f) for f in files]
    for old, new in zip(first, renewed, strict=True):
        assert new.serial_number != old.serial_number
        assert new.public_key() == old.public_key()
        assert new.not_valid_after_utc >= old.not_valid_after_utc
