"""The write notifier and the change feed: which keys changed, in this process and others."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from strongroom.config import ServerConfig, StorageConfig, dev_config
from strongroom.node.shared import ChangeRing, Op, SharedCounters
from strongroom.physical.chain import build_chain
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend
from strongroom.physical.notify import ChangeFeed, WriteNotifier
from strongroom.wsgi import build_node
from tests.support.backend_contract import BackendContract

FORK = multiprocessing.get_context("fork")


class TestNotifierContract(BackendContract):
    @pytest.fixture
    def backend(self) -> WriteNotifier:
        return WriteNotifier(InmemBackend(), ChangeRing())


class Recorder:
    def __init__(self) -> None:
        self.changes: list[str] = []
        self.resets = 0

    def change(self, key: str) -> None:
        self.changes.append(key)

    def reset(self) -> None:
        self.resets += 1


def feed_with(ring: ChangeRing, *prefixes: str) -> tuple[ChangeFeed, Recorder]:
    feed, recorder = ChangeFeed(ring), Recorder()
    for prefix in prefixes:
        feed.subscribe(prefix, recorder.change, recorder.reset)
    return feed, recorder


def test_every_write_is_published_and_routed_by_prefix() -> None:
    ring = ChangeRing()
    notifier = WriteNotifier(InmemBackend(), ring)
    feed, policies = feed_with(ring, "sys/policy/")
    assert not feed.pending
    notifier.put("sys/policy/a", b"1")
    notifier.delete("sys/policy/b")
    notifier.transaction([("put", "sys/policy/c", b"3"), ("put", "logical/x/y", b"4")])
    notifier.get("sys/policy/a")  # reads publish nothing
    assert feed.pending
    feed.dispatch()
    assert policies.changes == ["sys/policy/a", "sys/policy/b", "sys/policy/c"]
    assert not feed.pending


def test_observers_get_key_and_op_after_a_successful_write_only() -> None:
    notifier = WriteNotifier(InmemBackend(), ChangeRing())
    seen: list[tuple[str, Op]] = []
    notifier.observe(lambda key, op: seen.append((key, op)))
    notifier.put("a", b"1")
    notifier.transaction([("delete", "a", None), ("put", "b", b"2")])
    with pytest.raises(Exception):  # noqa: B017 - the backend refuses the key
        notifier.put("bad/../key", b"x")
    assert seen == [("a", Op.PUT), ("a", Op.DELETE), ("b", Op.PUT)]


def test_a_failed_write_is_published_all_the_same() -> None:
    ring = ChangeRing()
    notifier = WriteNotifier(FileBackend.__new__(FileBackend), ring)  # no root: every op fails
    feed, everything = feed_with(ring, "")
    with pytest.raises(Exception):  # noqa: B017
        notifier.put("k", b"v")
    feed.dispatch()
    assert everything.changes == ["k"]


def test_a_lapped_feed_and_a_reset_invalidate_everything_once_per_callback() -> None:
    ring = ChangeRing(capacity=256)
    notifier = WriteNotifier(InmemBackend(), ring)
    feed, mounts = feed_with(ring, "core/mounts", "core/auth")  # one callback, two prefixes
    for i in range(40):
        notifier.put(f"logical/{i}", b"v")
    feed.dispatch()
    assert mounts.resets == 1 and mounts.changes == []
    notifier.reset()
    feed.dispatch()
    assert mounts.resets == 2


def test_skip_moves_past_what_was_written() -> None:
    ring = ChangeRing()
    notifier = WriteNotifier(InmemBackend(), ring)
    feed, everything = feed_with(ring, "")
    notifier.put("a", b"1")
    feed.skip()
    notifier.put("b", b"2")
    feed.dispatch()
    assert everything.changes == ["b"]


# -- across processes ---------------------------------------------------------------


def _write_in_child(root: str, ring: ChangeRing, keys: list[str]) -> None:
    notifier = WriteNotifier(FileBackend(root), ring)
    for key in keys:
        notifier.put(key, b"from the child")


def run_writer(root: Path, ring: ChangeRing, keys: list[str]) -> None:
    process = FORK.Process(target=_write_in_child, args=(str(root), ring, keys))
    process.start()
    process.join(30)
    assert process.exitcode == 0


def test_a_write_in_another_process_reaches_this_one_s_subscribers(tmp_path: Path) -> None:
    ring = ChangeRing()
    feed, policies = feed_with(ring, "sys/policy/")
    run_writer(tmp_path, ring, ["sys/policy/ops", "logical/u/k"])
    assert feed.pending
    feed.dispatch()
    assert policies.changes == ["sys/policy/ops"] and policies.resets == 0


def test_a_process_that_fell_behind_the_ring_invalidates_everything(tmp_path: Path) -> None:
    ring = ChangeRing(capacity=512)
    feed, policies = feed_with(ring, "sys/policy/")
    run_writer(tmp_path, ring, [f"logical/u/{i}" for i in range(50)])
    feed.dispatch()
    assert policies.resets == 1 and policies.changes == []


# -- through the core: two workers of one node ----------------------------------------


def file_config(root: Path) -> ServerConfig:
    return dataclasses.replace(dev_config(), storage=StorageConfig("file", {"path": str(root)}))


def _worker(config: ServerConfig, ring: ChangeRing, counters: SharedCounters,
            coordinator: Any, token: str) -> None:
    """Another worker: its own chain and core on the node's ring (forked, so it shares the
    unsealed coordinator of the test's process)."""
    node = build_node(config, coordinator=coordinator, storage=build_chain(config, ring),
                      counters=counters)
    client = falcon.testing.TestClient(node.app)
    headers = {"X-Vault-Token": token}
    assert client.simulate_put("/v1/sys/policy/ops", json={"policy": 'path "x/*" {}'},
                               headers=headers).status_code == 204
    assert client.simulate_post("/v1/sys/mounts/kv2", json={"type": "kv"},
                                headers=headers).status_code == 204


