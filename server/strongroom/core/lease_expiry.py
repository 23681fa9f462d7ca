"""The owner's expiry runner: an expiry-ordered heap of the node's leases.

Runs as the ``lease-expiry`` job of the owner's BackgroundWork (node/background.py),
which calls it only while the node is unsealed and active, on the owner's own Core.

How it knows every lease without scanning storage on each tick:

* **Restore**: whenever the owner Core's node snapshot changes (unseal, becoming the
  active node after a failover, a re-key) or the change feed lost track (a lapped
  ring, a worker that died mid-write), every lease entry is read once and scheduled.
  That is how the new active node takes over the leases of the old one (Vault's
  restore does the same on every activation).
* **Changes**: every storage write of every process of the node is published on the
  node's change ring; the owner Core's feed hands keys under ``sys/expire/id/`` to
  :meth:`ExpiryRunner.changed`, and the runner re-reads just those entries. Standbys
  never write (they forward), so on the active node its own ring sees every lease.

Each due lease is handed to :meth:`ExpirationManager.expire`, which revokes under the
lease's node lock (so a worker's concurrent ``sys/leases/revoke`` and this runner never
both revoke it) and answers when to look again (a failure's backoff, a renewed token's
new expiry). The first activation also gives every pre-existing token its lease.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from typing import TYPE_CHECKING

from strongroom.barrier.view import StorageView
from strongroom.core.bootstrap import TOKEN_STORE_PREFIX
from strongroom.core.expiration import ExpirationManager, token_lease
from strongroom.core.lease_store import TOKENS_MIGRATED_KEY
from strongroom.core.token_entry import TokenEntry
from strongroom.node.locks import node_lock

if TYPE_CHECKING:
    from strongroom.core.core import Core

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 1.0
INTERVAL_ENV = "STRONGROOM_LEASE_EXPIRY_INTERVAL"  # tests shorten it
# One tick revokes for at most this long, then lets the other jobs run.
TICK_BUDGET = 5.0


def expiry_interval() -> float:
    raw = os.environ.get(INTERVAL_ENV)
    return float(raw) if raw else EXPIRY_INTERVAL


class ExpiryRunner:
    """Schedules and expires the leases of the Core it is attached to (the owner's)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # the live schedule; heap items not matching are stale
        self._dirty: set[str] = set()
        self._reset = True
        self._manager: ExpirationManager | None = None
        self._snapshot: object = None

    def attach(self, core: Core) -> ExpirationManager:
        manager = core.leases
        if not isinstance(manager, ExpirationManager):
            raise TypeError("the owner's core has no expiration manager")
        if manager is not self._manager:
            manager.on_change = self._dirty.add
            manager.on_reset = self._mark_reset
            self._manager = manager
            self._reset = True
        return manager

    def _mark_reset(self) -> None:
        self._reset = True

    def scheduled(self) -> dict[str, float]:
        return dict(self._due)

    def tick(self, core: Core, now: float | None = None) -> int:
        """Apply what changed, then expire what is due. Returns how many were acted on.

        ``core`` must be synced (OwnerCore.core() does it): that delivers the feed.
        """
        manager = self.attach(core)
        if self._reset or core.snapshot is not self._snapshot:
            self._snapshot = core.snapshot
            self._restore(core, manager)
        for lease_id in sorted(self._dirty):
            self._dirty.discard(lease_id)
            entry = manager.store.get(lease_id)
            self._schedule(lease_id, entry.due_at() if entry is not None else 0.0)
        return self._run_due(core, manager, now)

    def _run_due(self, core: Core, manager: ExpirationManager, now: float | None) -> int:
        done = 0
        started = time.monotonic()
        while self._heap and time.monotonic() - started < TICK_BUDGET:
            due, lease_id = self._heap[0]
            current = core.now() if now is None else now
            if due > current:
                break
            heapq.heappop(self._heap)
            if self._due.get(lease_id) != due:
                continue  # rescheduled or dropped since
            del self._due[lease_id]
            try:
                next_due = manager.expire(lease_id, current)
            except Exception as exc:  # noqa: BLE001 - storage trouble: keep it scheduled
                log.error("event=lease_expiry_failed lease_id=%s error=%s", lease_id,
                          type(exc).__name__)
                next_due = current + manager.retry_base
            self._schedule(lease_id, next_due)
            done += 1
        return done

    def _schedule(self, lease_id: str, due: float) -> None:
        if not due:
            self._due.pop(lease_id, None)
            return
        if self._due.get(lease_id) == due:
            return
        self._due[lease_id] = due
        heapq.heappush(self._heap, (due, lease_id))

    def _restore(self, core: Core, manager: ExpirationManager) -> None:
        self._reset = False
        self._dirty.clear()
        self._heap, self._due = [], {}
        started = time.monotonic()
        self._migrate_tokens(core, manager)
        count = 0
        for lease_id in manager.store.collect(""):
            entry = manager.store.get(lease_id)
            if entry is not None:
                self._schedule(lease_id, entry.due_at())
                count += 1
        log.info("event=leases_restored count=%d scheduled=%d seconds=%.3f", count,
                 len(self._due), time.monotonic() - started)

    @staticmethod
    def _migrate_tokens(core: Core, manager: ExpirationManager) -> None:
        """Tokens issued before tokens were leases get theirs, once per cluster.

        Only the active node runs this; a second node finding the flag skips it, and a
        crash before the flag is set only makes the next activation redo it (puts of
        the same entries)."""
        store = manager.store
        if store.get_flag(TOKENS_MIGRATED_KEY):
            return
        view = StorageView(core.barrier, TOKEN_STORE_PREFIX)
        made = 0
        for token_hash in view.list("id/"):
            # Read as stored, not looked up: a lookup would revoke an expired token on
            # sight, outside the runner (no expiry logged); its lease expires it now.
            raw = view.get("id/" + token_hash)
            if raw is None:
                continue
            token = TokenEntry.from_json(raw, token_hash)
            if token.type == "batch" or not token.path:
                continue
            lease = token_lease(token)
            with node_lock("lease|" + lease.lease_id):
                if store.get(lease.lease_id) is None:
                    store.put(lease)
                    made += 1
        store.set_flag(TOKENS_MIGRATED_KEY)
        log.info("event=token_leases_migrated count=%d", made)
