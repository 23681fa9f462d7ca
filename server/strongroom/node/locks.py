"""Striped locks that exclude every thread of every worker process on this node.

Read-modify-write sequences on storage (a KV version and its metadata, a
token's remaining uses) must not interleave across gunicorn workers. Each
stripe is a threading lock (threads of one process) plus ``flock`` on a file
in a private directory created by the node's owner (processes). A single-process
node needs no directory and uses the threading locks alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STRIPES = 256
_thread_locks = [threading.Lock() for _ in range(STRIPES)]
# Locks are nested in one order of kinds: a token, a token's lease (auth/...), a
# secret's lease, a database role, a database config (e.g. the expiry runner holds a
# token's lease while its tree's secret leases are marked; a lease's revocation holds
# the database config's lock). Each kind hashes onto stripes of its own: two names of
# different kinds sharing a stripe would reverse that order and deadlock. A transit
# key's lock (a ring's read-modify-write) is taken last and holds no other inside; so
# is an identity alias's (the login stage creating its entity once). An AppRole role's
# lock may hold its SecretIDs' locks (deleting a role, issuing a SecretID), never the
# reverse; neither is held while another kind is taken.
_KINDS = ("token|", "lease|auth/", "lease|", "database-static:", "database:", "transit:",
          "identity:", "approle-role:", "approle-secret:")
_PER_KIND = STRIPES // (len(_KINDS) + 1)
# Stripes this thread holds: a nested node_lock on a stripe already held (two names
# hashing alike, e.g. a lease's and the database engine's inside its revoke) must not
# wait on itself.
_held = threading.local()
_state: dict[str, object] = {"dir": None, "pid": None, "fds": {}}


def configure(lock_dir: str | None) -> None:
    """Called in the owner before it forks the arbiter: workers inherit the directory name."""
    _state["dir"] = lock_dir
    _state["pid"] = None
    _state["fds"] = {}


def lock_dir() -> str | None:
    """The node's private lock directory (None: a single-process node). Other
    node-wide state shared by the workers through files lives there too
    (auth/login_guard.py's failure table)."""
    value = _state["dir"]
    return None if value is None else str(value)


def _fd(stripe: int) -> int | None:
    lock_dir = _state["dir"]
    if lock_dir is None:
        return None
    # File descriptors are per process: a forked worker opens its own.
    if _state["pid"] != os.getpid():
        _state["pid"] = os.getpid()
        _state["fds"] = {}
    fds: dict[int, int] = _state["fds"]  # type: ignore[assignment]
    fd = fds.get(stripe)
    if fd is None:
        fd = os.open(os.path.join(str(lock_dir), f"{stripe:03d}.lock"),
                     os.O_RDWR | os.O_CREAT, 0o600)
        fds[stripe] = fd
    return fd


@contextmanager
def node_lock(name: str) -> Iterator[None]:
    """Hold the stripe for ``name`` against every thread and process of this node."""
    stripe = _stripe(name)
    held: set[int] = _held.__dict__.setdefault("stripes", set())
    if stripe in held:
        yield  # this thread holds it already (and the flock with it)
        return
    with _thread_locks[stripe]:
        held.add(stripe)
        try:
            yield from _flocked(stripe)
        finally:
            held.discard(stripe)


def _stripe(name: str) -> int:
    kind = next((i for i, prefix in enumerate(_KINDS) if name.startswith(prefix)),
                len(_KINDS))
    digest = hashlib.sha256(name.encode()).digest()
    return kind * _PER_KIND + int.from_bytes(digest[:4], "big") % _PER_KIND


def _flocked(stripe: int) -> Iterator[None]:
    fd = _fd(stripe)
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
