"""Values captured from the URL win over body fields, end to end (issue 11, point 4).

The ACL decides on the URL. Before issue 11 the framework merged the body over the
captures, so a least-privilege token allowed to write one policy (or token role) could
name another one in the body and write that instead.
"""

from __future__ import annotations

from tests.support.nodes import DevNode, dev_node

POLICY_TEXT = 'path "secret/data/x" {\n  capabilities = ["read"]\n}\n'


def _limited_token(d: DevNode, rules: str) -> str:
    assert d.call("POST", "sys/policies/acl/limited", json={"policy": rules}).status_code == 204
    resp = d.call("POST", "auth/token/create", json={"policies": ["limited"]})
    assert resp.status_code == 200, resp.text
    token: str = resp.json["auth"]["client_token"]
    return token


def test_a_body_name_cannot_redirect_a_policy_write() -> None:
    d = dev_node()
    token = _limited_token(d, 'path "sys/policies/acl/allowed" {\n'
                              '  capabilities = ["create", "update"]\n}\n')
    resp = d.call("POST", "sys/policies/acl/allowed", token=token,
                  json={"name": "other", "policy": POLICY_TEXT})
    assert resp.status_code == 204, resp.text
    assert d.call("GET", "sys/policies/acl/other").status_code == 404
    written = d.call("GET", "sys/policies/acl/allowed")
    assert written.status_code == 200 and written.json["data"]["policy"] == POLICY_TEXT
    # The ACL itself still refuses the other name in the URL.
    denied = d.call("POST", "sys/policies/acl/other", token=token, json={"policy": POLICY_TEXT})
    assert denied.status_code == 403
    assert d.call("GET", "sys/policies/acl/other").status_code == 404


def test_a_body_role_name_cannot_redirect_a_token_role_write() -> None:
    d = dev_node()
    token = _limited_token(d, 'path "auth/token/roles/allowed" {\n'
                              '  capabilities = ["create", "update"]\n}\n')
    resp = d.call("POST", "auth/token/roles/allowed", token=token,
                  json={"role_name": "other", "orphan": True})
    assert resp.status_code in (200, 204), resp.text
    assert d.call("GET", "auth/token/roles/other").status_code == 404
    role = d.call("GET", "auth/token/roles/allowed")
    assert role.status_code == 200 and role.json["data"]["orphan"] is True
    assert role.json["data"]["name"] == "allowed"


def test_a_body_path_cannot_redirect_a_kv_v2_write() -> None:
    d = dev_node()
    token = _limited_token(d, 'path "secret/data/allowed" {\n'
                              '  capabilities = ["create", "update"]\n}\n')
    resp = d.call("POST", "secret/data/allowed", token=token,
                  json={"path": "other", "data": {"k": "v"}})
    assert resp.status_code == 200, resp.text
    assert d.call("GET", "secret/data/other").status_code == 404
    assert d.call("GET", "secret/data/allowed").json["data"]["data"] == {"k": "v"}
