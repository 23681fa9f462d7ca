"""sys/auth against Strongroom and OpenBao dev servers, side by side: the HTTP answers
(status, errors, the shape of each entry) and the ``bao auth ...`` commands.

Only the token method exists in both builds' common ground (OpenBao ships userpass,
Strongroom will with issue 15), so the scenario enables a type neither knows and
works on ``token/``; enabling a real method is covered in tests/unit/core/test_sys_auth.py.
"""

from __future__ import annotations

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
# Ids differ per server; what each names is compared through the other observations.
VOLATILE = {"accessor", "uuid", "running_plugin_version"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Path]]]:
    test_bao_cli.BAO = requires.bao()
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        yield {"openbao": (theirs.url, tmp_path_factory.mktemp("bao-cli")),
               "strongroom": (ours.url, tmp_path_factory.mktemp("sr-cli"))}


def observe(resp: requests.Response) -> tuple[int, Any]:
    if not resp.content:
        return resp.status_code, None
    body = resp.json()
    if "errors" in body:
        return resp.status_code, body["errors"]
    return resp.status_code, strip(body.get("data"))


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    return value


def http_scenario(url: str) -> dict[str, Any]:
    def call(method: str, path: str, body: Any = None, token: str | None = ROOT) -> Any:
        headers = {"X-Vault-Token": token} if token else {}
        return observe(requests.request(method, f"{url}/v1/{path}", json=body,
                                        headers=headers, timeout=TIMEOUT))

    seen: dict[str, Any] = {}
    seen["list"] = call("GET", "sys/auth")
    seen["read_token"] = call("GET", "sys/auth/token")
    seen["read_token_slash"] = call("GET", "sys/auth/token/")
    seen["enable_unknown"] = call("POST", "sys/auth/foo", {"type": "no-such-method"})
    seen["enable_secrets_type"] = call("POST", "sys/auth/foo", {"type": "kv"})
    seen["enable_no_type"] = call("POST", "sys/auth/foo", {})
    seen["enable_plugin_name_only"] = call("POST", "sys/auth/foo",
                                           {"plugin_name": "no-such-method"})
    seen["enable_bad_visibility"] = call("POST", "sys/auth/foo", {
        "type": "no-such-method", "config": {"listing_visibility": "bogus"}})
    seen["enable_bad_ttl"] = call("POST", "sys/auth/foo", {
        "type": "no-such-method", "config": {"default_lease_ttl": "bogus"}})
    seen["enable_bad_token_type"] = call("POST", "sys/auth/foo", {
        "type": "no-such-method", "config": {"token_type": "bogus"}})
    seen["enable_token_again"] = call("POST", "sys/auth/token", {"type": "token"})
    seen["enable_token_elsewhere"] = call("POST", "sys/auth/tok2", {"type": "token"})
    seen["enable_auth_method_as_secrets"] = call("POST", "sys/mounts/foo", {"type": "token"})
    seen["disable_token"] = call("DELETE", "sys/auth/token")
    seen["disable_missing"] = call("DELETE", "sys/auth/nothere")
    seen["read_missing"] = call("GET", "sys/auth/nothere")
    seen["tune_read_missing"] = call("GET", "sys/auth/nothere/tune")
    seen["tune_missing"] = call("POST", "sys/auth/nothere/tune", {"description": "x"})
    seen["tune_read_token"] = call("GET", "sys/auth/token/tune")
    seen["tune_token_type"] = call("POST", "sys/auth/token/tune", {"token_type": "batch"})
    seen["tune_secrets_token_type"] = call("POST", "sys/mounts/secret/tune",
                                           {"token_type": "batch"})
    seen["tune_visibility"] = call("POST", "sys/auth/token/tune",
                                   {"listing_visibility": "unauth"})
    seen["tune_visibility_bad"] = call("POST", "sys/auth/token/tune",
                                       {"listing_visibility": "nope"})
    seen["list_tuned"] = call("GET", "sys/auth")
    seen["ui_unauth"] = call("GET", "sys/internal/ui/mounts", token=None)
    seen["tune_reset"] = call("POST", "sys/auth/token/tune", {"listing_visibility": ""})
    seen["list_reset"] = call("GET", "sys/auth")
    seen["still_served"] = call("GET", "auth/token/lookup-self")[0]
    # sys/mounts/auth/<path>... names the auth table (`bao auth tune` uses it).
    seen["mounts_read_auth"] = call("GET", "sys/mounts/auth/token")
    seen["mounts_tune_read_auth"] = call("GET", "sys/mounts/auth/token/tune")
    seen["mounts_tune_read_auth_missing"] = call("GET", "sys/mounts/auth/nothere/tune")
    seen["mounts_read_auth_missing"] = call("GET", "sys/mounts/auth/nothere")
    seen["mounts_disable_auth"] = call("DELETE", "sys/mounts/auth/token")
    seen["mounts_enable_under_auth"] = call("POST", "sys/mounts/auth/x", {"type": "kv"})
    seen["mounts_disable_sys"] = call("DELETE", "sys/mounts/sys")
    seen["mounts_disable_cubbyhole"] = call("DELETE", "sys/mounts/cubbyhole")
    seen["mounts_read_missing"] = call("GET", "sys/mounts/nothere")
    seen["mounts_tune_read_missing"] = call("GET", "sys/mounts/nothere/tune")
    seen["mounts_tune_missing"] = call("POST", "sys/mounts/nothere/tune", {"description": "x"})
    for type_ in ("system", "identity", "cubbyhole", "token"):
        seen[f"mounts_enable_{type_}"] = call("POST", "sys/mounts/foo", {"type": type_})
    return seen


def test_sys_auth_like_openbao(servers: dict[str, tuple[str, Path]]) -> None:
    theirs = http_scenario(servers["openbao"][0])
    ours = http_scenario(servers["strongroom"][0])
    assert theirs["enable_unknown"] == (400, ["plugin not found in the catalog: no-such-method"])
    assert theirs["disable_token"] == (400, ["token credential backend cannot be disabled"])
    assert theirs["list_tuned"][1]["token/"]["config"]["listing_visibility"] == "unauth"
    compare(ours, theirs)


def cli_scenario(cli: Cli) -> dict[str, Any]:
    cli.run("list", "auth", "list")
    cli.run("list_json", "auth", "list", "-format=json")
    cli.run("enable_unknown", "auth", "enable", "no-such-method")
    cli.run("enable_token", "auth", "enable", "token")
    cli.run("disable_token", "auth", "disable", "token")
    cli.run("disable_missing", "auth", "disable", "nothere")
    cli.run("tune_token_visibility", "auth", "tune", "-listing-visibility=unauth", "token/")
    cli.run("read_tune", "read", "-format=json", "sys/auth/token/tune")
    cli.run("tune_token_reset", "auth", "tune", "-listing-visibility=", "token/")
    cli.run("tune_missing", "auth", "tune", "-description=x", "nothere/")
    return cli.seen


def test_bao_auth_commands_like_openbao(servers: dict[str, tuple[str, Path]]) -> None:
    seen = {kind: cli_scenario(Cli(url, home)) for kind, (url, home) in servers.items()}
    compare(seen["strongroom"], seen["openbao"])
