"""The owner's auto-unseal job, for a node whose seal opens the root key itself (PKCS#11).

One thread in the owner process (the only process that talks to the HSM): it unseals the
node as soon as it starts, right after ``sys/init`` (the coordinator's change wakes
it), and every ``STRONGROOM_AUTO_UNSEAL_INTERVAL`` seconds (default 5) while the node
stays sealed because no partition answered, so a node whose HSM comes back unseals itself.
It leaves alone a node an operator sealed (``sys/seal``; Vault's rule: a restart
unseals it). While unsealed it probes the partitions every
``STRONGROOM_SEAL_CHECK_INTERVAL`` seconds (default 30), so a partition lost or
recovered meanwhile is logged and reported (``sys/seal-status`` ``warnings``,
``sys/seal-backend-status``). It is not node/background.py's work: that runs only
while unsealed and active, this one matters most while sealed, on standbys too.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from strongroom.errors import StrongroomError
from strongroom.node.coordinator import LocalCoordinator

log = logging.getLogger(__name__)

RETRY_ENV = "STRONGROOM_AUTO_UNSEAL_INTERVAL"
CHECK_ENV = "STRONGROOM_SEAL_CHECK_INTERVAL"
DEFAULT_RETRY = 5.0
DEFAULT_CHECK = 30.0


def _interval(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class AutoUnsealer:
    """Keeps an auto-sealed node unsealed (see the module's note)."""

    def __init__(self, coordinator: LocalCoordinator, retry: float | None = None,
                 check: float | None = None) -> None:
        self._coordinator = coordinator
        self._retry = retry or _interval(RETRY_ENV, DEFAULT_RETRY)
        self._check = check or _interval(CHECK_ENV, DEFAULT_CHECK)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""
        coordinator.on_change(self._wake.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="auto-unseal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_check = time.monotonic() + self._check
        while not self._stopped.is_set():
            self._wake.clear()
            _generation, sealed = self._coordinator.seal_state()
            if sealed:
                self._attempt()
                # Re-read: the attempt may have unsealed it (then wait for the check).
                sealed = self._coordinator.seal_state()[1]
            elif time.monotonic() >= next_check:
                self._probe()
                next_check = time.monotonic() + self._check
            self._wake.wait(self._retry if sealed else max(
                0.0, next_check - time.monotonic()))

    def _attempt(self) -> None:
        try:
            unsealed = self._coordinator.retry_auto_unseal()
        except StrongroomError as exc:
            # Logged when the reason changes, not every few seconds; never a secret
            # (seal/pkcs11.py words the reasons).
            if exc.message != self._last_error:
                log.warning("event=auto_unseal_failed reason=%r", exc.message)
                self._last_error = exc.message
            return
        except Exception as exc:  # noqa: BLE001 - the thread must survive anything
            # Once per change too: an unexpected error repeats at every retry.
            if type(exc).__name__ != self._last_error:
                log.error("event=auto_unseal_failed error=%s", type(exc).__name__)
                self._last_error = type(exc).__name__
            return
        if unsealed and self._last_error:
            log.info("event=auto_unseal_recovered")
        if unsealed:
            self._last_error = ""

    def _probe(self) -> None:
        try:
            self._coordinator.check_seal()
        except Exception as exc:  # noqa: BLE001 - the thread must survive anything
            log.error("event=seal_check_failed error=%s", type(exc).__name__)
