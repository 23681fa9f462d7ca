"""AppRole through a whole in-process node (HTTP layer, core pipeline, ACL, token store,
wrapping): least-privilege tokens managing roles, the login's auth block, wrapped
SecretIDs unwrapped once, renewals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.auth import login_guard
from tests.support.nodes import DevNode, dev_node

MANAGER = """
path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role" { capabilities = ["list"] }
"""
# What a configuration-management controller needs to hand out SecretIDs of one role.
ISSUER = """
path "auth/approle/role/web/secret-id" { capabilities = ["update"] }
path "auth/approle/role/web/role-id" { capabilities = ["read"] }
"""
UPDATER = """
path "auth/approle/role/*" { capabilities = ["update", "read"] }
"""


@pytest.fixture(autouse=True)
def fresh_guard() -> Iterator[None]:
    # The login guard's table is per process: other tests' failures from this
    # address must not put these tests' logins in a backoff window.
    login_guard._tables.clear()
    yield
    login_guard._tables.clear()


@pytest.fixture(scope="module")
def d() -> DevNode:
    node = dev_node()
    assert node.call("POST", "sys/auth/approle", json={"type": "approle"}).status_code == 204
    for name, body in (("approle-manager", MANAGER), ("web-issuer", ISSUER),
                       ("approle-updater", UPDATER)):
        resp = node.call("PUT", f"sys/policies/acl/{name}", json={"policy": body})
        assert resp.status_code == 204, resp.text
    return node


def token(d: DevNode, *policies: str) -> str:
    resp = d.call("POST", "auth/token/create", json={"policies": list(policies)})
    assert resp.status_code == 200, resp.text
    return str(resp.json["auth"]["client_token"])


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json if resp.status_code != 204 else None


def test_least_privilege_tokens(d: DevNode) -> None:
    manager = token(d, "approle-manager")
    ok(d.call("POST", "auth/approle/role/web", token=manager,
              json={"token_policies": "web", "secret_id_num_uses": 5}), 204)
    ok(d.call("POST", "auth/approle/role/db", token=manager, json={}), 204)
    assert ok(d.call("LIST", "auth/approle/role", token=manager))["data"]["keys"] == [
        "db", "web"]
    issuer = token(d, "web-issuer")
    role_id = ok(d.call("GET", "auth/approle/role/web/role-id", token=issuer))["data"][
        "role_id"]
    secret = ok(d.call("POST", "auth/approle/role/web/secret-id", token=issuer))["data"]
    assert secret["secret_id_num_uses"] == 5
    # Nothing else: not another role's SecretIDs, not the role's settings, no listing.
    for method, path in (("POST", "auth/approle/role/db/secret-id"),
                         ("GET", "auth/approle/role/web"),
                         ("LIST", "auth/approle/role/web/secret-id"),
                         ("POST", "auth/approle/role/web/custom-secret-id"),
                         ("POST", "auth/approle/role/web"),
                         ("POST", "sys/auth/other")):
        resp = d.call(method, path, token=issuer, json={"secret_id": "x"})
        assert resp.status_code == 403, (method, path, resp.text)
    # update without create: an existing role is changed, a new one cannot be made.
    updater = token(d, "approle-updater")
    ok(d.call("POST", "auth/approle/role/db", token=updater, json={"token_ttl": 30}), 204)
    assert d.call("POST", "auth/approle/role/new", token=updater,
                  json={}).status_code == 403
    login = ok(d.call("POST", "auth/approle/login", token="",
                      json={"role_id": role_id, "secret_id": secret["secret_id"]}))
    assert login["auth"]["policies"] == ["default", "web"]


def test_login_auth_block(d: DevNode) -> None:
    ok(d.call("POST", "auth/approle/role/shape", json={
        "token_policies": "p1", "token_ttl": "10m", "token_max_ttl": "1h"}), 204)
    role_id = ok(d.call("GET", "auth/approle/role/shape/role-id"))["data"]["role_id"]
    sid = ok(d.call("POST", "auth/approle/role/shape/secret-id",
                    json={"metadata": '{"host": "web-1"}'}))["data"]["secret_id"]
    auth = ok(d.call("POST", "auth/approle/login", token="",
                     json={"role_id": role_id, "secret_id": sid}))["auth"]
    for key in ("client_token", "accessor", "policies", "token_policies", "metadata",
                "lease_duration", "renewable", "entity_id", "token_type", "orphan"):
        assert key in auth, key
    assert auth["metadata"] == {"host": "web-1", "role_name": "shape"}
    assert auth["lease_duration"] == 600 and auth["renewable"] is True
    assert auth["orphan"] is True and auth["token_type"] == "service"
    me = ok(d.call("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert me["path"] == "auth/approle/login" and me["meta"]["role_name"] == "shape"
    renewed = ok(d.call("POST", "auth/token/renew-self", token=auth["client_token"],
                        json={"increment": "30m"}))
    assert renewed["auth"]["lease_duration"] > 0


def test_wrapped_secret_id_unwraps_once(d: DevNode) -> None:
    ok(d.call("POST", "auth/approle/role/wrapped", json={}), 204)
    role_id = ok(d.call("GET", "auth/approle/role/wrapped/role-id"))["data"]["role_id"]
    wrapped = ok(d.call("POST", "auth/approle/role/wrapped/secret-id",
                        headers={"X-Vault-Wrap-TTL": "120"}))
    info = wrapped["wrap_info"]
    assert wrapped["data"] is None and info["ttl"] == 120
    assert info["creation_path"] == "auth/approle/role/wrapped/secret-id"
    looked = ok(d.call("POST", "auth/approle/role/wrapped/secret-id-accessor/lookup",
                       json={"secret_id_accessor": info["wrapped_accessor"]}))
    assert looked["data"]["secret_id_accessor"] == info["wrapped_accessor"]
    unwrapped = ok(d.call("POST", "sys/wrapping/unwrap", token=info["token"]))["data"]
    assert unwrapped["secret_id_accessor"] == info["wrapped_accessor"]
    again = d.call("POST", "sys/wrapping/unwrap", token=info["token"])
    assert again.status_code in (400, 403), again.text
    login = ok(d.call("POST", "auth/approle/login", token="",
                      json={"role_id": role_id, "secret_id": unwrapped["secret_id"]}))
    assert login["auth"]["metadata"] == {"role_name": "wrapped"}


def test_bad_logins_are_one_answer(d: DevNode) -> None:
    ok(d.call("POST", "auth/approle/role/quiet", json={}), 204)
    role_id = ok(d.call("GET", "auth/approle/role/quiet/role-id"))["data"]["role_id"]
    answers = set()
    for body in ({"role_id": role_id, "secret_id": "wrong"},
                 {"role_id": "no-such-role", "secret_id": "wrong"}):
        resp = d.call("POST", "auth/approle/login", token="", json=body)
        answers.add((resp.status_code, tuple(resp.json["errors"])))
    assert answers == {(400, ("invalid role or secret ID",))}


def test_empty_lists_are_404(d: DevNode) -> None:
    ok(d.call("POST", "auth/approle/role/empty", json={}), 204)
    assert d.call("LIST", "auth/approle/role/empty/secret-id").status_code == 404


def test_audit_log_holds_no_secret_id(tmp_path: Path) -> None:
    node = dev_node()
    log = tmp_path / "audit.log"
    ok(node.call("PUT", "sys/audit/file", json={
        "type": "file", "options": {"file_path": str(log)}}), 204)
    ok(node.call("POST", "sys/auth/approle", json={"type": "approle"}), 204)
    ok(node.call("POST", "auth/approle/role/audited", json={}), 204)
    role_id = ok(node.call("GET", "auth/approle/role/audited/role-id"))["data"]["role_id"]
    generated = ok(node.call("POST", "auth/approle/role/audited/secret-id"))["data"]
    custom = "custom-secret-in-the-request"
    ok(node.call("POST", "auth/approle/role/audited/custom-secret-id",
                 json={"secret_id": custom}))
    login = ok(node.call("POST", "auth/approle/login", token="",
                         json={"role_id": role_id, "secret_id": generated["secret_id"]}))
    d_bad = node.call("POST", "auth/approle/login", token="",
                      json={"role_id": role_id, "secret_id": "a-wrong-guess"})
    assert d_bad.status_code == 400
    text = log.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert any(e["request"]["path"] == "auth/approle/login" for e in entries)
    for secret in (generated["secret_id"], custom, "a-wrong-guess", role_id,
                   login["auth"]["client_token"]):
        assert secret not in text


def test_token_bound_cidrs_are_enforced_on_use(d: DevNode) -> None:
    ok(d.call("POST", "auth/approle/role/fenced-token", json={
        "token_bound_cidrs": "10.0.0.0/8"}), 204)
    role_id = ok(d.call("GET", "auth/approle/role/fenced-token/role-id"))["data"]["role_id"]
    sid = ok(d.call("POST", "auth/approle/role/fenced-token/secret-id"))["data"]["secret_id"]
    # The login itself is not bound (Vault): the token is, on every use.
    fenced = ok(d.call("POST", "auth/approle/login", token="",
                       json={"role_id": role_id, "secret_id": sid}))["auth"]["client_token"]
    assert d.call("GET", "auth/token/lookup-self", token=fenced).status_code == 403
    # A SecretID's own token_bound_cidrs (inside the role's) replace the role's.
    ok(d.call("POST", "auth/approle/role/local-token", json={
        "token_bound_cidrs": "127.0.0.0/8"}), 204)
    role2 = ok(d.call("GET", "auth/approle/role/local-token/role-id"))["data"]["role_id"]
    sid2 = ok(d.call("POST", "auth/approle/role/local-token/secret-id",
                     json={"token_bound_cidrs": "127.0.0.1/32"}))["data"]["secret_id"]
    token = ok(d.call("POST", "auth/approle/login", token="",
                      json={"role_id": role2, "secret_id": sid2}))["auth"]["client_token"]
    me = ok(d.call("GET", "auth/token/lookup-self", token=token))["data"]
    assert me["bound_cidrs"] == ["127.0.0.1"]
