"""The strongroom.vault.kv lookup plugin, run by real ansible-playbook against a dev server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import requires
from tests.support.servers import REPO, ServerProcess, free_port, strongroom_dev_server

requires.module("ansible")

pytestmark = pytest.mark.timeout(120)

ROOT = "root"


def _tool(name: str) -> str:
    # The one beside this interpreter first (requires.binary looks there before PATH):
    # that installation has the collections.
    return requires.binary(name, "pip install ansible")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("ansible-dev")
    with strongroom_dev_server(workdir, ROOT) as srv:
        h = {"X-Vault-Token": ROOT}

        def call(method: str, path: str, body: dict | None = None) -> requests.Response:
            resp = requests.request(method, f"{srv.url}/v1/{path}", headers=h, json=body,
                                    timeout=10)
            assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
            return resp

        call("POST", "secret/data/app", {"data": {"password": "first-pw", "user": "app"}})
        call("POST", "secret/data/app", {"data": {"password": "s3cret", "user": "app"}})
        call("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        call("POST", "kv1/db", {"dbpass": "v1-pass"})
        call("PUT", "sys/policies/acl/other", {"policy": 'path "other/*" {\n'
                                                         '  capabilities = ["read"]\n}\n'})
        tok = call("POST", "auth/token/create", {"policies": ["other"]}).json()
        srv.env["limited_token"] = tok["auth"]["client_token"]
        yield srv


def ansible_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("VAULT_ADDR", "VAULT_TOKEN", "STRONGROOM_ADDR", "STRONGROOM_TOKEN"):
        env.pop(var, None)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(REPO),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    })
    return env


def run_playbook(tmp_path: Path, tasks: str, extra: dict[str, str],
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n" + tasks
    )
    args = [_tool("ansible-playbook"), "-i", "localhost,", str(play),
            "-e", f"ansible_python_interpreter={sys.executable}",
            "-e", json.dumps(extra)]
    return subprocess.run(args, capture_output=True, text=True,
                          env={**ansible_env(tmp_path), **(env or {})}, timeout=90, check=False)


def debug(expr: str, label: str) -> str:
    return (f"    - ansible.builtin.debug:\n"
            f"        msg: \"{label}={{{{ {expr} }}}}\"\n")


def test_reads_v2_v1_and_versions(server: ServerProcess, tmp_path: Path) -> None:
    common = "url=vault_url, token=vault_token"
    tasks = (
        debug(f"lookup('strongroom.vault.kv', 'secret/app', field='password', {common})", "PW")
        + debug(f"lookup('strongroom.vault.kv', 'secret/app', field='password', version=1, "
                f"{common})", "OLD")
        + debug(f"lookup('strongroom.vault.kv', 'kv1/db', field='dbpass', {common})", "V1")
        + debug(f"lookup('strongroom.vault.kv', 'kv1/db', field='dbpass', engine_version='1', "
                f"{common})", "V1FORCED")
        + debug(f"lookup('strongroom.vault.kv', 'secret/app', {common}) | to_json", "WHOLE")
        # url/token from STRONGROOM_ADDR / STRONGROOM_TOKEN (the options' env fallbacks)
        + debug("lookup('strongroom.vault.kv', 'secret/app', field='user')", "ENV")
        # the collection's `strongroom` lookup name routes to the same plugin
        + debug(f"lookup('strongroom.vault.strongroom', 'secret/app', field='password', {common})",
                "ALIAS")
    )
    res = run_playbook(tmp_path, tasks, {"vault_url": server.url, "vault_token": ROOT},
                       env={"STRONGROOM_ADDR": server.url, "STRONGROOM_TOKEN": ROOT})
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert '"PW=s3cret"' in out
    assert '"OLD=first-pw"' in out
    assert '"V1=v1-pass"' in out
    assert '"V1FORCED=v1-pass"' in out
    assert '\\"password\\": \\"s3cret\\"' in out and '\\"user\\": \\"app\\"' in out
    assert '"ENV=app"' in out
    assert '"ALIAS=s3cret"' in out


@pytest.mark.parametrize(("path", "token_kind", "field", "message"), [
    ("secret/app", "limited", None, "permission denied reading secret/app"),
    ("secret/missing", "root", None, "no secret at secret/missing"),
    ("secret/app", "root", "nope", "field 'nope' not found in secret secret/app"),
])
def test_errors_name_the_path(server: ServerProcess, tmp_path: Path, path: str,
                              token_kind: str, field: str | None, message: str) -> None:
    token = ROOT if token_kind == "root" else server.env["limited_token"]
    field_arg = f", field='{field}'" if field else ""
    tasks = debug(f"lookup('strongroom.vault.kv', '{path}'{field_arg}, url=vault_url, "
                  "token=vault_token)", "X")
    res = run_playbook(tmp_path, tasks, {"vault_url": server.url, "vault_token": token})
    assert res.returncode != 0
    assert message in res.stdout + res.stderr, res.stdout + res.stderr


def test_retries_connection_errors_then_fails(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    tasks = debug("lookup('strongroom.vault.kv', 'secret/app', url=vault_url, token='t', "
                  "retries=2, timeout=2)", "X")
    started = time.monotonic()
    res = run_playbook(tmp_path, tasks, {"vault_url": closed})
    elapsed = time.monotonic() - started
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "gave up after 3 attempts" in out and "secret/app" in out, out
    # two backoff sleeps (0.5 s + 1 s) happened; loose bound only
    assert elapsed >= 1.4


def test_ansible_doc_lists_options(tmp_path: Path) -> None:
    res = subprocess.run([_tool("ansible-doc"), "-t", "lookup", "strongroom.vault.kv"],
                         capture_output=True, text=True, env=ansible_env(tmp_path), timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    for option in ("url", "token", "auth_method", "engine_version", "field", "version",
                   "ca_cert", "validate_certs", "timeout", "retries", "STRONGROOM_ADDR",
                   "VAULT_TOKEN", "EXAMPLES", "RETURN"):
        assert option in res.stdout, option
