"""FileBackend specifics: on-disk layout, corruption, transactions, paging, concurrency,
and the import of the old one-file-per-entry format.

The shared Backend contract (LIST semantics, paging) runs in test_inmem.py against
both backends.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from strongroom.errors import CorruptEntryError, InvalidKeyError, StorageError
from strongroom.physical import file_legacy
from strongroom.physical.file import DB_NAME, FileBackend

SERVER_DIR = Path(__file__).resolve().parents[3] / "server"
# A store written by the one-file-per-entry FileBackend of main at 928d45d (before
# issue 14), with a temp file a killed writer left: see test_store_written_by_old_code.
LEGACY_STORE = Path(__file__).resolve().parent / "data" / "legacy_store.tar.gz"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def backend(root: Path) -> FileBackend:
    return FileBackend(root)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_layout_and_permissions(backend: FileBackend, root: Path) -> None:
    backend.put("a/b@c/d", b"v")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert tree(root) == [DB_NAME, DB_NAME + "-shm", DB_NAME + "-wal"]
    for name in tree(root):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name


def test_persists_across_instances(backend: FileBackend, root: Path) -> None:
    backend.put("x/y", b"kept")
    backend.close()
    assert FileBackend(root).get("x/y") == b"kept"
    assert FileBackend(str(root)).list("x/") == ["y"]


BAD_KEYS = [
    "../x",
    "a/../../b",
    "/abs",
    "a//b",
    "a\x00b",
    "..",
    "x/..",
    "a" * 2049,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=[f"bad{n}" for n in range(len(BAD_KEYS))])
def test_bad_keys_touch_nothing(backend: FileBackend, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        backend.put(key, b"v")
    with pytest.raises(InvalidKeyError):
        backend.get(key)
    with pytest.raises(InvalidKeyError):
        backend.delete(key)
    if len(key) < 2048:  # a LIST prefix has no length limit (nothing can lie under it)
        with pytest.raises(InvalidKeyError):
            backend.list(key + "/")
    with pytest.raises(InvalidKeyError):
        backend.transaction([("put", "fine", b"v"), ("put", key, b"v")])
    assert backend.list("") == []


def test_long_segments_are_fine(backend: FileBackend) -> None:
    # The old format's limits (255-byte names, PATH_MAX) are gone: only MAX_KEY_LENGTH.
    backend.put("a" * 1000, b"leaf")
    key = "/".join(["ключ" * 5] * 90)  # ~10 KiB once percent-encoded by the old format
    backend.put(key, b"v")
    assert backend.get(key) == b"v"
    assert backend.list("") == ["a" * 1000, "ключ" * 5 + "/"]


def test_lone_surrogate_is_invalid_key(backend: FileBackend) -> None:
    for call in (lambda: backend.put("a\udc80", b"v"), lambda: backend.get("a\udc80"),
                 lambda: backend.list("a\udc80/"), lambda: backend.list_page("", "\udc80")):
        with pytest.raises(InvalidKeyError):
            call()


def test_bit_rot_is_detected(backend: FileBackend, root: Path) -> None:
    backend.put("dir/entry", b"S3CRET-VALUE-16B")
    with sqlite3.connect(root / DB_NAME) as db:  # flip one bit of the stored value
        db.execute("UPDATE entries SET value = ? WHERE key = ?", (b"S3CRET-VALUE-16C", "dir/entry"))
    with pytest.raises(CorruptEntryError) as info:
        backend.get("dir/entry")
    assert info.value.key == "dir/entry"
    assert "S3CRET" not in str(info.value)


def test_a_broken_database_is_a_storage_error(root: Path) -> None:
    root.mkdir()
    (root / DB_NAME).write_bytes(b"this is not a database" * 300)
    with pytest.raises(StorageError) as info:
        FileBackend(root)
    assert not isinstance(info.value, CorruptEntryError)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_transactions_are_atomic(backend: FileBackend) -> None:
    backend.put("a", b"1")
    backend.transaction([("delete", "a", None), ("put", "b", b"2"), ("put", "c/d", b"3")])
    assert (backend.get("a"), backend.get("b"), backend.get("c/d")) == (None, b"2", b"3")
    with pytest.raises(InvalidKeyError):  # refused before anything is written
        backend.transaction([("put", "b", b"changed"), ("put", "bad/../key", b"x")])
    assert backend.get("b") == b"2"
    backend.transaction([])


def test_a_failing_transaction_writes_nothing(backend: FileBackend, root: Path) -> None:
    backend.put("k", b"old")
    with sqlite3.connect(root / DB_NAME) as db:  # the database refuses the second row
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.key = 'no' "
                   "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(StorageError, match="refused") as info:
        backend.transaction([("put", "k", b"TOP-SECRET"), ("put", "no", b"x")])
    assert "TOP-SECRET" not in str(info.value)
    assert backend.get("k") == b"old" and backend.get("no") is None
    backend.put("k", b"new")  # the connection is usable afterwards
    assert backend.get("k") == b"new"


def test_paging_reads_only_the_page(backend: FileBackend, root: Path) -> None:
    # A page of 10 out of a 5,000-key folder (beside 5,000 keys in sub-folders) costs
    # a small fraction of the whole listing: SQLite's VM steps, counted.
    backend.transaction([("put", f"f/k{i:05d}", b"v") for i in range(5000)]
                        + [("put", f"f/sub{i % 50}/k{i}", b"v") for i in range(5000)])
    conn = backend._conn()
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    def cost(call: object) -> int:
        steps[0] = 0
        conn.set_progress_handler(count, 10)
        try:
            assert callable(call)
            call()
        finally:
            conn.set_progress_handler(None, 0)
        return steps[0]

    whole = cost(lambda: backend.list("f/"))
    page = cost(lambda: backend.list_page("f/", "k02500", 10))
    folders = cost(lambda: backend.list_page("f/", "k04999", 10))
    assert backend.list_page("f/", "k02500", 10) == [f"k{i:05d}" for i in range(2501, 2511)]
    assert backend.list_page("f/", "k04999", 10) == [f"sub{i}/" for i in
                                                     sorted(range(50), key=str)[:10]]
    assert page * 50 < whole and folders * 20 < whole, (page, folders, whole)


def test_concurrent_threads(backend: FileBackend) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn(worker: int) -> None:
        try:
            for i in range(100):
                key = f"shared/{i % 3}/w{worker}"
                backend.put(key, f"{worker}-{i}".encode() * 50)
                assert backend.get(key) == f"{worker}-{i}".encode() * 50
                backend.list("shared/")
                backend.delete(key)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the main thread
            errors.append(exc)

    def overwrite() -> None:
        i = 0
        while not stop.is_set():
            backend.put("hot", str(i).encode() * 1000)
            i += 1

    def read_hot() -> None:
        try:
            while not stop.is_set():
                value = backend.get("hot")
                assert value is not None and value == value[: len(value) // 1000] * 1000
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    backend.put("hot", b"0" * 1000)
    workers = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
    others = [threading.Thread(target=overwrite), threading.Thread(target=read_hot)]
    for thread in workers + others:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    for thread in others:
        thread.join()
    assert errors == []
    assert backend.list("") == ["hot"]


def test_concurrent_processes(root: Path) -> None:
    script = (
        "import sys\n"
        "from strongroom.physical.file import FileBackend\n"
        "b = FileBackend(sys.argv[1]); n = sys.argv[2]\n"
        "for i in range(100):\n"
        "    k = f'p/{i % 4}/{n}-{i}'\n"
        "    b.put(k, k.encode()); assert b.get(k) == k.encode(); b.list('p/')\n"
        "    if i % 2: b.delete(k)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SERVER_DIR)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(root), str(n)], env=env)
        for n in range(4)
    ]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 4
    backend = FileBackend(root)
    expected = sorted(f"{n}-{i}" for n in range(4) for i in range(0, 100, 2) if i % 4 == 0)
    assert backend.list("p/0/") == expected
    assert len(backend.list("p/0/")) + len(backend.list("p/2/")) == 4 * 50


def test_deepest_key(backend: FileBackend) -> None:
    key = "a/" * 1023 + "b"  # 2047 characters: just under MAX_KEY_LENGTH
    backend.put(key, b"deep")
    assert backend.get(key) == b"deep"
    assert backend.list("") == ["a/"]
    assert backend.list(key[:-1]) == ["b"]
    backend.delete(key)
    assert backend.list("") == []


def unpack_legacy(tmp_path: Path) -> Path:
    with tarfile.open(LEGACY_STORE) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "store"


LEGACY_KEYS = sorted(
    ["core/seal-config", "logical/0b1c/v1/a", "logical/0b1c/v1/a/b",
     "logical/0b1c/v1/dir/x y@+%", "logical/0b1c/v1/ünïcode/é", "sys/token/id/h" + "0" * 60,
     "sys/token/accessor/a1", "big", "empty"]
    + [f"logical/0b1c/v1/many/k{i:03d}" for i in range(50)])


def legacy_value(key: str) -> bytes:
    import hashlib  # the generator's formula (see LEGACY_STORE)

    if key == "empty":
        return b""
    if key.startswith("logical/0b1c/v1/many/"):
        return f"value {int(key[-3:])}".encode()
    return hashlib.sha256(key.encode()).digest() * (3000 if key == "big" else 4)


def walk(backend: FileBackend, prefix: str = "") -> list[str]:
    keys = []
    for child in backend.list(prefix):
        keys += walk(backend, prefix + child) if child.endswith("/") else [prefix + child]
    return keys


def test_store_written_by_old_code(tmp_path: Path) -> None:
    root = unpack_legacy(tmp_path)
    (root / "foreign.txt").write_bytes(b"not ours")
    backend = FileBackend(root)
    assert sorted(walk(backend)) == LEGACY_KEYS  # the deleted key and the temp file are not
    for key in LEGACY_KEYS:
        assert backend.get(key) == legacy_value(key), key
    assert backend.list("logical/0b1c/v1/") == ["a", "a/", "dir/", "many/", "ünïcode/"]
    assert backend.list_page("logical/0b1c/v1/many/", "k047") == ["k048", "k049"]
    # The old files are gone, foreign ones stay.
    assert tree(root) == sorted([DB_NAME, DB_NAME + "-shm", DB_NAME + "-wal", "foreign.txt"])
    # Imported once: an old file reappearing later (a crash during the clean-up) is
    # not imported again, and the next start removes it.
    backend.delete("big")
    path = Path(file_legacy.legacy_path(str(root), "big"))
    path.write_bytes(file_legacy.frame(b"stale"))
    reopened = FileBackend(root)
    assert reopened.get("big") is None
    assert reopened.remove_temp_files() == 1
    assert not path.exists()


def test_import_is_shared_by_concurrent_openers(tmp_path: Path) -> None:
    root = unpack_legacy(tmp_path)
    script = (
        "import sys\n"
        "from strongroom.physical.file import FileBackend\n"
        "b = FileBackend(sys.argv[1])\n"
        "assert b.get('logical/0b1c/v1/many/k007') == b'value 7'\n"
        "assert len(b.list('logical/0b1c/v1/many/')) == 50\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SERVER_DIR)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root)], env=env)
             for _ in range(4)]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 4
    assert sorted(walk(FileBackend(root))) == LEGACY_KEYS


def test_a_corrupt_old_entry_stops_the_import(tmp_path: Path) -> None:
    root = unpack_legacy(tmp_path)
    path = Path(file_legacy.legacy_path(str(root), "logical/0b1c/v1/a"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError, match="logical/0b1c/v1/a"):
        FileBackend(root)  # fail closed: nothing imported, nothing deleted
    assert path.exists()
    count = sqlite3.connect(root / DB_NAME).execute("SELECT COUNT(*) FROM entries").fetchone()
    assert count == (0,)
    path.write_bytes(file_legacy.frame(b"repaired"))
    assert FileBackend(root).get("logical/0b1c/v1/a") == b"repaired"
