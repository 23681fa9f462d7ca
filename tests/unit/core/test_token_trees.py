"""Large token trees revoked in the background, the accessor mirror, and auth/token/tidy.

In-process nodes (a real core on inmem storage); the owner's background job is
called directly (``tokens.background``), as node/background.py calls it.
tests/integration/test_token_trees_multiworker.py runs the same across real worker
processes, with a crash of the owner mid-way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.core.token_index import MAX_PENDING, REFRESH_MISSES, AccessorMirror
from strongroom.core.token_revoke import INLINE_LIMIT
from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.errors import BadRequestError
from strongroom.physical.inmem import InmemBackend
from tests.support.nodes import DevNode, dev_node

CHILDREN = INLINE_LIMIT + 20


@pytest.fixture
def d() -> DevNode:
    return dev_node()


def create(d: DevNode, token: str | None = None, **body: Any) -> dict[str, Any]:
    resp = d.call("POST", "auth/token/create", token=token, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json["auth"]  # type: ignore[no-any-return]


def store(d: DevNode) -> TokenStore:
    return d.node.core.tokens


def keys(d: DevNode, prefix: str) -> list[str]:
    return store(d)._storage.list(prefix)


def tree(d: DevNode, children: int = CHILDREN) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A parent (root policy, so it may create) with ``children`` children, one of which
    has a grandchild."""
    parent = create(d, policies=["root"], ttl="1h")
    kids = [create(d, parent["client_token"], policies=["root" if n == 0 else "default"],
                   ttl="1h") for n in range(children)]
    kids.append(create(d, kids[0]["client_token"], policies=["default"], ttl="1h"))
    return parent, kids


def status(d: DevNode, token: str) -> int:
    return int(d.call("GET", "auth/token/lookup-self", token=token).status_code)


def listed(d: DevNode) -> set[str]:
    return set(d.call("LIST", "auth/token/accessors").json["data"]["keys"])


def test_large_tree_is_refused_at_once_and_deleted_in_the_background(d: DevNode) -> None:
    parent, kids = tree(d)
    resp = d.call("POST", "auth/token/revoke", json={"token": parent["client_token"]})
    assert resp.status_code == 204
    # Nothing deleted yet: the tombstone alone refuses the whole tree.
    assert keys(d, "revoking/") == [store(d).salted(parent["client_token"])]
    assert {k["accessor"] for k in kids} <= listed(d)
    for token in [parent["client_token"], *(k["client_token"] for k in kids)]:
        assert status(d, token) == 403
    accessor = kids[5]["accessor"]
    assert d.call("POST", "auth/token/lookup-accessor",
                  json={"accessor": accessor}).status_code == 400
    # A child of a revoked token cannot be made.
    resp = d.call("POST", "auth/token/create", token=kids[1]["client_token"], json={})
    assert resp.status_code == 403
    assert status(d, "root") == 200

    # The owner's job, in slices: it resumes where it stopped (state is in storage).
    assert store(d).background(d.node.core.now(), budget_seconds=0.0) is False
    while not store(d).background(d.node.core.now(), budget_seconds=0.01):
        pass
    assert keys(d, "revoking/") == []
    assert listed(d) == {d.call("GET", "auth/token/lookup-self").json["data"]["accessor"]}
    assert keys(d, "id/") == [store(d).salted("root")]
    assert keys(d, "parent/") == []


def test_small_tree_is_still_revoked_inside_the_request(d: DevNode) -> None:
    parent, kids = tree(d, children=3)
    d.call("POST", "auth/token/revoke", json={"token": parent["client_token"]})
    assert keys(d, "revoking/") == []
    assert len(keys(d, "id/")) == 1 and keys(d, "parent/") == []


def test_revoked_tree_owned_data_goes_with_it(d: DevNode) -> None:
    parent, kids = tree(d)
    child = kids[3]["client_token"]
    assert d.call("POST", "cubbyhole/note", token=child, json={"v": "x"}).status_code == 204
    d.call("POST", "auth/token/revoke-self", token=parent["client_token"])
    assert status(d, child) == 403
    child_hash = store(d).salted(child)
    assert [k for k in _all_keys(d.node.core.barrier, "logical/") if child_hash in k]
    hashes = {store(d).salted(k["client_token"]) for k in kids}
    assert hashes <= token_leases(d)  # every token is a lease (the expiration manager)
    store(d).background(d.node.core.now(), budget_seconds=60)
    # on_revoke ran for every token of the tree: the child's cubbyhole is gone, and so
    # is every token's lease.
    assert [k for k in _all_keys(d.node.core.barrier, "logical/") if child_hash in k] == []
    assert not hashes & token_leases(d)


