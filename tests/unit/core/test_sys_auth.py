"""sys/auth end to end on a dev node, with a test auth method registered by type (the
way issue 15's methods plug in): enable, list, read, tune, disable, and what the
router and the backend's lifecycle see. Answers are OpenBao 2.7's (checked against
``bao`` in tests/compat/test_sys_auth_vs_bao.py where bao can be asked)."""

from __future__ import annotations

import json

import pytest

from strongroom import registry
from strongroom.core.logical import SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path, PathBackend
from tests.support.nodes import DevNode, dev_node


class Method(PathBackend):
    made: list[Method] = []

    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self.cleanups = 0
        super().__init__([Path("login", {Operation.UPDATE: self._login}),
                          Path("store", {Operation.UPDATE: self._store})],
                         special_paths=SpecialPaths(unauthenticated=("login",)))
        Method.made.append(self)

    def _login(self, req: Request, data: FieldData, m: object) -> Response:
        return Response(data={"mount": self.ctx.mount.path, "accessor": self.ctx.mount.accessor})

    def _store(self, req: Request, data: FieldData, m: object) -> None:
        self.ctx.storage.put("x", b"1")

    def cleanup(self) -> None:
        self.cleanups += 1


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> DevNode:
    Method.made = []
    monkeypatch.setitem(registry.AUTH_METHODS, "testpass", Method)
    return dev_node()


def test_enable_list_read_route_and_disable(d: DevNode) -> None:
    resp = d.call("POST", "sys/auth/people", json={
        "type": "testpass", "description": "humans", "local": True,
        "config": {"default_lease_ttl": "1h", "listing_visibility": "unauth"}})
    assert resp.status_code == 204, resp.text
    listed = d.call("GET", "sys/auth").json["data"]
    assert sorted(listed) == ["people/", "token/"]
    people = listed["people/"]
    assert people["type"] == "testpass" and people["description"] == "humans"
    assert people["local"] is True and people["options"] == {}
    assert people["accessor"].startswith("auth_testpass_")
    assert people["config"] == {"default_lease_ttl": 3600, "max_lease_ttl": 0,
                                "force_no_cache": False, "listing_visibility": "unauth",
                                "token_type": "default-service"}
    assert d.call("GET", "sys/auth/people").json["data"] == people
    # Served at auth/<path>/ by the method registered for its type (no token needed here).
    login = d.client.simulate_post("/v1/auth/people/login")
    assert login.status_code == 200 and login.json["data"]["mount"] == "people/"
    assert d.call("POST", "auth/people/store").status_code == 204
    uuid = people["uuid"]
    assert d.node.core.barrier.list(f"auth/{uuid}/") == ["x"]
    # Listed to anonymous callers when tuned unauth, as secrets mounts are.
    ui = d.client.simulate_get("/v1/sys/internal/ui/mounts").json["data"]["auth"]
    assert ui == {"people/": {"type": "testpass", "description": "humans", "options": {}}}
    (backend,) = Method.made
    assert d.call("DELETE", "sys/auth/people").status_code == 204
    assert backend.cleanups == 1
    assert d.node.core.barrier.list(f"auth/{uuid}/") == []
    assert sorted(d.call("GET", "sys/auth").json["data"]) == ["token/"]
    gone = d.client.simulate_post("/v1/auth/people/login")
    assert gone.status_code == 403  # no route: only root learns it is not mounted
    assert d.call("POST", "auth/people/login").status_code == 404


def test_several_mounts_of_one_type_and_nested_paths(d: DevNode) -> None:
    for path in ("a/b", "c"):
        assert d.call("POST", f"sys/auth/{path}", json={"type": "testpass"}).status_code == 204
    clash = d.call("POST", "sys/auth/a", json={"type": "testpass"})
    assert clash.status_code == 400 and clash.json["errors"] == ["path is already in use at a/b/"]
    again = d.call("POST", "sys/auth/c", json={"type": "testpass"})
    assert again.json["errors"] == ["path is already in use at c/"]
    a, c = (d.client.simulate_post(f"/v1/auth/{p}/login").json["data"] for p in ("a/b", "c"))
    assert (a["mount"], c["mount"]) == ("a/b/", "c/") and a["accessor"] != c["accessor"]
    first = list(Method.made)
    # Enabling another method reloads only what changed: the others keep their instance.
    assert d.call("POST", "sys/auth/e", json={"type": "testpass"}).status_code == 204
    assert Method.made[:2] == first and all(m.cleanups == 0 for m in Method.made)


