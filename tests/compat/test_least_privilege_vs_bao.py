"""Least-privilege tokens against Strongroom and OpenBao dev servers, side by side.

The other compat scenarios run as root, which hides every ACL difference: root
passes every check. Here each token holds one narrow policy (read on
``secret/data/app/*``, list on ``secret/metadata/``, a ``+`` pattern, ...), and
the real ``bao`` CLI and raw HTTP calls must come out the same on both servers:
exit code and normalised output for the CLI, status code, errors and the
relevant part of the body for HTTP.

It also covers ``sys/internal/ui/mounts[/<path>]``, which ``bao kv`` asks first
(the "preflight"): unauthenticated it must list only mounts tuned
``listing_visibility = "unauth"``; with a token, the mounts the token has any
capability under (Vault's ``hasMountAccess``); and its denial branches.

One module-scoped pair of servers; tests use disjoint paths, policies and mounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat import test_bao_cli
from tests.compat.test_bao_cli import Cli, compare
from tests.support import requires
from tests.support.servers import bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 10

POLICIES = {
    "lp-app-read": 'path "secret/data/app/*" { capabilities = ["read"] }',
    "lp-app-write": 'path "secret/data/app/*" { capabilities = ["create", "update"] }',
    "lp-lister": 'path "secret/metadata/" { capabilities = ["list"] }',
    "lp-meta": 'path "secret/metadata/app/*" { capabilities = ["read"] }',
    "lp-plus": 'path "+/data/app/*" { capabilities = ["read"] }',
    "lp-other-plus": 'path "other/+/x" { capabilities = ["read"] }',
    "lp-glob": 'path "secr*" { capabilities = ["read"] }',
    "lp-empty": 'path "secret/data/app/one" { capabilities = [] }',
    "lp-nowhere": 'path "nothing/here" { capabilities = ["read"] }',
    "lp-lpmount": 'path "lpmount/deep/path" { capabilities = ["update"] }',
    "lp-patch": 'path "secret/data/app/*" { capabilities = ["patch"] }',
    "lp-read-update": 'path "secret/data/app/*" { capabilities = ["read", "update"] }',
    "lp-delete": 'path "secret/data/app/*" { capabilities = ["delete"] }\n'
                 'path "secret/undelete/app/*" { capabilities = ["update"] }\n'
                 'path "secret/destroy/app/*" { capabilities = ["update"] }',
    "lp-meta-write": 'path "secret/metadata/app/*" { capabilities = ["create", "update"] }',
}


class Server:
    """One server's address plus root-made tokens for each policy above."""

    def __init__(self, kind: str, url: str, home: Path) -> None:
        self.kind, self.url, self.home = kind, url, home
        self.tokens: dict[str, str] = {}

    def call(self, method: str, path: str, token: str | None = ROOT,
             body: Any = None) -> requests.Response:
        headers = {"X-Vault-Token": token} if token is not None else {}
        return requests.request(method, f"{self.url}/v1/{path}", headers=headers,
                                json=body, timeout=TIMEOUT, allow_redirects=False)

    def ok(self, method: str, path: str, body: Any = None) -> requests.Response:
        resp = self.call(method, path, body=body)
        assert resp.status_code in (200, 204), (self.kind, path, resp.text)
        return resp

    def token(self, *policies: str, default: bool = True) -> str:
        resp = self.ok("POST", "auth/token/create",
                       {"policies": list(policies), "no_default_policy": not default})
        return str(resp.json()["auth"]["client_token"])


