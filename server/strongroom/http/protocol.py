"""One client connection: uvicorn's h11 protocol held to Vault's listener limits.

uvicorn parses HTTP with h11 (which, unlike httptools, accepts Vault's ``LIST``
verb) on an asyncio loop, so a slow client costs a socket and a timer, never a
thread. What uvicorn does not bound, this subclass does, with Go's semantics
(Vault's listener is Go's ``net/http`` server):

- ``http_read_header_timeout``: a request's headers must arrive within it,
  counted from the connection's start or from the first byte of a later request;
- ``http_read_timeout``: the whole request, body included, from the same start;
- ``http_write_timeout``: from the end of the headers to the end of the answer;
- ``http_idle_timeout``: how long a kept-alive connection may wait for its next
  request;
- ``max_connections``: past it (counted across the node's workers) a new connection
  is closed before anything is read.

Every limit that expires aborts the connection: nothing is answered, as in Go.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from strongroom.http.asgi import runs_on_thread
from strongroom.http.fast_path import parse_simple, render_response
from strongroom.node.connections import ConnectionCounts

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
AsgiApp = Callable[[Scope, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class ConnectionLimits:
    """A listener's per-connection limits, in seconds (0: none), and its connection bound."""

    read_header_timeout: float = 10.0
    read_timeout: float = 30.0
    write_timeout: float = 0.0
    idle_timeout: float = 300.0
    max_connections: int = 4096


# How long a connection accepted just before its worker stopped may take to send its
# first request (it is normally already in the socket buffer).
_STOP_GRACE = 1.0

_HTTP_VERSIONS = frozenset({"1.0", "1.1"})
_VERSION_NOT_SUPPORTED = b'{"errors":["unsupported protocol version"]}'


class InlineApp(Protocol):
    """What the fast path needs of the app (http/asgi.py::StrongroomAsgi)."""

    @property
    def inline(self) -> bool: ...

    def respond(self, method: str, path: str, query: bytes, headers: dict[str, str],
                body: bytes, client: tuple[str, int] | None,
                client_cert: bytes | None = None
                ) -> tuple[int, list[tuple[bytes, bytes]], bytes]: ...


_SERVER_ERROR = (b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; "
                 b"charset=utf-8\r\nconnection: close\r\ncontent-length: 21\r\n\r\n"
                 b"Internal Server Error")