@pytest.mark.parametrize(("path", "body", "error"), [
    ("sys/auth/x", {"type": "github"}, "plugin not found in the catalog: github"),
    ("sys/auth/x", {"type": "kv"}, "plugin not found in the catalog: kv"),
    ("sys/auth/x", {}, "backend type must be specified as a string"),
    ("sys/auth/x", {"plugin_name": "testpass"}, "backend type must be specified as a string"),
    ("sys/auth/token", {"type": "token"}, "token credential backend cannot be instantiated"),
    ("sys/auth/tok2", {"type": "token"}, "token credential backend cannot be instantiated"),
    ("sys/auth/x", {"type": "testpass", "config": {"listing_visibility": "bogus"}},
     "invalid listing_visibility bogus"),
    ("sys/auth/x", {"type": "testpass", "config": {"default_lease_ttl": "bogus"}},
     'unable to parse default TTL of bogus: time: invalid duration "bogus"'),
    ("sys/auth/x", {"type": "testpass", "config": {"token_type": "bogus"}},
     "invalid value for 'token_type'"),
    ("sys/auth/x", {"type": "testpass", "options": {"version": "2"}},
     'auth method "testpass" does not allow setting a version'),
    ("sys/mounts/x", {"type": "testpass"}, "plugin not found in the catalog: testpass"),
])
def test_enable_refusals(d: DevNode, path: str, body: dict[str, object], error: str) -> None:
    resp = d.call("POST", path, json=body)
    assert (resp.status_code, resp.json["errors"]) == (400, [error])
    assert sorted(d.call("GET", "sys/auth").json["data"]) == ["token/"]


def test_token_method_stays(d: DevNode) -> None:
    resp = d.call("DELETE", "sys/auth/token")
    assert (resp.status_code, resp.json["errors"]) == (
        400, ["token credential backend cannot be disabled"])
    assert d.call("DELETE", "sys/auth/nothere").status_code == 204
    missing = d.call("GET", "sys/auth/nothere")
    assert (missing.status_code, missing.json["errors"]) == (400, ["No auth engine at nothere/"])
    assert d.call("GET", "auth/token/lookup-self").status_code == 200


def test_tune(d: DevNode) -> None:
    d.call("POST", "sys/auth/people", json={"type": "testpass"})
    (backend,) = Method.made
    assert d.call("POST", "sys/auth/people/tune", json={
        "max_lease_ttl": "2h", "description": "new", "token_type": "default-batch",
        "options": {"x": "y"}}).status_code == 204
    tune = d.call("GET", "sys/auth/people/tune").json["data"]
    assert tune == {"description": "new", "default_lease_ttl": 768 * 3600,
                    "max_lease_ttl": 7200, "force_no_cache": False,
                    "token_type": "default-batch", "options": {"x": "y"}}
    listed = d.call("GET", "sys/auth").json["data"]["people/"]
    assert listed["config"]["token_type"] == "default-batch"
    # Options changed, so the backend was rebuilt; the old one was cleaned up.
    assert backend.cleanups == 1 and len(Method.made) == 2
    assert d.call("POST", "sys/auth/people/tune", json={"description": "again"}).status_code == 204
    assert len(Method.made) == 2 and Method.made[1].cleanups == 0  # a tune keeps it
    for body, error in [
        ({"token_type": "bogus"}, "invalid value for 'token_type'"),
        ({"default_lease_ttl": "3h"}, "backend max lease TTL of 7200 would be less than "
                                      "backend default lease TTL of 10800"),
        ({"listing_visibility": "bad"}, "invalid listing_visibility bad"),
    ]:
        resp = d.call("POST", "sys/auth/people/tune", json=body)
        assert (resp.status_code, resp.json["errors"]) == (400, [error])
    resp = d.call("POST", "sys/auth/token/tune", json={"token_type": "batch"})
    assert resp.json["errors"] == ["'token_type' cannot be set for 'token' or 'ns_token' "
                                   "auth mounts"]
    resp = d.call("POST", "sys/mounts/secret/tune", json={"token_type": "batch"})
    assert resp.json["errors"] == ["'token_type' can only be modified on auth mounts"]
    resp = d.call("GET", "sys/auth/nothere/tune")
    assert resp.json["errors"] == ['cannot fetch sysview for path "auth/nothere/"']
    resp = d.call("POST", "sys/auth/nothere/tune", json={"description": "x"})
    assert resp.json["errors"] == ['tune of path "auth/nothere/" failed: no mount entry found']


