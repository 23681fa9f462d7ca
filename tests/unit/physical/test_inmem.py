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
from tests.support.backend_contract import BackendContract


class TestBackendContract(BackendContract):
    """The shared contract, for inmem and file storage."""


BAD_KEYS = ["", "/abs", "a//b", "a/", "../x", "a/../../b", "./a", "a/.", "a\x00b", "a\nb"]
BAD_PREFIXES = ["a", "/", "/a/", "a//", "../", "a/../", "a\x00/"]


@pytest.fixture(params=["inmem", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "inmem":
        return InmemBackend()
    return FileBackend(tmp_path / "store")








def test_stored_value_is_a_copy(backend: Backend) -> None:
    value = bytearray(b"abc")
    backend.put("k", value)  # type: ignore[arg-type]
    value[0] = ord("z")
    assert backend.get("k") == b"abc"










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
