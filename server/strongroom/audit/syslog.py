"""The ``syslog`` audit device: one datagram per entry to the local syslog socket
(``/dev/log``, else ``/var/run/syslog``, ``/var/run/log``), as Go's log/syslog writes
it: ``<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE``. Options ``facility`` (default AUTH)
and ``tag`` (default "vault"), as Vault. A datagram is delivered whole or not at all.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from strongroom.audit.device import AuditDevice, ConnectedDevice, lenient
from strongroom.errors import BadRequestError

if TYPE_CHECKING:
    from strongroom.core.mounts import MountContext

SYSLOG_PATHS = ("/dev/log", "/var/run/syslog", "/var/run/log")
LOG_INFO = 6
WRITE_TIMEOUT = 2.0  # seconds, the socket device's default
FACILITIES = {
    "KERN": 0, "USER": 1, "MAIL": 2, "DAEMON": 3, "AUTH": 4, "SYSLOG": 5, "LPR": 6,
    "NEWS": 7, "UUCP": 8, "CRON": 9, "AUTHPRIV": 10, "FTP": 11,
    **{f"LOCAL{i}": 16 + i for i in range(8)},
}


class SyslogDevice(ConnectedDevice):
    def __init__(self, ctx: MountContext, paths: Sequence[str] = SYSLOG_PATHS) -> None:
        super().__init__(ctx)
        facility = self.options.get("facility", "AUTH")
        code = FACILITIES.get(facility.upper())
        if code is None:
            raise BadRequestError(f"invalid syslog facility: {facility}")
        self.priority = code * 8 + LOG_INFO
        self.tag = self.options.get("tag", "vault")
        self._paths = tuple(paths)

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        last: OSError = FileNotFoundError(2, "Unix syslog delivery error")
        for path in self._paths:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
                sock.settimeout(WRITE_TIMEOUT)  # a stalled syslogd fails the write
                try:
                    sock.connect(path)
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                self._sock = sock
                return sock
        raise last

    def test(self) -> None:
        try:
            with self._lock:
                self._connect()
        except OSError:
            raise BadRequestError("Unix syslog delivery error") from None
        super().test()

    def _frame(self, line: bytes) -> bytes:
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime()).encode()
        return b"<%d>%s %s[%d]: %s" % (self.priority, stamp, self.tag.encode(), os.getpid(),
                                       line)

    def write(self, line: bytes) -> None:
        message = self._frame(line)
        with self._lock:
            for attempt in (0, 1):
                try:
                    sock = self._connect()
                    if sock.type == socket.SOCK_STREAM:
                        sock.sendall(message)  # a stream syslog reads up to the newline
                    else:
                        sock.send(message)
                    return
                except OSError:
                    self._close_locked()  # syslogd restarted: reconnect once
                    if attempt:
                        raise



def syslog_factory(paths: Sequence[str] = SYSLOG_PATHS) -> Callable[[MountContext], AuditDevice]:
    """A registry factory writing to the first of ``paths`` that accepts (tests give
    their own socket)."""
    return lenient(lambda ctx: SyslogDevice(ctx, paths))  # type: ignore[no-any-return]
