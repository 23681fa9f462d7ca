"""The login guard: backoff per client and per principal, shared by every process of a
node through the mapped table in the node's lock directory."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.auth import login_guard
from strongroom.auth.login_guard import FREE_FAILURES, LoginGuard, window
from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request
from strongroom.errors import LoginFailedError
from strongroom.node import locks
from strongroom.physical.inmem import InmemBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def make_guard(clock: Clock, accessor: str = "auth_userpass_1") -> LoginGuard:
    ctx = MountContext(storage=StorageView(InmemBackend(), "x/"),
                       mount=MountEntry(path="userpass/", type="userpass", accessor=accessor),
                       clock=clock)
    return LoginGuard(ctx, message="invalid username or password")


def req(addr: str = "192.0.2.1") -> Request:
    return Request(Operation.UPDATE, "auth/userpass/login/u", remote_addr=addr)


def fail(guard: LoginGuard, principal: str, addr: str = "192.0.2.1") -> float:
    with pytest.raises(LoginFailedError) as err:
        guard.failure(req(addr), principal, "invalid username or password")
    assert err.value.status == 400 and err.value.message == "invalid username or password"
    return err.value.delay


def test_window_grows_and_is_capped() -> None:
    assert [window(n) for n in range(1, FREE_FAILURES + 1)] == [0.0] * FREE_FAILURES
    assert window(FREE_FAILURES + 1) == 1.0 and window(FREE_FAILURES + 2) == 2.0
    assert window(100) == login_guard.MAX_DELAY


def test_backoff_per_client_and_per_principal() -> None:
    clock = Clock()
    guard = make_guard(clock)
    delays = [fail(guard, f"user{i}") for i in range(FREE_FAILURES + 1)]
    assert delays == [0.0] * FREE_FAILURES + [1.0]  # one client, many principals
    # Inside the window even a right password is refused, with the wrong password's text.
    with pytest.raises(LoginFailedError) as err:
        guard.before(req(), "someone-else")
    assert err.value.message == "invalid username or password" and err.value.delay == 1.0
    guard.before(req("198.51.100.9"), "someone-else")  # another client is not slowed
    clock.now += 1.01
    guard.before(req(), "someone-else")
    # Per principal: many clients against one user.
    for i in range(FREE_FAILURES + 1):
        fail(guard, "victim", addr=f"203.0.113.{i}")
    with pytest.raises(LoginFailedError):
        guard.before(req("203.0.113.200"), "victim")
    # Another mount's principal of the same name is another principal.
    make_guard(clock, accessor="auth_userpass_2").before(req("203.0.113.200"), "victim")
    # A success forgets the principal's count, not the client's.
    clock.now += 1.01
    guard.success(req("203.0.113.200"), "victim")
    guard.before(req("203.0.113.201"), "victim")
    assert fail(guard, "x") >= 2.0  # the first client's count went on


def test_counts_reset_after_quiet_period() -> None:
    clock = Clock()
    guard = make_guard(clock)
    for _ in range(FREE_FAILURES + 2):
        fail(guard, "u")
    clock.now += login_guard.RESET_AFTER + 1
    guard.before(req(), "u")
    assert fail(guard, "u") == 0.0


def _worker_failures(lock_dir: str, n: int, start: float) -> None:
    locks.configure(lock_dir)
    clock = Clock()
    clock.now = start
    guard = make_guard(clock)
    for _ in range(n):
        try:
            guard.failure(req(), "shared")
        except LoginFailedError:
            pass
    os._exit(0)


def test_processes_of_a_node_count_together(tmp_path: Path) -> None:
    lock_dir = str(tmp_path)
    locks.configure(lock_dir)
    clock = Clock()
    guard = make_guard(clock)
    guard.before(req(), "shared")  # maps the table before the fork, as a worker might
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker_failures, args=(lock_dir, 2, clock.now))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0
    # 6 failures from 3 processes: past the free ones, wherever they were counted.
    with pytest.raises(LoginFailedError) as err:
        guard.before(req(), "shared")
    assert err.value.delay == window(6)
    assert (tmp_path / login_guard.TABLE_FILE).stat().st_mode & 0o777 == 0o600


def _neighbours(accessor: str, of: str, count: int) -> list[str]:
    """Principals whose table neighbourhood covers ``of``'s home slot."""
    def home(name: str) -> int:
        digest = login_guard._digest("p", accessor, name)
        return int.from_bytes(digest[:4], "little") % login_guard.SLOTS

    target = home(of)
    names, i = [], 0
    while len(names) < count:
        i += 1
        if (target - home(f"flood{i}")) % login_guard.SLOTS < login_guard.PROBES:
            names.append(f"flood{i}")
    return names


