"""node/shared.py: the seal counter and the change ring, within and across processes."""

from __future__ import annotations

import multiprocessing

import pytest

from strongroom.node.shared import ChangeRing, Op, SharedCounters, Slot

# Fork before any thread exists in the child's parent (pytest runs none of its own).
FORK = multiprocessing.get_context("fork")


# -- SharedCounters -------------------------------------------------------------------


def test_counters_start_at_one_and_count_bumps() -> None:
    counters = SharedCounters()
    assert counters.get(Slot.SEAL) == 1
    assert counters.snapshot() == (1,)
    assert counters.bump(Slot.SEAL) == 2
    assert counters.snapshot() == (2,)


def _bump_many(counters: SharedCounters, times: int) -> None:
    for _ in range(times):
        counters.bump(Slot.SEAL)


def test_concurrent_bumps_from_two_processes_are_all_counted() -> None:
    counters = SharedCounters()
    children = [FORK.Process(target=_bump_many, args=(counters, 500)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert counters.get(Slot.SEAL) == 1 + 1000


# -- ChangeRing -----------------------------------------------------------------------


def test_records_come_back_in_order_with_their_positions() -> None:
    ring = ChangeRing()
    start = ring.head
    span = ring.append([(Op.PUT, "sys/policy/a"), (Op.DELETE, "core/mounts")])
    assert span == (start, ring.head)
    head, records = ring.read(start)
    assert head == ring.head
    assert records is not None
    assert [(op, key) for _, op, key in records] == [(Op.PUT, "sys/policy/a"),
                                                     (Op.DELETE, "core/mounts")]
    assert records[0][0] == start and span[0] <= records[1][0] < span[1]
    assert ring.read(head) == (head, [])  # nothing new


def test_records_wrap_around_the_end_intact() -> None:
    ring = ChangeRing(capacity=256)
    position = ring.head
    seen: list[str] = []
    written = [f"key/{i}/" + "x" * (i % 23) for i in range(60)]  # odd sizes, many wraps
    for key in written:
        ring.append([(Op.PUT, key)])
        position, records = ring.read(position)
        assert records is not None
        seen.extend(key for _, _, key in records)
    assert seen == written


def test_a_reader_lapped_by_the_ring_is_told_so() -> None:
    ring = ChangeRing(capacity=256)
    since = ring.head
    for i in range(40):
        ring.append([(Op.PUT, f"k{i}")])
    head, records = ring.read(since)
    assert records is None
    assert head == ring.head  # the reader resumes from here
    assert ring.read(head) == (head, [])


def test_a_key_too_long_for_the_ring_becomes_a_reset() -> None:
    ring = ChangeRing(capacity=256)
    since = ring.head
    ring.append([(Op.PUT, "k" * 200)])
    _, records = ring.read(since)
    assert records is not None and [(op, key) for _, op, key in records] == [(Op.RESET, "")]


def test_non_ascii_keys_survive() -> None:
    ring = ChangeRing()
    since = ring.head
    ring.append([(Op.PUT, "logical/ü/ключ")])
    _, records = ring.read(since)
    assert records is not None and records[0][2] == "logical/ü/ключ"


def test_capacity_is_checked() -> None:
    with pytest.raises(ValueError):
        ChangeRing(capacity=100)
    with pytest.raises(ValueError):
        ChangeRing(capacity=1001)


def _append_many(ring: ChangeRing, name: str, count: int) -> None:
    for i in range(count):
        ring.append([(Op.PUT, f"{name}/{i}"), (Op.DELETE, f"{name}/{i}/gone")])


def test_records_appended_by_other_processes_are_read_here_whole() -> None:
    ring = ChangeRing()
    since = ring.head
    children = [FORK.Process(target=_append_many, args=(ring, name, 300))
                for name in ("a", "b")]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    _, records = ring.read(since)
    assert records is not None
    keys = [key for _, _, key in records]
    assert len(keys) == 1200
    for name in ("a", "b"):
        # Each process's records in its own order, none torn or lost.
        mine = [key for key in keys if key.startswith(name + "/")]
        assert mine == [k for i in range(300) for k in (f"{name}/{i}", f"{name}/{i}/gone")]


def _read_in_child(ring: ChangeRing, since: int, ready: object, go: object,
                   out: object) -> None:
    ready.set()  # type: ignore[attr-defined]
    go.wait(30)  # type: ignore[attr-defined]
    _, records = ring.read(since)
    out.put(None if records is None else [key for _, _, key in records])  # type: ignore[attr-defined]


def test_a_forked_reader_sees_what_was_written_before_and_after_the_fork() -> None:
    ring = ChangeRing()
    since = ring.head
    ring.append([(Op.PUT, "before")])
    ready, go, queue = FORK.Event(), FORK.Event(), FORK.SimpleQueue()
    child = FORK.Process(target=_read_in_child, args=(ring, since, ready, go, queue))
    child.start()
    assert ready.wait(30)
    ring.append([(Op.PUT, "after")])  # written in the parent once the child runs
    go.set()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get() == ["before", "after"]
