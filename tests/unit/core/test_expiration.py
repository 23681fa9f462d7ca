"""The expiration manager in one process: registration, sys/leases/*, expiry, retries.

A real core on inmem storage with the test-only leased engine mounted through the
registry; the owner's expiry runner is driven directly with an explicit ``now`` (the
server-process tests in tests/integration/test_lease_expiry.py run it for real).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.core.expiration import MAX_REVOKE_ATTEMPTS, ExpirationManager
from strongroom.core.lease_expiry import ExpiryRunner
from tests.support.leased_engine import Ledger, leased_engine
from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with leased_engine() as ledger:
        yield ledger


@pytest.fixture
def d(ledger: Ledger) -> DevNode:
    node = dev_node()
    resp = node.call("POST", "sys/mounts/db", json={"type": "leasetest"})
    assert resp.status_code == 204, resp.text
    return node


def creds(d: DevNode, role: str = "app", token: str | None = None, **params: Any) -> Any:
    resp = d.call("GET", f"db/creds/{role}", token=token, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json


def lookup(d: DevNode, lease_id: str) -> Any:
    return d.call("PUT", "sys/leases/lookup", json={"lease_id": lease_id})


def later(d: DevNode, seconds: float) -> float:
    return d.node.core.now() + seconds


def test_a_leased_secret_gets_a_lease_under_its_request_path(d: DevNode) -> None:
    body = creds(d, ttl="10m")
    lease_id = body["lease_id"]
    assert lease_id.startswith("db/creds/app/") and len(lease_id.rsplit("/", 1)[1]) == 24
    assert (body["lease_duration"], body["renewable"]) == (600, True)
    data = lookup(d, lease_id).json["data"]
    assert data["id"] == lease_id and data["path"] == "db/creds/app"
    assert data["renewable"] is True and 598 <= data["ttl"] <= 600
    assert data["last_renewal"] is None and data["expire_time"].endswith("Z")
    listed = d.call("LIST", "sys/leases/lookup/db/creds/app/").json["data"]["keys"]
    assert listed == [lease_id.rsplit("/", 1)[1]]
    assert d.call("LIST", "sys/leases/lookup/db/").json["data"]["keys"] == ["creds/"]


def test_the_stored_lease_keeps_internal_not_the_response_data(d: DevNode) -> None:
    body = creds(d)
    raw = d.node.core.barrier.get("sys/expire/id/" + body["lease_id"])
    assert raw is not None
    assert b"pw-" not in raw and body["data"]["username"].encode() in raw


def test_renewal_respects_the_role_max_ttl_from_issue_time(d: DevNode, ledger: Ledger) -> None:
    body = creds(d, ttl="60s", max_ttl="120s")
    resp = d.call("PUT", "sys/leases/renew", json={"lease_id": body["lease_id"],
                                                   "increment": "1h"})
    assert resp.status_code == 200, resp.text
    renewed = resp.json
    assert renewed["lease_id"] == body["lease_id"] and renewed["renewable"] is True
    assert 118 <= renewed["lease_duration"] <= 120 and renewed["warnings"]
    assert ledger.renewed == [body["data"]["username"]]
    assert lookup(d, body["lease_id"]).json["data"]["last_renewal"] is not None
    # The URL form, and the mount's tuned max.
    other = creds(d, ttl="60s")
    assert d.call("POST", "sys/mounts/db/tune", json={"max_lease_ttl": "90s"}).status_code == 204
    resp = d.call("PUT", "sys/leases/renew/" + other["lease_id"], json={"increment": 3600})
    assert resp.status_code == 200 and 88 <= resp.json["lease_duration"] <= 90


def test_revoke_then_renew_and_lookup_answer_vaults_400s(d: DevNode, ledger: Ledger) -> None:
    body = creds(d)
    lease_id = body["lease_id"]
    assert d.call("PUT", "sys/leases/revoke", json={"lease_id": lease_id}).status_code == 204
    assert ledger.revoked == [body["data"]["username"]]
    renew = d.call("PUT", "sys/leases/renew", json={"lease_id": lease_id})
    assert (renew.status_code, renew.json) == (400, {"errors": ["lease not found"]})
    assert (lookup(d, lease_id).status_code, lookup(d, lease_id).json) == (
        400, {"errors": ["invalid lease"]})
    # Revoking it again is a no-op, as in Vault; nothing was revoked twice.
    assert d.call("PUT", "sys/leases/revoke/" + lease_id).status_code == 204
    assert ledger.revoked == [body["data"]["username"]]


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("sys/leases/lookup", {}, 400, "lease_id must be specified"),
    ("sys/leases/lookup", {"lease_id": "db/creds/app/nope"}, 400, "invalid lease"),
    ("sys/leases/renew", {}, 400, "lease_id must be specified"),
    ("sys/leases/renew", {"lease_id": "nope/x"}, 400, "lease not found"),
    ("sys/leases/renew", {"lease_id": "nope/../x"}, 400,
     "failed to read lease entry nope/../x: relative paths not supported"),
    ("sys/leases/lookup", {"lease_id": "a//b"}, 400, "invalid lease"),
    ("sys/leases/revoke", {}, 400, "lease_id must be specified"),
])
def test_bad_lease_ids(d: DevNode, path: str, body: dict[str, Any], status: int,
                       error: str) -> None:
    resp = d.call("PUT", path, json=body)
    assert (resp.status_code, resp.json) == (status, {"errors": [error]})


def test_a_token_lease_cannot_be_renewed_here(d: DevNode) -> None:
    d.call("POST", "auth/token/create", json={"ttl": "1h"})
    [key] = d.call("LIST", "sys/leases/lookup/auth/token/create/").json["data"]["keys"]
    resp = d.call("PUT", "sys/leases/renew", json={"lease_id": "auth/token/create/" + key})
    assert (resp.status_code, resp.json) == (
        400, {"errors": ["tokens cannot be renewed through this endpoint"]})


def test_revoke_prefix_revokes_only_what_matches(d: DevNode, ledger: Ledger) -> None:
    app = [creds(d, "app")["data"]["username"] for _ in range(3)]
    other = creds(d, "other")
    resp = d.call("PUT", "sys/leases/revoke-prefix/db/creds/app")
    assert resp.status_code == 204, resp.text
    assert sorted(ledger.revoked) == sorted(app)
    assert ledger.users == {other["data"]["username"]}
    assert lookup(d, other["lease_id"]).status_code == 200
    # An exact lease id is a prefix too.
    assert d.call("PUT", "sys/leases/revoke-prefix/" + other["lease_id"]).status_code == 204
    assert ledger.users == set()


def test_revoke_prefix_with_no_match_reads_nothing_else(d: DevNode) -> None:
    for _ in range(50):
        d.call("POST", "auth/token/create", json={"ttl": "1h"})
    barrier = d.node.core.barrier
    reads: list[str] = []
    get, list_ = barrier.get, barrier.list

    def counting_get(key: str) -> bytes | None:
        reads.append(key)
        return get(key)

    def counting_list(prefix: str) -> list[str]:
        reads.append(prefix)
        return list_(prefix)

    barrier.get, barrier.list = counting_get, counting_list  # type: ignore[method-assign]
    try:
        resp = d.call("PUT", "sys/leases/revoke-prefix/auth/token/create/nothing-here")
    finally:
        del barrier.get, barrier.list
    assert resp.status_code == 204
    own = "sys/token/id/" + d.node.core.tokens.salted(d.root_token)  # the caller's lookup
    assert [key for key in reads if key.startswith("sys/token/")] == [own]
    assert [key for key in reads if key.startswith("sys/expire/")] == [
        "sys/expire/id/auth/token/create/nothing-here",
        "sys/expire/id/auth/token/create/nothing-here/"]


def test_revoke_prefix_on_tokens_revokes_those_tokens(d: DevNode) -> None:
    made = d.call("POST", "auth/token/create", json={"ttl": "1h"}).json["auth"]["client_token"]
    orphan = d.call("POST", "auth/token/create-orphan", json={"ttl": "1h"}).json["auth"]
    assert d.call("PUT", "sys/leases/revoke-prefix/auth/token/create").status_code == 204
    assert d.call("GET", "auth/token/lookup-self", token=made).status_code == 403
    assert d.call("GET", "auth/token/lookup-self",
                  token=orphan["client_token"]).status_code == 200
    assert d.call("GET", "auth/token/lookup-self").status_code == 200  # root: not leased


def test_async_revoke_is_left_to_the_expiry_runner(d: DevNode, ledger: Ledger) -> None:
    body = creds(d)
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    resp = d.call("PUT", "sys/leases/revoke", json={"lease_id": body["lease_id"],
                                                    "sync": False})
    assert resp.status_code == 202
    assert ledger.revoked == []
    d.node.core.sync()  # delivers the change feed, as OwnerCore.core() does
    assert runner.tick(d.node.core, now=later(d, 1)) == 1
    assert ledger.revoked == [body["data"]["username"]]
    resp = d.call("PUT", "sys/leases/revoke-prefix/db/creds", json={"sync": False})
    assert resp.status_code == 202


def test_expiry_revokes_each_lease_once(d: DevNode, ledger: Ledger) -> None:
    short = creds(d, ttl="30s")
    long = creds(d, ttl="1h")
    runner = ExpiryRunner()
    assert runner.tick(d.node.core) == 0
    assert runner.tick(d.node.core, now=later(d, 60)) == 1
    assert runner.tick(d.node.core, now=later(d, 61)) == 0
    assert ledger.revoked == [short["data"]["username"]]
    assert lookup(d, short["lease_id"]).status_code == 400
    assert lookup(d, long["lease_id"]).status_code == 200
    # A second runner (another node taking over) finds nothing left to do twice.
    assert ExpiryRunner().tick(d.node.core, now=later(d, 62)) == 0
    assert ledger.revoked == [short["data"]["username"]]


def test_the_runner_learns_of_new_leases_from_the_change_feed(d: DevNode,
                                                              ledger: Ledger) -> None:
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    body = creds(d, ttl="30s")
    d.node.core.sync()
    assert body["lease_id"] in runner.scheduled() or runner.tick(d.node.core) == 0
    assert body["lease_id"] in runner.scheduled()
    assert runner.tick(d.node.core, now=later(d, 31)) == 1


def test_a_failing_revocation_is_retried_with_backoff_then_kept_irrevocable(
        d: DevNode, ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    body = creds(d, ttl="30s")
    lease_id = body["lease_id"]
    manager = d.node.core.expiration
    assert isinstance(manager, ExpirationManager)
    manager.retry_base = 1.0
    ledger.failures = 100
    runner = ExpiryRunner()
    now = later(d, 31)
    caplog.set_level(logging.INFO)
    runner.tick(d.node.core, now=now)
    data = lookup(d, lease_id).json["data"]
    assert data["revoke_error"] == "the test database is unreachable"
    retry_at = runner.scheduled()[lease_id]
    assert now + 1.0 <= retry_at <= now + 3.0  # 2^1 * base, +-50%
    failed = [r.getMessage() for r in caplog.records if "lease_revoke_failed" in r.getMessage()]
    assert failed and lease_id in failed[0] and "attempts=1" in failed[0]
    assert "pw-" not in caplog.text and "unreachable" not in caplog.text
    for _ in range(MAX_REVOKE_ATTEMPTS):
        due = runner.scheduled().get(lease_id)
        if due is None:
            break
        runner.tick(d.node.core, now=due)
    assert lease_id not in runner.scheduled()
    data = lookup(d, lease_id).json["data"]
    assert data["revoke_error"] == "out of retries: the test database is unreachable"
    assert ledger.users == {body["data"]["username"]} and ledger.revoked == []
    # Listed, not lost; not renewable; revoke-force takes it away.
    assert d.call("LIST", "sys/leases/lookup/db/creds/app/").status_code == 200
    renew = d.call("PUT", "sys/leases/renew", json={"lease_id": lease_id})
    assert renew.json == {
        "errors": ["lease is expired and has failed previous revocation attempts"]}
    revoke = d.call("PUT", "sys/leases/revoke", json={"lease_id": lease_id})
    assert revoke.status_code == 400
    assert revoke.json["errors"] == ["failed to revoke entry: the test database is unreachable"]
    assert d.call("PUT", "sys/leases/revoke-force/db/creds/app").status_code == 204
    assert lookup(d, lease_id).status_code == 400


def test_a_retried_revocation_that_succeeds_is_done(d: DevNode, ledger: Ledger) -> None:
    body = creds(d, ttl="30s")
    d.node.core.expiration.retry_base = 1.0
    ledger.failures = 1
    runner = ExpiryRunner()
    runner.tick(d.node.core, now=later(d, 31))
    assert ledger.revoked == []
    runner.tick(d.node.core, now=runner.scheduled()[body["lease_id"]])
    assert ledger.revoked == [body["data"]["username"]]
    assert lookup(d, body["lease_id"]).status_code == 400


def test_revoking_a_token_revokes_the_leases_it_obtained(d: DevNode, ledger: Ledger) -> None:
    d.call("POST", "sys/policies/acl/db", json={"policy": 'path "db/*" {capabilities=["read"]}'})
    token = d.call("POST", "auth/token/create",
                   json={"policies": ["db"], "ttl": "1h"}).json["auth"]["client_token"]
    body = creds(d, token=token)
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    assert d.call("POST", "auth/token/revoke-self", token=token).status_code == 204
    d.node.core.sync()
    assert runner.tick(d.node.core, now=later(d, 1)) == 1
    assert ledger.revoked == [body["data"]["username"]]


def test_an_expired_token_is_revoked_without_any_request(d: DevNode) -> None:
    parent = d.call("POST", "auth/token/create", json={"ttl": "30s"}).json["auth"]
    child = d.call("POST", "auth/token/create", json={"ttl": "1h"},
                   token=parent["client_token"]).json["auth"]
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    assert runner.tick(d.node.core, now=later(d, 31)) >= 1
    # Gone from storage already (no lookup revoked them on sight): accessors and leases.
    accessors = d.call("LIST", "auth/token/accessors")
    remaining = accessors.json["data"]["keys"] if accessors.status_code == 200 else []
    assert parent["accessor"] not in remaining and child["accessor"] not in remaining
    # Only the dev root token's lease is left (migrated by the first restore: it was
    # made before the pipeline ran, as OpenBao's dev root token has a lease too).
    keys = d.call("LIST", "sys/leases/lookup/auth/token/create/").json["data"]["keys"]
    assert keys == [d.node.core.tokens.salted(d.root_token)]


def test_a_renewed_token_is_rescheduled_not_revoked(d: DevNode) -> None:
    auth = d.call("POST", "auth/token/create", json={"ttl": "30s", "explicit_max_ttl": "1h"}
                  ).json["auth"]
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    renewed = d.call("POST", "auth/token/renew-self", json={"increment": "10m"},
                     token=auth["client_token"])
    assert renewed.status_code == 200
    lease_id = next(iter(runner.scheduled()))
    runner.tick(d.node.core, now=later(d, 31))
    assert d.call("GET", "auth/token/lookup-self", token=auth["client_token"]).status_code == 200
    assert runner.scheduled()[lease_id] > later(d, 500)
    data = lookup(d, lease_id).json["data"]
    assert data["last_renewal"] is not None and 590 <= data["ttl"] <= 600


def test_tokens_from_before_leases_are_migrated_once(d: DevNode) -> None:
    from strongroom.core.tokens import TokenEntry

    core = d.node.core
    entry = TokenEntry(accessor="acc", policies=["default"], path="auth/token/create",
                       creation_time=core.now(), ttl=60, expire_at=core.now() + 60)
    core.tokens.create(entry)  # straight into the store: no lease, as before issue 12
    runner = ExpiryRunner()
    runner.tick(core)
    assert f"auth/token/create/{entry.hash}" in runner.scheduled()
    runner.tick(core, now=later(d, 61))
    assert core.tokens.lookup_hash(entry.hash, core.now()) is None


def test_lookup_list_needs_sudo(d: DevNode) -> None:
    d.call("POST", "sys/policies/acl/p", json={
        "policy": 'path "sys/leases/*" {capabilities=["list","update"]}'})
    token = d.call("POST", "auth/token/create",
                   json={"policies": ["p"]}).json["auth"]["client_token"]
    creds(d)
    assert d.call("LIST", "sys/leases/lookup/db/", token=token).status_code == 403
    assert d.call("PUT", "sys/leases/revoke-prefix/db", token=token).status_code == 403
    assert d.call("PUT", "sys/leases/revoke-force/db", token=token).status_code == 403


def test_tidy_revokes_leases_whose_token_is_gone(d: DevNode, ledger: Ledger) -> None:
    body = creds(d)
    core = d.node.core
    entry = core.expiration.store.get(body["lease_id"])
    assert entry is not None
    core.expiration.store.delete_index(entry.token_hash, entry.lease_id)
    entry.token_hash = "0" * 64  # a token that no longer exists
    core.expiration.store.put(entry)
    assert core.expiration.tidy()["revoked"] == 1
    runner = ExpiryRunner()
    runner.tick(core, now=later(d, 1))
    assert ledger.revoked == [body["data"]["username"]]
    assert d.call("PUT", "sys/leases/tidy").status_code == 202


def test_disabling_a_mount_revokes_its_leases_first(d: DevNode, ledger: Ledger) -> None:
    body = creds(d)
    other = d.call("POST", "sys/mounts/db2", json={"type": "leasetest"})
    assert other.status_code == 204
    kept = d.call("GET", "db2/creds/app").json
    assert d.call("DELETE", "sys/mounts/db").status_code == 204
    assert ledger.revoked == [body["data"]["username"]]
    assert lookup(d, body["lease_id"]).status_code == 400
    assert lookup(d, kept["lease_id"]).status_code == 200


def test_an_unmount_whose_leases_cannot_be_revoked_is_refused(d: DevNode,
                                                             ledger: Ledger) -> None:
    body = creds(d)
    ledger.failures = 1
    resp = d.call("DELETE", "sys/mounts/db")
    assert resp.status_code == 400
    assert resp.json["errors"] == [f'failed to revoke "{body["lease_id"]}" (1 / 1): failed to '
                                   "revoke entry: the test database is unreachable"]
    assert d.call("GET", "sys/mounts/db").status_code == 200  # still mounted
    assert d.call("DELETE", "sys/mounts/db").status_code == 204  # the retry goes through
    assert ledger.revoked == [body["data"]["username"]]


def test_moving_a_mount_revokes_the_leases_of_its_old_path(d: DevNode, ledger: Ledger) -> None:
    body = creds(d)
    resp = d.call("POST", "sys/remount", json={"from": "db", "to": "db-moved"})
    assert resp.status_code == 200, resp.text
    assert ledger.revoked == [body["data"]["username"]]
    assert lookup(d, body["lease_id"]).status_code == 400


def test_a_lease_whose_expiry_hits_an_error_stays_scheduled(d: DevNode, ledger: Ledger,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    body = creds(d, ttl="30s")
    manager = d.node.core.expiration
    runner = ExpiryRunner()
    runner.tick(d.node.core)

    def broken(lease_id: str, now: float | None = None) -> float:
        raise OSError("storage unreachable")

    monkeypatch.setattr(manager, "expire", broken)
    runner.tick(d.node.core, now=later(d, 31))
    assert body["lease_id"] in runner.scheduled()  # not dropped from the schedule
    monkeypatch.undo()
    runner.tick(d.node.core, now=later(d, 31 + manager.retry_base))
    assert ledger.revoked == [body["data"]["username"]]


def test_a_failed_renewal_leaves_the_lease_as_it_was(d: DevNode, ledger: Ledger,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.errors import StrongroomError
    from tests.support.leased_engine import LeasedEngine

    body = creds(d, ttl="60s")
    before = lookup(d, body["lease_id"]).json["data"]

    def failing(self: LeasedEngine, secret: Any, increment: int) -> Any:
        raise StrongroomError("the test database is unreachable")

    monkeypatch.setattr(LeasedEngine, "_renew", failing)
    # The engine's SecretType holds the bound method made at mount time: remount it.
    assert d.call("POST", "sys/mounts/db2", json={"type": "leasetest"}).status_code == 204
    other = d.call("GET", "db2/creds/app").json
    other_before = lookup(d, other["lease_id"]).json["data"]
    resp = d.call("PUT", "sys/leases/renew", json={"lease_id": other["lease_id"],
                                                   "increment": "1h"})
    assert (resp.status_code, resp.json) == (
        400, {"errors": ["failed to renew entry: the test database is unreachable"]})
    after = lookup(d, other["lease_id"]).json["data"]
    assert (after["expire_time"], after["last_renewal"]) == (
        other_before["expire_time"], other_before["last_renewal"])
    assert lookup(d, body["lease_id"]).json["data"]["expire_time"] == before["expire_time"]


def test_an_expired_token_found_by_the_first_restore_is_expired_by_the_runner(
        d: DevNode, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner's first tick may come after a token expired (a busy node): the token
    migration must not revoke it on sight (unlogged, outside the runner)."""
    from datetime import timedelta

    d.call("POST", "auth/token/create", json={"ttl": "2s"})
    [key] = [k for k in d.call("LIST", "sys/leases/lookup/auth/token/create/").json["data"][
        "keys"] if k != d.node.core.tokens.salted(d.root_token)]
    core = d.node.core
    clock = core.clock
    monkeypatch.setattr(core, "clock", lambda: clock() + timedelta(seconds=60))
    caplog.set_level(logging.INFO, logger="strongroom.core.expiration")
    ExpiryRunner().tick(core)
    assert f"event=lease_revoked lease_id=auth/token/create/{key} reason=expired" in caplog.text
