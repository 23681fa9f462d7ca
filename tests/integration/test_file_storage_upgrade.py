"""A node whose file storage is in the layout used before issue 14 (one file per entry)
starts, unseals and serves its data with today's code (several workers), which moves
the entries into the new format (one SQLite database, physical/file.py).

The node is built here, at test time, so no unseal key or token is ever committed:
today's server initialises it (1 share) and writes a KV v2 mount ``secret/``
(``app/db`` at version 2, ``many/k00``..``k29``), a KV v1 mount ``kv1/``
(``legacy/one``) and a child token; every stored (barrier-encrypted) entry is then
rewritten in the old layout with the old framing, and the database removed. That the
old code's own bytes import is proven one layer down, on a store the old code wrote
(tests/unit/physical/data/legacy_store.tar.gz).
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

from strongroom.physical.file import DB_NAME, FileBackend
from strongroom.physical.file_legacy import frame, legacy_path
from tests.support.servers import file_config, strongroom_server

CONFIG = file_config(workers=2)


def call(url: str, token: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{url}/v1/{path}", headers={"X-Vault-Token": token},
                            timeout=30, **kwargs)  # type: ignore[arg-type]


def _build_node(workdir: Path) -> dict[str, str]:
    """Initialise a node, write the data, and return its unseal key and tokens."""
    with strongroom_server(workdir, CONFIG) as srv:
        init = requests.put(f"{srv.url}/v1/sys/init", timeout=60,
                            json={"secret_shares": 1, "secret_threshold": 1}).json()
        key, root = init["keys"][0], init["root_token"]
        assert requests.put(f"{srv.url}/v1/sys/unseal", json={"key": key},
                            timeout=30).json()["sealed"] is False
        for path, options in (("secret", {"version": "2"}), ("kv1", {"version": "1"})):
            assert call(srv.url, root, "POST", f"sys/mounts/{path}",
                        json={"type": "kv", "options": options}).status_code == 204
        for password in ("hunter1", "hunter2"):
            assert call(srv.url, root, "POST", "secret/data/app/db",
                        json={"data": {"password": password}}).status_code == 200
        for i in range(30):
            assert call(srv.url, root, "POST", f"secret/data/many/k{i:02d}",
                        json={"data": {"i": i}}).status_code == 200
        assert call(srv.url, root, "POST", "kv1/legacy/one",
                    json={"v": "old format"}).status_code == 204
        child = call(srv.url, root, "POST", "auth/token/create",
                     json={"policies": ["default"]}).json()["auth"]["client_token"]
    return {"unseal_key": key, "root_token": root, "child_token": child}


def _all_keys(store: FileBackend, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name in store.list(prefix):
        keys.extend(_all_keys(store, prefix + name) if name.endswith("/") else [prefix + name])
    return keys


def _rewrite_in_old_layout(data_dir: Path) -> int:
    """Every entry of the database, framed as the old format kept it; the database gone."""
    store = FileBackend(data_dir)
    try:
        entries = {key: store.get(key) for key in _all_keys(store)}
    finally:
        store.close()
    for name in os.listdir(data_dir):
        if name.startswith(DB_NAME):  # the database and its -wal/-shm files
            (data_dir / name).unlink()
    for key, value in entries.items():
        assert value is not None
        target = Path(legacy_path(str(data_dir), key))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(frame(value))
    return len(entries)


def test_a_node_written_in_the_old_format_starts_and_serves(tmp_path: Path) -> None:
    keys = _build_node(tmp_path)
    assert _rewrite_in_old_layout(tmp_path / "data") > 60  # 32 KV v2 docs and metadata...
    assert not (tmp_path / "data" / DB_NAME).exists()
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
