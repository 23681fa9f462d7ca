"""The database engine in a real server (3 workers and the owner process, file
storage) against a real PostgreSQL: the break-glass revoke-prefix of 50 live
credentials, leases renewed and revoked over HTTP, static rotation run by the owner's
periodic job, pools closed in every process when the mount goes, and no password in
the server log or the audit log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.database.support import PG_CREATE
from tests.support.ha import poll
from tests.support.postgres import PostgresServer, postgres_server
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
PERIODIC_ENV = "STRONGROOM_MOUNT_PERIODIC_INTERVAL"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        server.query("CREATE TABLE visible (id int)")
        yield server


@pytest.fixture(scope="module")
def server(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerProcess, str]]:
    workdir = tmp_path_factory.mktemp("srv")
    old = os.environ.get(PERIODIC_ENV)
    os.environ[PERIODIC_ENV] = "1"  # the owner's mount-periodic job runs every second
    try:
        with strongroom_server(workdir, file_config(workers=WORKERS)) as srv:
            srv.wait_for_workers(WORKERS)
            init = requests.put(srv.url + "/v1/sys/init", json={
                "secret_shares": 1, "secret_threshold": 1}, timeout=10).json()
            resp = requests.put(srv.url + "/v1/sys/unseal", json={"key": init["keys"][0]},
                                headers={"Connection": "close"}, timeout=10)
            assert resp.status_code == 200, resp.text
            token = init["root_token"]
            call(srv, token, "POST", "sys/mounts/database", {"type": "database"})
            call(srv, token, "PUT", "sys/audit/file", {
                "type": "file", "options": {"file_path": str(workdir / "audit.log")}})
            call(srv, token, "POST", "database/config/pg", {
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.connection_url(), "username": "postgres",
                "password": pg.password, "allowed_roles": "*"})
            call(srv, token, "POST", "database/roles/ro", {
                "db_name": "pg", "creation_statements": [PG_CREATE], "default_ttl": "1h",
                "max_ttl": "2h"})
            yield srv, token
    finally:
        if old is None:
            os.environ.pop(PERIODIC_ENV, None)
        else:
            os.environ[PERIODIC_ENV] = old


def call(srv: ServerProcess, token: str, method: str, path: str, body: Any = None,
         status: tuple[int, ...] = (200, 204)) -> Any:
    # A fresh connection each time, so the kernel spreads requests over the workers.
    resp = requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=60,
                            headers={"X-Vault-Token": token, "Connection": "close"})
    assert resp.status_code in status, (method, path, resp.status_code, resp.text)
    return resp.json() if resp.content else None


def engine_sessions(pg: PostgresServer) -> int:
    return int(pg.query("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'strongroom'")[0][0])


def test_revoke_prefix_revokes_50_live_credentials(
        server: tuple[ServerProcess, str], pg: PostgresServer) -> None:
    srv, token = server
    with ThreadPoolExecutor(8) as pool:
        issued = list(pool.map(lambda _: call(srv, token, "GET", "database/creds/ro"),
                               range(50)))
    creds = [(b["data"]["username"], b["data"]["password"]) for b in issued]
    assert len({user for user, _ in creds}) == 50
    assert all(pg.can_login(user, password) for user, password in creds)
    sessions = [pg.connect(user, password) for user, password in creds[:5]]
    listed = call(srv, token, "LIST", "sys/leases/lookup/database/creds/ro/")
    assert len(listed["data"]["keys"]) >= 50

    call(srv, token, "PUT", "sys/leases/revoke-prefix/database/creds/ro")

    # Once the call has returned, not one of them logs in, and open sessions are ended.
    assert [u for u, p in creds if pg.can_login(u, p)] == []
    users = [u for u, _ in creds]
    assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", users)[0][0] == 0
    for conn in sessions:
        with pytest.raises(Exception):  # noqa: B017 - terminated: psycopg's OperationalError
            conn.execute("SELECT 1")
        conn.close()
    for body in issued[:3]:
        resp = requests.put(f"{srv.url}/v1/sys/leases/lookup", json={
            "lease_id": body["lease_id"]}, headers={"X-Vault-Token": token}, timeout=10)
        assert resp.status_code == 400 and resp.json()["errors"] == ["invalid lease"]


def test_renew_and_revoke_over_http(server: tuple[ServerProcess, str],
                                    pg: PostgresServer) -> None:
    srv, token = server
    body = call(srv, token, "GET", "database/creds/ro")
    user, password, lease = body["data"]["username"], body["data"]["password"], body["lease_id"]
    before = pg.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", user)[0][0]
    renewed = call(srv, token, "PUT", "sys/leases/renew", {"lease_id": lease,
                                                           "increment": "90m"})
    assert renewed["lease_id"] == lease and renewed["lease_duration"] == 5400
    after = pg.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", user)[0][0]
    assert 1700 < (after - before).total_seconds() < 1900  # 1h -> 1h30 (+5 s either way)
    call(srv, token, "PUT", "sys/leases/revoke", {"lease_id": lease})
    assert not pg.can_login(user, password)
    resp = requests.put(f"{srv.url}/v1/sys/leases/renew", json={"lease_id": lease},
                        headers={"X-Vault-Token": token}, timeout=10)
    assert resp.status_code == 400


def test_an_expired_credential_is_dropped_without_any_request(
        server: tuple[ServerProcess, str], pg: PostgresServer) -> None:
    srv, token = server
    call(srv, token, "POST", "database/roles/short", {
        "db_name": "pg", "creation_statements": [PG_CREATE], "default_ttl": "2s"})
    body = call(srv, token, "GET", "database/creds/short")
    user = body["data"]["username"]
    assert body["lease_duration"] == 2 and pg.can_login(user, body["data"]["password"])
    # The owner's expiry runner revokes it: the role is dropped (VALID UNTIL alone
    # would only refuse logins, 5 s later, and leave the role behind).
    poll(lambda: pg.query("SELECT count(*) FROM pg_roles WHERE rolname = %s", user)[0][0] == 0,
         30, "the expired credential's user dropped")


def test_the_owner_rotates_static_roles_when_due(server: tuple[ServerProcess, str],
                                                 pg: PostgresServer) -> None:
    srv, token = server
    pg.query("CREATE ROLE \"svc-owner\" LOGIN PASSWORD 'svc-initial'")
    call(srv, token, "POST", "database/static-roles/svc", {
        "db_name": "pg", "username": "svc-owner", "rotation_period": "5s"})
    first = call(srv, token, "GET", "database/static-creds/svc")["data"]["password"]
    assert pg.can_login("svc-owner", first)

    def rotated() -> str | None:
        now = call(srv, token, "GET", "database/static-creds/svc")["data"]["password"]
        return now if now != first else None

    second = poll(rotated, 30, "the owner's periodic rotation")
    assert pg.can_login("svc-owner", second) and not pg.can_login("svc-owner", first)


def test_no_password_in_the_server_log_or_the_audit_log(
        server: tuple[ServerProcess, str], pg: PostgresServer) -> None:
    srv, token = server
    body = call(srv, token, "GET", "database/creds/ro")
    call(srv, token, "GET", "database/config/pg")
    static = call(srv, token, "GET", "database/static-creds/svc")["data"]["password"] if call(
        srv, token, "LIST", "database/static-roles", status=(200, 404)) else ""
    logs = (Path(srv.workdir) / "server.log").read_text(errors="replace")
    audit = (Path(srv.workdir) / "audit.log").read_text(errors="replace")
    assert '"path":"database/creds/ro"' in audit.replace(" ", "")
    for secret in filter(None, (pg.password, body["data"]["password"], static)):
        assert secret not in logs
        assert secret not in audit


def test_disabling_the_mount_closes_pools_in_every_process(
        server: tuple[ServerProcess, str], pg: PostgresServer) -> None:
    srv, token = server
    for _ in range(6):  # spread over the workers: each opens its own pool
        call(srv, token, "GET", "database/creds/ro")
    assert engine_sessions(pg) >= 1
    call(srv, token, "DELETE", "sys/mounts/database")
    # Each process applies the node's changes before it serves its next request (the
    # owner before each periodic run): once every worker has served one, every pool
    # of the mount is closed, in all four processes.
    workers, seen = srv.wait_for_workers(WORKERS), set()
    for _ in range(100 * WORKERS):
        resp = requests.get(f"{srv.url}/v1/sys/mounts", timeout=10, headers={
            "X-Vault-Token": token, "Connection": "close"})
        assert resp.status_code == 200 and "database/" not in resp.json()["data"]
        seen.add(int(resp.headers["X-Strongroom-Worker"]))
        if seen >= workers:
            break
    assert seen >= workers
    poll(lambda: engine_sessions(pg) == 0, 10, "every engine connection closed")
