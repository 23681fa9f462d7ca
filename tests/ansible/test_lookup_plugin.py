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
        # a KV v2 mount two path segments deep (engine_version forced must honour it)
        call("POST", "sys/mounts/team/kv2", {"type": "kv", "options": {"version": "2"}})
        call("POST", "team/kv2/data/app", {"data": {"key": "deep-v2"}})
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
                 env: dict[str, str] | None = None, inventory: str = "localhost,",
                 verbose: bool = False) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n" + tasks
    )
    args = [_tool("ansible-playbook"), "-i", inventory, str(play),
            *(["-vvv"] if verbose else []),
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
                   "VAULT_TOKEN", "EXAMPLES", "RETURN", "mount_point", "child_token",
                   "ansible_strongroom_url", "ansible_strongroom_token",
                   "ansible_strongroom_ca_cert", "ansible_strongroom_auth_method",
                   "strongroom_vault", "https://127.0.0.1:8200", "approle", "role_id",
                   "secret_id", "wrapped_secret_id", "auth_mount_point",
                   "ansible_strongroom_wrapped_secret_id", "unwrapped only once"):
        assert option in res.stdout, option


def test_default_url_is_https(tmp_path: Path) -> None:
    tasks = debug("lookup('strongroom.vault.kv', 'secret/app', token='t', retries=0, timeout=2)",
                  "X")
    res = run_playbook(tmp_path, tasks, {})
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "https://127.0.0.1:8200" in out, out


def test_settings_from_inventory_vars_and_ansible_cfg(server: ServerProcess,
                                                      tmp_path: Path) -> None:
    # url and auth method from ansible.cfg, the token from an inventory host variable
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(f"[strongroom_vault]\nurl = {server.url}\nauth_method = token\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_strongroom_token={ROOT}\n")
    tasks = (
        debug("lookup('strongroom.vault.kv', 'secret/app', field='password')", "CFG")
        # the CA bundle and the URL from variables (a task's vars stand for group_vars here)
        + "    - ansible.builtin.debug:\n"
          "        msg: \"{{ lookup('strongroom.vault.kv', 'secret/app') }}\"\n"
          "      vars:\n"
          "        ansible_strongroom_url: https://127.0.0.1:1\n"
          "        ansible_strongroom_ca_cert: /nonexistent/strongroom-ca.pem\n"
          "      ignore_errors: true\n"
    )
    res = run_playbook(tmp_path, tasks, {}, inventory=str(inventory),
                       env={"ANSIBLE_CONFIG": str(cfg)})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert '"CFG=s3cret"' in out
    assert "ca_cert /nonexistent/strongroom-ca.pem is not a file" in out, out


def test_forced_engine_version_honours_a_deep_mount(server: ServerProcess,
                                                    tmp_path: Path) -> None:
    common = "url=vault_url, token=vault_token, field='key'"
    tasks = (
        debug(f"lookup('strongroom.vault.kv', 'team/kv2/app', engine_version='2', {common})",
              "ASKED")
        + debug(f"lookup('strongroom.vault.kv', 'team/kv2/app', engine_version='2', "
                f"mount_point='team/kv2', {common})", "GIVEN")
        + debug(f"lookup('strongroom.vault.kv', 'team/kv2/app', {common})", "AUTO")
    )
    res = run_playbook(tmp_path, tasks, {"vault_url": server.url, "vault_token": ROOT})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for label in ("ASKED", "GIVEN", "AUTO"):
        assert f'"{label}=deep-v2"' in out, label


