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

import consul
import pytest

from strongroom.ha.consul_lock import ConsulLock
from strongroom.physical.consul import ConsulBackend
from tests.ansible.runbook_support import ansible_env, run_playbook, vault_password_file
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
