"""The ``socket`` audit device: entries streamed to a collector over ``tcp`` (default),
``udp`` or ``unix`` at ``address``, each write bounded by ``write_timeout`` (default
2s), as Vault. Connected lazily and again after a failure (one retry, as Vault).

A TCP peer that went away is only noticed by the kernel after a send; so before each
write the device checks whether the peer has closed its side (the socket reads as
EOF) and reconnects first: a collector that is gone makes the write fail, and the
request with it (fail closed), instead of the line vanishing into a dead buffer.

A collector that cannot be reached is not dialled again for RECONNECT_PAUSE: a worker
serves its requests on one event loop, and a connect that hangs until write_timeout
for every request would stall all of them. Meanwhile this device records nothing
(the request is refused unless another device records it).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import TYPE_CHECKING, Any

from strongroom.audit.device import ConnectedDevice
from strongroom.errors import BadRequestError
from strongroom.framework.gotypes import GoParseError, parse_duration_ns

if TYPE_CHECKING:
    from strongroom.core.mounts import MountContext

RECONNECT_PAUSE = 0.5  # seconds after a failed connect
_TYPES = {"tcp": (socket.AF_INET, socket.SOCK_STREAM),
          "tcp4": (socket.AF_INET, socket.SOCK_STREAM),
          "tcp6": (socket.AF_INET6, socket.SOCK_STREAM),
          "udp": (socket.AF_INET, socket.SOCK_DGRAM),
          "udp4": (socket.AF_INET, socket.SOCK_DGRAM),
          "udp6": (socket.AF_INET6, socket.SOCK_DGRAM),
          "unix": (socket.AF_UNIX, socket.SOCK_STREAM),
          "unixgram": (socket.AF_UNIX, socket.SOCK_DGRAM)}


class SocketDevice(ConnectedDevice):
    def __init__(self, ctx: MountContext) -> None:
        super().__init__(ctx)
        address = self.options.get("address")
        if address is None:
            raise BadRequestError("address is required")
        self.address = address
        self.socket_type = self.options.get("socket_type", "tcp")
        try:
            timeout_ns = parse_duration_ns(self.options.get("write_timeout", "2s"))
        except GoParseError as exc:
            raise BadRequestError(str(exc)) from None
        self.write_timeout = max(timeout_ns / 1e9, 0.001)
        self._paused_until = 0.0  # time.monotonic() before which no connect is tried

    def _target(self) -> tuple[int, int, str | tuple[str, int]]:
        kind = _TYPES.get(self.socket_type)
        if kind is None:
            raise OSError(f"dial {self.socket_type}: unknown network {self.socket_type}")
        family, type_ = kind
        if family == socket.AF_UNIX:
            return family, type_, self.address
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            raise OSError(f"dial {self.socket_type} {self.address}: missing port in address")
        return family, type_, (host.strip("[]") or "127.0.0.1", int(port))

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            if self._sock.type != socket.SOCK_STREAM or not _peer_closed(self._sock):
                return self._sock
            self._close_locked()
        if time.monotonic() < self._paused_until:
            raise OSError(f"dial {self.socket_type} {self.address}: not retried yet after "
                          "a failed connect")
        try:
            self._sock = self._dial()
        except OSError:
            self._paused_until = time.monotonic() + RECONNECT_PAUSE
            raise
        return self._sock

    def _dial(self) -> socket.socket:
        family, type_, target = self._target()
        address: Any = target
        if isinstance(target, tuple):
            # A host name: resolved for the family asked for (tcp4/tcp6, udp...).
            info = socket.getaddrinfo(target[0], target[1], family, type_)
            family, type_, _proto, _name, address = info[0]
        sock = socket.socket(family, type_ | socket.SOCK_CLOEXEC)
        sock.settimeout(self.write_timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def write(self, line: bytes) -> None:
        with self._lock:
            for attempt in (0, 1):
                sock = self._connect()  # a failed connect is not retried at once
                try:
                    sock.sendall(line)
                    return
                except OSError:
                    # A broken or timed-out stream may hold part of the line: it is
                    # dropped with the connection; the retry sends the line whole on
                    # a new one, as Vault does.
                    self._close_locked()
                    if attempt:
                        raise



def _peer_closed(sock: socket.socket) -> bool:
    """Whether a stream's peer has closed it (readable at EOF, or in error)."""
    try:
        poller = select.poll()  # not select(): descriptors may be numbered past 1024
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        data = sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if not data:
        return True
    # A collector that talks back: what it said is of no use to us; drop it.
    with contextlib.suppress(OSError):
        sock.recv(len(data), socket.MSG_DONTWAIT)
    return False
