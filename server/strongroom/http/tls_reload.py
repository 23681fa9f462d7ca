"""The listener's TLS context, rebuilt when its certificate or key files change.

Certificates are renewed in place (the deployment's pki role, ACME clients): a node
must serve the new one without a restart, which would seal it. Each new connection
asks for the current context; the files are looked at (stat) at most once a second,
and a context is only replaced by one that loads completely, so a renewal caught
half-written keeps the previous certificate until the pair is whole again.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0


class ReloadingContext:
    """``current()`` is an SSLContext built by ``build`` from ``files`` as they are now."""

    def __init__(self, build: Callable[[], ssl.SSLContext], files: Sequence[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._files = tuple(files)
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._context = build()
        self._checked = clock()

    def _stat(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return tuple((st.st_ino, st.st_size, st.st_mtime_ns)
                         for st in (os.stat(path) for path in self._files))
        except OSError:
            return None

    def current(self) -> ssl.SSLContext:
        now = self._clock()
        if now - self._checked < CHECK_INTERVAL:
            return self._context
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp is not None and stamp != self._stamp:
                try:
                    context = self._build()
                except (OSError, ssl.SSLError, ValueError) as exc:
                    log.warning("tls certificate reload failed, keeping the previous one "
                                "error=%s", type(exc).__name__)
                else:
                    self._context, self._stamp = context, stamp
                    log.info("tls certificate reloaded")
        return self._context
