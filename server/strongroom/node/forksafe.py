"""Fork the gunicorn master only between imports, never in the middle of one.

The master runs threads (the coordinator's socket server, the HA loop and its
heartbeat, the cluster listener) and forks a worker whenever gunicorn starts or
replaces one. Those threads import modules lazily: requests imports ``netrc``
on its first call, from a thread of the coordinator answering a worker. While a
module is being imported, its import lock is held until the module's code has
run. A worker forked at that moment inherits the lock, held by a thread that
does not exist in the worker, and the module, marked as still initialising:
every later import of it in that worker waits forever. For ``netrc`` that is
every request the worker makes through requests (each one runs ``from netrc
import ...``): a standby's worker hung on its first forwarded request, reading
the cluster certificate from Consul, and never exited.

``install()`` registers fork handlers that make a fork wait until no other
thread is in the middle of an import, and hold the interpreter's import lock
across the fork so that none can start one (CPython takes that lock during
``fork()`` too and hands it back, in the child, to the forking thread).
"""

from __future__ import annotations

import _imp
import logging
import os
import threading
import time
from importlib import _bootstrap

log = logging.getLogger(__name__)
# How long a fork waits for other threads' imports to finish. An import takes
# milliseconds; past this something is stuck, and the fork goes ahead (logged).
SETTLE_LIMIT = 10.0


class _State:
    installed = False
    unsettled: list[str] = []  # what a fork could not wait for (logged in the parent)


def imports_in_flight() -> list[str]:
    """Modules that another thread is importing now; call with the import lock held."""
    me = threading.get_ident()
    busy = []
    # name -> weak reference to the module's _ModuleLock (created only under the
    # import lock, removed when the lock is no longer referenced).
    for name, ref in list(getattr(_bootstrap, "_module_locks", {}).items()):
        lock = ref()
        owner = getattr(lock, "owner", None)
        if owner is not None and owner != me:
            busy.append(name)
    return sorted(busy)


def _before_fork() -> None:
    deadline = time.monotonic() + SETTLE_LIMIT
    while True:
        _imp.acquire_lock()
        busy = imports_in_flight()
        if not busy or time.monotonic() >= deadline:
            break
        # Let the importing thread finish (its nested imports need this lock).
        _imp.release_lock()
        time.sleep(0.001)
    _State.unsettled = busy  # held: no import starts before the fork


def _after_fork_in_parent() -> None:
    _imp.release_lock()
    if _State.unsettled:
        log.error("event=fork_during_import modules=%s: the new worker may hang on them",
                  ",".join(_State.unsettled))


def _after_fork_in_child() -> None:
    _imp.release_lock()


def install() -> None:
    """Make every later fork of this process wait for in-flight imports (idempotent)."""
    if _State.installed:
        return
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
    _State.installed = True


def installed() -> bool:
    return _State.installed
