"""Audit devices against OpenBao 2.7, side by side: the sys/audit answers (status and
error text for good and bad input), the ``bao audit ...`` commands, and the shape of
the entries a file device writes for the same requests (which blocks and fields each
entry has, and which values are HMAC'd).

OpenBao 2.7 enables devices through the API only when its config says
``unsafe_allow_api_audit_creation = true`` (and ``allow_audit_log_prefixing`` for
``prefix``); Vault and Strongroom allow both, so bao runs with both set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat import test_bao_cli
from tests.compat.test_bao_cli import Cli, compare
from tests.support import requires
from tests.support.audit import entries
from tests.support.servers import REPO, free_port_pair, running, strongroom_dev_server

ROOT = "root"
TIMEOUT = 10
# Fields OpenBao 2.7 adds that Vault's format does not define, or that name OpenBao's
# own machinery (client counting, plugin versions, the policies that granted access).
BAO_ONLY = {"client_id", "mount_running_version", "mount_running_plugin_version",
            "mount_class", "policy_results", "mount_running_sha256",
            "mount_is_external_plugin"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Path]]]:
    bao = requires.bao()
    test_bao_cli.BAO = bao
    work = tmp_path_factory.mktemp("bao")
    config = work / "audit.hcl"
    config.write_text("unsafe_allow_api_audit_creation = true\n"
                      "allow_audit_log_prefixing = true\n")
    port = free_port_pair()
    args = [bao, "server", "-dev", f"-dev-root-token-id={ROOT}", f"-config={config}",
            f"-dev-listen-address=127.0.0.1:{port}"]
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            running(args, work, "bao.log", f"http://127.0.0.1:{port}",
                    env={**os.environ, "HOME": str(work)}) as theirs:
        yield {"openbao": (theirs.url, tmp_path_factory.mktemp("bao-logs")),
               "strongroom": (ours.url, tmp_path_factory.mktemp("sr-logs"))}


def call(url: str, method: str, path: str, body: Any = None,
         token: str | None = ROOT) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(method, f"{url}/v1/{path}", json=body, headers=headers,
                            timeout=TIMEOUT)


def observe(resp: requests.Response) -> tuple[int, Any]:
    if not resp.content:
        return resp.status_code, None
    body = resp.json()
    return resp.status_code, body["errors"] if "errors" in body else body.get("data")


def http_scenario(url: str, logs: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def put(name: str, path: str, body: Any) -> None:
        seen[name] = observe(call(url, "PUT", path, body))

    file_opts = {"file_path": str(logs / "x.log")}
    put("unknown_type", "sys/audit/zz", {"type": "nope"})
    put("no_type", "sys/audit/zz", {})
    put("file_no_path", "sys/audit/zz", {"type": "file"})
    put("file_bad_bool", "sys/audit/zz", {"type": "file", "options": {
        **file_opts, "hmac_accessor": "maybe"}})
    put("file_bad_raw", "sys/audit/zz", {"type": "file", "options": {**file_opts,
                                                                     "log_raw": "x"}})
    put("file_bad_elide", "sys/audit/zz", {"type": "file", "options": {
        **file_opts, "elide_list_responses": "sometimes"}})
    put("file_bad_format", "sys/audit/zz", {"type": "file", "options": {**file_opts,
                                                                        "format": "yaml"}})
    put("file_bad_mode", "sys/audit/zz", {"type": "file", "options": {**file_opts,
                                                                      "mode": "abc"}})
    put("socket_no_address", "sys/audit/zz", {"type": "socket", "options": {}})
    put("socket_bad_timeout", "sys/audit/zz", {"type": "socket", "options": {
        "address": "127.0.0.1:1", "write_timeout": "xx"}})
    put("syslog_bad_facility", "sys/audit/zz", {"type": "syslog",
                                                "options": {"facility": "NOPE"}})
    refused = call(url, "PUT", "sys/audit/zz", {"type": "socket",
                                                "options": {"address": "127.0.0.1:1"}})
    seen["socket_refused"] = (refused.status_code, refused.json()["errors"][0].split(":")[0])
    unopenable = call(url, "PUT", "sys/audit/zz", {"type": "file", "options": {
        "file_path": "/proc/nope/x"}})
    seen["file_unopenable"] = (unopenable.status_code,
                               unopenable.json()["errors"][0].split(" for writing")[0])
    seen["list_empty"] = observe(call(url, "GET", "sys/audit"))
    put("enable", "sys/audit/file", {"type": "file", "description": "d",
                                     "options": {"file_path": str(logs / "audit.log")}})
    put("enable_same", "sys/audit/file", {"type": "file", "options": file_opts})
    put("enable_nested", "sys/audit/file/sub", {"type": "file", "options": file_opts})
    listed = observe(call(url, "GET", "sys/audit"))
    seen["list"] = (listed[0], {k: {**v, "options": sorted(v["options"])}
                                for k, v in listed[1].items()})
    seen["read_one"] = observe(call(url, "GET", "sys/audit/file"))[0]
    seen["list_verb"] = observe(call(url, "LIST", "sys/audit"))
    seen["hash_empty"] = observe(call(url, "POST", "sys/audit-hash/file", {}))
    seen["hash_unknown"] = observe(call(url, "POST", "sys/audit-hash/nope", {"input": "x"}))
    hashed = observe(call(url, "POST", "sys/audit-hash/file", {"input": "hunter2"}))
    seen["hash"] = (hashed[0], sorted(hashed[1]), hashed[1]["hash"][:12])
    seen["disable_missing"] = observe(call(url, "DELETE", "sys/audit/nothere"))
    return seen


def test_sys_audit_answers(servers: dict[str, tuple[str, Path]]) -> None:
    theirs = http_scenario(*servers["openbao"])
    ours = http_scenario(*servers["strongroom"])
    compare(ours, theirs)
    assert theirs["unknown_type"] == (400, ['unknown backend type: "nope"'])
    for url, _logs in servers.values():
        assert call(url, "DELETE", "sys/audit/file").status_code == 204


def entry_shape(value: Any, key: str = "") -> Any:
    """Keys at every level; leaves as "hmac" (an HMAC), "time", or their JSON type."""
    if isinstance(value, dict):
        return {k: entry_shape(v, k) for k, v in sorted(value.items()) if k not in BAO_ONLY}
    if isinstance(value, list):
        return [entry_shape(v, key) for v in value]
    if isinstance(value, str):
        if value.startswith("hmac-sha256:"):
            return "hmac"
        return "str"
    return type(value).__name__


def entries_scenario(url: str, logs: Path) -> list[tuple[str, str, Any]]:
    log = logs / "shape.log"
    assert call(url, "PUT", "sys/audit/shape", {
        "type": "file", "options": {"file_path": str(log)}}).status_code == 204
    start = len(entries(log))
    assert call(url, "PUT", "secret/data/audited", {"data": {"password": "hunter2",
                                                              "n": 5}}).status_code == 200
    assert call(url, "GET", "secret/data/audited").status_code == 200
    created = call(url, "POST", "auth/token/create",
                   {"policies": ["default"], "num_uses": 3, "ttl": "1h"}).json()["auth"]
    assert call(url, "GET", "auth/token/lookup-self",
                token=created["client_token"]).status_code == 200
    assert call(url, "GET", "secret/data/audited",
                token=created["client_token"]).status_code == 403
    assert call(url, "DELETE", "sys/audit/shape").status_code == 204
    seen = []
    for e in entries(log)[start:]:
        shaped = entry_shape(e)
        # Which of the two servers' own fields a line has is compared above; values of
        # fields whose content differs by design (timestamps as text) are typed.
        seen.append((e["type"], e["request"].get("path", ""), shaped))
    return seen


def test_entry_shapes_match_openbao(servers: dict[str, tuple[str, Path]]) -> None:
    theirs = entries_scenario(*servers["openbao"])
    ours = entries_scenario(*servers["strongroom"])
    assert [(t, p) for t, p, _ in ours] == [(t, p) for t, p, _ in theirs]
    diffs = [f"{t} {p}:\n  openbao:    {b}\n  strongroom: {s}"
             for (t, p, s), (_t, _p, b) in zip(ours, theirs, strict=True) if s != b]
    assert not diffs, "\n".join(diffs)


def cli_scenario(cli: Cli) -> None:
    logs = cli.home / "cli-logs"
    logs.mkdir(exist_ok=True)
    cli.run("list_none", "audit", "list")
    cli.run("enable_missing_type", "audit", "enable")
    cli.run("enable", "audit", "enable", "-description=main", "file",
            f"file_path={logs}/a.log")
    cli.run("enable_path", "audit", "enable", "-path=second", "file",
            f"file_path={logs}/b.log", "hmac_accessor=false")
    cli.run("enable_again", "audit", "enable", "file", f"file_path={logs}/a.log")
    cli.run("list", "audit", "list")
    cli.run("list_detailed", "audit", "list", "-detailed")
    cli.run("list_json", "audit", "list", "-format=json")
    cli.run("disable_second", "audit", "disable", "second")
    cli.run("disable_missing", "audit", "disable", "nothere/")
    cli.run("disable_args", "audit", "disable")
    cli.run("disable_file", "audit", "disable", "file")


def test_bao_cli_on_both_servers(servers: dict[str, tuple[str, Path]]) -> None:
    """``bao audit ...`` against both servers: the server side of the commands."""
    ours, theirs = test_bao_cli.run(servers, cli_scenario)
    compare(_normalised(ours), _normalised(theirs))
    assert theirs["list_none"][0] == 2


class OurCli(Cli):
    """``strongroom audit ...`` (our CLI) against our server, recorded like ``bao``."""

    def raw(self, *args: str, token: str = ROOT, stdin: str = "") -> Any:
        env = {**os.environ, "VAULT_ADDR": self.addr, "VAULT_TOKEN": token,
               "HOME": str(self.home), "PYTHONPATH": str(REPO / "server")}
        return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args],
                              capture_output=True, text=True, env=env, input=stdin,
                              timeout=60, check=False)


def test_our_cli_matches_bao(servers: dict[str, tuple[str, Path]]) -> None:
    """``strongroom audit ...`` on Strongroom prints what ``bao audit ...`` prints on
    OpenBao."""
    theirs = Cli(*servers["openbao"])
    ours = OurCli(*servers["strongroom"])
    for cli in (theirs, ours):
        cli.home = cli.home / "ours" if cli is ours else cli.home / "theirs"
        cli.home.mkdir(exist_ok=True)
        cli_scenario(cli)
    compare(_normalised(ours.seen), _normalised(theirs.seen))


def _normalised(seen: dict[str, Any]) -> dict[str, Any]:
    """Each server's log files live in its own directory; Go prints a device's options
    in map order (random): paths replaced, options sorted."""
    def fix(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(fix(v) for v in value)
        if not isinstance(value, str):
            return value
        value = re.sub(r"/\S*/cli-logs/", "<logs>/", value)
        lines = []
        for line in value.split("\n"):
            words = line.split(" ")
            opts = [w for w in words if "=" in w and not w.startswith("-")]
            rest = [w for w in words if w not in opts]
            lines.append(" ".join(rest + sorted(opts)))
        return "\n".join(lines)
    return {k: fix(v) for k, v in seen.items()}


def test_hvac_audit_calls(servers: dict[str, tuple[str, Path]]) -> None:
    """hvac's sys audit methods against both servers: the same answers."""
    hvac = requires.module("hvac", "pip install hvac")
    seen: dict[str, Any] = {}
    for kind, (url, logs) in servers.items():
        client = hvac.Client(url=url, token=ROOT)
        client.sys.enable_audit_device("file", description="hvac", path="hv",
                                       options={"file_path": str(logs / "hvac.log")})
        listed = client.sys.list_enabled_audit_devices()["data"]["hv/"]
        digest = client.sys.calculate_hash("hv", "hunter2")["data"]["hash"]
        client.sys.disable_audit_device("hv")
        seen[kind] = (listed["type"], listed["description"], listed["local"],
                      digest.startswith("hmac-sha256:"),
                      sorted(client.sys.list_enabled_audit_devices()["data"]))
    assert seen["strongroom"] == seen["openbao"] == ("file", "hvac", False, True, [])
