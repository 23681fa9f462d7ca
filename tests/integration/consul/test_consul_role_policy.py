"""The consul role's Strongroom policy (issue #10, least privilege) on a real Consul cluster.

The rules are rendered by Ansible from roles/consul/defaults/main.yml for an inventory
whose only Strongroom node is the cluster's server ``sr-consul-0`` (Strongroom talks to
that agent here). With them, Strongroom's own storage and HA-lock code works on that
node; a session on any other node, node and service reads, and keys outside the prefix
are refused.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import consul
import pytest

from strongroom.ha.consul_lock import ConsulLock
from strongroom.physical.consul import ConsulBackend
from tests.ansible.runbook_support import (
    ansible_env,
    run_playbook,
    vault_password_file,
    write_pki,
)
from tests.support import requires
from tests.support.consul import ConsulCluster

requires.module("ansible")

pytestmark = [pytest.mark.consul, pytest.mark.timeout(240)]

PREFIX = "strongroom/"
STRONGROOM_NODE = "sr-consul-0"

RENDER = """\
- name: The consul role's Strongroom policy
  hosts: c1
  gather_facts: false
  tasks:
    - name: Role defaults
      ansible.builtin.include_role:
        name: consul
        tasks_from: asserts.yml
        public: true
    - name: Rules
      ansible.builtin.copy:
        content: "{{ consul_strongroom_policy_rules }}"
        dest: "{{ out }}"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def role_token(cluster: ConsulCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A token with exactly the policy the consul role writes."""
    tmp = tmp_path_factory.mktemp("role-policy")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"vars": local, "children": {
        "consul_servers": {"hosts": {"c1": {"ansible_host": "192.0.2.1"}}},
        "strongroom_servers": {"hosts": {STRONGROOM_NODE: {"ansible_host": "192.0.2.4"}}},
    }}}))
    play, out = tmp / "render.yml", tmp / "rules.hcl"
    play.write_text(RENDER)
    run = run_playbook(play, inventory, ansible_env(tmp, vault_password_file(tmp)),
                       {"out": str(out), "consul_strongroom_kv_prefix": PREFIX})
    assert run.returncode == 0, run.output[-4000:]
    rules = out.read_text()
    assert f'session "{STRONGROOM_NODE}"' in rules and "_prefix \"\"" not in rules, rules
    name = f"strongroom-role-{uuid.uuid4().hex[:8]}"
    cluster.api("PUT", "/v1/acl/policy", json={"Name": name, "Rules": rules}).raise_for_status()
    reply = cluster.api("PUT", "/v1/acl/token", json={"Description": name,
                                                       "Policies": [{"Name": name}]})
    reply.raise_for_status()
    secret: str = reply.json()["SecretID"]
    for i in cluster.alive():
        cluster._wait_token_known(i, secret, 10)
    return secret


def backend(cluster: ConsulCluster, token: str, server: int) -> ConsulBackend:
    path = f"{PREFIX}t-{uuid.uuid4().hex[:8]}/"
    return ConsulBackend({"address": cluster.host_ports[server], "path": path, "token": token})


def test_strongroom_storage_and_ha_lock_work_on_its_node(cluster: ConsulCluster,
                                                         role_token: str) -> None:
    store = backend(cluster, role_token, server=0)  # the agent of node sr-consul-0
    store.put("a", b"1")
    store.put("b/c", b"2")
    assert store.get("a") == b"1"
    assert store.list("") == ["a", "b/"]
    store.delete("a")
    assert store.get("a") is None

    lock = ConsulLock(store.client, store.absolute("core/lock"), "node-a", service="strongroom",
                      service_address="127.0.0.11", service_port=8200)
    lock.register(active=False)  # service "strongroom" with its TTL check
    session = lock.create_session()  # bound to serfHealth and that check, on sr-consul-0
    try:
        assert lock.acquire(session)
        assert lock.holder().session == session
        assert lock.session_valid(session)
        assert lock.renew(session)
        store.put_fenced("core/data", b"active", "core/lock", session)
        assert store.get("core/data") == b"active"
        lock.register(active=True)
        assert lock.release(session)
    finally:
        lock.destroy(session)
        lock.deregister()
    # The node-level session API of the HA backend (consul_ha) as well.
    other = store.create_session("strongroom-test", ttl_seconds=15)
    assert store.acquire("core/lock2", other, b"node-a")
    store.destroy_session(other)


def test_no_session_on_other_nodes_no_catalog_reads(cluster: ConsulCluster,
                                                    role_token: str) -> None:
    elsewhere = backend(cluster, role_token, server=1)  # node sr-consul-1: not Strongroom's
    with pytest.raises(consul.ACLPermissionDenied):
        elsewhere.client.session.create(name="strongroom-denied", ttl=15)
    here = consul.Consul(host="127.0.0.11", port=8500, token=role_token)
    with pytest.raises(consul.ACLPermissionDenied):
        here.session.create(name="strongroom-denied", node="sr-consul-1", ttl=15)
    # No node or service reads: the catalog is filtered down to nothing but its service.
    _, nodes = here.catalog.nodes()
    assert nodes == []
    _, services = here.catalog.services()
    assert "consul" not in services
    with pytest.raises(consul.ACLPermissionDenied):
        here.kv.put("other/key", "x")
    with pytest.raises(consul.ACLPermissionDenied):
        here.agent.service.register("not-strongroom")


ACL = """\
- name: The consul role's ACL tasks
  hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: ACL bootstrap check, Strongroom's token, agent tokens, retiring the shared one
      ansible.builtin.include_role:
        name: consul
        tasks_from: acl.yml
"""


def test_agent_tokens_replace_the_shared_one(cluster: ConsulCluster, tmp_path: Path) -> None:
    """From the old state (one shared node_prefix-write agent token) to one node identity per
    agent; the shared token, its policy and its file go once every member uses its own.

    Every host of this inventory reaches the API of server 0 (local connection), so every
    agent token is set on that one agent here; the ha scenario checks each agent's own.
    """
    secrets = tmp_path / ".secrets" / "consul"
    secrets.mkdir(parents=True)
    (secrets / "management.token").write_text(cluster.management_token + "\n")
    legacy_secret = str(uuid.uuid4())
    (secrets / "agent.token").write_text(legacy_secret + "\n")
    rules = 'node_prefix "" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n'
    cluster.api("PUT", "/v1/acl/policy", json={"Name": "consul-agent", "Rules": rules}
                ).raise_for_status()
    cluster.api("PUT", "/v1/acl/token", json={"SecretID": legacy_secret,
                                               "Policies": [{"Name": "consul-agent"}]}
                ).raise_for_status()
    for i in cluster.alive():
        cluster._wait_token_known(i, legacy_secret, 10)

    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    names = [f"sr-consul-{i}" for i in range(3)]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"vars": local, "children": {
        "consul_servers": {"hosts": {n: {"ansible_host": f"127.0.0.1{i + 1}"}
                                     for i, n in enumerate(names)}},
        "strongroom_servers": {"hosts": {}},
    }}}))
    play = tmp_path / "acl.yml"
    play.write_text(ACL)
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    common = {"consul_api_url": cluster.addresses[0],
              # Plain HTTP here, but Ansible's uri loads ca_path anyway: any valid CA.
              "consul_tls_ca_file": str(write_pki(tmp_path).ca),
              "consul_data_dir": str(cluster.workdir / "server0"),
              "consul_wait_delay": 0.5}

    def self_status(secret: str) -> int:
        return cluster.api("GET", "/v1/acl/token/self", token=secret).status_code

    try:
        # A run that reaches two of the three members: the shared token stays.
        run = run_playbook(play, inventory, env, {**common, "target": "sr-consul-0:sr-consul-1"})
        assert run.returncode == 0, run.output[-4000:]
        said = " ".join(run.output.split())
        assert "stays until these agents have their own: sr-consul-2" in said, said[-3000:]
        assert (secrets / "agent.token").exists() and self_status(legacy_secret) == 200

        # A member whose token file exists but whose agent never got it (a run that failed
        # between the two) does not count as moved over: the shared token stays.
        (secrets / "agent-tokens").chmod(0o700)
        (secrets / "agent-tokens" / "sr-consul-2.token").write_text(str(uuid.uuid4()) + "\n")
        run = run_playbook(play, inventory, env, {**common, "target": "sr-consul-0:sr-consul-1"})
        assert run.returncode == 0, run.output[-4000:]
        said = " ".join(run.output.split())
        assert "stays until these agents have their own: sr-consul-2" in said, said[-3000:]
        assert (secrets / "agent.token").exists() and self_status(legacy_secret) == 200
        (secrets / "agent-tokens" / "sr-consul-2.token").unlink()

        run = run_playbook(play, inventory, env, {**common, "target": "consul_servers"})
        assert run.returncode == 0, run.output[-4000:]
        assert not (secrets / "agent.token").exists()
        assert self_status(legacy_secret) == 403
        reply = cluster.api("GET", "/v1/acl/policy/name/consul-agent")
        assert reply.status_code == 403, reply.text  # "ACL not found"
        assert (secrets.parent / "consul" / "agent-tokens").stat().st_mode & 0o777 == 0o700
        for name in names:
            path = secrets / "agent-tokens" / f"{name}.token"
            assert path.stat().st_mode & 0o777 == 0o600
            info = cluster.api("GET", "/v1/acl/token/self", token=path.read_text().strip())
            assert info.status_code == 200
            assert info.json()["NodeIdentities"] == [{"NodeName": name, "Datacenter": "dc1"}]
            assert not info.json().get("Policies")
        # The last token set on server 0's agent is persisted there.
        persisted = json.loads((cluster.workdir / "server0" / "acl-tokens.json").read_text())
        assert persisted["agent"] == (secrets / "agent-tokens" / "sr-consul-2.token"
                                      ).read_text().strip()

        again = run_playbook(play, inventory, env, {**common, "target": "consul_servers"})
        assert again.returncode == 0, again.output[-4000:]
        # Nothing changes, but for the agent token set again on server 0's one agent (all
        # three "hosts" share it here; each host has its own agent in production).
        changed_tasks = [block.split("]", 1)[0] for block in again.output.split("\nTASK [")[1:]
                         if "\nchanged: " in block]
        assert changed_tasks, again.output[-4000:]
        assert all(t.startswith("consul : Set the agent token on") for t in changed_tasks), (
            changed_tasks)
    finally:
        for i in cluster.alive():  # the cluster's own agent token again
            cluster.api("PUT", "/v1/agent/token/agent", index=i,
                        json={"Token": cluster.management_token})
