"""ACL enforcement end to end, policy endpoints, mounts, cubbyhole and wrapping."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.nodes import DevNode, dev_node

APP_POLICY = """
path "secret/data/app/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/app/locked" {
  capabilities = ["deny"]
}
path "sys/mounts" {
  capabilities = ["read"]
}
"""


@pytest.fixture
def d() -> DevNode:
    return dev_node()


def token_with(d: DevNode, *policies: str, **extra: Any) -> str:
    resp = d.call("POST", "auth/token/create", json={"policies": list(policies), **extra})
    assert resp.status_code == 200, resp.text
    return resp.json["auth"]["client_token"]  # type: ignore[no-any-return]


def test_policy_crud_and_listing(d: DevNode) -> None:
    assert d.call("PUT", "sys/policy/app", json={"policy": APP_POLICY}).status_code == 204
    listed = d.call("GET", "sys/policy").json
    assert listed["policies"] == ["app", "default", "root"] and listed["data"]["keys"]
    read = d.call("GET", "sys/policy/app").json
    assert read["rules"] == APP_POLICY and read["data"]["name"] == "app"
    acl = d.call("GET", "sys/policies/acl/app").json["data"]
    assert acl == {"name": "app", "policy": APP_POLICY}
    assert d.call("LIST", "sys/policies/acl").json["data"]["keys"] == ["app", "default", "root"]
    assert d.call("DELETE", "sys/policies/acl/app").status_code == 204
    assert d.call("GET", "sys/policies/acl/app").status_code == 404


@pytest.mark.parametrize("text", [
    'path "x" { capabilities = ["fly"] }',
    'path "x" { capabilities = ["read"]',
    "not hcl at all {",
])
def test_invalid_policies_change_nothing(d: DevNode, text: str) -> None:
    d.call("PUT", "sys/policy/app", json={"policy": APP_POLICY})
    resp = d.call("PUT", "sys/policy/app", json={"policy": text})
    assert resp.status_code == 400 and resp.json["errors"]
    assert d.call("GET", "sys/policy/app").json["rules"] == APP_POLICY


def test_builtin_policies_are_protected(d: DevNode) -> None:
    assert d.call("DELETE", "sys/policy/default").status_code == 400
    assert d.call("DELETE", "sys/policy/root").status_code == 400
    assert d.call("PUT", "sys/policy/root", json={"policy": APP_POLICY}).status_code == 400


def test_deny_by_default_and_capabilities(d: DevNode) -> None:
    d.call("PUT", "sys/policy/app", json={"policy": APP_POLICY})
    token = token_with(d, "app")
    caps = d.call("POST", "sys/capabilities-self", token=token,
                  json={"paths": ["secret/data/app/x"]}).json
    assert caps["capabilities"] == ["create", "read", "update"]
    locked = d.call("POST", "sys/capabilities", json={"token": token,
                                                      "path": "secret/data/app/locked"})
    assert locked.json["capabilities"] == ["deny"]
    assert d.call("GET", "sys/mounts", token=token).status_code == 200
    assert d.call("GET", "sys/policy", token=token).status_code == 403
    assert d.call("PUT", "sys/policy/x", token=token, json={"policy": APP_POLICY}).status_code \
        == 403
    assert d.call("PUT", "sys/seal", token=token).status_code == 403
    assert d.call("GET", "sys/seal-status").json["sealed"] is False


def test_policy_change_reaches_existing_tokens(d: DevNode) -> None:
    d.call("PUT", "sys/policy/app", json={"policy": 'path "sys/mounts" { capabilities = [] }'})
    token = token_with(d, "app")
    assert d.call("GET", "sys/mounts", token=token).status_code == 403
    d.call("PUT", "sys/policy/app", json={"policy": APP_POLICY})
    assert d.call("GET", "sys/mounts", token=token).status_code == 200


def test_mounts_enable_tune_remount_disable(d: DevNode) -> None:
    assert d.call("POST", "sys/mounts/kv1", json={"type": "kv", "description": "v1"}) \
        .status_code == 204
    mounts = d.call("GET", "sys/mounts").json["data"]
    assert mounts["kv1/"]["type"] == "kv" and mounts["kv1/"]["description"] == "v1"
    assert "cubbyhole/" in mounts and "sys/" in mounts
    assert d.call("POST", "sys/mounts/kv1/tune", json={"max_lease_ttl": "2h",
                                                       "default_lease_ttl": "1h"}).status_code \
        == 204
    tune = d.call("GET", "sys/mounts/kv1/tune").json["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (3600, 7200)
    assert d.call("POST", "sys/remount", json={"from": "kv1", "to": "kv2"}).status_code == 200
    assert "kv2/" in d.call("GET", "sys/mounts").json["data"]
    assert d.call("DELETE", "sys/mounts/kv2").status_code == 204
    assert "kv2/" not in d.call("GET", "sys/mounts").json["data"]


@pytest.mark.parametrize(("path", "body"), [
    ("sys/mounts/secret", {"type": "kv"}),
    ("sys/mounts/a/../b", {"type": "kv"}),
    ("sys/mounts/sys", {"type": "kv"}),
    ("sys/mounts/new", {"type": "no-such-engine"}),
    ("sys/mounts/new", {}),
])
def test_bad_mounts_change_nothing(d: DevNode, path: str, body: dict[str, Any]) -> None:
    before = d.call("GET", "sys/mounts").json["data"]
    resp = d.call("POST", path, json=body)
    assert 400 <= resp.status_code < 500
    assert d.call("GET", "sys/mounts").json["data"] == before


def test_ui_mounts_reports_kv_version(d: DevNode) -> None:
    data = d.call("GET", "sys/internal/ui/mounts/secret/foo").json["data"]
    assert data["type"] == "kv" and data["options"] == {"version": "2"}
    assert data["path"] == "secret/"


def test_cubbyhole_is_private_and_dies_with_token(d: DevNode) -> None:
    a, b = token_with(d, "default"), token_with(d, "default")
    assert d.call("POST", "cubbyhole/x", token=a, json={"v": "1"}).status_code == 204
    assert d.call("GET", "cubbyhole/x", token=a).json["data"] == {"v": "1"}
    assert d.call("GET", "cubbyhole/x", token=b).status_code == 404
    assert d.call("LIST", "cubbyhole", token=a).json["data"]["keys"] == ["x"]
    d.call("POST", "cubbyhole/y", token=b, json={"v": "2"})
    cubby = next(e for e in d.node.core.router.entries() if e.type == "cubbyhole")
    owners = d.node.core.barrier.list(f"logical/{cubby.uuid}/")
    hash_a = d.node.core.tokens.salted(a) + "/"
    assert hash_a in owners
    d.call("POST", "auth/token/revoke", json={"token": a})
    remaining = d.node.core.barrier.list(f"logical/{cubby.uuid}/")
    assert hash_a not in remaining and len(remaining) == 1


def test_wrapping_round_trip_single_use(d: DevNode) -> None:
    resp = d.call("POST", "sys/wrapping/wrap", json={"k": "v"}, headers={"X-Vault-Wrap-TTL": "60"})
    info = resp.json["wrap_info"]
    assert info["ttl"] == 60 and info["creation_path"] == "sys/wrapping/wrap"
    look = d.call("POST", "sys/wrapping/lookup", token="", json={"token": info["token"]})
    assert look.status_code == 200 and look.json["data"]["creation_ttl"] == 60
    out = d.call("POST", "sys/wrapping/unwrap", token=info["token"])
    assert out.status_code == 200 and out.json["data"] == {"k": "v"}
    again = d.call("POST", "sys/wrapping/unwrap", token=info["token"])
    assert again.status_code in (400, 403)


def test_wrap_any_response_and_rewrap(d: DevNode) -> None:
    resp = d.call("GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": "5m"})
    token = resp.json["wrap_info"]["token"]
    assert resp.json["data"] is None
    new = d.call("POST", "sys/wrapping/rewrap", json={"token": token}).json["wrap_info"]
    assert d.call("POST", "sys/wrapping/unwrap", json={"token": token}).status_code == 400
    data = d.call("POST", "sys/wrapping/unwrap", json={"token": new["token"]}).json["data"]
    assert data["id"] == "root"
    bad = d.call("GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": "abc"})
    assert bad.status_code == 400


def test_policy_forced_wrapping(d: DevNode) -> None:
    d.call("PUT", "sys/policy/wrapped", json={"policy": """