def test_policies_and_mounts_written_by_one_worker_are_in_force_in_the_other(
        tmp_path: Path) -> None:
    config = file_config(tmp_path)
    ring, counters = ChangeRing(), SharedCounters()
    node = build_node(config, storage=build_chain(config, ring), counters=counters)
    init = node.coordinator.initialize(1, 1)
    node.coordinator.unseal(init["keys"][0])
    client = falcon.testing.TestClient(node.app)
    headers = {"X-Vault-Token": init["root_token"]}
    assert client.simulate_get("/v1/sys/policy/ops", headers=headers).status_code == 404
    assert "kv2/" not in client.simulate_get("/v1/sys/mounts", headers=headers).json["data"]
    child = FORK.Process(target=_worker, args=(config, ring, counters, node.coordinator,
                                               init["root_token"]))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    # This worker's policy cache and router never saw those writes: the feed told them.
    assert client.simulate_get("/v1/sys/policy/ops", headers=headers).status_code == 200
    assert "kv2/" in client.simulate_get("/v1/sys/mounts", headers=headers).json["data"]


def test_a_key_under_a_mount_s_view_reaches_that_backend_in_another_worker(
        tmp_path: Path) -> None:
    config = file_config(tmp_path)
    ring, counters = ChangeRing(), SharedCounters()
    one = build_node(config, storage=build_chain(config, ring), counters=counters)
    init = one.coordinator.initialize(1, 1)
    one.coordinator.unseal(init["keys"][0])
    two = build_node(config, coordinator=one.coordinator, storage=build_chain(config, ring),
                     counters=counters)
    client = falcon.testing.TestClient(one.app)
    headers = {"X-Vault-Token": init["root_token"]}
    assert client.simulate_post("/v1/sys/mounts/kv", json={"type": "kv"},
                                headers=headers).status_code == 204
    two.core.sync()
    backend = two.core.mounts.secrets.backend("kv/")
    assert backend is not None
    seen: list[str] = []
    backend.invalidate = seen.append  # type: ignore[method-assign]
    assert client.simulate_put("/v1/kv/app", json={"a": "b"},
                               headers=headers).status_code == 204
    two.core.sync()
    # The key relative to the mount's view (kv keeps v1 data under v1/), as Vault's Invalidate.
    assert seen == ["v1/app"]