def token_leases(d: DevNode) -> set[str]:
    resp = d.call("LIST", "sys/leases/lookup/auth/token/create/")
    return set(resp.json["data"]["keys"]) if resp.status_code == 200 else set()


def _all_keys(backend: Any, prefix: str) -> list[str]:
    out: list[str] = []
    for key in backend.list(prefix):
        out += _all_keys(backend, prefix + key) if key.endswith("/") else [prefix + key]
    return out


def test_tokens_made_before_ancestry_was_stored_are_refused_too(d: DevNode) -> None:
    parent, kids = tree(d)
    view = store(d)._storage
    for key in view.list("id/"):
        doc = json.loads(view.get("id/" + key) or b"{}")
        doc.pop("ancestors", None)  # as stored before this change
        view.put("id/" + key, json.dumps(doc).encode())
    grandchild = kids[-1]["client_token"]
    d.call("POST", "auth/token/revoke", json={"token": parent["client_token"]})
    assert status(d, grandchild) == 403
    assert status(d, kids[7]["client_token"]) == 403
    store(d).background(d.node.core.now(), budget_seconds=60)
    assert len(keys(d, "id/")) == 1


def test_legacy_token_gets_its_ancestry_on_first_lookup(d: DevNode) -> None:
    parent = create(d, policies=["root"])
    child = create(d, parent["client_token"], policies=["default"])
    view, h = store(d)._storage, store(d).salted(child["client_token"])
    doc = json.loads(view.get("id/" + h) or b"{}")
    del doc["ancestors"]
    view.put("id/" + h, json.dumps(doc).encode())
    assert status(d, child["client_token"]) == 200
    stored = json.loads(view.get("id/" + h) or b"{}")
    assert stored["ancestors"] == [store(d).salted(parent["client_token"]),
                                   store(d).salted("root")]


def test_child_written_while_its_parent_is_deleted_is_undone(d: DevNode) -> None:
    """A create that looked its parent up before the revocation and writes after it."""
    parent = create(d, policies=["root"])
    parent_hash = store(d).salted(parent["client_token"])
    stale = store(d).lookup(parent["client_token"], d.node.core.now())
    assert stale is not None
    d.call("POST", "auth/token/revoke", json={"token": parent["client_token"]})
    entry = TokenEntry(accessor="a" * 24, policies=["default"], path="auth/token/create",
                       creation_time=d.node.core.now(), parent_hash=parent_hash)
    with pytest.raises(BadRequestError, match="no parent found"):
        store(d).create(entry)
    assert len(keys(d, "id/")) == 1 and keys(d, "parent/") == []
    assert keys(d, "accessor/") == [k for k in keys(d, "accessor/")
                                    if k != store(d).salted("a" * 24)]


