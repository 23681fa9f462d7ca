"""userpass on a dev node: what the audit log keeps of a login (the password and the
token only as HMACs, the entity on the login's auth block and on every later request
of its token), a least-privilege administrator, and the login guard's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strongroom.auth.login_guard import FREE_FAILURES, _tables
from strongroom.core.request import Operation, Request
from strongroom.errors import LoginFailedError
from tests.support.nodes import DevNode, dev_node

ADMIN = 'path "auth/userpass/users/*" { capabilities = ["create", "update", "read"] }'


@pytest.fixture
def d(tmp_path: Path) -> DevNode:
    _tables.clear()  # a fresh failure table (the dev node has no lock directory)
    node = dev_node()
    assert node.call("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    assert node.call("POST", "auth/userpass/users/alice",
                     json={"password": "s3cret-pw", "token_policies": "p1"}).status_code == 204
    return node


def test_login_is_audited_without_secrets(d: DevNode, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    assert d.call("POST", "sys/audit/file", json={
        "type": "file", "options": {"file_path": str(log)}}).status_code == 204
    resp = d.client.simulate_post("/v1/auth/userpass/login/alice",
                                  json={"password": "s3cret-pw"})
    assert resp.status_code == 200
    auth = resp.json["auth"]
    token, entity = auth["client_token"], auth["entity_id"]
    d.client.simulate_get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    text = log.read_text()
    assert "s3cret-pw" not in text and token not in text
    entries = [json.loads(line) for line in text.splitlines()]
    login_req = next(e for e in entries if e["type"] == "request"
                     and e["request"]["path"] == "auth/userpass/login/alice")
    assert login_req["request"]["data"]["password"].startswith("hmac-sha256:")
    login_resp = next(e for e in entries if e["type"] == "response"
                      and e["request"]["path"] == "auth/userpass/login/alice")
    assert login_resp["response"]["auth"]["entity_id"] == entity
    assert login_resp["response"]["auth"]["entity_created"] is True  # the first login
    assert login_resp["response"]["auth"]["client_token"].startswith("hmac-sha256:")
    assert login_resp["response"]["auth"]["display_name"] == "userpass-alice"
    later = next(e for e in entries if e["type"] == "request"
                 and e["request"]["path"] == "auth/token/lookup-self")
    assert later["auth"]["entity_id"] == entity


def test_least_privilege_administrator(d: DevNode) -> None:
    assert d.call("PUT", "sys/policies/acl/up-admin", json={"policy": ADMIN}).status_code == 204
    made = d.call("POST", "auth/token/create", json={"policies": ["up-admin"]})
    token = made.json["auth"]["client_token"]
    assert d.call("POST", "auth/userpass/users/bob", token=token,
                  json={"password": "pw"}).status_code == 204
    assert d.call("GET", "auth/userpass/users/bob", token=token).status_code == 200
    assert d.call("LIST", "auth/userpass/users", token=token).status_code == 403
    assert d.call("DELETE", "auth/userpass/users/bob", token=token).status_code == 403
    # The administrator cannot grant what it could not do: root is refused at login.
    assert d.call("POST", "auth/userpass/users/bob", token=token,
                  json={"token_policies": "root"}).status_code == 204
    resp = d.client.simulate_post("/v1/auth/userpass/login/bob", json={"password": "pw"})
    assert resp.status_code == 400
    assert resp.json["errors"] == ["authentication methods cannot create root tokens"]


def test_guard_refuses_right_password_with_the_same_answer(d: DevNode) -> None:
    core = d.node.core
    for _ in range(FREE_FAILURES):
        resp = d.client.simulate_post("/v1/auth/userpass/login/alice",
                                      json={"password": "wrong"}, remote_addr="192.0.2.10")
        assert (resp.status_code, resp.json) == (400, {"errors": [
            "invalid username or password"]})

    def attempt(password: str, addr: str = "192.0.2.10") -> Request:
        return Request(Operation.UPDATE, "auth/userpass/login/alice",
                       data={"password": password}, remote_addr=addr)

    # Through the core (the WSGI front end would sleep the delay): the failure past
    # the free ones carries a delay; then the right password is refused alike.
    with pytest.raises(LoginFailedError) as err:
        core.handle(attempt("wrong"))
    assert err.value.delay == 1.0
    with pytest.raises(LoginFailedError) as err:
        core.handle(attempt("s3cret-pw"))
    assert err.value.message == "invalid username or password" and err.value.delay > 0
    # alice from elsewhere: her own count (4) backs her off too.
    with pytest.raises(LoginFailedError):
        core.handle(attempt("s3cret-pw", "192.0.2.11"))
