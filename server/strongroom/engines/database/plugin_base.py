"""What the built-in database plugins share (plugin_postgres.py, plugin_mysql.py):
connection details, username template, pool, the operations in Vault's terms.

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
from strongroom.framework.gotypes import GoParseError, duration_seconds

from . import statements as sql
from .pool import Pool, PoolClosedError, PoolTimeoutError
from .templates import TemplateError, UsernameTemplate

log = logging.getLogger(__name__)
POSTGRES, MYSQL = "postgresql-database-plugin", "mysql-database-plugin"
CONNECT_TIMEOUT = 5


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
        self._secrets = [s for s in (self.password, quote(self.password, safe=""),
                                     *_embedded_passwords(url)) if s]
        self.url = url
        size = _int(details, "max_open_connections", 4)
        idle = _int(details, "max_idle_connections", 0)
        try:
            lifetime = duration_seconds(details.get("max_connection_lifetime") or 0)
        except GoParseError as exc:
            raise DatabaseError(f"invalid max_connection_lifetime: {exc}") from None
        template = str(details.get("username_template") or "") or self.default_template
        try:
            self.template = UsernameTemplate(template)
        except TemplateError as exc:
            raise DatabaseError(f"unable to initialize username template: {exc}") from None
        try:
            self.template.generate()
        except TemplateError as exc:
            raise DatabaseError(f"invalid username template: {exc}") from None
        self.pool: Pool[Any] = Pool(self._connect, self._alive, self._close, size, idle,
                                    lifetime)

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

    max_username_bytes = 0  # the server's identifier limit, if it shortens silently

    def generate_username(self, role_name: str, display_name: str) -> str:
        try:
            name = self.template.generate(role_name=role_name, display_name=display_name)
        except TemplateError as exc:
            raise DatabaseError(str(exc)) from None
        if self.max_username_bytes and len(name.encode()) > self.max_username_bytes:
            # The server would create a shorter name than the lease keeps: its
            # revocation would drop nothing and the credential would stay live.
            raise DatabaseError(f"generated username is longer than "
                                f"{self.max_username_bytes} bytes; use truncate in "
                                "username_template")
        return name

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


_KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _embedded_passwords(url: str) -> list[str]:
    """A password written into the connection URL itself (URI userinfo, libpq's
    ``password=``, Go's MySQL DSN ``user:password@``), raw and decoded: a driver may
    quote it in an error (libpq: 'invalid percent-encoded token: "<password>"')."""
    found: list[str] = []
    rest = url.split("://", 1)[1] if "://" in url else url
    slash = rest.find("/")
    at = rest.rfind("@", 0, slash if slash >= 0 else len(rest))
    if at >= 0:
        _user, sep, password = rest[:at].partition(":")
        if sep and password and "{{password}}" not in password:
            found += [password, unquote(password)]
    for m in _KEYWORD_PASSWORD.finditer(url):
        value = m.group(1)
        if value.startswith("'"):
            value = value[1:-1]
        if value and "{{password}}" not in value:
            found.append(value)
    return [f for f in found if len(f) >= 3]


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


def redact_connection_url(url: str) -> str:
    """``connection_url`` as READ shows it: Go's url.Redacted() for a URI (as Vault);
    a password in libpq's keyword form or in Go's MySQL DSN (``user:password@...``),
    which Go's url.Parse does not see, is masked too."""
    redacted = redact_url(url)
    if redacted != url:
        return redacted
    out = _KEYWORD_PASSWORD.sub(
        lambda m: m.group(0) if "{{password}}" in m.group(1)
        else m.group(0)[:m.start(1) - m.start(0)] + "xxxxx", url)
    if "://" not in out:
        slash = out.find("/")
        at = out.rfind("@", 0, slash if slash >= 0 else len(out))
        user, sep, password = out[:at].partition(":") if at >= 0 else ("", "", "")
        if sep and password and "{{password}}" not in password:
            out = f"{user}:xxxxx{out[at:]}"
    return out


def url_has_password(url: str) -> bool:
    return _url_password(url) is not None
