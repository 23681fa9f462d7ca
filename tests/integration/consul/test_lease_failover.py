"""Leases across a failover: three Strongroom nodes on a real 3-server Consul cluster.

Tokens (leases) are issued through the active node, which is then killed (SIGKILL)
before they expire. The node that takes over restores every lease from storage and
revokes the expired ones without any request presenting them; each is revoked exactly
once in the whole cluster (the log lines of every node are counted), and the lease of
a long-lived token is kept.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.consul import ConsulCluster, consul_cluster
from tests.support.ha import Cluster, ha_cluster, poll
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.consul
REVOKED = re.compile(r"event=lease_revoked lease_id=(\S+) reason=expired")


@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


@pytest.fixture
def cluster(consul: ConsulCluster, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("STRONGROOM_LEASE_EXPIRY_INTERVAL", "0.2")
    with ha_cluster(consul, tmp_path) as group:
        yield group


def call(node: ServerProcess, method: str, path: str, token: str,
         body: Any = None) -> requests.Response:
    return requests.request(method, f"{node.url}/v1/{path}", json=body, timeout=20,
                            headers={"X-Vault-Token": token})


def leases(node: ServerProcess, root: str, prefix: str) -> list[str] | None:
    """The lease ids under ``prefix`` (None while the node cannot answer)."""
    try:
        resp = call(node, "LIST", "sys/leases/lookup/" + prefix, root)
    except requests.RequestException:
        return None
    if resp.status_code == 404:
        return []
    if resp.status_code != 200:
        return None
    return [prefix + key for key in resp.json()["data"]["keys"]]


def test_the_new_active_node_takes_the_leases_over(cluster: Cluster, tmp_path: Path) -> None:
    active = cluster.active()
    short = [call(active, "POST", "auth/token/create", cluster.root,
                  {"ttl": "10s", "policies": ["default"]}).json()["auth"] for _ in range(5)]
    long = call(active, "POST", "auth/token/create", cluster.root,
                {"ttl": "1h", "policies": ["default"]}).json()["auth"]
    issued = leases(active, cluster.root, "auth/token/create/")
    assert issued is not None and len(issued) == 6
    os.kill(active.proc.pid, signal.SIGKILL)  # before any of them expires
    survivors = [n for n in cluster.nodes if n is not active]
    new = poll(lambda: next((n for n in survivors if requests.get(
        n.url + "/v1/sys/health", timeout=2).status_code == 200), None), 60,
        "another node to become active")
    # Nothing presents the short tokens: the new active node's owner revokes them.
    left = poll(lambda: (lambda got: got if got is not None and len(got) == 1 else None)(
        leases(new, cluster.root, "auth/token/create/")), 60,
        "the expired leases to be revoked by the new active node")
    assert left[0] in issued
    looked = call(new, "PUT", "sys/leases/lookup", cluster.root, {"lease_id": left[0]})
    assert looked.status_code == 200 and looked.json()["data"]["ttl"] > 3000
    assert call(new, "GET", "auth/token/lookup-self", long["client_token"]).status_code == 200
    for auth in short:
        assert call(new, "GET", "auth/token/lookup-self",
                    auth["client_token"]).status_code == 403
    # Exactly once in the cluster: count every node's log lines.
    revoked: dict[str, int] = {}
    for log in tmp_path.rglob("server.log"):
        for lease_id in REVOKED.findall(log.read_text(errors="replace")):
            revoked[lease_id] = revoked.get(lease_id, 0) + 1
    assert revoked == dict.fromkeys(set(issued) - set(left), 1)
