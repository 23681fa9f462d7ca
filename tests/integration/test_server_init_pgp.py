"""PGP-protected init against a real server, with keys made and used by Debian's gpg.

The server runs two workers, so the init request crosses from a worker to the
master's seal coordinator, which checks the keys and encrypts.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.gpg import GnuPG, GpgKey
from tests.support.servers import REPO, file_config, strongroom_server


def test_pgp_init_unseal_and_root_token(tmp_path: Path, gpg: GnuPG,
                                        holders: list[GpgKey]) -> None:
    with strongroom_server(tmp_path, file_config(workers=2)) as srv:
        resp = requests.put(srv.url + "/v1/sys/init", timeout=30, json={
            "secret_shares": 3, "secret_threshold": 2,
            "pgp_keys": [h.b64 for h in holders[:3]],
            "root_token_pgp_key": holders[3].b64,
        })
        assert resp.status_code == 200, resp.text
        init = resp.json()
        assert set(init) == {"keys", "keys_base64", "root_token"}
        for hex_key, b64_key in zip(init["keys"], init["keys_base64"], strict=True):
            assert bytes.fromhex(hex_key) == base64.b64decode(b64_key)

        # What each holder does: echo KEY | base64 -d | gpg -dq
        shares = [gpg.decrypt_b64(k) for k in init["keys_base64"]]
        assert all(len(s) == 66 and bytes.fromhex(s) for s in shares)
        # The hex form decrypts to the same thing.
        assert gpg.decrypt(bytes.fromhex(init["keys"][1])) == shares[1]
        token = gpg.decrypt_b64(init["root_token"])
        assert token.startswith("hvs.")

        status = requests.put(srv.url + "/v1/sys/unseal", json={"key": shares[2]},
                              timeout=10).json()
        assert (status["sealed"], status["progress"]) == (True, 1)
        status = requests.put(srv.url + "/v1/sys/unseal", json={"key": shares[0]},
                              timeout=10).json()
        assert status["sealed"] is False

        auth = {"X-Vault-Token": token}
        me = requests.get(srv.url + "/v1/auth/token/lookup-self", headers=auth, timeout=10)
        assert me.status_code == 200 and me.json()["data"]["policies"] == ["root"]
        enable = requests.post(srv.url + "/v1/sys/mounts/kv", headers=auth, timeout=10,
                               json={"type": "kv", "options": {"version": "1"}})
        assert enable.status_code == 204, enable.text
        put = requests.put(srv.url + "/v1/kv/hello", headers=auth, json={"v": "pgp"},
                           timeout=10)
        assert put.status_code == 204, put.text
        got = requests.get(srv.url + "/v1/kv/hello", headers=auth, timeout=10).json()
        assert got["data"] == {"v": "pgp"}

        # Sealed again, the third holder's share works with either of the others.
        assert requests.put(srv.url + "/v1/sys/seal", headers=auth, timeout=10).ok
        for share in (shares[1], shares[2]):
            status = requests.put(srv.url + "/v1/sys/unseal", json={"key": share},
                                  timeout=10).json()
        assert status["sealed"] is False


def test_refused_keys_leave_the_server_uninitialized(tmp_path: Path, gpg: GnuPG,
                                                     holders: list[GpgKey]) -> None:
    secret = gpg.run("--export-secret-keys", holders[0].fingerprint)
    armored = gpg.export_armored(holders[1])
    with strongroom_server(tmp_path, file_config(workers=2)) as srv:
        cases = [
            ([holders[0].b64, holders[1].b64], "count mismatch"),
            ([holders[0].b64, holders[1].b64, "keybase:carol"], "keybase"),
            ([holders[0].b64, holders[1].b64, base64.b64encode(secret).decode()],
             "secret key material"),
            ([holders[0].b64, base64.b64encode(armored).decode(), holders[2].b64],
             "ASCII-armored"),
        ]
        for pgp_keys, expected in cases:
            resp = requests.put(srv.url + "/v1/sys/init", timeout=30, json={
                "secret_shares": 3, "secret_threshold": 2, "pgp_keys": pgp_keys})
            assert resp.status_code == 400
            assert expected in resp.json()["errors"][0]
        assert requests.get(srv.url + "/v1/sys/init", timeout=10).json() == {
            "initialized": False}


def test_cli_init_with_gpg_key_files(tmp_path: Path, gpg: GnuPG,
                                     holders: list[GpgKey]) -> None:
    """`strongroom operator init -pgp-keys=...` with files as gpg writes them."""
    files = [tmp_path / "alice.gpg", tmp_path / "bob.b64", tmp_path / "carol.asc",
             tmp_path / "ops.gpg"]
    files[0].write_bytes(holders[0].public)
    files[1].write_text(base64.encodebytes(holders[1].public).decode())  # 76-col wrapped
    files[2].write_bytes(gpg.export_armored(holders[2]))
    files[3].write_bytes(holders[3].public)
    with strongroom_server(tmp_path, file_config(workers=2)) as srv:
        env = {"PYTHONPATH": str(REPO / "server"), "VAULT_ADDR": srv.url,
               "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

        def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args],
                                  input=stdin, capture_output=True, text=True, env=env,
                                  timeout=60, check=False)

        r = cli("operator", "init", "-key-shares=3", "-key-threshold=2",
                "-pgp-keys=" + ",".join(str(f) for f in files[:3]),
                f"-root-token-pgp-key={files[3]}", "-format=json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert (out["unseal_shares"], out["unseal_threshold"]) == (3, 2)
        shares = [gpg.decrypt_b64(k) for k in out["unseal_keys_b64"]]
        for share in shares[:2]:
            r = cli("operator", "unseal", stdin=share)
            assert r.returncode == 0, r.stderr
        assert "Sealed          false" in r.stdout
        token = gpg.decrypt_b64(out["root_token"])
        me = requests.get(srv.url + "/v1/auth/token/lookup-self",
                          headers={"X-Vault-Token": token}, timeout=10)
        assert me.status_code == 200