def test_list_accessors_reads_only_what_changed(d: DevNode, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    made = [create(d, policies=["default"]) for _ in range(30)]
    view = store(d)._storage
    reads: list[str] = []
    real_get = view.get

    def counting(key: str) -> bytes | None:
        reads.append(key)
        return real_get(key)

    monkeypatch.setattr(view, "get", counting)
    first = listed(d)
    assert {m["accessor"] for m in made} <= first and len(first) == 31
    assert len([k for k in reads if k.startswith("accessor/")]) == 31
    reads.clear()
    assert listed(d) == first
    assert [k for k in reads if k.startswith("accessor/")] == []  # nothing changed
    extra = create(d, policies=["default"])
    d.call("POST", "auth/token/revoke-accessor", json={"accessor": made[0]["accessor"]})
    reads.clear()
    assert listed(d) == (first - {made[0]["accessor"]}) | {extra["accessor"]}
    assert len([k for k in reads if k.startswith("accessor/")]) == 2
    # Sealing drops it (accessors are wiped with the keys); unsealing rebuilds it.
    store(d).forget()
    reads.clear()
    assert listed(d) == (first - {made[0]["accessor"]}) | {extra["accessor"]}
    assert len([k for k in reads if k.startswith("accessor/")]) == 31


def test_tidy_removes_expired_and_dangling_entries(d: DevNode) -> None:
    now = d.node.core.now()
    expired = create(d, policies=["default"], ttl="1h")
    parent = create(d, policies=["root"], ttl="1h")
    orphaned = create(d, parent["client_token"], policies=["default"])
    live = create(d, policies=["default"], ttl="2h")
    s, view = store(d), store(d)._storage
    # Expired an hour and a half later (the clock stays; the entry moves).
    doc = json.loads(view.get("id/" + s.salted(expired["client_token"])) or b"{}")
    doc["expire_at"] = now - 1
    view.put("id/" + s.salted(expired["client_token"]), json.dumps(doc).encode())
    # A parent lost by a crash part-way; dangling index entries.
    view.delete("id/" + s.salted(parent["client_token"]))
    view.put("accessor/" + s.salted("dangling-accessor"),
             json.dumps({"token_hash": "0" * 64, "accessor": "dangling-accessor"}).encode())
    view.put(f"parent/{s.salted('root')}/{'1' * 64}", b"")

    resp = d.call("POST", "auth/token/tidy")
    assert resp.status_code == 202
    assert resp.json["warnings"] == [
        "Tidy operation successfully started. Any information from the operation will be "
        "printed to Strongroom's server logs."]
    again = d.call("POST", "auth/token/tidy")
    assert again.status_code == 200
    assert again.json["warnings"] == ["Tidy operation already in progress."]
    assert s.background(now) is True
    assert sorted(keys(d, "id/")) == sorted([s.salted("root"), s.salted(live["client_token"])])
    assert listed(d) == {live["accessor"],
                         d.call("GET", "auth/token/lookup-self").json["data"]["accessor"]}
    assert keys(d, f"parent/{s.salted('root')}/") == [s.salted(live["client_token"])]
    assert keys(d, "work/") == []
    assert status(d, orphaned["client_token"]) == 403
    assert d.call("POST", "auth/token/tidy").status_code == 202  # done: may run again


def test_tidy_needs_the_capability(d: DevNode) -> None:
    user = create(d, policies=["default"])
    assert d.call("POST", "auth/token/tidy", token=user["client_token"]).status_code == 403
    assert d.call("GET", "auth/token/tidy").status_code == 405


def test_a_new_process_builds_its_mirror_from_the_stored_shards(
        d: DevNode, monkeypatch: pytest.MonkeyPatch) -> None:
    made = [create(d, policies=["default"]) for _ in range(REFRESH_MISSES + 10)]
    view = store(d)._storage
    reads: list[str] = []
    real_get = view.get

    def counting(key: str) -> bytes | None:
        reads.append(key)
        return real_get(key)

    monkeypatch.setattr(view, "get", counting)
    everything = listed(d)
    assert len(everything) == len(made) + 1
    assert len([k for k in reads if k.startswith("accessor/")]) == len(made) + 1
    assert keys(d, "accessor-cache/")  # written back: most were missing
    # As a fresh worker would (or after a seal): the shards answer, no entry is read.
    store(d).forget()
    reads.clear()
    assert listed(d) == everything
    assert [k for k in reads if k.startswith("accessor/")] == []
    # Stale shards: the listing decides what exists; only the new entry is read.
    extra = create(d, policies=["default"])
    d.call("POST", "auth/token/revoke-accessor", json={"accessor": made[0]["accessor"]})
    store(d).forget()
    reads.clear()
    assert listed(d) == (everything - {made[0]["accessor"]}) | {extra["accessor"]}
    assert [k for k in reads if k.startswith("accessor/")] == [
        "accessor/" + store(d).salted(extra["accessor"])]


def test_accessor_mirror_memory_is_bounded() -> None:
    """A process that never lists keeps no notices; one that rarely does drops its
    mirror rather than pile them up."""
    backend = InmemBackend()
    backend.put("accessor/s1", json.dumps({"token_hash": "h1", "accessor": "a1"}).encode())
    mirror = AccessorMirror(backend, lambda _h: "")
    for n in range(MAX_PENDING + 10):
        mirror.changed(f"k{n}")
    assert mirror._dirty == set() and mirror._pairs is None
    assert mirror.accessors() == ["a1"] and mirror._pairs == {"s1": "a1"}
    for n in range(MAX_PENDING):
        mirror.changed(f"k{n}")
    assert mirror._pairs is not None and len(mirror._dirty) == MAX_PENDING
    mirror.changed("one-too-many")
    assert mirror._pairs is None and mirror._dirty == set()
    backend.put("accessor/s2", json.dumps({"token_hash": "h2", "accessor": "a2"}).encode())
    assert mirror.accessors() == ["a1", "a2"]


def test_the_owner_keeps_the_shards_current(d: DevNode, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    core = d.node.core
    core.sync()
    assert store(d).background(core.now()) is True  # the owner's first run: shards built
    made = [create(d, policies=["default"]) for _ in range(REFRESH_MISSES + 5)]
    core.sync()  # as OwnerCore.core() does before each job
    store(d)._shards_due = 0.0  # its next save is due
    store(d).background(core.now())
    view = store(d)._storage
    reads: list[str] = []
    real_get = view.get

    def counting(key: str) -> bytes | None:
        reads.append(key)
        return real_get(key)

    monkeypatch.setattr(view, "get", counting)
    store(d).forget()  # a fresh worker's view
    assert {m["accessor"] for m in made} <= listed(d)
    assert [k for k in reads if k.startswith("accessor/")] == []
