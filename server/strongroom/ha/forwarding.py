"""Standby -> active request forwarding over mutual TLS on the cluster port.

A standby's worker sends the client's request, unchanged, to the active node's
cluster address, presenting the cluster certificate. On the active node the
master serves that port and hands each request to its own API listener on
loopback, marked with a per-node secret so it is never forwarded again.
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from strongroom.ha.cluster_tls import ClusterIdentity, client_context, server_context

log = logging.getLogger(__name__)
FORWARDED_HEADER = "X-Strongroom-Forwarded"
# Hop-by-hop headers are the connection's own, never the request's.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection",
        "content-length", "host"}


def split_addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else "https://" + url)
    return parts.hostname or "127.0.0.1", parts.port or 8201


class Forwarder:
    """Per-worker client for the active node's cluster port (one connection per thread)."""

    def __init__(self, identity: ClusterIdentity, cluster_addr: str, timeout: float = 30) -> None:
        self._context = client_context(identity)
        self._host, self._port = split_addr(cluster_addr)
        self._timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=self._context)
            self._local.conn = conn
        return conn

    def forward(self, method: str, target: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes, dict[str, str]]:
        clean = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, target, body=body or None, headers=clean)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class ClusterListener:
    """The active node's cluster port, run in the master: mTLS in, loopback out."""

    def __init__(self, bind: str, local_api: str, local_tls: bool, node_secret: str,
                 is_active: Callable[[], bool]) -> None:
        self._bind = split_addr(bind)
        self._local_host, self._local_port = split_addr(local_api)
        self._local_tls = local_tls
        self._secret = node_secret
        self._is_active = is_active
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self, identity: ClusterIdentity) -> None:
        self.stop()
        handler = self._handler_class()
        server = http.server.ThreadingHTTPServer(("0.0.0.0", self._bind[1]), handler)  # noqa: S104 - cluster port
        server.daemon_threads = True
        server.socket = server_context(identity).wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name="cluster-listener",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
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

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # requests are not logged (they carry tokens in headers)

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not listener._is_active():
                    payload = json.dumps({"errors": ["node is not active"]}).encode()
                    self._answer(503, payload, {"Content-Type": "application/json"})
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers[FORWARDED_HEADER] = listener._secret
                conn = listener._local_connection()
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self._answer(resp.status, data, dict(resp.getheaders()))
                finally:
                    conn.close()

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
