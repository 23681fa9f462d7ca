"""Standby -> active request forwarding over mutual TLS on the cluster port.

A standby's worker sends the client's request, unchanged, to the active node's
cluster address, presenting the cluster certificate. On the active node the
owner process serves that port and hands each request to its own API listener on
loopback, marked with a per-node secret so it is never forwarded again.
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from strongroom.ha.cluster_tls import ClusterIdentity, client_context, server_context

log = logging.getLogger(__name__)
FORWARDED_HEADER = "X-Strongroom-Forwarded"
# Set on an answer that says the request was not carried out because the node is not
# (or no longer) the active one: the standby may send it again, to the new active.
NOT_RELAYED_HEADER = "X-Strongroom-Not-Relayed"
NOT_ACTIVE_BODY = json.dumps({"errors": ["node is not active"]}).encode()
# Hop-by-hop headers are the connection's own, never the request's.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection",
        "content-length", "host"}


def split_addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else "https://" + url)
    return parts.hostname or "127.0.0.1", parts.port or 8201


# A live active node completes TCP and TLS in milliseconds; one whose owner is frozen
# or gone does not at all. The answer itself may take a while (storage writes).
CONNECT_TIMEOUT = 3.0
ANSWER_TIMEOUT = 30.0
# Errors of a kept-alive connection that the active closed while it was idle (just as
# the request went out): it never reached the active, so it is sent again, once, on a
# new connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class NotDelivered(ConnectionError):
    """No connection to the active could be made: the request never left this node."""


def not_relayed(status: int, headers: dict[str, str]) -> bool:
    """The active's cluster port (or API) refused the request without carrying it out."""
    return status == 503 and NOT_RELAYED_HEADER.lower() in headers


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle kept-alive connection with something to read has been closed by the peer."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Forwarder:
    """Per-worker client for the active node's cluster port (one connection per thread).

    Bounded: connecting (TCP and TLS) may take ``connect_timeout``, each wait for
    the answer ``timeout``. A request is sent a second time only when a reused
    connection turns out to have been closed by the active, never after a timeout
    (the active may still be carrying it out).
    """

    def __init__(self, identity: ClusterIdentity, cluster_addr: str,
                 timeout: float = ANSWER_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._context = client_context(identity)
        self._host, self._port = split_addr(cluster_addr)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._local = threading.local()

    def _conn(self) -> tuple[http.client.HTTPSConnection, bool]:
        """This thread's connection, and whether it has carried a request before."""
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            if not _closed_by_peer(conn.sock):
                return conn, True
            conn.close()
        conn = http.client.HTTPSConnection(self._host, self._port,
                                           timeout=self._connect_timeout,
                                           context=self._context)
        try:
            conn.connect()  # TCP and the TLS handshake, under the connect timeout
            assert conn.sock is not None
            conn.sock.settimeout(self._timeout)
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        return conn, False

    def _drop(self) -> None:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def forward(self, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """The active's answer; NotDelivered if nothing was sent, other OSErrors when
        the request may have reached the active."""
        clean = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        while True:
            try:
                conn, reused = self._conn()
            except OSError as exc:
                raise NotDelivered(f"cannot reach the active node: {exc!r}") from exc
            try:
                conn.request(method, target, body=body or None, headers=clean)
                resp = conn.getresponse()
                data = resp.read()
            except _STALE:
                self._drop()
                if reused:
                    continue  # once more, on a new connection (which is not reused)
                raise
            except (OSError, http.client.HTTPException):
                self._drop()
                raise
            if resp.will_close:
                self._drop()
            return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}


# The cluster port's side: a peer must finish its TLS handshake within this (one that
# connects and says nothing holds only its own thread), and a kept-alive connection
# idle for longer is closed (the standby reconnects).
HANDSHAKE_TIMEOUT = 5.0
IDLE_TIMEOUT = 75.0


class _ClusterServer(http.server.ThreadingHTTPServer):
    """Accepts plain TCP and does each TLS handshake in the connection's own thread.

    Wrapping the listening socket instead would run every handshake inside
    accept(), in the one thread that serves the port, with no timeout: a single
    peer that connected and sent nothing stopped all forwarding to this node (and
    ``shutdown()``, waiting for that thread, with it).
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int],
                 handler: type[http.server.BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self._context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._closing = False

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        with self._context.wrap_socket(request, server_side=True) as tls:
            # (wrap_socket took the descriptor over: the TLS socket is the one to end)
            with self._open_lock:
                if self._closing:
                    return  # stopped while this peer was still shaking hands
                self._open.add(tls)
            try:
                super().finish_request(tls, client_address)
            finally:
                with self._open_lock:
                    self._open.discard(tls)

    def close_connections(self) -> None:
        """End every kept-alive connection: a node that is no longer active must not
        keep serving the standbys that were connected to it."""
        with self._open_lock:
            self._closing = True
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed handshakes (a wrong certificate, a silent peer) and peers that went away.
        log.debug("event=cluster_connection_failed peer=%s", client_address, exc_info=True)


class ClusterListener:
    """The active node's cluster port, run in the node's owner: mTLS in, loopback out."""

    def __init__(self, bind: str, local_api: str, local_tls: bool, node_secret: str,
                 is_active: Callable[[], bool]) -> None:
        self._bind = split_addr(bind)
        self._local_host, self._local_port = split_addr(local_api)
        self._local_tls = local_tls
        self._secret = node_secret
        self._is_active = is_active
        self._server: _ClusterServer | None = None
        self._lock = threading.Lock()  # the HA loop and its watchdog both stop it

    def start(self, identity: ClusterIdentity) -> None:
        with self._lock:
            self._stop()
            server = _ClusterServer(("0.0.0.0", self._bind[1]), self._handler_class(),  # noqa: S104 - cluster port
                                    server_context(identity))
            self._server = server
            threading.Thread(target=server.serve_forever, name="cluster-listener",
                             daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None

    def _local_connection(self) -> http.client.HTTPConnection:
        if self._local_tls:
            context = ssl.create_default_context()
            # Our own listener on loopback: the hop is inside this node.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self._local_host, self._local_port, timeout=60,
                                               context=context)
        return http.client.HTTPConnection(self._local_host, self._local_port, timeout=60)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_TIMEOUT

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # requests are not logged (they carry tokens in headers)

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not listener._is_active():
                    self._not_relayed()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers[FORWARDED_HEADER] = listener._secret
                conn = listener._local_connection()
                try:
                    conn.connect()
                except OSError:
                    # The node's API is gone (stopping): nothing was carried out.
                    conn.close()
                    self._not_relayed()
                    return
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    # Answer rather than drop the connection: a standby would take a
                    # dropped kept-alive connection for an idle one and send it again.
                    log.warning("event=cluster_relay_failed", exc_info=True)
                    payload = json.dumps({"errors": ["internal error"]}).encode()
                    self._answer(500, payload, {"Content-Type": "application/json"})
                    return
                finally:
                    conn.close()
                self._answer(resp.status, data, dict(resp.getheaders()))

            def _not_relayed(self) -> None:
                self._answer(503, NOT_ACTIVE_BODY, {"Content-Type": "application/json",
                                                    NOT_RELAYED_HEADER: "1"})

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = do_HEAD = _relay  # noqa: N815

        return Handler
