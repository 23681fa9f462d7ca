"""community.hashi_vault logging in to Strongroom with approle, userpass, ldap and cert.

One real Strongroom node over TLS (file storage, two workers) whose listener asks for
client certificates (``tls_client_ca_file``), one real slapd (tests/support/slapd.py), and
real ansible-playbook runs of the collection's ``vault_kv2_get`` and ``hashi_vault``
lookups with each ``auth_method``. Every login token has only the policy ``app-reader``
(read ``secret/data/app``): the tests check it reads that and nothing else, and that
wrong credentials fail the task without printing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.ansible.test_lookup_plugin import debug, run_playbook
from tests.support import requires
from tests.support.pki import make_ca, make_leaf
from tests.support.servers import strongroom_server
from tests.support.slapd import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PW, running_slapd

requires.module("ansible_collections.community.hashi_vault", "pip install ansible")
requires.module("hvac")

pytestmark = pytest.mark.timeout(240)

CONFIG = """
storage "file" {{
  path = "{workdir}/data"
}}
listener "tcp" {{
  address            = "127.0.0.1:{port}"
  tls_cert_file      = "{workdir}/server.pem"
  tls_key_file       = "{workdir}/server-key.pem"
  tls_client_ca_file = "{workdir}/clients.pem"
}}
disable_mlock = true
workers = 2
"""
READER = 'path "secret/data/app" {\n  capabilities = ["read"]\n}\n'
SECRETS = {"userpass": "dave-pw-0123", "ldap": "alice-pw"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("hashi-vault-auth")
    ca = make_ca("Ansible Auth Root")
    make_leaf(ca, "127.0.0.1", ips=("127.0.0.1",), server=True,
              client=False).write(workdir, "server")
    (workdir / "ca.pem").write_text(ca.pem)
    (workdir / "clients.pem").write_text(ca.pem)
    cert, key = make_leaf(ca, "web1.example.com").write(workdir, "web")
    stranger_cert, stranger_key = make_leaf(ca, "intruder.example.com").write(workdir, "other")
    with running_slapd(workdir / "slapd") as slapd, \
            strongroom_server(workdir, CONFIG, scheme="https",
                              verify=str(workdir / "ca.pem")) as srv:
        session = requests.Session()

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            resp = session.request(method, f"{srv.url}/v1/{path}", json=body, timeout=10,
                                   verify=str(workdir / "ca.pem"),
                                   headers={"Connection": "close"})
            assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
            return resp.json() if resp.content else {}

        init = call("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        call("PUT", "sys/unseal", {"key": init["keys_base64"][0]})
        session.headers["X-Vault-Token"] = init["root_token"]
        call("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        call("POST", "secret/data/app", {"data": {"password": "s3cret"}})
        call("POST", "secret/data/other", {"data": {"password": "not-yours"}})
        call("PUT", "sys/policies/acl/app-reader", {"policy": READER})
        for method in ("approle", "userpass", "ldap", "cert"):
            call("POST", f"sys/auth/{method}", {"type": method})
        call("POST", "auth/approle/role/app", {"token_policies": ["app-reader"]})
        role_id = call("GET", "auth/approle/role/app/role-id")["data"]["role_id"]
        secret_id = call("POST", "auth/approle/role/app/secret-id")["data"]["secret_id"]
        call("POST", "auth/userpass/users/dave", {"password": SECRETS["userpass"],
                                                  "token_policies": ["app-reader"]})
        call("POST", "auth/ldap/config", {
            "url": slapd.ldap_url, "binddn": SERVICE_DN, "bindpass": SERVICE_PW,
            "userdn": PEOPLE, "userattr": "uid", "groupdn": GROUPS})
        call("POST", "auth/ldap/groups/admins", {"policies": ["app-reader"]})
        call("POST", "auth/cert/certs/web", {
            "certificate": ca.pem, "allowed_common_names": ["web1.example.com"],
            "token_policies": ["app-reader"]})
        yield {"url": srv.url, "ca": str(workdir / "ca.pem"), "role_id": role_id,
               "secret_id": secret_id, "cert": cert, "key": key,
               "stranger_cert": stranger_cert, "stranger_key": stranger_key,
               "root": init["root_token"]}


def credentials(site: dict[str, Any], method: str, wrong: bool = False) -> dict[str, str]:
    """The lookup options of ``method`` (as extra vars), right or wrong."""
    if method == "approle":
        return {"role_id": site["role_id"],
                "secret_id": "0f0f0f0f-0000-4000-8000-000000000000" if wrong
                else site["secret_id"]}
    if method == "userpass":
        return {"username": "dave", "password": "wrong-guess-1" if wrong else SECRETS[method]}
    if method == "ldap":
        return {"username": "alice", "password": "wrong-guess-2" if wrong else SECRETS[method]}
    return {"cert_auth_public_key": site["stranger_cert" if wrong else "cert"],
            "cert_auth_private_key": site["stranger_key" if wrong else "key"],
            "role_id": "web"}


def options(creds: dict[str, str]) -> str:
    return ", ".join(f"{k}={k}" for k in creds)


METHODS = ("approle", "userpass", "ldap", "cert")


@pytest.mark.parametrize("method", METHODS)
def test_lookups_log_in_with_the_method(site: dict[str, Any], tmp_path: Path,
                                        method: str) -> None:
    creds = credentials(site, method)
    conn = f"url=vault_url, ca_cert=vault_ca, auth_method='{method}', {options(creds)}"
    tasks = (
        debug(f"lookup('community.hashi_vault.vault_kv2_get', 'app', engine_mount_point="
              f"'secret', {conn}).secret.password", "KV2GET")
        + debug(f"lookup('community.hashi_vault.hashi_vault', 'secret=secret/data/app:password',"
                f" {conn})", "LEGACY")
        + debug(f"(lookup('community.hashi_vault.vault_login', {conn})).auth.policies"
                " | sort | join(',')", "POLICIES")
        # the login's policy reads secret/app and nothing else
        + "    - ansible.builtin.debug:\n"
          "        msg: \"{{ lookup('community.hashi_vault.vault_kv2_get', 'other', "
          f"engine_mount_point='secret', {conn}) }}}}\"\n"
          "      register: other\n      ignore_errors: true\n"
        + "    - ansible.builtin.assert: {that: [other is failed]}\n"
    )
    res = run_playbook(tmp_path, tasks, {"vault_url": site["url"], "vault_ca": site["ca"],
                                         **creds})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for expected in ('"KV2GET=s3cret"', '"LEGACY=s3cret"', '"POLICIES=app-reader,default"'):
        assert expected in out, (expected, out)
    assert "not-yours" not in out
    assert "Forbidden" in out or "permission denied" in out, out


@pytest.mark.parametrize("method", METHODS)
def test_wrong_credentials_fail_the_task(site: dict[str, Any], tmp_path: Path,
                                         method: str) -> None:
    creds = credentials(site, method, wrong=True)
    conn = f"url=vault_url, ca_cert=vault_ca, auth_method='{method}', {options(creds)}"
    res = run_playbook(tmp_path, debug(
        f"lookup('community.hashi_vault.vault_kv2_get', 'app', engine_mount_point='secret', "
        f"{conn}).secret.password", "X"), {"vault_url": site["url"], "vault_ca": site["ca"],
                                          **creds})
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "s3cret" not in out
    # the refused login, named by its path (hvac's error), and no credential in the output
    assert f"/v1/auth/{method}/login" in out, out
    if method != "cert":
        assert creds.get("password", creds.get("secret_id", "")) not in out
