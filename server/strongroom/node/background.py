"""The owner's background work: periodic jobs, run exactly once per active node.

One thread in the owner process (node/supervisor.py) runs every job registered
with :meth:`BackgroundWork.every`, each at its own interval, and only while the
node may act: unsealed and, with HA, active (a standby never writes). A failing
job is logged, by name and exception type only (a message may carry a secret),
and runs again at its next interval; nothing a job does can end the thread.
Lease expiry, tidy, auto-rotation and replication shipping are jobs here.

The owner can load the engines: :func:`owner_background` has a Core of its own
built (lazily, the first time a job needs it) around the node's LocalCoordinator,
as a worker builds one around a RemoteCoordinator, and registers
``mount-periodic``, which calls every mounted backend's ``periodic``. That Core
holds the keyring while the node is unsealed; a seal wakes the thread, which
applies it at once (keys wiped).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.core.core import Core
from strongroom.core.lease_expiry import ExpiryRunner, expiry_interval
from strongroom.node.coordinator import LocalCoordinator

log = logging.getLogger(__name__)

MOUNT_PERIODIC_INTERVAL = 60.0
# Tests shorten it; an operator has no reason to.
INTERVAL_ENV = "STRONGROOM_MOUNT_PERIODIC_INTERVAL"
# Token trees being revoked and requested tidies (core/token_revoke.py, token_tidy.py):
# looked for this often (one storage list and one read when there is nothing to do);
# each run works at most TOKEN_WORK_BUDGET seconds, so other jobs are not held up.
TOKEN_WORK_INTERVAL = 1.0
TOKEN_WORK_BUDGET = 5.0
# Tests slow the work down to observe it mid-way (and stop it to crash it there).
TOKEN_WORK_INTERVAL_ENV = "STRONGROOM_TOKEN_WORK_INTERVAL"  # noqa: S105 - a variable name
TOKEN_WORK_BUDGET_ENV = "STRONGROOM_TOKEN_WORK_BUDGET"  # noqa: S105 - a variable name


@dataclass
class _Job:
    name: str
    interval: float
    fn: Callable[[], None]
    due: float


class BackgroundWork:
    """Named periodic jobs on one thread, run only while ``may_run()`` says so."""

    def __init__(self, may_run: Callable[[], bool],
                 on_wake: Callable[[], None] | None = None) -> None:
        self._may_run = may_run
        self._on_wake = on_wake
        self._jobs: list[_Job] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def every(self, name: str, interval_seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` every ``interval_seconds`` (the first time one interval from now)."""
        if interval_seconds <= 0:
            raise ValueError("a background job's interval must be positive")
        with self._lock:
            if any(job.name == name for job in self._jobs):
                raise ValueError(f"background job {name!r} is registered already")
            self._jobs.append(_Job(name, interval_seconds, fn,
                                   time.monotonic() + interval_seconds))
        self._wake.set()

    def names(self) -> list[str]:
        with self._lock:
            return [job.name for job in self._jobs]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="background", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look again now (the node's seal or HA state changed)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """No job starts after this; waits (up to ``timeout``) for a running one."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            if woken and self._on_wake is not None:
                self._guarded("wake", self._on_wake)
            now = time.monotonic()
            with self._lock:
                due = [job for job in self._jobs if job.due <= now]
            if due and self._allowed():
                for job in due:
                    if self._stopped.is_set() or not self._allowed():
                        break
                    self._guarded(job.name, job.fn)
                    job.due = time.monotonic() + job.interval
            elif due:
                # Not now (sealed, standby): look again at the next interval, or when
                # the node's state changes (wake).
                for job in due:
                    job.due = now + job.interval
            with self._lock:
                next_due = min((job.due for job in self._jobs), default=now + 3600.0)
            self._wake.wait(max(0.0, next_due - time.monotonic()))

    def _allowed(self) -> bool:
        try:
            return bool(self._may_run())
        except Exception as exc:  # noqa: BLE001 - fail closed: no job runs
            log.warning("event=background_check_failed error=%s", type(exc).__name__)
            return False

    @staticmethod
    def _guarded(name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a job never ends the thread
            log.error("event=background_job_failed job=%s error=%s", name, type(exc).__name__)


class OwnerCore:
    """The owner's own Core, built the first time a job needs it, kept in step with
    the coordinator (a seal wipes its keys)."""

    def __init__(self, build: Callable[[], Core]) -> None:
        self._build = build
        self._core: Core | None = None
        self._lock = threading.Lock()

    def core(self) -> Core:
        """The Core, in the node's current seal state."""
        with self._lock:
            if self._core is None:
                self._core = self._build()
            core = self._core
        core.sync()
        return core

    def sync(self) -> None:
        """Apply a seal-state change now (a seal wipes the keys this Core holds)."""
        with self._lock:
            core = self._core
        if core is not None:
            core.sync()


def _active(coordinator: LocalCoordinator) -> bool:
    _generation, sealed = coordinator.seal_state()
    ha = coordinator.ha_status()
    return not sealed and (not ha.enabled or ha.active)


def mount_periodic_interval() -> float:
    raw = os.environ.get(INTERVAL_ENV)
    return float(raw) if raw else MOUNT_PERIODIC_INTERVAL


def owner_background(coordinator: LocalCoordinator, build_core: Callable[[], Core],
                     interval: float | None = None) -> BackgroundWork:
    """The owner's BackgroundWork with its jobs registered (``mount-periodic``, and
    ``lease-expiry``: the expiration manager's runner, core/lease_expiry.py; and
    ``token-store``: token trees being revoked and requested tidies).

    ``build_core`` makes the owner's Core around ``coordinator`` (called once, lazily).
    """
    owner = OwnerCore(build_core)
    work = BackgroundWork(lambda: _active(coordinator), on_wake=owner.sync)
    coordinator.on_change(work.wake)
    work.every("mount-periodic",
               interval if interval is not None else mount_periodic_interval(),
               lambda: owner.core().mounts.periodic())
    runner = ExpiryRunner()
    work.every("lease-expiry", expiry_interval(), lambda: _expire(owner, runner))
    budget = float(os.environ.get(TOKEN_WORK_BUDGET_ENV) or TOKEN_WORK_BUDGET)
    work.every("token-store", float(os.environ.get(TOKEN_WORK_INTERVAL_ENV)
                                    or TOKEN_WORK_INTERVAL),
               lambda: _token_work(owner, budget))
    return work


def _expire(owner: OwnerCore, runner: ExpiryRunner) -> None:
    runner.tick(owner.core())


def _token_work(owner: OwnerCore, budget: float) -> None:
    core = owner.core()
    core.tokens.background(core.now(), budget)
