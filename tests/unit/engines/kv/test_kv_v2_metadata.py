"""KV v2 metadata/, config, subkeys/, LIST and the v1-style paths -- over the HTTP edge."""

from __future__ import annotations

import hashlib

import pytest
from kv_helpers import (
    START_TEXT,
    data,
    errors,
    kv_node,
    patch,
    stored_plain,
    unchanged,
)

METADATA_KEYS = ["cas_required", "created_time", "current_version", "custom_metadata",
                 "delete_version_after", "max_versions", "oldest_version", "updated_time",
                 "versions"]


def test_metadata_read_reports_every_version() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    clock.advance(seconds=2)
    d.call("POST", "secret/data/k", json={"data": {"v": 2}})
    d.call("DELETE", "secret/data/k")
    meta = data(d.call("GET", "secret/metadata/k"))
    assert sorted(meta) == METADATA_KEYS
    later = "2026-01-01T00:00:02.123456Z"
    assert meta == {
        "cas_required": False, "created_time": START_TEXT, "current_version": 2,
        "custom_metadata": None, "delete_version_after": "0s", "max_versions": 0,
        "oldest_version": 0, "updated_time": later,
        "versions": {
            "1": {"created_time": START_TEXT, "deletion_time": "", "destroyed": False},
            "2": {"created_time": later, "deletion_time": later, "destroyed": False},
        },
    }
    for path in ("secret/metadata/nope", "secret/metadata/", "secret/metadata/k/"):
        resp = d.call("GET", path)
        assert (resp.status_code, resp.json) == (404, {"errors": []})


def test_metadata_write_creates_settings_without_versions() -> None:
    d, _ = kv_node()
    with unchanged(d):  # no settings given: nothing to store
        assert d.call("POST", "secret/metadata/k", json={}).status_code == 204
    assert d.call("GET", "secret/metadata/k").status_code == 404
    body = {"max_versions": 3, "cas_required": True, "delete_version_after": "1h30m",
            "custom_metadata": {"owner": "ops", "n": 5, "on": True}}
    assert d.call("POST", "secret/metadata/k", json=body).status_code == 204
    meta = data(d.call("GET", "secret/metadata/k"))
    assert meta["versions"] == {} and meta["current_version"] == 0
    assert meta["custom_metadata"] == {"n": "5", "on": "1", "owner": "ops"}
    assert (meta["max_versions"], meta["cas_required"], meta["delete_version_after"]) == (
        3, True, "1h30m0s")
    resp = d.call("GET", "secret/data/k")  # metadata alone is not a secret
    assert (resp.status_code, resp.json) == (404, {"errors": []})
    written = data(d.call("POST", "secret/data/k", json={"data": {"a": 1},
                                                       "options": {"cas": 0}}))
    assert written["custom_metadata"] == {"n": "5", "on": "1", "owner": "ops"}
    assert written["deletion_time"] == "2026-01-01T01:30:00.123456Z"


def test_metadata_write_replaces_custom_metadata_and_keeps_times() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/metadata/k", json={"custom_metadata": {"a": "1", "b": "2"}})
    clock.advance(hours=1)
    d.call("POST", "secret/metadata/k", json={"custom_metadata": {"c": "3"}})
    meta = data(d.call("GET", "secret/metadata/k"))
    assert meta["custom_metadata"] == {"c": "3"}
    assert meta["updated_time"] == START_TEXT  # Vault: only new versions move it


@pytest.mark.parametrize(
    "body",
    [
        {"max_versions": "x"},
        {"max_versions": 1.5},
        {"cas_required": "maybe"},
        {"delete_version_after": "abc"},
        {"delete_version_after": "-1s"},
        {"delete_version_after": -5},
        {"delete_version_after": True},
        {"custom_metadata": "x"},
        {"custom_metadata": {"a": {"b": 1}}},
        {"custom_metadata": {"a": ""}},
        {"custom_metadata": {"a": None}},
        {"custom_metadata": {"": "v"}},
        {"custom_metadata": {"k" * 129: "v"}},
        {"custom_metadata": {"k": "v" * 513}},
        {"custom_metadata": {"k": "line\nbreak"}},
        {"custom_metadata": {f"k{i}": "v" for i in range(65)}},
        {"max_versions": 2, "custom_metadata": {"a": ""}},  # one bad field spoils all
    ],
)
def test_bad_metadata_writes_are_400_and_change_nothing(body: dict[str, object]) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    with unchanged(d):
        errors(d.call("POST", "secret/metadata/k", json=body))
        if body != {"custom_metadata": {"a": None}}:  # in a merge patch, null deletes
            errors(patch(d, "secret/metadata/k", body))
        errors(d.call("POST", "secret/metadata/new", json=body))


