"""A rolling restart under a load-balancer-like client: no request fails.

Every node is restarted (SIGTERM, as systemd stops it), standbys first, then the
active node after a step-down, while a client keeps writing and reading secrets
through whichever nodes pass their health check. A connection refused before
anything was sent goes to another node (as a load balancer retries); every answer
that is sent must be a success. Before the fixes this caught: a stopping node answering
500 "active cluster node not found" (it had stopped following the leader), a write cut
off by its own node's step-down (500 "no longer active"), and connections reset by
a worker that kept accepting after SIGTERM.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.consul import ConsulCluster, consul_cluster
from tests.support.ha import Cluster, ha_cluster, poll, replace_node
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.consul


@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


class BalancedClient(threading.Thread):
    """Writes then reads one of 16 keys per turn, through nodes that pass /sys/health."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop = threading.Event()
        self.healthy: dict[str, bool] = {}
        self.ok = self.rerouted = 0
        self.failures: list[str] = []
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.is_set():
            for node in list(self.cluster.nodes):
                try:
                    status = requests.get(node.url + "/v1/sys/health", timeout=2).status_code
                except requests.RequestException:
                    status = 0
                self.healthy[node.url] = status in (200, 429)
            self.stop.wait(0.25)

    def run(self) -> None:
        self.watcher.start()
        turn = 0
        while not self.stop.is_set():
            turn += 1
            key = f"/v1/secret/data/rolling/k{turn % 16}"
            for method, body in (("POST", {"data": {"turn": turn}}), ("GET", None)):
                self._once(turn, method, key, body)

    def _once(self, turn: int, method: str, key: str, body: dict[str, object] | None) -> None:
        nodes = [n for n in self.cluster.nodes if self.healthy.get(n.url)] or self.cluster.nodes
        for node in nodes[turn % len(nodes):] + nodes[:turn % len(nodes)]:
            host, port = node.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                conn.connect()
            except OSError:
                self.rerouted += 1  # nothing sent: safe elsewhere
                continue
            try:
                conn.request(method, key, body=json.dumps(body).encode() if body else None,
                             headers={"X-Vault-Token": self.cluster.root})
                resp = conn.getresponse()
                data = resp.read()
                good = resp.status in (200, 204) and (
                    method == "POST" or json.loads(data)["data"]["data"]["turn"] == turn)
                if good:
                    self.ok += 1
                else:
                    self.failures.append(f"{method} via {node.url}: {resp.status} {data[:100]!r}")
            except OSError as exc:
                self.failures.append(f"{method} via {node.url}: {exc!r}")
            finally:
                conn.close()
            return
        self.failures.append(f"{method}: no node reachable")


def test_rolling_restart_fails_no_request(consul: ConsulCluster, tmp_path: Path) -> None:
    with ha_cluster(consul, tmp_path) as cluster:
        client = BalancedClient(cluster)
        client.start()
        poll(lambda: client.ok > 10, 30, "the client to get going")
        for standby in cluster.standbys():
            replace_node(cluster, consul, standby, tmp_path)
        active: ServerProcess = cluster.active()
        resp = requests.put(active.url + "/v1/sys/step-down",
                            headers={"X-Vault-Token": cluster.root}, timeout=10)
        assert resp.status_code == 204, resp.text
        poll(lambda: cluster.active() is not active, 20, "another node to take over")
        replace_node(cluster, consul, active, tmp_path)
        served = client.ok
        poll(lambda: client.ok > served + 10, 30, "the client to go on after the restarts")
        client.stop.set()
        client.join(60)
        assert client.failures == [], client.failures
        assert client.ok > 50
