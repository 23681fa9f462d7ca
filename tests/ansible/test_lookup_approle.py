"""strongroom.vault.kv with auth_method=approle, and playbooks/issue-secret-id.yml, end to end.

Real ansible-playbook runs against a real Strongroom dev server (several workers) and, for
comparison, a real OpenBao dev server: the same playbooks give the same results on both.
The runbook hands a host a response-wrapped SecretID; the lookup unwraps it once, logs in
once per run, and a second run with the same wrapped SecretID fails with a clear message.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.ansible.test_lookup_plugin import _load_plugin, _tool, ansible_env, debug, run_playbook
from tests.support import requires
from tests.support.servers import REPO, ServerProcess, bao_dev_server, strongroom_dev_server

requires.module("ansible")

pytestmark = pytest.mark.timeout(180)

ROOT = "root"
LAUNCHERS: dict[str, Callable[[Path, str], AbstractContextManager[ServerProcess]]] = {
    "bao": bao_dev_server,
    "strongroom": strongroom_dev_server,
}
READER = 'path "secret/data/app" {\n  capabilities = ["read"]\n}\n'
# What the runbook needs, and nothing else: least privilege for the operator token.
ISSUER = ('path "auth/approle/role/app/role-id" {\n  capabilities = ["read"]\n}\n'
          'path "auth/approle/role/app/secret-id" {\n  capabilities = ["update"]\n}\n')


def call(srv: ServerProcess, method: str, path: str, body: dict[str, Any] | None = None,
         token: str = ROOT, headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=10,
                            headers={"X-Vault-Token": token, **(headers or {})})
    assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
    return resp.json() if resp.status_code == 200 else {}


@pytest.fixture(scope="module", params=sorted(LAUNCHERS))
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    kind = request.param
    with LAUNCHERS[kind](tmp_path_factory.mktemp(f"approle-{kind}"), ROOT) as srv:
        call(srv, "POST", "secret/data/app", {"data": {"password": "s3cret", "user": "app"}})
        call(srv, "PUT", "sys/policies/acl/app-reader", {"policy": READER})
        call(srv, "PUT", "sys/policies/acl/issuer", {"policy": ISSUER})
        call(srv, "POST", "sys/auth/approle", {"type": "approle"})
        call(srv, "POST", "auth/approle/role/app", {"token_policies": ["app-reader"],
                                                    "token_ttl": "5m", "token_max_ttl": "1h"})
        role_id = call(srv, "GET", "auth/approle/role/app/role-id")["data"]["role_id"]
        srv.env.update(kind=kind, role_id=role_id)
        yield srv


def secret_id(srv: ServerProcess) -> str:
    return str(call(srv, "POST", "auth/approle/role/app/secret-id")["data"]["secret_id"])


def wrapped_secret_id(srv: ServerProcess, token: str = ROOT) -> str:
    out = call(srv, "POST", "auth/approle/role/app/secret-id", token=token,
               headers={"X-Vault-Wrap-TTL": "5m"})
    return str(out["wrap_info"]["token"])


def secret_id_accessors(srv: ServerProcess) -> set[str]:
    resp = requests.request("LIST", f"{srv.url}/v1/auth/approle/role/app/secret-id",
                            headers={"X-Vault-Token": ROOT}, timeout=10)
    assert resp.status_code in (200, 404), resp.text
    return set(resp.json()["data"]["keys"]) if resp.status_code == 200 else set()


def accessors(srv: ServerProcess) -> set[str]:
    return set(call(srv, "LIST", "auth/token/accessors")["data"]["keys"])


def approle_vars(srv: ServerProcess, **more: str) -> dict[str, str]:
    return {"ansible_strongroom_url": srv.url, "ansible_strongroom_auth_method": "approle",
            "ansible_strongroom_role_id": srv.env["role_id"], **more}


READ = "lookup('strongroom.vault.kv', 'secret/app', field='password')"


def test_approle_login_once_for_the_whole_run(server: ServerProcess, tmp_path: Path) -> None:
    sid = secret_id(server)
    before = accessors(server)
    tasks = debug(READ, "T1") + debug(READ, "T2") + debug(READ, "T3")
    res = run_playbook(tmp_path, tasks, approle_vars(server, ansible_strongroom_secret_id=sid),
                       verbose=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for label in ("T1", "T2", "T3"):
        assert f'"{label}=s3cret"' in out, label
    assert out.count("approle: logged in (auth/approle/login") == 1, out
    assert out.count("token from the run's cache") == 2, out
    assert len(accessors(server) - before) == 1
    assert sid not in out


def test_approle_bad_credentials_fail_clearly(server: ServerProcess, tmp_path: Path) -> None:
    wrong = "0f0f0f0f-0000-4000-8000-000000000000"
    res = run_playbook(tmp_path, debug(READ, "X"),
                       approle_vars(server, ansible_strongroom_secret_id=wrong))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "approle login (auth/approle/login) failed: HTTP 400" in out, out
    assert wrong not in out
    res = run_playbook(tmp_path, debug(READ, "X"),
                       {**approle_vars(server), "ansible_strongroom_role_id": ""})
    assert res.returncode != 0
    assert "auth_method=approle needs role_id" in res.stdout + res.stderr


def test_wrapped_secret_id_is_unwrapped_once(server: ServerProcess, tmp_path: Path) -> None:
    wrapped = wrapped_secret_id(server)
    before = accessors(server)
    tasks = debug(READ, "W1") + debug(READ, "W2")
    extra = approle_vars(server, ansible_strongroom_wrapped_secret_id=wrapped)
    res = run_playbook(tmp_path, tasks, extra, verbose=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert '"W1=s3cret"' in out and '"W2=s3cret"' in out
    assert out.count("approle: unwrapped the SecretID (auth/approle/role/app/secret-id)") == 1
    assert out.count("approle: logged in") == 1
    # one login token; the wrapping token itself is gone (single use)
    assert len(accessors(server) - before) == 1
    assert wrapped not in out

    # the same wrapped SecretID a second time (another run): refused, with what to do
    again = run_playbook(tmp_path, debug(READ, "W3"), extra)
    out = again.stdout + again.stderr
    assert again.returncode != 0
    assert "the wrapped secret_id cannot be unwrapped: it was already unwrapped" in out, out
    assert "can be unwrapped only once" in out
    assert wrapped not in out


def test_a_wrapping_token_of_something_else_is_refused(server: ServerProcess,
                                                      tmp_path: Path) -> None:
    other = call(server, "POST", "sys/wrapping/wrap", {"secret_id": "planted"},
                 headers={"X-Vault-Wrap-TTL": "5m"})["wrap_info"]["token"]
    res = run_playbook(tmp_path, debug(READ, "X"),
                       approle_vars(server, ansible_strongroom_wrapped_secret_id=other))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "was created at sys/wrapping/wrap, not at auth/approle/role/<role>/secret-id" in out
    # it was not unwrapped: its owner can still use (or revoke) it
    call(server, "POST", "sys/wrapping/lookup", {"token": other})
    res = run_playbook(tmp_path, debug(READ, "X"),
                       approle_vars(server, ansible_strongroom_wrapped_secret_id=other,
                                    ansible_strongroom_secret_id="x"))
    assert "give secret_id or wrapped_secret_id, not both" in res.stdout + res.stderr


def test_runbook_issues_a_wrapped_secret_id_the_lookup_unwraps(server: ServerProcess,
                                                              tmp_path: Path) -> None:
    issuer = call(server, "POST", "auth/token/create",
                  {"policies": ["issuer"], "no_default_policy": True})["auth"]["client_token"]
    before = secret_id_accessors(server)
    dest = tmp_path / "approle"
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("app1 ansible_connection=local\n")
    owner = pwd.getpwuid(os.getuid()).pw_name
    runbook = {"strongroom_secret_id_hosts": "app1", "strongroom_approle_role": "app",
               "strongroom_secret_id_api_addr": server.url, "strongroom_operator_token": issuer,
               "strongroom_secret_id_dir": str(dest), "strongroom_secret_id_owner": owner,
               "strongroom_secret_id_wrap_ttl": "10m"}
    # --check issues nothing and writes nothing
    res = run_playbook_file(tmp_path, REPO / "playbooks" / "issue-secret-id.yml", runbook,
                            inventory, "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert secret_id_accessors(server) == before and not dest.exists()
    res = run_playbook_file(tmp_path, REPO / "playbooks" / "issue-secret-id.yml", runbook,
                            inventory)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    wrapped_file, role_file = dest / "app.wrapped-secret-id", dest / "app.role-id"
    for path in (wrapped_file, role_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    wrapped = wrapped_file.read_text().strip()
    assert role_file.read_text().strip() == server.env["role_id"]
    assert wrapped not in out and issuer not in out
    assert "wrapping accessor" in out and "Wrapped SecretID of role app written to" in out
    look = call(server, "POST", "sys/wrapping/lookup", {"token": wrapped})["data"]
    assert look["creation_path"] == "auth/approle/role/app/secret-id"
    after = secret_id_accessors(server)
    assert len(after - before) == 1
    meta = call(server, "POST", "auth/approle/role/app/secret-id-accessor/lookup",
                {"secret_id_accessor": (after - before).pop()})["data"]["metadata"]
    assert meta == {"host": "app1"}

    # the host's files, read back the way the lookup's EXAMPLES show
    tasks = (
        "    - ansible.builtin.slurp: {src: \"" + str(wrapped_file) + "\"}\n"
        "      register: w\n      no_log: true\n"
        "    - ansible.builtin.slurp: {src: \"" + str(role_file) + "\"}\n"
        "      register: r\n      no_log: true\n"
        + debug("lookup('strongroom.vault.kv', 'secret/app', field='user', auth_method='approle',"
                " url=vault_url, role_id=r.content | b64decode | trim,"
                " wrapped_secret_id=w.content | b64decode | trim)", "HOST")
    )
    res = run_playbook(tmp_path, tasks, {"vault_url": server.url})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert '"HOST=app"' in out

    # the issuer token can do nothing else: a role it was not given is refused, clearly
    res = run_playbook_file(tmp_path, REPO / "playbooks" / "issue-secret-id.yml",
                            {**runbook, "strongroom_approle_role": "other"}, inventory)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "role/other/role-id failed (status 403)" in out, out
    # missing inputs are refused before anything is asked
    res = run_playbook_file(tmp_path, REPO / "playbooks" / "issue-secret-id.yml",
                            {"strongroom_secret_id_hosts": "app1"}, inventory)
    assert res.returncode != 0
    assert "strongroom_approle_role=ROLE" in res.stdout + res.stderr


def run_playbook_file(tmp_path: Path, playbook: Path, extra: dict[str, str],
                      inventory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**ansible_env(tmp_path), "ANSIBLE_ROLES_PATH": str(REPO / "roles")}
    args = [_tool("ansible-playbook"), *flags, "-i", str(inventory), str(playbook),
            "-e", f"ansible_python_interpreter={sys.executable}", "-e", json.dumps(extra)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_token_near_expiry_is_renewed_or_replaced(server: ServerProcess, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: a cached token near its expiry is renewed; one that cannot be, replaced."""
    kv = _load_plugin()
    monkeypatch.setattr(kv.TokenCache, "for_run", classmethod(lambda cls: cls(str(tmp_path))))
    opts = {"role_id": server.env["role_id"], "secret_id": secret_id(server),
            "auth_mount_point": "approle"}

    def client() -> Any:
        return kv.VaultClient(server.url, True, kv.AppRoleAuth(opts), timeout=10, retries=0)

    first = client().session.headers["X-Vault-Token"]
    auth = kv.AppRoleAuth(opts)
    ident = (server.url.rstrip("/"), True) + auth.cache_key()

    def age(seconds_left: float) -> None:
        with kv.TokenCache(str(tmp_path)).locked(ident) as entry:
            record = entry.load()
            entry.put(record["token"], int(seconds_left), record["renewable"], record["state"])

    age(5)  # within the margin: renewed, the same token, a full TTL again
    assert client().session.headers["X-Vault-Token"] == first
    ttl = call(server, "POST", "auth/token/lookup", {"token": first})["data"]["ttl"]
    assert ttl > 250
    with kv.TokenCache(str(tmp_path)).locked(ident) as entry:
        assert entry.load()["expires"] > time.time() + 250
    call(server, "POST", "auth/token/revoke", {"token": first})
    age(5)  # renewal refused (revoked): a new login
    second = client().session.headers["X-Vault-Token"]
    assert second != first
    call(server, "POST", "auth/token/lookup", {"token": second})
