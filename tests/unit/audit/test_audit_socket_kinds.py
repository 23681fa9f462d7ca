"""The socket device over a unix stream socket (a peer gone: fail closed) and over
UDP (one datagram per entry)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.support.audit import Collector
from tests.support.nodes import dev_node


def test_unix_stream_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "collector.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    collector = Collector(listener)
    d = dev_node()
    try:
        resp = d.call("PUT", "sys/audit/sock", json={
            "type": "socket", "options": {"address": path, "socket_type": "unix"}})
        assert resp.status_code == 204, resp.text
        assert d.call("GET", "sys/mounts").status_code == 200
        lines = collector.wait_for(4)
        assert [json.loads(x)["request"]["path"] for x in lines[-2:]] == ["sys/mounts"] * 2
        collector.close()
        (tmp_path / "collector.sock").unlink()
        assert d.call("GET", "sys/mounts").status_code == 500  # peer gone: fail closed
    finally:
        collector.close()


def test_udp_one_datagram_per_entry() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    d = dev_node()
    try:
        resp = d.call("PUT", "sys/audit/udp", json={"type": "socket", "options": {
            "address": f"127.0.0.1:{port}", "socket_type": "udp"}})
        assert resp.status_code == 204, resp.text
        probe = receiver.recv(65536)
        assert json.loads(probe)["request"]["path"] == "sys/audit/test"
        d.call("GET", "sys/mounts")
        got = [json.loads(receiver.recv(65536)) for _ in range(3)]
        assert [(e["type"], e["request"]["path"]) for e in got] == [
            ("response", "sys/audit/udp"), ("request", "sys/mounts"),
            ("response", "sys/mounts")]
    finally:
        receiver.close()


def test_an_unreachable_collector_is_not_dialled_for_every_request() -> None:
    """A collector whose accept queue is full: connects hang until write_timeout. The
    device waits once, then refuses at once for RECONNECT_PAUSE instead of stalling
    every request (a worker's requests share one event loop); it connects again
    once the collector accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    d = dev_node()
    try:
        assert d.call("PUT", "sys/audit/sock", json={"type": "socket", "options": {
            "address": f"127.0.0.1:{address[1]}", "write_timeout": "300ms",
            "skip_test": "true"}}).status_code == 204
        # The device's connection (it recorded the enable's answer) is accepted and
        # closed: its next write must dial again.
        listener.settimeout(5)
        conn, _ = listener.accept()
        conn.close()
        while True:  # fill the accept queue: the next SYN is dropped
            filler = socket.socket()
            filler.settimeout(0.3)
            try:
                filler.connect(address)
            except OSError:
                filler.close()
                break
            fillers.append(filler)
            assert len(fillers) < 64
        started = time.monotonic()
        statuses = [d.call("GET", "sys/mounts").status_code for _ in range(8)]
        elapsed = time.monotonic() - started
        assert statuses == [500] * 8
        # Without the pause: 8 requests x 2 attempts x 300 ms = 4.8 s.
        assert elapsed < 2.0, elapsed
        collector = Collector(listener)  # the collector accepts again
        deadline = time.monotonic() + 10
        while d.call("GET", "sys/mounts").status_code != 200:
            assert time.monotonic() < deadline, "never reconnected"
        collector.close()
    finally:
        listener.close()
        for filler in fillers:
            filler.close()
