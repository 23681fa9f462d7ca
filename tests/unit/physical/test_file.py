"""FileBackend specifics: on-disk layout, containment, corruption, concurrency.

The shared Backend contract (LIST semantics etc.) runs in test_inmem.py against
both backends.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from strongroom.errors import CorruptEntryError, InvalidKeyError, StorageError
from strongroom.physical.file import FileBackend

SERVER_DIR = Path(__file__).resolve().parents[3] / "server"


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
    assert stat.S_IMODE((root / "a").stat().st_mode) == 0o700
    leaf = root / "a" / "b%40c" / "@d"
    assert stat.S_IMODE(leaf.stat().st_mode) == 0o600
    assert tree(root) == ["a", "a/b%40c", "a/b%40c/@d"]


def test_persists_across_instances(backend: FileBackend, root: Path) -> None:
    backend.put("x/y", b"kept")
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
    "a" * 256,
    "b/" + "c" * 300,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=[f"bad{n}" for n in range(len(BAD_KEYS))])
def test_traversal_and_bad_names_touch_nothing(tmp_path: Path, key: str) -> None:
    root = tmp_path / "inner" / "store"
    backend = FileBackend(root)
    before = tree(tmp_path)
    with pytest.raises(InvalidKeyError):
        backend.put(key, b"v")
    with pytest.raises(InvalidKeyError):
        backend.get(key)
    with pytest.raises(InvalidKeyError):
        backend.delete(key)
    with pytest.raises(InvalidKeyError):
        backend.list(key + "/")
    assert tree(tmp_path) == before


def test_longest_segment_is_accepted(backend: FileBackend) -> None:
    backend.put("a" * 254, b"leaf")  # "@" + 254 = NAME_MAX
    backend.put("d" * 255 + "/x", b"in dir")
    with pytest.raises(InvalidKeyError, match="too long"):
        backend.put("a" * 255, b"leaf")
    assert backend.list("") == ["a" * 254, "d" * 255 + "/"]


def test_encoded_path_too_long_is_invalid_key(backend: FileBackend) -> None:
    key = "/".join(["ключ" * 5] * 90)  # < 2048 chars, ~10 KiB once percent-encoded
    with pytest.raises(InvalidKeyError):
        backend.put(key, b"v")


def test_lone_surrogate_is_invalid_key(backend: FileBackend) -> None:
    with pytest.raises(InvalidKeyError):
        backend.put("a\udc80", b"v")


def corrupt_cases() -> list[tuple[str, int | None, int | None]]:
    # (name, truncate-to, flip-byte-at); offsets into a 4 + 8 + 32 + 16 byte file
    truncations = {
        "empty": 0,
        "magic-only": 3,
        "short-header": 43,
        "header-only": 44,
        "half-payload": 52,
        "one-byte-short": 59,
    }
    flips = {"magic": 0, "length": 11, "hash": 20, "payload": 50, "last": 59}
    return [(name, size, None) for name, size in truncations.items()] + [
        (f"flip-{name}", None, offset) for name, offset in flips.items()
    ]


@pytest.mark.parametrize(("name", "truncate", "flip"), corrupt_cases())
def test_corruption_detected(
    backend: FileBackend, root: Path, name: str, truncate: int | None, flip: int | None
) -> None:
    value = b"S3CRET-VALUE-16B"
    backend.put("dir/entry", value)
    path = root / "dir" / "@entry"
    data = bytearray(path.read_bytes())
    assert len(data) == 60
    if truncate is not None:
        data = data[:truncate]
    if flip is not None:
        data[flip] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError) as info:
        backend.get("dir/entry")
    assert info.value.key == "dir/entry"
    assert "dir/entry" in str(info.value)
    assert "S3CRET" not in str(info.value)


def test_trailing_garbage_detected(backend: FileBackend, root: Path) -> None:
    backend.put("k", b"v")
    with (root / "@k").open("ab") as handle:
        handle.write(b"extra")
    with pytest.raises(CorruptEntryError, match="'k'"):
        backend.get("k")


def test_other_os_errors_become_storage_error(backend: FileBackend, root: Path) -> None:
    (root / "@isdir").mkdir()
    with pytest.raises(StorageError) as info:
        backend.get("isdir")
    assert not isinstance(info.value, CorruptEntryError)
    assert "'isdir'" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__

    (root / "plainfile").write_bytes(b"")  # a file where the folder "plainfile/" would go
    with pytest.raises(StorageError) as info:
        backend.put("plainfile/k", b"TOP-SECRET")
    assert "'plainfile/k'" in str(info.value) and "TOP-SECRET" not in str(info.value)
    assert backend.get("plainfile/k") is None


def test_failed_replace_leaves_no_temp_file(
    backend: FileBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StorageError, match="Input/output error"):
        backend.put("a/k", b"v")
    monkeypatch.undo()
    assert [p.name for p in (root / "a").iterdir()] == []


def test_put_retries_when_parent_is_pruned(
    backend: FileBackend, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_make_dirs = FileBackend._make_dirs
    calls = []

    def make_dirs_then_lose_race(self: FileBackend, directory: str) -> None:
        real_make_dirs(self, directory)
        calls.append(directory)
        if len(calls) == 1:
            os.rmdir(directory)  # what a concurrent delete's prune would do

    monkeypatch.setattr(FileBackend, "_make_dirs", make_dirs_then_lose_race)
    backend.put("p/q", b"v")
    assert len(calls) == 2
    assert backend.get("p/q") == b"v"


def test_list_ignores_temp_foreign_and_empty(backend: FileBackend, root: Path) -> None:
    backend.put("real", b"v")
    backend.put("dir/x", b"v")
    (root / "+tmp-0123").write_bytes(b"partial")
    (root / "dir" / "+tmp-4567").write_bytes(b"partial")
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "onlytemp").mkdir()
    (root / "onlytemp" / "+tmp-89ab").write_bytes(b"")
    (root / "%61").mkdir()  # non-canonical encoding of "a"
    (root / "%61" / "@x").write_bytes(b"")
    (root / "stray.txt").write_bytes(b"")
    (root / "@link").symlink_to(root / "@real")
    assert backend.list("") == ["dir/", "real"]
    assert backend.list("dir/") == ["x"]
    assert backend.list("empty/") == []


def test_delete_prunes_empty_parents_but_not_root(backend: FileBackend, root: Path) -> None:
    backend.put("a/b/c/d", b"v")
    backend.put("a/keep", b"v")
    backend.delete("a/b/c/d")
    assert tree(root) == ["a", "a/@keep"]
    backend.delete("a/keep")
    assert tree(root) == []
    assert root.is_dir()


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
                backend.delete(key)  # prunes shared/N/ while others put into it
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


def test_deepest_key(backend: FileBackend, root: Path) -> None:
    key = "a/" * 1023 + "b"  # 2047 characters: just under MAX_KEY_LENGTH
    backend.put(key, b"deep")
    assert backend.get(key) == b"deep"
    assert backend.list("") == ["a/"]
    assert backend.list(key[:-1]) == ["b"]
    backend.delete(key)
    assert backend.list("") == []
    assert tree(root) == []
