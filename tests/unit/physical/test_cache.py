"""CachingBackend: the storage contract, and reads that never go stale across processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.physical.cache import MAX_ENTRY_BYTES, CachingBackend, WriteGeneration
from strongroom.physical.file import FileBackend
from tests.support.backend_contract import BackendContract


class CountingBackend(FileBackend):
    """A file backend that counts the reads reaching it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)


class TestCachingBackendContract(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> CachingBackend:
        return CachingBackend(FileBackend(tmp_path), WriteGeneration())


def test_repeated_reads_are_served_from_memory(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = CachingBackend(inner, WriteGeneration())
    cache.put("a", b"1")
    assert [cache.get("a") for _ in range(5)] == [b"1"] * 5
    assert cache.get("missing") is None and cache.get("missing") is None
    assert inner.reads == 1  # the miss, once; the written value was never read back


def test_a_write_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    generation = WriteGeneration()  # shared memory, inherited by the child below
    parent = CachingBackend(FileBackend(tmp_path), generation)
    parent.put("k", b"old")
    assert parent.get("k") == b"old"
    assert parent.get("absent") is None
    pid = os.fork()
    if pid == 0:  # the child: another worker of the same node
        child = CachingBackend(FileBackend(tmp_path), generation)
        child.put("k", b"new")
        child.put("absent", b"now here")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.get("k") == b"new"
    assert parent.get("absent") == b"now here"


def test_a_write_elsewhere_between_two_of_ours_drops_the_cache(tmp_path: Path) -> None:
    generation = WriteGeneration()
    ours = CachingBackend(FileBackend(tmp_path), generation)
    theirs = CachingBackend(FileBackend(tmp_path), generation)
    ours.put("x", b"1")
    assert ours.get("x") == b"1"
    theirs.put("x", b"2")
    ours.put("y", b"3")  # our next write notices a generation that skipped one
    assert ours.get("x") == b"2"


def test_a_failed_write_forgets_what_it_may_have_changed(tmp_path: Path) -> None:
    generation = WriteGeneration()
    cache = CachingBackend(FileBackend(tmp_path), generation)
    cache.put("k", b"v")
    before = generation.value
    with pytest.raises(Exception):  # noqa: B017 - any storage failure
        cache.put("bad/../key", b"x")
    assert generation.value == before + 1  # other processes forget too
    assert cache.get("k") == b"v"


def test_large_values_are_not_cached(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = CachingBackend(inner, WriteGeneration())
    cache.put("big", b"x" * (MAX_ENTRY_BYTES + 1))
    cache.get("big")
    cache.get("big")
    assert inner.reads == 2


def test_the_byte_budget_bounds_memory(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = CachingBackend(inner, WriteGeneration(), max_bytes=10_000)
    for i in range(100):
        cache.put(f"k{i}", b"v" * 1000)
    assert cache._bytes <= 10_000
    assert cache.get("k0") == b"v" * 1000  # evicted, read again from storage
    assert inner.reads == 1


def test_a_write_that_lost_the_race_on_disk_is_not_remembered(tmp_path: Path) -> None:
    """B writes first on disk, A overwrites; A bumps first, B second: B must not keep its own
    (overwritten) value cached."""
    generation = WriteGeneration()
    a = CachingBackend(FileBackend(tmp_path), generation)
    b = CachingBackend(FileBackend(tmp_path), generation)
    b.get("k")  # both up to date with the generation
    a.get("k")
    b.inner.put("k", b"from-b")  # B's file lands first...
    a.inner.put("k", b"from-a")  # ...and A's replaces it
    a._seen = generation.bump()  # A's bump comes first (what a.put does after its write)
    a._remember("k", b"from-a")
    b._write(lambda: None, [("put", "k", b"from-b")])  # B's bump comes second
    assert b.get("k") == b"from-a"
    assert a.get("k") == b"from-a"
