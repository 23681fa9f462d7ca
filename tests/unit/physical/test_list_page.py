"""Paged LIST through the whole storage chain a KV mount reads through.

StorageView -> barrier -> read cache -> write notifier -> file storage: a page is
served by the file backend's own range scan (never cut from a whole listing),
the barrier refuses it while sealed, and backends without paging (inmem, Consul)
fall back to cutting the whole listing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.view import StorageView
from strongroom.errors import SealedError
from strongroom.node.shared import ChangeRing
from strongroom.physical.base import list_page
from strongroom.physical.cache import CachingBackend
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend
from strongroom.physical.notify import WriteNotifier


class Spy(FileBackend):
    """File storage recording how it was asked to list."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: list[tuple[str, str, str, int]] = []

    def list(self, prefix: str) -> list[str]:
        self.calls.append(("list", prefix, "", 0))
        return super().list(prefix)

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        self.calls.append(("page", prefix, after, limit))
        return super().list_page(prefix, after, limit)


def chain(tmp_path: Path) -> tuple[StorageView, AESGCMBarrier, Spy]:
    spy = Spy(tmp_path / "data")
    barrier = AESGCMBarrier(CachingBackend(WriteNotifier(spy, ChangeRing())))
    root = os.urandom(32)
    barrier.persist_keyring(root, Keyring.generate(datetime(2026, 1, 1, tzinfo=UTC)))
    barrier.install(barrier.load_keyring(root))
    return StorageView(barrier, "logical/abc/"), barrier, spy


def test_a_page_is_a_range_scan_at_the_bottom(tmp_path: Path) -> None:
    view, _, spy = chain(tmp_path)
    view.transaction([("put", f"metadata/k{i:03d}", b"v") for i in range(300)])
    spy.calls.clear()
    assert view.list_page("metadata/", "k149", 3) == ["k150", "k151", "k152"]
    assert spy.calls == [("page", "logical/abc/metadata/", "k149", 3)]
    assert view.list_page("metadata/", "k299", 3) == []
    assert view.list_page("metadata/", "", -5) == view.list("metadata/")
    assert len(view.list("metadata/")) == 300


def test_sealed_barrier_refuses_to_list(tmp_path: Path) -> None:
    view, barrier, _ = chain(tmp_path)
    view.put("k", b"v")
    barrier.seal()
    with pytest.raises(SealedError):
        view.list_page("", "a", 1)


def test_backends_without_paging_cut_the_whole_listing() -> None:
    inmem = InmemBackend()
    for key in ("a", "b/c", "d"):
        inmem.put(key, b"v")
    view = StorageView(inmem, "")
    assert not hasattr(inmem, "list_page")
    assert view.list_page("", "a", 1) == ["b/"]
    assert list_page(inmem, "", "b/") == ["d"]
