"""Failed-login backoff, per client address and per principal, node-wide.

A node runs several worker processes; counting failures in each worker's memory
would give an attacker one budget per worker. The counts live in one small table
shared by every process of the node: a file in the node's private lock directory
(``node/locks.py``, created by the owner before the workers are forked), mapped
into each process (``mmap``, MAP_SHARED) and updated under ``flock`` on that file.
An update is a few dictionary-free memory operations and costs microseconds, so it
is done on whatever thread runs the request, the event loop included; nothing
here sleeps: the wait a failure earns is carried by ``LoginFailedError.delay``,
which the http layer awaits (asyncio) before answering.

Why a mapped file rather than the owner's RPC or barrier storage: a login must not
add a socket round trip (and the owner's availability) to every attempt, and
failure counts are not worth replicating or persisting (OpenBao keeps its lockout
counts in memory too). On a single-process node (no lock directory) the table is
anonymous memory.

Policy: each key (``c`` + client address; ``p`` + mount accessor + principal)
counts failures; the first ``FREE_FAILURES`` cost nothing, each later one opens a
window of ``BASE_DELAY * 2**k`` seconds (capped at ``MAX_DELAY``) during which
every attempt for that client or principal is refused, before any verification,
with the same status and text as a wrong password; past its free failures a
principal also gets one verification at a time (a second, concurrent attempt is
refused as if inside a window), else every thread of the node could check a guess
at the end of each window. Counts are forgotten
``RESET_AFTER`` seconds after the last failure; a success forgets the principal's
(not the client's: a client with one valid account must not clear its own count).

Targeted lockout (review i15 F2): a principal's window refuses every client, so one
wrong guess per window from anywhere would keep its owner out for as long as the
attacker cares to. A success also remembers the (principal, client) pair for
``KNOWN_CLIENT_FOR``: a client that logged in as the principal before is spared the
principal's window and its one-at-a-time claim, and held to its own client window
only (which an attacker sharing its address shares too). Its first failure makes it
unknown again. While the principal is past its free failures a known client still
verifies one attempt at a time (its own claim, in its own slot): else every request
sent at once from the owner's address (an attacker behind the same NAT or on the same
/64) was verified before the first failure made it unknown, a burst of as many guesses
as the node has login threads per login of the owner (review s11 F1). An owner on a
new address is still refused while the principal is backed off: letting any new
client through would give a distributed attacker one verification per address and
window.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import mmap
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from strongroom.errors import LoginFailedError
from strongroom.node import locks

if TYPE_CHECKING:
    from strongroom.core.mounts import MountContext
    from strongroom.core.request import Request

FREE_FAILURES = 3
BASE_DELAY = 1.0
MAX_DELAY = 60.0
RESET_AFTER = 900.0
# A claimed attempt (``_Table.claim``) that neither failed nor succeeded (an error on
# the way: a directory that went away) frees its key after this long: longer than an
# LDAP login may wait on its directory (connect and request timeouts).
PENDING_TIMEOUT = 150
DEFAULT_MESSAGE = "invalid credentials"
# How long a client that logged in as a principal stays known to it (see above).
KNOWN_CLIENT_FOR = 86400.0

# The table: slots of (16-byte key digest, u32 failures, u32 start of the running
# claimed attempt (``_Table.claim``), f64 time of the last failure), open addressing
# over PROBES neighbouring slots, in two regions: SLOTS for failure counts, then
# KNOWN_SLOTS for known clients. Apart, because a known client has no failures and so
# would be the first evicted: a flood of one-failure keys (fresh names from an IPv6
# /48's 65,536 clients) forgot every known client, and the targeted lockout was back
# (review s11 F2). Only other known clients (successful logins) compete for theirs.
_SLOT = struct.Struct("<16sIId")
SLOTS = 8192
KNOWN_SLOTS = 4096
PROBES = 16
_FAILURES = (0, SLOTS)
_KNOWN = (SLOTS, KNOWN_SLOTS)
TABLE_FILE = "login_guard.table"
_EMPTY = bytes(16)


def window(failures: int) -> float:
    """Seconds of backoff after the ``failures``-th failure in a row."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(BASE_DELAY * 2.0 ** (failures - FREE_FAILURES - 1), MAX_DELAY)


