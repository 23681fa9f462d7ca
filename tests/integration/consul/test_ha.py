"""Active/standby over a real 3-server Consul cluster with ACLs.

Three Strongroom nodes (two gunicorn workers each) share Consul storage. One
holds the lock and serves; the others answer 429 on health, forward every
other request to it over mutual TLS, or redirect with 307 when asked to.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests

from tests.support.consul import ConsulCluster, consul_cluster
from tests.support.ha import Cluster, ha_cluster, health, leader, poll
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.consul

@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


@pytest.fixture
def cluster(consul: ConsulCluster, tmp_path: Path) -> Iterator[Cluster]:
    with ha_cluster(consul, tmp_path) as group:
        yield group


def test_one_active_standbys_forward_and_redirect(cluster: Cluster) -> None:
    active = cluster.active()
    standbys = poll(lambda: cluster.standbys() if len(cluster.standbys()) == 2 else None, 20,
                    "two standbys")
    info = leader(standbys[0])
    assert info["ha_enabled"] is True and info["is_self"] is False
    assert info["leader_address"] == active.url
    assert info["leader_cluster_address"].startswith("https://")
    assert leader(active)["is_self"] is True
    ok = requests.get(standbys[0].url + "/v1/sys/health", params={"standbyok": "true"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["standby"] is True

    # Every API call works through a standby: write there, read on the others.
    assert cluster.write(standbys[0], "fwd", "one").status_code == 200
    assert cluster.read(active, "fwd") == "one"
    assert cluster.read(standbys[1], "fwd") == "one"
    lookup = requests.get(standbys[1].url + "/v1/auth/token/lookup-self", timeout=5,
                          headers={"X-Vault-Token": cluster.root})
    assert lookup.status_code == 200 and lookup.json()["data"]["policies"] == ["root"]
    denied = requests.get(standbys[1].url + "/v1/secret/data/fwd", timeout=5,
                          headers={"X-Vault-Token": "nope"})
    assert denied.status_code == 403

    # 307 mode: the client is sent to the active node's api_addr.
    redirect = requests.get(standbys[0].url + "/v1/secret/data/fwd", allow_redirects=False,
                            timeout=5, headers={"X-Vault-Token": cluster.root,
                                                "X-Vault-No-Request-Forwarding": "true"})
    assert redirect.status_code == 307
    assert redirect.headers["Location"] == active.url + "/v1/secret/data/fwd"


def test_step_down_hands_over(cluster: Cluster) -> None:
    active = cluster.active()
    resp = requests.put(active.url + "/v1/sys/step-down", timeout=10,
                        headers={"X-Vault-Token": cluster.root})
    assert resp.status_code == 204
    new = poll(lambda: (lambda a: a if a is not active else None)(cluster.active()), 15,
               "another node to become active")
    assert new is not active
    resp = cluster.write(active, "after-step-down", "x")
    assert resp.status_code == 200, resp.text
    assert cluster.read(new, "after-step-down") == "x"


def test_sealed_standby_never_takes_over(cluster: Cluster) -> None:
    active = cluster.active()
    standby = cluster.standbys()[0]
    assert requests.put(standby.url + "/v1/sys/seal", timeout=10,
                        headers={"X-Vault-Token": cluster.root}).status_code == 204
    assert health(standby) == 503
    assert cluster.active() is active
    os.kill(active.proc.pid, signal.SIGTERM)
    third = [n for n in cluster.nodes if n not in (active, standby)][0]
    assert poll(lambda: health(third) == 200, 10, "the unsealed standby to take over")
    assert health(standby) == 503


def test_resealed_standby_keeps_following_the_leader(cluster: Cluster) -> None:
    """Seal then unseal a standby: the manager the seal stopped may still return from its
    blocking query on the lock (up to lock_wait_time, 15 s) and must not then erase the
    new manager's view of the leader."""
    active = cluster.active()
    standby = cluster.standbys()[0]
    h = {"X-Vault-Token": cluster.root}
    assert requests.put(standby.url + "/v1/sys/seal", headers=h, timeout=10).status_code == 204
    cluster.unseal(standby)
    assert poll(lambda: leader(standby)["leader_address"] == active.url, 10,
                "the unsealed standby to learn the leader")
    deadline = time.monotonic() + 17
    while time.monotonic() < deadline:
        assert leader(standby)["leader_address"] == active.url
        reply = requests.get(standby.url + "/v1/auth/token/lookup-self", headers=h, timeout=10)
        assert reply.status_code == 200, reply.text
        time.sleep(0.5)


