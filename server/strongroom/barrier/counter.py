"""The node-wide count of encryptions under the active key term (``sys/key-status``).

AES-GCM with random 96-bit nonces must not encrypt more than about 2^32 times under
one key; Vault counts every barrier encryption against the active term and rotates
the key past a threshold (node/encryptions.py). Every process of a node encrypts
(the owner at init and at checkpoints, each worker on writes), so the count lives
in one shared page, not in a per-process attribute a restart or another worker
never sees.

The page is a ``memfd``: the owner creates it and hands its descriptor to workers
over the coordinator socket (SCM_RIGHTS, node/rpc.py), which works whoever forked
whom. It holds two 64-bit numbers:

* ``persisted``: the count the owner last checkpointed into storage for the term;
* ``unaccounted``: encryptions made since, by any process.

Increments are serialised by ``flock`` on the memfd (between processes; the kernel
drops it when its holder dies, so a killed worker cannot wedge the node) plus a
thread lock (threads of one process share the lock's open file). ``flock`` belongs
to an open file description, which a descriptor received over a socket shares with
the sender: an attaching process reopens the memfd (``/proc/self/fd``) to get its
own. (``flock`` costs a third of a POSIX record lock here: ~2 µs per increment.)
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PAGE = mmap.PAGESIZE
_PAIR = struct.Struct("=QQ")  # persisted, unaccounted


class EncryptionCounter:
    """Shared count of encryptions; ``EncryptionCounter()`` creates, ``(fd)`` attaches."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("strongroom-encryptions", os.MFD_CLOEXEC)
            os.ftruncate(fd, _PAGE)
        else:
            try:
                if os.fstat(fd).st_size < _PAGE:
                    raise ValueError("not an encryption counter")
                # Our own open file description, hence our own flock (see above).
                own = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
            finally:
                os.close(fd)
            fd = own
        self._fd = fd
        self._page = mmap.mmap(fd, _PAGE)  # MAP_SHARED: every attached process sees it
        self._threads = threading.Lock()

    def fileno(self) -> int:
        """The memfd, to send to a worker (it stays owned by this object)."""
        return self._fd

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def add(self, n: int = 1) -> None:
        """Count ``n`` encryptions (every barrier write calls this)."""
        with self._locked():
            persisted, unaccounted = _PAIR.unpack_from(self._page)
            _PAIR.pack_into(self._page, 0, persisted, unaccounted + n)

    def read(self) -> tuple[int, int]:
        """``(persisted, unaccounted)``, read together."""
        with self._locked():
            persisted, unaccounted = _PAIR.unpack_from(self._page)
            return int(persisted), int(unaccounted)

    def total(self) -> int:
        """Encryptions under the active term: what ``sys/key-status`` reports."""
        persisted, unaccounted = self.read()
        return persisted + unaccounted

    def settle(self, persisted: int, taken: int) -> None:
        """A checkpoint stored ``persisted``, which includes ``taken`` unaccounted ones."""
        with self._locked():
            _, unaccounted = _PAIR.unpack_from(self._page)
            _PAIR.pack_into(self._page, 0, persisted, max(0, unaccounted - taken))

    def reset(self, persisted: int = 0) -> None:
        """Start over from ``persisted`` (a rotation: 0; an unseal: the stored count)."""
        with self._locked():
            _PAIR.pack_into(self._page, 0, persisted, 0)

    def close(self) -> None:
        self._page.close()
        os.close(self._fd)
