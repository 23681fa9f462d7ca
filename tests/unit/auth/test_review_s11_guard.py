"""Review s11 (attacker side) of the login guard's known-client exemption (commit
82f3e1c): what a client the table remembers as having logged in as a principal can
do that another cannot. The clock is the test's; the table is the process's own."""

from __future__ import annotations

import pytest

from strongroom.auth import login_guard
from strongroom.auth.login_guard import FREE_FAILURES, client_key, window
from strongroom.errors import LoginFailedError
from tests.unit.auth.test_login_guard_table import Clock, fail, make_guard, req


def _back_off(guard: login_guard.LoginGuard, principal: str, failures: int) -> None:
    for i in range(failures):
        fail(guard, principal, f"198.51.100.{i + 20}")


def test_s11_f1_a_known_address_verifies_one_guess_at_a_time() -> None:
    """F1: a known client skipped the principal's one-at-a-time claim and had no claim
    of its own, so every request sent at once from the owner's address (an attacker
    behind the owner's NAT, on its /64, or the owner's own compromised host) was
    verified: one burst of as many guesses as the node has login threads per login
    the owner makes, where an unknown client gets one per window. A known client now
    holds a claim of its own while the principal is past its free failures."""
    clock = Clock()
    guard = make_guard(clock)
    owner = "192.0.2.10"
    guard.before(req(owner), "alice")
    guard.success(req(owner), "alice")
    _back_off(guard, "alice", FREE_FAILURES + 2)
    guard.before(req(owner), "alice")  # the known client's attempt runs...
    with pytest.raises(LoginFailedError) as err:  # ... and a concurrent one does not
        guard.before(req(owner), "alice")
    assert err.value.message == "invalid username or password" and err.value.delay > 0
    # An error that proves nothing (abandon) ends the attempt: the next one runs.
    guard.abandon(req(owner), "alice", True)
    guard.before(req(owner), "alice")
    # A failure ends it and the client is unknown again: the principal's window applies.
    fail(guard, "alice", owner)
    with pytest.raises(LoginFailedError):
        guard.before(req(owner), "alice")
    # A success ends the attempt too (and forgets the principal's failures).
    guard.success(req("192.0.2.10"), "alice")
    _back_off(guard, "alice", FREE_FAILURES + 2)
    guard.before(req("192.0.2.10"), "alice")
    guard.success(req("192.0.2.10"), "alice")
    _back_off(guard, "alice", FREE_FAILURES + 2)
    guard.before(req("192.0.2.10"), "alice")


def test_s11_a_known_client_below_the_free_failures_is_not_serialised() -> None:
    """What F1's fix must not take away: a fleet behind one address logging in at once
    while nobody is attacking the principal."""
    clock = Clock()
    guard = make_guard(clock)
    guard.success(req("192.0.2.10"), "ci")
    for _ in range(5):
        guard.before(req("192.0.2.10"), "ci")


def test_s11_an_ipv4_mapped_address_is_the_same_known_client() -> None:
    clock = Clock()
    guard = make_guard(clock)
    guard.success(req("::ffff:192.0.2.10"), "alice")
    _back_off(guard, "alice", FREE_FAILURES + 2)
    guard.before(req("192.0.2.10"), "alice")
    assert client_key("[::ffff:192.0.2.10]") == "192.0.2.10"


def test_s11_f2_a_flood_of_failures_does_not_forget_a_known_client() -> None:
    """F2: known-client entries have no failures, so in one table with the failure
    counts they were evicted before every other key: a flood of one-failure keys
    (distinct names from an IPv6 /48's many /64 clients) forgot every known client and
    the targeted lockout of i15 F2 was back. They now have a region of their own."""
    clock = Clock()
    guard = make_guard(clock)
    owner = "192.0.2.10"
    guard.success(req(owner), "alice")
    # The known key's neighbourhood, filled by failures of fresh usernames from fresh
    # clients (one failure each: no client is backed off).
    known = guard._known_key(req(owner), "alice")
    home = int.from_bytes(known[:4], "little") % login_guard.SLOTS
    names, i = [], 0
    while len(names) < 2 * login_guard.PROBES:
        i += 1
        digest = login_guard._digest("p", "auth_userpass_1", f"flood{i}")
        if (home - int.from_bytes(digest[:4], "little")) % login_guard.SLOTS \
                < login_guard.PROBES:
            names.append(f"flood{i}")
    for n, name in enumerate(names):
        clock.now += 0.001
        fail(guard, name, addr=f"2001:db8:0:{n + 1:x}::1")
    _back_off(guard, "alice", FREE_FAILURES + 2)
    guard.before(req(owner), "alice")  # before: refused, the owner locked out again


def test_s11_window_of_the_known_refusal_is_the_next_one() -> None:
    """The refusal of a concurrent known attempt carries the principal's next window,
    as the unknown one-at-a-time refusal does."""
    clock = Clock()
    guard = make_guard(clock)
    guard.success(req("192.0.2.10"), "alice")
    _back_off(guard, "alice", FREE_FAILURES + 1)
    guard.before(req("192.0.2.10"), "alice")
    with pytest.raises(LoginFailedError) as err:
        guard.before(req("192.0.2.10"), "alice")
    assert err.value.delay == window(FREE_FAILURES + 2)
