"""A real PostgreSQL server for tests: ``initdb`` into a temporary directory, then
``postgres`` on a free loopback port with its unix socket in that directory.

TCP logins need a password (scram-sha-256): what the database engine hands out is
checked by logging in with it, and a dropped or re-passworded user must fail. The
superuser ``postgres`` gets a known password; the engine connects as it.

The binaries are Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``) or
``$STRONGROOM_PG_BIN``. Missing: skip locally, fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import requires
from tests.support.dbproc import private_dir, run_as, service_user, spawn_as, stop, wait_ready
from tests.support.servers import free_port

HINT = "apt-get install postgresql (scripts/test.sh installs it)"


def pg_bin() -> Path:
    """The directory holding initdb and postgres."""
    explicit = os.environ.get("STRONGROOM_PG_BIN")
    candidates = [explicit] if explicit else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
        reverse=True)
    for directory in candidates:
        if directory and os.access(os.path.join(directory, "initdb"), os.X_OK):
            return Path(directory)
    requires.missing("PostgreSQL (initdb, postgres)", HINT)


@dataclass
class PostgresServer:
    host: str
    port: int
    socket_dir: Path
    superuser: str
    password: str
    database: str = "postgres"

    def connection_url(self, templated: bool = True) -> str:
        """A Vault connection_url: ``{{username}}``/``{{password}}`` filled by the engine."""
        auth = "{{username}}:{{password}}" if templated else (
            f"{self.superuser}:{self.password}")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}?sslmode=disable"

    def connect(self, user: str | None = None, password: str | None = None,
                **kwargs: Any) -> Any:
        """A psycopg connection over TCP (a password login), autocommit."""
        psycopg = requires.module("psycopg", "pip install 'psycopg[binary]'")
        return psycopg.connect(host=self.host, port=self.port, dbname=self.database,
                               user=user or self.superuser,
                               password=self.password if password is None else password,
                               autocommit=True, connect_timeout=5, **kwargs)

    def can_login(self, user: str, password: str) -> bool:
        psycopg = requires.module("psycopg")
        try:
            with self.connect(user, password) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(sql, args or None)
            return list(cur.fetchall()) if cur.description else []

    def sessions(self, user: str) -> int:
        """Server-side connections (backends) logged in as ``user``."""
        rows = self.query("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                          "AND pid <> pg_backend_pid()", user)
        return int(rows[0][0])


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a private PostgreSQL; stopped and removed on exit."""
    bindir = pg_bin()
    requires.module("psycopg", "pip install 'psycopg[binary]'")
    user = service_user("postgres")
    root = private_dir("strongroom-pg-", user)
    password = secrets.token_urlsafe(18)
    proc = None
    try:
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        data = root / "data"
        run_as(user, [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                      f"--pwfile={pwfile}", "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"], root)
        port = free_port()
        log = root / "server.log"
        proc = spawn_as(user, [
            str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ], root, log)
        server = PostgresServer("127.0.0.1", port, root, "postgres", password)
        wait_ready(lambda: server.can_login("postgres", password), proc, log)
        yield server
    finally:
        if proc is not None:
            stop(proc, signal.SIGINT)  # a fast shutdown: sessions are ended
        shutil.rmtree(root, ignore_errors=True)
