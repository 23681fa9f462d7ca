"""The leadership loop of one unsealed node: contend, serve as active or standby.

Runs as threads in the node's owner process, beside the coordinator. Every state change
is published through ``publish`` so workers pick it up on their next request.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from strongroom.barrier.secmem import wipe, wipe_immutable
from strongroom.ha.cluster_tls import generate_identity, identity_to_json
from strongroom.ha.consul_lock import ConsulLock
from strongroom.ha.drain import GATE
from strongroom.ha.forwarding import ClusterListener
from strongroom.ha.state import CLUSTER_TLS_PATH, LEADER_PREFIX, HAStatus
from strongroom.physical.base import Backend, Fenced

log = logging.getLogger(__name__)
# How long a standby's blocking query on the lock waits before asking again
# (Vault's consul `lock_wait_time`); a change to the lock wakes it at once anyway.
DEFAULT_LOCK_WAIT = 15
STEP_DOWN_HOLD_OFF = 5.0
ADVERTISEMENT_WAIT = 3.0


def _drain() -> None:
    gate = GATE["gate"]
    if gate is not None:
        gate.close_and_drain()


class HAManager:
    def __init__(
        self,
        lock: ConsulLock,
        barrier: Backend,
        fence: Fenced | None,
        api_addr: str,
        cluster_addr: str,
        publish: Callable[[HAStatus], None],
        listener: ClusterListener | None = None,
    ) -> None:
        self._lock = lock
        self._barrier = barrier
        self._fence = fence
        self._api_addr = api_addr
        self._cluster_addr = cluster_addr
        self._publish = publish
        self._listener = listener
        self.lock_wait = DEFAULT_LOCK_WAIT
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._hold_off_until = 0.0
        self._session: str | None = None
        self._thread: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        # When the lock was last seen held by our session (monotonic); see _watch_lock.
        self._confirmed_at = 0.0
        self.status = HAStatus(enabled=True, node_id=lock.node_id)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ha", daemon=True)
        self._thread.start()
        self._beat = threading.Thread(target=self._heartbeat, name="ha-heartbeat", daemon=True)
        self._beat.start()
        self._watchdog = threading.Thread(target=self._watch_lock, name="ha-watchdog",
                                          daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        """Give up leadership at once (seal, SIGTERM): release the lock, end the session."""
        self._stop.set()
        session = self._session
        self._session = None
        if self._fence is not None:
            self._fence.session = None
        if self._listener is not None:
            self._listener.stop()
        if session is not None:
            try:
                self._lock.release(session)
                self._lock.destroy(session)
            except Exception:  # noqa: BLE001 - best effort; the check TTL covers the rest
                log.warning("event=ha_release_failed")
        try:
            self._lock.deregister()
        except Exception:  # noqa: BLE001 - the agent may be gone already
            log.warning("event=ha_deregister_failed")
        self.status = HAStatus(enabled=True, node_id=self._lock.node_id)
        self._publish(self.status)  # the last word of this manager (_set is closed now)

    def retire(self) -> None:
        """Process exit, first step (SIGTERM): hand leadership over at once and never take
        it again, but keep following the active node, so requests the workers are still
        draining (and those arriving before they stop accepting) are forwarded to it
        instead of waiting for a leader this node would no longer learn. ``stop`` ends
        the session when the process exits."""
        self._hold_off_until = math.inf
        session = self._session
        if not self.status.active or session is None:
            self._lost.set()
            return
        _drain()
        self._lost.set()
        # Not left to the HA thread, which may be inside a 1 s blocking query: a standby
        # must be able to take the lock now.
        if self._fence is not None:
            self._fence.session = None
        if self._listener is not None:
            self._listener.stop()
        try:
            self._lock.release(session)
        except Exception:  # noqa: BLE001 - the session TTL covers it
            log.warning("event=ha_release_failed")
        self._set(HAStatus(enabled=True, node_id=self._lock.node_id))

    def step_down(self) -> None:
        """Hand leadership over: release the lock and stay out of the race for a while."""
        self._hold_off_until = time.monotonic() + STEP_DOWN_HOLD_OFF
        self._lost.set()

    def lost(self) -> None:
        """A fenced write failed: someone else holds the lock."""
        self._lost.set()

    # -- loops ------------------------------------------------------------------

    def _heartbeat(self) -> None:
        renew_every = self._lock.session_ttl / 3
        last_renew = 0.0
        while not self._stop.is_set():
            try:
                self._lock.heartbeat()
                if self._session and time.monotonic() - last_renew > renew_every:
                    self._lock.renew(self._session)
                    last_renew = time.monotonic()
            except Exception:  # noqa: BLE001 - Consul may be electing; keep trying
                log.warning("event=ha_heartbeat_failed")
            self._stop.wait(max(0.2, self._lock.check_ttl / 3))

    def _watch_lock(self) -> None:
        """Demote an active node that cannot confirm it still holds the lock.

        Cut off from the Consul servers, the lock query hangs in the local agent for
        tens of seconds while the servers, seeing the node fail, hand the lock to
        another node within seconds. Fenced writes already fail; this stops the node
        from claiming to be active (health, forwarding) once the lock has gone
        unconfirmed for as long as the TTL Consul gives its liveness check.
        """
        while not self._stop.wait(0.25):
            if (self.status.active
                    and time.monotonic() - self._confirmed_at > self._lock.check_ttl):
                log.warning("event=ha_lock_unconfirmed node=%s seconds=%.1f",
                            self._lock.node_id, time.monotonic() - self._confirmed_at)
                self._lost.set()
                self._demote()

    def _demote(self) -> None:
        """Stop acting as active at once: no fenced writes, no forwarded requests."""
        if self._fence is not None:
            self._fence.session = None
        if self._listener is not None:
            self._listener.stop()
        self._set(HAStatus(enabled=True, node_id=self._lock.node_id))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._lock.register(active=False)
                self._session = self._reusable_session() or self._lock.create_session()
                while not self._stop.is_set():
                    if time.monotonic() >= self._hold_off_until and self._lock.acquire(
                            self._session):
                        self._serve_active(self._session)
                    else:
                        self._serve_standby()
            except Exception:  # noqa: BLE001 - Consul unreachable or electing: retry
                log.warning("event=ha_loop_error", exc_info=True)
                self._set(HAStatus(enabled=True, node_id=self._lock.node_id))
                self._stop.wait(0.5)

    def _reusable_session(self) -> str | None:
        """The session this node had before a Consul error, if Consul still knows it.

        During a Consul election the HA loop fails while the session stays valid and
        may still hold the lock. A new session would leave the old one holding it, with
        no node active, until Consul expired it (up to 2 x session_ttl, ~30 s); the old
        one re-acquires the lock it holds at once. If Consul cannot say, this raises
        and the HA loop retries with the session still kept.
        """
        if self._session is not None and self._lock.session_valid(self._session):
            return self._session
        return None

    def _serve_active(self, session: str) -> None:
        self._lost.clear()
        try:
            self._take_up_active(session)
        except Exception:
            # Holding the lock without serving would leave the cluster with no active
            # node until the session expired: hand it back (the HA loop logs and retries).
            if self._fence is not None:
                self._fence.session = None
            try:
                self._lock.release(session)
            except Exception:  # noqa: BLE001 - the session TTL covers it
                log.warning("event=ha_release_failed")
            raise
        since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._confirmed_at = time.monotonic()  # just acquired
        self._set(HAStatus(enabled=True, active=True, node_id=self._lock.node_id,
                           leader_id=self._lock.node_id, leader_api_addr=self._api_addr,
                           leader_cluster_addr=self._cluster_addr, active_since=since,
                           session=session))
        self._lock.register(active=True)
        log.info("event=ha_active node=%s", self._lock.node_id)
        index: int | None = None
        try:
            while not self._stop.is_set() and not self._lost.is_set():
                holder = self._lock.holder(index, wait="1s")
                index = holder.index
                if holder.session != session:
                    break
                self._confirmed_at = time.monotonic()
            if self._lost.is_set() and self._hold_off_until > time.monotonic():
                _drain()  # a step-down: let the requests running as active finish first
        finally:
            # Also when Consul cannot be asked (a partition): stop acting as active at once.
            if self._fence is not None:
                self._fence.session = None
            if self._listener is not None:
                self._listener.stop()
        if not self._stop.is_set():
            try:
                self._lock.release(session)
            except Exception:  # noqa: BLE001 - losing it anyway
                log.warning("event=ha_release_failed")
            self._lock.register(active=False)
        log.info("event=ha_standby node=%s", self._lock.node_id)
        self._set(HAStatus(enabled=True, node_id=self._lock.node_id))

    def _take_up_active(self, session: str) -> None:
        """Fence on the session, advertise, open the cluster port (the cluster port may be
        taken, storage may fail: the caller then gives the lock back)."""
        if self._fence is not None:
            self._fence.session = session
        gate = GATE["gate"]
        if gate is not None:
            gate.open()
        identity = generate_identity()
        # The key's only lasting copies are the barrier entry and the cluster port's SSL
        # context (freed, and cleared by OpenSSL, when the port stops: demotion, seal).
        try:
            stored = identity_to_json(identity)
            try:
                # The storage interface takes bytes: a copy zeroed once encrypted.
                self._put_secret(CLUSTER_TLS_PATH, stored)
            finally:
                wipe(stored)
            self._barrier.put(LEADER_PREFIX + self._lock.node_id, json.dumps(
                {"api_addr": self._api_addr, "cluster_addr": self._cluster_addr}).encode())
            if self._listener is not None:
                self._listener.start(identity)
        finally:
            identity.wipe()

    def _put_secret(self, key: str, value: bytearray) -> None:
        raw = bytes(value)
        try:
            self._barrier.put(key, raw)
        finally:
            if sys.getrefcount(raw) <= 2:  # nobody kept it (a plaintext backend would)
                wipe_immutable(raw)

    def _serve_standby(self) -> None:
        holder = self._lock.holder()
        self._publish_leader(holder.value)
        index = holder.index
        while not self._stop.is_set():
            holder = self._lock.holder(index, wait=f"{self.lock_wait}s")
            index = holder.index
            if holder.session is None and time.monotonic() >= self._hold_off_until:
                return  # the lock is free: race for it
            self._publish_leader(holder.value if holder.session else None)

    def _publish_leader(self, leader_id_raw: bytes | None) -> None:
        leader_id = leader_id_raw.decode() if leader_id_raw else ""
        api = cluster = ""
        # A new active writes its advertisement just after taking the lock: give it a moment.
        deadline = time.monotonic() + ADVERTISEMENT_WAIT
        while leader_id and not self._stop.is_set():
            raw = self._barrier.get(LEADER_PREFIX + leader_id)
            if raw is not None:
                doc = json.loads(raw)
                api, cluster = doc["api_addr"], doc["cluster_addr"]
                break
            if time.monotonic() > deadline:
                break
            self._stop.wait(0.05)
        status = HAStatus(enabled=True, node_id=self._lock.node_id, leader_id=leader_id,
                          leader_api_addr=api, leader_cluster_addr=cluster)
        if status != self.status:
            self._set(status)

    def _set(self, status: HAStatus) -> None:
        # A stopped manager (sealed node) may still be returning from a blocking
        # Consul query; what it learnt must not overwrite its successor's status.
        if self._stop.is_set():
            return
        self.status = status
        self._publish(status)
