"""Node-wide connection counts: each worker its slot, the master frees a dead one's."""

from __future__ import annotations

import os

from strongroom.node.connections import ConnectionCounts


def test_counts_add_up_across_processes_and_a_dead_workers_slot_is_freed() -> None:
    counts = ConnectionCounts(slots=4)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker holding 3 connections, then exiting without closing them
        counts.claim()
        for _ in range(3):
            counts.add(1)
        os.write(write, b"x")
        os._exit(0)
    os.read(read, 1)
    counts.claim()
    counts.add(1)
    assert counts.total() == 4
    os.waitpid(pid, 0)
    counts.release(pid)  # gunicorn's child_exit
    assert counts.total() == 1
    counts.add(-1)
    assert counts.total() == 0


def test_a_slot_whose_owner_died_unreleased_is_reused() -> None:
    counts = ConnectionCounts(slots=1)
    pid = os.fork()
    if pid == 0:
        counts.claim()
        counts.add(5)
        os._exit(0)
    os.waitpid(pid, 0)
    counts.claim()  # the only slot, its owner gone
    assert counts.total() == 0
