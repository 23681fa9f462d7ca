"""KV v2 data/: write, read, check-and-set, merge patch, soft delete -- over the HTTP edge."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from kv_helpers import START_TEXT, data, errors, kv_node, patch, stored_plain, unchanged

from strongroom.engines.kv.common import MAX_DOCUMENT_BYTES

META_KEYS = ["created_time", "custom_metadata", "deletion_time", "destroyed", "version"]


def test_write_then_read_round_trips_with_vault_shapes() -> None:
    d, _ = kv_node()
    written = data(d.call("POST", "secret/data/app/db", json={"data": {"user": "u", "n": 1}}))
    assert written == {"created_time": START_TEXT, "custom_metadata": None,
                       "deletion_time": "", "destroyed": False, "version": 1}
    resp = d.call("GET", "secret/data/app/db")
    assert resp.status_code == 200
    assert sorted(resp.json) == ["auth", "data", "lease_duration", "lease_id", "mount_type",
                                 "renewable", "request_id", "warnings", "wrap_info"]
    assert resp.json["data"] == {"data": {"n": 1, "user": "u"}, "metadata": written}


def test_put_and_post_both_write_new_versions() -> None:
    d, _ = kv_node()
    assert data(d.call("PUT", "secret/data/k", json={"data": {"v": 1}}))["version"] == 1
    assert data(d.call("POST", "secret/data/k", json={"data": {"v": 2}}))["version"] == 2
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 2}
    assert data(d.call("GET", "secret/data/k", params={"version": "1"}))["data"] == {"v": 1}


@pytest.mark.parametrize("version", ["0", "-1", ""])
def test_version_zero_negative_or_empty_means_current(version: str) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/data/k", json={"data": {"v": 2}})
    got = data(d.call("GET", "secret/data/k", params={"version": version}))
    assert got["metadata"]["version"] == 2


def test_missing_key_and_missing_version_are_bare_404s() -> None:
    d, _ = kv_node()
    for path in ("secret/data/nope", "secret/data/", "secret/data/dir/"):
        resp = d.call("GET", path)
        assert (resp.status_code, resp.json) == (404, {"errors": []})
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    resp = d.call("GET", "secret/data/k", params={"version": "7"})
    assert (resp.status_code, resp.json) == (404, {"errors": []})


@pytest.mark.parametrize("version", ["abc", "1.5", "1e3"])
def test_bad_version_number_is_400(version: str) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    assert "version" in errors(d.call("GET", "secret/data/k", params={"version": version}))[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "no data provided"),
        ({"options": {"cas": 0}}, "no data provided"),
        ({"data": "text"}, "'data'"),
        ({"data": [1, 2]}, "'data'"),
        ({"data": 5}, "'data'"),
        ({"data": {"a": 1}, "options": "x"}, "'options'"),
        ({"data": {"a": 1}, "options": [1]}, "'options'"),
        ({"data": {"a": "x" * MAX_DOCUMENT_BYTES}}, "too large"),
    ],
)
def test_bad_writes_are_400_and_store_nothing(body: dict[str, object], message: str) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    with unchanged(d):
        assert message in errors(d.call("POST", "secret/data/k", json=body))[0]
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 1}


def test_size_limit_is_exactly_one_mebibyte_of_json() -> None:
    d, _ = kv_node()
    overhead = len('{"a":""}')
    ok = {"a": "x" * (MAX_DOCUMENT_BYTES - overhead)}
    assert d.call("POST", "secret/data/k", json={"data": ok}).status_code == 200
    with unchanged(d):
        too_big = {"a": "x" * (MAX_DOCUMENT_BYTES - overhead + 1)}
        assert "too large" in errors(d.call("POST", "secret/data/k", json={"data": too_big}))[0]


def test_documents_too_deep_to_serve_are_refused() -> None:
    d, _ = kv_node()
    deep: dict[str, object] = {}
    for _ in range(300):
        deep = {"a": deep}
    with unchanged(d):
        assert "nested too deeply" in errors(
            d.call("POST", "secret/data/k", json={"data": deep}))[0]


def test_bad_paths_are_refused() -> None:
    d, _ = kv_node()
    with unchanged(d):
        errors(d.call("POST", "secret/data/" + "a" * 1025, json={"data": {"v": 1}}))
        assert errors(d.call("POST", "secret/data/a/", json={"data": {"v": 1}})) == [
            "cannot write to a path ending in '/'"]
        errors(d.call("POST", "secret/data/a//b", json={"data": {"v": 1}}))
        errors(d.call("POST", "secret/data/a/../b", json={"data": {"v": 1}}))


def test_explicit_null_data_is_a_version_reading_back_null() -> None:
    """Vault stores `"data": null` as a version; reading it gives 200 with data null."""
    d, _ = kv_node()
    assert data(d.call("POST", "secret/data/k", json={"data": None}))["version"] == 1
    assert data(d.call("GET", "secret/data/k"))["data"] is None


def test_unknown_fields_are_warnings() -> None:
    d, _ = kv_node()
    resp = d.call("POST", "secret/data/k", json={"data": {"v": 1}, "bogus": 1})
    assert resp.status_code == 200
    assert resp.json["warnings"] == ["Endpoint ignored these unrecognized parameters: [bogus]"]


# -- check-and-set --------------------------------------------------------------


def test_cas_zero_creates_only_and_n_updates_only_version_n() -> None:
    d, _ = kv_node()
    assert data(d.call("POST", "secret/data/k",
                       json={"data": {"v": 1}, "options": {"cas": 0}}))["version"] == 1
    with unchanged(d):
        for cas in (0, 2, "2", "0x2", False, None):
            assert errors(d.call("POST", "secret/data/k",
                                 json={"data": {"v": 9}, "options": {"cas": cas}})) == [
                "check-and-set parameter did not match the current version"]
    assert data(d.call("POST", "secret/data/k",
                       json={"data": {"v": 2}, "options": {"cas": "1"}}))["version"] == 2
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 2}


@pytest.mark.parametrize("cas", ["abc", 1.5, 2.0, [1], {"a": 1}])
def test_unparseable_cas_is_400(cas: object) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    with unchanged(d):
        assert errors(d.call("POST", "secret/data/k",
                             json={"data": {"v": 2}, "options": {"cas": cas}})) == [
            "error parsing check-and-set parameter"]


def test_cas_required_by_mount_config() -> None:
    d, _ = kv_node()
    assert d.call("POST", "secret/config", json={"cas_required": True}).status_code == 204
    with unchanged(d):
        assert errors(d.call("POST", "secret/data/k", json={"data": {"v": 1}})) == [
            "check-and-set parameter required for this call"]
        assert errors(d.call("POST", "secret/data/k", json={"data": {"v": 1},
                                                            "options": {}})) == [
            "check-and-set parameter required for this call"]
    assert d.call("POST", "secret/data/k",
                  json={"data": {"v": 1}, "options": {"cas": 0}}).status_code == 200


def test_cas_required_by_key_metadata() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/metadata/k", json={"cas_required": True})
    d.call("POST", "secret/data/other", json={"data": {"v": 1}})  # other keys unaffected
    with unchanged(d):
        assert errors(d.call("POST", "secret/data/k", json={"data": {"v": 2}})) == [
            "check-and-set parameter required for this call"]
        errors(patch(d, "secret/data/k", {"data": {"v": 2}}))
    assert d.call("POST", "secret/data/k",
                  json={"data": {"v": 2}, "options": {"cas": 1}}).status_code == 200


# -- patch ---------------------------------------------------------------------------


def test_patch_is_a_json_merge_patch_creating_a_new_version() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}})
    clock.advance(seconds=1)
    change = {"a": None, "b": {"c": None, "x": 1}, "e": [3], "f": {"g": None, "h": "new"}}
    written = data(patch(d, "secret/data/k", {"data": change}))
    assert written["version"] == 2 and written["created_time"] == "2026-01-01T00:00:01.123456Z"
    assert data(d.call("GET", "secret/data/k"))["data"] == {
        "b": {"d": 3, "x": 1}, "e": [3], "f": {"h": "new"}}
    assert data(d.call("GET", "secret/data/k", params={"version": 1}))["data"]["a"] == 1


def test_patch_needs_an_existing_live_current_version() -> None:
    d, _ = kv_node()
    with unchanged(d):
        resp = patch(d, "secret/data/nope", {"data": {"a": 1}})
        assert resp.status_code == 404
    d.call("POST", "secret/data/k", json={"data": {"a": 1}})
    d.call("DELETE", "secret/data/k")
    with unchanged(d):
        resp = patch(d, "secret/data/k", {"data": {"a": 2}})
        assert resp.status_code == 404
        # Unlike a read's 404, the body is the bare metadata of the current version.
        assert sorted(resp.json["data"]) == META_KEYS
        assert resp.json["data"]["deletion_time"] == START_TEXT
    d.call("POST", "secret/undelete/k", json={"versions": [1]})
    d.call("POST", "secret/destroy/k", json={"versions": [1]})
    with unchanged(d):
        resp = patch(d, "secret/data/k", {"data": {"a": 2}})
        assert resp.status_code == 404 and resp.json["data"]["destroyed"] is True
    d.call("POST", "secret/metadata/empty", json={"max_versions": 3})
    with unchanged(d):
        resp = patch(d, "secret/data/empty", {"data": {"a": 2}})
        assert resp.status_code == 404


def test_patch_validates_before_changing_anything() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"a": 1}})
    with unchanged(d):
        assert errors(patch(d, "secret/data/k", {})) == [
            "no data provided"]
        errors(patch(d, "secret/data/k", {"data": "x"}))
        assert errors(patch(d, "secret/data/k", {"data": {"b": 1}, "options": {"cas": 5}})) == [
            "check-and-set parameter did not match the current version"]
        big = {"b": "x" * MAX_DOCUMENT_BYTES}
        assert "too large" in errors(
            patch(d, "secret/data/k", {"data": big}))[0]
    half = "x" * (MAX_DOCUMENT_BYTES // 2)
    d.call("POST", "secret/data/k", json={"data": {"a": half}})
    with unchanged(d):  # each half fits; merged, they do not
        assert "too large" in errors(
            patch(d, "secret/data/k", {"data": {"b": half}}))[0]
    ok = patch(d, "secret/data/k", {"data": {"c": 1}, "options": {"cas": 2}})
    assert data(ok)["version"] == 3


def test_patch_with_null_data_replaces_the_document_with_null() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"a": 1}})
    assert data(patch(d, "secret/data/k", {"data": None}))[
        "version"] == 2
    assert data(d.call("GET", "secret/data/k"))["data"] is None


# -- soft delete, undelete, destroy -------------------------------------------------


def test_delete_soft_deletes_the_latest_version() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/data/k", json={"data": {"v": 2}})
    clock.advance(seconds=5)
    assert d.call("DELETE", "secret/data/k").status_code == 204
    resp = d.call("GET", "secret/data/k")
    assert resp.status_code == 404
    assert resp.json["data"]["data"] is None
    assert resp.json["data"]["metadata"] == {
        "created_time": START_TEXT, "custom_metadata": None,
        "deletion_time": "2026-01-01T00:00:05.123456Z", "destroyed": False, "version": 2}
    assert data(d.call("GET", "secret/data/k", params={"version": 1}))["data"] == {"v": 1}
    clock.advance(seconds=1)
    with unchanged(d):
        assert d.call("DELETE", "secret/data/k").status_code == 204  # already deleted
        assert d.call("DELETE", "secret/data/nope").status_code == 204
        assert d.call("DELETE", "secret/data/").status_code == 204


def test_delete_versions() -> None:
    d, _ = kv_node()
    for i in range(3):
        d.call("POST", "secret/data/k", json={"data": {"v": i}})
    assert d.call("POST", "secret/delete/k", json={"versions": "1,2"}).status_code == 204
    for version, status in ((1, 404), (2, 404), (3, 200)):
        assert d.call("GET", "secret/data/k", params={"version": version}).status_code == status
    with unchanged(d):
        for versions in ([1, 2], [99, -1, 0], 2):  # already deleted, or not there: no-op
            resp = d.call("POST", "secret/delete/k", json={"versions": versions})
            assert resp.status_code == 204
        assert d.call("POST", "secret/delete/nope", json={"versions": [1]}).status_code == 204


@pytest.mark.parametrize("endpoint", ["delete", "undelete", "destroy"])
@pytest.mark.parametrize(
    "body", [{}, {"versions": []}, {"versions": ""}, {"versions": None}])
def test_version_endpoints_need_versions(endpoint: str, body: dict[str, object]) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    with unchanged(d):
        message = errors(d.call("POST", f"secret/{endpoint}/k", json=body))[0]
    assert message.lower() == "no version number provided"


@pytest.mark.parametrize("endpoint", ["delete", "undelete", "destroy"])
@pytest.mark.parametrize("versions", [["x"], [1.5], " 1", {"a": 1}, [[1]]])
def test_version_endpoints_reject_bad_numbers(endpoint: str, versions: object) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    with unchanged(d):
        assert 'field "versions"' in errors(
            d.call("POST", f"secret/{endpoint}/k", json={"versions": versions}))[0]


def test_undelete_restores_and_restarts_delete_version_after() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/data/k", json={"data": {"v": 2}})
    d.call("POST", "secret/delete/k", json={"versions": [1, 2]})
    assert d.call("POST", "secret/undelete/k", json={"versions": [1, 7]}).status_code == 204
    assert data(d.call("GET", "secret/data/k", params={"version": 1}))["data"] == {"v": 1}
    assert d.call("GET", "secret/data/k").status_code == 404
    d.call("POST", "secret/config", json={"delete_version_after": "1h"})
    clock.advance(minutes=10)
    d.call("POST", "secret/undelete/k", json={"versions": [2]})
    meta = data(d.call("GET", "secret/data/k"))["metadata"]
    assert meta["deletion_time"] == "2026-01-01T01:10:00.123456Z"
    assert d.call("POST", "secret/undelete/nope", json={"versions": [1]}).status_code == 204


def test_destroy_removes_the_data_for_good() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/data/k", json={"data": {"v": 2}})
    digest = hashlib.sha256(b"k").hexdigest()
    assert f"versions/{digest}/1" in stored_plain(d)
    assert d.call("POST", "secret/destroy/k", json={"versions": [1, 5]}).status_code == 204
    assert f"versions/{digest}/1" not in stored_plain(d)
    resp = d.call("GET", "secret/data/k", params={"version": 1})
    assert resp.status_code == 404
    assert resp.json["data"]["metadata"]["destroyed"] is True
    assert resp.json["data"]["data"] is None
    with unchanged(d):
        d.call("POST", "secret/undelete/k", json={"versions": [1]})  # cannot come back
        assert d.call("POST", "secret/destroy/k", json={"versions": [1]}).status_code == 204
        assert d.call("POST", "secret/destroy/nope", json={"versions": [1]}).status_code == 204
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 2}


def test_writes_touch_a_bounded_number_of_entries() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/config", json={"max_versions": 3})
    for i in range(6):
        d.call("POST", "secret/data/k", json={"data": {"v": i}})
    d.call("POST", "secret/data/other", json={"data": {"v": 1}})
    before = stored_plain(d)
    d.call("POST", "secret/data/k", json={"data": {"v": 9}})
    after = stored_plain(d)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    digest = hashlib.sha256(b"k").hexdigest()
    assert changed == {"metadata/k", f"versions/{digest}/4", f"versions/{digest}/7"}


def test_concurrent_writers_to_one_key_lose_no_version() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/config", json={"max_versions": 100})

    def writer(n: int) -> list[int]:
        return [data(d.call("POST", "secret/data/k", json={"data": {"w": n, "i": i}}))[
            "version"] for i in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = [v for batch in pool.map(writer, range(8)) for v in batch]
    assert sorted(versions) == list(range(1, 81))
    meta = data(d.call("GET", "secret/metadata/k"))
    assert meta["current_version"] == 80 and len(meta["versions"]) == 80
