"""The node-wide count of encryptions under the active key term (``sys/key-status``).

AES-GCM with random 96-bit nonces must not encrypt more than about 2^32 times under
one key; Vault counts every barrier encryption against the active term and rotates
the key past a threshold (node/encryptions.py). Every process of a node encrypts
(the owner at init and at checkpoints, each worker on writes), so the count lives
in one shared page, not in a per-process attribute a restart or another worker
never sees.

The page is a ``memfd``: the owner creates it and hands its descriptor to workers
over the coordinator socket (SCM_RIGHTS, node/rpc.py), which works whoever forked
whom. Every barrier write counts, so counting must be cheap: ``add`` takes no
syscall and no lock shared with another process.

* Each attached counter writes one **slot** of its own (a 64-bit word), under a
  thread lock of its own process only; nobody else ever writes that slot, so no
  increment can be lost. Aligned 8-byte stores and loads are single instructions
  on the platforms we run on (x86-64, aarch64): a reader sees the old or the new
  value, never a torn one.
* A slot is claimed with an open-file-description lock (``F_OFD_SETLK``) on a byte
  of its own, taken on the counter's own open file description (an attaching
  process reopens the memfd through ``/proc/self/fd``; the descriptor it received
  shares the sender's). The kernel drops the lock when the holder's last descriptor
  closes, killed or not: its slot becomes claimable again, and **its value stays**:
  slots are never zeroed, so what a dead process counted is never lost and a later
  claimant counts on from there. Nothing waits on a dead process, nothing wedges.
* The total is ``persisted + sum(slots) - offset``. ``persisted`` (the count the
  owner last checkpointed for the term) and ``offset`` (how much of the slots' sum is
  already in ``persisted``, or belongs to an older term) are written only by the
  owner, under a control lock (an OFD write lock on another byte) that readers take
  too: checkpoints and key-status are rare, writes are not. A rotation moves
  ``offset`` to the slots' current sum instead of zeroing slots other processes
  write, so an increment racing a reset is counted in one term, never lost.

A forked child inherits its parent's counter objects, slot included; a fork hook
makes each of them claim a slot of its own (on a reopened file description) at the
child's first ``add``. Should every slot be taken (hundreds of live processes), an
``add`` falls back to a shared overflow word under the control lock: slower, still
exact.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

_PAGE = mmap.PAGESIZE
_MAGIC = 0x5352454E43525950  # "SRENCRYP": the page is an encryption counter
# 64-bit words of the page: a header, then one slot per attached counter.
_W_MAGIC, _W_PERSISTED, _W_OFFSET, _W_HIGH, _W_OVERFLOW = 0, 1, 2, 3, 4
_FIRST_SLOT = 8
_SLOTS = _PAGE // 8 - _FIRST_SLOT
# Lock bytes (advisory, need not lie inside the file): one for the control fields,
# one per slot.
_CONTROL_BYTE = 0
_SLOT_BYTE = 1
# struct flock (Linux, 64-bit off_t): l_type, l_whence, l_start, l_len, l_pid.
_FLOCK = struct.Struct("@hhqqi4x")

_live: weakref.WeakSet[EncryptionCounter] = weakref.WeakSet()


def _ofd_lock(fd: int, kind: int, start: int, wait: bool) -> bool:
    """Take (``F_WRLCK``) or drop (``F_UNLCK``) an OFD lock on byte ``start``."""
    cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
    try:
        fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, start, 1, 0))
    except OSError as exc:
        if not wait and exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _reopen(fd: int) -> int:
    """A new open file description of the memfd, hence locks of our own."""
    return os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)


class EncryptionCounter:
    """Shared count of encryptions; ``EncryptionCounter()`` creates, ``(fd)`` attaches."""

    def __init__(self, fd: int | None = None) -> None:
        created = fd is None
        if fd is None:
            fd = os.memfd_create("strongroom-encryptions", os.MFD_CLOEXEC)
            os.ftruncate(fd, _PAGE)
        else:
            try:
                if os.fstat(fd).st_size < _PAGE:
                    raise ValueError("not an encryption counter")
                own = _reopen(fd)
            finally:
                os.close(fd)
            fd = own
        self._fd = fd
        self._page = mmap.mmap(fd, _PAGE)  # MAP_SHARED: every attached process sees it
        self._words = memoryview(self._page).cast("Q")
        if created:
            self._words[_W_MAGIC] = _MAGIC
        elif self._words[_W_MAGIC] != _MAGIC:
            self.close()
            raise ValueError("not an encryption counter")
        self._threads = threading.Lock()
        self._slot: int | None = None  # claimed at the first add
        self._forked = False
        _live.add(self)

    def fileno(self) -> int:
        """The memfd, to send to a worker (it stays owned by this object)."""
        return self._fd

    # -- the hot path --------------------------------------------------------------

    def add(self, n: int = 1) -> None:
        """Count ``n`` encryptions (every barrier write calls this): no syscall once
        this counter holds a slot."""
        with self._threads:
            slot = self._slot
            if slot is None:
                slot = self._claim()
            if slot >= 0:
                self._words[slot] += n
                return
        with self._control():  # every slot taken: the shared overflow word
            self._words[_W_OVERFLOW] += n

    def _claim(self) -> int:
        """Claim a free slot (under ``_threads``); -1 when every slot is taken."""
        if self._forked:
            self._own_description()
        with self._control():
            for index in range(_SLOTS):
                if _ofd_lock(self._fd, fcntl.F_WRLCK, _SLOT_BYTE + index, wait=False):
                    self._slot = _FIRST_SLOT + index
                    self._words[_W_HIGH] = max(self._words[_W_HIGH], index + 1)
                    return self._slot
        self._slot = -1
        return -1

    def _own_description(self) -> None:
        """After a fork: leave the parent's file description (and its slot lock)."""
        own = _reopen(self._fd)
        self._words.release()
        self._page.close()  # its descriptor shares the parent's description too
        os.close(self._fd)
        self._fd = own
        self._page = mmap.mmap(own, _PAGE)
        self._words = memoryview(self._page).cast("Q")
        self._forked = False

    def _after_fork(self) -> None:
        self._threads = threading.Lock()
        if self._slot is not None:
            self._slot, self._forked = None, True

    # -- the owner's side: rare, under the control lock ----------------------------

    @contextmanager
    def _control(self) -> Iterator[None]:
        with self._control_threads:
            _ofd_lock(self._fd, fcntl.F_WRLCK, _CONTROL_BYTE, wait=True)
            try:
                yield
            finally:
                _ofd_lock(self._fd, fcntl.F_UNLCK, _CONTROL_BYTE, wait=True)

    # One per process (OFD locks do not exclude threads sharing a description).
    _control_threads = threading.Lock()

    def _counted(self) -> int:
        """Every encryption ever counted in this page (under the control lock)."""
        high = _FIRST_SLOT + int(self._words[_W_HIGH])
        return int(self._words[_W_OVERFLOW]) + sum(self._words[_FIRST_SLOT:high])

    def read(self) -> tuple[int, int]:
        """``(persisted, unaccounted)``, read together."""
        with self._control():
            unaccounted = self._counted() - int(self._words[_W_OFFSET])
            return int(self._words[_W_PERSISTED]), unaccounted

    def total(self) -> int:
        """Encryptions under the active term: what ``sys/key-status`` reports."""
        persisted, unaccounted = self.read()
        return persisted + unaccounted

    def settle(self, persisted: int, taken: int) -> None:
        """A checkpoint stored ``persisted``, which includes ``taken`` unaccounted ones."""
        with self._control():
            offset = int(self._words[_W_OFFSET])
            self._words[_W_OFFSET] = offset + max(0, min(taken, self._counted() - offset))
            self._words[_W_PERSISTED] = persisted

    def reset(self, persisted: int = 0) -> None:
        """Start over from ``persisted`` (a rotation: 0; an unseal: the stored count)."""
        with self._control():
            self._words[_W_OFFSET] = self._counted()
            self._words[_W_PERSISTED] = persisted

    def close(self) -> None:
        """Detach (dropping this counter's slot lock; its count stays in the page)."""
        _live.discard(self)
        self._words.release()
        self._page.close()
        os.close(self._fd)


def _after_fork_in_child() -> None:
    EncryptionCounter._control_threads = threading.Lock()
    for counter in list(_live):
        counter._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