def test_a_flood_of_fresh_keys_does_not_evict_a_backed_off_principal() -> None:
    """Review i15 F4: the table evicted the oldest key of a full neighbourhood whatever
    its count, so one failure each for a few dozen usernames (from as many addresses)
    reset a backed-off user's count and bought an attacker free guesses again."""
    clock = Clock()
    guard = make_guard(clock)
    for i in range(FREE_FAILURES + 3):
        clock.now += 10
        fail(guard, "victim", addr=f"203.0.113.{i}")
    with pytest.raises(LoginFailedError):
        guard.before(req("198.51.100.1"), "victim")
    for i, name in enumerate(_neighbours("auth_userpass_1", "victim", 3 * login_guard.PROBES)):
        clock.now += 0.001
        fail(guard, name, addr=f"2001:db8::{i + 1:x}")
    with pytest.raises(LoginFailedError):
        guard.before(req("198.51.100.1"), "victim")


def test_one_verification_at_a_time_past_the_free_failures() -> None:
    """Review i15 F5: ``before`` checked the window and ``failure`` recorded the
    failure a whole verification (bcrypt, an LDAP bind) later: at each window's end
    every thread of every worker passed the check and verified a guess (6 per window
    measured on 3 workers). Past the free failures a principal's attempts now run one
    at a time."""
    clock = Clock()
    guard = make_guard(clock)
    # Below the free failures concurrent attempts all run (a fleet sharing one role).
    guard.before(req("192.0.2.10"), "victim")
    guard.before(req("192.0.2.11"), "victim")
    for i in range(FREE_FAILURES):
        fail(guard, "victim", addr=f"203.0.113.{i}")
    guard.before(req("198.51.100.1"), "victim")  # claims the one attempt
    with pytest.raises(LoginFailedError) as err:
        guard.before(req("198.51.100.2"), "victim")  # concurrent: refused
    assert err.value.message == "invalid username or password"
    assert err.value.delay == window(FREE_FAILURES + 1)
    assert fail(guard, "victim", addr="198.51.100.1") == window(FREE_FAILURES + 1)
    clock.now += window(FREE_FAILURES + 1) + 0.01
    guard.before(req("198.51.100.2"), "victim")  # the failure ended the claim
    guard.success(req("198.51.100.2"), "victim")
    guard.before(req("198.51.100.3"), "victim")  # a success forgets it all
    guard.before(req("198.51.100.4"), "victim")
    # A claimed attempt that ended in an error frees the principal after a while.
    for i in range(FREE_FAILURES):
        fail(guard, "other", addr=f"203.0.113.{i + 10}")
    guard.before(req("198.51.100.5"), "other")
    with pytest.raises(LoginFailedError):
        guard.before(req("198.51.100.6"), "other")
    clock.now += login_guard.PENDING_TIMEOUT + 1
    known = guard.before(req("198.51.100.6"), "other")
    # ... or at once when the method says so (an error that proves nothing).
    guard.abandon(req("198.51.100.6"), "other", known)
    guard.before(req("198.51.100.7"), "other")
    with pytest.raises(LoginFailedError):
        guard.before(req("198.51.100.8"), "other")