def _load_plugin():  # type: ignore[no-untyped-def]
    import importlib.util

    path = REPO / "ansible_collections/strongroom/vault/plugins/lookup/kv.py"
    spec = importlib.util.spec_from_file_location("strongroom_kv_lookup_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_longest_prefix_mount_wins() -> None:
    # The server refuses nested mounts (as Vault does), so a cached shorter mount that is a
    # prefix of a longer one can only be shown on the matcher itself: insertion order must
    # not decide.
    kv = _load_plugin()

    class Client:
        mount_versions = {"team/": "1", "team/kv2/": "2"}

    opts = {"engine_version": "auto", "mount_point": None, "timeout": 1, "retries": 0}
    assert kv.LookupModule()._mount_of(Client(), "team/kv2/app", opts) == ("team/kv2/", "2")
    assert kv.LookupModule()._mount_of(Client(), "team/x", opts) == ("team/", "1")


def _root(server: ServerProcess, method: str, path: str, body: dict | None = None) -> dict:
    resp = requests.request(method, f"{server.url}/v1/{path}", headers={"X-Vault-Token": ROOT},
                            json=body, timeout=10)
    assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
    return resp.json() if resp.status_code == 200 else {}


def _accessors(server: ServerProcess) -> set[str]:
    return set(_root(server, "GET", "auth/token/accessors?list=true")["data"]["keys"])


def _login_vars(server: ServerProcess, **more: str) -> dict[str, str]:
    return {"ansible_strongroom_auth_method": "child_token", "ansible_strongroom_token": ROOT,
            "ansible_strongroom_url": server.url, **more}


def test_child_token_login_is_shared_across_tasks(server: ServerProcess, tmp_path: Path) -> None:
    _root(server, "PUT", "sys/policies/acl/parent-other", {"policy": (
        'path "other/*" {\n  capabilities = ["read"]\n}\n'
        'path "auth/token/create" {\n  capabilities = ["update"]\n}\n')})
    limited = _root(server, "POST", "auth/token/create",
                    {"policies": ["parent-other"]})["auth"]["client_token"]
    before = _accessors(server)
    snapshot = tmp_path / "cache-snapshot"
    read = "lookup('strongroom.vault.kv', 'secret/app', field='password')"
    tasks = (
        debug(read, "T1") + debug(read, "T2") + debug(read, "T3")
        # another address of the same server is another identity: its own login
        + debug(f"lookup('strongroom.vault.kv', 'secret/app', field='password', "
                f"url='{server.url.replace('127.0.0.1', 'localhost')}')", "OTHERURL")
        # another parent token is another identity: never the cached child of root
        + "    - ansible.builtin.debug:\n"
          "        msg: \"{{ lookup('strongroom.vault.kv', 'secret/app', token=limited) }}\"\n"
          "      ignore_errors: true\n"
        + "    - ansible.builtin.shell: cp -r \"$ANSIBLE_LOCAL_TEMP\"/ansible-local-*/"
          f"strongroom-vault-tokens {snapshot}\n"
          "      changed_when: false\n"
    )
    # ANSIBLE_LOCAL_TEMP is exported for the shell task by ansible_env
    res = run_playbook(tmp_path, tasks, _login_vars(server, limited=limited), verbose=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for label in ("T1", "T2", "T3", "OTHERURL"):
        assert f'"{label}=s3cret"' in out, label
    assert "permission denied reading secret/app" in out
    # one login per identity for the whole run: root@127.0.0.1, root@localhost, limited
    assert len(_accessors(server) - before) == 3
    assert out.count("token from the run's cache") == 2, out
    assert out.count("child_token: logged in") == 3, out
    # the run's cache: one encrypted entry per identity, no token in clear, none logged
    entries = [f for f in snapshot.iterdir() if not f.name.endswith(".lock")]
    assert len(entries) == 3
    for entry in entries:
        assert b"hvs." not in entry.read_bytes()
        assert oct(entry.stat().st_mode & 0o777) == "0o600"
    assert "hvs." not in out.replace(limited, "<limited parent token>")


def test_refused_or_expired_cached_token_means_one_fresh_login(server: ServerProcess,
                                                               tmp_path: Path) -> None:
    before = _accessors(server)
    read = "lookup('strongroom.vault.kv', 'secret/app', field='password')"
    tasks = (
        debug(read, "T1")
        + "    - ansible.builtin.uri:\n"
          "        url: \"{{ ansible_strongroom_url }}/v1/auth/token/accessors?list=true\"\n"
          "        headers: {X-Vault-Token: \"{{ ansible_strongroom_token }}\"}\n"
          "      register: listed\n"
        + "    - ansible.builtin.uri:\n"
          "        url: \"{{ ansible_strongroom_url }}/v1/auth/token/revoke-accessor\"\n"
          "        method: POST\n"
          "        headers: {X-Vault-Token: \"{{ ansible_strongroom_token }}\"}\n"
          "        body_format: json\n"
          "        body: {accessor: \"{{ item }}\"}\n"
          "        status_code: [200, 204]\n"
          "      loop: \"{{ listed.json.data['keys'] | difference(known) }}\"\n"
        + debug(read, "T2") + debug(read, "T3")
    )
    res = run_playbook(tmp_path, tasks, {**_login_vars(server), "known": sorted(before)},
                       verbose=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for label in ("T1", "T2", "T3"):
        assert f'"{label}=s3cret"' in out, label
    assert out.count("cached token refused, logging in again") == 1, out
    assert out.count("child_token: logged in") == 2, out
    assert len(_accessors(server) - before) == 1

    # a child token at the end of its TTL (11 s, less the 10 s margin) is not used again
    tasks = debug(read, "E1") + "    - ansible.builtin.pause: {seconds: 2}\n" + debug(read, "E2")
    res = run_playbook(tmp_path, tasks,
                       _login_vars(server, ansible_strongroom_child_token_ttl="11s"),
                       verbose=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert '"E1=s3cret"' in out and '"E2=s3cret"' in out
    assert out.count("child_token: logged in") == 2, out
