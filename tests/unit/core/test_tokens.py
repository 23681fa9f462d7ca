"""auth/token/*: creation rules, expiry, use counts, trees, accessors, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.core.tokens import root_token_entry
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
    assert d.call("POST", "auth/token/lookup", json={"token": token}).status_code == 403


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


# -- Vault parity (differential findings against OpenBao / Vault's token store) --------

CREATOR = 'path "auth/token/create" { capabilities = ["update"] }'


def creator_token(d: DevNode, **body: Any) -> str:
    d.call("PUT", "sys/policy/creator", json={"policy": CREATOR})
    return str(create(d, policies=["creator"], **body)["client_token"])


def at(d: DevNode, moment: datetime) -> None:
    d.node.core.clock = lambda: moment


def test_auth_omits_empty_identity_and_token_policies(d: DevNode) -> None:
    auth = create(d, policies=["default"])
    assert "identity_policies" not in auth and auth["token_policies"] == ["default"]
    bare = create(d, policies=["default"], no_default_policy=True)
    assert bare["policies"] == [] and "token_policies" not in bare


def test_times_are_rfc3339_utc_with_fraction(d: DevNode) -> None:
    at(d, datetime(2026, 11, 28, 19, 14, 5, 518739, tzinfo=UTC))
    token = create(d, policies=["default"], ttl="1h")["client_token"]
    data = lookup_self(d, token).json["data"]
    assert data["issue_time"] == "2026-11-28T19:14:05.518739Z"
    assert data["expire_time"] == "2026-11-28T20:14:05.518739Z"
    at(d, datetime(2026, 11, 28, 19, 14, 5, 120000, tzinfo=UTC))
    token = create(d, policies=["default"], ttl="1h")["client_token"]
    assert lookup_self(d, token).json["data"]["issue_time"] == "2026-11-28T19:14:05.12Z"


def test_root_token_shape_follows_how_it_was_made() -> None:
    # `-dev-root-token-id`: Vault makes it through auth/token/create.
    data = lookup_self(dev_node("root"), "root").json["data"]
    assert (data["path"], data["display_name"], data["orphan"]) == (
        "auth/token/create", "token", True)
    # `operator init` (and a generated id): Vault's tokenStore.rootToken().
    generated = dev_node("hvs.generatedRootTokenId123")
    data = lookup_self(generated, generated.root_token).json["data"]
    assert (data["path"], data["display_name"]) == ("auth/token/root", "root")
    entry = root_token_entry(datetime.now(UTC))
    assert (entry.path, entry.display_name) == ("auth/token/root", "root")


def test_lookup_of_a_bad_token_is_403_and_no_token_means_self(d: DevNode) -> None:
    bad = d.call("POST", "auth/token/lookup", json={"token": "hvs.nonsense"})
    assert bad.status_code == 403 and bad.json["errors"] == ["bad token"]
    me = d.call("POST", "auth/token/lookup", json={})
    assert me.status_code == 200 and me.json["data"]["id"] == "root"
    assert d.call("POST", "auth/token/revoke", json={}).json["errors"] == ["missing token ID"]
    gone = d.call("GET", "auth/token/lookup/hvs.nonsense")  # no token-in-URL variants
    assert gone.status_code == 404 and "unsupported path" in gone.json["errors"][0]


def test_accessor_errors_and_unknown_revoke_warns(d: DevNode) -> None:
    resp = d.call("POST", "auth/token/revoke-accessor", json={"accessor": "no-such-accessor"})
    assert resp.status_code == 200
    assert resp.json["warnings"] == ["No token found with this accessor"]
    assert resp.json["data"] is None
    bad = d.call("POST", "auth/token/lookup-accessor", json={"accessor": "nope"})
    assert bad.json["errors"] == ["1 error occurred:\n\t* invalid accessor\n\n"]


def test_list_accessors_in_clear_and_revocation_removes_them(d: DevNode) -> None:
    auth = create(d, policies=["default"])
    keys = d.call("LIST", "auth/token/accessors").json["data"]["keys"]
    root_accessor = lookup_self(d, "root").json["data"]["accessor"]
    assert sorted(keys) == sorted([auth["accessor"], root_accessor])
    assert d.call("LIST", "auth/token/accessors", token=auth["client_token"]).status_code == 403
    d.call("POST", "auth/token/revoke", json={"token": auth["client_token"]})
    assert d.call("LIST", "auth/token/accessors").json["data"]["keys"] == [root_accessor]
    # An index entry in the older format (the token hash alone) still lists.
    store = d.node.core.tokens
    entry = store.lookup("root", d.node.core.now())
    assert entry is not None
    store._storage.put("accessor/" + store.salted(entry.accessor), entry.hash.encode())
    assert store.accessors() == [root_accessor]


def test_batch_tokens(d: DevNode) -> None:
    lookup_self(d, "root")  # the in-process core unseals on its first request
    before = len(d.node.core.tokens._storage.list("id/"))
    auth = create(d, policies=["default"], type="batch", ttl="10m")
    token = auth["client_token"]
    assert token.startswith("hvb.") and auth["accessor"] == "" and auth["token_type"] == "batch"
    assert auth["renewable"] is False and auth["orphan"] is False and auth["lease_duration"] == 600
    assert len(d.node.core.tokens._storage.list("id/")) == before  # nothing stored
    data = lookup_self(d, token).json["data"]
    assert data["type"] == "batch" and data["id"] == token and data["accessor"] == ""
    for path in ("renew-self", "revoke-self"):
        assert d.call("POST", f"auth/token/{path}", token=token).status_code == 400
    assert d.call("POST", "auth/token/revoke", json={"token": token}).json["errors"] == [
        "batch tokens cannot be revoked"]
    assert lookup_self(d, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")).status_code == 403
    for body, error in (({"num_uses": 2}, 'batch tokens cannot have "num_uses" set'),
                        ({"period": "1h"}, 'batch tokens cannot have "period" set'),
                        ({"policies": ["root"]}, "batch tokens cannot be root tokens"),
                        ({"type": "default"}, "invalid 'token_type' value")):
        resp = d.call("POST", "auth/token/create", json={"type": "batch", **body})
        assert resp.json["errors"] == [error]


def test_batch_token_dies_with_ttl_and_parent(d: DevNode) -> None:
    parent = creator_token(d)
    batch = create(d, parent, policies=["creator"], type="batch", ttl="1m")["client_token"]
    assert d.call("POST", "auth/token/create", token=batch, json={}).json["errors"] == [
        "batch tokens cannot create more tokens"]
    assert lookup_self(d, batch).status_code == 200
    d.call("POST", "auth/token/revoke", json={"token": parent})
    assert lookup_self(d, batch).status_code == 403
    short = create(d, policies=["default"], type="batch", ttl="1m")["client_token"]
    at(d, datetime.now(UTC) + timedelta(minutes=2))
    assert lookup_self(d, short).status_code == 403


def test_create_orphan_path_and_display_name(d: DevNode) -> None:
    token = d.call("POST", "auth/token/create-orphan",
                   json={"display_name": "a b-"}).json["auth"]["client_token"]
    data = lookup_self(d, token).json["data"]
    assert data["path"] == "auth/token/create-orphan" and data["display_name"] == "token-a-b"


def test_restricted_use_token_cannot_create_children(d: DevNode) -> None:
    limited = creator_token(d, num_uses=3)
    resp = d.call("POST", "auth/token/create", token=limited, json={"policies": ["default"]})
    assert resp.status_code == 400
    assert resp.json["errors"] == ["restricted use token cannot generate child tokens"]


def test_renew_reports_the_creation_use_count(d: DevNode) -> None:
    token = create(d, policies=["default"], num_uses=5, ttl="1h")["client_token"]
    assert lookup_self(d, token).json["data"]["num_uses"] == 4
    renewed = d.call("POST", "auth/token/renew-self", token=token, json={"increment": "30m"})
    assert renewed.json["auth"]["num_uses"] == 5 and renewed.json["auth"]["lease_duration"] == 1800
    data = d.call("POST", "auth/token/lookup", json={"token": token}).json["data"]
    assert data["num_uses"] == 3 and "last_renewal_time" in data
    last = create(d, policies=["default"], num_uses=1)["client_token"]
    assert d.call("POST", "auth/token/renew-self", token=last).json["errors"] == [
        "token not found"]


def test_role_read_shape_and_missing_role_404(d: DevNode) -> None:
    d.call("POST", "auth/token/roles/r1", json={
        "allowed_policies": ["default", "hv-rp"], "disallowed_policies": ["root"],
        "orphan": True, "path_suffix": "sfx", "token_period": "1h"})
    assert d.call("GET", "auth/token/roles/r1").json["data"] == {
        "allowed_entity_aliases": None, "allowed_policies": ["default", "hv-rp"],
        "allowed_policies_glob": [], "disallowed_policies": ["root"],
        "disallowed_policies_glob": [], "explicit_max_ttl": 0, "name": "r1", "orphan": True,
        "path_suffix": "sfx", "period": 0, "renewable": True, "token_explicit_max_ttl": 0,
        "token_no_default_policy": False, "token_period": 3600, "token_type": "default-service"}
    d.call("POST", "auth/token/roles/r2", json={"period": "2h", "explicit_max_ttl": "3h"})
    legacy = d.call("GET", "auth/token/roles/r2").json["data"]
    assert (legacy["period"], legacy["token_period"]) == (7200, 7200)
    assert (legacy["explicit_max_ttl"], legacy["token_explicit_max_ttl"]) == (10800, 10800)
    assert legacy["path_suffix"] == ""
    d.call("DELETE", "auth/token/roles/r2")
    missing = d.call("GET", "auth/token/roles/r2")
    assert missing.status_code == 404 and missing.json["errors"] == []
    both = d.call("POST", "auth/token/roles/r3", json={"token_period": "1h", "period": "2h"})
    assert both.status_code == 200 and "ignoring the deprecated value" in both.json["warnings"][0]
    bad = d.call("POST", "auth/token/roles/r3", json={"path_suffix": "v1..2"})
    assert bad.json["errors"] == ["error registering path suffix: path cannot contain parent "
                                  "references"]
    assert d.call("POST", "auth/token/roles/r4", json={"token_type": "batch"}).json["errors"] == [
        "'token_type' cannot be 'batch' when role is set to generate non-orphan tokens"]


def test_role_tokens_path_suffix_period_and_policy_errors(d: DevNode) -> None:
    d.call("POST", "auth/token/roles/r1", json={
        "allowed_policies": ["default", "hv-rp"], "orphan": True, "path_suffix": "sfx",
        "token_period": "1h"})
    made = d.call("POST", "auth/token/create/r1", json={"policies": ["hv-rp"]}).json
    assert made["warnings"] == ['Policy "hv-rp" does not exist']
    assert made["auth"]["policies"] == ["default", "hv-rp"]
    assert made["auth"]["lease_duration"] == 3600 and made["auth"]["orphan"] is True
    data = lookup_self(d, made["auth"]["client_token"]).json["data"]
    assert data["path"] == "auth/token/create/r1/sfx" and data["role"] == "r1"
    assert "period" not in data  # the role's period is not the token's own
    renewed = d.call("POST", "auth/token/renew", json={"token": made["auth"]["client_token"],
                                                        "increment": "5h"})
    assert renewed.json["auth"]["lease_duration"] == 3600
    denied = d.call("POST", "auth/token/create/r1", json={"policies": ["other"]})
    assert denied.json["errors"] == [
        'token policies (["default" "other"]) must be subset of the role\'s allowed policies '
        '(["default" "hv-rp"]) or glob policies ([])']
    d.call("POST", "auth/token/roles/r2", json={"disallowed_policies_glob": "ab*"})
    assert d.call("POST", "auth/token/create/r2", json={"policies": ["abc"]}).json[
        "errors"] == ['token policy "abc" is disallowed by this role']
    assert d.call("POST", "auth/token/create/nope", json={}).json["errors"] == ["unknown role nope"]


def test_create_warnings_and_custom_ids(d: DevNode) -> None:
    resp = d.call("POST", "auth/token/create", json={
        "policies": ["default", "nosuch"], "ttl": "1h", "explicit_max_ttl": "30m"})
    assert resp.json["auth"]["lease_duration"] == 1800
    assert resp.json["warnings"] == [
        'TTL of "1h" exceeded the effective max_ttl of "30m"; TTL value is capped accordingly',
        'Policy "nosuch" does not exist']
    for token_id, error in (("hvs.abc", "custom token ID cannot have the 'hvs.' prefix"),
                            ("s.abc", "custom token ID cannot have the 's.' prefix"),
                            ("a.b", "custom token ID cannot have a '.' in the value"),
                            ("root", "cannot create a token with a duplicate ID")):
        resp = d.call("POST", "auth/token/create", json={"id": token_id})
        assert resp.json["errors"] == [error]
    assert lookup_self(d, "root").json["data"]["policies"] == ["root"]


def test_child_outlives_parent_ttl_but_not_the_parent(d: DevNode) -> None:
    start = datetime.now(UTC)
    parent = creator_token(d, ttl="1m")
    child = create(d, parent, policies=["default"], ttl="1h")
    assert child["lease_duration"] == 3600  # Vault does not cap it at the parent's TTL
    renewed_parent = creator_token(d, ttl="1m")
    kept = create(d, renewed_parent, policies=["default"], ttl="1h")["client_token"]
    at(d, start + timedelta(seconds=50))
    d.call("POST", "auth/token/renew-self", token=renewed_parent, json={"increment": "10m"})
    at(d, start + timedelta(minutes=2))
    assert lookup_self(d, child["client_token"]).status_code == 403  # parent expired
    assert lookup_self(d, kept).status_code == 200  # parent renewed: child lives on
    at(d, start + timedelta(minutes=20))
    assert lookup_self(d, kept).status_code == 403


def test_revoke_prefix_of_token_leases_takes_the_prefix_as_a_directory(d: DevNode) -> None:
    d.call("POST", "auth/token/roles/ci", json={"path_suffix": "ver1"})
    role_token = d.call("POST", "auth/token/create/ci", json={}).json["auth"]["client_token"]
    plain = create(d, policies=["default"])["client_token"]
    orphan = d.call("POST", "auth/token/create-orphan", json={}).json["auth"]["client_token"]

    def revoke_prefix(prefix: str) -> None:
        assert d.call("PUT", "sys/leases/revoke-prefix/" + prefix).status_code == 204

    revoke_prefix("auth/token/create/ci/ve")  # directories, not strings
    assert lookup_self(d, role_token).status_code == 200
    revoke_prefix("auth/token/create/ci")
    assert lookup_self(d, role_token).status_code == 403
    revoke_prefix("auth/token/create")
    assert lookup_self(d, plain).status_code == 403
    assert lookup_self(d, orphan).status_code == 200
