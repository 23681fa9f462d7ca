"""A worker that dies holding a shared counter's lock does not freeze the node."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from strongroom.node.shared import ChangeRing, Op, SharedCounters, Slot


def die_holding(lock: object) -> None:
    pid = os.fork()
    if pid == 0:
        lock.acquire()  # type: ignore[attr-defined]
        os._exit(0)  # SIGKILL-like: no release
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("make", [
    lambda: (r := ChangeRing(), r._lock, lambda: r.append([(Op.PUT, "k")])[1] // 16),
    lambda: (c := SharedCounters(), c._lock, lambda: c.bump(Slot.SEAL)),
], ids=["change-ring", "shared-counters"])
def test_a_lock_left_by_a_dead_holder_is_taken_over(
        make: Callable[[], tuple[object, object, Callable[[], int]]]) -> None:
    _, lock, bump = make()
    first = bump()
    die_holding(lock)
    assert bump() == first + 1  # would block for good without the take-over
    assert bump() == first + 2
