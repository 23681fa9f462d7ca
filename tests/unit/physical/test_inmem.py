"""The Backend contract, run against every embedded backend.

InmemBackend is the reference for LIST semantics; FileBackend must behave the
same, so every test here is parametrized over both.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.errors import InvalidKeyError
from strongroom.physical.base import Backend
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend

BAD_KEYS = ["", "/abs", "a//b", "a/", "../x", "a/../../b", "./a", "a/.", "a\x00b", "a\nb"]
BAD_PREFIXES = ["a", "/", "/a/", "a//", "../", "a/../", "a\x00/"]


@pytest.fixture(params=["inmem", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "inmem":
        return InmemBackend()
    return FileBackend(tmp_path / "store")


def test_satisfies_protocol(backend: Backend) -> None:
    assert isinstance(backend, Backend)


def test_put_get_overwrite_delete(backend: Backend) -> None:
    assert backend.get("a") is None
    backend.put("a", b"one")
    assert backend.get("a") == b"one"
    backend.put("a", b"two")
    assert backend.get("a") == b"two"
    backend.delete("a")
    assert backend.get("a") is None
    backend.delete("a")  # deleting a missing key is fine
    backend.delete("never/existed")


def test_values_are_opaque_bytes(backend: Backend) -> None:
    values = [b"", b"\x00", bytes(range(256)), b"x" * 100_000]
    for index, value in enumerate(values):
        backend.put(f"v{index}", value)
    for index, value in enumerate(values):
        assert backend.get(f"v{index}") == value


def test_stored_value_is_a_copy(backend: Backend) -> None:
    value = bytearray(b"abc")
    backend.put("k", value)  # type: ignore[arg-type]
    value[0] = ord("z")
    assert backend.get("k") == b"abc"


def test_list_semantics(backend: Backend) -> None:
    for key in ["foo", "foo/bar", "foo/baz/qux", "foo/zip", "other/deep/er/key", "z"]:
        backend.put(key, b"v")
    assert backend.list("") == ["foo", "foo/", "other/", "z"]
    assert backend.list("foo/") == ["bar", "baz/", "zip"]
    assert backend.list("foo/baz/") == ["qux"]
    assert backend.list("other/") == ["deep/"]
    assert backend.list("other/deep/er/") == ["key"]
    assert backend.list("missing/") == []
    assert backend.list("foo/bar/") == []  # a leaf is not a folder


def test_list_empty_store(backend: Backend) -> None:
    assert backend.list("") == []


def test_folders_disappear_when_emptied(backend: Backend) -> None:
    backend.put("a/b/c", b"1")
    backend.put("a/d", b"2")
    backend.delete("a/b/c")
    assert backend.list("a/") == ["d"]
    assert backend.list("a/b/") == []
    backend.delete("a/d")
    assert backend.list("") == []


def test_leaf_and_folder_with_same_name_coexist(backend: Backend) -> None:
    backend.put("x", b"leaf")
    backend.put("x/y", b"child")
    assert backend.list("") == ["x", "x/"]
    backend.delete("x")
    assert backend.list("") == ["x/"]
    assert backend.get("x/y") == b"child"


def test_unusual_but_valid_segments(backend: Backend) -> None:
    keys = [
        "@at",
        "+plus",
        "%41",
        "A",
        "a b",
        "ünïcode/ключ",
        "...",
        ".hidden",
        "~",
        "_x",
        "+tmp-x",
    ]
    for key in keys:
        backend.put(key, key.encode())
    for key in keys:
        assert backend.get(key) == key.encode()
    assert backend.list("") == sorted({"".join(key.partition("/")[:2]) for key in keys})
    assert backend.list("ünïcode/") == ["ключ"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(backend: Backend, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        backend.get(key)
    with pytest.raises(InvalidKeyError):
        backend.put(key, b"v")
    with pytest.raises(InvalidKeyError):
        backend.delete(key)


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_bad_prefixes_rejected(backend: Backend, prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        backend.list(prefix)


def test_random_operations_match_a_dict(backend: Backend) -> None:
    rng = random.Random(1234)
    names = ["a", "b", "c/d", "c/e", "c/f/g", "h/i/j/k", "h/l"]
    model: dict[str, bytes] = {}

    def put(key: str) -> None:
        value = rng.randbytes(rng.randint(0, 64))
        backend.put(key, value)
        model[key] = value

    def delete(key: str) -> None:
        backend.delete(key)
        model.pop(key, None)

    ops: list[Callable[[str], None]] = [put, put, delete]
    for _ in range(300):
        rng.choice(ops)(rng.choice(names))
        for key in names:
            assert backend.get(key) == model.get(key)
        for prefix in ["", "c/", "c/f/", "h/", "h/i/"]:
            expected = sorted(
                {
                    "".join(k[len(prefix) :].partition("/")[:2])
                    for k in model
                    if k.startswith(prefix)
                }
            )
            assert backend.list(prefix) == expected