def test_custom_metadata_errors_read_like_vaults() -> None:
    d, _ = kv_node()
    message = errors(d.call("POST", "secret/metadata/k",
                            json={"custom_metadata": {"a": "", "b": "x" * 513}}))[0]
    assert message == (
        "2 errors occurred:\n"
        '\t* custom_metadata validation failed: length of value for key "a" is 0 but must '
        "be 0 < len(value) <= 512\n"
        '\t* custom_metadata validation failed: length of value for key "b" is 513 but must '
        "be 0 < len(value) <= 512\n\n"
    )


def test_max_versions_wraps_like_a_go_uint32() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/metadata/k", json={"max_versions": -1})
    assert data(d.call("GET", "secret/metadata/k"))["max_versions"] == 4294967295


def test_cas_required_false_against_mount_config_warns() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/config", json={"cas_required": True})
    resp = d.call("POST", "secret/metadata/k", json={"cas_required": False})
    assert resp.status_code == 200 and resp.json["data"] is None
    assert resp.json["warnings"] == [
        '"cas_required" set to false, but is mandated by backend config. '
        "This value will be ignored."]


def test_metadata_patch_merges() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"v": 1}})
    d.call("POST", "secret/metadata/k", json={
        "max_versions": 5, "cas_required": True, "delete_version_after": "1h",
        "custom_metadata": {"keep": "1", "drop": "2"}})
    assert patch(d, "secret/metadata/k", {
        "custom_metadata": {"drop": None, "add": 3}, "max_versions": 7}).status_code == 204
    meta = data(d.call("GET", "secret/metadata/k"))
    assert meta["custom_metadata"] == {"add": "3", "keep": "1"}
    assert (meta["max_versions"], meta["cas_required"], meta["delete_version_after"]) == (
        7, True, "1h0m0s")
    # As in Vault: null resets max_versions and cas_required but leaves
    # delete_version_after alone; "0s" clears it.
    patch(d, "secret/metadata/k", {"max_versions": None, "cas_required": None,
                                   "delete_version_after": None})
    meta = data(d.call("GET", "secret/metadata/k"))
    assert (meta["max_versions"], meta["cas_required"], meta["delete_version_after"]) == (
        0, False, "1h0m0s")
    patch(d, "secret/metadata/k", {"delete_version_after": "0s", "custom_metadata": None})
    meta = data(d.call("GET", "secret/metadata/k"))
    assert (meta["delete_version_after"], meta["custom_metadata"]) == ("0s", None)
    with unchanged(d):
        assert patch(d, "secret/metadata/nope", {"max_versions": 1}).status_code == 404


def test_metadata_patch_cannot_exceed_the_key_limit_in_total() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/metadata/k",
           json={"custom_metadata": {f"a{i}": "v" for i in range(40)}})
    with unchanged(d):
        message = errors(patch(d, "secret/metadata/k",
                               {"custom_metadata": {f"b{i}": "v" for i in range(40)}}))[0]
    assert "at most 64 keys" in message


def test_metadata_delete_removes_every_version_and_the_key() -> None:
    d, _ = kv_node()
    for i in range(3):
        d.call("POST", "secret/data/k", json={"data": {"v": i}})
    d.call("POST", "secret/data/keep", json={"data": {"v": 1}})
    assert d.call("DELETE", "secret/metadata/k").status_code == 204
    digest = hashlib.sha256(b"k").hexdigest()
    assert not [key for key in stored_plain(d) if key == "metadata/k" or digest in key]
    assert d.call("GET", "secret/data/k").status_code == 404
    assert d.call("GET", "secret/metadata/k").status_code == 404
    assert data(d.call("GET", "secret/data/keep"))["data"] == {"v": 1}
    with unchanged(d):
        assert d.call("DELETE", "secret/metadata/k").status_code == 204
        assert d.call("DELETE", "secret/metadata/").status_code == 204
    # Recreated from scratch: version numbers start again at 1.
    assert data(d.call("POST", "secret/data/k", json={"data": {"v": 1}}))["version"] == 1


