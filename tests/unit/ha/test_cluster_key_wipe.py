"""The cluster TLS private key does not outlive its use in memory (issue #9).

The active node loads it into its cluster port's SSL context and stores it under
the barrier; a standby's worker loads it into its forwarder's SSL context. The
key's own buffer is wiped right after, and a seal drops the standby's forwarders
(OpenSSL clears a context's key when the context is freed). Stored as before:
JSON with "cert" and "key", readable by older nodes.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.keyring import Keyring
from strongroom.errors import SealedError
from strongroom.ha import standby
from strongroom.ha.cluster_tls import (
    ClusterIdentity,
    client_context,
    generate_identity,
    identity_from_json,
    identity_to_json,
    server_context,
)
from strongroom.ha.consul_lock import ConsulLock
from strongroom.ha.fencing import FencedBackend
from strongroom.ha.forwarding import ClusterListener
from strongroom.ha.manager import HAManager
from strongroom.ha.state import CLUSTER_TLS_PATH, HAStatus
from strongroom.physical.inmem import InmemBackend
from tests.support.nodes import dev_node
from tests.unit.ha.test_manager_activation import Fence, OneLock


class RecordingListener:
    def __init__(self) -> None:
        self.identities: list[ClusterIdentity] = []

    def start(self, identity: ClusterIdentity) -> None:
        server_context(identity)  # what the real cluster port does with it
        self.identities.append(identity)

    def stop(self) -> None: ...


def test_stored_form_is_the_json_older_nodes_read() -> None:
    identity = generate_identity()
    stored = identity_to_json(identity)
    assert json.loads(bytes(stored)) == {"cert": identity.cert_pem.decode(),
                                         "key": identity.key_pem.decode()}
    assert bytes(stored) == json.dumps(json.loads(bytes(stored))).encode()
    # ... and what older nodes wrote (any JSON layout) parses here.
    older = json.dumps({"key": identity.key_pem.decode(), "cert": identity.cert_pem.decode()},
                       indent=2).encode()
    parsed = identity_from_json(older)
    assert parsed.cert_pem == identity.cert_pem and parsed.key_pem == identity.key_pem
    client_context(parsed)
    with pytest.raises(ValueError):
        identity_from_json(b'{"cert": "x"}')


def test_active_node_wipes_the_key_once_its_cluster_port_has_it() -> None:
    storage, listener = InmemBackend(), RecordingListener()
    manager = HAManager(cast(ConsulLock, OneLock()), storage, cast(FencedBackend, Fence()),
                        "https://a:8200", "https://a:8201", lambda _status: None,
                        cast(ClusterListener, listener))
    manager._take_up_active("session-1")
    (identity,) = listener.identities
    assert identity.wiped
    # The stored copy is intact (a plaintext backend keeps the very bytes it was given).
    raw = storage.get(CLUSTER_TLS_PATH)
    assert raw is not None
    stored = identity_from_json(raw)
    assert stored.cert_pem == identity.cert_pem and not stored.wiped
    client_context(stored)


def unsealed_barrier_with_identity() -> tuple[AESGCMBarrier, ClusterIdentity]:
    barrier = AESGCMBarrier(InmemBackend())
    barrier.install(Keyring.generate(datetime.now(UTC)))
    identity = generate_identity()
    barrier.put(CLUSTER_TLS_PATH, bytes(identity_to_json(identity)))
    return barrier, identity


STATUS = HAStatus(enabled=True, leader_id="a", leader_cluster_addr="https://127.0.0.1:1")


def test_standby_forwarder_gets_a_wiped_copy_and_seal_drops_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    barrier, _ = unsealed_barrier_with_identity()
    given: list[ClusterIdentity] = []
    real = standby.Forwarder

    def forwarder(identity: ClusterIdentity, addr: str) -> Any:
        given.append(identity)
        return real(identity, addr)

    monkeypatch.setattr(standby, "Forwarder", forwarder)
    router = standby.StandbyRouter(barrier)
    first = router._forwarder(STATUS)
    assert first is not None and router._forwarder(STATUS) is first  # cached
    assert len(given) == 1 and given[0].wiped

    standby.forget_forwarders()
    assert router._cached is None
    barrier.seal()
    with pytest.raises(SealedError):
        router._forwarder(STATUS)
    assert router._cached is None


def test_a_seal_racing_a_forwarder_load_caches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    barrier, _ = unsealed_barrier_with_identity()
    router = standby.StandbyRouter(barrier)
    real = standby.Forwarder
    watcher: list[threading.Thread] = []

    def seal_meanwhile(identity: ClusterIdentity, addr: str) -> Any:
        made = real(identity, addr)
        # The seal watcher, in its own thread, at the worst moment: it wipes the
        # keyring, then waits for the router to forget its forwarders.
        barrier.seal()
        watcher.append(threading.Thread(target=standby.forget_forwarders))
        watcher[0].start()
        return made

    monkeypatch.setattr(standby, "Forwarder", seal_meanwhile)
    with pytest.raises(SealedError):
        router._forwarder(STATUS)
    watcher[0].join()
    assert router._cached is None


def test_core_seal_drops_the_standby_forwarders() -> None:
    d = dev_node()
    assert d.call("GET", "auth/token/lookup-self").status_code == 200  # core unsealed
    d.node.core.barrier.put(CLUSTER_TLS_PATH, bytes(identity_to_json(generate_identity())))
    router = standby.StandbyRouter(d.node.core.barrier)
    assert router._forwarder(STATUS) is not None and router._cached is not None
    assert d.call("PUT", "sys/seal").status_code == 204
    assert router._cached is None
