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
