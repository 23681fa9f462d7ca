"""The strongroom CLI's everyday commands, run as subprocesses against real dev servers.

Every test runs against both ``bao server -dev`` (the reference) and
``strongroom server -dev``, asserting what Vault/OpenBao do: exit codes, the
shape of ``-format=json`` output and, where deterministic, the values. A test
that passes on bao but fails on Strongroom marks a server discrepancy; those
are kept in small, separate tests so the broad functional ones stay useful.
:func:`test_json_shape_matches_bao` also runs the same commands on both
servers and compares the JSON structurally.

Both servers are started once per module; tests use unique names so they do
not see each other's data.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import REPO, ServerProcess, bao_dev_server, strongroom_dev_server

ROOT = "root-token-for-cli-tests"
CLI_TIMEOUT = 60.0
LAUNCHERS: dict[str, Callable[[Path, str], AbstractContextManager[ServerProcess]]] = {
    "bao": bao_dev_server,
    "strongroom": strongroom_dev_server,
}
#: Keys of ``vault ... -format=json`` for a response (Go's api.Secret); HashiCorp
#: Vault also sends ``mount_type``, which OpenBao leaves out, so it may appear.
SECRET_KEYS = {"request_id", "lease_id", "lease_duration", "renewable", "data", "warnings"}
OPTIONAL_SECRET_KEYS = {"mount_type"}
AUTH_KEYS = {"client_token", "accessor", "policies", "token_policies", "identity_policies",
             "metadata", "orphan", "entity_id", "lease_duration", "renewable",
             "mfa_requirement"}
WRAP_KEYS = {"token", "accessor", "ttl", "creation_time", "creation_path", "wrapped_accessor"}
KV_META_KEYS = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
#: Fields OpenBao's KV v2 metadata has and HashiCorp Vault's does not.
OPENBAO_ONLY_KEYS = {"current_metadata_version", "metadata_cas_required"}
MOUNT_KEYS = {"uuid", "type", "description", "accessor", "config", "options", "local",
              "seal_wrap", "external_entropy_access", "plugin_version",
              "running_plugin_version", "running_sha256", "deprecation_status"}
TOKEN_LOOKUP_KEYS = {"accessor", "creation_time", "creation_ttl", "display_name",
                     "entity_id", "expire_time", "explicit_max_ttl", "id", "issue_time",
                     "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl",
                     "type"}
POLICY = 'path "secret/*" {\n  capabilities = ["read"]\n}\n'

_names = itertools.count(1)


@dataclass(frozen=True)
class Server:
    kind: str
    addr: str
    workdir: Path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with ExitStack() as stack:
        started = {}
        for kind, launch in LAUNCHERS.items():
            workdir = tmp_path_factory.mktemp(kind)
            proc = stack.enter_context(launch(workdir, ROOT))
            started[kind] = Server(kind, proc.url, workdir)
        yield started


@pytest.fixture(params=sorted(LAUNCHERS))
def srv(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    return servers[request.param]


@pytest.fixture
def name() -> str:
    """A name no other test uses (paths, policies and mounts share one server)."""
    return f"t{next(_names)}"


def cli(server: Server, *args: str, stdin: str = "", token: str | None = ROOT,
        home: Path | None = None, cwd: Path | None = None) -> Result:
    """Run ``python -m strongroom.cli.main ARGS`` against ``server``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "server"), os.environ.get("PYTHONPATH", "")) if p)
    env["VAULT_ADDR"] = server.addr
    env["HOME"] = str(home or server.workdir)
    if token is not None:
        env["VAULT_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT,
                          cwd=cwd or server.workdir, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(server: Server, *args: str, **kw: Any) -> Result:
    r = cli(server, *args, **kw)
    assert r.code == 0, f"{args}: {r.err}"
    return r


def secret_keys(obj: dict[str, Any]) -> set[str]:
    return set(obj) - OPTIONAL_SECRET_KEYS


def table(text: str) -> dict[str, str]:
    """Rows of a Key/Value table (header lines skipped)."""
    rows = {}
    for line in text.splitlines()[2:]:
        key, _, value = line.partition("    ")
        rows[key.strip()] = value.strip()
    return rows


def child_token(server: Server, *flags: str) -> str:
    return ok(server, "token", "create", "-field=token", *flags).out


# --- kv ------------------------------------------------------------------------

def test_kv_put_and_get_json(srv: Server, name: str) -> None:
    put = ok(srv, "kv", "put", "-format=json", f"secret/{name}", "a=1", "b=two").json()
    assert secret_keys(put) == SECRET_KEYS
    assert set(put["data"]) == KV_META_KEYS and put["data"]["version"] == 1
    got = ok(srv, "kv", "get", "-format=json", f"secret/{name}").json()
    assert got["data"]["data"] == {"a": "1", "b": "two"}
    assert set(got["data"]["metadata"]) == KV_META_KEYS
    assert got["data"]["metadata"]["destroyed"] is False
    assert ok(srv, "kv", "get", "-mount=secret", "-format=json", name).json()["data"] == \
        got["data"]


def test_kv_get_table_layout(srv: Server, name: str) -> None:
    ok(srv, "kv", "put", f"secret/{name}", "key=value")
    lines = ok(srv, "kv", "get", f"secret/{name}").out.splitlines()
    assert lines[:4] == ["= Secret Path =", f"secret/data/{name}", "",
                         "======= Metadata ======="]
    assert lines[4].split() == ["Key", "Value"]
    # Section headings are padded to the width of their table: "=== Data ===" here.
    assert lines[lines.index("=== Data ===") + 3].split() == ["key", "value"]


def test_kv_get_field(srv: Server, name: str) -> None:
    ok(srv, "kv", "put", f"secret/{name}", "a=1")
    assert ok(srv, "kv", "get", "-field=a", f"secret/{name}").out == "1"
    assert ok(srv, "kv", "get", "-field=a", "-format=json", f"secret/{name}").out == '"1"'
    missing = cli(srv, "kv", "get", "-field=zz", f"secret/{name}")
    assert (missing.code, missing.out) == (1, "") and '"zz" not present' in missing.err


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_kv_get_missing_exits_2(srv: Server, name: str, fmt: str) -> None:
    r = cli(srv, "kv", "get", f"-format={fmt}", f"secret/{name}")
    assert (r.code, r.out, r.err.strip()) == (2, "", f"No value found at secret/data/{name}")


def test_kv_versions_and_cas(srv: Server, name: str) -> None:
    ok(srv, "kv", "put", f"secret/{name}", "v=1")
    ok(srv, "kv", "put", f"secret/{name}", "v=2")
    old = ok(srv, "kv", "get", "-version=1", "-format=json", f"secret/{name}").json()
    assert old["data"]["data"] == {"v": "1"} and old["data"]["metadata"]["version"] == 1
    clash = cli(srv, "kv", "put", "-cas=1", f"secret/{name}", "v=3")
    assert clash.code == 2 and "check-and-set parameter did not match" in clash.err
    assert cli(srv, "kv", "put", "-cas=0", f"secret/{name}", "v=3").code == 2
    assert ok(srv, "kv", "put", "-cas=2", "-format=json", f"secret/{name}",
              "v=3").json()["data"]["version"] == 3


def test_kv_put_data_sources(srv: Server, name: str, tmp_path: Path) -> None:
    (tmp_path / "value.txt").write_text("from-file")
    (tmp_path / "data.json").write_text('{"j": 1, "n": {"x": [1, 2]}}')
    cases: list[tuple[list[str], str, dict[str, Any]]] = [
        (["a=@value.txt", "b=x", "b=y"], "", {"a": "from-file", "b": ["x", "y"]}),
        (["-"], '{"s": "stdin", "num": 5}', {"s": "stdin", "num": 5}),
        (["k=-"], "raw\n", {"k": "raw\n"}),
        (["@data.json"], "", {"j": 1, "n": {"x": [1, 2]}}),
        (["a=\\@literal"], "", {"a": "@literal"}),
    ]
    for i, (args, stdin, expected) in enumerate(cases):
        path = f"secret/{name}-{i}"
        ok(srv, "kv", "put", path, *args, stdin=stdin, cwd=tmp_path)
        assert ok(srv, "kv", "get", "-format=json", path).json()["data"]["data"] == expected


def test_kv_put_usage_errors_exit_1(srv: Server, name: str) -> None:
    assert cli(srv, "kv", "put").code == 1
    only_path = cli(srv, "kv", "put", f"secret/{name}")
    assert (only_path.code, only_path.err.strip()) == (1, "Must supply data")
    bad = cli(srv, "kv", "put", f"secret/{name}", "novalue")
    assert bad.code == 1 and "format must be key=value" in bad.err
    assert cli(srv, "kv", "put", f"secret/{name}", "a=@/no/such/file").code == 1


def test_kv_patch(srv: Server, name: str) -> None:
    path = f"secret/{name}"
    ok(srv, "kv", "put", path, "a=1", "b=2")
    patched = ok(srv, "kv", "patch", "-format=json", path, "a=9", "c=3").json()
    assert patched["data"]["version"] == 2
    ok(srv, "kv", "patch", "-remove-data=b", path)
    ok(srv, "kv", "patch", "-method=rw", path, "d=4")
    data = ok(srv, "kv", "get", "-format=json", path).json()["data"]
    assert data["data"] == {"a": "9", "c": "3", "d": "4"}
    assert data["metadata"]["version"] == 4
    assert cli(srv, "kv", "patch", "-cas=1", path, "e=5").code == 2
    assert cli(srv, "kv", "patch", f"secret/{name}-missing", "e=5").code == 2
    assert cli(srv, "kv", "patch", "-method=rw", f"secret/{name}-missing", "e=5").code == 2
    assert cli(srv, "kv", "patch", "-method=bogus", path, "e=5").code == 2


def test_kv_list(srv: Server, name: str) -> None:
    ok(srv, "kv", "put", f"secret/{name}/one", "a=1")
    ok(srv, "kv", "put", f"secret/{name}/sub/two", "a=1")
    assert ok(srv, "kv", "list", "-format=json", f"secret/{name}").json() == ["one", "sub/"]
    assert ok(srv, "kv", "list", "-mount=secret", "-format=json", name).json() == \
        ["one", "sub/"]
    assert ok(srv, "kv", "list", f"secret/{name}/").out.splitlines() == \
        ["Keys", "----", "one", "sub/"]
    missing = cli(srv, "kv", "list", f"secret/{name}-none")
    assert missing.code == 2 and "No value found at" in missing.err
    as_json = cli(srv, "kv", "list", "-format=json", f"secret/{name}-none")
    assert (as_json.code, json.loads(as_json.out)) == (2, {})


def test_kv_delete_undelete_destroy(srv: Server, name: str) -> None:
    path = f"secret/{name}"
    ok(srv, "kv", "put", path, "a=1")
    ok(srv, "kv", "put", path, "a=2")
    assert ok(srv, "kv", "delete", path).out.strip() == \
        f"Success! Data deleted (if it existed) at: secret/data/{name}"
    deleted = ok(srv, "kv", "get", "-format=json", path).json()["data"]
    assert deleted["data"] is None and deleted["metadata"]["deletion_time"]
    no_data = cli(srv, "kv", "get", "-field=a", path)
    assert (no_data.code, no_data.err.strip()) == (2, f"No data found at secret/data/{name}")
    assert ok(srv, "kv", "undelete", "-versions=2", path).out.strip() == \
        f"Success! Data written to: secret/undelete/{name}"
    assert ok(srv, "kv", "get", "-field=a", path).out == "2"
    ok(srv, "kv", "delete", "-versions=1", path)
    ok(srv, "kv", "destroy", "-versions=1", path)
    versions = ok(srv, "kv", "metadata", "get", "-format=json", path).json()["data"]["versions"]
    assert versions["1"]["destroyed"] is True and versions["2"]["destroyed"] is False
    for command in ("undelete", "destroy"):
        r = cli(srv, "kv", command, path)
        assert r.code == 1 and 'use the "-versions" flag' in r.err


def test_kv_metadata(srv: Server, name: str) -> None:
    path = f"secret/{name}"
    ok(srv, "kv", "put", path, "a=1")
    ok(srv, "kv", "metadata", "put", "-max-versions=5", "-custom-metadata=team=ops",
       "-cas-required=true", "-delete-version-after=1h", path)
    meta = ok(srv, "kv", "metadata", "get", "-format=json", path).json()
    assert secret_keys(meta) == SECRET_KEYS
    data = meta["data"]
    assert set(data) - OPENBAO_ONLY_KEYS == {
        "cas_required", "created_time", "current_version", "custom_metadata",
        "delete_version_after", "max_versions", "oldest_version", "updated_time", "versions"}
    assert (data["max_versions"], data["cas_required"], data["delete_version_after"],
            data["custom_metadata"]) == (5, True, "1h0m0s", {"team": "ops"})
    ok(srv, "kv", "metadata", "patch", "-max-versions=7", "-remove-custom-metadata=team", path)
    data = ok(srv, "kv", "metadata", "get", "-format=json", path).json()["data"]
    assert data["max_versions"] == 7 and not data["custom_metadata"]
    lines = ok(srv, "kv", "metadata", "get", path).out.splitlines()
    assert lines[:2] == ["== Metadata Path ==", f"secret/metadata/{name}"]
    assert "====== Version 1 ======" in lines
    ok(srv, "kv", "metadata", "delete", path)
    assert cli(srv, "kv", "metadata", "get", path).code == 2


def test_kv_v1_mount(srv: Server, name: str) -> None:
    ok(srv, "secrets", "enable", f"-path={name}", "kv")
    assert ok(srv, "kv", "put", f"{name}/x", "a=1").out.strip() == \
        f"Success! Data written to: {name}/x"
    assert ok(srv, "kv", "get", "-format=json", f"{name}/x").json()["data"] == {"a": "1"}
    lines = ok(srv, "kv", "get", f"{name}/x").out.splitlines()
    assert lines[0] == "== Data ==" and lines[3].split() == ["a", "1"]
    assert ok(srv, "kv", "list", "-format=json", name).json() == ["x"]
    assert cli(srv, "kv", "patch", f"{name}/x", "a=2").code == 2
    for command in (["metadata", "get"], ["undelete", "-versions=1"]):
        r = cli(srv, "kv", *command, f"{name}/x")
        assert r.code == 1 and "KV Version 1" in r.err
    ok(srv, "kv", "delete", f"{name}/x")
    assert cli(srv, "kv", "get", f"{name}/x").code == 2


def test_kv_path_outside_any_mount_is_403(srv: Server) -> None:
    """The KV version check on an unmounted path fails with 403 (Strongroom: 400)."""
    r = cli(srv, "kv", "get", "nomount/x")
    assert r.code == 2 and "Code: 403" in r.err


# --- policy --------------------------------------------------------------------

def test_policy_write_read_list_delete(srv: Server, name: str, tmp_path: Path) -> None:
    (tmp_path / "p.hcl").write_text(POLICY)
    assert ok(srv, "policy", "write", name, "p.hcl", cwd=tmp_path).out.strip() == \
        f"Success! Uploaded policy: {name}"
    assert ok(srv, "policy", "read", name).out.strip() == POLICY.strip()
    assert ok(srv, "policy", "read", "-format=json", name).json() == {"policy": POLICY}
    upper = ok(srv, "policy", "write", f"{name}-UP", "-", stdin=POLICY)
    assert f'converted from "{name}-UP" to "{name}-up"' in upper.err
    listed = ok(srv, "policy", "list", "-format=json").json()
    assert {name, f"{name}-up", "default", "root"} <= set(listed)
    assert name in ok(srv, "policy", "list").out.splitlines()
    assert ok(srv, "policy", "delete", name).out.strip() == f"Success! Deleted policy: {name}"
    gone = cli(srv, "policy", "read", name)
    assert (gone.code, gone.err.strip()) == (2, f"No policy named: {name}")
    assert ok(srv, "policy", "delete", name).code == 0  # deleting again is fine


def test_policy_errors(srv: Server, name: str) -> None:
    bad = cli(srv, "policy", "write", name, "-", stdin="path {")
    assert bad.code == 2 and "Code: 400" in bad.err
    assert cli(srv, "policy", "write", name, "/no/such/file.hcl").code == 2
    assert cli(srv, "policy", "write", name).code == 1
    root = cli(srv, "policy", "delete", "root")
    assert root.code == 2 and "Code: 400" in root.err


# --- token ---------------------------------------------------------------------

def test_token_create_json_and_table(srv: Server) -> None:
    out = ok(srv, "token", "create", "-format=json", "-policy=default", "-ttl=1h",
             "-metadata=team=ops", "-display-name=ci").json()
    assert secret_keys(out) == SECRET_KEYS | {"auth"}
    auth = out["auth"]
    assert set(auth) == AUTH_KEYS
    assert (auth["policies"], auth["token_policies"], auth["metadata"]) == \
        (["default"], ["default"], {"team": "ops"})
    assert (auth["lease_duration"], auth["renewable"], auth["orphan"]) == (3600, True, False)
    rows = table(ok(srv, "token", "create", "-policy=default", "-ttl=1h",
                    "-metadata=team=ops").out)
    assert list(rows) == ["token", "token_accessor", "token_duration", "token_renewable",
                          "token_policies", "identity_policies", "policies", "token_meta_team"]
    assert (rows["token_duration"], rows["token_policies"]) == ("1h", '["default"]')
    assert ok(srv, "token", "create", "-ttl=90", "-field=token_duration").out == "90"


def test_token_create_options(srv: Server, name: str) -> None:
    token = child_token(srv, "-orphan", "-no-default-policy", f"-policy={name}",
                        "-use-limit=5", "-explicit-max-ttl=2h", "-renewable=false")
    data = ok(srv, "token", "lookup", "-format=json", token).json()["data"]
    assert (data["orphan"], data["policies"], data["num_uses"], data["explicit_max_ttl"],
            data["renewable"]) == (True, [name], 5, 7200, False)
    periodic = child_token(srv, "-period=30m")
    assert ok(srv, "token", "lookup", "-format=json", periodic).json()["data"]["period"] == 1800
    assert cli(srv, "token", "create", "-ttl=abc").code == 1
    assert cli(srv, "token", "create", "-metadata=novalue").code == 1
    assert cli(srv, "token", "create", "extra").code == 1


def test_token_lookup(srv: Server) -> None:
    own = ok(srv, "token", "lookup", "-format=json").json()
    assert secret_keys(own) == SECRET_KEYS
    assert set(own["data"]) >= TOKEN_LOOKUP_KEYS
    assert (own["data"]["id"], own["data"]["policies"]) == (ROOT, ["root"])
    assert ok(srv, "token", "lookup", "-field=policies").out == "[root]"
    token = child_token(srv, "-policy=default")
    other = ok(srv, "token", "lookup", "-format=json", token).json()["data"]
    assert other["id"] == token and other["policies"] == ["default"]
    by_accessor = ok(srv, "token", "lookup", "-accessor", "-format=json",
                     other["accessor"]).json()["data"]
    assert by_accessor["accessor"] == other["accessor"] and not by_accessor["id"]
    assert cli(srv, "token", "lookup", "a", "b").code == 1
    assert cli(srv, "token", "lookup", "-accessor").code == 1


def test_token_lookup_unknown_token_is_403(srv: Server) -> None:
    """Looking up a token that does not exist is 403 "bad token" (Strongroom: 400)."""
    r = cli(srv, "token", "lookup", "no-such-token")
    assert r.code == 2 and "Code: 403" in r.err and "bad token" in r.err


def test_token_issue_time_is_rfc3339_utc(srv: Server) -> None:
    """Token times use Go's RFC 3339 form ending in Z (Strongroom: +00:00)."""
    issue = ok(srv, "token", "lookup", "-format=json").json()["data"]["issue_time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", issue), issue


def test_token_renew(srv: Server) -> None:
    token = child_token(srv, "-policy=default", "-ttl=1h")
    out = ok(srv, "token", "renew", "-increment=30m", "-format=json", token).json()
    assert set(out["auth"]) == AUTH_KEYS and out["auth"]["lease_duration"] == 1800
    assert table(ok(srv, "token", "renew", token).out)["token"] == token
    own = ok(srv, "token", "renew", "-format=json", token=token).json()
    assert own["auth"]["client_token"] == token


def test_token_revoke(srv: Server) -> None:
    for flags in ([], ["-mode=orphan"]):
        token = child_token(srv)
        assert ok(srv, "token", "revoke", *flags, token).out.strip() == \
            "Success! Revoked token (if it existed)"
        assert cli(srv, "token", "lookup", token).code == 2
    token = child_token(srv)
    accessor = ok(srv, "token", "lookup", "-field=accessor", token).out
    ok(srv, "token", "revoke", "-accessor", accessor)
    assert cli(srv, "token", "lookup", token).code == 2
    token = child_token(srv)
    ok(srv, "token", "revoke", "-self", token=token)
    assert cli(srv, "token", "lookup", token).code == 2
    for bad in (["-self", "x"], ["-self", "-accessor"], ["-mode=bad", "x"], [],
                ["-accessor", "-mode=orphan", "x"]):
        assert cli(srv, "token", "revoke", *bad).code == 1, bad


def test_token_revoke_by_path_prefix(srv: Server) -> None:
    """``-mode=path`` uses sys/leases/revoke-prefix (missing on Strongroom: 404)."""
    assert ok(srv, "token", "revoke", "-mode=path", "auth/token/create/no-such-role").code == 0


def test_token_revoke_unknown_accessor_succeeds(srv: Server) -> None:
    """OpenBao answers 204 for an unknown accessor (Strongroom: 400 invalid accessor)."""
    assert ok(srv, "token", "revoke", "-accessor", "no-such-accessor").code == 0


def test_token_capabilities(srv: Server) -> None:
    assert ok(srv, "token", "capabilities", "secret/data/x").out.strip() == "root"
    token = child_token(srv, "-policy=default")
    assert ok(srv, "token", "capabilities", token, "secret/data/x").out.strip() == "deny"
    assert ok(srv, "token", "capabilities", "-format=json", token,
              "secret/data/x").json() == ["deny"]
    assert ok(srv, "token", "capabilities", token, "cubbyhole/x").out.strip() == \
        "create, delete, list, read, update"
    assert cli(srv, "token", "capabilities").code == 1


def test_token_create_warns_about_missing_policy(srv: Server, name: str) -> None:
    """Vault warns about policies that do not exist (Strongroom: no warning)."""
    out = ok(srv, "token", "create", "-format=json", f"-policy={name}").json()
    assert out["warnings"] == [f'Policy "{name}" does not exist']


# --- secrets -------------------------------------------------------------------

def test_secrets_enable_list_disable(srv: Server, name: str) -> None:
    assert ok(srv, "secrets", "enable", f"-path={name}", "-description=team kv",
              "-version=2", "kv").out.strip() == \
        f"Success! Enabled the kv secrets engine at: {name}/"
    mounts = ok(srv, "secrets", "list", "-format=json").json()
    mount = mounts[f"{name}/"]
    assert set(mount) == MOUNT_KEYS
    assert (mount["type"], mount["description"], mount["options"]) == \
        ("kv", "team kv", {"version": "2"})
    assert {"secret/", "sys/", "cubbyhole/"} <= set(mounts)
    lines = ok(srv, "secrets", "list").out.splitlines()
    assert lines[0].split() == ["Path", "Type", "Accessor", "Description"]
    assert any(line.startswith(f"{name}/ ") and line.endswith("team kv") for line in lines)
    assert "Default TTL" in ok(srv, "secrets", "list", "-detailed").out.splitlines()[0]
    again = cli(srv, "secrets", "enable", f"-path={name}", "kv")
    assert again.code == 2 and "path is already in use" in again.err
    assert ok(srv, "secrets", "disable", name).out.strip() == \
        f"Success! Disabled the secrets engine (if it existed) at: {name}/"
    assert f"{name}/" not in ok(srv, "secrets", "list", "-format=json").json()
    assert ok(srv, "secrets", "disable", f"{name}-never").code == 0
    assert cli(srv, "secrets", "enable", f"-path={name}-x", "no-such-engine").code == 2


def test_secrets_enable_ttls(srv: Server, name: str) -> None:
    ok(srv, "secrets", "enable", f"-path={name}", "-default-lease-ttl=1h",
       "-max-lease-ttl=2h", "kv")
    tune = ok(srv, "read", "-format=json", f"sys/mounts/{name}/tune").json()["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (3600, 7200)


def test_secrets_tune(srv: Server, name: str) -> None:
    """vault sends "" for TTLs it leaves alone (Strongroom rejects "": expected duration)."""
    ok(srv, "secrets", "enable", f"-path={name}", "kv")
    assert ok(srv, "secrets", "tune", "-default-lease-ttl=30m", "-description=tuned",
              f"{name}/").out.strip() == f"Success! Tuned the secrets engine at: {name}/"
    tune = ok(srv, "read", "-format=json", f"sys/mounts/{name}/tune").json()["data"]
    assert (tune["default_lease_ttl"], tune["description"]) == (1800, "tuned")
    assert cli(srv, "secrets", "tune", "-max-lease-ttl=1h", f"{name}-none").code == 2


def test_secrets_move(srv: Server, name: str) -> None:
    """Moving polls sys/remount/status/<id> (missing on Strongroom: 404)."""
    ok(srv, "secrets", "enable", f"-path={name}", "kv")
    ok(srv, "kv", "put", f"{name}/x", "a=1")
    r = ok(srv, "secrets", "move", name, f"{name}-moved")
    assert r.out.splitlines()[-1].startswith(
        f"Success! Finished moving secrets engine {name}/ to {name}-moved/")
    assert ok(srv, "kv", "get", "-field=a", f"{name}-moved/x").out == "1"
    missing = cli(srv, "secrets", "move", f"{name}-none", f"{name}-other")
    assert missing.code == 2 and "Code: 400" in missing.err


def test_builtin_mounts_match_bao(srv: Server) -> None:
    """Built-in mount table entries as OpenBao reports them (several differ on Strongroom)."""
    mounts = ok(srv, "secrets", "list", "-format=json").json()
    assert mounts["cubbyhole/"]["local"] is True
    sys_mount = mounts["sys/"]
    assert re.fullmatch(r"[0-9a-f-]{36}", sys_mount["uuid"]), sys_mount["uuid"]
    assert sys_mount["description"] == \
        "system endpoints used for control, policy and debugging"
    assert sys_mount["seal_wrap"] is True


# --- read / write / list / delete ----------------------------------------------

def test_write_read_list_delete(srv: Server, name: str) -> None:
    path = f"cubbyhole/{name}"
    assert ok(srv, "write", path, "a=1").out.strip() == f"Success! Data written to: {path}"
    assert ok(srv, "write", "-format=json", f"{path}-quiet", "a=1").out == ""
    ok(srv, "write", f"{path}-json", "-", stdin='{"n": 1, "m": {"k": "v"}}')
    read = ok(srv, "read", "-format=json", f"{path}-json").json()
    assert secret_keys(read) == SECRET_KEYS and read["data"] == {"m": {"k": "v"}, "n": 1}
    assert table(ok(srv, "read", path).out) == {"a": "1"}
    assert ok(srv, "read", "-field=m", "-format=json", f"{path}-json").json() == {"k": "v"}
    assert ok(srv, "read", "-field=a", path).out == "1"
    assert set(ok(srv, "list", "-format=json", "cubbyhole").json()) >= \
        {name, f"{name}-json", f"{name}-quiet"}
    assert ok(srv, "delete", path).out.strip() == \
        f"Success! Data deleted (if it existed) at: {path}"
    assert ok(srv, "delete", "-format=json", f"{path}-quiet").out == ""
    missing = cli(srv, "read", path)
    assert (missing.code, missing.err.strip()) == (2, f"No value found at {path}")
    assert cli(srv, "write", path).code == 1  # no data and no -force
    assert cli(srv, "read").code == 1


def test_list_missing_path(srv: Server, name: str) -> None:
    r = cli(srv, "list", f"cubbyhole/{name}")
    assert r.code == 2 and "No value found at" in r.err
    as_json = cli(srv, "list", "-format=json", f"cubbyhole/{name}")
    assert (as_json.code, json.loads(as_json.out)) == (2, {})


# --- response wrapping ---------------------------------------------------------

def test_wrap_ttl_and_unwrap(srv: Server, name: str) -> None:
    out = ok(srv, "write", "-wrap-ttl=5m", "-format=json", "sys/wrapping/wrap",
             "a=b").json()
    info = out["wrap_info"]
    assert set(info) == WRAP_KEYS and (info["ttl"], info["creation_path"]) == \
        (300, "sys/wrapping/wrap")
    unwrapped = ok(srv, "unwrap", "-format=json", info["token"]).json()
    assert unwrapped["data"] == {"a": "b"}
    again = cli(srv, "unwrap", info["token"])
    assert again.code == 2 and "Code: 400" in again.err
    rows = table(ok(srv, "write", "sys/wrapping/wrap", "a=b").out)
    assert list(rows) == ["wrapping_token:", "wrapping_accessor:", "wrapping_token_ttl:",
                          "wrapping_token_creation_time:", "wrapping_token_creation_path:"]
    assert rows["wrapping_token_ttl:"] == "5m"  # sys/wrapping/wrap defaults to 5m
    assert table(ok(srv, "unwrap", rows["wrapping_token:"]).out) == {"a": "b"}
    ok(srv, "kv", "put", f"secret/{name}", "k=v")
    wrapped = ok(srv, "kv", "get", "-wrap-ttl=2m", "-format=json", f"secret/{name}").json()
    assert wrapped["wrap_info"]["creation_path"] == f"secret/data/{name}"
    assert wrapped["wrap_info"]["ttl"] == 120 and wrapped["data"] is None
    inner = ok(srv, "unwrap", "-format=json", wrapped["wrap_info"]["token"]).json()
    assert inner["data"]["data"] == {"k": "v"}
    read_token = ok(srv, "read", "-wrap-ttl=1m", "-field=wrapping_token",
                    f"secret/data/{name}").out
    # Without an argument the client token itself is the wrapping token.
    assert ok(srv, "unwrap", "-field=data", "-format=json", token=read_token).json() == \
        {"k": "v"}
    assert cli(srv, "unwrap", "a", "b").code == 1


def test_wrapped_response_has_no_request_id(srv: Server) -> None:
    """A wrapped answer carries an empty request_id (Strongroom sends one)."""
    out = ok(srv, "write", "-wrap-ttl=1m", "-format=json", "sys/wrapping/wrap", "a=b").json()
    assert out["request_id"] == ""


def test_wrapped_list_creation_path_keeps_slash(srv: Server, name: str) -> None:
    """A wrapped LIST records its path with a trailing slash (Strongroom drops it)."""
    ok(srv, "write", f"cubbyhole/{name}/x", "a=1")
    info = ok(srv, "list", "-wrap-ttl=1m", "-format=json", f"cubbyhole/{name}").json()
    assert info["wrap_info"]["creation_path"] == f"cubbyhole/{name}/"
    assert ok(srv, "unwrap", "-format=json", info["wrap_info"]["token"]).json() == ["x"]


# --- login ---------------------------------------------------------------------

def test_login_stores_token(srv: Server, tmp_path: Path) -> None:
    token = child_token(srv, "-policy=default", "-ttl=1h")
    r = ok(srv, "login", token, token=None, home=tmp_path)
    assert r.out.startswith("Success! You are now authenticated.")
    assert table(r.out[r.out.index("Key "):])["token"] == token
    stored = tmp_path / ".vault-token"
    assert stored.read_text() == token and stat.S_IMODE(stored.stat().st_mode) == 0o600
    looked = ok(srv, "token", "lookup", "-format=json", token=None, home=tmp_path).json()
    assert looked["data"]["id"] == token
    out = ok(srv, "login", "-format=json", "-no-store", token, token=None,
             home=tmp_path).json()
    assert out["request_id"] == "" and set(out["auth"]) == AUTH_KEYS
    assert (out["auth"]["client_token"], out["auth"]["token_policies"]) == (token, ["default"])
    only = ok(srv, "login", "-token-only", "-", stdin=token + "\n", token=None,
              home=tmp_path / "nowhere")
    assert only.out == token and not (tmp_path / "nowhere").exists()
    bad = cli(srv, "login", "not-a-token", token=None, home=tmp_path)
    assert bad.code == 2 and "Code: 403" in bad.err
    assert stored.read_text() == token
    assert cli(srv, "login", "-no-store", "-no-print", token, token=None).code == 1


# --- same JSON shape on both servers -------------------------------------------

def structure(value: Any, ignore: frozenset[str]) -> Any:
    """Keys and value types of a JSON document, for structural comparison."""
    if isinstance(value, dict):
        return {k: structure(v, ignore) for k, v in sorted(value.items()) if k not in ignore}
    if isinstance(value, list):
        return [structure(v, ignore) for v in value[:1]]
    return type(value).__name__


SHAPE_SETUP = [("kv", "put", "secret/shape", "a=1"), ("kv", "put", "secret/shape", "a=2"),
               ("write", "cubbyhole/shape", "a=1"), ("kv", "delete", "-versions=1",
                                                      "secret/shape")]
SHAPE_COMMANDS = [
    ("kv", "get", "-format=json", "secret/shape"),
    ("kv", "get", "-version=1", "-format=json", "secret/shape"),
    ("kv", "put", "-format=json", "secret/shape-2", "a=1"),
    ("kv", "metadata", "get", "-format=json", "secret/shape"),
    ("kv", "list", "-format=json", "secret/"),
    ("read", "-format=json", "cubbyhole/shape"),
    ("read", "-format=json", "sys/mounts/secret/tune"),
    ("token", "lookup", "-format=json"),
    ("token", "create", "-format=json", "-policy=default", "-metadata=a=b"),
    ("token", "capabilities", "-format=json", "cubbyhole/x"),
    ("policy", "read", "-format=json", "default"),
    ("secrets", "list", "-format=json"),
    ("write", "-format=json", "-wrap-ttl=1m", "sys/wrapping/wrap", "a=b"),
    ("kv", "get", "-format=json", "secret/shape-missing"),
    ("kv", "list", "-format=json", "secret/shape-missing/"),
]


@pytest.fixture(scope="module")
def shaped(servers: dict[str, Server]) -> dict[str, Server]:
    for server in servers.values():
        for args in SHAPE_SETUP:
            ok(server, *args)
    return servers


@pytest.mark.parametrize("args", SHAPE_COMMANDS, ids=" ".join)
def test_json_shape_matches_bao(shaped: dict[str, Server], args: tuple[str, ...]) -> None:
    """Same exit code and the same JSON keys/types as bao (values vary per server)."""
    ref, ours = (cli(shaped[k], *args) for k in ("bao", "strongroom"))
    assert ours.code == ref.code, ours.err
    ignore = frozenset(OPTIONAL_SECRET_KEYS | OPENBAO_ONLY_KEYS)
    if args[:2] == ("secrets", "list"):  # compare one kv mount, not the mount sets
        ref_doc, our_doc = (json.loads(r.out)["secret/"] for r in (ref, ours))
    else:
        ref_doc, our_doc = json.loads(ref.out or "null"), json.loads(ours.out or "null")
    assert structure(our_doc, ignore) == structure(ref_doc, ignore)
