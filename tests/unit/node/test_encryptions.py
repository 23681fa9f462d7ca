"""sys/key-status's encryption count: node-wide, persistent, and the automatic rotation
past Vault's limit (node/encryptions.py, barrier/counter.py)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from falcon import testing

from strongroom.barrier.counter import EncryptionCounter
from strongroom.config import dev_config
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.core.core import Core
from strongroom.ha.manager import HAManager
from strongroom.ha.state import HAStatus
from strongroom.http.app import build_falcon_app
from strongroom.node import encryptions
from strongroom.node.coordinator import LocalCoordinator
from strongroom.physical.base import Backend
from strongroom.physical.chain import build_chain
from strongroom.physical.inmem import InmemBackend
from strongroom.registry import SECRETS_ENGINES

START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def owner(physical: Backend, clock: Clock | None = None, **kwargs: Any) -> LocalCoordinator:
    clock = clock or Clock()
    return LocalCoordinator(physical, "inmem", make_bootstrapper(clock), clock=clock, **kwargs)


TOKENS: dict[int, str] = {}


def unsealed(physical: Backend, **kwargs: Any) -> tuple[LocalCoordinator, str]:
    coordinator = owner(physical, **kwargs)
    answer = coordinator.initialize(1, 1)
    TOKENS[id(physical)] = answer["root_token"]
    coordinator.unseal(answer["keys"][0])
    return coordinator, answer["keys"][0]


def worker(physical: Backend, coordinator: LocalCoordinator) -> Core:
    """A worker's core, sharing the node's change counters with the owner."""
    storage = build_chain(dev_config(), physical=physical)
    core = Core(storage, coordinator, coordinator._counters, engines=SECRETS_ENGINES)
    core.sync()
    return core


def term(coordinator: LocalCoordinator) -> int:
    ring = coordinator.snapshot().keyring
    assert ring is not None
    return ring.active_term


def rotations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event=barrier_auto_rotate" in r.getMessage()]


def write(core: Core, n: int) -> None:
    for i in range(n):
        core.barrier.put(f"test/entry-{i}", b"x")


def key_status(core: Core) -> dict[str, Any]:
    """GET /v1/sys/key-status through this core, as a worker serves it."""
    client = testing.TestClient(build_falcon_app(core, 1 << 20))
    resp = client.simulate_get("/v1/sys/key-status",
                               headers={"X-Vault-Token": TOKENS[id(core.storage.physical)]})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json["data"]
    return data


def test_the_count_is_shared_by_every_core_of_the_node() -> None:
    """Two workers' cores (in one process here; test_counter_across_processes crosses
    the process boundary) count into one total, and key-status reports it."""
    physical = InmemBackend()
    coordinator, _ = unsealed(physical)
    a, b = worker(physical, coordinator), worker(physical, coordinator)
    start = coordinator.encryption_counter().total()
    write(a, 3)
    write(b, 4)
    a.barrier.transaction([("put", "test/t1", b"1"), ("delete", "test/t0", None),
                           ("put", "test/t2", b"2")])
    assert a.barrier.keyring.encryptions() == b.barrier.keyring.encryptions() == start + 9
    assert key_status(a)["encryptions"] == start + 9


def test_the_count_survives_a_restart_of_the_owner() -> None:
    physical = InmemBackend()
    coordinator, key = unsealed(physical)
    core = worker(physical, coordinator)
    write(core, 10)
    counted = coordinator.encryption_counter().total()
    coordinator.checkpoint_encryptions()
    # The checkpoint's own write is an encryption too, and is in what it stored.
    assert coordinator.encryption_counter().read() == (counted + 1, 0)
    coordinator.seal()

    restarted = owner(physical)  # a new process: a new, empty counter
    restarted.unseal(key)
    assert restarted.encryption_counter().total() == counted + 1
    stored = json.loads(restarted._barrier.get(encryptions.ENCRYPTIONS_PATH) or b"")
    assert stored == {"term": 1, "encryptions": counted + 1}


def test_nothing_is_written_without_activity() -> None:
    physical = InmemBackend()
    coordinator, _ = unsealed(physical)
    coordinator.checkpoint_encryptions()
    before = physical.get(encryptions.ENCRYPTIONS_PATH)
    coordinator.checkpoint_encryptions()
    assert physical.get(encryptions.ENCRYPTIONS_PATH) == before


def test_past_the_threshold_the_key_is_rotated_and_the_count_restarts(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="strongroom.node.coordinator")
    physical = InmemBackend()
    coordinator, key = unsealed(physical, max_encryptions=20)
    core = worker(physical, coordinator)
    write(core, 20 - coordinator.encryption_counter().total())
    assert coordinator.encryption_counter().total() == 20
    coordinator.checkpoint_encryptions()  # at the limit, not past it (Vault: >)
    assert term(coordinator) == 1 and not rotations(caplog)
    write(core, 1)
    coordinator.checkpoint_encryptions()
    assert rotations(caplog) == ["event=barrier_auto_rotate reason='reached max operations' "
                                 "term=1"]
    snap = coordinator.snapshot()
    assert snap.keyring is not None and snap.keyring.active_term == 2
    assert snap.keyring.encryptions() == 0
    core.sync()
    assert key_status(core)["term"] == 2 and key_status(core)["encryptions"] == 0
    # The rotation was persisted like sys/rotate: a restart opens term 2, counted from 0.
    coordinator.seal()
    restarted = owner(physical, max_encryptions=20)
    restarted.unseal(key)
    assert restarted.snapshot().keyring.active_term == 2  # type: ignore[union-attr]
    assert restarted.encryption_counter().total() == 0


def test_the_default_threshold_is_openbaos() -> None:
    assert encryptions.ABSOLUTE_OPERATION_MAXIMUM == 3_865_470_566
    assert owner(InmemBackend())._max_encryptions == 3_865_470_566


def test_a_key_never_counted_and_older_than_a_year_is_rotated(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="strongroom.node.coordinator")
    """A node initialized before counting existed: no stored count for its term."""
    physical = InmemBackend()
    clock = Clock()
    coordinator, _ = unsealed(physical, clock=clock)
    physical.delete(encryptions.ENCRYPTIONS_PATH)
    clock.now = START + timedelta(days=364)
    coordinator.checkpoint_encryptions()  # young enough; now it is counted
    assert term(coordinator) == 1
    physical.delete(encryptions.ENCRYPTIONS_PATH)
    clock.now = START + timedelta(days=366)
    coordinator.checkpoint_encryptions()
    assert term(coordinator) == 2
    assert encryptions.REASON_LEGACY in rotations(caplog)[0]


def test_nothing_is_checkpointed_while_sealed() -> None:
    physical = InmemBackend()
    coordinator = owner(physical)
    coordinator.checkpoint_encryptions()
    coordinator.initialize(1, 1)
    before = physical.get(encryptions.ENCRYPTIONS_PATH)
    coordinator.encryption_counter().add(3)
    coordinator.checkpoint_encryptions()
    assert physical.get(encryptions.ENCRYPTIONS_PATH) == before


class FakeHA:
    """An HA manager that publishes whatever status the test sets."""

    def __init__(self, publish: Callable[[HAStatus], None]) -> None:
        self.publish = publish

    def start(self) -> None:
        self.publish(HAStatus(enabled=True, active=False))

    def stop(self) -> None: ...

    def retire(self) -> None: ...

    def step_down(self) -> None: ...

    def lost(self) -> None: ...


def test_a_standby_never_writes_its_count() -> None:
    physical = InmemBackend()
    managers: list[FakeHA] = []

    def factory(_backend: Backend, publish: Callable[[HAStatus], None]) -> HAManager:
        managers.append(FakeHA(publish))
        return cast(HAManager, managers[-1])

    coordinator, _ = unsealed(physical, ha_factory=factory)
    before = physical.get(encryptions.ENCRYPTIONS_PATH)
    coordinator.encryption_counter().add(7)
    coordinator.checkpoint_encryptions()
    assert physical.get(encryptions.ENCRYPTIONS_PATH) == before
    managers[-1].publish(HAStatus(enabled=True, active=True))
    coordinator.checkpoint_encryptions()
    assert physical.get(encryptions.ENCRYPTIONS_PATH) != before


CHILD = """
import sys
from strongroom.barrier.counter import EncryptionCounter
counter = EncryptionCounter(int(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    counter.add()
"""


ADDS = 10_000


def test_counter_across_processes_loses_no_increment() -> None:
    """Three processes add at once; each holds the memfd through the same open file
    (as a descriptor received over the socket does), which must not share the lock."""
    counter = EncryptionCounter()
    fd = counter.fileno()
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(fd), str(ADDS)],
                                 pass_fds=[fd]) for _ in range(3)]
    for _ in range(ADDS):
        counter.add()
    assert all(child.wait(timeout=120) == 0 for child in children)
    assert counter.read() == (0, 4 * ADDS)
    counter.settle(4 * ADDS + 1, 4 * ADDS)
    assert counter.read() == (4 * ADDS + 1, 0) and counter.total() == 4 * ADDS + 1


def test_attaching_to_something_that_is_not_a_counter_fails() -> None:
    with open("/dev/null", "rb") as null, pytest.raises(ValueError):
        EncryptionCounter(os.dup(null.fileno()))


def test_counting_takes_no_syscall_once_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every barrier write counts: after its first add (which claims the counter's
    slot) a counter adds without a lock syscall (before: flock twice per add)."""
    counter = EncryptionCounter()
    counter.add()

    def refuse(*_args: object) -> None:
        raise AssertionError("a syscall on the hot path")

    monkeypatch.setattr(fcntl, "flock", refuse)
    monkeypatch.setattr(fcntl, "fcntl", refuse)
    monkeypatch.setattr(fcntl, "lockf", refuse)
    for _ in range(100):
        counter.add(2)
    monkeypatch.undo()
    assert counter.total() == 201


KILLED = """
import os, signal, sys
from strongroom.barrier.counter import EncryptionCounter
counter = EncryptionCounter(int(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    counter.add()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_loses_no_count_and_wedges_nothing() -> None:
    counter = EncryptionCounter()
    fd = counter.fileno()
    for _ in range(3):  # each child dies holding its slot; the next one reuses it
        child = subprocess.Popen([sys.executable, "-c", KILLED, str(fd), "1000"], pass_fds=[fd])
        assert child.wait(timeout=60) == -signal.SIGKILL
    counter.add()
    assert counter.read() == (0, 3001)
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(fd), "1000"], pass_fds=[fd])
                for _ in range(2)]
    assert all(child.wait(timeout=60) == 0 for child in children)
    assert counter.total() == 5001
    # Dead processes' slots were claimed again: three slots served six processes.
    assert sum(1 for word in counter._words[8:] if word) <= 3


def test_checkpoints_and_resets_racing_adds_lose_none() -> None:
    """The owner settles and resets while other processes add: slots are never
    written by the owner, so no increment is lost to a race."""
    counter = EncryptionCounter()
    fd = counter.fileno()
    counter.reset(100)
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(fd), str(ADDS)],
                                 pass_fds=[fd]) for _ in range(2)]
    stored = 100
    while any(child.poll() is None for child in children):
        _, unaccounted = counter.read()  # a checkpoint, as node/encryptions.py does
        stored += unaccounted
        counter.settle(stored, unaccounted)
    assert all(child.wait(timeout=120) == 0 for child in children)
    assert counter.total() == 100 + 2 * ADDS
    counter.reset(0)
    assert counter.read() == (0, 0)
    counter.add(3)
    assert counter.total() == 3


def test_a_forked_child_counts_in_a_slot_of_its_own() -> None:
    counter = EncryptionCounter()
    counter.add()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            for _ in range(ADDS):
                counter.add()
        finally:
            os._exit(0)
    for _ in range(ADDS):
        counter.add()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert counter.total() == 2 * ADDS + 1
