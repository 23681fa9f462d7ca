"""The database engine's mysql-database-plugin against a real MariaDB started by the
test: credentials with only the granted privileges, revoke (user dropped, sessions
killed), wrong SQL leaving no half-created user, static rotation, root rotation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.database.support import MY_CREATE, EngineNode, engine_node
from tests.support import requires
from tests.support.mariadb import MariaDBServer, mariadb_server

pymysql = requires.module("pymysql", "pip install PyMySQL")


@pytest.fixture(scope="module")
def my() -> Iterator[MariaDBServer]:
    with mariadb_server() as server:
        server.query("CREATE DATABASE app")
        server.query("CREATE TABLE app.visible (id int)")
        server.query("INSERT INTO app.visible VALUES (1)")
        server.query("CREATE TABLE app.hidden (id int)")
        yield server


@pytest.fixture
def d(my: MariaDBServer) -> Iterator[EngineNode]:
    node = engine_node()
    node.ok("POST", "database/config/my", json={
        "plugin_name": "mysql-database-plugin", "connection_url": my.connection_url(),
        "username": my.superuser, "password": my.password, "allowed_roles": "*"})
    node.ok("POST", "database/roles/ro", json={
        "db_name": "my", "creation_statements": [MY_CREATE], "default_ttl": "10m"})
    yield node
    node.node.core.mounts.secrets.unload()


def users(my: MariaDBServer) -> set[str]:
    return {row[0] for row in my.query("SELECT user FROM mysql.user")}


def test_creds_have_only_the_granted_privileges_and_revoke_drops_them(
        d: EngineNode, my: MariaDBServer) -> None:
    body = d.ok("GET", "database/creds/ro")
    user, password = body["data"]["username"], body["data"]["password"]
    assert user.startswith("v-token-ro-") and len(user) <= 32
    assert body["lease_duration"] == 600
    conn = my.connect(user, password)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM app.visible")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("SELECT * FROM app.hidden")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("INSERT INTO app.visible VALUES (2)")
    assert d.registrar is not None
    d.creds_type().revoke(d.registrar.leases[body["lease_id"]])
    assert user not in users(my)
    assert not my.can_login(user, password)
    with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
        cur.execute("SELECT 1")  # its session was killed
    conn.close()
    # Renewing has nothing to move on MySQL (as Vault), but answers.
    body = d.ok("GET", "database/creds/ro")
    renewed = d.creds_type().renew(d.registrar.leases[body["lease_id"]], 300)
    assert renewed is not None and renewed.ttl == 300


def test_wrong_sql_leaves_no_half_created_user(d: EngineNode, my: MariaDBServer) -> None:
    d.ok("POST", "database/roles/bad", json={"db_name": "my", "creation_statements": [
        "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; "
        "GRANT BOGUS ON *.* TO '{{name}}'@'%';"]})
    before = users(my)
    resp = d.call("GET", "database/creds/bad")
    assert resp.status_code == 400
    assert resp.json["errors"][0].startswith("failed to execute query: (1064, ")
    assert users(my) == before  # OpenBao leaves the CREATE USER behind; we drop it


def test_static_rotation_and_rotate_root(d: EngineNode, my: MariaDBServer) -> None:
    my.query("CREATE USER IF NOT EXISTS 'svc'@'%' IDENTIFIED BY 'svc-initial'")
    d.ok("POST", "database/static-roles/svc", json={
        "db_name": "my", "username": "svc", "rotation_period": "24h"})
    first = d.ok("GET", "database/static-creds/svc")["data"]["password"]
    assert not my.can_login("svc", "svc-initial") and my.can_login("svc", first)
    d.ok("POST", "database/rotate-role/svc")
    second = d.ok("GET", "database/static-creds/svc")["data"]["password"]
    assert not my.can_login("svc", first) and my.can_login("svc", second)

    my.query("CREATE USER IF NOT EXISTS 'vroot'@'%' IDENTIFIED BY 'vroot-initial'")
    my.query("GRANT ALL PRIVILEGES ON *.* TO 'vroot'@'%' WITH GRANT OPTION")
    d.ok("POST", "database/config/rooted", json={
        "plugin_name": "mysql-database-plugin", "connection_url": my.connection_url(),
        "username": "vroot", "password": "vroot-initial", "allowed_roles": "*"})
    d.ok("POST", "database/rotate-root/rooted")
    assert not my.can_login("vroot", "vroot-initial")
    d.ok("POST", "database/roles/viaroot", json={"db_name": "rooted",
                                                  "creation_statements": [MY_CREATE]})
    body = d.ok("GET", "database/creds/viaroot")
    assert my.can_login(body["data"]["username"], body["data"]["password"])


def test_unreachable_and_wrong_password(d: EngineNode, my: MariaDBServer) -> None:
    resp = d.call("POST", "database/config/down", json={
        "plugin_name": "mysql-database-plugin",
        "connection_url": "{{username}}:{{password}}@tcp(127.0.0.1:1)/",
        "username": "admin", "password": "Pw-not-shown-1"})
    assert resp.status_code == 400
    assert resp.json["errors"][0].startswith("error creating database object: error "
                                             "verifying - ping: ")
    assert "Pw-not-shown-1" not in resp.text
    resp = d.call("POST", "database/config/wrong", json={
        "plugin_name": "mysql-database-plugin", "connection_url": my.connection_url(),
        "username": "admin", "password": "Pw-not-shown-1"})
    assert resp.status_code == 400 and "Access denied for user 'admin'" in resp.text
    assert "Pw-not-shown-1" not in resp.text
    assert d.ok("GET", "database/config/my")["data"]["connection_details"] == {
        "connection_url": my.connection_url(), "username": "admin"}