def _connection_app(app: AsgiApp, client_der: bytes | None) -> AsgiApp:
    """The app as one connection sees it: HTTP/1.x only, with its client certificate.

    h11 parses any ``HTTP/x.y``; Falcon refuses the unknown ones with an exception
    (a 500 and a traceback), Go's server with a 505, so this answers 505 first.
    The certificate is exposed through ASGI's TLS extension.
    """
    extension = None
    if client_der is not None:
        extension = {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(client_der)],
                     "client_cert_der": client_der}

    async def connection_app(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("http_version") not in _HTTP_VERSIONS:
            await send({"type": "http.response.start", "status": 505, "headers": [
                (b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": _VERSION_NOT_SUPPORTED})
            return
        if extension is not None:
            scope.setdefault("extensions", {})["tls"] = extension
        await app(scope, receive, send)

    return connection_app


class LimitedH11Protocol(H11Protocol):
    """h11 connection with header, read, write and idle deadlines and a connection cap."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    counts: ClassVar[ConnectionCounts | None] = None  # node-wide; None: this worker's only

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._request_started = 0.0
        self._refused = False
        self._stopping = False
        self._received = False
        self._inline: InlineApp | None = None
        self._client_cert: bytes | None = None

    @classmethod
    def with_limits(cls, limits: ConnectionLimits,
                    counts: ConnectionCounts | None = None) -> type[LimitedH11Protocol]:
        """A protocol class for one listener (uvicorn instantiates the class itself)."""
        return type("ListenerH11Protocol", (cls,), {"limits": limits, "counts": counts})

    def _admit(self) -> bool:
        """Take a place under the bound (node-wide when counts are shared)."""
        if self.counts is not None:
            return self.counts.admit(self.limits.max_connections)
        return len(self.connections) < self.limits.max_connections

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self._admit():
            self._refused = True
            self.transport = transport
            transport.abort()
            return
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        # The connection's client certificate reaches every request it carries: the
        # fast path hands it to respond(), the h11 cycle through the ASGI scope's TLS
        # extension (and from there to a large body's thread).
        self._client_cert = der or None
        app = self.app
        self.app = _connection_app(app, self._client_cert)
        if getattr(app, "inline", False):
            # Simple requests are answered in data_received (http/fast_path.py).
            self._inline = app
        self._start_request()
        if getattr(self.server_state, "stopping", False):
            self.shutdown()  # accepted while the worker stops: serve one request, close

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._phase == "closed":
            return
        self._phase = "closed"
        if self._refused:
            return
        if self.counts is not None:
            self.counts.add(-1)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._phase == "idle":
            self._start_request()
        if self._inline is not None and self._answer_inline(data):
            return
        super().data_received(data)
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # the worker stops: this is the last request
        self._follow_request()

    def shutdown(self) -> None:
        """The worker stops (uvicorn calls this on every connection it tracks).

        A connection that has not sent its first request yet was most likely accepted
        with that request on its way: closing it now resets a client that did nothing
        wrong. It gets a short grace to send it, is served, then closed."""
        self._stopping = True
        if self.cycle is None and self._phase == "header" and not self._received:
            self._cancel_deadline()
            self._deadline = self.loop.call_later(_STOP_GRACE, self._expire)
            return
        super().shutdown()

    # -- the fast path -----------------------------------------------------

    def _answer_inline(self, data: bytes) -> bool:
        """Answer ``data`` here if it is one whole simple request between two others
        (http/fast_path.py); False leaves it to h11, untouched."""
        conn = self.conn
        if (conn.our_state is not h11.IDLE or conn.their_state is not h11.IDLE
                or conn.trailing_data[0] or self.flow.write_paused
                or (self.cycle is not None and not self.cycle.response_complete)
                or self.transport.is_closing()):
            return False
        request = parse_simple(data)
        if request is None:
            return False
        raw_path, _, query = request.target.partition(b"?")
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)  # as uvicorn's scope["path"]
        if runs_on_thread(path):
            return False  # h11's path, which hands the request to a thread
        self._unset_keepalive_if_required()
        assert self._inline is not None
        try:
            status, headers, body = self._inline.respond(
                request.method, path, query, request.headers, request.body, self.client,
                self._client_cert)
            keep_alive = not (request.close or self._stopping)
            if request.close:
                headers.append((b"connection", b"close"))
            out = render_response(status, self.server_state.default_headers + headers, body)
        except Exception:  # noqa: BLE001 - as uvicorn's cycle: a 500, then close
            log.exception("event=unhandled_error stage=fast_path")
            self.transport.write(_SERVER_ERROR)
            self.transport.close()
            return True
        self.transport.write(out)
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        return True

    # -- uvicorn hooks -----------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            self._cancel_deadline()
            return
        self._phase = ""  # whatever comes next has deadlines of its own
        idle = self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE
        if idle and not self.conn.trailing_data[0]:
            self._enter("idle", self.limits.idle_timeout)
            return
        # A pipelined request has begun (uvicorn may already have parsed it).
        self._start_request()
        self._follow_request()

    # -- deadlines ---------------------------------------------------------

    def _start_request(self) -> None:
        self._request_started = self.loop.time()
        limits = self.limits
        self._enter("header", first_limit(limits.read_header_timeout, limits.read_timeout))

    def _follow_request(self) -> None:
        if self._phase == "closed":
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._enter("body", self._left(self.limits.read_timeout))
        elif state in (h11.DONE, h11.MUST_CLOSE) and self.conn.our_state in (
                h11.IDLE, h11.SEND_RESPONSE, h11.SEND_BODY):
            self._enter("respond", self.limits.write_timeout)

    def _left(self, timeout: float) -> float:
        if not timeout:
            return 0.0
        return max(0.001, self._request_started + timeout - self.loop.time())

    def _enter(self, phase: str, timeout: float) -> None:
        """Arm the deadline of a new phase; staying in a phase keeps its deadline."""
        if phase == self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if timeout:
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.abort()


def first_limit(*timeouts: float) -> float:
    """The earliest of several timeouts, ignoring zeros (no limit)."""
    set_ = [t for t in timeouts if t]
    return min(set_) if set_ else 0.0