class _Table:
    """The shared (or, without a lock directory, process-local) failure table."""

    def __init__(self, path: str | None) -> None:
        size = (SLOTS + KNOWN_SLOTS) * _SLOT.size
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if path is None:
            self._map = mmap.mmap(-1, size)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._fd = fd
        self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._fd is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _find(self, key: bytes, now: float, insert: bool,
              region: tuple[int, int] = _FAILURES) -> int | None:
        """The slot holding ``key``; with ``insert``, else a free or expired slot of
        its neighbourhood, or the one with the fewest failures (the oldest of those).
        Evicting the oldest regardless of its count let a flood of fresh one-failure
        keys (distinct usernames from distinct addresses) push a backed-off key out
        and reset it (review i15 F4): a flood now evicts its own kind first."""
        base, slots = region
        start = int.from_bytes(key[:4], "little") % slots
        victim, victim_rank = None, (2, 0, 0.0)
        for step in range(PROBES):
            index = base + (start + step) % slots
            slot_key, failures, _spare, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
            if slot_key == key:
                return index
            stale = slot_key == _EMPTY or now - last > RESET_AFTER
            rank = (0, 0, 0.0) if stale else (1, int(failures), last)
            if victim is None or rank < victim_rank:
                victim, victim_rank = index, rank
        return victim if insert else None

    def read(self, key: bytes, now: float,
             region: tuple[int, int] = _FAILURES) -> tuple[int, float]:
        index = self._find(key, now, insert=False, region=region)
        if index is None:
            return 0, 0.0
        _key, failures, _spare, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
        if now - last > RESET_AFTER:
            return 0, 0.0
        return failures, last

    def record(self, key: bytes, now: float) -> int:
        index = self._find(key, now, insert=True)
        assert index is not None  # noqa: S101 - insert always finds a victim
        slot_key, failures, _spare, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
        if slot_key != key or now - last > RESET_AFTER:
            failures = 0
        failures += 1
        _SLOT.pack_into(self._map, index * _SLOT.size, key, failures, 0, now)
        return int(failures)

    def claim(self, key: bytes, now: float) -> tuple[int, bool]:
        """A backed-off key's single attempt: (its failures, whether this call got it).

        Once a key has used its free failures, one verification at a time may run for
        it: the slot's second u32 holds when the running one began (whole seconds, mod
        2**32; 0: none), cleared by its failure (``record``) or success (``forget``), or
        stale after ``PENDING_TIMEOUT`` (an attempt that ended in an error)."""
        index = self._find(key, now, insert=False)
        if index is None:
            return 0, True
        slot_key, failures, since, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
        if now - last > RESET_AFTER or failures < FREE_FAILURES:
            return int(failures), True
        if since and (int(now) - since) % 2**32 <= PENDING_TIMEOUT:
            return int(failures), False
        _SLOT.pack_into(self._map, index * _SLOT.size, slot_key, failures,
                        int(now) % 2**32 or 1, last)
        return int(failures), True

    def release(self, key: bytes, now: float, region: tuple[int, int] = _FAILURES) -> None:
        """End a claimed attempt that neither failed nor succeeded."""
        index = self._find(key, now, insert=False, region=region)
        if index is not None:
            slot_key, failures, _since, last = _SLOT.unpack_from(self._map,
                                                                 index * _SLOT.size)
            _SLOT.pack_into(self._map, index * _SLOT.size, slot_key, failures, 0, last)

    def hold(self, key: bytes, now: float) -> bool:
        """A known client's single attempt (its slot's claim, as ``claim``): whether
        this call got it. Cleared by ``remember`` (a success), ``forget`` (a failure)
        or ``release``; stale after ``PENDING_TIMEOUT``."""
        index = self._find(key, now, insert=False, region=_KNOWN)
        if index is None:
            return True
        slot_key, failures, since, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
        if since and (int(now) - since) % 2**32 <= PENDING_TIMEOUT:
            return False
        _SLOT.pack_into(self._map, index * _SLOT.size, slot_key, failures,
                        int(now) % 2**32 or 1, last)
        return True

    def remember(self, key: bytes, now: float, seconds: float) -> None:
        """Keep ``key`` with no failures for ``seconds`` (a known client): its time is
        set that far past the usual RESET_AFTER, so ``read`` gives a non-zero time
        until then. In the known clients' region: when its neighbourhood there fills,
        the one remembered longest ago goes first."""
        index = self._find(key, now, insert=True, region=_KNOWN)
        assert index is not None  # noqa: S101 - insert always finds a victim
        _SLOT.pack_into(self._map, index * _SLOT.size, key, 0, 0,
                        now + max(0.0, seconds - RESET_AFTER))

    def forget(self, key: bytes, now: float, region: tuple[int, int] = _FAILURES) -> None:
        index = self._find(key, now, insert=False, region=region)
        if index is not None:
            _SLOT.pack_into(self._map, index * _SLOT.size, _EMPTY, 0, 0, 0.0)


_tables: dict[tuple[int, str | None], _Table] = {}
_tables_lock = threading.Lock()


