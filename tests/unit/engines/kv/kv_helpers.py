"""Shared by the KV unit tests: a dev node with a settable clock, mounts, storage snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import falcon.testing

from strongroom.config import dev_config
from strongroom.physical.base import Backend
from strongroom.wsgi import build_node
from tests.support.nodes import DevNode

START = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
START_TEXT = "2026-01-01T00:00:00.123456Z"


class Clock:
    """Stands still unless told to move, so timestamps in responses are exact."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def kv_node(clock: Clock | None = None) -> tuple[DevNode, Clock]:
    """Like tests.support.nodes.dev_node (KV v2 at secret/), on a clock the test controls."""
    clock = clock or Clock()
    node = build_node(dev_config(), dev=True, clock=clock)
    result = node.coordinator.initialize(1, 1, "root")
    node.coordinator.unseal(result["keys"][0])
    return DevNode(node, falcon.testing.TestClient(node.app), result["root_token"]), clock


def mount(d: DevNode, path: str, version: str) -> None:
    resp = d.call("POST", f"sys/mounts/{path}", json={"type": "kv",
                                                      "options": {"version": version}})
    assert resp.status_code == 204, resp.text


def mount_uuid(d: DevNode, path: str) -> str:
    mounts = d.call("GET", "sys/mounts").json
    table = mounts.get("data", mounts)
    return str(table[path.rstrip("/") + "/"]["uuid"])


def _dump(backend: Backend, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for child in backend.list(prefix):
        if child.endswith("/"):
            out.update(_dump(backend, prefix + child))
        else:
            value = backend.get(prefix + child)
            assert value is not None
            out[prefix + child] = value
    return out


def stored(d: DevNode, path: str = "secret/") -> dict[str, bytes]:
    """Every physical entry of a mount (ciphertext: any rewrite shows up, even a no-op)."""
    return _dump(d.node.physical, f"logical/{mount_uuid(d, path)}/")


def stored_plain(d: DevNode, path: str = "secret/") -> dict[str, bytes]:
    """The mount's entries decrypted, keyed by their path inside the mount's view."""
    prefix = f"logical/{mount_uuid(d, path)}/"
    return {key[len(prefix):]: value for key, value in _dump(d.node.core.barrier, prefix).items()}


@contextmanager
def unchanged(d: DevNode, path: str = "secret/") -> Iterator[None]:
    """Assert the block leaves the mount's storage byte-for-byte as it was."""
    before = stored(d, path)
    yield
    assert stored(d, path) == before


def data(resp: Any) -> Any:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json["data"]


def errors(resp: Any, status: int = 400) -> list[str]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    return list(resp.json["errors"])


def patch(d: DevNode, path: str, body: Any) -> Any:
    """An HTTP PATCH with Vault's required media type (json= would force application/json)."""
    return d.call("PATCH", path, body=json.dumps(body),
                  headers={"Content-Type": "application/merge-patch+json"})
