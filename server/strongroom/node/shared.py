"""A generation counter in anonymous shared memory, inherited by forked workers.

The coordinator bumps it on every seal-state change; each worker compares it
with the generation it last applied before serving a request, so a change made
through any worker reaches every worker on its next request, with no polling.
"""

from __future__ import annotations

import mmap
import struct

_COUNTER = struct.Struct("=Q")


class SharedGeneration:
    """One 64-bit counter in a MAP_SHARED anonymous page (created before fork)."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE)

    def get(self) -> int:
        return int(_COUNTER.unpack_from(self._page, 0)[0])

    def set(self, value: int) -> None:
        # An aligned 8-byte store is a single write on every platform we run on.
        _COUNTER.pack_into(self._page, 0, value)
