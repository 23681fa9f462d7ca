"""Policy names as OpenBao takes them, kept safely by every storage backend.

Names were limited to [a-z0-9_.-@]: hvac users' names with spaces, colons or
'/' ("team/app") were refused. Names outside that set are stored under a hash
key, so '/' makes no folder and no escaping outgrows a file name; names inside
it keep the key they always had.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.core.policy_store import MAX_NAME, PolicyStore, storage_key
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend
from strongroom.physical.file import FileBackend
from strongroom.physical.inmem import InmemBackend

POLICY = 'path "secret/*" { capabilities = ["read"] }'
NAMES = ["team/app", "a/b/c", "a b", "app:read", "ünï-" + "é" * 120, "😀", "~x", "...",
         "x" * MAX_NAME, "%41"]


@pytest.fixture(params=["inmem", "file"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return InmemBackend() if request.param == "inmem" else FileBackend(tmp_path, durable=False)


def test_any_name_round_trips_and_lists(storage: Backend) -> None:
    store = PolicyStore(storage)
    for name in NAMES:
        store.put(name, POLICY)
    assert store.names() == sorted({*NAMES, "root"})
    for name in NAMES:
        assert store.raw(name) == POLICY
        policy = store.get(name)
        assert policy is not None and policy.name == name
    store.delete("team/app")
    assert "team/app" not in store.names() and store.raw("team/app") is None


def test_names_of_the_old_charset_keep_their_keys(storage: Backend) -> None:
    for name in ("testpolicy", "app-1.read@x", "a..b", ".a"):
        assert storage_key(name) == name
    store = PolicyStore(storage)
    store.put("testpolicy", POLICY)
    assert storage.list("sys/policy/") == ["testpolicy"]
    assert storage_key("a b").startswith("~") and storage_key(".") != "."


def test_names_are_trimmed_lowered_and_bounded(storage: Backend) -> None:
    store = PolicyStore(storage)
    store.put("  Team/App  ", POLICY)
    assert store.raw("team/app") == POLICY and "team/app" in store.names()
    for bad in ("", "   ", "a\x7fb", "a\tb", "x" * (MAX_NAME + 1)):
        with pytest.raises(BadRequestError):
            store.put(bad, POLICY)
    # A token naming something that can be no policy is granted nothing by it.
    assert store.get("x" * (MAX_NAME + 1)) is None
