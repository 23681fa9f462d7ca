"""MountTable: reload touches only what changed, removed backends are cleaned up,
storage invalidations reach the owning mount, periodic work survives a failing
mount, initialize runs only on an active node, and the old core/auth is migrated."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from strongroom.core.mount_table import Mounts, MountTable
from strongroom.core.mounts import AUTH, SECRETS, MountContext, MountEntry, Router, load_table
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import Path, PathBackend
from strongroom.physical.inmem import InmemBackend


class Counting(PathBackend):
    """A backend that records its lifecycle calls."""

    made: list[Counting] = []

    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self.cleanups = self.initializes = self.periodics = 0
        self.invalidated: list[str] = []
        self.fail_periodic = False
        super().__init__([Path("ping", {Operation.READ: self._ping})])
        Counting.made.append(self)

    def _ping(self, req: Request, data: object, m: object) -> Response:
        return Response(data={"mount": self.ctx.mount.path})

    def cleanup(self) -> None:
        self.cleanups += 1

    def initialize(self) -> None:
        self.initializes += 1

    def periodic(self) -> None:
        self.periodics += 1
        if self.fail_periodic:
            raise RuntimeError("connect failed: postgres://admin:hunter2@db/x")

    def invalidate(self, key: str) -> None:
        self.invalidated.append(key)


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Counting.made = []


def secrets_table(storage: InmemBackend, router: Router | None = None,
                  notify: list[int] | None = None) -> MountTable:
    calls = notify if notify is not None else []
    table = MountTable(SECRETS, storage, clock, router or Router(), {"counting": Counting},
                       {"system": None}, (("sys/", "system", "system endpoints"),),
                       lambda: calls.append(1))
    table.load(active=True)
    return table


def backend_at(table: MountTable, path: str) -> Counting:
    backend = table.backend(path)
    assert isinstance(backend, Counting)
    return backend


def test_unrelated_enable_keeps_instances_and_disable_cleans_up_once() -> None:
    storage = InmemBackend()
    table = secrets_table(storage)
    table.enable(MountEntry(path="a", type="counting"))
    table.reload()
    first = backend_at(table, "a")
    table.enable(MountEntry(path="b", type="counting"))
    table.reload()
    assert backend_at(table, "a") is first and first.cleanups == 0
    other = backend_at(table, "b")
    table.disable("a")
    table.reload()
    assert first.cleanups == 1 and table.backend("a") is None
    assert backend_at(table, "b") is other and other.cleanups == 0
    table.reload()
    assert first.cleanups == 1  # a reload with nothing changed touches nothing
    assert len(Counting.made) == 2


def test_tune_keeps_the_instance_an_options_change_replaces_it() -> None:
    storage = InmemBackend()
    table = secrets_table(storage)
    table.enable(MountEntry(path="a", type="counting"))
    table.reload()
    first = backend_at(table, "a")
    table.update("a", config={"default_lease_ttl": 60}, description="tuned")
    table.reload()
    assert backend_at(table, "a") is first and first.cleanups == 0
    # The backend's own entry shows the new tuning (it reads TTLs at request time).
    assert first.ctx.mount.config == {"default_lease_ttl": 60}
    assert first.ctx.mount.description == "tuned"
    table.update("a", options={"version": "2"})
    table.reload()
    second = backend_at(table, "a")
    assert second is not first and first.cleanups == 1 and second.cleanups == 0


def test_router_serves_builtins_and_stored_mounts_of_every_table() -> None:
    storage, router = InmemBackend(), Router()
    system = Counting(MountContext(None, MountEntry(path="sys/", type="system"), clock))  # type: ignore[arg-type]
    tables = Mounts(storage, clock, router, lambda: None, engines={"counting": Counting},
                    auth_methods={"counting": Counting}, audit_devices={"counting": Counting},
                    builtin_factories={"system": lambda ctx: system, "token": None,
                                       "identity": None})
    tables.load(active=True)
    tables.secrets.enable(MountEntry(path="kv", type="counting"))
    tables.auth.enable(MountEntry(path="people", type="counting"))
    tables.audit.enable(MountEntry(path="file", type="counting"))
    tables.reload()
    match = router.match("sys/mounts")
    assert match is not None and match[1] is system and match[2] == "mounts"
    match = router.match("auth/people/login/x")
    assert match is not None and match[0].path == "people/" and match[2] == "login/x"
    assert match[1] is tables.auth.backend("people")
    match = router.match("kv/ping")
    assert match is not None and match[1] is tables.secrets.backend("kv")
    assert router.match("file/ping") is None  # audit devices are never routed
    assert router.match("identity/entity") is None  # listed, no backend yet
    assert {e.path for e in tables.secrets.entries()} == {"sys/", "identity/", "kv/"}
    assert {e.path for e in tables.auth.entries()} == {"token/", "people/"}
    assert [e.path for e in tables.audit.entries()] == ["file/"]
    # Each table is stored on its own key; built-ins are not stored.
    assert [e.path for e in load_table(storage, AUTH)] == ["people/"]
    tables.unload()
    assert router.match("kv/ping") is None and router.match("sys/mounts") is None
    assert all(b.cleanups == 1 for b in Counting.made if b is not system)


def test_invalidate_reaches_the_owning_mount_only() -> None:
    storage = InmemBackend()
    tables = Mounts(storage, clock, Router(), lambda: None, engines={"counting": Counting},
                    auth_methods={"counting": Counting}, audit_devices={},
                    builtin_factories={"system": None, "token": None, "identity": None})
    tables.load(active=True)
    tables.secrets.enable(MountEntry(path="a", type="counting"))
    tables.secrets.enable(MountEntry(path="b", type="counting"))
    tables.auth.enable(MountEntry(path="a", type="counting"))
    tables.reload()
    a, b = backend_at(tables.secrets, "a"), backend_at(tables.secrets, "b")
    auth_a = backend_at(tables.auth, "a")
    tables.invalidate(f"logical/{a.ctx.mount.uuid}/data/app/one")
    tables.invalidate(f"auth/{auth_a.ctx.mount.uuid}/role/r")
    tables.invalidate("logical/not-a-mount/x")
    tables.invalidate("sys/token/id/abc")
    assert a.invalidated == ["data/app/one"] and b.invalidated == []
    assert auth_a.invalidated == ["role/r"]
    # The table's own key reloads it: another worker disabled b.
    stored = [e for e in load_table(storage, SECRETS) if e.path != "b/"]
    storage.put("core/mounts", json.dumps([e.__dict__ for e in stored]).encode())
    tables.invalidate("core/mounts")
    assert b.cleanups == 1 and tables.secrets.backend("b") is None
    assert backend_at(tables.secrets, "a") is a


def test_periodic_runs_every_mount_and_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    storage = InmemBackend()
    table = secrets_table(storage)
    for path in ("a", "b", "c"):
        table.enable(MountEntry(path=path, type="counting"))
    table.reload()
    backend_at(table, "a").fail_periodic = True
    backend_at(table, "b").fail_periodic = True
    with caplog.at_level(logging.ERROR):
        table.periodic()
    assert [backend_at(table, p).periodics for p in ("a", "b", "c")] == [1, 1, 1]
    assert caplog.text.count("event=mount_periodic_failed") == 2
    assert "hunter2" not in caplog.text and "RuntimeError" in caplog.text


def test_initialize_only_once_active() -> None:
    storage = InmemBackend()
    table = MountTable(SECRETS, storage, clock, Router(), {"counting": Counting})
    table.enable(MountEntry(path="a", type="counting"))
    table.load(active=False)  # a standby: it must not write
    backend = backend_at(table, "a")
    table.reload()
    assert backend.initializes == 0
    table.load(active=True)  # promoted: same instance, now initialized
    assert backend_at(table, "a") is backend and backend.initializes == 1
    table.reload()
    table.enable(MountEntry(path="b", type="counting"))
    table.reload()
    assert backend.initializes == 1 and backend_at(table, "b").initializes == 1


def test_a_failing_factory_leaves_the_table_as_it_was() -> None:
    storage = InmemBackend()
    made: list[Counting] = []

    def flaky(ctx: MountContext) -> Counting:
        if ctx.mount.path == "bad/":
            raise RuntimeError("cannot build")
        backend = Counting(ctx)
        made.append(backend)
        return backend

    table = MountTable(SECRETS, storage, clock, Router(), {"counting": flaky})
    table.load(active=True)
    table.enable(MountEntry(path="a", type="counting"))
    table.reload()
    a = backend_at(table, "a")
    table.enable(MountEntry(path="new", type="counting"))
    table.enable(MountEntry(path="bad", type="counting"))
    with pytest.raises(RuntimeError):
        table.reload()
    assert backend_at(table, "a") is a and table.get("new") is None
    assert [b.cleanups for b in made] == [0, 1]  # the half-built "new" was cleaned up


def test_old_core_auth_is_read_as_the_token_entry_and_rewritten_on_change() -> None:
    storage = InmemBackend()
    storage.put("core/auth", json.dumps({"token/": {"listing_visibility": "unauth"}}).encode())
    table = MountTable(AUTH, storage, clock, Router(), {"counting": Counting},
                       {"token": None}, (("token/", "token", "token based credentials"),))
    table.load(active=True)
    token = table.get("token")
    assert token is not None and token.type == "token"
    assert token.config == {"listing_visibility": "unauth"}
    assert token.accessor.startswith("auth_token_")
    table.enable(MountEntry(path="people", type="counting"))
    stored = json.loads(storage.get("core/auth") or b"")
    assert [(e["path"], e["config"]) for e in stored] == [
        ("token/", {"listing_visibility": "unauth"}), ("people/", {})]
    table.reload()
    again = table.get("token/")
    assert again is not None and again.config == {"listing_visibility": "unauth"}
    assert again.uuid == token.uuid  # built-in ids are derived, not stored


def test_builtin_ids_follow_the_cluster_id() -> None:
    storage = InmemBackend()
    storage.put("core/cluster/info", json.dumps({"name": "c", "id": "cluster-1"}).encode())
    table = secrets_table(storage)
    other = InmemBackend()
    other.put("core/cluster/info", json.dumps({"name": "c", "id": "cluster-2"}).encode())
    sys_here, sys_there = table.get("sys"), secrets_table(other).get("sys")
    assert sys_here is not None and sys_there is not None
    assert sys_here.uuid != sys_there.uuid
    assert sys_here.uuid == secrets_table(storage).get("sys").uuid  # type: ignore[union-attr]
    assert sys_here.accessor == f"system_{sys_here.uuid[:8]}"
