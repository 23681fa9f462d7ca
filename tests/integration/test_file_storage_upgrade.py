"""A node whose file storage was written by the code before issue 14 starts, unseals
and serves its data with today's code (several workers), which moved the entries
into the new format (one SQLite database, physical/file.py).

``data/legacy_node.tar.gz``: a node of main at 928d45d (one file per entry) on file
storage, initialised (1 share), with a KV v2 mount ``secret/`` (``app/db`` at version
2, ``many/k00``..``k29``), a KV v1 mount ``kv1/`` (``legacy/one``) and a child token;
``keys.json`` holds its unseal key and tokens (test fixtures, nothing else).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import requests

from strongroom.physical.file import DB_NAME
from tests.support.servers import file_config, strongroom_server

FIXTURE = Path(__file__).resolve().parent / "data" / "legacy_node.tar.gz"
CONFIG = file_config(workers=2)


def call(url: str, token: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{url}/v1/{path}", headers={"X-Vault-Token": token},
                            timeout=30, **kwargs)  # type: ignore[arg-type]


def test_a_node_written_by_the_old_format_starts_and_serves(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    keys = json.loads((tmp_path / "keys.json").read_text())
    root, child = keys["root_token"], keys["child_token"]
    for generation in range(2):  # the import, then a plain restart on the new format
        with strongroom_server(tmp_path, CONFIG) as srv:
            resp = requests.put(f"{srv.url}/v1/sys/unseal", json={"key": keys["unseal_key"]},
                                timeout=30)
            assert resp.status_code == 200 and resp.json()["sealed"] is False, resp.text
            doc = call(srv.url, root, "GET", "secret/data/app/db").json()["data"]
            assert doc["data"] == {"password": f"hunter{2 + generation}"}
            assert doc["metadata"]["version"] == 2 + generation
            assert call(srv.url, root, "GET", "secret/data/app/db?version=1"
                        ).json()["data"]["data"] == {"password": "hunter1"}
            assert call(srv.url, root, "GET", "kv1/legacy/one").json()["data"] == {
                "v": "old format"}
            assert call(srv.url, child, "GET", "auth/token/lookup-self").status_code == 200
            page = call(srv.url, root, "LIST", "secret/metadata/many/?after=k09&limit=3")
            assert page.json()["data"]["keys"] == ["k10", "k11", "k12"]
            if generation == 0:
                assert call(srv.url, root, "POST", "secret/data/app/db",
                            json={"data": {"password": "hunter3"}}).status_code == 200
                root_after = {p.name for p in (tmp_path / "data").iterdir()}
                assert DB_NAME in root_after and not root_after & {"core", "logical", "sys"}
