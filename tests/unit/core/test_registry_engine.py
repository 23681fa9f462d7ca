"""The README's minimal engine, plugged in by one registry line: enabled through
sys/mounts, served at its path with URL captures, and listed like any engine."""

from __future__ import annotations

import re

import pytest

from strongroom import registry
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend
from tests.support.nodes import DevNode, dev_node


class EchoBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self._storage = ctx.storage
        super().__init__([Path("echo/(?P<name>[^/]+)", {Operation.READ: self._read},
                               {"name": Field(FieldType.STRING)})])

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"name": data.get("name")})


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> DevNode:
    monkeypatch.setitem(registry.SECRETS_ENGINES, "echo", EchoBackend)
    return dev_node()


def test_an_engine_registered_by_one_line_is_mounted_and_served(d: DevNode) -> None:
    assert d.call("POST", "sys/mounts/say", json={"type": "echo"}).status_code == 204
    assert d.call("GET", "sys/mounts").json["data"]["say/"]["type"] == "echo"
    resp = d.call("GET", "say/echo/hello?name=other")
    assert resp.status_code == 200, resp.text
    assert resp.json["data"] == {"name": "hello"}  # the URL's capture, not the query's
    assert resp.json["mount_type"] == "echo"


def test_an_unregistered_type_is_not_in_the_catalog(d: DevNode) -> None:
    resp = d.call("POST", "sys/mounts/say", json={"type": "echo2"})
    assert resp.status_code == 400
    assert "plugin not found in the catalog" in resp.json["errors"][0]
