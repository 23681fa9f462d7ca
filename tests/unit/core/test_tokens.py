"""auth/token/*: creation rules, expiry, use counts, trees, accessors, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    return dev_node()


def create(d: DevNode, token: str | None = None, **body: Any) -> dict[str, Any]:
    resp = d.call("POST", "auth/token/create", token=token, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json["auth"]  # type: ignore[no-any-return]


def lookup_self(d: DevNode, token: str) -> Any:
    return d.call("GET", "auth/token/lookup-self", token=token)


def test_create_shape_and_default_policy(d: DevNode) -> None:
    auth = create(d, policies=["app"], ttl="1h", meta={"team": "x"}, display_name="ci")
    assert auth["policies"] == ["app", "default"] and auth["token_policies"] == ["app", "default"]
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    assert auth["metadata"] == {"team": "x"} and auth["token_type"] == "service"
    assert auth["orphan"] is False and auth["client_token"].startswith("hvs.")
    data = lookup_self(d, auth["client_token"]).json["data"]
    for key in ("accessor", "creation_time", "creation_ttl", "display_name", "entity_id",
                "expire_time", "explicit_max_ttl", "id", "meta", "num_uses", "orphan", "path",
                "policies", "renewable", "ttl", "type"):
        assert key in data
    assert data["display_name"] == "token-ci" and data["id"] == auth["client_token"]


def test_non_root_cannot_escalate(d: DevNode) -> None:
    d.call("PUT", "sys/policy/tokens", json={"policy": 'path "auth/token/create" '
                                                       '{ capabilities = ["update"] }'})
    parent = create(d, policies=["tokens"])["client_token"]
    resp = d.call("POST", "auth/token/create", token=parent, json={"policies": ["admin"]})
    assert resp.status_code == 400 and "subset" in resp.json["errors"][0]
    resp = d.call("POST", "auth/token/create", token=parent, json={"no_parent": True})
    assert resp.status_code == 400
    child = create(d, token=parent)
    assert child["policies"] == ["default", "tokens"]


def test_expiry_is_enforced(d: DevNode) -> None:
    token = create(d, ttl="1s")["client_token"]
    assert lookup_self(d, token).status_code == 200
    d.node.core.clock = lambda: datetime.now(UTC) + timedelta(seconds=5)
    assert lookup_self(d, token).status_code == 403


def test_num_uses_counts_down_then_revokes(d: DevNode) -> None:
    token = create(d, num_uses=2)["client_token"]
    first = lookup_self(d, token)
    assert first.status_code == 200 and first.json["data"]["num_uses"] == 1
    assert lookup_self(d, token).status_code == 200
    assert lookup_self(d, token).status_code == 403


def test_children_die_with_parent_unless_orphaned(d: DevNode) -> None:
    parent = create(d)["client_token"]
    child = create(d, token=parent)["client_token"]
    grandchild = create(d, token=child)["client_token"]
    orphan = d.call("POST", "auth/token/create-orphan", token=parent, json={}).json["auth"]
    assert orphan["orphan"] is True
    assert d.call("POST", "auth/token/revoke", json={"token": parent}).status_code == 204
    for token in (parent, child, grandchild):
        assert lookup_self(d, token).status_code == 403
    assert lookup_self(d, orphan["client_token"]).status_code == 200


def test_revoke_orphan_keeps_children(d: DevNode) -> None:
    parent = create(d)["client_token"]
    child = create(d, token=parent)["client_token"]
    assert d.call("POST", "auth/token/revoke-orphan", json={"token": parent}).status_code == 204
    assert lookup_self(d, parent).status_code == 403
    data = lookup_self(d, child).json["data"]
    assert data["orphan"] is True


def test_accessor_lookup_and_revoke(d: DevNode) -> None:
    auth = create(d)
    found = d.call("POST", "auth/token/lookup-accessor", json={"accessor": auth["accessor"]})
    assert found.status_code == 200 and found.json["data"]["id"] == ""
    assert d.call("POST", "auth/token/revoke-accessor",
                  json={"accessor": auth["accessor"]}).status_code == 204
    assert lookup_self(d, auth["client_token"]).status_code == 403
    bad = d.call("POST", "auth/token/lookup-accessor", json={"accessor": "nope"})
    assert bad.status_code == 400


def test_renew_respects_max_ttl(d: DevNode) -> None:
    auth = create(d, ttl="10m", explicit_max_ttl="20m")
    token = auth["client_token"]
    renewed = d.call("POST", "auth/token/renew-self", token=token, json={"increment": "1h"})
    assert renewed.status_code == 200 and renewed.json["auth"]["lease_duration"] <= 1200
    fixed = create(d, renewable=False)["client_token"]
    assert d.call("POST", "auth/token/renew-self", token=fixed, json={}).status_code == 400
    periodic = create(d, period="30m")["client_token"]
    again = d.call("POST", "auth/token/renew", json={"token": periodic})
    assert again.json["auth"]["lease_duration"] == 1800


def test_revoke_self_and_lookup_other(d: DevNode) -> None:
    token = create(d)["client_token"]
    other = d.call("POST", "auth/token/lookup", json={"token": token})
    assert other.status_code == 200 and other.json["data"]["id"] == token
    assert d.call("POST", "auth/token/revoke-self", token=token).status_code == 204
    assert lookup_self(d, token).status_code == 403
    assert d.call("POST", "auth/token/lookup", json={"token": token}).status_code == 400


def test_roles(d: DevNode) -> None:
    assert d.call("POST", "auth/token/roles/ci", json={
        "allowed_policies": ["app"], "orphan": True, "token_period": "1h"}).status_code == 204
    assert d.call("LIST", "auth/token/roles").json["data"]["keys"] == ["ci"]
    role = d.call("GET", "auth/token/roles/ci").json["data"]
    assert role["allowed_policies"] == ["app"] and role["orphan"] is True
    auth = d.call("POST", "auth/token/create/ci", json={"policies": ["app"]}).json["auth"]
    assert auth["orphan"] is True and auth["lease_duration"] == 3600
    denied = d.call("POST", "auth/token/create/ci", json={"policies": ["admin"]})
    assert denied.status_code == 400
    assert d.call("DELETE", "auth/token/roles/ci").status_code == 204
    assert d.call("LIST", "auth/token/roles").status_code == 404


@pytest.mark.parametrize("body", [
    {"num_uses": -1}, {"ttl": "forever"}, {"type": "batch"}, {"policies": {"a": 1}},
])
def test_bad_create_input(d: DevNode, body: dict[str, Any]) -> None:
    before = d.call("LIST", "auth/token/roles").status_code
    resp = d.call("POST", "auth/token/create", json=body)
    assert resp.status_code == 400 and resp.json["errors"]
    assert d.call("LIST", "auth/token/roles").status_code == before


def test_tokens_are_not_stored_in_clear(d: DevNode) -> None:
    token = create(d)["client_token"]
    physical = d.node.physical
    stack = [""]
    while stack:
        prefix = stack.pop()
        for key in physical.list(prefix):
            if key.endswith("/"):
                stack.append(prefix + key)
            else:
                assert token.encode() not in (physical.get(prefix + key) or b"")
                assert token not in prefix + key
