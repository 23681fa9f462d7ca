"""node/locks.py: a stripe excludes every thread of this process and every other
process of the node (flock on a file in the node's lock directory).

Across processes the other holder is a real process (another interpreter that
configured the same directory, as a worker does). "Does not get it" can only be
shown by waiting: each such wait is bounded and short; every positive wait polls.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.node import locks
from tests.support.servers import strongroom_env

# How long a blocked acquirer is watched to show it stays blocked.
BLOCKED_FOR = 0.3

HOLDER = r"""
import sys
from strongroom.node import locks
locks.configure(sys.argv[1])
with locks.node_lock(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def stripe(name: str) -> int:
    return locks._stripe(name)


def two_names_in_different_stripes() -> tuple[str, str]:
    first = "a"
    other = next(f"b{i}" for i in range(1000) if stripe(f"b{i}") != stripe(first))
    return first, other


@pytest.fixture(params=["single-process", "with-lock-dir"])
def lock_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    directory = str(tmp_path) if request.param == "with-lock-dir" else None
    locks.configure(directory)
    yield directory
    locks.configure(None)


class Holder:
    """Another process holding ``name``'s stripe until ``release``."""

    def __init__(self, directory: str, name: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, directory, name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=strongroom_env())
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        assert self.proc.wait(30) == 0


def acquire_in_thread(name: str) -> tuple[threading.Thread, threading.Event,
                                          threading.Event]:
    """Take ``name`` in a new thread; returns it, 'acquired', and 'let go'."""
    acquired, let_go = threading.Event(), threading.Event()

    def take() -> None:
        with locks.node_lock(name):
            acquired.set()
            let_go.wait(30)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, acquired, let_go


def test_threads_of_one_process_exclude_each_other(lock_dir: str | None) -> None:
    with locks.node_lock("kv/data/x"):
        thread, acquired, let_go = acquire_in_thread("kv/data/x")
        assert not acquired.wait(BLOCKED_FOR)
    assert acquired.wait(10)  # released: the other thread gets it
    let_go.set()
    thread.join(10)


def test_different_stripes_do_not_exclude(lock_dir: str | None) -> None:
    first, other = two_names_in_different_stripes()
    with locks.node_lock(first):
        thread, acquired, let_go = acquire_in_thread(other)
        assert acquired.wait(10)
        let_go.set()
        thread.join(10)


def test_the_same_stripe_excludes_across_processes(tmp_path: Path) -> None:
    locks.configure(str(tmp_path))
    try:
        holder = Holder(str(tmp_path), "token/uses/abc")
        thread, acquired, let_go = acquire_in_thread("token/uses/abc")
        assert not acquired.wait(BLOCKED_FOR)
        holder.release()
        assert acquired.wait(10)
        let_go.set()
        thread.join(10)
    finally:
        locks.configure(None)


def test_a_process_waits_for_this_one(tmp_path: Path) -> None:
    locks.configure(str(tmp_path))
    try:
        with locks.node_lock("kv/metadata/y"):
            proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path),
                                     "kv/metadata/y"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=strongroom_env())
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(BLOCKED_FOR)  # blocked in flock, has printed nothing
        out, _ = proc.communicate("\n", timeout=30)
        assert out.split() == ["held", "released"]
    finally:
        locks.configure(None)


def test_other_stripes_are_free_while_a_process_holds_one(tmp_path: Path) -> None:
    first, other = two_names_in_different_stripes()
    locks.configure(str(tmp_path))
    try:
        holder = Holder(str(tmp_path), first)
        with locks.node_lock(other):
            pass  # would block forever if stripes were not independent
        holder.release()
    finally:
        locks.configure(None)


def test_lock_files_are_private(tmp_path: Path) -> None:
    locks.configure(str(tmp_path))
    try:
        with locks.node_lock("x"):
            pass
        (lock_file,) = tmp_path.iterdir()
        assert lock_file.name == f"{stripe('x'):03d}.lock"
        assert lock_file.stat().st_mode & 0o777 == 0o600
    finally:
        locks.configure(None)


def same_stripe_names() -> tuple[str, str]:
    first = "lease|a"  # same kind (names of different kinds never share a stripe)
    for i in range(100_000):
        other = f"lease|{i}"
        if stripe(other) == stripe(first):
            return first, other
    raise AssertionError("no collision found")


def test_a_thread_holding_a_stripe_can_take_another_name_of_it(tmp_path: Path) -> None:
    """A lease's lock held while its backend revokes, which takes its own node lock:
    two names may share a stripe, and the thread must not wait on itself."""
    first, other = same_stripe_names()
    locks.configure(str(tmp_path))
    try:
        done = threading.Event()

        def nested() -> None:
            with locks.node_lock(first), locks.node_lock(other), locks.node_lock(first):
                pass
            done.set()

        worker = threading.Thread(target=nested, daemon=True)
        worker.start()
        assert done.wait(5), "nested node_lock on one stripe deadlocked"
        # And the stripe is released afterwards (another thread gets it).
        got = threading.Event()

        def take() -> None:
            with locks.node_lock(first):
                got.set()

        threading.Thread(target=take, daemon=True).start()
        assert got.wait(5)
    finally:
        locks.configure(None)