def test_an_ipv6_client_is_its_64() -> None:
    """Review i15 F7: a host usually holds a whole IPv6 /64; counted per address, each of
    its 2**64 addresses had its own free failures. An IPv4-mapped address is its IPv4
    client."""
    clock = Clock()
    guard = make_guard(clock)
    for i in range(FREE_FAILURES + 1):
        fail(guard, f"user{i}", addr=f"2001:db8:1:2::{i + 1:x}")
    with pytest.raises(LoginFailedError):
        guard.before(req("2001:db8:1:2:ffff::9"), "fresh")
    guard.before(req("2001:db8:1:3::1"), "fresh")  # the next /64 is another client
    for i in range(FREE_FAILURES + 1):
        fail(guard, f"user{i}", addr="192.0.2.77" if i % 2 else "::ffff:192.0.2.77")
    with pytest.raises(LoginFailedError):
        guard.before(req("192.0.2.77"), "fresh")
    with pytest.raises(LoginFailedError):
        guard.before(req("::ffff:192.0.2.77"), "fresh")


def test_a_client_that_logged_in_before_is_spared_the_principals_window() -> None:
    """Review i15 F2 (targeted lockout): the principal's window refuses every client,
    so an attacker's guess per window kept the owner out; a client that logged in as
    the principal is held to its own window only, until its own first failure."""
    clock = Clock()
    guard = make_guard(clock)
    owner, attacker, newcomer = "192.0.2.10", "198.51.100.7", "203.0.113.5"
    guard.before(req(owner), "alice")
    guard.success(req(owner), "alice")
    for i in range(FREE_FAILURES + 2):
        fail(guard, "alice", f"198.51.100.{i + 20}")
    # The principal is backed off: a new client is refused, an earlier one is not.
    with pytest.raises(LoginFailedError):
        guard.before(req(newcomer), "alice")
    assert guard.before(req(owner), "alice")  # as a known client
    guard.abandon(req(owner), "alice", True)  # that attempt ended (s11 F1: one at a time)
    # ... nor while the attacker's own attempt holds the one-at-a-time claim.
    clock.now += window(FREE_FAILURES + 2) + 0.01
    guard.before(req(attacker), "alice")
    guard.before(req(owner), "alice")
    # A known client that fails becomes unknown: the principal's window applies again.
    fail(guard, "alice", owner)
    with pytest.raises(LoginFailedError):
        guard.before(req(owner), "alice")
    # Being known ends after KNOWN_CLIENT_FOR.
    guard.success(req(newcomer), "alice")
    for i in range(FREE_FAILURES + 1):
        fail(guard, "alice", f"198.51.100.{i + 40}")
    guard.before(req(newcomer), "alice")
    clock.now += login_guard.KNOWN_CLIENT_FOR + 1
    for i in range(FREE_FAILURES + 1):
        fail(guard, "alice", f"198.51.100.{i + 60}")
    with pytest.raises(LoginFailedError):
        guard.before(req(newcomer), "alice")


def test_a_known_client_for_one_principal_is_not_known_for_another() -> None:
    clock = Clock()
    guard = make_guard(clock)
    other_mount = make_guard(clock, accessor="auth_userpass_2")
    guard.success(req("192.0.2.10"), "alice")
    for i in range(FREE_FAILURES + 1):
        fail(guard, "bob", f"198.51.100.{i + 20}")
        fail(other_mount, "alice", f"198.51.100.{i + 20}")
    for g, user in ((guard, "bob"), (other_mount, "alice")):
        with pytest.raises(LoginFailedError):
            g.before(req("192.0.2.10"), user)


def test_abandon_releases_the_claim_its_attempt_took() -> None:
    """An attempt that began as a known client's took no principal claim; if the client
    became unknown meanwhile (its concurrent attempt failed), abandoning the first must
    not free the claim another client's attempt holds (review s11: abandon re-read
    whether the client is known, and let a second guess run at once)."""
    clock = Clock()
    guard = make_guard(clock)
    known_client = "192.0.2.10"
    guard.success(req(known_client), "alice")
    assert guard.before(req(known_client), "alice") is True  # its attempt runs...
    for i in range(FREE_FAILURES - 1):
        fail(guard, "alice", f"198.51.100.{i + 20}")
    fail(guard, "alice", known_client)  # ... a concurrent one fails: unknown now
    assert guard.before(req("198.51.100.99"), "alice") is False  # claims the principal
    guard.abandon(req(known_client), "alice", True)  # the first attempt's error
    with pytest.raises(LoginFailedError):
        guard.before(req("198.51.100.98"), "alice")  # the claim still holds
