"""sys/leases/* against Strongroom and OpenBao dev servers, side by side, on token leases
(the one kind of lease both builds issue without a database), and ``strongroom lease``
against ``bao lease`` on the same (OpenBao) server.

Observed: status codes, error messages, the keys of each data block and the values
that do not depend on the run (path, renewable, whether a time is set). The legacy
sys/renew, sys/revoke... paths are Vault's, which OpenBao 2 dropped: not compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat import test_bao_cli
from tests.compat.test_bao_cli import compare, normalise_text
from tests.support import requires
from tests.support.servers import REPO, bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 10
CLI_TIMEOUT = 60
PRODUCT = ("OpenBao's", "Strongroom's")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    test_bao_cli.BAO = requires.bao()
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        yield {"openbao": theirs.url, "strongroom": ours.url}


class Http:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, body: Any = None,
                 token: str = ROOT) -> requests.Response:
        return requests.request(method, f"{self.url}/v1/{path}", json=body, timeout=TIMEOUT,
                                headers={"X-Vault-Token": token})

    def token(self, **body: Any) -> dict[str, Any]:
        resp = self("POST", "auth/token/create", {"policies": ["default"], **body})
        assert resp.status_code == 200, resp.text
        return resp.json()["auth"]  # type: ignore[no-any-return]

    def keys(self, prefix: str) -> list[str]:
        resp = self("LIST", "sys/leases/lookup/" + prefix)
        return resp.json()["data"]["keys"] if resp.status_code == 200 else []


def observe(resp: requests.Response) -> tuple[int, Any]:
    if not resp.content:
        return resp.status_code, None
    body = resp.json()
    if "errors" in body:
        return resp.status_code, body["errors"]
    warnings = [w.replace(*PRODUCT) for w in body.get("warnings") or []]
    return resp.status_code, sorted(body["data"]) if body.get("data") else None, warnings


def lookup_values(data: dict[str, Any]) -> dict[str, Any]:
    return {"path": data["path"], "renewable": data["renewable"],
            "expires": data["expire_time"] is not None,
            "renewed": data["last_renewal"] is not None,
            "ttl_about_an_hour": 3590 <= data["ttl"] <= 3600}


def http_scenario(call: Http) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    before = set(call.keys("auth/token/create/"))
    made = call.token(ttl="1h")
    [key] = set(call.keys("auth/token/create/")) - before
    lease_id = "auth/token/create/" + key
    seen["list-keys-are-the-token-leases"] = len(call.keys("auth/token/create/")) - len(before)
    seen["list-auth"] = call.keys("auth/")
    seen["list-token"] = call.keys("auth/token/")
    found = call("PUT", "sys/leases/lookup", {"lease_id": lease_id})
    seen["lookup"] = observe(found)
    seen["lookup-values"] = lookup_values(found.json()["data"])
    seen["lookup-id"] = found.json()["data"]["id"] == lease_id
    for name, (method, path, body) in {
        "renew-token-lease": ("PUT", "sys/leases/renew", {"lease_id": lease_id}),
        "renew-token-lease-url": ("PUT", "sys/leases/renew/" + lease_id, None),
        "lookup-unknown": ("PUT", "sys/leases/lookup", {"lease_id": "auth/token/create/x"}),
        "lookup-empty": ("PUT", "sys/leases/lookup", {}),
        "renew-empty": ("PUT", "sys/leases/renew", {}),
        "renew-unknown": ("PUT", "sys/leases/renew", {"lease_id": "nope/x"}),
        "renew-relative": ("PUT", "sys/leases/renew", {"lease_id": "nope/../x"}),
        "revoke-empty": ("PUT", "sys/leases/revoke", {}),
        "revoke-unknown": ("PUT", "sys/leases/revoke", {"lease_id": "x/y"}),
        "revoke-unknown-async": ("PUT", "sys/leases/revoke", {"lease_id": "x/y",
                                                              "sync": False}),
        "revoke-prefix-none": ("PUT", "sys/leases/revoke-prefix/auth/token/nothing", None),
        "revoke-prefix-none-async": ("PUT", "sys/leases/revoke-prefix/auth/token/nothing",
                                     {"sync": False}),
        "revoke-force-none": ("PUT", "sys/leases/revoke-force/auth/token/nothing", None),
        "list-none": ("LIST", "sys/leases/lookup/nothing/", None),
        "tidy": ("PUT", "sys/leases/tidy", None),
    }.items():
        seen[name] = observe(call(method, path, body))
    # Non-sudo callers: the prefix operations and LIST need sudo.
    policy = 'path "sys/leases/*" { capabilities = ["update", "list"] }'
    assert call("PUT", "sys/policies/acl/leases", {"policy": policy}).status_code == 204
    user = call.token(policies=["leases"], ttl="1h")["client_token"]
    seen["nosudo-list"] = observe(call("LIST", "sys/leases/lookup/auth/", token=user))
    seen["nosudo-revoke-prefix"] = observe(
        call("PUT", "sys/leases/revoke-prefix/auth/token/x", token=user))
    seen["nosudo-revoke-force"] = observe(
        call("PUT", "sys/leases/revoke-force/auth/token/x", token=user))
    seen["nosudo-lookup"] = observe(call("PUT", "sys/leases/lookup", {"lease_id": lease_id},
                                         token=user))
    # Break-glass on one token's lease: that token is gone, its sibling is not.
    sibling = call.token(ttl="1h")
    seen["revoke-prefix-exact"] = observe(call("PUT", "sys/leases/revoke-prefix/" + lease_id))
    seen["revoked-token"] = observe(call("GET", "auth/token/lookup-self",
                                         token=made["client_token"]))
    seen["sibling-token"] = call("GET", "auth/token/lookup-self",
                                 token=sibling["client_token"]).status_code
    seen["renew-revoked"] = observe(call("PUT", "sys/leases/renew", {"lease_id": lease_id}))
    seen["lookup-revoked"] = observe(call("PUT", "sys/leases/lookup", {"lease_id": lease_id}))
    # sys/leases/revoke of a token lease revokes the token too.
    before = set(call.keys("auth/token/create/"))
    victim = call.token(ttl="1h")
    [victim_key] = set(call.keys("auth/token/create/")) - before
    seen["revoke-token-lease"] = observe(
        call("PUT", "sys/leases/revoke", {"lease_id": "auth/token/create/" + victim_key}))
    seen["victim-token"] = observe(call("GET", "auth/token/lookup-self",
                                        token=victim["client_token"]))
    # Orphans (auth/token/create-orphan) live under their own prefix.
    orphan = call("POST", "auth/token/create-orphan", {"ttl": "1h"}).json()["auth"]
    seen["orphan-prefix"] = len(call.keys("auth/token/create-orphan/"))
    seen["revoke-orphans"] = observe(call("PUT", "sys/leases/revoke-prefix/auth/token/"
                                          "create-orphan"))
    seen["orphan-gone"] = observe(call("GET", "auth/token/lookup-self",
                                       token=orphan["client_token"]))
    return seen


def test_sys_leases_match_openbao(servers: dict[str, str]) -> None:
    records = {kind: http_scenario(Http(url)) for kind, url in servers.items()}
    assert records["openbao"]["lookup"][0] == 200  # the scenario is not vacuous
    assert records["openbao"]["revoked-token"][0] == 403
    compare(records["strongroom"], records["openbao"])


# -- the CLI: strongroom lease vs bao lease, on the same (OpenBao) server ---------------


def strongroom_cli(addr: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env.update(PYTHONPATH=str(REPO / "server"), VAULT_ADDR=addr, VAULT_TOKEN=ROOT,
               HOME=str(home))
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT,
                          check=False)


def bao_cli(addr: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(VAULT_ADDR=addr, BAO_ADDR=addr, VAULT_TOKEN=ROOT, BAO_TOKEN=ROOT,
               HOME=str(home))
    assert test_bao_cli.BAO is not None
    return subprocess.run([test_bao_cli.BAO, *args], capture_output=True, text=True, env=env,
                          timeout=CLI_TIMEOUT, check=False)


def cli_observation(proc: subprocess.CompletedProcess[str], addr: str, lease_id: str) -> Any:
    text = (proc.stdout + proc.stderr).replace("OpenBao", "Strongroom")
    text = text.replace(lease_id, "<lease id>")  # each CLI works on its own token
    if "-format=json" in proc.args and proc.returncode == 0:
        body = json.loads(proc.stdout)
        data = body.get("data") or {}
        return proc.returncode, sorted(body), sorted(data), lookup_values(data) if (
            "path" in data) else None
    return proc.returncode, normalise_text(text, addr)


def test_lease_cli_matches_bao(servers: dict[str, str], tmp_path: Path) -> None:
    addr = servers["openbao"]
    call = Http(addr)
    records: dict[str, dict[str, Any]] = {"bao": {}, "strongroom": {}}
    for kind, run in (("bao", bao_cli), ("strongroom", strongroom_cli)):
        seen = records[kind]
        before = set(call.keys("auth/token/create/"))
        call.token(ttl="1h")
        [key] = set(call.keys("auth/token/create/")) - before
        lease_id = "auth/token/create/" + key
        for name, args in {
            "lookup-json": ("lease", "lookup", "-format=json", lease_id),
            "lookup-missing": ("lease", "lookup", "nope/x"),
            "lookup-noid": ("lease", "lookup"),
            "lookup-toomany": ("lease", "lookup", "a", "b"),
            "renew-token": ("lease", "renew", lease_id),
            "renew-noid": ("lease", "renew"),
            "renew-unknown": ("lease", "renew", "-increment=1h", "nope/x"),
            "revoke-noargs": ("lease", "revoke"),
            "revoke-force-noprefix": ("lease", "revoke", "-force", "x"),
            "revoke-async": ("lease", "revoke", "nope/x"),
            "revoke-sync": ("lease", "revoke", "-sync", "nope/x"),
            "revoke-prefix-sync": ("lease", "revoke", "-prefix", "-sync",
                                   "auth/token/nothing"),
            "revoke-prefix-async": ("lease", "revoke", "-prefix", "auth/token/nothing"),
            "revoke-force": ("lease", "revoke", "-prefix", "-force", "auth/token/nothing"),
            "revoke-exact": ("lease", "revoke", "-sync", lease_id),
            "lookup-after": ("lease", "lookup", lease_id),
        }.items():
            seen[name] = cli_observation(run(addr, tmp_path / kind, *args), addr, lease_id)
    assert records["bao"]["lookup-json"][0] == 0
    compare(records["strongroom"], records["bao"])
