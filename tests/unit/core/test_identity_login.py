"""The login stage maps a method's ``Auth.alias`` to an identity entity: created on the
first login, the same on every later one, per (mount, name); ``entity_id`` on the
token (lookup-self) and in the login's auth block."""

from __future__ import annotations

import pytest

from strongroom import registry
from strongroom.core.logical import Alias, Auth, SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path, PathBackend
from strongroom.framework.fields import Field
from tests.support.nodes import DevNode, dev_node


class AliasMethod(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        super().__init__([Path("login/(?P<name>.+)", {Operation.UPDATE: self._login},
                               fields={"name": Field(), "kind": Field()})],
                         special_paths=SpecialPaths(unauthenticated=("login/*",)))

    def _login(self, req: Request, data: FieldData, m: object) -> Response:
        name = data.get("name")
        auth = Auth(policies=["p"], display_name=name, metadata={"user": name},
                    token_type=data.get("kind") or "default",
                    alias=Alias(name=name, metadata={"m": name}) if name != "anon" else None)
        return Response(auth=auth)


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> DevNode:
    monkeypatch.setitem(registry.AUTH_METHODS, "aliased", AliasMethod)
    node = dev_node()
    for path in ("one", "two"):
        assert node.call("POST", f"sys/auth/{path}", json={"type": "aliased"}).status_code == 204
    return node


def login(d: DevNode, mount: str, name: str, **body: str) -> dict[str, object]:
    resp = d.client.simulate_post(f"/v1/auth/{mount}/login/{name}", json=body)
    assert resp.status_code == 200, resp.text
    auth: dict[str, object] = resp.json["auth"]
    return auth


def test_entity_created_once_and_stable(d: DevNode) -> None:
    first = login(d, "one", "alice")
    entity = first["entity_id"]
    assert isinstance(entity, str) and len(entity) == 36
    assert login(d, "one", "alice")["entity_id"] == entity
    assert login(d, "one", "bob")["entity_id"] not in ("", entity)
    # The same name on another mount is another alias, so another entity (Vault).
    assert login(d, "two", "alice")["entity_id"] not in ("", entity)
    looked = d.client.simulate_get("/v1/auth/token/lookup-self",
                                   headers={"X-Vault-Token": str(first["client_token"])})
    assert looked.json["data"]["entity_id"] == entity
    store = d.node.core.identity
    record = store.entity(entity)
    assert record is not None and record.name.startswith("entity_")
    (alias_id,) = record.alias_ids
    alias = store.alias(alias_id)
    assert alias is not None and alias.name == "alice" and alias.canonical_id == entity
    assert alias.mount_type == "aliased" and alias.mount_path == "auth/one/"
    assert alias.metadata == {"m": "alice"}
    assert store.entity_by_name(record.name) == record


def test_no_alias_no_entity(d: DevNode) -> None:
    assert login(d, "one", "anon")["entity_id"] == ""


def test_token_type_follows_the_mount_tune(d: DevNode) -> None:
    assert login(d, "one", "alice")["token_type"] == "service"
    assert login(d, "one", "alice", kind="batch")["token_type"] == "batch"
    tune = d.call("POST", "sys/auth/one/tune", json={"token_type": "default-batch"})
    assert tune.status_code == 204, tune.text
    assert login(d, "one", "alice")["token_type"] == "batch"
    assert login(d, "one", "alice", kind="service")["token_type"] == "service"
    d.call("POST", "sys/auth/one/tune", json={"token_type": "service"})
    assert login(d, "one", "alice", kind="batch")["token_type"] == "service"