def test_list_keys_and_folders() -> None:
    d, _ = kv_node()
    for path in ("b", "a", "dir/x", "dir/sub/y", "a/nested"):
        d.call("POST", f"secret/data/{path}", json={"data": {"v": 1}})
    assert data(d.call("LIST", "secret/metadata/"))["keys"] == ["a", "a/", "b", "dir/"]
    assert data(d.call("LIST", "secret/metadata"))["keys"] == ["a", "a/", "b", "dir/"]
    assert data(d.call("GET", "secret/metadata/", params={"list": "true"}))["keys"] == [
        "a", "a/", "b", "dir/"]
    assert data(d.call("LIST", "secret/metadata/dir"))["keys"] == ["sub/", "x"]
    assert data(d.call("LIST", "secret/metadata/",
                       params={"after": "a/", "limit": "2"}))["keys"] == ["b", "dir/"]
    for path in ("secret/metadata/nothing/", "secret/metadata/b/"):
        resp = d.call("LIST", path)
        assert (resp.status_code, resp.json) == (404, {"errors": []})
    assert d.call("LIST", "secret/metadata/", params={"after": "z"}).status_code == 404
    assert errors(d.call("LIST", "secret/metadata/", params={"limit": "x"})) == [
        'Field validation failed: error converting input for field "limit": \'\' cannot '
        "parse value as 'int': strconv.ParseInt: invalid syntax"]
    assert data(d.call("LIST", "secret/metadata/", params={"limit": "-1"}))["keys"] == [
        "a", "a/", "b", "dir/"]
    assert data(d.call("LIST", "secret/metadata/", params={"after": "a/x", "limit": "1"})
                )["keys"] == ["b"]  # 'after' inside a folder: past the folder
    d.call("DELETE", "secret/metadata/dir/x")
    d.call("DELETE", "secret/metadata/dir/sub/y")
    assert data(d.call("LIST", "secret/metadata/"))["keys"] == ["a", "a/", "b"]


def test_list_is_not_supported_on_data() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/a", json={"data": {"v": 1}})
    assert d.call("LIST", "secret/data/").status_code == 405
    assert d.call("LIST", "secret/subkeys/").status_code == 405


# -- config ------------------------------------------------------------------------


def test_config_read_and_write() -> None:
    d, _ = kv_node()
    assert data(d.call("GET", "secret/config")) == {
        "cas_required": False, "delete_version_after": "0s", "max_versions": 0}
    with unchanged(d):
        assert d.call("POST", "secret/config", json={}).status_code == 204
    body = {"max_versions": "4", "cas_required": "true", "delete_version_after": 90}
    assert d.call("POST", "secret/config", json=body).status_code == 204
    assert data(d.call("GET", "secret/config")) == {
        "cas_required": True, "delete_version_after": "1m30s", "max_versions": 4}
    d.call("POST", "secret/config", json={"delete_version_after": "-5m"})
    assert data(d.call("GET", "secret/config"))["delete_version_after"] == "-1s"
    d.call("POST", "secret/config", json={"delete_version_after": "1.5s"})
    assert data(d.call("GET", "secret/config"))["delete_version_after"] == "1s"
    d.call("POST", "secret/config", json={"delete_version_after": 0})
    assert data(d.call("GET", "secret/config"))["delete_version_after"] == "0s"


@pytest.mark.parametrize(
    "body",
    [{"max_versions": "x"}, {"cas_required": "maybe"}, {"delete_version_after": "soon"},
     {"max_versions": 2, "delete_version_after": "soon"}],
)
def test_bad_config_is_400_and_changes_nothing(body: dict[str, object]) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/config", json={"max_versions": 3})
    with unchanged(d):
        errors(d.call("POST", "secret/config", json=body))
    assert data(d.call("GET", "secret/config"))["max_versions"] == 3


def test_config_has_no_delete_list_or_patch() -> None:
    d, _ = kv_node()
    assert d.call("DELETE", "secret/config").status_code == 405
    assert patch(d, "secret/config", {"max_versions": 1}).status_code == 405


def test_max_versions_trims_the_oldest_on_the_next_write() -> None:
    d, _ = kv_node()
    d.call("POST", "secret/config", json={"max_versions": 2})
    for i in range(1, 4):
        d.call("POST", "secret/data/k", json={"data": {"v": i}})
    meta = data(d.call("GET", "secret/metadata/k"))
    assert sorted(meta["versions"]) == ["2", "3"] and meta["oldest_version"] == 2
    assert d.call("GET", "secret/data/k", params={"version": 1}).status_code == 404
    digest = hashlib.sha256(b"k").hexdigest()
    assert sorted(k for k in stored_plain(d) if digest in k) == [
        f"versions/{digest}/2", f"versions/{digest}/3"]
    # The larger of the key's and the mount's max_versions applies (Vault's rule).
    d.call("POST", "secret/metadata/k", json={"max_versions": 1})
    d.call("POST", "secret/data/k", json={"data": {"v": 4}})
    assert sorted(data(d.call("GET", "secret/metadata/k"))["versions"]) == ["3", "4"]
    d.call("POST", "secret/metadata/k", json={"max_versions": 3})
    d.call("POST", "secret/data/k", json={"data": {"v": 5}})
    assert sorted(data(d.call("GET", "secret/metadata/k"))["versions"]) == ["3", "4", "5"]


