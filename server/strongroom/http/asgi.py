"""The ASGI front end: one callable between uvicorn's protocol and the dispatcher.

Strongroom's HTTP surface is one prefix (``/v1/``) handed whole to the dispatcher,
which owns routing, errors and status codes; a web framework's router, request and
response objects only repeat that work. Falcon's ASGI app cost ~12% of a worker's
time per request for it (profiled, KV read and write); this reads the ASGI scope
directly. The WSGI path (gthread, tests' ``falcon.testing``) keeps Falcon.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from strongroom.http.dispatch import (
    JSON,
    NOT_FOUND_RESULT,
    TOO_LARGE_RESULT,
    WORKER_HEADER,
    Dispatcher,
    HttpResult,
)
from strongroom.http.edge import HttpRequest
from strongroom.http.fast_path import MAX_BODY

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PREFIX = "/v1/"
# Control characters Go's net/http refuses in a header value (httpguts.
# ValidHeaderFieldValue: all but horizontal tab); h11 lets all but NUL, CR and LF through.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Go's own answer to a malformed request, before any handler.
_BAD_REQUEST_HEAD = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
_BAD_REQUEST_BODY = b"400 Bad Request"
# Past this size a request body may ask for seconds of work (a transit batch of
# 10,000 items, RSA decryptions): it runs on a thread even with local storage, so
# one client's batch never stalls the other connections of its worker (review F2).
# The fast path answers only smaller ones (http/fast_path.py).
LARGE_BODY = MAX_BODY
LARGE_BODY_THREADS = 2
# Auth methods' paths may wait on a password hash (bcrypt, tens of ms by design) or on
# a directory server (LDAP binds): they run on the same threads, never on the loop.
# The token store (auth/token/) is as quick as any other path.
_AUTH_PREFIX = _PREFIX + "auth/"


# Renewing a login's token asks its method again (Vault's AuthRenew): ldap binds as
# the user again, so a renewal may wait on a directory for its request_timeout. Which
# method issued the token is known only once the core has looked it up: renewals get
# threads of their own, so a silent directory holds renewals, never the logins and
# large requests of the shared pool (nor the loop).
_RENEWALS = (_PREFIX + "auth/token/renew", _PREFIX + "sys/leases/renew",
             _PREFIX + "sys/renew")
RENEWAL_THREADS = 4


# Methods whose logins wait on another server (a directory): a silent one holds a
# thread for the mount's request_timeout (90 s by default). On the shared pool a dozen
# unauthenticated LDAP logins held every thread of a node, and every other login and
# token renewal queued behind them (review i15 F6): they get threads of their own.
DIRECTORY_METHODS = frozenset({"ldap"})
DIRECTORY_THREADS = 4


def runs_on_thread(path: str) -> bool:
    """Whether a request for ``path`` (``/v1/...``) may block for long whatever its body."""
    if path.startswith(_RENEWALS):
        return True
    if not path.startswith(_AUTH_PREFIX):
        return False
    return path[len(_AUTH_PREFIX):].split("/", 1)[0] != "token"
_JSON = JSON.encode()


class _Disconnected(Exception):
    """The client went away before its body was complete."""


class StrongroomAsgi:
    """``/v1/...`` to the dispatcher (inline, or in ``executor``); anything else a JSON 404."""

    def __init__(self, dispatcher: Dispatcher, max_size: int,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self._dispatcher = dispatcher
        self._max = max_size
        self._executor = executor
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._fixed = [(b"cache-control", b"no-store")]
        if WORKER_HEADER:
            self._fixed.append((b"x-strongroom-worker", str(os.getpid()).encode()))

    @property
    def inline(self) -> bool:
        """Whether the core runs on the loop (local storage): the protocol may then
        answer a simple request synchronously through :meth:`respond`."""
        return self._executor is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        head = scope["method"] == "HEAD"
        path: str = scope["path"]
        # A repeated header keeps its first value, as Go's Header.Get (Vault) does.
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if _CONTROL.search(value):
                await send({"type": "http.response.start", "status": 400,
                            "headers": _BAD_REQUEST_HEAD})
                await send({"type": "http.response.body", "body": _BAD_REQUEST_BODY})
                return
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        early = self._refused_early(path, headers)
        if early is not None:
            await self._answer(send, early, head)
            return
        try:
            body = await self._body(receive)
        except _Disconnected:
            return  # nothing to answer, and a half-read body is never acted on
        if body is None:
            await self._answer(send, TOO_LARGE_RESULT, head)
            return
        request = self._request(scope["method"], path, scope.get("query_string", b""),
                                headers, body, scope.get("client"), _client_cert(scope))
        executor = self._executor
        if self._waits_on_directory(path):
            executor = self._pool("directory", DIRECTORY_THREADS)
        elif path.startswith(_RENEWALS):
            executor = self._pool("renewal", RENEWAL_THREADS)
        elif executor is None and (len(body) > LARGE_BODY or runs_on_thread(path)):
            executor = self._pool("large", LARGE_BODY_THREADS)
        if executor is None:
            # Local storage (inmem, file), a small request: the core is fast and
            # bounded; running it on the loop thread saves a thread hand-off.
            result = self._dispatcher.dispatch(request)
        else:
            # Network storage, forwarding to the active node: a call may wait on another
            # host; a large body may ask for seconds of CPU (a batch of RSA decryptions:
            # OpenSSL releases the GIL). Either way the loop keeps serving the others.
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, self._dispatcher.dispatch,
                                                request)
        if result.delay > 0:
            # A failed login's backoff: this connection waits, the worker does not.
            await asyncio.sleep(result.delay)
        await self._answer(send, result, head)

    def _waits_on_directory(self, path: str) -> bool:
        """Whether ``path`` may be served by a mount of a method in DIRECTORY_METHODS.

        This process's router may not know a mount yet: another worker enabled it a
        moment ago and the core learns of it only inside dispatch (``Core.sync``, which
        may read storage, so not here on the loop). An auth path it cannot place gets
        the directory's threads: a fresh LDAP mount's logins once landed on the shared
        pool and a token renewal queued behind a silent directory for seconds."""
        if not path.startswith(_AUTH_PREFIX) or not runs_on_thread(path):
            return False
        core = getattr(self._dispatcher, "core", None)  # tests' stand-ins have none
        if core is None:
            return False
        match = core.router.match(path[len(_PREFIX):])
        return match is None or match[0].type in DIRECTORY_METHODS

    def _pool(self, name: str, threads: int) -> ThreadPoolExecutor:
        """This worker's pool ``name`` (threads "core-<name>"), made on first use: most
        workers never see a large body, a directory login or a renewal. Only the event
        loop calls this, so two callers never make one pool twice."""
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = ThreadPoolExecutor(threads,
                                                          thread_name_prefix=f"core-{name}")
        return pool

    def respond(self, method: str, path: str, query: bytes, headers: dict[str, str],
                body: bytes, client: tuple[str, int] | None,
                client_cert: bytes | None = None
                ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One whole request answered on the spot (http/fast_path.py): status, headers,
        body; the same answer :meth:`__call__` gives. Only when :attr:`inline`.
        ``client_cert``: the connection's TLS client certificate (DER), if any.

        Never given an auth method's path (``runs_on_thread``: the protocol leaves them
        to h11 and :meth:`__call__`), so never a failed login whose answer must wait
        (``HttpResult.delay``): :meth:`__call__` awaits that delay."""
        result = self._refused_early(path, headers)
        if result is None:
            if len(body) > self._max:
                result = TOO_LARGE_RESULT
            else:
                result = self._dispatcher.dispatch(
                    self._request(method, path, query, headers, body, client, client_cert))
        status, payload = _wire_status(result)
        out = self._headers(result, payload)
        return status, out, b"" if method == "HEAD" or payload is None else payload

    def _refused_early(self, path: str, headers: dict[str, str]) -> HttpResult | None:
        """The answer before any body is read: outside /v1/, or declared too large."""
        if not path.startswith(_PREFIX):
            return NOT_FOUND_RESULT
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max:
            return TOO_LARGE_RESULT
        return None

    @staticmethod
    def _request(method: str, path: str, query: bytes, headers: dict[str, str], body: bytes,
                 client: Any, client_cert: bytes | None) -> HttpRequest:
        params: dict[str, str] = {}
        if query:
            # A repeated query parameter keeps its first value, as url.Values.Get does.
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True,
                                         encoding="utf-8", errors="replace"):
                params.setdefault(name, value)
        return HttpRequest(method=method, path=path, params=params, headers=headers,
                           body=body, remote_addr=client[0] if client else "",
                           remote_port=int(client[1]) if client else 0,
                           client_cert_der=client_cert)

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body (chunked or not), or None past ``max_request_size``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self._max:
                    return None
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _headers(self, result: HttpResult, body: bytes | None) -> list[tuple[bytes, bytes]]:
        """``body`` None: a status that has none (204, 304), so no framing headers."""
        headers = list(self._fixed)
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1"))
                       for k, v in result.headers.items())
        if body is None:
            return headers
        if result.body is not None:
            headers.append((b"content-type", _JSON))
        headers.append((b"content-length", str(len(body)).encode()))
        return headers

    async def _answer(self, send: Send, result: HttpResult, head: bool) -> None:
        status, body = _wire_status(result)
        await send({"type": "http.response.start", "status": status,
                    "headers": self._headers(result, body)})
        await send({"type": "http.response.body", "body": b"" if head or body is None else body})


def _client_cert(scope: Scope) -> bytes | None:
    """The client certificate (DER) from ASGI's TLS extension (http/protocol.py sets
    ``client_cert_der`` beside the standard PEM ``client_cert_chain``)."""
    tls = scope.get("extensions", {}).get("tls")
    if not tls:
        return None
    der = tls.get("client_cert_der")
    if isinstance(der, bytes) and der:
        return der
    chain = tls.get("client_cert_chain") or []
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None


def _wire_status(result: HttpResult) -> tuple[int, bytes | None]:
    """The status and body to write for ``result`` (body None: none may be sent).

    A client picks some statuses (``sys/health?activecode=``, transit's
    ``partial_failure_response_code``). A body after a 1xx, 204 or 304 head would be
    read as the start of the next answer on the connection (a response desync), so
    this answers as Go's net/http does: a 204/304 without its body; a 1xx is only an
    interim head there, followed by a 200 carrying the body: the 200 alone here.
    """
    status = result.status
    if status < 200:
        return 200, result.body or b""
    if status in (204, 304):
        return status, None
    return status, result.body or b""
