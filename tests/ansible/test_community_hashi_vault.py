"""community.hashi_vault (the collection Ansible users already have) against Strongroom.

A real, non-dev server over TLS (file storage, initialised and unsealed here), and the
collection's lookups and modules run by real ansible-playbook, verifying the server's
certificate with a CA file. The same TLS server checks strongroom.vault.kv's ca_cert.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.ansible.test_lookup_plugin import debug, run_playbook
from tests.support import requires
from tests.support.servers import ServerProcess, strongroom_server
from tests.support.tls import TLS_FILE_CONFIG, write_self_signed

requires.module("ansible_collections.community.hashi_vault", "pip install ansible")
requires.module("hvac")

pytestmark = pytest.mark.timeout(180)



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("hashi-vault")
    ca = write_self_signed(workdir)
    with strongroom_server(workdir, TLS_FILE_CONFIG % "", scheme="https", verify=str(ca)) as srv:
        session = requests.Session()

        def call(method: str, path: str, body: dict | None = None) -> dict:
            resp = session.request(method, f"{srv.url}/v1/{path}", json=body, timeout=10,
                                   verify=str(ca))  # env CA bundles beat Session.verify
            assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
            return resp.json() if resp.content else {}

        init = call("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        call("PUT", "sys/unseal", {"key": init["keys_base64"][0]})
        session.headers["X-Vault-Token"] = init["root_token"]
        call("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        call("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        call("POST", "secret/data/app", {"data": {"password": "first-pw"}})
        call("POST", "secret/data/app", {"data": {"password": "s3cret", "user": "app"}})
        call("POST", "kv1/db", {"dbpass": "v1-pass"})
        call("PUT", "sys/policies/acl/other", {"policy": 'path "other/*" {\n'
                                                         '  capabilities = ["read"]\n}\n'})
        limited = call("POST", "auth/token/create", {"policies": ["other"]})
        srv.env.update(root=init["root_token"], limited=limited["auth"]["client_token"],
                       ca=str(ca))
        yield srv


def connection(server: ServerProcess, token: str = "root") -> dict[str, str]:
    return {"vault_url": server.url, "vault_token": server.env[token], "vault_ca": server.env["ca"]}


CONN = "url=vault_url, token=vault_token, ca_cert=vault_ca"
MODULE_CONN = ("        url: \"{{ vault_url }}\"\n        token: \"{{ vault_token }}\"\n"
               "        ca_cert: \"{{ vault_ca }}\"\n")


def test_hashi_vault_lookup_reads_kv2_and_kv1(server: ServerProcess, tmp_path: Path) -> None:
    tasks = (
        debug(f"lookup('community.hashi_vault.hashi_vault', 'secret=secret/data/app:password', "
              f"{CONN})", "V2")
        + debug(f"lookup('community.hashi_vault.hashi_vault', 'secret=kv1/db:dbpass', {CONN})",
                "V1")
        + debug(f"lookup('community.hashi_vault.vault_kv2_get', 'app', "
                f"engine_mount_point='secret', {CONN}).secret.user", "KV2GET")
        + debug(f"lookup('community.hashi_vault.vault_kv2_get', 'app', version=1, "
                f"engine_mount_point='secret', {CONN}).secret.password", "KV2OLD")
        + debug(f"lookup('community.hashi_vault.vault_kv1_get', 'db', engine_mount_point='kv1', "
                f"{CONN}).secret.dbpass", "KV1GET")
    )
    res = run_playbook(tmp_path, tasks, connection(server))
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    for expected in ('"V2=s3cret"', '"V1=v1-pass"', '"KV2GET=app"', '"KV2OLD=first-pw"',
                     '"KV1GET=v1-pass"'):
        assert expected in out, out


def test_modules_write_then_read(server: ServerProcess, tmp_path: Path) -> None:
    tasks = (
        "    - community.hashi_vault.vault_write:\n"
        "        path: secret/data/written-by-ansible\n"
        "        data: {data: {answer: '42'}}\n" + MODULE_CONN
        + "    - community.hashi_vault.vault_kv2_get:\n"
        "        path: written-by-ansible\n" + MODULE_CONN
        + "      register: got\n"
        + debug("got.secret.answer ~ '/' ~ got.metadata.version", "MODULE")
        + "    - community.hashi_vault.vault_read:\n"
        "        path: kv1/db\n" + MODULE_CONN
        + "      register: raw\n"
        + debug("raw.data.data.dbpass", "READ")
        + "    - community.hashi_vault.vault_token_create:\n"
        "        policies: [other]\n        ttl: 10m\n" + MODULE_CONN
        + "      register: made\n"
        + debug("made.login.auth.policies | sort | join(',')", "TOKEN")
    )
    res = run_playbook(tmp_path, tasks, connection(server))
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert '"MODULE=42/1"' in out, out
    assert '"READ=v1-pass"' in out, out
    assert '"TOKEN=default,other"' in out, out
    stored = requests.get(f"{server.url}/v1/secret/data/written-by-ansible", timeout=10,
                          headers={"X-Vault-Token": server.env["root"]}, verify=server.env["ca"])
    assert stored.json()["data"]["data"] == {"answer": "42"}


def test_permission_denied_and_missing_fail_the_task(server: ServerProcess,
                                                     tmp_path: Path) -> None:
    denied = run_playbook(tmp_path, debug(
        f"lookup('community.hashi_vault.vault_kv2_get', 'app', engine_mount_point='secret', "
        f"{CONN})", "X"), connection(server, "limited"))
    assert denied.returncode != 0
    assert "Forbidden" in denied.stdout + denied.stderr or "permission denied" in denied.stdout
    missing = run_playbook(tmp_path, debug(
        f"lookup('community.hashi_vault.vault_kv2_get', 'nothing-here', "
        f"engine_mount_point='secret', {CONN})", "X"), connection(server))
    assert missing.returncode != 0
    assert "nothing-here" in missing.stdout + missing.stderr


def test_tls_is_verified(server: ServerProcess, tmp_path: Path) -> None:
    """Both plugins verify the certificate: with the CA file they read, without it they fail."""
    ours = debug("lookup('strongroom.vault.kv', 'secret/app', field='password', "
                 "url=vault_url, token=vault_token, ca_cert=vault_ca)", "OURS")
    res = run_playbook(tmp_path, ours, connection(server))
    assert res.returncode == 0 and '"OURS=s3cret"' in res.stdout, res.stdout + res.stderr
    for plugin in ("strongroom.vault.kv', 'secret/app'",
                   "community.hashi_vault.hashi_vault', 'secret=secret/data/app:password'"):
        expr = f"lookup('{plugin}, url=vault_url, token=vault_token)"
        res = run_playbook(tmp_path, debug(expr, "X"),
                           {k: v for k, v in connection(server).items() if k != "vault_ca"},
                           env={"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": ""})
        out = res.stdout + res.stderr
        assert res.returncode != 0, out
        assert "CERTIFICATE_VERIFY_FAILED" in out or "certificate verify failed" in out, out
        assert server.env["root"] not in out
