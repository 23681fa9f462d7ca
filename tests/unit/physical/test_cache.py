"""CachingBackend: the storage contract, and reads that never go stale across processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from strongroom.errors import StorageError
from strongroom.node.shared import ChangeRing, Op
from strongroom.physical.base import Op as TxnOp
from strongroom.physical.cache import MAX_ENTRY_BYTES, CachingBackend
from strongroom.physical.file import FileBackend
from strongroom.physical.notify import WriteNotifier
from tests.support.backend_contract import BackendContract


class CountingBackend(FileBackend):
    """A file backend that counts the reads reaching it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)


def cached(inner: FileBackend, ring: ChangeRing | None = None,
           max_bytes: int | None = None) -> CachingBackend:
    """What one process of a node builds: the cache over the notifier over storage."""
    notifier = WriteNotifier(inner, ring or ChangeRing())
    return CachingBackend(notifier) if max_bytes is None else CachingBackend(notifier, max_bytes)


class TestCachingBackendContract(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> CachingBackend:
        return cached(FileBackend(tmp_path))


def test_repeated_reads_are_served_from_memory(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = cached(inner)
    cache.put("a", b"1")
    assert [cache.get("a") for _ in range(5)] == [b"1"] * 5
    assert cache.get("missing") is None and cache.get("missing") is None
    assert inner.reads == 1  # the miss, once; the written value was never read back


def test_a_write_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    ring = ChangeRing()  # shared memory, inherited by the child below
    parent = cached(FileBackend(tmp_path), ring)
    parent.put("k", b"old")
    parent.put("other", b"kept")
    assert parent.get("k") == b"old"
    assert parent.get("absent") is None
    pid = os.fork()
    if pid == 0:  # the child: another worker of the same node
        child = cached(FileBackend(tmp_path), ring)
        child.put("k", b"new")
        child.put("absent", b"now here")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.get("k") == b"new"
    assert parent.get("absent") == b"now here"


def test_another_process_s_write_drops_only_the_keys_it_wrote(tmp_path: Path) -> None:
    ring = ChangeRing()
    inner = CountingBackend(tmp_path)
    ours = cached(inner, ring)
    theirs = cached(FileBackend(tmp_path), ring)
    ours.put("x", b"1")
    ours.put("y", b"2")
    theirs.put("x", b"3")
    assert ours.get("x") == b"3"
    assert ours.get("y") == b"2"
    assert inner.reads == 1  # x read again; y still served from memory


def test_a_write_elsewhere_between_two_of_ours_drops_what_it_wrote(tmp_path: Path) -> None:
    ring = ChangeRing()
    ours = cached(FileBackend(tmp_path), ring)
    theirs = cached(FileBackend(tmp_path), ring)
    ours.put("x", b"1")
    assert ours.get("x") == b"1"
    theirs.put("x", b"2")
    ours.put("y", b"3")
    assert ours.get("x") == b"2"


def test_a_lapped_reader_forgets_everything(tmp_path: Path) -> None:
    ring = ChangeRing(capacity=256)
    inner = CountingBackend(tmp_path)
    ours = cached(inner, ring)
    theirs = cached(FileBackend(tmp_path), ring)
    ours.put("kept", b"v")
    assert ours.get("kept") == b"v"
    for i in range(20):  # far more than 256 bytes of records, none naming "kept"
        theirs.put(f"other{i}", b"x")
    assert ours.get("kept") == b"v"
    assert inner.reads == 1  # read again: the ring could no longer say it was untouched


class HalfWriting(FileBackend):
    """A storage that fails part-way through a transaction, after the first op landed
    (file storage's transactions are atomic since issue 14; a failure after a partial
    write is still possible where a backend applies ops one by one)."""

    def transaction(self, ops: Sequence[TxnOp]) -> None:
        super().transaction(ops[:1])
        if len(ops) > 1:
            raise StorageError("storage failed mid-transaction")


def test_a_failed_write_forgets_what_it_may_have_changed(tmp_path: Path) -> None:
    ring = ChangeRing()
    cache = cached(HalfWriting(tmp_path), ring)
    other = cached(FileBackend(tmp_path), ring)
    cache.put("k", b"v")
    assert other.get("k") == b"v"
    before = ring.head
    with pytest.raises(StorageError):
        cache.transaction([("put", "k", b"w"), ("put", "other", b"x")])
    assert ring.head > before  # other processes are told, though it failed
    assert cache.get("k") == b"w"  # the first op landed
    assert other.get("k") == b"w"


def test_large_values_are_not_cached(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = cached(inner)
    cache.put("big", b"x" * (MAX_ENTRY_BYTES + 1))
    cache.get("big")
    cache.get("big")
    assert inner.reads == 2


def test_the_byte_budget_bounds_memory(tmp_path: Path) -> None:
    inner = CountingBackend(tmp_path)
    cache = cached(inner, max_bytes=10_000)
    for i in range(100):
        cache.put(f"k{i}", b"v" * 1000)
    assert cache._bytes <= 10_000
    assert cache.get("k0") == b"v" * 1000  # evicted, read again from storage
    assert inner.reads == 1


def test_a_write_that_lost_the_race_on_disk_is_not_remembered(tmp_path: Path) -> None:
    """B writes first on disk, A overwrites; A publishes first, B second: B must not keep
    its own (overwritten) value cached."""
    ring = ChangeRing()
    a = cached(FileBackend(tmp_path), ring)
    b = cached(FileBackend(tmp_path), ring)
    b.get("k")
    a.get("k")

    def lands_first_publishes_last(ops: object) -> tuple[int, int]:
        b.inner.inner.put("k", b"from-b")  # B's file lands first...
        a.put("k", b"from-a")  # ...A's replaces it, and A publishes
        return ring.append([(Op.PUT, "k")])  # B publishes last

    b.inner.apply = lands_first_publishes_last  # type: ignore[method-assign]
    b.put("k", b"from-b")
    assert b.get("k") == b"from-a"
    assert a.get("k") == b"from-a"


def test_a_read_racing_another_process_s_write_is_not_remembered(tmp_path: Path) -> None:
    """Our read gets the old value while another process's write lands and is published:
    served (it was current when read), but not kept."""
    ring = ChangeRing()
    theirs = cached(FileBackend(tmp_path), ring)
    theirs.put("k", b"old")

    class Racing(FileBackend):
        def get(self, key: str) -> bytes | None:
            value = super().get(key)
            theirs.put("k", b"new")  # lands and is published after our read
            return value

    ours = cached(Racing(tmp_path), ring)
    assert ours.get("k") == b"old"
    ours.inner._inner = FileBackend(tmp_path)  # no more races
    assert ours.get("k") == b"new"


def test_a_read_in_flight_during_our_own_write_is_not_remembered(tmp_path: Path) -> None:
    """Thread 1 reads the old value; thread 2 writes and remembers its value; thread 1's
    late answer must not replace it."""
    release = threading.Event()
    reading = threading.Event()

    class Slow(FileBackend):
        def get(self, key: str) -> bytes | None:
            value = super().get(key)
            reading.set()
            release.wait(5)
            return value

    cache = cached(Slow(tmp_path))
    cache.inner.inner.put("k", b"old")  # type: ignore[attr-defined]
    reader = threading.Thread(target=cache.get, args=("k",))
    reader.start()
    reading.wait(5)
    cache.put("k", b"new")
    release.set()
    reader.join(5)
    assert cache.get("k") == b"new"
