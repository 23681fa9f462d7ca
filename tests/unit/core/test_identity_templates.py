"""Templated policies filled from a login token's entity: the default policy lets a
token read its own entity (and only it); a per-user KV path through the alias name."""

from __future__ import annotations

import pytest

from strongroom.policy.template import AliasInfo, IdentityInfo, render
from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    node = dev_node()
    assert node.call("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    accessor = node.call("GET", "sys/auth").json["data"]["userpass/"]["accessor"]
    template = "{{identity.entity.aliases." + accessor + ".name}}"
    home = f'path "secret/data/home/{template}/*" {{ capabilities = ["create", "update", "read"] }}'

    assert node.call("PUT", "sys/policies/acl/home", json={"policy": home}).status_code == 204
    for user in ("alice", "bob"):
        assert node.call("POST", f"auth/userpass/users/{user}", json={
            "password": "pw", "token_policies": "home"}).status_code == 204
    return node


def login(d: DevNode, user: str) -> tuple[str, str]:
    auth = d.client.simulate_post(f"/v1/auth/userpass/login/{user}",
                                  json={"password": "pw"}).json["auth"]
    return auth["client_token"], auth["entity_id"]


def test_default_policy_reads_own_entity_only(d: DevNode) -> None:
    alice, alice_entity = login(d, "alice")
    _bob, bob_entity = login(d, "bob")
    own = d.call("GET", f"identity/entity/id/{alice_entity}", token=alice)
    assert own.status_code == 200 and own.json["data"]["id"] == alice_entity
    name = own.json["data"]["name"]
    assert d.call("GET", f"identity/entity/name/{name}", token=alice).status_code == 200
    assert d.call("GET", f"identity/entity/id/{bob_entity}", token=alice).status_code == 403
    assert d.call("LIST", "identity/entity/id", token=alice).status_code == 403
    caps = d.call("POST", "sys/capabilities-self", token=alice,
                  json={"path": f"identity/entity/id/{alice_entity}"}).json
    assert caps["capabilities"] == ["read"]


def test_per_user_path_from_alias_name(d: DevNode) -> None:
    alice, _ = login(d, "alice")
    ok = d.call("POST", "secret/data/home/alice/notes", token=alice, json={"data": {"a": 1}})
    assert ok.status_code == 200, ok.text
    assert d.call("POST", "secret/data/home/bob/notes", token=alice,
                  json={"data": {"a": 1}}).status_code == 403
    # A root-created token without an entity gets nothing from the templated stanza.
    plain = d.call("POST", "auth/token/create", json={"policies": ["home"]})
    token = plain.json["auth"]["client_token"]
    assert d.call("GET", "secret/data/home/alice/notes", token=token).status_code == 403


def test_render_rules() -> None:
    info = IdentityInfo("e1", "entity_e1", (("team", "ops"),),
                        (("auth_up_1", AliasInfo("a1", "alice", (("k", "v"),))),))
    assert render("x/{{identity.entity.id}}/y", info) == "x/e1/y"
    assert render("x/{{ identity.entity.name }}", info) == "x/entity_e1"
    assert render("x/{{identity.entity.metadata.team}}", info) == "x/ops"
    assert render("x/{{identity.entity.aliases.auth_up_1.name}}", info) == "x/alice"
    assert render("x/{{identity.entity.aliases.auth_up_1.metadata.k}}", info) == "x/v"
    assert render("x/{{identity.entity.metadata.none}}", info) is None
    assert render("x/{{identity.groups.names.g.id}}", info) is None
    assert render("x/{{identity.entity.id}}", None) is None
    widened = IdentityInfo("e1", "entity_e1", (), (("acc", AliasInfo("a", "a/b")),))
    assert render("x/{{identity.entity.aliases.acc.name}}", widened) is None