def test_sigkill_failover_loses_no_acknowledged_write(cluster: Cluster) -> None:
    active = cluster.active()
    acknowledged = []
    for i in range(20):
        if cluster.write(active, f"w{i}", str(i)).status_code == 200:
            acknowledged.append(i)
    os.kill(active.proc.pid, signal.SIGKILL)
    survivor = [n for n in cluster.nodes if n is not active][0]
    # Readiness, not a measurement: how fast failover is belongs in bench/failover.py.
    poll(lambda: cluster.write(survivor, "probe", "p").status_code == 200, 60,
         "writes to resume")
    for i in acknowledged:
        assert cluster.read(survivor, f"w{i}") == str(i)


def test_fencing_a_paused_active_node(cluster: Cluster) -> None:
    old = cluster.active()
    assert cluster.write(old, "fenced", "before").status_code == 200
    # Every worker must have applied the node's current state before its owner is
    # frozen: a worker that still had to fetch it would wait on the frozen owner.
    workers = old.wait_for_workers(2)
    seen: set[int] = set()

    def all_workers_synced() -> bool:
        resp = requests.get(old.url + "/v1/sys/health", headers={"Connection": "close"},
                            timeout=5)
        if resp.status_code == 200:
            seen.add(int(resp.headers["X-Strongroom-Worker"]))
        return seen == workers

    poll(all_workers_synced, 20, "every worker of the active node to answer as active")
    # Freeze the old node's owner (its HA loop and heartbeat), not its workers: they
    # still believe the node is active, which is exactly what fencing must defeat.
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        others = [n for n in cluster.nodes if n is not old]
        new = poll(lambda: next((n for n in others if health(n) == 200), None), 40,
                   "a standby to take over from the paused node")
        assert cluster.write(new, "fenced", "new").status_code == 200
        stale = cluster.write(old, "fenced", "stale")
        assert stale.status_code == 500, stale.text
        assert "no longer active" in stale.json()["errors"][0]
        assert cluster.read(new, "fenced") == "new"
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    # Once it runs again the old node finds the lock gone and becomes a standby.
    poll(lambda: health(old) == 429 and leader(old)["leader_address"] == new.url, 30,
         "the old active node to become a standby of the new one")
    assert cluster.read(old, "fenced") == "new"
    assert cluster.active() is new


def test_every_arbiter_runs_one_thread(cluster: Cluster) -> None:
    """HA, the cluster port and the coordinator run in each node's owner: the gunicorn
    arbiter that forks the workers has one thread, on the active node and on standbys."""
    active = cluster.active()
    assert cluster.write(active, "threads", "x").status_code == 200
    for node in cluster.nodes:
        node.wait_for_workers(2)
        arbiter = node.arbiter_pid()
        assert arbiter is not None
        assert len(os.listdir(f"/proc/{arbiter}/task")) == 1, node.url
        assert len(os.listdir(f"/proc/{node.proc.pid}/task")) > 1


def test_arbiter_killed_the_node_exits_and_hands_over(cluster: Cluster) -> None:
    """The active node's arbiter dies: its owner releases the lock and exits non-zero
    (systemd would start it again); another node takes over."""
    active = cluster.active()
    arbiter = active.arbiter_pid()
    assert arbiter is not None
    os.kill(arbiter, signal.SIGKILL)
    poll(lambda: active.proc.poll() is not None, 15, "the owner to exit")
    assert active.proc.returncode != 0
    others = [n for n in cluster.nodes if n is not active]
    new = poll(lambda: next((n for n in others if health(n) == 200), None), 15,
               "another node to become active")
    assert cluster.write(new, "after-arbiter", "v").status_code == 200
    log = (active.workdir / "server.log").read_text()
    assert "event=arbiter_exited" in log


