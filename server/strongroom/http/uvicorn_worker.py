"""The gunicorn worker that serves the ASGI app with uvicorn (the default).

gunicorn keeps the process model (a master that forks and watches workers);
each worker runs one asyncio loop that owns every connection it accepted, so
slow or idle clients cost a socket each, not a thread (bench/README.md has the
measurement behind this choice). Connections follow the listener's limits
(http/protocol.py). uvicorn's own gunicorn worker is deprecated and trusts
proxy headers from loopback; this one is configured here, whole.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker
from uvicorn.config import Config
from uvicorn.server import Server

from strongroom.http.event_loop import ListenerEventLoop
from strongroom.http.protocol import LimitedH11Protocol
from strongroom.http.protocol import first_limit as _first


class PromptServer(Server):
    """uvicorn's server, which stops accepting the moment it is told to stop.

    uvicorn notices a SIGTERM at its next tick (0.1 s) and only then closes its
    listening sockets: meanwhile the kernel queues new connections that are reset
    when the sockets close. Closed at once, a client is refused and can go elsewhere.
    """

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        loop = getattr(self, "_loop", None)
        if loop is not None:
            # A signal handler may interrupt the loop anywhere: hand the close to it.
            loop.call_soon_threadsafe(self._stop_listening)

    def _stop_listening(self) -> None:
        # Connections accepted from now on (the loop takes the kernel's queue as it
        # closes) are served once, then closed (LimitedH11Protocol.connection_made).
        self.server_state.stopping = True  # type: ignore[attr-defined]
        for server in getattr(self, "servers", []):
            server.close()


class StrongroomUvicornWorker(Worker):  # type: ignore[misc]
    """One worker process: uvicorn's server on gunicorn's inherited sockets."""

    def init_signals(self) -> None:
        # uvicorn installs its own handlers; gunicorn's would swallow them.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def _config(self) -> Config:
        for name, target in (("uvicorn.error", self.log.error_log),
                             ("uvicorn.access", self.log.access_log)):
            logger = logging.getLogger(name)
            logger.handlers = target.handlers
            logger.setLevel(target.level)
            logger.propagate = False
        limits = self._settings["limits"]
        kwargs: dict[str, Any] = {
            "app": self.wsgi,
            "http": LimitedH11Protocol.with_limits(limits, self._settings["counts"]),
            "loop": "asyncio",
            "lifespan": "off",
            "ws": "none",
            "log_config": None,
            "access_log": False,
            # No client's forwarding headers are trusted, as Vault by default.
            "proxy_headers": False,
            "server_header": False,
            # uvicorn's keep-alive timer mirrors the idle limit (0: none, as in Go).
            "timeout_keep_alive": limits.idle_timeout or 10**9,
            "timeout_notify": self.timeout,
            "callback_notify": self._notify,
            "backlog": self.cfg.backlog,
        }
        tls = self._settings["tls"]
        if tls is not None:
            # The listening socket needs a context; each connection gets the current one.
            kwargs["ssl_context_factory"] = lambda _config, _default: tls.current()
        return Config(**kwargs)

    async def _notify(self) -> None:
        self.notify()

    async def _serve(self) -> None:
        server = PromptServer(config=self._config())
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGQUIT, server.handle_exit, signal.SIGQUIT, None)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def run(self) -> None:
        self._settings = self.app.listener_settings()
        self._settings["counts"].claim()
        limits, tls = self._settings["limits"], self._settings["tls"]
        handshake = _first(limits.read_header_timeout, limits.read_timeout)
        context = tls.current if tls is not None else None
        with asyncio.Runner(loop_factory=lambda: ListenerEventLoop(handshake, context)) as runner:
            runner.run(self._serve())
