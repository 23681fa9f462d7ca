"""Lock every process's memory in RAM (``disable_mlock = false``), as Vault does.

Keys live in process memory while unsealed; a page swapped out would put them
on disk, where a seal cannot wipe them. ``mlockall`` keeps every page of the
process resident. Linux does not carry memory locks across ``fork()``, so the
node's owner (the key holder) locks itself at start-up (:func:`lock_owner`) and
every gunicorn worker locks itself again right after it is forked
(:func:`lock_worker`). The gunicorn arbiter between them never holds a key
(node/supervisor.py) and is not locked.

``MCL_ONFAULT`` (Linux 4.4+) is added when the kernel has it: pages are locked
as they are first touched instead of being faulted in up front, so a worker
thread's 8 MiB stack reservation does not all become resident. A page that was
never touched holds no data, so the protection is the same.

Dev mode does not lock memory (as ``vault server -dev``), nor does a config
with ``disable_mlock = true``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import sys

log = logging.getLogger(__name__)

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

FAILURE = """Failed to lock memory: {reason}

This usually means that the mlock syscall is not permitted to this process.
Strongroom uses mlock (mlockall) to keep its memory, and the keys in it, from
being swapped to disk. Locking all of a process's memory needs the CAP_IPC_LOCK
capability (root has it unless it was dropped; a systemd unit grants it with
AmbientCapabilities=CAP_IPC_LOCK), or an RLIMIT_MEMLOCK ("ulimit -l",
LimitMEMLOCK= in systemd) at least as large as the whole process. Please allow
mlock on your system, or disable it by setting `disable_mlock = true` in the
configuration file (then make sure swap is off or encrypted)."""


class MemoryLockError(RuntimeError):
    """Memory could not be locked although the configuration asks for it."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mlockall() -> None:
    if not sys.platform.startswith("linux"):
        raise MemoryLockError(FAILURE.format(reason="mlockall is only supported on Linux"))
    libc = _libc()
    flags = MCL_CURRENT | MCL_FUTURE
    if libc.mlockall(flags | MCL_ONFAULT) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EINVAL and libc.mlockall(flags) == 0:  # a kernel without MCL_ONFAULT
        return
    err = ctypes.get_errno() if err == errno.EINVAL else err
    reason = os.strerror(err)
    if err == errno.EPERM:
        reason += " (the process lacks CAP_IPC_LOCK and its RLIMIT_MEMLOCK is 0)"
    elif err in (errno.ENOMEM, errno.EAGAIN):
        reason += " (the process lacks CAP_IPC_LOCK and exceeds its RLIMIT_MEMLOCK)"
    raise MemoryLockError(FAILURE.format(reason=reason))


def wanted(disable_mlock: bool, dev: bool) -> bool:
    """Whether this server locks memory: not in dev mode, not when the config disables it."""
    return not (disable_mlock or dev)


def lock_owner(disable_mlock: bool, dev: bool = False) -> bool:
    """Lock the owner's memory at start-up, before any key can exist in it.

    Returns:
        True if memory is now locked, False if locking is not wanted.

    Raises:
        MemoryLockError: With the message to show the operator (it names
            CAP_IPC_LOCK, RLIMIT_MEMLOCK and disable_mlock).
    """
    if not wanted(disable_mlock, dev):
        return False
    _mlockall()
    log.info("event=memory_locked process=owner")
    return True


def lock_worker(disable_mlock: bool, dev: bool = False) -> bool:
    """Lock a freshly forked worker's memory (locks are not inherited across fork).

    Raises:
        MemoryLockError: As :func:`lock_owner`; the worker then fails to boot and
            gunicorn stops the server rather than run a worker whose keys may swap.
    """
    if not wanted(disable_mlock, dev):
        return False
    _mlockall()
    return True
