"""The database engine against a real PostgreSQL 15 started by the test: credentials
that really log in with only what the role granted, revoke, renew, static roles and
their rotation, root rotation, bad input, and pools closed when the mount goes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.database.support import PG_CREATE, EngineNode, engine_node
from tests.support import requires
from tests.support.postgres import PostgresServer, postgres_server

psycopg = requires.module("psycopg", "pip install 'psycopg[binary]'")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        server.query("CREATE TABLE visible (id int)")
        server.query("INSERT INTO visible VALUES (1)")
        server.query("CREATE TABLE hidden (id int)")
        yield server


@pytest.fixture
def d(pg: PostgresServer) -> Iterator[EngineNode]:
    node = engine_node()
    node.ok("POST", "database/config/pg", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "postgres", "password": pg.password, "allowed_roles": "ro,st*,bad*"})
    node.ok("POST", "database/roles/ro", json={
        "db_name": "pg", "creation_statements": [PG_CREATE], "default_ttl": "1h",
        "max_ttl": "2h"})
    yield node
    node.node.core.mounts.secrets.unload()  # close the pools


def engine_sessions(pg: PostgresServer) -> int:
    """Connections the engine holds open (its application_name)."""
    return int(pg.query("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'strongroom'")[0][0])


def valid_until(pg: PostgresServer, user: str) -> datetime:
    value = pg.query("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", user)[0][0]
    assert isinstance(value, datetime)
    return value


def creds(d: EngineNode, role: str = "ro") -> tuple[str, str, dict[str, Any]]:
    body = d.ok("GET", f"database/creds/{role}")
    return body["data"]["username"], body["data"]["password"], body


def test_creds_log_in_with_only_what_the_role_granted(d: EngineNode, pg: PostgresServer) -> None:
    user, password, body = creds(d)
    assert body["lease_id"].startswith("database/creds/ro/")
    assert body["lease_duration"] == 3600 and body["renewable"] is True
    assert user.startswith("v-token-ro-") and len(user) <= 63
    with pg.connect(user, password) as conn:
        assert conn.execute("SELECT id FROM visible").fetchall() == [(1,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM hidden")
    with pg.connect(user, password) as conn, pytest.raises(
            psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO visible VALUES (2)")
    # The database itself expires the user 5 s after the lease (Vault's margin).
    expiry = valid_until(pg, user)
    expected = d.clock.now.timestamp() + 3600 + 5
    assert abs(expiry.timestamp() - expected) < 2


def test_revoke_drops_the_user_and_ends_its_sessions(d: EngineNode, pg: PostgresServer) -> None:
    user, password, body = creds(d)
    session = pg.connect(user, password)
    assert d.registrar is not None
    d.creds_type().revoke(d.registrar.leases[body["lease_id"]])
    assert not pg.can_login(user, password)
    assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = %s", user)[0][0] == 0
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # terminated by the revocation
    session.close()
    # Revoking again (a retry) is not an error: the user is already gone.
    d.creds_type().revoke(d.registrar.leases[body["lease_id"]])


def test_revoke_after_the_role_is_deleted_uses_what_the_lease_kept(
        d: EngineNode, pg: PostgresServer) -> None:
    d.ok("POST", "database/roles/st-gone", json={
        "db_name": "pg", "creation_statements": [PG_CREATE],
        "revocation_statements": ['REVOKE ALL ON visible FROM "{{name}}"; DROP ROLE "{{name}}"']})
    user, password, body = creds(d, "st-gone")
    d.ok("DELETE", "database/roles/st-gone")
    assert d.registrar is not None
    d.creds_type().revoke(d.registrar.leases[body["lease_id"]])
    assert not pg.can_login(user, password)


def test_renew_moves_valid_until_within_max_ttl(d: EngineNode, pg: PostgresServer) -> None:
    user, password, body = creds(d)
    assert d.registrar is not None
    secret = d.registrar.leases[body["lease_id"]]
    before = valid_until(pg, user)
    d.clock.advance(600)
    renewed = d.creds_type().renew(secret, 1800)
    assert renewed is not None and renewed.ttl == 1800
    after = valid_until(pg, user)
    assert abs(after.timestamp() - (d.clock.now.timestamp() + 1800 + 5)) < 2
    assert after != before
    # Past max_ttl (2h from issue) the renewal is capped.
    d.clock.advance(3600)
    capped = d.creds_type().renew(secret, 7200)
    assert capped is not None and 0 < capped.ttl <= 3600 - 600
    assert pg.can_login(user, password)


def test_static_role_rotation_changes_the_password(d: EngineNode, pg: PostgresServer) -> None:
    pg.query('DROP ROLE IF EXISTS "static-app"')
    pg.query("CREATE ROLE \"static-app\" LOGIN PASSWORD 'initial-pw'")
    d.ok("POST", "database/static-roles/st-app", json={
        "db_name": "pg", "username": "static-app", "rotation_period": "1h"})
    assert not pg.can_login("static-app", "initial-pw")  # taken over at once
    first = d.ok("GET", "database/static-creds/st-app")["data"]
    assert first["username"] == "static-app" and first["rotation_period"] == 3600
    assert first["ttl"] == 3600
    assert pg.can_login("static-app", first["password"])
    read = d.ok("GET", "database/static-roles/st-app")["data"]
    assert "password" not in read and read["last_vault_rotation"] == first["last_vault_rotation"]

    d.ok("POST", "database/rotate-role/st-app")
    second = d.ok("GET", "database/static-creds/st-app")["data"]
    assert second["password"] != first["password"]
    assert not pg.can_login("static-app", first["password"])
    assert pg.can_login("static-app", second["password"])

    # periodic(): nothing is due before the period ends, then the role is rotated.
    d.backend().periodic()
    assert d.ok("GET", "database/static-creds/st-app")["data"]["password"] == second["password"]
    d.clock.advance(3601)
    assert d.ok("GET", "database/static-creds/st-app")["data"]["ttl"] == 0
    d.backend().periodic()
    third = d.ok("GET", "database/static-creds/st-app")["data"]
    assert third["password"] != second["password"] and third["ttl"] == 3600
    assert not pg.can_login("static-app", second["password"])
    assert pg.can_login("static-app", third["password"])


def test_static_role_for_a_missing_user_stores_nothing(d: EngineNode) -> None:
    resp = d.call("POST", "database/static-roles/st-none", json={
        "db_name": "pg", "username": "nosuchuser", "rotation_period": "1h"})
    assert resp.status_code == 400
    assert resp.json["errors"] == ['error setting credentials: 1 error occurred:\n\t* failed '
                                   'to execute query: role "nosuchuser" does not exist\n\n']
    assert d.call("GET", "database/static-roles/st-none").status_code == 404


def test_rotate_root_replaces_the_root_password(d: EngineNode, pg: PostgresServer) -> None:
    pg.query('DROP ROLE IF EXISTS "vault-root"')
    pg.query("CREATE ROLE \"vault-root\" LOGIN CREATEROLE PASSWORD 'root-initial'")
    pg.query('GRANT SELECT ON visible TO "vault-root" WITH GRANT OPTION')
    d.ok("POST", "database/config/rooted", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "vault-root", "password": "root-initial", "allowed_roles": "*"})
    d.ok("POST", "database/roles/viaroot", json={
        "db_name": "rooted", "creation_statements": [PG_CREATE]})
    d.ok("POST", "database/rotate-root/rooted")
    assert not pg.can_login("vault-root", "root-initial")
    # The engine goes on working with the password only it knows.
    user, password, _ = creds(d, "viaroot")
    assert pg.can_login(user, password)
    read = d.ok("GET", "database/config/rooted")["data"]
    assert "password" not in read["connection_details"]


def test_config_read_hides_the_password(d: EngineNode, pg: PostgresServer) -> None:
    data = d.ok("GET", "database/config/pg")["data"]
    assert data == {
        "plugin_name": "postgresql-database-plugin", "plugin_version": "",
        "connection_details": {"connection_url": pg.connection_url(), "username": "postgres"},
        "allowed_roles": ["ro", "st*", "bad*"], "root_credentials_rotate_statements": [],
        "password_policy": ""}
    # A literal password in the URL is redacted on read and warned about on write.
    resp = d.call("POST", "database/config/literal", json={
        "plugin_name": "postgresql-database-plugin",
        "connection_url": pg.connection_url(templated=False)})
    assert resp.status_code == 200
    assert resp.json["warnings"][0].startswith("Password found in connection_url")
    url = d.ok("GET", "database/config/literal")["data"]["connection_details"]["connection_url"]
    assert pg.password not in url and ":xxxxx@" in url
    assert d.ok("LIST", "database/config")["data"]["keys"] == ["literal", "pg"]


def test_unreachable_database_and_wrong_root_password_are_400s(
        d: EngineNode, pg: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sekrit-root-pw-1"
    resp = d.call("POST", "database/config/down", json={
        "plugin_name": "postgresql-database-plugin",
        "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres",
        "username": "postgres", "password": secret})
    assert resp.status_code == 400
    message = resp.json["errors"][0]
    assert message.startswith("error creating database object: error verifying connection: ")
    assert "127.0.0.1" in message and secret not in message
    assert d.call("GET", "database/config/down").status_code == 404  # nothing stored

    resp = d.call("POST", "database/config/wrongpw", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "postgres", "password": secret})
    assert resp.status_code == 400
    assert "password authentication failed" in resp.json["errors"][0]
    assert secret not in resp.text

    # Stored without verifying; creds then fail with a 400 and create nothing.
    d.ok("POST", "database/config/down", json={
        "plugin_name": "postgresql-database-plugin",
        "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres",
        "username": "postgres", "password": secret, "verify_connection": False,
        "allowed_roles": "*"})
    d.ok("POST", "database/roles/ondown", json={"db_name": "down",
                                                 "creation_statements": [PG_CREATE]})
    resp = d.call("GET", "database/creds/ondown")
    assert resp.status_code == 400
    assert resp.json["errors"][0].startswith("unable to get connection: ")
    assert secret not in caplog.text and pg.password not in caplog.text
    assert d.registrar is not None and not any(
        lease.startswith("database/creds/ondown") for lease in d.registrar.leases)


def test_wrong_sql_creates_nothing_and_leaks_no_password(
        d: EngineNode, pg: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d.ok("POST", "database/roles/bad-sql", json={"db_name": "pg", "creation_statements": [
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; "
        "GRANT SELECT ON no_such_table TO \"{{name}}\";"]})
    before = pg.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")[0][0]
    resp = d.call("GET", "database/creds/bad-sql")
    assert resp.status_code == 400
    assert resp.json["errors"] == [
        'failed to execute query: relation "no_such_table" does not exist']
    assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")[0][0] == before
    # A syntax error quotes the statement: the generated password is masked.
    d.ok("POST", "database/roles/bad-syntax", json={"db_name": "pg", "creation_statements": [
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' BOGUS;"]})
    resp = d.call("GET", "database/creds/bad-syntax")
    assert resp.status_code == 400
    assert resp.json["errors"][0].startswith("failed to execute query: ")
    assert "BOGUS" in resp.text.upper() or "bogus" in resp.text
    d.ok("POST", "database/roles/bad-empty", json={"db_name": "pg"})
    resp = d.call("GET", "database/creds/bad-empty")
    assert resp.status_code == 400 and resp.json["errors"] == ["empty creation statements"]
    assert pg.password not in caplog.text


def test_roles_outside_allowed_roles_and_unknown_names(d: EngineNode) -> None:
    d.ok("POST", "database/roles/other", json={"db_name": "pg",
                                                "creation_statements": [PG_CREATE]})
    resp = d.call("GET", "database/creds/other")
    assert (resp.status_code, resp.json["errors"]) == (400, ['"other" is not an allowed role'])
    resp = d.call("GET", "database/creds/nope")
    assert (resp.status_code, resp.json["errors"]) == (400, ["unknown role: nope"])
    d.ok("POST", "database/roles/nocfg", json={"db_name": "missing",
                                                "creation_statements": [PG_CREATE]})
    resp = d.call("GET", "database/creds/nocfg")
    assert resp.json["errors"] == ['failed to find entry for connection with name: "missing"']
    resp = d.call("POST", "database/roles/x", json={"creation_statements": [PG_CREATE]})
    assert (resp.status_code, resp.json["errors"]) == (400, ["database name is required"])
    resp = d.call("POST", "database/static-roles/ro", json={
        "db_name": "pg", "username": "u", "rotation_period": 60})
    assert resp.json["errors"] == ["Role and Static Role names must be unique"]
    resp = d.call("POST", "database/static-roles/st-short", json={
        "db_name": "pg", "username": "u", "rotation_period": 2})
    assert resp.json["errors"] == ["rotation_period must be 5 seconds or more"]
    resp = d.call("POST", "database/config/noplugin", json={"connection_url": "x"})
    assert resp.json["errors"] == ["empty plugin name"]
    resp = d.call("POST", "database/config/nourl", json={
        "plugin_name": "postgresql-database-plugin"})
    assert resp.json["errors"] == ["error creating database object: connection_url cannot "
                                   "be empty"]
    resp = d.call("POST", "database/config/badtpl", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": "postgresql://x@y/z",
        "username_template": "{{ nope }}", "verify_connection": False})
    assert resp.status_code == 400 and "unable to initialize username template" in resp.text


def test_username_template_and_password_policy(d: EngineNode, pg: PostgresServer) -> None:
    d.ok("PUT", "sys/policies/password/digits", json={"policy": (
        'length = 24\nrule "charset" {\n  charset = "0123456789"\n  min-chars = 24\n}\n')})
    d.ok("POST", "database/config/tpl", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "postgres", "password": pg.password, "allowed_roles": "*",
        "username_template": "app_{{.RoleName | uppercase}}_{{random 6 | lowercase}}",
        "password_policy": "digits"})
    d.ok("POST", "database/roles/reader", json={"db_name": "tpl",
                                                 "creation_statements": [PG_CREATE]})
    user, password, _ = creds(d, "reader")
    assert user.startswith("app_READER_") and len(user) == len("app_READER_") + 6
    assert len(password) == 24 and password.isdigit()
    assert pg.can_login(user, password)


def test_a_password_policy_cannot_inject_sql(d: EngineNode, pg: PostgresServer) -> None:
    """A policy whose passwords hold a quote would end ``'{{password}}'`` in the
    creation statement: the SQL after it would run as the root user (review finding)."""
    d.ok("PUT", "sys/policies/password/quotes", json={"policy": (
        'length = 8\nrule "charset" {\n  charset = "\'"\n  min-chars = 8\n}\n')})
    d.ok("POST", "database/config/inj", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "postgres", "password": pg.password, "allowed_roles": "*",
        "password_policy": "quotes"})
    d.ok("POST", "database/roles/inj", json={"db_name": "inj",
                                              "creation_statements": [PG_CREATE]})
    roles = pg.query("SELECT count(*) FROM pg_roles")
    resp = d.call("GET", "database/creds/inj")
    assert resp.status_code == 400
    assert "cannot be placed in SQL statements" in resp.json["errors"][0]
    assert pg.query("SELECT count(*) FROM pg_roles") == roles


def test_disabling_the_mount_closes_every_pool(d: EngineNode, pg: PostgresServer) -> None:
    d.ok("POST", "database/config/pooled", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "postgres", "password": pg.password, "allowed_roles": "*",
        "max_open_connections": 2})
    d.ok("POST", "database/roles/st-pooled", json={"db_name": "pooled",
                                                    "creation_statements": [PG_CREATE]})
    creds(d)
    creds(d, "st-pooled")
    assert engine_sessions(pg) >= 2  # pg and pooled, both open
    d.ok("DELETE", "database/config/pooled")
    d.ok("DELETE", "sys/mounts/database")
    assert engine_sessions(pg) == 0


def test_reset_reconnects(d: EngineNode, pg: PostgresServer) -> None:
    creds(d)
    before = {r[0] for r in pg.query("SELECT pid FROM pg_stat_activity "
                                     "WHERE application_name = 'strongroom'")}
    d.ok("POST", "database/reset/pg")
    after = {r[0] for r in pg.query("SELECT pid FROM pg_stat_activity "
                                    "WHERE application_name = 'strongroom'")}
    assert after and not (after & before)
    assert d.call("POST", "database/reset/missing").status_code == 400


def test_utc_expiration_format(d: EngineNode) -> None:
    d.clock.now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert d.backend().expiration(60) == "2030-01-02 03:05:10+0000"


def test_rotate_root_cut_short_keeps_the_working_password(
        d: EngineNode, pg: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pg.query('DROP ROLE IF EXISTS "crash-root"')
    pg.query("CREATE ROLE \"crash-root\" LOGIN CREATEROLE PASSWORD 'crash-initial'")
    d.ok("POST", "database/config/crashy", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.connection_url(),
        "username": "crash-root", "password": "crash-initial", "allowed_roles": "*"})
    d.ok("POST", "database/roles/st-crash", json={
        "db_name": "crashy", "creation_statements": [
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'"]})
    store = d.backend().store
    real_put, calls = store.put_config, []

    def put_then_crash(name: str, config: object) -> None:
        calls.append(name)
        if len(calls) == 2:  # after the server changed, before storage did
            raise OSError("storage gone")
        real_put(name, config)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "put_config", put_then_crash)
    assert d.call("POST", "database/rotate-root/crashy").status_code == 500
    monkeypatch.setattr(store, "put_config", real_put)
    assert not pg.can_login("crash-root", "crash-initial")  # the server has the new one
    d.backend().replace_plugin("crashy", None)  # as a restarted process
    user, password, _ = creds(d, "st-crash")  # recovered: the pending password adopted
    assert pg.can_login(user, password)
    config = store.config("crashy")
    assert config is not None and config.pending_root_password == ""
    assert config.connection_details["password"] != "crash-initial"


def test_a_static_rotation_cut_short_is_redone_at_once(d: EngineNode, pg: PostgresServer) -> None:
    pg.query('DROP ROLE IF EXISTS "static-cut"')
    pg.query("CREATE ROLE \"static-cut\" LOGIN PASSWORD 'x'")
    d.ok("POST", "database/static-roles/st-cut", json={
        "db_name": "pg", "username": "static-cut", "rotation_period": "24h"})
    store = d.backend().store
    role = store.static_role("st-cut")
    assert role is not None
    # As a crash would leave it: the server took the pending password, storage did not.
    pg.query("ALTER ROLE \"static-cut\" PASSWORD 'pending-on-server'")
    role.pending_password = "pending-on-server"
    store.put_static_role("st-cut", role)
    d.backend().periodic()  # not due for 24h, but cut short: redone now
    now = d.ok("GET", "database/static-creds/st-cut")["data"]["password"]
    assert pg.can_login("static-cut", now) and not pg.can_login("static-cut",
                                                                "pending-on-server")
    stored = store.static_role("st-cut")
    assert stored is not None and stored.pending_password == ""


def test_no_pool_is_opened_once_the_mount_is_cleaned_up(d: EngineNode, pg: PostgresServer) -> None:
    backend = d.backend()
    backend.cleanup()
    with pytest.raises(Exception, match="being removed"):
        backend.plugin("pg")
    assert engine_sessions(pg) == 0