path "auth/token/lookup-self" {
  capabilities = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "10m"
}"""})
    token = token_with(d, "wrapped", no_default_policy=True)
    # Vault refuses unwrapped or out-of-bounds requests as a plain permission denial.
    assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 403
    too_long = d.call("GET", "auth/token/lookup-self", token=token,
                      headers={"X-Vault-Wrap-TTL": "1h"})
    assert too_long.status_code == 403
    ok = d.call("GET", "auth/token/lookup-self", token=token, headers={"X-Vault-Wrap-TTL": "5m"})
    assert ok.status_code == 200 and ok.json["wrap_info"]["ttl"] == 300


def test_tune_ttl_strings_follow_vault(d: DevNode) -> None:
    d.call("POST", "sys/mounts/kv1", json={"type": "kv", "config": {"max_lease_ttl": "2h"}})
    assert d.call("POST", "sys/mounts/kv1/tune", json={"default_lease_ttl": "1h",
                                                       "max_lease_ttl": ""}).status_code == 204
    tune = d.call("GET", "sys/mounts/kv1/tune").json["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (3600, 7200)
    d.call("POST", "sys/mounts/kv1/tune", json={"default_lease_ttl": "system"})
    assert d.call("GET", "sys/mounts/kv1/tune").json["data"]["default_lease_ttl"] == 768 * 3600
    bad = d.call("POST", "sys/mounts/kv1/tune", json={"max_lease_ttl": "soon"})
    assert bad.status_code == 400
    assert d.call("GET", "sys/mounts/kv1/tune").json["data"]["max_lease_ttl"] == 7200
