"""KV v1 (and the v1 -> v2 upgrade) over the HTTP edge."""

from __future__ import annotations

import pytest
from kv_helpers import START, data, errors, kv_node, mount, patch, stored_plain, unchanged

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request
from strongroom.engines.kv import kv_factory
from strongroom.engines.kv.common import MAX_DOCUMENT_BYTES
from strongroom.physical.inmem import InmemBackend
from tests.support.nodes import DevNode


def v1_node() -> DevNode:
    d, _ = kv_node()
    mount(d, "kv1", "1")
    return d


def test_write_read_overwrite_delete() -> None:
    d = v1_node()
    assert d.call("POST", "kv1/app/db", json={"user": "u", "nested": {"n": 1}}).status_code == 204
    resp = d.call("GET", "kv1/app/db")
    assert resp.status_code == 200
    assert resp.json["data"] == {"nested": {"n": 1}, "user": "u"}
    assert resp.json["lease_duration"] == 768 * 3600 and resp.json["renewable"] is False
    assert d.call("PUT", "kv1/app/db", json={"only": "this"}).status_code == 204
    assert data(d.call("GET", "kv1/app/db")) == {"only": "this"}
    assert d.call("DELETE", "kv1/app/db").status_code == 204
    resp = d.call("GET", "kv1/app/db")
    assert (resp.status_code, resp.json) == (404, {"errors": []})
    assert d.call("DELETE", "kv1/app/db").status_code == 204


@pytest.mark.parametrize(("ttl", "lease"), [("1h", 3600), (90, 90), ("90", 90),
                                            ("bogus", 768 * 3600)])
def test_a_ttl_key_is_echoed_as_the_lease_duration(ttl: object, lease: int) -> None:
    d = v1_node()
    d.call("POST", "kv1/k", json={"ttl": ttl, "v": 1})
    assert d.call("GET", "kv1/k").json["lease_duration"] == lease


def test_missing_paths_are_bare_404s() -> None:
    d = v1_node()
    for path in ("kv1/nope", "kv1/", "kv1/dir/"):
        resp = d.call("GET", path)
        assert (resp.status_code, resp.json) == (404, {"errors": []})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("kv1/k", {}, "missing data fields"),
        ("kv1/k", {"a": "x" * MAX_DOCUMENT_BYTES}, "too large"),
        ("kv1/k/", {"a": 1}, "cannot write to a path ending in '/'"),
        ("kv1/", {"a": 1}, "cannot write to a path ending in '/'"),
        ("kv1/" + "a" * 1100, {"a": 1}, "too long"),
    ],
)
def test_bad_writes_are_400_and_store_nothing(path: str, body: object, message: str) -> None:
    d = v1_node()
    d.call("POST", "kv1/k", json={"v": 1})
    with unchanged(d, "kv1/"):
        assert message in errors(d.call("POST", path, json=body))[0]
    assert data(d.call("GET", "kv1/k")) == {"v": 1}


def test_any_json_object_is_stored_verbatim() -> None:
    d = v1_node()
    body = {"path": {"a": 1}, "data": None, "list": [1, "x", None], "t": True}
    assert d.call("POST", "kv1/k", json=body).status_code == 204
    assert data(d.call("GET", "kv1/k")) == body


def test_list() -> None:
    d = v1_node()
    for path in ("b", "a", "dir/x", "dir/sub/y"):
        d.call("POST", f"kv1/{path}", json={"v": 1})
    assert data(d.call("LIST", "kv1/"))["keys"] == ["a", "b", "dir/"]
    assert data(d.call("LIST", "kv1/dir"))["keys"] == ["sub/", "x"]
    assert data(d.call("GET", "kv1/dir/", params={"list": "true"}))["keys"] == ["sub/", "x"]
    resp = d.call("LIST", "kv1/nothing/")
    assert (resp.status_code, resp.json) == (404, {"errors": []})


def test_patch_is_not_supported() -> None:
    d = v1_node()
    d.call("POST", "kv1/k", json={"v": 1})
    with unchanged(d, "kv1/"):
        assert patch(d, "kv1/k", {"v": 2}).status_code == 405


def test_unknown_query_parameters_are_warnings_on_reads() -> None:
    d = v1_node()
    d.call("POST", "kv1/k", json={"v": 1})
    resp = d.call("GET", "kv1/k", params={"foo": "bar"})
    assert resp.json["warnings"] == ["Endpoint ignored these unrecognized parameters: [foo]"]


def test_unknown_version_option_is_refused_at_enable() -> None:
    """Vault's kv factory knows versions "", "1" and "2": any other is refused when the
    mount is enabled (it was mounted, then answered 500 on every request)."""
    d, _ = kv_node()
    resp = d.call("POST", "sys/mounts/kv9", json={"type": "kv", "options": {"version": "9"}})
    assert (resp.status_code, errors(resp)) == (
        400, ['nil backend of type "kv" returned from factory'])
    assert "kv9/" not in data(d.call("GET", "sys/mounts"))
    assert d.call("POST", "secret/data/x", json={"data": {"v": 1}}).status_code == 200


def test_tuning_a_v1_mount_to_v2_upgrades_its_entries() -> None:
    d = v1_node()
    d.call("POST", "kv1/a", json={"v": 1})
    d.call("POST", "kv1/dir/b", json={"v": 2})
    resp = d.call("POST", "sys/mounts/kv1/tune", json={"options": {"version": "2"}})
    assert resp.status_code == 200  # with Vault's warning
    assert resp.json["warnings"][0].startswith("Upgrading mount from version 1 to version 2.")
    assert data(d.call("GET", "kv1/data/a"))["data"] == {"v": 1}
    got = data(d.call("GET", "kv1/data/dir/b"))
    assert got["data"] == {"v": 2} and got["metadata"]["version"] == 1
    assert data(d.call("LIST", "kv1/metadata/"))["keys"] == ["a", "dir/"]
    assert not [key for key in stored_plain(d, "kv1/") if key.startswith("v1/")]


def test_existence_checks_tell_create_from_update() -> None:
    view = StorageView(InmemBackend(), "logical/x/")
    ctx = MountContext(view, MountEntry(path="kv/", type="kv", options={"version": "1"}),
                       lambda: START)
    v1 = kv_factory(ctx)
    write = Request(Operation.UPDATE, "kv/a", data={"v": 1})
    assert v1.existence(write, "a") is False
    v1.handle(write, "a")
    assert v1.existence(write, "a") is True
    assert v1.existence(write, "a/") is False
    ctx.mount.options["version"] = "2"
    v2 = kv_factory(ctx)  # upgrades the v1 entry to version 1 of "a"
    write = Request(Operation.UPDATE, "kv/data/b", data={"data": {"v": 1}})
    assert v2.existence(write, "data/a") is True
    assert v2.existence(write, "metadata/a") is True
    assert v2.existence(write, "data/b") is False
    v2.handle(write, "data/b")
    assert v2.existence(write, "data/b") is True
    assert v2.existence(write, "destroy/b") is None  # no create/update distinction
