"""molecule/resources/sample_active.py: the "never two active nodes" sampler of scenario ha.

The sampler runs only inside Molecule; these tests feed it made-up health answers to show
it reports two active nodes when there are two, and none when one hands over to another.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "molecule" / "resources" / "sample_active.py"
_SPEC = importlib.util.spec_from_file_location("sample_active", _PATH)
assert _SPEC and _SPEC.loader
sample_active = importlib.util.module_from_spec(_SPEC)
sys.modules["sample_active"] = sample_active  # dataclasses look their module up
_SPEC.loader.exec_module(sample_active)
Sample = sample_active.Sample
Node = sample_active.Node


def _node(name: str, codes: list[tuple[float, int]]) -> Node:
    """A node answering code at each time t (each request takes 10 ms)."""
    return Node(name, f"https://{name}:8200",
                samples=[Sample(t, t + 0.01, code) for t, code in codes])


def test_a_handover_is_one_active_node_at_a_time() -> None:
    old = _node("a", [(0.0, 200), (0.1, 200), (0.2, 0), (0.3, 0), (0.4, 0)])
    new = _node("b", [(0.0, 429), (0.1, 429), (0.2, 429), (0.3, 200), (0.4, 200)])
    other = _node("c", [(t / 10, 429) for t in range(5)])
    report = sample_active.analyse([old, new, other], since=0.15, expect="a")
    assert report["max_active"] == 1
    assert report["overlaps"] == []
    assert report["new_active"] == "b"
    assert report["takeover_seconds"] == pytest.approx(0.16)
    assert report["demoted_seconds"] == pytest.approx(-0.04)
    assert report["last_codes"] == {"a": 0, "b": 200, "c": 429}
    assert report["codes"]["a"] == [[0, 3, 0.05]]


def test_two_active_nodes_are_reported_with_when_and_how_long() -> None:
    # The old active node keeps answering 200 for 0.2 s after another took over.
    old = _node("a", [(0.0, 200), (0.1, 200), (0.2, 200), (0.3, 200), (0.4, 429)])
    new = _node("b", [(0.0, 429), (0.1, 429), (0.2, 200), (0.3, 200), (0.4, 200)])
    report = sample_active.analyse([old, new], since=0.0, expect="a")
    assert report["max_active"] == 2
    assert report["overlaps"] == [
        {"nodes": ["a", "b"], "start": 0.2, "seconds": pytest.approx(0.11)}]


def test_one_poll_of_overlap_is_enough() -> None:
    # A single 200 of the old node whose request was sent after the new node's first 200
    # arrived: two nodes answered active at the same time.
    old = _node("a", [(0.0, 200), (0.1, 503), (0.25, 200), (0.3, 503)])
    new = _node("b", [(0.0, 429), (0.2, 200), (0.3, 200)])
    assert sample_active.analyse([old, new], since=0.0, expect="a")["max_active"] == 2


def test_polling_threads_see_a_split_brain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole sampler (one thread per node) against nodes whose answers change over time."""
    started = time.time()

    def fake_probe(url: str, context: object, timeout: float) -> int:
        elapsed = time.time() - started
        if "a:" in url:
            return 200 if elapsed < 0.6 else 429
        return 200 if elapsed > 0.3 else 429

    monkeypatch.setattr(sample_active, "probe", fake_probe)
    nodes = [Node("a", "https://a:8200"), Node("b", "https://b:8200")]
    stop = threading.Event()
    threads = [threading.Thread(target=sample_active.poll, args=(n, None, 0.01, 1.0, stop))
               for n in nodes]
    for thread in threads:
        thread.start()
    time.sleep(0.9)
    stop.set()
    for thread in threads:
        thread.join()
    report = sample_active.analyse(nodes, since=started, expect="a")
    assert report["max_active"] == 2
    assert report["overlaps"][0]["nodes"] == ["a", "b"]
    assert report["overlaps"][0]["seconds"] == pytest.approx(0.3, abs=0.05)
    assert report["last_codes"] == {"a": 429, "b": 200}
