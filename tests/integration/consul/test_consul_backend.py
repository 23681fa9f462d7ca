"""ConsulBackend against a real ``consul agent -dev``: the Backend contract and more.

The contract half mirrors tests/unit/physical/test_inmem.py (InmemBackend is the
reference for LIST semantics); the rest covers what only Consul has: the path
prefix, raw values, transactions, fencing, sessions and locks.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Callable

import pytest
import requests

from strongroom.config import parse_config
from strongroom.errors import InvalidKeyError, StorageError
from strongroom.physical.consul import MAX_TXN_OPS, ConsulBackend, FencedError
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import build_physical
from tests.support.backend_contract import BackendContract
from tests.support.consul import ConsulDevAgent
from tests.support.servers import free_port

BackendFactory = Callable[..., ConsulBackend]
SOME_SESSION = "12345678-1234-1234-1234-123456789abc"

BAD_KEYS = ["", "/abs", "a//b", "a/", "../x", "a/../../b", "./a", "a/.", "a\x00b", "a\nb", "\ud800"]
BAD_PREFIXES = ["a", "/", "/a/", "a//", "../", "a/../", "a\x00/"]


@pytest.fixture
def backend(make_dev_backend: BackendFactory) -> ConsulBackend:
    return make_dev_backend()


def raw_get(agent: ConsulDevAgent, full_key: str) -> requests.Response:
    return requests.get(f"{agent.address}/v1/kv/{full_key}", timeout=5)


# --- the Backend contract -------------------------------------------------------


class TestBackendContract(BackendContract):
    """The shared contract (tests/support/backend_contract.py) against Consul."""














def test_unusual_but_valid_segments(backend: ConsulBackend) -> None:
    keys = ["@at", "+plus", "%41", "%2F", "A", "a b", "ünïcode/ключ", "...", ".hidden", "~",
            "q?x=1", "h#frag", "semi;colon", "back\\slash"]
    for key in keys:
        backend.put(key, key.encode())
    for key in keys:
        assert backend.get(key) == key.encode()
    assert backend.list("") == sorted({"".join(key.partition("/")[:2]) for key in keys})
    assert backend.list("ünïcode/") == ["ключ"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(backend: ConsulBackend, key: str) -> None:
    operations: list[Callable[[str], object]] = [
        backend.get, backend.delete, lambda k: backend.put(k, b"v"),
        lambda k: backend.put_fenced("ok", b"v", k, SOME_SESSION),
        lambda k: backend.transaction([("put", k, b"v")]), backend.read_lock,
        lambda k: backend.acquire(k, SOME_SESSION, b""),
    ]
    for operation in operations:
        with pytest.raises(InvalidKeyError):
            operation(key)


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_bad_prefixes_rejected(backend: ConsulBackend, prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        backend.list(prefix)


def test_random_operations_match_inmem(backend: ConsulBackend) -> None:
    reference = InmemBackend()
    rng = random.Random(1234)
    names = ["a", "b", "c/d", "c/e", "c/f/g", "h/i/j/k", "h/l"]
    for _ in range(120):
        key = rng.choice(names)
        if rng.random() < 0.6:
            value = rng.randbytes(rng.randint(0, 64))
            backend.put(key, value)
            reference.put(key, value)
        else:
            backend.delete(key)
            reference.delete(key)
        for name in names:
            assert backend.get(name) == reference.get(name)
        for prefix in ["", "c/", "c/f/", "h/", "h/i/"]:
            assert backend.list(prefix) == reference.list(prefix)


# --- what only Consul has -------------------------------------------------------


def test_path_prefix_is_normalised_and_isolates(
    make_dev_backend: BackendFactory, dev_agent: ConsulDevAgent
) -> None:
    one = make_dev_backend("app")  # no trailing '/': normalised to "app/"
    sibling = make_dev_backend("application/")
    one.put("k", b"\x00raw\xff")
    sibling.put("k", b"other")
    assert one.list("") == ["k"] and sibling.list("") == ["k"]
    assert one.get("k") == b"\x00raw\xff"
    # Stored verbatim (no framing, no encoding) under <root>app/k.
    root = make_dev_backend()._path  # noqa: SLF001 - where make_dev_backend puts this test
    reply = requests.get(f"{dev_agent.address}/v1/kv/{root}app/k?raw", timeout=5)
    assert reply.content == b"\x00raw\xff"
    assert make_dev_backend().list("") == ["app/", "application/"]


@pytest.mark.parametrize("options", [
    {"scheme": "ftp"}, {"consistency_mode": "eventual"}, {"max_parallel": "0"},
    {"max_parallel": "many"}, {"address": "host:notaport"}, {"address": "host:70000"},
    {"tls_cert_file": "/c.pem"}, {"path": "a//b"}, {"path": "../up"},
])
def test_invalid_options_rejected(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        ConsulBackend(options)


def test_https_with_client_certificate(tls_agent: ConsulDevAgent) -> None:
    assert tls_agent.tls is not None
    options = {"address": tls_agent.https_host_port, "scheme": "https",
               "path": f"tls-{time.monotonic_ns()}/", "tls_ca_file": str(tls_agent.tls.ca_file)}
    with_cert = ConsulBackend({**options, "tls_cert_file": str(tls_agent.tls.client_cert),
                               "tls_key_file": str(tls_agent.tls.client_key)})
    with_cert.put("k", b"over mTLS")
    assert with_cert.get("k") == b"over mTLS" and with_cert.list("") == ["k"]
    with_cert.transaction([("delete", "k", None)])
    for bad in ({**options},  # no client certificate: the handshake is refused
                {**options, "tls_ca_file": "", "tls_cert_file": str(tls_agent.tls.client_cert),
                 "tls_key_file": str(tls_agent.tls.client_key)}):  # server cert not trusted
        with pytest.raises(StorageError, match="TLS with consul failed"):
            ConsulBackend(bad).get("k")


def test_built_from_server_config(dev_agent: ConsulDevAgent) -> None:
    config = parse_config(f"""
        storage "consul" {{
          address = "{dev_agent.host_port}"
          path = "cfg-{time.monotonic_ns()}"
          consistency_mode = "strong"
          max_parallel = 4
        }}
    """, dev=True)
    backend = build_physical(config.storage)
    assert isinstance(backend, ConsulBackend)
    backend.put("k", b"v")
    assert backend.get("k") == b"v"


def test_strong_consistency_reads(make_dev_backend: BackendFactory) -> None:
    backend = make_dev_backend(consistency_mode="strong")
    backend.put("k", b"v")
    assert backend.get("k") == b"v" and backend.list("") == ["k"]


def test_value_too_large_names_key_not_value(backend: ConsulBackend) -> None:
    with pytest.raises(StorageError) as caught:
        backend.put("big", b"S3CRET" * 100_000)  # Consul's default limit is 512 KiB
    assert "'big'" in caught.value.message and "413" in caught.value.message
    assert "S3CRET" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unreachable_consul_is_a_storage_error() -> None:
    backend = ConsulBackend({"address": f"127.0.0.1:{free_port()}"})
    for operation in (lambda: backend.get("k"), lambda: backend.put("k", b"v"),
                      lambda: backend.list(""),
                      lambda: backend.transaction([("delete", "k", None)])):
        with pytest.raises(StorageError, match="cannot reach consul") as caught:
            operation()
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_max_parallel_bounds_concurrent_requests(make_dev_backend: BackendFactory) -> None:
    backend = make_dev_backend(max_parallel="3")
    active, peak, lock = 0, 0, threading.Lock()
    original = backend._client.kv.put  # noqa: SLF001 - spy on the client

    def spy(*args: object, **kwargs: object) -> object:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.02)
            return original(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    backend._client.kv.put = spy  # noqa: SLF001
    threads = [threading.Thread(target=backend.put, args=(f"k{i}", b"v")) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
    assert len(backend.list("")) == 12


def test_transaction_applies_all(backend: ConsulBackend) -> None:
    backend.put("gone", b"old")
    backend.transaction([("put", "t/a", b"1"), ("put", "t/b", b""), ("put", "c", b"\x00"),
                         ("delete", "gone", None)])
    assert [backend.get(k) for k in ("t/a", "t/b", "c", "gone")] == [b"1", b"", b"\x00", None]
    backend.transaction([])  # nothing to do


def test_transaction_limits_and_malformed_ops(backend: ConsulBackend) -> None:
    backend.transaction([("put", f"k{i}", b"v") for i in range(MAX_TXN_OPS)])
    assert len(backend.list("")) == MAX_TXN_OPS
    with pytest.raises(StorageError, match="too large"):
        backend.transaction([("delete", f"k{i}", None) for i in range(MAX_TXN_OPS + 1)])
    assert len(backend.list("")) == MAX_TXN_OPS  # refused whole, not chunked
    for bad in [("put", "k", None), ("delete", "k", b"v"), ("cas", "k", b"v")]:
        with pytest.raises(ValueError):
            backend.transaction([bad])


def test_fencing_and_rollback(backend: ConsulBackend) -> None:
    session = backend.create_session("test", ttl_seconds=10)
    assert backend.acquire("core/lock", session, b"node-a")
    backend.put_fenced("data/x", b"1", "core/lock", session)
    backend.transaction([("put", "data/y", b"2"), ("delete", "data/x", None)], "core/lock", session)
    assert (backend.get("data/x"), backend.get("data/y")) == (None, b"2")
    # A fenced transaction holds at most 63 operations (the check is the 64th).
    with pytest.raises(StorageError, match="including the lock check"):
        backend.transaction([("put", f"k{i}", b"v") for i in range(MAX_TXN_OPS)], "core/lock",
                            session)
    backend.destroy_session(session)
    with pytest.raises(FencedError, match="'data/y'"):
        backend.put_fenced("data/y", b"3", "core/lock", session)
    with pytest.raises(FencedError):
        backend.delete_fenced("data/y", "core/lock", session)
    with pytest.raises(FencedError, match="2 keys"):
        backend.transaction([("put", "data/z", b"4"), ("delete", "data/y", None)], "core/lock",
                            session)
    assert (backend.get("data/y"), backend.get("data/z")) == (b"2", None)  # nothing applied
    with pytest.raises(FencedError):  # a lock key that does not exist at all
        backend.put_fenced("data/y", b"5", "no/lock", session)
    with pytest.raises(ValueError):
        backend.put_fenced("data/y", b"6", "core/lock", "not-a-session")


def test_lock_lifecycle(backend: ConsulBackend) -> None:
    first = backend.create_session("first", ttl_seconds=10)
    second = backend.create_session("second", ttl_seconds=0, node_checks=True)
    assert backend.read_lock("core/lock") == (None, None)
    assert backend.acquire("core/lock", first, b"advert-1")
    assert backend.read_lock("core/lock") == (b"advert-1", first)
    assert not backend.acquire("core/lock", second, b"advert-2")
    assert not backend.release("core/lock", second)  # not the holder
    assert backend.renew_session(first)
    assert backend.release("core/lock", first)
    assert backend.read_lock("core/lock") == (b"advert-1", None)  # value kept
    assert backend.acquire("core/lock", second, b"advert-2")
    backend.destroy_session(second)
    backend.destroy_session(second)  # destroying a dead session is fine
    assert not backend.renew_session(second)
    assert backend.read_lock("core/lock") == (b"advert-2", None)  # released, not deleted
    with pytest.raises(StorageError, match="session is not valid"):
        backend.acquire("core/lock", second, b"again")
    backend.destroy_session(first)


@pytest.mark.parametrize("kwargs", [
    {"ttl_seconds": 5}, {"ttl_seconds": 86401}, {"ttl_seconds": 0, "node_checks": False},
    {"ttl_seconds": 10, "lock_delay_seconds": -1},
])
def test_create_session_rejects_bad_arguments(backend: ConsulBackend,
                                              kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        backend.create_session("bad", **kwargs)  # type: ignore[arg-type]


def test_session_without_node_checks_has_only_the_ttl(
    backend: ConsulBackend, dev_agent: ConsulDevAgent
) -> None:
    session = backend.create_session("ttl-only", ttl_seconds=10, lock_delay_seconds=0,
                                     node_checks=False)
    info = requests.get(f"{dev_agent.address}/v1/session/info/{session}", timeout=5).json()[0]
    assert (info["TTL"], info["LockDelay"], info["NodeChecks"]) == ("10s", 0, [])
    backend.destroy_session(session)


@pytest.mark.timeout(60)  # a watch that ignored the change would wait 300 s: fails here
def test_watch_returns_on_change(backend: ConsulBackend) -> None:
    backend.put("core/lock", b"v1")
    index, value, session = backend.watch("core/lock", 0, 5)  # index 0: returns at once
    assert (value, session) == (b"v1", None) and index > 0
    started = time.monotonic()
    assert backend.watch("core/lock", index, 0.3)[0] == index  # times out, unchanged
    # It blocked: a lower bound on a requested wait cannot flake on a loaded machine.
    assert time.monotonic() - started >= 0.25
    # A change during the watch (or just before it: then the index is already stale)
    # must end it at once, not after its 300 s wait: no timing needed, the test's
    # timeout catches a watch that ignored the change.
    writer = threading.Thread(target=backend.put, args=("core/lock", b"v2"))
    writer.start()
    new_index, value, _ = backend.watch("core/lock", index, 300)
    writer.join()
    assert new_index > index and value == b"v2"
    backend.delete("core/lock")
    assert backend.watch("core/lock", new_index, 5)[1:] == (None, None)


def test_transaction_value_encoding_matches_kv(backend: ConsulBackend,
                                              dev_agent: ConsulDevAgent) -> None:
    payload = bytes(range(256))
    backend.transaction([("put", "bin", payload)])
    root = backend._path  # noqa: SLF001
    entry = raw_get(dev_agent, f"{root}bin").json()[0]
    assert base64.b64decode(entry["Value"]) == payload == backend.get("bin")