def _table() -> _Table:
    """This process's mapping of the node's table (a forked worker maps its own)."""
    lock_dir = locks.lock_dir()
    key = (os.getpid(), lock_dir)
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            path = None if lock_dir is None else os.path.join(lock_dir, TABLE_FILE)
            table = _tables[key] = _Table(path)
        return table


def _digest(*parts: str) -> bytes:
    text = "\x00".join(parts).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, digest_size=16, person=b"sr-login-guard").digest()
    # An all-zero digest would read as an empty slot; practically impossible, but cheap.
    return digest if digest != _EMPTY else b"\x01" + digest[1:]


def client_key(remote_addr: str) -> str:
    """The client a failure is counted for: an IPv4 address (also when it arrives
    IPv4-mapped on a dual-stack listener), or an IPv6 address's /64. One host
    usually holds a whole /64 (SLAAC, privacy addresses): per address, it had 2**64
    budgets of free failures (review i15 F7)."""
    try:
        addr = ipaddress.ip_address(remote_addr.strip("[]"))
    except ValueError:
        return remote_addr
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class LoginGuard:
    """One auth mount's view of the node's failure table. Methods call ``before``
    first, then verify, then ``failure`` or ``success``; a principal that does not
    exist goes through the same calls as one that does."""

    def __init__(self, ctx: MountContext, message: str = DEFAULT_MESSAGE) -> None:
        self._ctx = ctx
        self._accessor = ctx.mount.accessor
        self._message = message

    def _now(self) -> float:
        return self._ctx.clock().timestamp()

    def _keys(self, req: Request, principal: str) -> tuple[bytes, bytes]:
        return (_digest("c", client_key(req.remote_addr)),
                _digest("p", self._accessor, principal))

    def _known_key(self, req: Request, principal: str) -> bytes:
        return _digest("k", self._accessor, principal, client_key(req.remote_addr))

    def before(self, req: Request, principal: str, message: str | None = None) -> bool:
        """Refuse (``LoginFailedError``, the wrong-password text) while the client or
        the principal is inside a backoff window; the delay is what is left of it.
        Returns whether the attempt went ahead as a known client's (what ``abandon``
        must release: that client's slot, or the principal's claim)."""
        now = self._now()
        table = _table()
        wait = 0.0
        with table.locked():
            keys = self._keys(req, principal)
            known_key = self._known_key(req, principal)
            known = table.read(known_key, now, _KNOWN)[1] > 0
            for key in keys[:1] if known else keys:
                failures, last = table.read(key, now)
                wait = max(wait, last + window(failures) - now)
            if wait <= 0 and known:
                # One at a time for a known client too while the principal is under
                # attack (review s11 F1); a fleet behind one address is not serialised
                # otherwise.
                failures = table.read(keys[1], now)[0]
                if failures >= FREE_FAILURES and not table.hold(known_key, now):
                    wait = window(failures + 1)
            elif wait <= 0:
                # Checking the window and recording the failure are apart by a whole
                # verification (bcrypt, an LDAP bind): without a claim, every thread
                # of every worker passed the check at the window's end and verified
                # one guess each (review i15 F5: 6 guesses per window on 3 workers).
                failures, claimed = table.claim(keys[1], now)
                if not claimed:
                    wait = window(failures + 1)
        if wait > 0:
            raise LoginFailedError(message or self._message, delay=min(wait, MAX_DELAY))
        return known

    def failure(self, req: Request, principal: str, message: str | None = None) -> NoReturn:
        """Count a failed verification for the client and the principal; raise
        ``LoginFailedError(message)`` carrying the backoff it earned."""
        now = self._now()
        table = _table()
        with table.locked():
            counts = [table.record(key, now) for key in self._keys(req, principal)]
            table.forget(self._known_key(req, principal), now, _KNOWN)
        raise LoginFailedError(message or self._message, delay=window(max(counts)))

    def success(self, req: Request, principal: str) -> None:
        """Forget the principal's failures (the client's stay counted); remember the
        client as one that knows the principal's secret."""
        now = self._now()
        table = _table()
        with table.locked():
            table.forget(self._keys(req, principal)[1], now)
            table.remember(self._known_key(req, principal), now, KNOWN_CLIENT_FOR)

    def abandon(self, req: Request, principal: str, known: bool) -> None:
        """The attempt ended in an error that proves nothing either way (a directory
        that did not answer): the principal's next attempt may run at once rather than
        after ``PENDING_TIMEOUT``. Counts nothing. ``known``: what ``before`` returned
        (whether the client is known may have changed since: it says which claim this
        attempt holds)."""
        now = self._now()
        table = _table()
        with table.locked():
            if known:
                table.release(self._known_key(req, principal), now, _KNOWN)
            else:
                table.release(self._keys(req, principal)[1], now)
