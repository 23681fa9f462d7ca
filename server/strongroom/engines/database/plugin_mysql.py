"""``mysql-database-plugin``: MySQL and MariaDB through PyMySQL; ``connection_url``
is Go's DSN form (``user:password@tcp(host:port)/dbname``), as Vault's plugin takes it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from . import statements as sql
from .plugin_base import CONNECT_TIMEOUT, MYSQL, DatabaseError, Plugin, log

_DSN = re.compile(r"^(?:(?P<userinfo>.*)@)?(?:(?P<net>[a-z0-9]+)(?:\((?P<addr>[^)]*)\))?)?"
                  r"/(?P<db>[^?/]*)(?:\?(?P<params>.*))?$")


class MySQLPlugin(Plugin):
    name = MYSQL
    default_template = ('{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) '
                        '(.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}')
    default_password_statement = "ALTER USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';"  # noqa: S105
    verify_error_prefix = "error verifying - ping: "

    def update_error(self, text: str) -> str:
        return f"failed to change password: {text}"
    default_revocation = ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{{name}}'@'%'; "
                          "DROP USER '{{name}}'@'%'")

    def __init__(self, details: Mapping[str, Any]) -> None:
        super().__init__(details)
        import pymysql

        self._pymysql = pymysql
        # Go's DSN: [user[:password]@][net[(addr)]]/dbname[?params]; the password is
        # not escaped for MySQL (Vault's connutil).
        dsn = sql.render(self.url, {"username": self.username, "password": self.password})
        slash = dsn.rfind("/")
        at = dsn.rfind("@", 0, slash if slash >= 0 else len(dsn))
        m = _DSN.match(dsn[at + 1:]) if slash >= 0 else None
        if m is None:
            raise DatabaseError("invalid DSN: missing the slash separating the database name")
        user, _, password = dsn[:at].partition(":") if at >= 0 else ("", "", "")
        self._kwargs: dict[str, Any] = {"user": unquote(user), "password": password,
                                        "database": m.group("db") or None}
        net, addr = m.group("net") or "tcp", m.group("addr") or "127.0.0.1:3306"
        if net == "unix":
            self._kwargs["unix_socket"] = addr
        else:
            host, _, port = addr.rpartition(":") if ":" in addr else (addr, "", "3306")
            self._kwargs.update(host=host.strip("[]"), port=int(port or 3306))

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        return (self._pymysql.Error,)

    def _open(self) -> Any:
        return self._pymysql.connect(autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                     **self._kwargs)

    def _alive(self, conn: Any) -> bool:
        try:
            conn.ping(reconnect=False)
        except self._pymysql.Error:
            return False
        return True

    def _close(self, conn: Any) -> None:
        conn.close()

    def _run(self, conn: Any, queries: list[str], transaction: bool) -> None:
        with conn.cursor() as cur:
            if transaction:
                conn.begin()
            try:
                for query in queries:
                    cur.execute(query)
            except BaseException:
                if transaction:
                    conn.rollback()
                raise
            if transaction:
                conn.commit()

    def _undo_create(self, rollback: list[str], username: str) -> None:
        try:
            with self._session() as conn:
                commands = rollback or [self.default_revocation]
                values = {"name": username, "username": username}
                for query in sql.expand(commands):
                    try:
                        self._run(conn, [sql.render(query, values)], transaction=False)
                    except self._pymysql.Error:
                        continue  # a grant that never happened: go on to DROP USER
        except DatabaseError as exc:
            log.warning("event=db_rollback_failed plugin=mysql error=%s", exc.message)

    def _default_delete(self, conn: Any, username: str) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT exists (SELECT user FROM mysql.user WHERE user=%s)",
                        (username,))
            row = cur.fetchone()
        if not row or not row[0]:
            return
        values = {"name": username, "username": username}
        self._run(conn, [sql.render(q, values) for q in sql.expand(
            [self.default_revocation])], transaction=True)

    def _end_sessions(self, conn: Any, owner: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s "
                        "AND id <> connection_id()", (owner,))
            for (pid,) in cur.fetchall():
                try:
                    cur.execute(f"KILL {int(pid)}")
                except self._pymysql.Error:
                    continue  # it ended by itself meanwhile
