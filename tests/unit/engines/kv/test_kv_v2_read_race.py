"""KV v2 reads take no lock unless a write moved the version between their two reads.

A read is two storage reads (the key's metadata, then the version it names). Done
without the key's lock, a write may land between them; each case below makes one
land there and checks the answer is what a read under the lock gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from kv_helpers import data, kv_node

from strongroom.engines.kv.v2_store import V2Store


def _between_reads(monkeypatch: pytest.MonkeyPatch, action: Any) -> list[bool]:
    """Run ``action`` once, right after the lock-free read fetched the metadata."""
    inner = V2Store.find_version
    calls: list[bool] = []

    def find(store: V2Store, path: str, number: int) -> Any:
        if not calls:
            action()
        calls.append(True)
        return inner(store, path, number)

    monkeypatch.setattr(V2Store, "find_version", find)
    return calls


def test_a_plain_read_reads_each_entry_once_and_takes_no_lock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    calls = _between_reads(monkeypatch, lambda: None)
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 1}
    assert len(calls) == 1


def test_a_version_trimmed_between_the_reads_is_read_again_under_the_lock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/metadata/k", json={"max_versions": 1})
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    calls = _between_reads(monkeypatch, lambda: d.call("POST", "secret/data/k",
                                             json={"data": {"v": 2}}))
    got = data(d.call("GET", "secret/data/k"))
    assert got["data"] == {"v": 2} and got["metadata"]["version"] == 2
    assert len(calls) == 2


def test_a_key_deleted_and_written_again_between_the_reads_is_never_mixed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": "old"}})

    def rewrite() -> None:
        clock.advance(seconds=5)
        assert d.call("DELETE", "secret/metadata/k").status_code == 204
        d.call("POST", "secret/data/k", json={"data": {"v": "new"}})  # version 1 again

    calls = _between_reads(monkeypatch, rewrite)
    got = data(d.call("GET", "secret/data/k"))
    # Old metadata with the new data would be a version 1 that never existed.
    assert got["data"] == {"v": "new"}
    assert got["metadata"]["created_time"].startswith("2026-01-01T00:00:05")
    assert len(calls) == 2


def test_a_version_destroyed_between_the_reads_is_a_404_with_its_metadata(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    _between_reads(monkeypatch, lambda: d.call("POST", "secret/destroy/k", json={"versions": [1]}))
    resp = d.call("GET", "secret/data/k")
    assert resp.status_code == 404
    assert resp.json["data"]["data"] is None and resp.json["data"]["metadata"]["destroyed"]
