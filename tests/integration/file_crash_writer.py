"""Writer for test_file_crash.py: puts keys forever, acknowledging each on stdout.

Usage: file_crash_writer.py ROOT START GENERATION

Writes key ``crash_key(i)`` -> ``crash_value(i, GENERATION)`` for i = START, START+1,
... and prints ``ack <i>`` only after ``put`` has returned, so every acknowledged
write must survive the SIGKILL the test sends at a random moment.
"""

from __future__ import annotations

import hashlib
import sys

MAX_VALUE = 64 * 1024


def crash_key(index: int) -> str:
    """The key written at step ``index`` (nested, so directories get created too)."""
    return f"crash/{index % 5}/{index % 3}/k{index}"


def crash_value(index: int, generation: int) -> bytes:
    """A deterministic value of 0..64 KiB for step ``index`` of run ``generation``."""
    size = (index * 7919 + generation * 104729) % (MAX_VALUE + 1)
    block = hashlib.sha256(f"{index}:{generation}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def main() -> None:
    from strongroom.physical.file import FileBackend

    root, start, generation = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    backend = FileBackend(root)
    index = start
    while True:
        backend.put(crash_key(index), crash_value(index, generation))
        sys.stdout.write(f"ack {index}\n")
        sys.stdout.flush()
        index += 1


if __name__ == "__main__":
    main()
