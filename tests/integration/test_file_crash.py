"""Crash safety of FileBackend under real SIGKILLs.

A subprocess writes keys in a loop and acknowledges each after ``put`` returns;
the test kills it at random moments (restarting a little behind its last ack, so
overwrites of acknowledged keys get interrupted too), then checks that every
acknowledged write reads back byte-exact and nothing in the tree is corrupt.

Each run is killed once it has acknowledged its first put (a readiness wait, not a
time limit: the pytest timeout catches a writer that hangs) plus a random moment: the
random delay is the fuzzing of the crash point, not synchronisation. Killing right
after the k-th ack instead was tried: the kill then lands at the start of a put far
more often, and an in-place (non-atomic) write was caught in 2 runs of 6 instead of
6 of 6. No assertion on how long the test takes (that belongs in bench/).
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from strongroom.physical.file import FileBackend

WRITER = Path(__file__).resolve().parent / "file_crash_writer.py"
SERVER_DIR = Path(__file__).resolve().parents[2] / "server"
KILLS = 15
#: After its first acknowledged put, a run is killed this many seconds later (random).
KILL_AFTER = (0.02, 0.2)

# Load the writer by path, so the test needs no package or sys.path changes.
_spec = importlib.util.spec_from_file_location("file_crash_writer", WRITER)
assert _spec is not None and _spec.loader is not None
_writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_writer)
crash_key = _writer.crash_key
crash_value = _writer.crash_value


def read_acks(fd: int, buffer: bytearray, lines: int | None) -> None:
    """Read from the pipe into ``buffer``: until it holds ``lines`` full lines, or to EOF
    if ``lines`` is None (or the writer died first)."""
    while lines is None or buffer.count(b"\n") < lines:
        chunk = os.read(fd, 65536)  # blocks until the writer acknowledges (or dies)
        if not chunk:
            return
        buffer += chunk


def parse_acks(buffer: bytes) -> list[int]:
    # A trailing partial line cannot happen (each ack is one small write) but is ignored.
    lines = buffer.split(b"\n")[:-1]
    acks = []
    for line in lines:
        word, number = line.split()
        assert word == b"ack"
        acks.append(int(number))
    return acks


def walk(backend: FileBackend, prefix: str = "") -> list[str]:
    keys = []
    for child in backend.list(prefix):
        if child.endswith("/"):
            keys += walk(backend, prefix + child)
        else:
            keys.append(prefix + child)
    return keys


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rng = random.Random()
    env = {**os.environ, "PYTHONPATH": str(SERVER_DIR), "PYTHONUNBUFFERED": "1"}
    allowed: dict[int, set[bytes | None]] = {}  # key index -> values a read may return
    acked: set[int] = set()
    next_index = 0

    for generation in range(KILLS):
        start = max(0, next_index - rng.randint(0, 5))  # re-write some acked keys
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(root), str(start), str(generation)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buffer = bytearray()
        try:
            read_acks(fd, buffer, 1)
            time.sleep(rng.uniform(*KILL_AFTER))  # a random crash point, see above
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            read_acks(fd, buffer, None)
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL

        acks = parse_acks(bytes(buffer))
        assert acks == list(range(start, start + len(acks)))
        for index in acks:
            allowed[index] = {crash_value(index, generation)}
            acked.add(index)
        # The put in flight when the process died may or may not have landed.
        in_flight = start + len(acks)
        allowed.setdefault(in_flight, {None}).add(crash_value(in_flight, generation))
        next_index = max(next_index, in_flight)

    assert len(acked) > KILLS  # each run acknowledged at least one write
    backend = FileBackend(root)
    for index in acked:
        value = backend.get(crash_key(index))
        assert value is not None, f"acknowledged key {index} lost"
        assert value in allowed[index], f"acknowledged key {index} has the wrong value"

    # Every entry in the tree is intact (get raises CorruptEntryError otherwise)
    # and is one this test knows about.
    known = {crash_key(index): index for index in allowed}
    stored = walk(backend)
    assert len(stored) == len(set(stored))
    for key in stored:
        assert key in known, f"unexpected entry {key!r}"
        assert backend.get(key) in allowed[known[key]]
    assert {crash_key(index) for index in acked} <= set(stored)
    assert backend.list("crash/") == [f"{n}/" for n in range(5)]
