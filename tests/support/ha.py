"""A Strongroom HA cluster (3 nodes on shared Consul storage) for tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.consul import ConsulCluster
from tests.support.servers import ServerProcess, late_bound_port, strongroom_server

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
    """Three nodes; helpers to find the active one and to write and read secrets."""

    def __init__(self, nodes: list[ServerProcess], root: str, key: str) -> None:
        self.nodes = nodes
        self.root = root
        self.key = key
        self.token = ""  # the Consul ACL token the nodes use
        self.stack: ExitStack | None = None  # owns the node processes

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



def start_node(workdir: Path, consul_address: str, token: str, stack: ExitStack,
               cluster_port: int | None = None) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = NODE_CONFIG.format(consul=consul_address, token=token,
                                cluster_port=cluster_port or late_bound_port())
    return stack.enter_context(strongroom_server(workdir, config))


def replace_node(cluster: Cluster, consul: ConsulCluster, old: ServerProcess,
                 workdir: Path) -> ServerProcess:
    """Stop ``old`` (SIGTERM), start a fresh process in its place, unseal it, and wait
    until it has joined as a standby."""
    index = cluster.nodes.index(old)
    old.stop()
    assert cluster.stack is not None
    node = start_node(workdir / f"node{index}-{time.monotonic_ns()}",
                      consul.host_ports[index], cluster.token, cluster.stack)
    cluster.nodes[index] = node
    cluster.unseal(node)
    poll(lambda: len(cluster.standbys()) == len(cluster.nodes) - 1, 30,
         "the replacement to join as standby")
    return node


@contextmanager
def ha_cluster(consul: ConsulCluster, workdir: Path, nodes: int = 3) -> Iterator[Cluster]:
    """Initialized, unsealed nodes with KV v2 at secret/, on empty storage."""
    prefix = "strongroom/"
    token = consul.make_token(prefix)
    consul.api("DELETE", f"/v1/kv/{prefix}?recurse=true")
    with ExitStack() as stack:
        procs = [start_node(workdir / f"node{i}", consul.host_ports[i % 3], token, stack)
                 for i in range(nodes)]
        init = requests.put(procs[0].url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=20).json()
        group = Cluster(procs, init["root_token"], init["keys"][0])
        group.token = token
        group.stack = stack
        for node in procs:
            group.unseal(node)
        active = group.active()
        resp = requests.post(active.url + "/v1/sys/mounts/secret", json={"type": "kv-v2"},
                             headers={"X-Vault-Token": group.root}, timeout=10)
        assert resp.status_code == 204, resp.text
        yield group
