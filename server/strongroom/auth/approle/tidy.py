"""``tidy/secret-id``: remove expired SecretIDs, SecretIDs whose accessor is gone and
accessors whose SecretID is gone.

As Vault: the request only starts the work (202 and a warning; the server log says
how it went) and the node's owner runs the same pass from ``periodic()``. The request's
pass runs on a thread of the worker that took it; a second request while one runs in
that process is told "already in progress". Passes in different processes may
overlap: each SecretID is examined under its own node lock, and an accessor is removed
only when, under the lock of the SecretID it names, no such SecretID exists.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from strongroom.core.request import Response
from strongroom.errors import StrongroomError

from .store import ACCESSOR, ACCESSOR_LOCAL, SECRET, SECRET_LOCAL, SecretEntry, Store

log = logging.getLogger(__name__)
TIDY_STARTED = ("Tidy operation successfully started. Any information from the operation "
                "will be printed to Strongroom's server logs.")
TIDY_RUNNING = "Tidy operation already in progress."


@dataclass
class TidyCounts:
    expired: int = 0
    dangling_secret_ids: int = 0
    dangling_accessors: int = 0


class Tidier:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock
        self._running = threading.Lock()

    def request(self) -> Response:
        """The endpoint: start a pass on a thread (Vault's goroutine) unless one runs."""
        if not self._running.acquire(blocking=False):
            return Response(warnings=[TIDY_RUNNING])
        thread = threading.Thread(target=self._run_then_release, name="approle-tidy",
                                  daemon=True)
        thread.start()
        return Response(status=202, warnings=[TIDY_STARTED])

    def periodic(self) -> None:
        if self._running.acquire(blocking=False):
            self._run_then_release()

    def _run_then_release(self) -> None:
        try:
            counts = self.run()
            log.info("event=approle_tidy_done expired=%d dangling_secret_ids=%d "
                     "dangling_accessors=%d", counts.expired, counts.dangling_secret_ids,
                     counts.dangling_accessors)
        except (StrongroomError, OSError, ValueError) as exc:
            # The type only: a storage error's text may name keys, never a secret.
            log.error("event=approle_tidy_failed error=%s", type(exc).__name__)
        finally:
            self._running.release()

    def run(self) -> TidyCounts:
        counts = TidyCounts()
        for secret_prefix, accessor_prefix in ((SECRET, ACCESSOR),
                                               (SECRET_LOCAL, ACCESSOR_LOCAL)):
            self._pass(secret_prefix, accessor_prefix, counts)
        return counts

    def _pass(self, secret_prefix: str, accessor_prefix: str, counts: TidyCounts) -> None:
        store, storage = self._store, self._store.storage
        now = self._clock().timestamp()
        live: set[str] = set()
        role_dirs = storage.list(secret_prefix)
        for role_dir in role_dirs:
            for secret_hmac in storage.list(secret_prefix + role_dir):
                key = secret_prefix + role_dir + secret_hmac
                with store.secret_lock(secret_hmac):
                    raw = storage.get(key)
                    if raw is None:
                        continue
                    entry = SecretEntry.from_json(raw)
                    accessor_key = accessor_prefix + store.salted(entry.accessor)
                    if storage.get(accessor_key) is None:
                        storage.delete(key)
                        counts.dangling_secret_ids += 1
                    elif entry.expired(now):
                        storage.transaction([("delete", accessor_key, None),
                                             ("delete", key, None)])
                        counts.expired += 1
                    else:
                        live.add(secret_hmac)
        for salted in storage.list(accessor_prefix):
            raw = storage.get(accessor_prefix + salted)
            if raw is None:
                continue
            target = json.loads(raw).get("secret_id_hmac")
            if not isinstance(target, str) or target in live:
                continue
            # A SecretID being created writes its accessor first, under its own lock:
            # look again under that lock, in every role, before calling it dangling.
            with store.secret_lock(target):
                if any(storage.get(secret_prefix + d + target) is not None
                       for d in storage.list(secret_prefix)):
                    continue
                storage.delete(accessor_prefix + salted)
                counts.dangling_accessors += 1