def setup(server: Server) -> None:
    for name, text in POLICIES.items():
        server.ok("PUT", f"sys/policies/acl/{name}", {"policy": text})
    server.ok("POST", "secret/data/app/one", {"data": {"user": "u1", "pass": "p1"}})
    server.ok("POST", "secret/data/other", {"data": {"x": "1"}})
    server.ok("POST", "secret/data/app/patched", {"data": {"a": "1"}})
    server.ok("POST", "secret/data/app/doomed", {"data": {"a": "1"}})
    server.ok("POST", "sys/mounts/lpmount/deep", {"type": "kv", "options": {"version": "2"}})
    for name in POLICIES:
        server.tokens[name] = server.token(name)
        server.tokens[name + "/only"] = server.token(name, default=False)
    server.tokens["default"] = server.token("default")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    # Cli runs the executable its module holds; skips locally, fails under CI, if absent.
    test_bao_cli.BAO = requires.bao()
    sr_dir = tmp_path_factory.mktemp("strongroom")
    bao_dir = tmp_path_factory.mktemp("bao")
    with strongroom_dev_server(sr_dir, root_token=ROOT) as ours, \
            bao_dev_server(bao_dir, root_token=ROOT) as theirs:
        # The CLI gets a HOME of its own: a dev server leaves its root token in
        # ~/.vault-token, which an empty VAULT_TOKEN would fall back to.
        pair = {kind: Server(kind, url, tmp_path_factory.mktemp(kind + "-cli"))
                for kind, url in (("openbao", theirs.url), ("strongroom", ours.url))}
        for server in pair.values():
            setup(server)
        yield pair