def test_default_max_versions_is_ten() -> None:
    d, _ = kv_node()
    for i in range(12):
        d.call("POST", "secret/data/k", json={"data": {"v": i}})
    meta = data(d.call("GET", "secret/metadata/k"))
    assert len(meta["versions"]) == 10 and meta["oldest_version"] == 3


def test_delete_version_after_expires_versions() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/config", json={"delete_version_after": "1h"})
    written = data(d.call("POST", "secret/data/k", json={"data": {"v": 1}}))
    assert written["deletion_time"] == "2026-01-01T01:00:00.123456Z"
    clock.advance(minutes=59)
    assert data(d.call("GET", "secret/data/k"))["data"] == {"v": 1}
    clock.advance(minutes=2)
    resp = d.call("GET", "secret/data/k")
    assert resp.status_code == 404 and resp.json["data"]["data"] is None
    # The shorter of mount and key setting wins; a negative mount setting disables both.
    d.call("POST", "secret/metadata/k", json={"delete_version_after": "10m"})
    written = data(d.call("POST", "secret/data/k", json={"data": {"v": 2}}))
    assert written["deletion_time"] == "2026-01-01T01:11:00.123456Z"
    d.call("POST", "secret/config", json={"delete_version_after": -1})
    assert data(d.call("POST", "secret/data/k", json={"data": {"v": 3}}))[
        "deletion_time"] == ""


# -- subkeys -------------------------------------------------------------------------


def test_subkeys() -> None:
    d, clock = kv_node()
    d.call("POST", "secret/data/k",
           json={"data": {"a": 1, "b": {"c": {"d": 1}, "e": {}}, "f": [1, {"g": 1}]}})
    got = data(d.call("GET", "secret/subkeys/k"))
    assert got["subkeys"] == {"a": None, "b": {"c": {"d": None}, "e": None}, "f": None}
    assert got["metadata"]["version"] == 1
    depth = {"1": {"a": None, "b": None, "f": None},
             "2": {"a": None, "b": {"c": None, "e": None}, "f": None},
             "-1": {"a": None, "b": None, "f": None}}
    for value, expected in depth.items():
        assert data(d.call("GET", "secret/subkeys/k", params={"depth": value}))[
            "subkeys"] == expected
    errors(d.call("GET", "secret/subkeys/k", params={"depth": "x"}))
    for params in ({"version": "9"}, {}):
        path = "secret/subkeys/k" if params else "secret/subkeys/nope"
        resp = d.call("GET", path, params=params)
        assert (resp.status_code, resp.json) == (404, {"errors": []})
    d.call("DELETE", "secret/data/k")
    clock.advance(seconds=1)
    resp = d.call("GET", "secret/subkeys/k")
    assert resp.status_code == 404
    assert resp.json["data"]["subkeys"] is None
    assert resp.json["data"]["metadata"]["deletion_time"] == START_TEXT


# -- paths that are not v2 endpoints --------------------------------------------------


@pytest.mark.parametrize(("method", "path", "verb"), [
    ("GET", "secret/foo", "get"), ("POST", "secret/foo", "put"),
    ("DELETE", "secret/foo", "delete"), ("LIST", "secret/", "list"),
    ("GET", "secret/config/", "get"), ("GET", "secret/", "get"),
])
def test_v1_style_paths_get_vaults_hint(method: str, path: str, verb: str) -> None:
    d, _ = kv_node()
    resp = d.call(method, path, json={"a": 1} if method == "POST" else None)
    assert resp.status_code == 404 and resp.json["data"] is None
    assert resp.json["warnings"] == [
        "Invalid path for a versioned K/V secrets engine. See the API docs for the "
        "appropriate API endpoints to use. If using the Vault CLI, use "
        f"'vault kv {verb}' for this operation."]


@pytest.mark.parametrize("root", ["metadata", "data", "delete", "undelete", "destroy"])
def test_roots_of_v2_endpoints(root: str) -> None:
    d, _ = kv_node()
    resp = d.call("GET", f"secret/{root}")
    assert resp.status_code == 404
    assert resp.json["warnings"] == [
        "Non-listing operations on the root of a K/V v2 mount are not supported."]


@pytest.mark.parametrize("path", ["secret/data/", "secret/metadata/", "secret/delete/",
                                  "secret/config/", "secret/"])
def test_writes_to_folders_are_refused(path: str) -> None:
    d, _ = kv_node()
    with unchanged(d):
        assert errors(d.call("POST", path, json={"data": {"a": 1}, "versions": [1]})) == [
            "cannot write to a path ending in '/'"]