def passing_tagged(consul: ConsulCluster, tag: str) -> list[str]:
    """Addresses of passing strongroom services with ``tag`` (what DNS would answer)."""
    reply = consul.api("GET", f"/v1/health/service/strongroom?passing=true&tag={tag}",
                       index=consul.alive()[0])
    return sorted(f"http://{e['Service']['Address']}:{e['Service']['Port']}"
                  for e in reply.json())


def test_service_registration_names_the_active_node(cluster: Cluster,
                                                    consul: ConsulCluster) -> None:
    active = cluster.active()
    poll(lambda: passing_tagged(consul, "active") == [active.url], 15,
         "exactly the active node registered as active")
    standbys = sorted(n.url for n in cluster.nodes if n is not active)
    poll(lambda: passing_tagged(consul, "standby") == standbys, 15, "both standbys registered")
    # After a hand-over the tags follow the lock.
    requests.put(active.url + "/v1/sys/step-down", headers={"X-Vault-Token": cluster.root},
                 timeout=10)
    new = poll(lambda: (lambda a: a if a is not active else None)(cluster.active()), 15,
               "a new active node")
    poll(lambda: passing_tagged(consul, "active") == [new.url], 15,
         "the active tag to move to the new node")


def another_active(cluster: Cluster, previous: ServerProcess) -> ServerProcess | None:
    return next((n for n in cluster.nodes if n is not previous and health(n) == 200), None)


def test_losing_the_consul_leader_leaves_an_active_node_within_seconds(
        cluster: Cluster, consul: ConsulCluster) -> None:
    """The Consul leader dies, the active node's own Consul server survives: Consul elects
    a new leader within seconds, and the active node, whose lock queries failed meanwhile,
    takes its lock up again. (It used to start a new session, leaving the old one holding
    the lock with no node active until Consul expired it: ~31 s.)"""
    consul_leader = consul.leader_index()
    assert consul_leader is not None
    active = cluster.active()
    # Node i talks to Consul server i: move the active role off the leader's node.
    while cluster.nodes.index(active) == consul_leader:
        resp = requests.put(active.url + "/v1/sys/step-down", timeout=10,
                            headers={"X-Vault-Token": cluster.root})
        assert resp.status_code == 204, resp.text
        active = poll(partial(another_active, cluster, active), 20,
                      "another node to become active")
    consul.kill(consul_leader)
    try:
        survivors = [n for i, n in enumerate(cluster.nodes) if i != consul_leader]
        poll(lambda: any(cluster.write(n, "consul-leader-lost", "v").status_code == 200
                         for n in survivors), 15, "writes to be served again")
        assert cluster.read(survivors[0], "consul-leader-lost") == "v"
    finally:
        consul.start(consul_leader)
        consul.wait_for_leader()


def test_consul_agent_going_away_and_back(cluster: Cluster, consul: ConsulCluster) -> None:
    active = cluster.active()
    index = cluster.nodes.index(active)  # node i talks to Consul server i
    consul.kill(index)
    # The node whose agent vanished cannot keep its session: another takes over.
    others = [n for i, n in enumerate(cluster.nodes) if i != index]
    new = poll(lambda: next((n for n in others if health(n) == 200), None), 30,
               "a node with a live agent to become active")
    assert cluster.write(new, "agent-away", "v").status_code == 200
    consul.start(index)
    consul.wait_for_leader()
    # The orphaned node comes back as a standby and serves through the active node. That
    # may no longer be `new`: the agent's return is a membership change of the Consul
    # cluster, and on a loaded machine the lock may legitimately move again meanwhile.
    seen: list[tuple[int, str, str]] = []

    def rejoined() -> bool:
        current = next((n.url for n in others if health(n) == 200), "")
        seen[:] = [(health(active), leader(active)["leader_address"], current)]
        return seen[0][0] == 429 and seen[0][1] == current != ""

    try:
        poll(rejoined, 60, "the node to rejoin as standby")
    except AssertionError as timed_out:
        log = (active.workdir / "server.log").read_text(errors="replace").splitlines()
        ha = [line for line in log if "strongroom.ha." in line or "Error" in line][-25:]
        raise AssertionError(f"{timed_out}; last seen (health, its leader, the active "
                             f"node): {seen}; its HA log:\n" + "\n".join(ha)) from None
    assert cluster.read(active, "agent-away") == "v"
