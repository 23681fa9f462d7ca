"""policy, token, secrets, read/write/list/delete, unwrap and login against a fake API."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strongroom.cli import secrets as secrets_module

from cli_fakes import FakeApi
from conftest import Result

Cli = Callable[..., Result]
AUTH: dict[str, Any] = {"auth": {"client_token": "s.new", "accessor": "acc",
                                 "policies": ["default"], "token_policies": ["default"],
                                 "lease_duration": 3600, "renewable": True}}


# --- policy --------------------------------------------------------------------

def test_policy_write_from_stdin_lowercases_name(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/policies/acl/ops", (204, None))
    r = cli("policy", "write", "OPS", "-", stdin='path "x" {}')
    assert (r.code, r.out) == (0, "Success! Uploaded policy: ops\n")
    assert 'converted from "OPS" to "ops"' in r.err
    assert fake_api.bodies("PUT", "/v1/sys/policies/acl/ops") == [{"policy": 'path "x" {}'}]
    missing = cli("policy", "write", "ops", "/no/such/file")
    assert missing.code == 2 and "Error opening policy file" in missing.err


def test_policy_read_list_delete(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/policies/acl/ops", (200, {"data": {"policy": "rules\n"}}))
    fake_api.add("GET", "/v1/sys/policies/acl/none", (404, {"errors": []}))
    fake_api.add("GET", "/v1/sys/policies/acl", (200, {"data": {"keys": ["default", "ops"]}}))
    fake_api.add("DELETE", "/v1/sys/policies/acl/ops", (204, None))
    assert cli("policy", "read", "ops").out == "rules\n"
    assert json.loads(cli("policy", "read", "-format=json", "ops").out) == {"policy": "rules\n"}
    assert (cli("policy", "read", "none").code, cli("policy", "read", "none").err) == \
        (2, "No policy named: none\n")
    assert cli("policy", "list").out == "default\nops\n"
    assert json.loads(cli("policy", "list", "-format=json").out) == ["default", "ops"]
    assert FakeApi.query(fake_api.requests[-1]) == {"list": ["true"]}
    assert cli("policy", "delete", "ops").out == "Success! Deleted policy: ops\n"
    assert cli("policy", "write", "-format=json", "x", "-").code == 1  # no output flags


# --- token ---------------------------------------------------------------------

def test_token_create_body(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("POST", "/v1/auth/token/create", (200, AUTH))
    r = cli("token", "create", "-policy=a", "-policy=b", "-ttl=1h", "-metadata=k=v",
            "-orphan", "-use-limit=3", "-display-name=ci")
    assert r.code == 0, r.err
    assert fake_api.bodies("POST", "/v1/auth/token/create") == [{
        "policies": ["a", "b"], "meta": {"k": "v"}, "ttl": "1h0m0s",
        "explicit_max_ttl": "0s", "period": "0s", "no_parent": True, "display_name": "ci",
        "num_uses": 3, "renewable": True, "type": "service", "entity_alias": ""}]
    cli("token", "create", "-num-uses=2", "-renewable=false", "-no-default-policy")
    body = fake_api.bodies("POST", "/v1/auth/token/create")[-1]
    assert (body["num_uses"], body["renewable"], body["no_default_policy"]) == (2, False, True)
    assert "policies" not in body and "no_parent" not in body
    rows = cli("token", "create").out.splitlines()
    assert [row.split()[0] for row in rows[2:]] == [
        "token", "token_accessor", "token_duration", "token_renewable", "token_policies",
        "identity_policies", "policies"]
    assert cli("token", "create", "-field=token").out == "s.new"


def test_token_create_with_role(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("POST", "/v1/auth/token/create/deploy", (200, AUTH))
    assert cli("token", "create", "-role=deploy").code == 0


def test_token_lookup_paths(cli: Cli, fake_api: FakeApi) -> None:
    data = {"data": {"id": "s.x", "policies": ["root"], "ttl": 0, "creation_ttl": 3600}}
    fake_api.add("GET", "/v1/auth/token/lookup-self", (200, data))
    fake_api.add("POST", "/v1/auth/token/lookup", (200, data))
    fake_api.add("POST", "/v1/auth/token/lookup-accessor", (200, data))
    rows = cli("token", "lookup").out.splitlines()
    assert rows[2].split() == ["creation_ttl", "1h"] and rows[-1].split() == ["ttl", "0s"]
    cli("token", "lookup", "s.other")
    assert fake_api.bodies("POST", "/v1/auth/token/lookup") == [{"token": "s.other"}]
    cli("token", "lookup", "-accessor", "acc1")
    assert fake_api.bodies("POST", "/v1/auth/token/lookup-accessor") == [{"accessor": "acc1"}]
    err = cli("token", "lookup", "-accessor")
    assert (err.code, err.err) == (1, "Not enough arguments with -accessor (expected 1, got 0)\n")


def test_token_renew_bodies(cli: Cli, fake_api: FakeApi) -> None:
    for path in ("renew-self", "renew", "renew-accessor"):
        fake_api.add("PUT", f"/v1/auth/token/{path}", (200, AUTH))
    assert cli("token", "renew", "-increment=30m").code == 0
    assert fake_api.bodies("PUT", "/v1/auth/token/renew-self") == [{"increment": 1800}]
    cli("token", "renew", "-i=90", "s.x")
    assert fake_api.bodies("PUT", "/v1/auth/token/renew") == [{"token": "s.x", "increment": 90}]
    cli("token", "renew", "-accessor", "acc")
    assert fake_api.bodies("PUT", "/v1/auth/token/renew-accessor") == [
        {"accessor": "acc", "increment": 0}]


@pytest.mark.parametrize(("args", "method", "path", "body"), [
    (["s.x"], "PUT", "/v1/auth/token/revoke", {"token": "s.x"}),
    (["-mode=orphan", "s.x"], "PUT", "/v1/auth/token/revoke-orphan", {"token": "s.x"}),
    (["-accessor", "acc"], "PUT", "/v1/auth/token/revoke-accessor", {"accessor": "acc"}),
    (["-self"], "PUT", "/v1/auth/token/revoke-self", None),
    (["-mode=path", "auth/token/"], "PUT", "/v1/sys/leases/revoke-prefix/auth/token", None),
])
def test_token_revoke_variants(cli: Cli, fake_api: FakeApi, args: list[str], method: str,
                               path: str, body: Any) -> None:
    fake_api.add(method, path, (204, None))
    r = cli("token", "revoke", *args)
    assert (r.code, r.out) == (0, "Success! Revoked token (if it existed)\n"), r.err
    assert fake_api.bodies(method, path) == [body]


@pytest.mark.parametrize(("args", "message"), [
    ([], "Not enough arguments (expected 1 or -self, got 0)"),
    (["a", "b"], "Too many arguments (expected 1 or -self, got 2)"),
    (["-self", "a"], "Too many arguments with -self (expected 0, got 1)"),
    (["-self", "-accessor"], "Cannot use -self with -accessor!"),
    (["-self", "-mode=orphan"], "Cannot use -self with -mode!"),
    (["-accessor", "-mode=orphan", "a"], "Cannot use -accessor with -mode=orphan!"),
    (["-mode=bogus", "a"], "Invalid mode: bogus"),
])
def test_token_revoke_usage_errors(cli: Cli, args: list[str], message: str) -> None:
    assert (cli("token", "revoke", *args).code, cli("token", "revoke", *args).err) == \
        (1, message + "\n")


def test_token_capabilities(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("POST", "/v1/sys/capabilities-self",
                 (200, {"data": {"secret/x": ["update", "read"]}}))
    fake_api.add("POST", "/v1/sys/capabilities", (200, {"data": {"capabilities": ["deny"]}}))
    r = cli("token", "capabilities", "secret/x", env={"VAULT_TOKEN": "s.me"})
    assert r.out == "read, update\n"
    assert fake_api.bodies("POST", "/v1/sys/capabilities-self") == [
        {"token": "s.me", "path": "secret/x"}]
    other = cli("token", "capabilities", "-format=json", "s.other", "secret/x",
                env={"VAULT_TOKEN": "s.me"})
    assert json.loads(other.out) == ["deny"]
    assert fake_api.bodies("POST", "/v1/sys/capabilities") == [
        {"token": "s.other", "path": "secret/x"}]


# --- secrets -------------------------------------------------------------------

def test_secrets_enable_body(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("POST", "/v1/sys/mounts/team", (204, None))
    r = cli("secrets", "enable", "-path=team", "-description=d", "-version=2",
            "-default-lease-ttl=1h", "kv")
    assert (r.code, r.out) == (0, "Success! Enabled the kv secrets engine at: team/\n")
    assert fake_api.bodies("POST", "/v1/sys/mounts/team") == [{
        "type": "kv", "description": "d",
        "config": {"options": None, "default_lease_ttl": "1h0m0s", "max_lease_ttl": "0s",
                   "force_no_cache": False},
        "local": False, "seal_wrap": False, "external_entropy_access": False,
        "options": {"version": "2"}}]


def test_secrets_tune_and_disable(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("POST", "/v1/sys/mounts/team/tune", (204, None))
    fake_api.add("DELETE", "/v1/sys/mounts/team", (204, None))
    r = cli("secrets", "tune", "-max-lease-ttl=2h", "-description=new", "team")
    assert (r.code, r.out) == (0, "Success! Tuned the secrets engine at: team/\n")
    assert fake_api.bodies("POST", "/v1/sys/mounts/team/tune") == [{
        "options": None, "default_lease_ttl": "", "max_lease_ttl": "2h0m0s",
        "force_no_cache": False, "description": "new"}]
    assert cli("secrets", "disable", "/team/").out == \
        "Success! Disabled the secrets engine (if it existed) at: team/\n"


def test_secrets_list_table_and_json(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/sys/mounts", (200, {"data": {
        "secret/": {"type": "kv", "accessor": "kv_1", "description": "kv store",
                    "options": {"version": "2"}, "config": {"default_lease_ttl": 0}},
        "cubbyhole/": {"type": "cubbyhole", "accessor": "c_1", "description": "",
                       "local": True, "uuid": "u", "extra": 1}}}))
    assert cli("secrets", "list").out.splitlines() == [
        "Path          Type         Accessor    Description",
        "----          ----         --------    -----------",
        "cubbyhole/    cubbyhole    c_1         n/a",
        "secret/       kv           kv_1        kv store",
    ]
    data = json.loads(cli("secrets", "list", "-format=json").out)
    assert list(data) == ["cubbyhole/", "secret/"] and "extra" not in data["cubbyhole/"]
    assert list(data["secret/"])[:4] == ["uuid", "type", "description", "accessor"]
    detailed = cli("secrets", "list", "-detailed").out.splitlines()
    assert detailed[0].split()[:4] == ["Path", "Plugin", "Accessor", "Default"]
    assert "system" in detailed[3] and "map[version:2]" in detailed[3]


def test_secrets_move_polls_until_done(cli: Cli, fake_api: FakeApi,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets_module, "MOVE_POLL_SECONDS", 0)
    fake_api.add("POST", "/v1/sys/remount", (200, {"data": {"migration_id": "m1"}}))
    fake_api.add("GET", "/v1/sys/remount/status/m1", [
        (200, {"data": {"migration_info": {"status": "in-progress"}}}),
        (200, {"data": {"migration_info": {"status": "success"}}})])
    r = cli("secrets", "move", "a", "b/")
    assert r.code == 0, r.err
    assert fake_api.bodies("POST", "/v1/sys/remount") == [{"from": "a/", "to": "b/"}]
    assert r.out.splitlines() == [
        "Started moving secrets engine a/ to b/, with migration ID m1",
        "Waiting for terminal status in migration of secrets engine a/ to b/, with "
        "migration ID m1",
        "Success! Finished moving secrets engine a/ to b/, with migration ID m1"]


def test_auth_move_polls_until_done(cli: Cli, fake_api: FakeApi,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets_module, "MOVE_POLL_SECONDS", 0)
    fake_api.add("POST", "/v1/sys/remount", (200, {"data": {"migration_id": "m2"}}))
    fake_api.add("GET", "/v1/sys/remount/status/m2", [
        (200, {"data": {"migration_info": {"status": "in-progress"}}}),
        (200, {"data": {"migration_info": {"status": "failure"}}})])
    r = cli("auth", "move", "auth/a", "auth/b/")
    assert r.code == 0, r.err
    assert fake_api.bodies("POST", "/v1/sys/remount") == [{"from": "auth/a/", "to": "auth/b/"}]
    assert r.out.splitlines() == [
        "Started moving auth method auth/a/ to auth/b/, with migration ID m2",
        "Waiting for terminal status in migration of auth method auth/a/ to auth/b/, with "
        "migration ID m2"]
    assert r.err.strip() == ("Failure! Error encountered moving auth method auth/a/ to "
                             "auth/b/, with migration ID m2")
    assert cli("auth", "move", "only-one").code == 1


def test_auth_help_by_type_and_by_path(cli: Cli, fake_api: FakeApi) -> None:
    typed = cli("auth", "help", "userpass")
    assert typed.code == 0 and typed.out.startswith("Usage: strongroom login -method=userpass")
    assert not fake_api.requests  # a type needs no server
    fake_api.add("GET", "/v1/sys/auth", (200, {"data": {
        "people/": {"type": "ldap"}, "gh/": {"type": "github"}}}))
    by_path = cli("auth", "help", "people")
    assert by_path.code == 0 and by_path.out.startswith("Usage: strongroom login -method=ldap")
    missing = cli("auth", "help", "nowhere/")
    assert missing.code == 1 and 'No auth method available on the server at "nowhere/"' in \
        missing.err
    foreign = cli("auth", "help", "gh")
    assert foreign.code == 2 and "No method-specific CLI handler" in foreign.err


# --- read / write / list / delete / unwrap -------------------------------------

def test_read_with_query_and_field(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", "/v1/pki/cert", (200, {"data": {"n": 1},
                                              "warnings": ["deprecated path"]}))
    r = cli("read", "/pki/cert/", "a=1", "a=2")
    assert FakeApi.query(fake_api.requests[-1]) == {"a": ["1", "2"]}
    assert r.out.splitlines()[2].split() == ["n", "1"]
    assert "WARNING! The following warnings were returned from Vault:" in r.err
    field = cli("read", "-field=n", "pki/cert")
    assert (field.out, "deprecated path" in field.err) == ("1", True)
    assert "WARNING" not in cli("read", "-field=n", "-format=json", "pki/cert").err
    fake_api.add("GET", "/v1/missing", (404, {"errors": []}))
    assert (cli("read", "missing").code, cli("read", "missing").err) == \
        (2, "No value found at missing\n")


def test_write_delete_list(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/cubbyhole/x", (204, None))
    fake_api.add("DELETE", "/v1/cubbyhole/x", (204, None))
    fake_api.add("GET", "/v1/cubbyhole", (200, {"data": {"keys": ["x"], "key_info": {
        "x": {"ttl": 60, "name": "n"}}}}))
    assert cli("write", "cubbyhole/x", "a=1").out == "Success! Data written to: cubbyhole/x\n"
    assert fake_api.bodies("PUT", "/v1/cubbyhole/x") == [{"a": "1"}]
    assert cli("write", "cubbyhole/x").err == "Must supply data or use -force\n"
    assert cli("write", "-f", "cubbyhole/x").code == 0
    assert fake_api.bodies("PUT", "/v1/cubbyhole/x")[-1] == {}
    assert cli("delete", "cubbyhole/x").out == \
        "Success! Data deleted (if it existed) at: cubbyhole/x\n"
    assert cli("list", "cubbyhole/").out == "Keys\n----\nx\n"
    assert cli("list", "-detailed", "cubbyhole").out.splitlines() == [
        "Keys    name    ttl", "----    ----    ---", "x       n       1m"]
    detailed = json.loads(cli("list", "-detailed", "-format=json", "cubbyhole").out)
    assert detailed["data"]["key_info"] == {"x": {"name": "n", "ttl": 60}}


def test_unwrap_token_in_body_or_header(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/wrapping/unwrap", (200, {"data": {"a": "b"}}))
    assert cli("unwrap", "s.wrap", env={"VAULT_TOKEN": "s.me"}).out.splitlines()[2].split() \
        == ["a", "b"]
    assert fake_api.bodies("PUT", "/v1/sys/wrapping/unwrap") == [{"token": "s.wrap"}]
    assert fake_api.requests[-1].headers["X-Vault-Token"] == "s.me"
    cli("unwrap", "s.wrap")  # no client token: the wrapping token authenticates
    assert fake_api.requests[-1].headers["X-Vault-Token"] == "s.wrap"
    assert not fake_api.requests[-1].body
    fake_api.add("PUT", "/v1/sys/wrapping/unwrap", (204, None))
    assert cli("unwrap", "s.wrap").out == \
        "Successfully unwrapped. There was no data in the wrapped secret.\n"


# --- login ---------------------------------------------------------------------

LOOKUP: dict[str, Any] = {"data": {"id": "s.tok", "accessor": "acc", "policies": ["default"],
                                   "ttl": 600, "renewable": True, "meta": {"k": "v"}}}


def test_login_verifies_and_stores_token(cli: Cli, fake_api: FakeApi, tmp_path: Path) -> None:
    fake_api.add("GET", "/v1/auth/token/lookup-self", (200, LOOKUP))
    r = cli("login", "-wrap-ttl=1m", "s.tok", env={"VAULT_TOKEN": "s.env"})
    assert r.code == 0, r.err
    sent = fake_api.requests[-1]
    assert sent.headers["X-Vault-Token"] == "s.tok" and "X-Vault-Wrap-TTL" not in sent.headers
    token_file = tmp_path / ".vault-token"
    assert token_file.read_text() == "s.tok"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "VAULT_TOKEN environment variable is set" in r.err
    assert r.out.startswith("Success! You are now authenticated.")
    out = json.loads(cli("login", "-format=json", "s.tok").out)
    assert out["auth"]["metadata"] == {"k": "v"} and out["auth"]["lease_duration"] == 600
    assert out["request_id"] == "" and out["data"] is None


def test_login_variants(cli: Cli, fake_api: FakeApi, tmp_path: Path) -> None:
    fake_api.add("GET", "/v1/auth/token/lookup-self", (200, LOOKUP))
    only = cli("login", "-token-only", "-", stdin="s.tok\n")
    assert (only.code, only.out) == (0, "s.tok")
    assert not (tmp_path / ".vault-token").exists()
    no_store = cli("login", "-no-store", "s.tok")
    assert "was not stored" in no_store.err and not (tmp_path / ".vault-token").exists()
    assert cli("login", "-no-store", "-no-print", "s.tok").code == 1
    assert cli("login", "-method=github", "s.tok").code == 1  # no such method here
    assert cli("login", "-no-print", "s.tok").out == ""
    assert cli("login").code == 1  # no token and stdin is not a terminal
    fake_api.add("GET", "/v1/auth/token/lookup-self", (403, {"errors": ["permission denied"]}))
    bad = cli("login", "s.bad")
    assert bad.code == 2 and bad.err.startswith(
        "Error authenticating: error looking up token: Error making API request.")


# --- registry ------------------------------------------------------------------

def test_every_new_command_is_registered_with_help(cli: Cli) -> None:
    from strongroom.cli.main import load_registry

    registry = load_registry()
    expected = {
        "kv get", "kv put", "kv patch", "kv list", "kv delete", "kv undelete", "kv destroy",
        "kv metadata get", "kv metadata put", "kv metadata patch", "kv metadata delete",
        "policy write", "policy read", "policy list", "policy delete", "token create",
        "token lookup", "token renew", "token revoke", "token capabilities",
        "secrets enable", "secrets disable", "secrets list", "secrets tune", "secrets move",
        "auth move", "auth help",
        "read", "write", "list", "delete", "login", "unwrap"}
    assert expected <= set(registry.commands)
    for name in expected:
        r = cli(*name.split(), "-h")
        assert r.code == 0 and r.out.startswith("Usage: strongroom " + name), name
        assert "-wrap-ttl=<duration>" in r.out
