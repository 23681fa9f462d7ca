"""The active gate: a step-down waits for the requests a worker is serving as active."""

from __future__ import annotations

import os
import threading

from strongroom.ha.drain import ActiveGate


def test_closing_waits_for_a_request_in_another_process_and_refuses_new_ones() -> None:
    gate = ActiveGate(slots=4)
    started_r, started_w = os.pipe()
    finish_r, finish_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker serving one request as active
        assert gate.enter()
        os.write(started_w, b"x")
        os.read(finish_r, 1)
        gate.exit()
        os._exit(0)
    os.read(started_r, 1)
    drained = threading.Event()
    closer = threading.Thread(target=lambda: gate.close_and_drain(timeout=30) and drained.set())
    closer.start()
    assert not drained.wait(0.3), "drained while a request was still running"
    assert not gate.enter()  # closed: new requests go to the next active node
    os.write(finish_w, b"x")
    closer.join(30)
    assert drained.is_set()
    os.waitpid(pid, 0)
    gate.open()
    assert gate.enter()
    gate.exit()


def test_a_worker_that_died_mid_request_does_not_hold_the_step_down() -> None:
    gate = ActiveGate(slots=4)
    pid = os.fork()
    if pid == 0:
        gate.enter()
        os._exit(0)  # killed mid-request
    os.waitpid(pid, 0)
    gate.release(pid)  # gunicorn's child_exit
    assert gate.close_and_drain(timeout=5)


def test_a_drain_that_outlasts_its_bound_gives_up() -> None:
    gate = ActiveGate(slots=4)
    assert gate.enter()  # never exits
    assert gate.close_and_drain(timeout=0.05) is False
