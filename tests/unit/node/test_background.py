"""node/background.py: periodic jobs on one thread, only while the node may act."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from strongroom.config import dev_config
from strongroom.core.core import Core
from strongroom.core.mount_table import Mounts
from strongroom.node.background import BackgroundWork, owner_background
from strongroom.node.shared import SharedCounters
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import build_node, local_coordinator


def wait_for(check: object, timeout: float = 10) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Gate:
    def __init__(self, open_: bool) -> None:
        self.open = open_

    def __call__(self) -> bool:
        return self.open


def test_a_job_runs_at_its_interval_on_one_thread() -> None:
    runs: list[str] = []
    work = BackgroundWork(Gate(True))
    work.every("tick", 0.02, lambda: runs.append(threading.current_thread().name))
    work.start()
    try:
        wait_for(lambda: len(runs) >= 3)
    finally:
        work.stop()
    assert set(runs) == {"background"}
    count = len(runs)
    time.sleep(0.1)
    assert len(runs) == count, "no job runs after stop"


def test_jobs_wait_while_the_node_may_not_act_and_run_once_it_may() -> None:
    runs: list[int] = []
    gate = Gate(False)
    work = BackgroundWork(gate)
    work.every("tick", 0.02, lambda: runs.append(1))
    work.start()
    try:
        time.sleep(0.2)  # ten intervals, sealed (or standby): nothing may run
        assert runs == []
        gate.open = True
        work.wake()
        wait_for(lambda: runs)
    finally:
        work.stop()


def test_a_failing_job_is_logged_without_its_message_and_never_ends_the_thread(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="strongroom.node.background")
    runs: list[int] = []

    def boom() -> None:
        runs.append(1)
        raise RuntimeError("s.SECRETTOKEN")

    work = BackgroundWork(Gate(True))
    work.every("boom", 0.02, boom)
    work.start()
    try:
        wait_for(lambda: len(runs) >= 3)
    finally:
        work.stop()
    text = caplog.text
    assert "event=background_job_failed job=boom error=RuntimeError" in text
    assert "SECRETTOKEN" not in text


def test_a_failing_check_fails_closed() -> None:
    runs: list[int] = []

    def broken() -> bool:
        raise OSError("storage down")

    work = BackgroundWork(broken)
    work.every("tick", 0.02, lambda: runs.append(1))
    work.start()
    try:
        time.sleep(0.15)
    finally:
        work.stop()
    assert runs == []


def test_names_are_unique_and_intervals_positive() -> None:
    work = BackgroundWork(Gate(True))
    work.every("a", 1, lambda: None)
    with pytest.raises(ValueError, match="registered already"):
        work.every("a", 1, lambda: None)
    with pytest.raises(ValueError, match="positive"):
        work.every("b", 0, lambda: None)
    assert work.names() == ["a"]


def test_the_owner_registers_mount_periodic_and_runs_it_only_unsealed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    periodic_calls: list[object] = []
    monkeypatch.setattr(Mounts, "periodic", lambda self: periodic_calls.append(self))
    counters = SharedCounters()
    physical = InmemBackend()
    coordinator = local_coordinator(dev_config(), physical, counters=counters)
    built: list[int] = []

    def build() -> Core:
        built.append(1)
        return build_node(dev_config(), coordinator=coordinator, physical=physical,
                          counters=counters).core

    work = owner_background(coordinator, build, interval=0.02)
    assert work.names() == ["mount-periodic", "lease-expiry", "token-store"]
    ran: list[int] = []
    work.every("probe", 0.02, lambda: ran.append(1))
    work.start()
    try:
        time.sleep(0.15)
        assert ran == []  # not initialized, sealed
        keys = coordinator.initialize(1, 1)["keys"]
        coordinator.unseal(keys[0])
        wait_for(lambda: ran)
        wait_for(lambda: built)  # mount-periodic had the owner's Core built, once
        wait_for(lambda: periodic_calls)  # and called its mounts' periodic
        coordinator.seal()
        count = len(ran)
        time.sleep(0.15)
        assert len(ran) <= count + 1  # one may have been running as the seal landed
    finally:
        work.stop()
    assert built == [1]
