"""The two built-in database plugins, ``postgresql-database-plugin`` (psycopg 3) and
``mysql-database-plugin`` (PyMySQL, MySQL and MariaDB), behind one interface.

A plugin instance holds one config's connection details and its pool. Every error
it raises is a :class:`DatabaseError` whose text has the connection password and
any password being set replaced by ``[password]`` (Vault's error sanitizer
middleware): a driver's message may quote the failing SQL, which holds it.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from strongroom.errors import BadRequestError, multierror

from . import statements as sql
from .pool import Pool, PoolClosedError, PoolTimeoutError
from .templates import TemplateError, UsernameTemplate

log = logging.getLogger(__name__)
POSTGRES, MYSQL = "postgresql-database-plugin", "mysql-database-plugin"
PLUGINS = (POSTGRES, MYSQL)
CONNECT_TIMEOUT = 5
EXPIRATION_FORMAT = "%Y-%m-%d %H:%M:%S%z"  # Go's "2006-01-02 15:04:05-0700"


class DatabaseError(BadRequestError):
    """The database refused or could not be reached; the text names no secret."""


class ConnectError(DatabaseError):
    """No connection could be opened (server down, wrong root credentials)."""


def _int(details: Mapping[str, Any], key: str, default: int) -> int:
    raw = details.get(key)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise DatabaseError(f"invalid {key}: {raw!r}") from None


class Plugin(ABC):
    """One config's plugin: connection details, username template, pool."""

    name = ""
    default_template = ""

    def __init__(self, details: Mapping[str, Any]) -> None:
        url = str(details.get("connection_url") or "")
        if not url:
            raise DatabaseError("connection_url cannot be empty")
        self.username = str(details.get("username") or "")
        self.password = str(details.get("password") or "")
        for value in (self.username, self.password):
            if "{{username}}" in value or "{{password}}" in value:
                raise DatabaseError(
                    "username and/or password cannot contain the template variables")
        self._secrets = [s for s in (self.password, quote(self.password, safe=""))
                         if s]
        self.url = url
        size = _int(details, "max_open_connections", 4)
        template = str(details.get("username_template") or "") or self.default_template
        try:
            self.template = UsernameTemplate(template)
        except TemplateError as exc:
            raise DatabaseError(f"unable to initialize username template: {exc}") from None
        try:
            self.template.generate()
        except TemplateError as exc:
            raise DatabaseError(f"invalid username template: {exc}") from None
        self.pool: Pool[Any] = Pool(self._connect, self._alive, self._close, size)

    # -- what each database does its own way -------------------------------------

    @abstractmethod
    def _open(self) -> Any: ...

    @abstractmethod
    def _alive(self, conn: Any) -> bool: ...

    @abstractmethod
    def _close(self, conn: Any) -> None: ...

    @abstractmethod
    def _run(self, conn: Any, queries: list[str], transaction: bool) -> None: ...

    @abstractmethod
    def _default_delete(self, conn: Any, username: str) -> None: ...

    def _session_owner(self, conn: Any, username: str) -> Any:
        """What identifies the user's sessions once the user is dropped."""
        return username

    @abstractmethod
    def _end_sessions(self, conn: Any, owner: Any) -> None: ...

    @abstractmethod
    def _driver_errors(self) -> tuple[type[BaseException], ...]: ...

    default_password_statement = ""  # noqa: S105
    default_expiration_statement = ""
    verify_error_prefix = "error verifying connection: "

    def _connect(self) -> Any:
        """Open a connection for the pool; a driver failure becomes a ConnectError."""
        try:
            return self._open()
        except self._driver_errors() as exc:
            raise ConnectError(self.clean(_first_line(exc))) from None

    # -- the plugin interface ----------------------------------------------------

    def clean(self, text: str, *extra: str) -> str:
        """``text`` with every secret this call knows replaced by ``[password]``."""
        for secret in sorted({*self._secrets, *(e for e in extra if e)}, key=len,
                             reverse=True):
            text = text.replace(secret, "[password]")
        return text

    @contextmanager
    def _session(self, *secrets: str) -> Iterator[Any]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolClosedError, PoolTimeoutError) as exc:
            raise DatabaseError(str(exc)) from None
        except self._driver_errors() as exc:
            raise DatabaseError(self.clean(_first_line(exc), *secrets)) from None

    def verify(self) -> None:
        """Open (and ping) a connection now: the config's ``verify_connection``."""
        with self._session() as conn:
            self._run(conn, ["SELECT 1"], transaction=False)

    def generate_username(self, role_name: str, display_name: str) -> str:
        try:
            return self.template.generate(role_name=role_name, display_name=display_name)
        except TemplateError as exc:
            raise DatabaseError(str(exc)) from None

    def new_user(self, creation: list[str], rollback: list[str], username: str,
                 password: str, expiration: str) -> None:
        if not creation:
            raise DatabaseError("empty creation statements")
        values = {"name": username, "username": username, "password": password,
                  "expiration": expiration}
        queries = [sql.render(q, values) for q in sql.expand(creation, whole_blocks=True)]
        try:
            with self._session(password) as conn:
                self._run(conn, queries, transaction=True)
        except ConnectError as exc:
            raise DatabaseError(f"unable to get connection: {exc.message}") from None
        except DatabaseError as exc:
            self._undo_create(rollback, username)
            raise DatabaseError(f"failed to execute query: {exc.message}") from None

    def _undo_create(self, rollback: list[str], username: str) -> None:  # noqa: B027
        """Nothing half-created: PostgreSQL rolled the transaction back; MySQL's DDL
        commits each statement, so the user is dropped if it was made."""

    def delete_user(self, username: str, revocation: list[str]) -> None:
        with self._session() as conn:
            owner = self._session_owner(conn, username)
            if revocation:
                values = {"name": username, "username": username}
                self._run(conn, [sql.render(q, values) for q in sql.expand(
                    revocation, whole_blocks=True)], transaction=True)
            else:
                self._default_delete(conn, username)
            # A revoked credential stops working now, not at its next login. Sessions
            # are ended after the drop, so none can be opened in between.
            if owner is not None:
                self._end_sessions(conn, owner)

    def set_password(self, username: str, password: str, commands: list[str]) -> None:
        if not username or not password:
            raise DatabaseError("must provide both username and password")
        values = {"name": username, "username": username, "password": password}
        queries = [sql.render(q, values) for q in sql.expand(
            commands or [self.default_password_statement])]
        try:
            with self._session(password) as conn:
                self._run(conn, queries, transaction=True)
        except DatabaseError as exc:
            text = exc.message if isinstance(exc, ConnectError) else (
                f"failed to execute query: {exc.message}")
            raise DatabaseError(self.update_error(text)) from None

    def update_error(self, text: str) -> str:
        """How the plugin's UpdateUser words a failure (OpenBao's PostgreSQL plugin
        collects them in a go-multierror)."""
        return multierror(text)

    def set_expiration(self, username: str, expiration: str, commands: list[str]) -> None:
        commands = commands or ([self.default_expiration_statement]
                                if self.default_expiration_statement else [])
        if not commands:
            return  # MySQL has no expiry to move (as Vault's plugin)
        values = {"name": username, "username": username, "expiration": expiration}
        with self._session() as conn:
            self._run(conn, [sql.render(q, values) for q in sql.expand(commands)],
                      transaction=True)

    def close(self) -> None:
        self.pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text


def _url_password(url: str) -> str | None:
    """The password in a URL's userinfo, as Go's url.Parse sees it: a templated one
    (``{{password}}``) does not parse in Go, so it is no password there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or parts.password is None or "{" in (parts.netloc.rpartition("@")[0]):
        return None
    return parts.password


def redact_url(url: str) -> str:
    """Go's url.Redacted(): a password in the URL's userinfo becomes ``xxxxx``."""
    if _url_password(url) is None:
        return url
    parts = urlsplit(url)
    netloc = f"{parts.username or ''}:xxxxx@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def url_has_password(url: str) -> bool:
    return _url_password(url) is not None


class PostgresPlugin(Plugin):
    name = POSTGRES
    default_template = ('{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) '
                        '(.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}')
    default_password_statement = "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';"  # noqa: S105
    default_expiration_statement = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"

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


def build(plugin_name: str, details: Mapping[str, Any]) -> Plugin:
    """A plugin instance for a config; unknown names are Vault's catalog error."""
    if plugin_name == POSTGRES:
        return PostgresPlugin(details)
    if plugin_name == MYSQL:
        return MySQLPlugin(details)
    raise DatabaseError(f"no plugin found for {plugin_name!r}")
