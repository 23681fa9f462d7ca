"""The storage chain is assembled in the same order for every storage configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from strongroom.config import ServerConfig, StorageConfig, dev_config
from strongroom.ha.fencing import FencedBackend
from strongroom.node.shared import ChangeRing
from strongroom.physical.cache import CachingBackend
from strongroom.physical.chain import StorageChain, build_chain
from strongroom.physical.consul import ConsulBackend
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend
from strongroom.physical.notify import WriteNotifier

CONSUL = StorageConfig("consul", {"address": "127.0.0.1:1", "path": "strongroom/"})


def config(storage: StorageConfig, ha: StorageConfig | None = None) -> ServerConfig:
    return dataclasses.replace(dev_config(), storage=storage, ha_storage=ha)


def layers(chain: StorageChain) -> list[type]:
    """The chain's layers from the top (what the barrier sits on) down."""
    found: list[type] = []
    layer: object = chain.top
    while True:
        found.append(type(layer))
        if isinstance(layer, CachingBackend | WriteNotifier):
            layer = layer.inner
        elif isinstance(layer, FencedBackend):
            layer = layer._store
        else:
            return found


def file_config(tmp_path: Path, ha: StorageConfig | None = None) -> ServerConfig:
    return config(StorageConfig("file", {"path": str(tmp_path)}), ha)


def test_inmem_in_one_process() -> None:
    chain = build_chain(config(StorageConfig("inmem")))
    assert layers(chain) == [WriteNotifier, InmemBackend]
    assert chain.fencing is None and chain.recover is None


def test_inmem_shared_by_the_processes_of_a_node(tmp_path: Path) -> None:
    chain = build_chain(config(StorageConfig("inmem")), ChangeRing(), inmem_dir=str(tmp_path))
    assert layers(chain) == [CachingBackend, WriteNotifier, FileBackend]
    assert chain.fencing is None and chain.recover is not None


def test_file_in_one_process(tmp_path: Path) -> None:
    assert layers(build_chain(file_config(tmp_path))) == [WriteNotifier, FileBackend]


def test_file_shared_by_the_processes_of_a_node(tmp_path: Path) -> None:
    chain = build_chain(file_config(tmp_path), ChangeRing())
    assert layers(chain) == [CachingBackend, WriteNotifier, FileBackend]
    assert chain.fencing is None
    assert chain.recover is not None
    (tmp_path / "+tmp-deadbeef").write_bytes(b"left by a crash")
    assert chain.recover() == 1


def test_file_with_consul_ha_storage_is_neither_cached_nor_fenced(tmp_path: Path) -> None:
    # Several nodes share that directory: their writes never reach this node's ring.
    chain = build_chain(file_config(tmp_path, CONSUL), ChangeRing())
    assert layers(chain) == [WriteNotifier, FileBackend]
    assert chain.fencing is None
    assert chain.recover is None  # another node's temp file may be a write in progress
    chain.set_session("3f1b1a3c-0000-4000-8000-000000000001")  # nothing to fence: no-op


@pytest.mark.parametrize("ring", [None, ChangeRing()], ids=["one-process", "node"])
def test_consul_with_ha_is_fenced_and_not_cached(ring: ChangeRing | None) -> None:
    chain = build_chain(config(CONSUL), ring)
    assert layers(chain) == [WriteNotifier, FencedBackend, ConsulBackend]
    assert chain.fencing is not None and chain.fencing is chain.notifier.inner
    session = "3f1b1a3c-0000-4000-8000-000000000001"
    chain.set_session(session)
    assert chain.fencing.session == session
    chain.set_session(None)
    assert chain.fencing.session is None


def test_every_process_gets_its_own_layers_on_the_node_s_ring(tmp_path: Path) -> None:
    ring = ChangeRing()
    one, two = build_chain(file_config(tmp_path), ring), build_chain(file_config(tmp_path), ring)
    assert one.notifier.ring is two.notifier.ring is ring
    assert one.cache is not two.cache
    feed = two.changes()
    one.top.put("sys/policy/p", b"x")
    assert feed.pending
