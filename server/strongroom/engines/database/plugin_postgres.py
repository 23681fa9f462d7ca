"""``postgresql-database-plugin``: PostgreSQL through psycopg 3 (Vault's defaults:
username template, ALTER ROLE statements, revocation that revokes then drops)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from . import statements as sql
from .plugin_base import CONNECT_TIMEOUT, POSTGRES, DatabaseError, Plugin, _first_line


class PostgresPlugin(Plugin):
    name = POSTGRES
    default_template = ('{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) '
                        '(.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}')
    default_password_statement = "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';"  # noqa: S105
    default_expiration_statement = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"
    max_username_bytes = 63  # NAMEDATALEN - 1: longer identifiers are cut with a NOTICE

    def __init__(self, details: Mapping[str, Any]) -> None:
        super().__init__(details)
        import psycopg

        self._psycopg = psycopg
        if self.url.startswith(("postgres://", "postgresql://")):
            user, password = quote(self.username, safe=""), quote(self.password, safe="")
        else:
            user, password = self.username, self.password
        self._conninfo = sql.render(self.url, {"username": user, "password": password})

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg.Error,)

    def _open(self) -> Any:
        return self._psycopg.connect(self._conninfo, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT,
                                     application_name="strongroom")

    def _alive(self, conn: Any) -> bool:
        if conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except self._psycopg.Error:
            return False
        return True

    def _close(self, conn: Any) -> None:
        conn.close()

    def _run(self, conn: Any, queries: list[str], transaction: bool) -> None:
        if not transaction:
            for query in queries:
                conn.execute(query.encode())
            return
        with conn.transaction():
            for query in queries:
                conn.execute(query.encode())

    def _default_delete(self, conn: Any, username: str) -> None:
        exists = conn.execute("SELECT exists (SELECT rolname FROM pg_roles WHERE rolname=%s)",
                              (username,)).fetchone()[0]
        if not exists:
            return
        ident = self._psycopg.sql.Identifier
        schemas = [r[0] for r in conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.role_column_grants "
            "WHERE grantee=%s", (username,)).fetchall()]
        q = self._psycopg.sql.SQL
        revokes = []
        for schema in schemas:
            revokes.append(q("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {} FROM {}").format(
                ident(schema), ident(username)))
            revokes.append(q("REVOKE USAGE ON SCHEMA {} FROM {}").format(
                ident(schema), ident(username)))
        revokes += [
            q("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {}").format(
                ident(username)),
            q("REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {}").format(
                ident(username)),
            q("REVOKE USAGE ON SCHEMA public FROM {}").format(ident(username)),
        ]
        dbname = conn.execute("SELECT current_database()").fetchone()[0]
        if dbname:
            revokes.append(q("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                ident(dbname), ident(username)))
        last: BaseException | None = None
        for stmt in revokes:
            try:
                conn.execute(stmt)
            except self._psycopg.Error as exc:
                last = exc  # as Vault: try them all, report the last failure
        if last is not None:
            raise DatabaseError(
                f"could not perform all revocation statements: {_first_line(last)}")
        conn.execute(q("DROP ROLE IF EXISTS {}").format(ident(username)))

    def _session_owner(self, conn: Any, username: str) -> Any:
        # A dropped role's sessions keep its oid (pg_stat_activity.usesysid), not its name.
        row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
        return None if row is None else row[0]

    def _end_sessions(self, conn: Any, owner: Any) -> None:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE usesysid = %s AND pid <> pg_backend_pid()", (owner,))