def test_sys_auth_needs_sudo(d: DevNode) -> None:
    d.call("PUT", "sys/policies/acl/auth-admin", json={
        "policy": 'path "sys/auth/*" { capabilities = ["create", "update", "read", "delete"] }'
                  '\npath "sys/auth" { capabilities = ["read"] }'})
    token = d.call("POST", "auth/token/create",
                   json={"policies": ["auth-admin"]}).json["auth"]["client_token"]
    assert d.call("GET", "sys/auth", token=token).status_code == 200
    denied = d.call("POST", "sys/auth/people", token=token, json={"type": "testpass"})
    assert denied.status_code == 403 and Method.made == []


def test_old_token_tuning_survives_the_upgrade(d: DevNode) -> None:
    """Storage written before issue 11: core/auth held only the token tunables."""
    assert d.call("GET", "sys/auth").status_code == 200  # this worker has opened its barrier
    barrier = d.node.core.barrier
    barrier.put("core/auth", json.dumps({"token/": {"listing_visibility": "unauth"}}).encode())
    d.node.core.mounts.load()
    assert d.call("GET", "sys/auth").json["data"]["token/"]["config"]["listing_visibility"] \
        == "unauth"
    assert d.call("GET", "sys/auth/token/tune").json["data"]["listing_visibility"] == "unauth"
    assert d.call("POST", "sys/auth/token/tune",
                  json={"listing_visibility": ""}).status_code == 204
    assert "listing_visibility" not in d.call("GET", "sys/auth/token/tune").json["data"]
    assert isinstance(json.loads(barrier.get("core/auth") or b""), list)


def test_remount_moves_an_auth_method_within_the_auth_table(d: DevNode) -> None:
    d.call("POST", "sys/auth/people", json={"type": "testpass"})
    d.call("POST", "auth/people/store")
    uuid = d.call("GET", "sys/auth/people").json["data"]["uuid"]
    for body, error in [
        ({"from": "auth/people", "to": "secret2"},
         'cannot remount auth mount to non-auth mount "secret2/"'),
        ({"from": "auth/token", "to": "auth/tok2"}, 'cannot remount "auth/token/"'),
        ({"from": "secret", "to": "auth/sec"}, "cannot remount to destination auth/sec/"),
        ({"from": "auth/nothere", "to": "auth/x"}, 'no matching mount at "auth/nothere/"'),
    ]:
        resp = d.call("POST", "sys/remount", json=body)
        assert (resp.status_code, resp.json["errors"]) == (400, [error])
    moved = d.call("POST", "sys/remount", json={"from": "auth/people", "to": "auth/humans"})
    assert moved.status_code == 200 and moved.json["data"]["migration_id"]
    listed = d.call("GET", "sys/auth").json["data"]
    assert sorted(listed) == ["humans/", "token/"] and listed["humans/"]["uuid"] == uuid
    login = d.client.simulate_post("/v1/auth/humans/login")
    assert login.json["data"]["mount"] == "humans/"
    assert d.node.core.barrier.list(f"auth/{uuid}/") == ["x"]  # the data stayed


def test_disabling_a_method_revokes_what_it_issued(d: DevNode) -> None:
    from strongroom.core.expiration import token_lease
    from strongroom.core.tokens import TokenEntry, generate_accessor

    d.call("POST", "sys/auth/people", json={"type": "testpass"})
    d.call("POST", "sys/auth/people2", json={"type": "testpass"})
    core = d.node.core
    now = core.now()

    def issued(path: str) -> str:
        entry = TokenEntry(accessor=generate_accessor(), policies=["default"], path=path,
                           creation_time=now)
        token = core.tokens.create(entry)
        # Its lease, as the login stage registers it (tokens are leases since issue 12;
        # a method's disable revokes the leases under its path).
        core.expiration.store.put(token_lease(entry))
        return token

    mine, neighbour = issued("auth/people/login/alice"), issued("auth/people2/login/bob")
    assert d.call("GET", "auth/token/lookup-self", token=mine).status_code == 200
    assert d.call("DELETE", "sys/auth/people").status_code == 204
    assert d.call("GET", "auth/token/lookup-self", token=mine).status_code == 403
    assert d.call("GET", "auth/token/lookup-self", token=neighbour).status_code == 200
