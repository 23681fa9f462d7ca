"""A real MariaDB server for tests: ``mariadb-install-db`` into a temporary directory,
then ``mariadbd`` on a free loopback port with its socket in that directory.

An admin account ``admin@'%'`` with every privilege (and GRANT OPTION) is created over
the socket once the server answers; the database engine connects as it over TCP.

The binaries come from Debian's ``mariadb-server`` (``$STRONGROOM_MARIADB_BIN`` names
another directory). Missing: skip locally, fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
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

HINT = "apt-get install mariadb-server (scripts/test.sh installs it)"
ADMIN = "admin"


def _binary(name: str) -> str:
    directory = os.environ.get("STRONGROOM_MARIADB_BIN")
    if directory:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name, path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", ""))
    if found is None:
        requires.missing(f"MariaDB ({name})", HINT)
    return found


@dataclass
class MariaDBServer:
    host: str
    port: int
    socket: Path
    superuser: str
    password: str

    def connection_url(self) -> str:
        """A Vault connection_url for the mysql plugin (Go's DSN form)."""
        return f"{{{{username}}}}:{{{{password}}}}@tcp({self.host}:{self.port})/"

    def connect(self, user: str | None = None, password: str | None = None,
                **kwargs: Any) -> Any:
        pymysql = requires.module("pymysql", "pip install PyMySQL")
        return pymysql.connect(host=self.host, port=self.port, user=user or self.superuser,
                               password=self.password if password is None else password,
                               connect_timeout=5, autocommit=True, **kwargs)

    def can_login(self, user: str, password: str) -> bool:
        pymysql = requires.module("pymysql")
        try:
            conn = self.connect(user, password)
        except pymysql.err.OperationalError:
            return False
        conn.close()
        return True

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args or None)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def sessions(self, user: str) -> int:
        rows = self.query("SELECT count(*) FROM information_schema.processlist "
                          "WHERE user = %s AND id <> connection_id()", user)
        return int(rows[0][0])


@contextlib.contextmanager
def mariadb_server() -> Iterator[MariaDBServer]:
    """Start a private MariaDB; stopped and removed on exit."""
    install_db, mariadbd = _binary("mariadb-install-db"), _binary("mariadbd")
    pymysql = requires.module("pymysql", "pip install PyMySQL")
    user = service_user("mysql")
    root = private_dir("strongroom-maria-", user)
    data, sock, log = root / "data", root / "mysqld.sock", root / "server.log"
    password = secrets.token_urlsafe(18)
    proc = None
    try:
        common = ["--no-defaults", f"--datadir={data}"]
        if user is not None:
            common.append(f"--user={user.pw_name}")
        run_as(None if user is None else user, [
            install_db, *common, "--auth-root-authentication-method=normal",
            "--skip-test-db", f"--basedir={Path(mariadbd).parent.parent}"], root, timeout=180)
        port = free_port()
        proc = spawn_as(user, [
            mariadbd, *common, f"--port={port}", "--bind-address=127.0.0.1",
            f"--socket={sock}", f"--pid-file={root / 'mysqld.pid'}", "--skip-name-resolve",
            "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--max-connections=300",
            "--innodb-flush-log-at-trx-commit=0", f"--tmpdir={root}",
        ], root, log)

        def ready() -> bool:
            try:
                pymysql.connect(unix_socket=str(sock), user="root", connect_timeout=2).close()
            except pymysql.err.OperationalError:
                return False
            return True

        wait_ready(ready, proc, log)
        conn = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE USER '{ADMIN}'@'%%' IDENTIFIED BY %s", (password,))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN}'@'%' WITH GRANT OPTION")
        finally:
            conn.close()
        yield MariaDBServer("127.0.0.1", port, sock, ADMIN, password)
    finally:
        if proc is not None:
            stop(proc, signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)
