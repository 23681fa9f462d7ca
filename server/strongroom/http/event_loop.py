"""The worker's event loop: TLS handshakes bounded, refused with their alert, and
made with the listener's current certificate.

asyncio's TLS layer (Python 3.11+) has two gaps for a listener facing the world:
- a handshake may take 60 s (its default), before the HTTP protocol and its
  header deadline even exist, so a client stalling mid-handshake holds a socket
  that long: here it gets the listener's ``http_read_header_timeout``, as Go's
  server bounds the handshake by its read deadlines;
- a failed handshake closes the socket without sending the TLS alert OpenSSL
  wrote (a TLS 1.1 client sees a bare EOF, not ``protocol_version``): here the
  alert goes out first, so clients learn why they were refused.
Both hook asyncio internals (``_make_ssl_transport``, ``SSLProtocol``); the TLS
tests fail if a Python release changes them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any


class ListenerEventLoop(asyncio.SelectorEventLoop):
    """A selector loop whose server-side TLS handshakes use ``handshake_timeout`` and
    the listener's current certificate (``context``, see http/tls_reload.py)."""

    def __init__(self, handshake_timeout: float,
                 context: Callable[[], ssl.SSLContext] | None = None) -> None:
        super().__init__()
        self._handshake_timeout = handshake_timeout
        self._context = context
        self._serving: dict[int, tuple[Any, ...]] = {}

    # -- stopping without dropping what the kernel already accepted --------------

    def _start_serving(self, protocol_factory: Any, sock: Any, sslcontext: Any = None,
                       server: Any = None, backlog: int = 100, *timeouts: Any) -> None:
        # Connections are not attached to the asyncio Server: one accepted in the tick
        # before the server closed failed Server._attach's assertion and was dropped
        # unanswered. (uvicorn tracks its connections itself.)
        self._serving[sock.fileno()] = (protocol_factory, sock, sslcontext, backlog, *timeouts)
        super()._start_serving(  # type: ignore[misc]
            protocol_factory, sock, sslcontext, None, backlog, *timeouts)

    def _stop_serving(self, sock: Any) -> None:
        serving = self._serving.pop(sock.fileno(), None)
        if serving is not None:
            # Closing a listening socket resets every connection the kernel queued on
            # it (clients that already sent a request see a reset): take them first.
            factory, listening, sslcontext, backlog, *timeouts = serving
            self._accept_connection(  # type: ignore[attr-defined]
                factory, listening, sslcontext, None, backlog, *timeouts)
        super()._stop_serving(sock)  # type: ignore[misc]

    def _make_ssl_transport(self, rawsock: Any, protocol: Any, sslcontext: Any,
                            *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("server_side"):
            if self._handshake_timeout:
                kwargs["ssl_handshake_timeout"] = self._handshake_timeout
            if self._context is not None:
                sslcontext = self._context()
        transport = super()._make_ssl_transport(  # type: ignore[misc]
            rawsock, protocol, sslcontext, *args, **kwargs)
        protocol = transport._ssl_protocol
        complete = protocol._on_handshake_complete

        def on_handshake_complete(exc: BaseException | None) -> None:
            if exc is not None:
                protocol._process_outgoing()  # the alert OpenSSL wrote, before the close
            complete(exc)

        protocol._on_handshake_complete = on_handshake_complete
        return transport
