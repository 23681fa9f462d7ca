"""Token ``bound_cidrs``: set by a token role (or a login's ``token_bound_cidrs``),
shown in lookup, enforced on every use (OpenBao 2.7's answers: a plain 403
"permission denied"; non-expiring tokens are never bound)."""

from __future__ import annotations

import pytest

from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    node = dev_node()
    resp = node.call("POST", "auth/token/roles/lan", json={
        "token_bound_cidrs": "10.0.0.0/8, 192.0.2.7", "allowed_policies": "default"})
    assert resp.status_code == 204, resp.text
    return node


def use(d: DevNode, token: str, addr: str) -> tuple[int, object]:
    resp = d.client.simulate_get("/v1/auth/token/lookup-self",
                                 headers={"X-Vault-Token": token}, remote_addr=addr)
    return resp.status_code, resp.json


def test_role_cidrs_bind_the_token(d: DevNode) -> None:
    role = d.call("GET", "auth/token/roles/lan").json["data"]
    assert role["token_bound_cidrs"] == ["10.0.0.0/8", "192.0.2.7"]
    made = d.call("POST", "auth/token/create/lan", json={"ttl": "1h"})
    token = made.json["auth"]["client_token"]
    status, body = use(d, token, "10.1.2.3")
    assert status == 200 and body["data"]["bound_cidrs"] == ["10.0.0.0/8", "192.0.2.7"]
    assert use(d, token, "192.0.2.7")[0] == 200
    assert use(d, token, "192.0.2.8") == (403, {"errors": ["permission denied"]})
    assert use(d, token, "11.0.0.1") == (403, {"errors": ["permission denied"]})
    # Any use, not only lookups.
    resp = d.client.simulate_get("/v1/secret/data/x", headers={"X-Vault-Token": token},
                                 remote_addr="11.0.0.1")
    assert (resp.status_code, resp.json) == (403, {"errors": ["permission denied"]})


def test_role_cidr_inputs(d: DevNode) -> None:
    bad = d.call("POST", "auth/token/roles/bad", json={"token_bound_cidrs": "x"})
    assert bad.status_code == 400 and bad.json["errors"] == [
        'error parsing role fields: error parsing address "x": Unable to convert "x" to an '
        "IPv4 or IPv6 address, or a UNIX Socket"]
    old = d.call("POST", "auth/token/roles/old", json={"bound_cidrs": "10.0.0.0/8"})
    assert old.status_code == 204
    role = d.call("GET", "auth/token/roles/old").json["data"]
    assert role["bound_cidrs"] == role["token_bound_cidrs"] == ["10.0.0.0/8"]
    d.call("POST", "auth/token/roles/old", json={"token_bound_cidrs": ""})
    role = d.call("GET", "auth/token/roles/old").json["data"]
    assert "token_bound_cidrs" not in role and "bound_cidrs" not in role


def test_batch_tokens_carry_their_cidrs(d: DevNode) -> None:
    assert d.call("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    assert d.call("POST", "auth/userpass/users/bob", json={
        "password": "pw", "token_type": "batch",
        "token_bound_cidrs": "127.0.0.1"}).status_code == 204
    resp = d.client.simulate_post("/v1/auth/userpass/login/bob", json={"password": "pw"},
                                  remote_addr="127.0.0.1")
    token = resp.json["auth"]["client_token"]
    assert token.startswith("hvb.")
    status, body = use(d, token, "127.0.0.1")
    assert status == 200 and body["data"]["bound_cidrs"] == ["127.0.0.1"]
    assert use(d, token, "127.0.0.2") == (403, {"errors": ["permission denied"]})
