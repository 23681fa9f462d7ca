"""Helpers for audit tests: a tiny tmpfs that fills up, a collector socket, log reading."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import requires


@contextmanager
def tiny_tmpfs(size: str = "64k") -> Iterator[Path]:
    """A real tmpfs of ``size`` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        requires.missing("root", "mount -t tmpfs needs it")
    where = Path(tempfile.mkdtemp(prefix="audit-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def fill(directory: Path, name: str = "filler") -> Path:
    """Write to ``directory`` until the file system is full; returns the filler."""
    filler = directory / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):  # down to the last byte
            try:
                while True:
                    os.write(fd, b"x" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def entries(path: Path) -> list[dict[str, Any]]:
    """Every line of an audit log, parsed (a line that does not parse fails the test)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


class Collector:
    """A TCP or unix stream server that keeps every line it receives."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lines: list[bytes] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            *done, buf = buf.split(b"\n")
            with self._received:
                self.lines.extend(done)
                self._received.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> list[bytes]:
        with self._received:
            self._received.wait_for(lambda: len(self.lines) >= count, timeout)
            return list(self.lines)

    def close(self) -> None:
        """The peer goes away: listener and every connection closed. (Shut down first: a
        listener closed while a thread waits in accept() would keep accepting.)"""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@contextmanager
def tcp_collector() -> Iterator[tuple[Collector, str]]:
    sock = socket.socket()
    # The same port may be listened on again once this one is gone (connections the
    # collector closed sit in TIME_WAIT; both listeners must allow reuse).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    collector = Collector(sock)
    try:
        yield collector, f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        collector.close()
