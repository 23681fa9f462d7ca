"""userpass through hvac (``auth.userpass``) and raw HTTP: Strongroom vs OpenBao 2.7.

One ``strongroom server -dev`` and one ``bao server -dev`` for the module; each test
runs one scenario against both and compares the records (hvac's outcome and answer
shape, selected values, error texts). Covered: users CRUD and LIST, the deprecated
fields, password and policies updates, bcrypt ``password_hash``, bad inputs, logins
(the auth block, case-insensitive names, bad credentials), the login token (lookup,
entity and the default policy's templated read of it, renewal, renewal refused once
the policies changed, not renewed once the user is gone), token ``bound_cidrs``
enforced on use (requests from 127.0.0.2), a batch-token user, identity reads, and a
least-privilege administrator token.

Deliberate difference (asserted apart, README "Auth methods"): a right password from
outside a user's ``token_bound_cidrs`` is OpenBao's 403 "permission denied" (which
confirms the password) and Strongroom's 400 "invalid username or password".

Failed logins are sent from their own loopback addresses (127.0.0.x): Strongroom's
login guard slows a client after a few failures, which the scenario is not about
(tests/integration/test_login_guard.py is).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import hvac
import pytest

from tests.compat.test_hvac_api import Recorder, compare
from tests.support import requires
from tests.support.servers import bao_dev_server, strongroom_dev_server

ROOT = "root"
# A bcrypt hash (cost 5, the lowest Vault accepts) of "hashed-pw".
HASH_COST_5 = "$2b$05$O5eODn0031GOcTm3OpMOsumD503Sx4ThG9NuU.XSUEipluAzwyqCS"
HASH_COST_4 = "$2a$04$abcdefghijklmnopqrstuuJbXJ8D6i0l6m7pWzjz7m4u2FQkQ0s3K"
ADMIN_POLICY = 'path "auth/userpass/users/*" { capabilities = ["create", "update", "read"] }'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    requires.bao()
    sr_dir: Path = tmp_path_factory.mktemp("strongroom")
    bao_dir: Path = tmp_path_factory.mktemp("bao")
    with strongroom_dev_server(sr_dir, root_token=ROOT) as ours, \
            bao_dev_server(bao_dir, root_token=ROOT) as theirs:
        yield {"openbao": theirs.url, "strongroom": ours.url}


def send(url: str, method: str, path: str, body: Any = None, token: str | None = None,
         source: str = "127.0.0.1") -> tuple[int, Any]:
    """One request from the loopback address ``source`` (status, parsed body)."""
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10,
                                      source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    try:
        conn.request(method, f"/v1/{path}", body=json.dumps(body) if body is not None
                     else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    return resp.status, (json.loads(raw) if raw else None)


class Failures:
    """A new loopback address for each login meant to fail."""

    def __init__(self) -> None:
        self.next = 10

    def addr(self) -> str:
        self.next += 1
        return f"127.0.0.{self.next}"


def error_of(rec: Recorder, name: str, status_body: tuple[int, Any]) -> None:
    status, body = status_body
    rec.value(name, (status, (body or {}).get("errors")))


def scenario(url: str) -> dict[str, Any]:
    rec = Recorder(url)
    client = rec.client
    up = client.auth.userpass
    fails = Failures()
    client.sys.enable_auth_method("userpass")
    client.sys.enable_auth_method("userpass", path="people")

    # -- users ------------------------------------------------------------------------
    rec.call("create_alice", up.create_or_update_user, "alice", password="pw-alice",
             policies="P1, p2,p1", token_ttl="30m")
    rec.values("read_alice", rec.call("read_alice", up.read_user, "alice"),
               "data.policies", "data.token_policies", "data.token_ttl", "data.token_type",
               "data.token_bound_cidrs")
    rec.call("create_bob", up.create_or_update_user, "bob", password="pw-bob",
             token_policies="p1", token_bound_cidrs="127.0.0.1/32", token_ttl="1h",
             token_max_ttl="2h")
    rec.values("read_bob", up.read_user("bob"), "data")
    rec.call("create_erin_deprecated", up.create_or_update_user, "erin", password="pw-erin",
             ttl=300, max_ttl=600, bound_cidrs="127.0.0.1")
    rec.values("read_erin", up.read_user("erin"), "data")
    rec.call("update_erin_token_ttl", up.create_or_update_user, "erin", token_ttl=100)
    rec.values("read_erin_after", up.read_user("erin"), "data")
    rec.call("create_hashed", up.create_or_update_user, "hashed", password_hash=HASH_COST_5)
    rec.call("create_people_user", up.create_or_update_user, "alice", password="other",
             mount_point="people")
    rec.values("list", rec.call("list", up.list_user), "data.keys")
    rec.values("list_people", up.list_user(mount_point="people"), "data.keys")
    bad = {
        "no_password": {},
        "both": {"password": "a", "password_hash": HASH_COST_5},
        "bad_hash": {"password_hash": "b"},
        "low_cost": {"password_hash": HASH_COST_4},
        "negative_ttl": {"password": "x", "token_ttl": -5},
        "bad_type": {"password": "x", "token_type": "default-service"},
        "bad_cidr": {"password": "x", "token_bound_cidrs": "not-an-ip"},
        "ttl_over_max": {"password": "x", "token_ttl": 100, "token_max_ttl": 50},
        "batch_periodic": {"password": "x", "token_type": "batch", "token_period": 5},
        "negative_uses": {"password": "x", "token_num_uses": -1},
        "bad_bool": {"password": "x", "token_no_default_policy": "maybe"},
        "too_long": {"password": "x" * 73},
    }
    for name, body in bad.items():
        rec.errors(f"bad_{name}", rec.call(f"bad_{name}", up.create_or_update_user,
                                           "newbie", **body))
    error_of(rec, "read_missing", send(url, "GET", "auth/userpass/users/nobody", token=ROOT))
    error_of(rec, "password_missing_user", send(url, "POST", "auth/userpass/users/nobody/"
                                                "password", {"password": "x"}, ROOT))
    error_of(rec, "policies_missing_user", send(url, "POST", "auth/userpass/users/nobody/"
                                                "policies", {"policies": "x"}, ROOT))
    error_of(rec, "bad_name", send(url, "POST", "auth/userpass/users/Bad.Name-",
                                   {"password": "x"}, ROOT))
    error_of(rec, "list_empty_mount", send(url, "LIST", "auth/people/users/nothing", token=ROOT))

    # -- logins -------------------------------------------------------------------------
    login = rec.call("login_alice", up.login, "ALICE", "pw-alice", use_token=False)
    rec.values("login_alice", login, "auth.policies", "auth.token_policies",
               "auth.metadata", "auth.lease_duration", "auth.renewable", "auth.token_type",
               "auth.orphan", "auth.num_uses", "auth.mfa_requirement", "data", "lease_id")
    token, entity = login["auth"]["client_token"], login["auth"]["entity_id"]
    rec.value("entity_id_set", bool(entity))
    again = up.login("alice", "pw-alice", use_token=False)
    rec.value("same_entity_next_login", again["auth"]["entity_id"] == entity)
    other = up.login("alice", "other", use_token=False, mount_point="people")
    rec.value("other_mount_other_entity", other["auth"]["entity_id"] not in ("", entity))
    error_of(rec, "login_wrong_password", send(url, "POST", "auth/userpass/login/alice",
                                               {"password": "nope"}, source=fails.addr()))
    error_of(rec, "login_missing_user", send(url, "POST", "auth/userpass/login/nobody",
                                             {"password": "nope"}, source=fails.addr()))
    error_of(rec, "login_too_long", send(url, "POST", "auth/userpass/login/alice",
                                         {"password": "y" * 73}, source=fails.addr()))
    error_of(rec, "login_no_password", send(url, "POST", "auth/userpass/login/alice", {},
                                            source=fails.addr()))
    error_of(rec, "login_other_mounts_password", send(
        url, "POST", "auth/userpass/login/alice", {"password": "other"}, source=fails.addr()))
    rec.values("login_hashed", up.login("hashed", "hashed-pw", use_token=False),
               "auth.policies")

    looked = rec.call("lookup_self", rec.as_token(token).auth.token.lookup_self)
    rec.values("lookup_self", looked, "data.display_name", "data.path", "data.meta",
               "data.policies", "data.renewable", "data.type", "data.orphan",
               "data.num_uses", "data.explicit_max_ttl", "data.creation_ttl")
    # Seconds pass between the login and the lookup (bcrypt work in between).
    rec.value("lookup_self_ttl_close", 1790 <= looked["data"]["ttl"] <= 1800)
    rec.value("lookup_entity_matches", looked["data"]["entity_id"] == entity)

    # -- identity -------------------------------------------------------------------------
    read = rec.call("entity_read", client.read, f"identity/entity/id/{entity}")
    rec.values("entity_read", read, "data.aliases.0.name", "data.aliases.0.mount_type",
               "data.aliases.0.mount_path", "data.aliases.0.metadata", "data.policies",
               "data.disabled", "data.metadata", "data.namespace_id")
    rec.value("entity_alias_points_back", read["data"]["aliases"][0]["canonical_id"] == entity)
    accessor = client.sys.list_auth_methods()["data"]["userpass/"]["accessor"]
    found = client.write("identity/lookup/entity", alias_name="alice",
                         alias_mount_accessor=accessor)
    rec.value("lookup_by_alias", found["data"]["id"] == entity)
    by_name = client.read(f"identity/entity/name/{read['data']['name']}")
    rec.value("read_by_name", by_name["data"]["id"] == entity)
    error_of(rec, "lookup_nothing", send(url, "POST", "identity/lookup/entity", {}, ROOT))
    error_of(rec, "lookup_conflict", send(url, "POST", "identity/lookup/entity",
                                          {"id": "a", "name": "b"}, ROOT))
    error_of(rec, "lookup_half_alias", send(url, "POST", "identity/lookup/entity",
                                            {"alias_name": "alice"}, ROOT))
    error_of(rec, "lookup_unknown", send(url, "POST", "identity/lookup/entity",
                                         {"name": "nobody"}, ROOT))
    error_of(rec, "entity_missing", send(url, "GET", "identity/entity/id/nope", token=ROOT))
    # The default policy's templated stanzas: a login token reads its own entity only.
    rec.value("own_entity_read", send(url, "GET", f"identity/entity/id/{entity}",
                                      token=token)[0])
    rec.value("own_entity_by_name", send(url, "GET", f"identity/entity/name/"
                                         f"{read['data']['name']}", token=token)[0])
    error_of(rec, "other_entity_read", send(url, "GET", "identity/entity/id/"
                                            f"{other['auth']['entity_id']}", token=token))
    listed = client.list("identity/entity/id")["data"]
    rec.value("entity_list", (entity in listed["keys"],
                              sorted(listed["key_info"][entity]),
                              sorted(listed["key_info"][entity]["aliases"][0])))

    # -- renewal ---------------------------------------------------------------------------
    renewed = rec.call("renew_self", rec.as_token(token).auth.token.renew_self)
    rec.values("renew_self", renewed, "auth.lease_duration", "auth.policies",
               "auth.metadata")
    client.write("auth/userpass/users/alice/policies", token_policies="p3")
    error_of(rec, "renew_after_policy_change", send(url, "POST", "auth/token/renew-self", {},
                                                   token))
    carol = up.create_or_update_user("carol", password="pw-carol")
    del carol
    carol_token = up.login("carol", "pw-carol", use_token=False)["auth"]["client_token"]
    up.delete_user("carol")
    error_of(rec, "renew_user_gone", send(url, "POST", "auth/token/renew-self", {},
                                          carol_token))

    # -- password update ---------------------------------------------------------------------
    rec.call("password_update", up.update_password_on_user, "alice", "new-pw")
    rec.value("login_new_password", bool(up.login("alice", "new-pw", use_token=False)))
    error_of(rec, "login_old_password", send(url, "POST", "auth/userpass/login/alice",
                                             {"password": "pw-alice"}, source=fails.addr()))

    # -- bound CIDRs on use -------------------------------------------------------------------
    bob = up.login("bob", "pw-bob", use_token=False)["auth"]
    rec.value("bob_login", (bob["lease_duration"], bob["policies"]))
    rec.value("bob_lookup_here", send(url, "GET", "auth/token/lookup-self",
                                      token=bob["client_token"])[1]["data"]["bound_cidrs"])
    error_of(rec, "bob_token_elsewhere", send(url, "GET", "auth/token/lookup-self",
                                              token=bob["client_token"], source="127.0.0.2"))
    error_of(rec, "bob_token_elsewhere_kv", send(url, "GET", "secret/data/x",
                                                 token=bob["client_token"], source="127.0.0.2"))
    error_of(rec, "bob_token_here_kv", send(url, "GET", "secret/data/x",
                                            token=bob["client_token"]))

    # -- batch tokens --------------------------------------------------------------------------
    up.create_or_update_user("dave", password="pw-dave", token_type="batch")
    rec.values("login_batch", up.login("dave", "pw-dave", use_token=False),
               "auth.token_type", "auth.renewable", "auth.orphan", "auth.accessor")

    # -- least privilege -----------------------------------------------------------------------
    client.sys.create_or_update_policy("up-admin", ADMIN_POLICY)
    admin_token = client.auth.token.create(policies=["up-admin"])["auth"]["client_token"]
    admin = rec.as_token(admin_token).auth.userpass
    rec.call("admin_create", admin.create_or_update_user, "frank", password="pw-frank")
    rec.values("admin_read", admin.read_user("frank"), "data.token_policies")
    rec.call("admin_list", admin.list_user)
    rec.call("admin_delete", admin.delete_user, "frank")
    rec.call("admin_login_as_root", rec.as_token(admin_token).sys.list_auth_methods)
    return rec.seen


def test_userpass_matches_openbao(servers: dict[str, str]) -> None:
    theirs = scenario(servers["openbao"])
    ours = scenario(servers["strongroom"])
    # The scenario did what it says (absolute checks on OpenBao's record).
    assert theirs["=login_alice.auth.policies"] == ["default", "p1", "p2"]
    assert theirs["=bob_token_elsewhere"] == (403, ["permission denied"])
    assert theirs["=login_missing_user"] == theirs["=login_wrong_password"]
    assert theirs["=renew_after_policy_change"][0] == 500
    assert theirs["=own_entity_read"] == 200 and theirs["=other_entity_read"][0] == 403
    compare(ours, theirs)


def test_bound_cidrs_refusal_at_login_differs_on_purpose(servers: dict[str, str]) -> None:
    """A right password from outside ``token_bound_cidrs``: OpenBao confirms it with a 403;
    Strongroom answers as for a wrong password (and counts it as a failed login)."""
    answers = {}
    for name, url in servers.items():
        client = hvac.Client(url=url, token=ROOT)
        client.auth.userpass.create_or_update_user("walled", password="pw-walled",
                                                   token_bound_cidrs="10.0.0.0/8")
        answers[name] = send(url, "POST", "auth/userpass/login/walled",
                             {"password": "pw-walled"}, source="127.0.0.99")
        wrong = send(url, "POST", "auth/userpass/login/walled", {"password": "nope"},
                     source="127.0.0.98")
        assert wrong == (400, {"errors": ["invalid username or password"]})
    assert answers["openbao"] == (403, {"errors": ["permission denied"]})
    assert answers["strongroom"] == (400, {"errors": ["invalid username or password"]})
