"""Active/standby over a real 3-server Consul cluster with ACLs.

Three Strongroom nodes (two gunicorn workers each) share Consul storage. One
holds the lock and serves; the others answer 429 on health, forward every
other request to it over mutual TLS, or redirect with 307 when asked to.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.consul import ConsulCluster, consul_cluster
from tests.support.servers import ServerProcess, free_port, strongroom_server

pytestmark = pytest.mark.consul

NODE_CONFIG = """
storage "consul" {{{{
  address = "{consul}"
  path    = "strongroom/"
  token   = "{token}"
}}}}
listener "tcp" {{{{
  address     = "127.0.0.1:{{port}}"
  tls_disable = true
}}}}
api_addr      = "http://127.0.0.1:{{port}}"
cluster_addr  = "https://127.0.0.1:{cluster_port}"
disable_mlock = true
workers       = 2
"""


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def health(node: ServerProcess) -> int:
    try:
        return requests.get(node.url + "/v1/sys/health", timeout=2).status_code
    except requests.RequestException:
        return 0


def leader(node: ServerProcess) -> dict[str, Any]:
    return requests.get(node.url + "/v1/sys/leader", timeout=2).json()  # type: ignore[no-any-return]


class Cluster:
    def __init__(self, nodes: list[ServerProcess], root: str, key: str) -> None:
        self.nodes = nodes
        self.root = root
        self.key = key

    def active(self, timeout: float = 20) -> ServerProcess:
        def find() -> ServerProcess | None:
            live = [n for n in self.nodes if n.proc.poll() is None]
            actives = [n for n in live if health(n) == 200]
            return actives[0] if len(actives) == 1 else None

        node: ServerProcess = poll(find, timeout, "exactly one active node")
        return node

    def standbys(self) -> list[ServerProcess]:
        return [n for n in self.nodes if n.proc.poll() is None and health(n) == 429]

    def write(self, node: ServerProcess, path: str, value: str,
              **headers: str) -> requests.Response:
        return requests.post(node.url + "/v1/secret/data/" + path, timeout=10,
                             json={"data": {"v": value}},
                             headers={"X-Vault-Token": self.root, **headers})

    def read(self, node: ServerProcess, path: str) -> str | None:
        resp = requests.get(node.url + "/v1/secret/data/" + path, timeout=10,
                            headers={"X-Vault-Token": self.root})
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]["data"]["v"]  # type: ignore[no-any-return]

    def unseal(self, node: ServerProcess) -> None:
        resp = requests.put(node.url + "/v1/sys/unseal", json={"key": self.key}, timeout=10)
        assert resp.status_code == 200 and resp.json()["sealed"] is False, resp.text


@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


@pytest.fixture
def cluster(consul: ConsulCluster, tmp_path: Path) -> Iterator[Cluster]:
    prefix = "strongroom/"
    token = consul.make_token(prefix)
    # Each test starts from empty storage under the prefix.
    consul.api("DELETE", f"/v1/kv/{prefix}?recurse=true")
    with ExitStack() as stack:
        nodes = []
        for i in range(3):
            workdir = tmp_path / f"node{i}"
            workdir.mkdir()
            config = NODE_CONFIG.format(consul=consul.host_ports[i], token=token,
                                        cluster_port=free_port())
            nodes.append(stack.enter_context(strongroom_server(workdir, config)))
        init = requests.put(nodes[0].url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=20).json()
        group = Cluster(nodes, init["root_token"], init["keys"][0])
        for node in nodes:
            group.unseal(node)
        active = group.active()
        resp = requests.post(active.url + "/v1/sys/mounts/secret", json={"type": "kv-v2"},
                             headers={"X-Vault-Token": group.root}, timeout=10)
        assert resp.status_code == 204, resp.text
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
    assert cluster.write(active, "after-step-down", "x").status_code == 200
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


def test_sigkill_failover_loses_no_acknowledged_write(cluster: Cluster) -> None:
    active = cluster.active()
    acknowledged = []
    for i in range(20):
        if cluster.write(active, f"w{i}", str(i)).status_code == 200:
            acknowledged.append(i)
    os.kill(active.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    survivor = [n for n in cluster.nodes if n is not active][0]
    poll(lambda: cluster.write(survivor, "probe", "p").status_code == 200, 20,
         "writes to resume")
    took = time.monotonic() - killed_at
    assert took < 10, took
    for i in acknowledged:
        assert cluster.read(survivor, f"w{i}") == str(i)


def test_fencing_a_paused_active_node(cluster: Cluster) -> None:
    old = cluster.active()
    assert cluster.write(old, "fenced", "before").status_code == 200
    # Freeze the old node's master (its HA loop and heartbeat), not its workers: they
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
