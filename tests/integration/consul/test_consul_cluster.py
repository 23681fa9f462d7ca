"""ConsulBackend against a real 3-server Consul 1.8 cluster with ACLs (default deny).

One cluster serves the whole module (~2-4 s to elect a leader); the failover
test kills a server, so it restarts it and runs last.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from strongroom.errors import StorageError
from strongroom.physical.consul import ConsulBackend, FencedError
from tests.support.consul import ConsulCluster

pytestmark = pytest.mark.consul


@pytest.fixture(scope="module")
def token(cluster: ConsulCluster) -> str:
    """Strongroom's rights on the ``strongroom/`` prefix only."""
    return cluster.make_token("strongroom/")


def backend_for(cluster: ConsulCluster, token: str | None, path: str = "strongroom/",
                server: int = 0) -> ConsulBackend:
    options = {"address": cluster.host_ports[server], "path": path}
    if token is not None:
        options["token"] = token
    return ConsulBackend(options)


def test_scoped_token_reads_and_writes_its_prefix(cluster: ConsulCluster, token: str) -> None:
    backend = backend_for(cluster, token)
    backend.put("acl/a", b"1")
    backend.put("acl/b/c", b"2")
    assert backend.get("acl/a") == b"1"
    assert backend.list("acl/") == ["a", "b/"]
    backend.delete("acl/a")
    assert backend.get("acl/a") is None


def test_scoped_token_is_denied_outside_its_prefix(cluster: ConsulCluster, token: str) -> None:
    admin = backend_for(cluster, cluster.management_token, path="other/")
    admin.put("secret", b"TOPSECRET")
    outside = backend_for(cluster, token, path="other/")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("put", lambda: outside.put("secret", b"x")), ("get", lambda: outside.get("secret")),
        ("delete", lambda: outside.delete("secret"))]
    for operation, call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        message = caught.value.message
        assert message.startswith("permission denied") and f"{operation} of 'secret'" in message
        assert "TOPSECRET" not in message and caught.value.__cause__ is None
    # Inside a transaction a denial is a 409 rollback, not a 403: still reported as denied.
    with pytest.raises(StorageError, match="permission denied.*'secret'"):
        outside.transaction([("put", "secret", b"x")])
    assert outside.list("") == []  # Consul filters LIST by ACL rather than refusing it
    assert admin.get("secret") == b"TOPSECRET"
    with pytest.raises(StorageError, match="permission denied"):
        backend_for(cluster, None).put("anonymous", b"x")  # no token: anonymous, denied


def test_token_option_beats_environment(cluster: ConsulCluster, token: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # py-consul would let $CONSUL_HTTP_TOKEN override token=, and sends no token
    # with transactions unless it is set on its HTTP session.
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", cluster.management_token)
    backend = backend_for(cluster, token, path="other/")
    with pytest.raises(StorageError, match="permission denied"):
        backend.put("env", b"x")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "00000000-0000-0000-0000-000000000000")
    backend = backend_for(cluster, token)
    backend.transaction([("put", "env/a", b"1"), ("put", "env/b", b"2")])
    assert backend.list("env/") == ["a", "b"]
    # Without token=, the environment's token is used, as Vault does.
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", token)
    assert backend_for(cluster, None).get("env/a") == b"1"


def test_fenced_put_needs_the_lock(cluster: ConsulCluster, token: str) -> None:
    backend = backend_for(cluster, token)
    session = backend.create_session("strongroom-test", ttl_seconds=15)
    assert backend.acquire("core/lock", session, b"node-a")
    backend.put_fenced("core/data", b"written-while-active", "core/lock", session)
    assert backend.get("core/data") == b"written-while-active"
    backend.destroy_session(session)
    with pytest.raises(FencedError):
        backend.put_fenced("core/data", b"written-after-losing-the-lock", "core/lock", session)
    with pytest.raises(FencedError):
        backend.delete_fenced("core/data", "core/lock", session)
    assert backend.get("core/data") == b"written-while-active"


def test_transaction_is_atomic(cluster: ConsulCluster, token: str) -> None:
    backend = backend_for(cluster, token)
    backend.put("txn/old", b"0")
    backend.transaction([("put", "txn/a", b"1"), ("put", "txn/b", b"2"), ("put", "txn/c", b"3"),
                         ("delete", "txn/old", None)])
    assert backend.list("txn/") == ["a", "b", "c"]
    # One failing operation (here the fence) rolls back all the others.
    session = backend.create_session("strongroom-txn", ttl_seconds=15)
    assert backend.acquire("txn-lock", session, b"")
    backend.destroy_session(session)
    with pytest.raises(FencedError):
        backend.transaction([("put", "txn/a", b"9"), ("put", "txn/d", b"9"),
                             ("put", "txn/e", b"9"), ("delete", "txn/b", None)],
                            "txn-lock", session)
    assert [backend.get(f"txn/{k}") for k in "abcde"] == [b"1", b"2", b"3", None, None]


def test_reads_survive_losing_the_leader(cluster: ConsulCluster, token: str) -> None:
    leader = cluster.wait_for_leader()
    follower = (leader + 1) % 3
    backend = backend_for(cluster, token, server=follower)
    backend.put("failover/k", b"before")
    killed = time.monotonic()
    cluster.kill(leader)
    try:
        deadline, value = killed + 20, None
        while value != b"before":  # default consistency: reads go through the (new) leader
            assert time.monotonic() < deadline, "no read within 20s of killing the leader"
            try:
                value = backend.get("failover/k")
            except StorageError:
                time.sleep(0.1)
        recovered = time.monotonic() - killed
        assert cluster.wait_for_leader(10) != leader
        backend.put("failover/k", b"after")  # and writes, through the new leader
        assert backend_for(cluster, token, server=(leader + 2) % 3).get("failover/k") == b"after"
        print(f"reads back {recovered:.1f}s after SIGKILL of the consul leader")
    finally:
        cluster.start(leader)
        cluster.wait_for_leader(30)
    assert backend_for(cluster, token, server=leader).get("failover/k") == b"after"
