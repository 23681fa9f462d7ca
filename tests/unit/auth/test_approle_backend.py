"""The AppRole backend on its own (inmem storage, a clock the test moves, any client
address): SecretID expiry and use counts, CIDR bindings at login, the token's bound
CIDRs, renewal, tidy, and what storage holds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.auth import login_guard
from strongroom.auth.approle import AppRoleBackend
from strongroom.auth.approle.path_login import INVALID
from strongroom.barrier.view import StorageView
from strongroom.core.logical import Auth
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, LoginFailedError, NotFoundError, StrongroomError
from strongroom.physical.inmem import InmemBackend


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    def __init__(self) -> None:
        self.physical = InmemBackend()
        self.clock = Clock()
        entry = MountEntry(path="approle/", type="approle", config={"max_lease_ttl": 7200})
        self.ctx = MountContext(storage=StorageView(self.physical, "auth/x/"), mount=entry,
                                clock=self.clock)
        self.b = AppRoleBackend(self.ctx)

    def call(self, op: Operation, path: str, remote: str = "127.0.0.1",
             **data: Any) -> Response:
        if op is Operation.UPDATE and self.b.existence(
                Request(op, path, data), path) is False:
            op = Operation.CREATE
        resp = self.b.handle(Request(op, "auth/approle/" + path, data, remote_addr=remote),
                             path)
        return resp if resp is not None else Response()

    def role(self, name: str, **fields: Any) -> str:
        self.call(Operation.UPDATE, f"role/{name}", **fields)
        data = self.call(Operation.READ, f"role/{name}/role-id").data
        assert data is not None
        return str(data["role_id"])

    def secret(self, name: str, **fields: Any) -> dict[str, Any]:
        data = self.call(Operation.UPDATE, f"role/{name}/secret-id", **fields).data
        assert data is not None
        return data

    def login(self, role_id: str, secret_id: str = "", remote: str = "127.0.0.1") -> Auth:
        auth = self.call(Operation.UPDATE, "login", remote, role_id=role_id,
                         secret_id=secret_id).auth
        assert auth is not None
        return auth


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    # A fresh failure table, and no backoff unless a test asks for it: these tests
    # make many failed logins from one address on purpose.
    login_guard._tables.clear()
    monkeypatch.setattr(login_guard, "FREE_FAILURES", 10**6)
    yield Harness()
    login_guard._tables.clear()


def walk(physical: InmemBackend, prefix: str) -> list[str]:
    keys = []
    for name in physical.list(prefix):
        keys.extend(walk(physical, prefix + name) if name.endswith("/") else [prefix + name])
    return keys


def refused(h: Harness, role_id: str, secret_id: str, remote: str = "127.0.0.1") -> str:
    with pytest.raises(BadRequestError) as err:
        h.login(role_id, secret_id, remote)
    return err.value.message


def test_login_carries_the_role_token_parameters_and_metadata(h: Harness) -> None:
    role_id = h.role("web", token_policies="a,b", token_ttl=60, token_max_ttl=120,
                     token_num_uses=3, token_bound_cidrs="10.0.0.0/8")
    sid = h.secret("web", metadata='{"host": "h1"}')
    auth = h.login(role_id, sid["secret_id"])
    assert auth.policies == ["a", "b"] and auth.ttl == 60 and auth.max_ttl == 120
    assert auth.num_uses == 3 and auth.bound_cidrs == ["10.0.0.0/8"]
    assert auth.metadata == {"host": "h1", "role_name": "web"}
    assert auth.alias is not None and auth.alias.name == role_id
    assert auth.internal == {"role_name": "web"}


def test_secret_id_token_bound_cidrs_override_the_roles(h: Harness) -> None:
    role_id = h.role("web", token_bound_cidrs="10.0.0.0/8")
    sid = h.secret("web", token_bound_cidrs="10.1.0.0/16")
    assert h.login(role_id, sid["secret_id"]).bound_cidrs == ["10.1.0.0/16"]
    with pytest.raises(StrongroomError, match="failed to verify subset relationship"):
        h.secret("web", token_bound_cidrs="192.168.0.0/16")


def test_unknown_role_id_and_wrong_secret_id_are_one_answer(h: Harness) -> None:
    role_id = h.role("web")
    h.secret("web")
    assert refused(h, role_id, "wrong") == INVALID
    assert refused(h, "no-such-role-id", "wrong") == INVALID
    # An empty secret_id: the same words whether the role exists or not.
    assert refused(h, role_id, "") == refused(h, "no-such-role-id", "") == "missing secret_id"
    # A SecretID longer than an HMAC takes: refused, not an error that tells more.
    assert refused(h, role_id, "x" * 5000) == refused(h, "nope", "x" * 5000) == INVALID


def test_secret_id_num_uses_counts_down_then_refuses(h: Harness) -> None:
    role_id = h.role("web", secret_id_num_uses=2)
    sid = h.secret("web")
    h.login(role_id, sid["secret_id"])
    left = h.call(Operation.UPDATE, "role/web/secret-id/lookup", secret_id=sid["secret_id"])
    assert left.data is not None and left.data["secret_id_num_uses"] == 1
    h.login(role_id, sid["secret_id"])
    assert refused(h, role_id, sid["secret_id"]) == INVALID
    # The last use removed the SecretID and its accessor.
    assert h.call(Operation.UPDATE, "role/web/secret-id/lookup",
                  secret_id=sid["secret_id"]).data is None
    assert h.physical.list("auth/x/accessor/") == []


def test_num_uses_are_spent_once_under_concurrency(h: Harness) -> None:
    role_id = h.role("web", secret_id_num_uses=5)
    sid = h.secret("web")["secret_id"]
    wins: list[bool] = []

    def attempt() -> None:
        try:
            h.login(role_id, sid)
            wins.append(True)
        except BadRequestError:
            wins.append(False)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 5


def test_expired_secret_id_is_refused_at_once(h: Harness) -> None:
    role_id = h.role("web", secret_id_ttl=60)
    sid = h.secret("web")["secret_id"]
    h.clock.advance(59)
    h.login(role_id, sid)
    h.clock.advance(2)
    # Vault accepts it until the next tidy; Strongroom refuses (and removes) it.
    assert refused(h, role_id, sid) == INVALID
    assert h.call(Operation.UPDATE, "role/web/secret-id/lookup", secret_id=sid).data is None


def test_secret_id_ttl_is_capped_by_the_mount_max_lease_ttl(h: Harness) -> None:
    h.role("web", secret_id_ttl="10h")
    sid = h.secret("web")
    assert sid["secret_id_ttl"] == 7200  # the mount's max_lease_ttl


def test_secret_id_cidr_list_binds_the_login(h: Harness) -> None:
    role_id = h.role("web")
    sid = h.secret("web", cidr_list="10.0.0.0/8")["secret_id"]
    assert "unauthorized through CIDR restrictions on the secret ID" in refused(
        h, role_id, sid, remote="192.168.1.1")
    h.login(role_id, sid, remote="10.2.3.4")


def test_role_secret_id_bound_cidrs_bind_the_login(h: Harness) -> None:
    role_id = h.role("web", secret_id_bound_cidrs="10.0.0.0/8", secret_id_num_uses=1)
    sid = h.secret("web")["secret_id"]
    message = refused(h, role_id, sid, remote="192.168.1.1")
    assert message == ('source address "192.168.1.1" unauthorized by CIDR restrictions on '
                       "the role")
    # A refused login spends no use.
    h.login(role_id, sid, remote="10.0.0.1")


def test_role_without_secret_id_never_says_it_exists(h: Harness) -> None:
    role_id = h.role("open", bind_secret_id=False, secret_id_bound_cidrs="10.0.0.0/8")
    assert refused(h, role_id, "", remote="192.168.1.1") == INVALID
    assert refused(h, "nope", "x", remote="192.168.1.1") == INVALID
    assert h.login(role_id, "", remote="10.9.9.9").metadata == {"role_name": "open"}


def test_storage_holds_no_secret_id_in_clear(h: Harness) -> None:
    role_id = h.role("web")
    sid = h.secret("web")
    custom = h.call(Operation.UPDATE, "role/web/custom-secret-id",
                    secret_id="my-custom-secret").data
    assert custom is not None
    h.login(role_id, sid["secret_id"])
    stored = [key + "=" + (h.physical.get(key) or b"").decode(errors="replace")
              for key in walk(h.physical, "auth/x/")]
    blob = "\n".join(stored)
    assert "secret_id/" in blob
    assert sid["secret_id"] not in blob and "my-custom-secret" not in blob
    assert role_id not in blob.replace('"role_id": "' + role_id, "")  # only in the role


def test_renewal_follows_the_role(h: Harness) -> None:
    role_id = h.role("web", token_ttl=60, token_max_ttl=600)
    auth = h.login(role_id, h.secret("web")["secret_id"])
    h.call(Operation.UPDATE, "role/web", token_ttl=90, token_max_ttl=900, token_period=0)
    renewed = h.b.renew_login(Request(Operation.UPDATE, "auth/token/renew-self"), auth)
    assert (renewed.ttl, renewed.max_ttl) == (90, 900)
    h.call(Operation.DELETE, "role/web")
    with pytest.raises(StrongroomError, match='role "web" does not exist during renewal'):
        h.b.renew_login(Request(Operation.UPDATE, "auth/token/renew-self"), auth)


def test_tidy_removes_expired_and_dangling_entries(h: Harness) -> None:
    h.role("web", secret_id_ttl=60)
    keep = h.secret("web", ttl=60)
    gone = h.secret("web", ttl=10)
    dangling = h.secret("web", ttl=60)
    # An accessor whose SecretID vanished, and a SecretID whose accessor vanished.
    orphan_target = h.b.store.accessor_target(h.b.store.role("web"),  # type: ignore[arg-type]
                                              dangling["secret_id_accessor"])
    assert orphan_target is not None
    h.physical.put("auth/x/accessor/" + "0" * 64, b'{"secret_id_hmac": "feed"}')
    h.physical.delete("auth/x/accessor/" + h.b.store.salted(dangling["secret_id_accessor"]))
    h.clock.advance(11)
    counts = h.b.tidier.run()
    assert (counts.expired, counts.dangling_secret_ids, counts.dangling_accessors) == (1, 1, 1)
    listed = h.call(Operation.LIST, "role/web/secret-id").data
    assert listed is not None and listed["keys"] == [keep["secret_id_accessor"]]
    assert gone["secret_id_accessor"] not in str(h.physical.list("auth/x/accessor/"))


def test_tidy_request_answers_202_and_runs_in_the_background(h: Harness) -> None:
    h.role("web", secret_id_ttl=10)
    h.secret("web")
    h.clock.advance(11)
    resp = h.call(Operation.UPDATE, "tidy/secret-id")
    assert resp.status == 202 and "Tidy operation successfully started" in resp.warnings[0]
    with h.b.tidier._running:  # the pass holds it: taken once the pass is over
        pass
    assert h.call(Operation.LIST, "role/web/secret-id").status == 404


def test_role_delete_removes_its_secret_ids_and_index(h: Harness) -> None:
    role_id = h.role("web")
    h.secret("web")
    h.call(Operation.DELETE, "role/web")
    assert h.physical.list("auth/x/role/") == []
    assert h.physical.list("auth/x/role_id/") == []
    assert h.physical.list("auth/x/accessor/") == []
    assert refused(h, role_id, "anything") == INVALID


def test_role_id_update_moves_the_index(h: Harness) -> None:
    old = h.role("web", bind_secret_id=False, token_bound_cidrs="127.0.0.0/8")
    h.call(Operation.UPDATE, "role/web/role-id", role_id="custom-role-id")
    assert refused(h, old, "x") == INVALID
    assert h.login("custom-role-id").metadata["role_name"] == "web"
    with pytest.raises(StrongroomError, match="role_id already in use"):
        h.role("other", role_id="custom-role-id")
    with pytest.raises(NotFoundError):
        h.call(Operation.UPDATE, "role/nope/role-id", role_id="x")


def test_local_secret_ids_live_under_their_own_prefix(h: Harness) -> None:
    role_id = h.role("edge", local_secret_ids=True)
    sid = h.secret("edge")["secret_id"]
    assert h.physical.list("auth/x/secret_id_local/") and not h.physical.list(
        "auth/x/secret_id/")
    assert h.physical.list("auth/x/accessor_local/")
    h.login(role_id, sid)
    assert h.b.special_paths.local == ("secret_id_local/*", "accessor_local/*")
    with pytest.raises(BadRequestError, match="only be modified during role creation"):
        h.call(Operation.UPDATE, "role/edge", local_secret_ids=False)


def test_backoff_refuses_even_the_right_secret_id_with_the_same_words(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_guard, "FREE_FAILURES", 2)
    role_id = h.role("web")
    sid = h.secret("web")["secret_id"]
    delays = []
    for guess in ("wrong-1", "wrong-2", "wrong-3"):
        with pytest.raises(LoginFailedError) as err:
            h.login(role_id, guess)
        assert err.value.message == INVALID
        delays.append(err.value.delay)
    assert delays == [0.0, 0.0, 1.0]
    # Backing off: the right SecretID gets the wrong one's answer, and spends nothing.
    with pytest.raises(LoginFailedError) as err:
        h.login(role_id, sid)
    assert err.value.message == INVALID and err.value.delay > 0
    # An unknown role ID from another client: the same count, the same answers.
    for guess in ("wrong-1", "wrong-2", "wrong-3"):
        with pytest.raises(LoginFailedError) as err:
            h.login("no-such-role", guess, remote="10.9.9.9")
        assert err.value.message == INVALID
    h.clock.advance(2)
    assert h.login(role_id, sid).metadata["role_name"] == "web"


class CountingBackend(InmemBackend):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[bool] = []  # hit or miss, in order

    def get(self, key: str) -> bytes | None:
        value = super().get(key)
        self.gets.append(value is not None)
        return value


def test_unknown_role_id_takes_the_steps_of_a_wrong_secret_id(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingBackend()
    h.physical = counting
    h.ctx = MountContext(storage=StorageView(counting, "auth/x/"), mount=h.ctx.mount,
                         clock=h.clock)
    h.b = AppRoleBackend(h.ctx)
    role_id = h.role("web")
    h.secret("web")
    refused(h, "warm-up", "x")  # the stand-in role is stored once, on first use
    from strongroom.auth.approle import store as store_module

    locked: list[str] = []
    real_lock = store_module.node_lock

    def spy(name: str) -> Any:
        locked.append(name.split(":")[0])
        return real_lock(name)

    monkeypatch.setattr(store_module, "node_lock", spy)
    shapes = []
    for rid in (role_id, "no-such-role-id"):
        counting.gets.clear()
        locked.clear()
        assert refused(h, rid, "a-wrong-secret-id") == INVALID
        shapes.append((len(counting.gets), counting.gets[-1], list(locked)))
    # Three reads each (role ID index, a role, the SecretID: a miss), one SecretID lock.
    assert shapes[0] == shapes[1] == (3, False, ["approle-secret"])


def test_secret_id_outside_narrowed_role_cidrs_is_refused(h: Harness) -> None:
    role_id = h.role("web", secret_id_bound_cidrs="10.0.0.0/8")
    sid = h.secret("web", cidr_list="10.1.0.0/16")["secret_id"]
    h.call(Operation.UPDATE, "role/web", secret_id_bound_cidrs="10.2.0.0/16")
    assert "failed to verify subset relationship" in refused(h, role_id, sid, "10.1.2.3")