def observe(resp: requests.Response, *fields: str) -> tuple[int, Any]:
    """Status plus errors, or the named top-level ``data`` fields (or data's keys)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.status_code, resp.text.strip()
    if "errors" in body:
        return resp.status_code, {"errors": body["errors"]}
    data = body.get("data") or {}
    if not fields:
        return resp.status_code, sorted(data)
    return resp.status_code, {f: data.get(f, "<missing>") for f in fields}


def ui_listing(resp: requests.Response) -> tuple[int, Any]:
    """Status and, per table, the mounts listed with the keys of each entry."""
    try:
        body = resp.json()
    except ValueError:
        return resp.status_code, resp.text.strip()
    if "errors" in body:
        return resp.status_code, body["errors"]
    return resp.status_code, {
        table: {path: sorted(entry) for path, entry in sorted(mounts.items())}
        for table, mounts in sorted(body["data"].items())
    }


def both(servers: dict[str, Server], fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    seen = {kind: fn(server) for kind, server in servers.items()}
    return seen["strongroom"], seen["openbao"]


def differ(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    compare(ours, theirs)


# ------------------------------------------------------------------ bao CLI, narrow tokens


def cli_for(server: Server) -> Cli:
    return Cli(server.url, server.home)


def kv_scenario(server: Server) -> dict[str, Any]:
    cli, t = cli_for(server), server.tokens
    read, read_only = t["lp-app-read"], t["lp-app-read/only"]
    cli.run("read.get", "kv", "get", "secret/app/one", token=read)
    got = cli.run("read.get_json", "kv", "get", "-format=json", "secret/app/one", token=read)
    cli.value("read.get_json.data", got["data"]["data"] if isinstance(got, dict) else got)
    cli.run("read.get_mount_flag", "kv", "get", "-mount=secret", "app/one", token=read)
    cli.run("read.get_field", "kv", "get", "-field=user", "secret/app/one", token=read)
    cli.run("read_only.get", "kv", "get", "-field=pass", "secret/app/one", token=read_only)
    cli.run("read.get_outside", "kv", "get", "secret/other", token=read)
    cli.run("read.get_missing", "kv", "get", "secret/app/none", token=read)
    cli.run("read.put", "kv", "put", "secret/app/one", "user=evil", token=read)
    cli.run("read.list", "kv", "list", "secret/", token=read)
    cli.run("read.metadata_get", "kv", "metadata", "get", "secret/app/one", token=read)
    cli.run("read.token_lookup", "token", "lookup", "-format=json", token=read)
    cli.run("read_only.token_lookup", "token", "lookup", "-format=json", token=read_only)
    cli.run("read.get_other_mount", "kv", "get", "cubbyhole/x", token=read_only)

    write = t["lp-app-write"]
    cli.run("write.put", "kv", "put", "secret/app/two", "a=1", token=write)
    cli.run("write.put_json", "kv", "put", "-format=json", "secret/app/three", "a=1",
            token=write)
    cli.run("write.get", "kv", "get", "secret/app/two", token=write)
    cli.run("write.put_outside", "kv", "put", "secret/other", "a=1", token=write)

    lister = t["lp-lister/only"]
    listed = cli.run("lister.list", "kv", "list", "-format=json", "secret/", token=lister)
    cli.value("lister.list", sorted(listed) if isinstance(listed, list) else listed)
    cli.run("lister.list_table", "kv", "list", "secret/", token=lister)
    cli.run("lister.list_sub", "kv", "list", "secret/app/", token=lister)
    cli.run("lister.get", "kv", "get", "secret/app/one", token=lister)

    meta = t["lp-meta/only"]
    cli.run("meta.metadata_get", "kv", "metadata", "get", "secret/app/one", token=meta)
    cli.run("meta.get", "kv", "get", "secret/app/one", token=meta)

    plus = t["lp-plus/only"]
    cli.run("plus.get", "kv", "get", "-field=user", "secret/app/one", token=plus)
    cli.run("glob.get", "kv", "get", "-field=user", "secret/app/one",
            token=t["lp-glob/only"])

    cli.run("patch.patch", "kv", "patch", "secret/app/patched", "b=2",
            token=t["lp-patch/only"])
    cli.run("read_update.patch", "kv", "patch", "secret/app/patched", "c=3",
            token=t["lp-read-update/only"])
    cli.run("read_update.patch_rw", "kv", "patch", "-method=rw", "secret/app/patched", "d=4",
            token=t["lp-read-update/only"])
    cli.run("patch.get", "kv", "get", "secret/app/patched", token=t["lp-patch/only"])
    deleter = t["lp-delete/only"]
    cli.run("delete.delete", "kv", "delete", "secret/app/doomed", token=deleter)
    cli.run("delete.undelete", "kv", "undelete", "-versions=1", "secret/app/doomed",
            token=deleter)
    cli.run("delete.destroy", "kv", "destroy", "-versions=1", "secret/app/doomed", token=deleter)
    cli.run("delete.metadata_delete", "kv", "metadata", "delete", "secret/app/doomed",
            token=deleter)
    cli.run("meta_write.put", "kv", "metadata", "put", "-max-versions=3", "secret/app/one",
            token=t["lp-meta-write/only"])
    cli.run("meta_write.get", "kv", "metadata", "get", "secret/app/one",
            token=t["lp-meta-write/only"])

    dflt = t["default"]
    cli.run("default.get", "kv", "get", "secret/app/one", token=dflt)
    cli.run("default.token_lookup", "token", "lookup", "-format=json", token=dflt)
    cli.run("default.capabilities", "token", "capabilities", "secret/data/app/one",
            token=dflt)
    cli.run("empty.get", "kv", "get", "secret/app/one", token=t["lp-empty/only"])
    cli.run("nowhere.get", "kv", "get", "secret/app/one", token=t["lp-nowhere/only"])
    cli.run("none.get", "kv", "get", "secret/app/one", token="")
    cli.run("bogus.get", "kv", "get", "secret/app/one", token="not-a-real-token")
    return cli.seen


def test_kv_cli_with_narrow_tokens(servers: dict[str, Server]) -> None:
    ours, theirs = both(servers, kv_scenario)
    # Guards against a scenario that passes vacuously on both sides.
    assert theirs["read.get"][0] == 0 and theirs["=read.get_json.data"] == {
        "pass": "p1", "user": "u1"}
    assert theirs["read_only.get"] == (0, "p1")
    assert theirs["read.get_outside"][0] == 2 and theirs["read.put"][0] == 2
    assert theirs["lister.list"][0] == 0 and theirs["=lister.list"] == ["app/", "other"]
    assert theirs["meta.metadata_get"][0] == 0 and theirs["plus.get"] == (0, "u1")
    assert "preflight capability check returned 403" in theirs["default.get"][1]
    assert theirs["patch.patch"][0] == 0 and theirs["patch.get"][0] == 2
    assert theirs["delete.destroy"][0] == 0 and theirs["meta_write.put"][0] == 0
    differ(ours, theirs)


# ------------------------------------------------------------- sys/internal/ui/mounts/<path>


def one_mount_scenario(server: Server) -> dict[str, Any]:
    t, seen = server.tokens, {}
    cases = [
        ("no_token.secret", None, "secret"),
        ("no_token.unknown", None, "nothing"),
        ("bogus.secret", "bogus-token", "secret"),
        ("bogus.unknown", "bogus-token", "nothing"),
        ("read.mount", t["lp-app-read/only"], "secret"),
        ("read.deep", t["lp-app-read/only"], "secret/data/app/one"),
        ("read.other_mount", t["lp-app-read/only"], "cubbyhole"),
        ("read.unknown", t["lp-app-read/only"], "nothing/at/all"),
        ("read.auth_token", t["lp-app-read/only"], "auth/token"),
        ("read.sys", t["lp-app-read/only"], "sys"),
        ("lister.mount", t["lp-lister/only"], "secret"),
        ("meta.mount", t["lp-meta/only"], "secret"),
        ("plus.mount", t["lp-plus/only"], "secret"),
        ("plus.cubbyhole", t["lp-plus/only"], "cubbyhole"),
        ("plus.two_segment_mount", t["lp-plus/only"], "lpmount/deep"),
        ("other_plus.mount", t["lp-other-plus/only"], "secret"),
        ("glob.mount", t["lp-glob/only"], "secret"),
        ("empty.mount", t["lp-empty/only"], "secret"),
        ("nowhere.mount", t["lp-nowhere/only"], "secret"),
        ("deep_rule.mount", t["lp-lpmount/only"], "lpmount/deep"),
        ("deep_rule.other", t["lp-lpmount/only"], "secret"),
        ("default.auth_token", t["default"], "auth/token"),
        ("default.auth_token_deep", t["default"], "auth/token/lookup-self"),
        ("default.sys", t["default"], "sys"),
        ("default.identity", t["default"], "identity"),
        ("default.cubbyhole", t["default"], "cubbyhole"),
        ("default.secret", t["default"], "secret"),
        ("root.sys", ROOT, "sys"),
        ("root.identity", ROOT, "identity"),
        ("root.auth_token", ROOT, "auth/token"),
        ("root.auth", ROOT, "auth"),
        ("root.auth_unknown", ROOT, "auth/nothing"),
        ("root.unknown", ROOT, "nothing"),
    ]
    for name, token, path in cases:
        resp = server.call("GET", f"sys/internal/ui/mounts/{path}", token=token)
        seen[name] = observe(resp, "path", "type", "options")
        if resp.status_code == 200:
            seen[name + ".keys"] = sorted(resp.json()["data"])
    # The bare prefix with a trailing slash is not the listing endpoint. (OpenBao's
    # message is a bare "unsupported path" here, ours the multierror form every
    # unrouted sys/ path gets: only the status is compared.)
    trailing = server.call("GET", "sys/internal/ui/mounts/", token=None)
    seen["trailing_slash"] = (trailing.status_code, "data" in trailing.json())
    return seen


def test_ui_mount_read_answers_like_openbao(servers: dict[str, Server]) -> None:
    ours, theirs = both(servers, one_mount_scenario)
    assert theirs["read.mount"] == (200, {"path": "secret/", "type": "kv",
                                          "options": {"version": "2"}})
    assert theirs["no_token.unknown"] == (403, {"errors": ["permission denied"]})
    assert theirs["read.other_mount"][0] == 403
    differ(ours, theirs)


# ------------------------------------------------------------------ sys/internal/ui/mounts


def listing_scenario(server: Server) -> dict[str, Any]:
    t = server.tokens
    cases = {
        "no_token": None,
        "bogus": "bogus-token",
        "read": t["lp-app-read/only"],
        "lister": t["lp-lister/only"],
        "plus": t["lp-plus/only"],
        "other_plus": t["lp-other-plus/only"],
        "deep_rule": t["lp-lpmount/only"],
        "nowhere": t["lp-nowhere/only"],
        "default": t["default"],
        "root": ROOT,
    }
    return {name: ui_listing(server.call("GET", "sys/internal/ui/mounts", token=token))
            for name, token in cases.items()}


def test_ui_mounts_listing_is_filtered_like_openbao(servers: dict[str, Server]) -> None:
    ours, theirs = both(servers, listing_scenario)
    assert theirs["no_token"] == (200, {"auth": {}, "secret": {}})
    assert theirs["bogus"] == (403, ["permission denied"])
    assert list(theirs["read"][1]["secret"]) == ["secret/"]
    differ(ours, theirs)


def test_unauthenticated_listing_leaks_no_mount(servers: dict[str, Server]) -> None:
    """The finding itself: no token, nothing listed (no path, type, uuid or accessor)."""
    resp = servers["strongroom"].call("GET", "sys/internal/ui/mounts", token=None)
    assert resp.status_code == 200
    assert resp.json()["data"] == {"auth": {}, "secret": {}}


# ------------------------------------------------------------------ listing_visibility


def visibility_scenario(server: Server) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    call = server.call
    seen["enable_bad"] = observe(call("POST", "sys/mounts/lpbad", body={
        "type": "kv", "config": {"listing_visibility": "bogus"}}))
    seen["enable_bad.mounted"] = "lpbad/" in call("GET", "sys/mounts").json()["data"]
    seen["enable_vis"] = call("POST", "sys/mounts/lpvis", body={
        "type": "kv", "description": "visible", "options": {"version": "2"},
        "config": {"listing_visibility": "unauth"}}).status_code
    seen["read_mount"] = call("GET", "sys/mounts/lpvis").json()["data"]["config"].get(
        "listing_visibility")
    seen["read_tune"] = observe(call("GET", "sys/mounts/lpvis/tune"), "listing_visibility")
    seen["unauth_list"] = call("GET", "sys/internal/ui/mounts", token=None).json()["data"]
    # An unauth-visible mount is listed in full to any token, even one with no access.
    nowhere = server.tokens["lp-nowhere/only"]
    seen["token_list"] = ui_listing(call("GET", "sys/internal/ui/mounts", token=nowhere))
    # ...but the one-mount endpoint still checks the token's access.
    seen["token_one"] = observe(call("GET", "sys/internal/ui/mounts/lpvis", token=nowhere))
    seen["unauth_one"] = observe(call("GET", "sys/internal/ui/mounts/lpvis", token=None))

    seen["tune_bad"] = observe(call("POST", "sys/mounts/secret/tune",
                                    body={"listing_visibility": "nope"}))
    seen["tune_secret"] = call("POST", "sys/mounts/secret/tune",
                               body={"listing_visibility": "unauth"}).status_code
    seen["tune_auth"] = call("POST", "sys/auth/token/tune",
                             body={"listing_visibility": "unauth"}).status_code
    seen["tune_auth_bad"] = observe(call("POST", "sys/auth/token/tune",
                                         body={"listing_visibility": "nope"}))
    seen["read_auth_tune"] = observe(call("GET", "sys/auth/token/tune"), "listing_visibility")
    seen["auth_list_config"] = call("GET", "sys/auth").json()["data"]["token/"]["config"].get(
        "listing_visibility")
    seen["unauth_list_all"] = call("GET", "sys/internal/ui/mounts", token=None).json()["data"]

    seen["hide_secret"] = call("POST", "sys/mounts/secret/tune",
                               body={"listing_visibility": "hidden"}).status_code
    seen["read_tune_hidden"] = observe(call("GET", "sys/mounts/secret/tune"),
                                       "listing_visibility")
    seen["reset_secret"] = call("POST", "sys/mounts/secret/tune",
                                body={"listing_visibility": ""}).status_code
    seen["read_tune_reset"] = observe(call("GET", "sys/mounts/secret/tune"),
                                      "listing_visibility")
    seen["reset_auth"] = call("POST", "sys/auth/token/tune",
                              body={"listing_visibility": ""}).status_code
    seen["disable_vis"] = call("DELETE", "sys/mounts/lpvis").status_code
    seen["unauth_list_after"] = call("GET", "sys/internal/ui/mounts", token=None).json()["data"]
    return seen


def test_listing_visibility_like_openbao(servers: dict[str, Server]) -> None:
    ours, theirs = both(servers, visibility_scenario)
    assert theirs["unauth_list"] == {"auth": {}, "secret": {"lpvis/": {
        "description": "visible", "options": {"version": "2"}, "type": "kv"}}}
    assert theirs["read_tune"] == (200, {"listing_visibility": "unauth"})
    assert theirs["unauth_list_after"] == {"auth": {}, "secret": {}}
    differ(ours, theirs)


def test_scenarios_left_no_visibility_behind(servers: dict[str, Server]) -> None:
    """The visibility test restores both servers (later tests see no extra mounts)."""
    for server in servers.values():
        data = server.call("GET", "sys/internal/ui/mounts", token=None).json()["data"]
        assert data == {"auth": {}, "secret": {}}, (server.kind, json.dumps(data))


# ------------------------------------------------------------------ LIST and the trailing slash

#: Policies whose verdict on a trailing-slash LIST depends on the order Vault tries
#: the full and the trimmed path (GHSA-xp3c-3jw3-4vcr, fixed in OpenBao 2.6.0).
LIST_POLICIES = {
    "deny_folder": ['path "secret/metadata/*" { capabilities = ["list"] }',
                    'path "secret/metadata/private/*" { capabilities = ["deny"] }'],
    "broad_read": ['path "secret/*" { capabilities = ["read"] }',
                   'path "secret/metadata/*" { capabilities = ["list"] }'],
    "glob_no_slash": ['path "secret/metadata/*" { capabilities = ["list"] }',
                      'path "secret/metadata*" { capabilities = ["read"] }'],
    "plus_last": ['path "secret/metadata/+" { capabilities = ["list"] }',
                  'path "secret/*" { capabilities = ["read"] }'],
    "plus_slash": ['path "secret/+/" { capabilities = ["list"] }',
                   'path "secret/*" { capabilities = ["read"] }'],
    "plus_trimmed": ['path "secret/+" { capabilities = ["list"] }',
                     'path "secret/*" { capabilities = ["read"] }'],
    "plus_only": ['path "secret/metadata/+" { capabilities = ["list"] }'],
}
LIST_PATHS = ("secret/metadata/", "secret/metadata/private/")


def list_scenario(server: Server) -> dict[str, Any]:
    server.ok("POST", "secret/data/private/app", {"data": {"k": "v"}})
    seen: dict[str, Any] = {}
    for name, rules in LIST_POLICIES.items():
        server.ok("PUT", f"sys/policies/acl/lp-list-{name}", {"policy": "\n".join(rules)})
        token = server.token(f"lp-list-{name}", default=False)
        for path in LIST_PATHS:
            seen[f"{name} LIST {path}"] = server.call("LIST", path, token=token).status_code
        caps = server.ok("POST", "sys/capabilities", {
            "token": token, "paths": [*LIST_PATHS, "secret/metadata"]}).json()["data"]
        seen[f"{name} capabilities"] = caps
    return seen


def test_list_with_trailing_slash_judged_like_openbao(servers: dict[str, Server]) -> None:
    ours, theirs = both(servers, list_scenario)
    assert theirs["deny_folder LIST secret/metadata/private/"] == 403
    assert theirs["deny_folder LIST secret/metadata/"] == 200
    assert theirs["broad_read LIST secret/metadata/"] == 200
    assert theirs["plus_only LIST secret/metadata/private/"] == 200
    differ(ours, theirs)
