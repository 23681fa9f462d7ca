"""The engine's small parts: statement splitting, the connection pool, URL handling."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from strongroom.engines.database import statements as sql
from strongroom.engines.database.plugins import (
    DatabaseError,
    MySQLPlugin,
    PostgresPlugin,
    build,
    redact_url,
    url_has_password,
)
from strongroom.engines.database.pool import Pool, PoolClosedError


def test_statements_split_like_vault() -> None:
    assert sql.split("CREATE ROLE a; GRANT x TO a;  ;") == ["CREATE ROLE a", "GRANT x TO a"]
    assert sql.split('["CREATE ROLE a", "GRANT x TO a;"]') == ["CREATE ROLE a", "GRANT x TO a;"]
    block = "DO $$ BEGIN CREATE ROLE a; END $$;"
    assert sql.expand([block], whole_blocks=True) == [block]
    assert sql.expand(["SELECT 'END'; SELECT 1"], whole_blocks=True) == ["SELECT 'END'",
                                                                       "SELECT 1"]
    assert sql.render("{{name}}/{{username}}/{{password}}", {
        "name": "n", "username": "u", "password": "p"}) == "n/u/p"
    assert sql.parse_list("one") == ["one"] and sql.parse_list(None) == []


class Conn:
    def __init__(self) -> None:
        self.closed = False
        self.alive = True


def test_pool_reuses_replaces_dead_and_closes_everything() -> None:
    made: list[Conn] = []

    def connect() -> Conn:
        made.append(Conn())
        return made[-1]

    def close(c: Conn) -> None:
        c.closed = True

    pool: Pool[Conn] = Pool(connect, lambda c: c.alive, close, size=2)
    with pool.connection() as a:
        pass
    with pool.connection() as b:
        assert b is a  # reused
    a.alive = False
    with pool.connection() as c:
        assert c is not a and a.closed  # a dead one is replaced and closed
    with pytest.raises(RuntimeError), pool.connection() as broken:
        raise RuntimeError("query failed")
    assert broken.closed  # a connection that failed is not given back
    with pool.connection() as busy:
        pool.close()
        assert not busy.closed  # in use: closed when it comes back
    assert busy.closed and all(conn.closed for conn in made)
    assert pool.open_connections == 0
    with pytest.raises(PoolClosedError), pool.connection():
        pass


def test_pool_bounds_open_connections() -> None:
    opened: list[Any] = []

    def connect() -> object:
        opened.append(object())
        return opened[-1]

    pool: Pool[object] = Pool(connect, lambda c: True, lambda c: None, size=2)
    inside, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with pool.connection():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert pool.open_connections == 2
    release.set()
    for t in threads:
        t.join()
    with pool.connection():
        assert len(opened) == 2  # an idle one, no third


def test_urls() -> None:
    assert redact_url("postgresql://u:secret@h:5432/db") == "postgresql://u:xxxxx@h:5432/db"
    templated = "postgresql://{{username}}:{{password}}@h/db"
    assert redact_url(templated) == templated and not url_has_password(templated)
    assert url_has_password("postgresql://u:secret@h/db")
    assert not url_has_password("{{username}}:{{password}}@tcp(h:3306)/")


def test_plugin_input_errors() -> None:
    with pytest.raises(DatabaseError, match="no plugin found"):
        build("nope-plugin", {"connection_url": "x"})
    with pytest.raises(DatabaseError, match="connection_url cannot be empty"):
        PostgresPlugin({})
    with pytest.raises(DatabaseError, match="cannot contain the template variables"):
        PostgresPlugin({"connection_url": "postgresql://h/d", "password": "{{password}}"})
    with pytest.raises(DatabaseError, match="invalid max_open_connections"):
        PostgresPlugin({"connection_url": "postgresql://h/d", "max_open_connections": "x"})
    with pytest.raises(DatabaseError, match="invalid DSN"):
        MySQLPlugin({"connection_url": "no-slash-here"})


def test_mysql_dsn_forms() -> None:
    tcp = MySQLPlugin({"connection_url": "{{username}}:{{password}}@tcp(db.example:3307)/app",
                       "username": "admin", "password": "p@ss:w/rd"})
    assert tcp._kwargs == {"user": "admin", "password": "p@ss:w/rd", "database": "app",
                           "host": "db.example", "port": 3307}
    unix = MySQLPlugin({"connection_url": "root@unix(/run/mysqld.sock)/"})
    assert unix._kwargs == {"user": "root", "password": "", "database": None,
                            "unix_socket": "/run/mysqld.sock"}


def test_error_texts_hide_the_passwords() -> None:
    plugin = PostgresPlugin({"connection_url": "postgresql://{{username}}:{{password}}@h/d",
                             "username": "u", "password": "s3cr/t"})
    assert plugin.clean("auth s3cr/t and s3cr%2Ft failed") == (
        "auth [password] and [password] failed")
    assert plugin.clean("PASSWORD 'gen-pw-1' BOGUS", "gen-pw-1") == "PASSWORD '[password]' BOGUS"


def test_pool_idle_cap_and_lifetime() -> None:
    made: list[Conn] = []

    def connect() -> Conn:
        made.append(Conn())
        return made[-1]

    def close(c: Conn) -> None:
        c.closed = True

    pool: Pool[Conn] = Pool(connect, lambda c: c.alive, close, size=3, max_idle=1)
    with pool.connection() as a, pool.connection() as b:
        pass
    assert sum(not c.closed for c in (a, b)) == 1  # one kept idle, one closed
    aged: Pool[Conn] = Pool(connect, lambda c: c.alive, close, size=2, max_lifetime=1e-9)
    with aged.connection() as first:
        pass
    with aged.connection() as second:
        assert second is not first and first.closed  # too old to reuse
    with pytest.raises(DatabaseError, match="invalid max_connection_lifetime"):
        PostgresPlugin({"connection_url": "postgresql://h/d", "max_connection_lifetime": "x"})
