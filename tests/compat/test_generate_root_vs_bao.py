"""sys/generate-root on a Shamir node: Strongroom (a real 2-worker node) against OpenBao.

The same scenario runs on both servers, fresh and uninitialized (3 shares,
threshold 2), over HTTP: status before an attempt, an empty start (server-made
OTP), a second start, wrong nonce, a share, the same share again, a bad key,
the last share, the decoded token used as root, the attempt gone, OTP of the
wrong length, a bad PGP key, shares of another node, cancel, sealed. What a
client observes (status codes, field sets, progress, error message prefixes) must
be equal. Differences by design: OpenBao's tokens are "s." + 24 characters (OTP
26), Strongroom's "hvs." + 24 (OTP 28, Vault 1.10+); OpenBao 2.5.3+ serves these
unauthenticated endpoints only with ``disable_unauthed_generate_root_endpoints =
false`` on its listener (CVE-2026-5807), set here.

Then the CLIs: ``strongroom operator generate-root`` runs the whole flow against
both servers, and ``bao operator generate-root -decode`` decodes Strongroom's
encoded token (bao asks a server only for the OTP length, so it is pointed at
the OpenBao server, whose 2.7 CLI reads it from the authenticated
``sys/generate-root-token``; the XOR decode itself is local).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import requests

from strongroom.node.generate_root import decode_token
from tests.support.servers import (
    REPO,
    ServerProcess,
    bao_binary,
    bao_server,
    file_config,
    strongroom_server,
)

ATTEMPT = "/v1/sys/generate-root/attempt"
UPDATE = "/v1/sys/generate-root/update"
TIMEOUT = 30


def bao_with_generate_root(workdir: Path) -> AbstractContextManager[ServerProcess]:
    """A real (non-dev) OpenBao on inmem storage with the unauthenticated endpoints on."""
    return bao_server(workdir, "  disable_unauthed_generate_root_endpoints = false\n")


Launcher = Callable[[Path], AbstractContextManager[ServerProcess]]
LAUNCHERS: dict[str, Launcher] = {
    "bao": bao_with_generate_root,
    "strongroom": lambda wd: strongroom_server(wd, file_config(workers=2)),
}


def _init_unsealed(url: str) -> tuple[list[str], str]:
    body = requests.put(url + "/v1/sys/init", json={"secret_shares": 3,
                                                    "secret_threshold": 2},
                        timeout=TIMEOUT).json()
    for key in body["keys"][:2]:
        requests.put(url + "/v1/sys/unseal", json={"key": key}, timeout=TIMEOUT)
    return body["keys"], body["root_token"]


def _seen(resp: requests.Response) -> tuple[int, Any]:
    """Status code and, for an error, its first message; else the sorted field names."""
    body = resp.json() if resp.content else None
    if isinstance(body, dict) and "errors" in body:
        return resp.status_code, body["errors"][0]
    return resp.status_code, sorted(body) if isinstance(body, dict) else body


def _prefix(resp: requests.Response, known: str) -> tuple[int, bool]:
    return resp.status_code, resp.json()["errors"][0].startswith(known)


def api_scenario(url: str) -> dict[str, Any]:
    keys, root = _init_unsealed(url)
    s = requests.Session()
    seen: dict[str, Any] = {}
    before = s.get(url + ATTEMPT, timeout=TIMEOUT)
    seen["before"] = _seen(before)
    b = before.json()
    seen["before_values"] = (b["started"], b["progress"], b["required"], b["nonce"], b["otp"],
                             b["complete"])
    start = s.put(url + ATTEMPT, timeout=TIMEOUT)  # empty body: the server makes the OTP
    seen["start"] = _seen(start)
    otp, nonce, otp_length = (start.json()["otp"], start.json()["nonce"],
                              start.json()["otp_length"])
    seen["otp"] = (len(otp) == otp_length, otp.isalnum(), bool(nonce))
    seen["status_hides_otp"] = s.get(url + ATTEMPT, timeout=TIMEOUT).json()["otp"]
    seen["second_start"] = _prefix(s.put(url + ATTEMPT, json={}, timeout=TIMEOUT),
                                   "root generation already in progress")
    seen["wrong_nonce"] = _seen(s.put(url + UPDATE, json={"key": keys[0], "nonce": "x"},
                                      timeout=TIMEOUT))[0]
    seen["no_key"] = _seen(s.put(url + UPDATE, json={"nonce": nonce}, timeout=TIMEOUT))
    seen["bad_key"] = _seen(s.put(url + UPDATE, json={"key": "zz", "nonce": nonce},
                                  timeout=TIMEOUT))
    seen["short_key"] = _seen(s.put(url + UPDATE, json={"key": "abcd", "nonce": nonce},
                                    timeout=TIMEOUT))
    first = s.put(url + UPDATE, json={"key": keys[2], "nonce": nonce}, timeout=TIMEOUT)
    seen["first"] = _seen(first)
    f = first.json()
    seen["first_values"] = (f["progress"], f["required"], f["complete"], f["encoded_token"],
                            f["otp_length"], f["nonce"] == nonce)
    seen["duplicate"] = _seen(s.put(url + UPDATE, json={"key": keys[2], "nonce": nonce},
                                    timeout=TIMEOUT))
    last = s.put(url + UPDATE, json={"key": keys[0], "nonce": nonce}, timeout=TIMEOUT)
    seen["last"] = _seen(last)
    body = last.json()
    token = decode_token(body["encoded_token"], otp)
    seen["last_values"] = (body["progress"], body["complete"],
                           body["encoded_token"] == body["encoded_root_token"],
                           "=" in body["encoded_token"], token != root)
    me = s.get(url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": token},
               timeout=TIMEOUT)
    seen["token"] = (me.status_code, me.json()["data"]["policies"],
                     me.json()["data"]["path"])
    # A root token has no lease: no issue_time, no renewable (Vault's lookup shows them
    # only from the token's lease), whether made by init or generate-root.
    first_root = s.get(url + "/v1/auth/token/lookup-self", headers={"X-Vault-Token": root},
                       timeout=TIMEOUT).json()["data"]
    seen["lookup fields"] = (sorted(me.json()["data"]), sorted(first_root))
    seen["after"] = s.get(url + ATTEMPT, timeout=TIMEOUT).json()["started"]
    seen["update_after"] = _seen(s.put(url + UPDATE, json={"key": keys[1], "nonce": nonce},
                                       timeout=TIMEOUT))
    seen["otp_length_wrong"] = _seen(s.put(url + ATTEMPT, json={"otp": "abc"},
                                           timeout=TIMEOUT))
    seen["pgp_bad"] = _prefix(s.put(url + ATTEMPT, json={"pgp_key": "aGVsbG8gd29ybGQ="},
                                    timeout=TIMEOUT), "error parsing PGP key: ")
    seen["otp_not_string"] = _seen(s.put(url + ATTEMPT, json={"otp": 5}, timeout=TIMEOUT))
    # Shares of another node: the round aborts, the attempt stays.
    nonce = s.put(url + ATTEMPT, json={}, timeout=TIMEOUT).json()["nonce"]
    # Random shares, but with distinct non-zero x-coordinates (a share's last byte):
    # two random ones collide 1 time in 256, which is another error.
    s.put(url + UPDATE, json={"key": secrets.token_hex(32) + "01", "nonce": nonce},
          timeout=TIMEOUT)
    seen["foreign"] = _prefix(s.put(url + UPDATE, json={"key": secrets.token_hex(32) + "02",
                                                        "nonce": nonce}, timeout=TIMEOUT),
                              "root generation aborted: ")
    after = s.get(url + ATTEMPT, timeout=TIMEOUT).json()
    seen["after_foreign"] = (after["started"], after["progress"], after["nonce"] == nonce)
    cancel = s.delete(url + ATTEMPT, timeout=TIMEOUT)
    seen["cancel"] = (cancel.status_code, cancel.content)
    seen["cancel_again"] = s.delete(url + ATTEMPT, timeout=TIMEOUT).status_code
    seen["after_cancel"] = s.get(url + ATTEMPT, timeout=TIMEOUT).json()["started"]
    s.put(url + "/v1/sys/seal", headers={"X-Vault-Token": token}, timeout=TIMEOUT)
    seen["sealed"] = _seen(s.get(url + ATTEMPT, timeout=TIMEOUT))
    return seen


def test_api_same_as_bao(tmp_path: Path) -> None:
    records = {}
    for kind, launch in LAUNCHERS.items():
        workdir = tmp_path / kind
        workdir.mkdir()
        with launch(workdir) as server:
            records[kind] = api_scenario(server.url)
    bao = records["bao"]
    assert bao["start"][0] == 200 and bao["last_values"][1] is True
    assert bao["token"] == (200, ["root"], "auth/token/root")
    assert bao["sealed"] == (503, "Vault is sealed")
    assert records["strongroom"] == bao


def strongroom_cli(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["PYTHONPATH"] = str(REPO / "server")
    env["VAULT_ADDR"] = url
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", "operator",
                           "generate-root", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=TIMEOUT, check=False)


def cli_scenario(url: str) -> dict[str, Any]:
    """The whole flow with ``strongroom operator generate-root``; returns what it saw."""
    keys, _ = _init_unsealed(url)
    seen: dict[str, Any] = {}
    status = strongroom_cli(url, "-status")
    seen["status"] = (status.returncode, [line.split()[0] for line in
                                          status.stdout.splitlines()])
    refused = strongroom_cli(url, "-nonce=x", keys[0])
    seen["not_started"] = (refused.returncode, refused.stderr.startswith("No root generation"))
    init = strongroom_cli(url, "-init", "-format=json")
    started = json.loads(init.stdout)
    seen["init"] = (init.returncode, started["started"],
                    len(started["otp"]) == started["otp_length"])
    table = strongroom_cli(url, "-init")
    seen["init_again"] = (table.returncode, "root generation already in progress" in
                          table.stderr)
    both = strongroom_cli(url, "-init", "-otp=x", "-pgp-key=/nonexistent")
    seen["both"] = (both.returncode, both.stderr.strip())
    one = strongroom_cli(url, f"-nonce={started['nonce']}", "-", stdin=keys[1] + "\n")
    seen["one"] = (one.returncode, "Progress" in one.stdout and "1/2" in one.stdout)
    done = strongroom_cli(url, f"-nonce={started['nonce']}", "-format=json", keys[2])
    final = json.loads(done.stdout)
    seen["done"] = (done.returncode, final["complete"])
    decoded = strongroom_cli(url, f"-decode={final['encoded_token']}",
                             f"-otp={started['otp']}")
    seen["decode"] = decoded.returncode
    me = requests.get(url + "/v1/auth/token/lookup-self",
                      headers={"X-Vault-Token": decoded.stdout}, timeout=TIMEOUT)
    seen["token"] = (me.status_code, me.json()["data"]["policies"])
    otp = strongroom_cli(url, "-generate-otp")
    seen["generate_otp"] = (otp.returncode, len(otp.stdout) == len(started["otp"]),
                            otp.stdout.isalnum())
    own = strongroom_cli(url, "-init", f"-otp={otp.stdout}", "-format=json")
    seen["own_otp"] = (own.returncode, json.loads(own.stdout)["otp"])
    cancel = strongroom_cli(url, "-cancel")
    seen["cancel"] = (cancel.returncode, cancel.stdout.strip())
    seen["final"] = {"encoded": final["encoded_token"], "otp": started["otp"],
                     "token": decoded.stdout}
    return seen


def test_cli_against_both_and_bao_decodes_ours(tmp_path: Path) -> None:
    records = {}
    with bao_with_generate_root(tmp_path) as bao_server:
        for kind, launch in LAUNCHERS.items():
            workdir = tmp_path / kind
            workdir.mkdir()
            with launch(workdir) as server:
                records[kind] = cli_scenario(server.url)
        ours = records["strongroom"].pop("final")
        records["bao"].pop("final")
        assert records["bao"]["done"] == (0, True) and records["bao"]["token"][0] == 200
        assert records["strongroom"] == records["bao"]
        # OpenBao's own CLI decodes Strongroom's encoded token with the OTP (it reads
        # the OTP length from its server's authenticated sys/generate-root-token).
        _, bao_root = _init_unsealed(bao_server.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(BAO_ADDR=bao_server.url, BAO_TOKEN=bao_root, HOME=str(tmp_path))
        decoded = subprocess.run([bao_binary(), "operator", "generate-root",
                                  f"-decode={ours['encoded']}", f"-otp={ours['otp']}"],
                                 capture_output=True, text=True, env=env, timeout=TIMEOUT,
                                 check=False)
        assert decoded.returncode == 0, decoded.stderr
        assert decoded.stdout == ours["token"] and ours["token"].startswith("hvs.")


def test_hvac_drives_it(tmp_path: Path) -> None:
    """hvac's generate-root calls (its own request shapes) against a 2-worker node."""
    import hvac  # noqa: PLC0415 - only this test needs it

    with strongroom_server(tmp_path, file_config(workers=2)) as server:
        keys, _ = _init_unsealed(server.url)
        client = hvac.Client(url=server.url)
        assert client.sys.read_root_generation_progress()["started"] is False
        started = client.sys.start_root_token_generation()
        assert started["started"] is True and len(started["otp"]) == started["otp_length"]
        first = client.sys.generate_root(key=keys[0], nonce=started["nonce"])
        assert first["progress"] == 1 and first["complete"] is False
        done = client.sys.generate_root(key=keys[1], nonce=started["nonce"])
        token = decode_token(done["encoded_root_token"], started["otp"])
        assert hvac.Client(url=server.url, token=token).lookup_token()["data"]["policies"] == [
            "root"]
        client.sys.start_root_token_generation(otp=started["otp"])
        assert client.sys.cancel_root_generation().status_code == 204
        assert client.sys.read_root_generation_progress()["started"] is False
        # hvac's unseal with migrate on a node with no migration seal: Vault's 500.
        try:
            client.sys.submit_unseal_key(key=keys[0], migrate=True)
        except hvac.exceptions.InternalServerError as exc:
            assert "no migration seal found" in str(exc)
        else:
            raise AssertionError("unseal -migrate accepted with no migration seal")
