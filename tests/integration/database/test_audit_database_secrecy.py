"""No database credential reaches the audit log (or a log line) in clear: the engine's
connection password, the credentials it hands out, a wrong password in a bad config;
each appears only as the HMAC ``sys/audit-hash`` gives for it. Real PostgreSQL, the
real expiration manager (renew and revoke go through sys/leases)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.database.support import PG_CREATE, engine_node
from tests.support import requires
from tests.support.audit import entries
from tests.support.postgres import PostgresServer, postgres_server

requires.module("psycopg", "pip install 'psycopg[binary]'")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        server.query("CREATE TABLE visible (id int)")  # what PG_CREATE grants
        yield server


def test_database_credentials_never_in_clear(pg: PostgresServer, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = engine_node(registrar=False)  # the real expiration manager
    log = tmp_path / "audit.log"
    d.ok("PUT", "sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}})
    d.ok("POST", "database/config/pg", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": pg.superuser, "password": pg.password, "allowed_roles": "ro"})
    d.ok("POST", "database/roles/ro", json={
        "db_name": "pg", "creation_statements": [PG_CREATE], "default_ttl": "1h"})
    body = d.ok("GET", "database/creds/ro")
    user, password = body["data"]["username"], body["data"]["password"]
    assert pg.can_login(user, password)
    d.ok("GET", "database/config/pg")
    d.ok("PUT", "sys/leases/renew", json={"lease_id": body["lease_id"], "increment": 600})
    d.ok("PUT", "sys/leases/lookup", json={"lease_id": body["lease_id"]})
    # A config whose inline password is wrong: refused, and the password stays hidden.
    wrong = "Wr0ngPassw0rdNeverLogged"  # noqa: S105 - the value under test
    bad = d.call("POST", "database/config/bad", json={
        "plugin_name": "postgresql-database-plugin", "allowed_roles": "*",
        "connection_url": f"postgresql://{pg.superuser}:{wrong}@{pg.host}:{pg.port}/postgres"})
    assert bad.status_code == 400 and wrong not in bad.text
    d.ok("PUT", "sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert not pg.can_login(user, password)

    text = log.read_text()
    lines = entries(log)
    assert any(e["request"].get("path") == "database/creds/ro" for e in lines)
    for secret in (pg.password, password, wrong):
        assert secret not in text, "a database password reached the audit log in clear"
        assert not any(secret in r.getMessage() for r in caplog.records), (
            "a database password reached a log line")
    assert user not in text  # the generated username is HMAC'd too (a string in data)

    def h(value: str) -> str:
        return str(d.ok("POST", "sys/audit-hash/file", json={"input": value})["data"]["hash"])

    assert h(password) in text and h(pg.password) in text and h(user) in text
    issued = next(e for e in lines if e["type"] == "response"
                  and e["request"].get("path") == "database/creds/ro")
    assert issued["response"]["data"]["password"] == h(password)
    assert issued["response"]["secret"]["lease_id"] == body["lease_id"]  # in clear, as Vault
    d.node.core.mounts.secrets.unload()  # close the pools
