"""`kv` commands against a fake API: request paths and bodies, output, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests

from cli_fakes import FakeApi
from conftest import Result

Cli = Callable[..., Result]
UI = "/v1/sys/internal/ui/mounts/"
META = {"created_time": "2026-01-01T00:00:00Z", "custom_metadata": None,
        "deletion_time": "", "destroyed": False, "version": 3}


def v2(api: FakeApi, path: str, mount: str = "secret/") -> None:
    api.add("GET", UI + path, (200, {"data": {"path": mount, "options": {"version": "2"}}}))


def v1(api: FakeApi, path: str, mount: str = "kv/") -> None:
    api.add("GET", UI + path, (200, {"data": {"path": mount, "options": None}}))


def test_get_v2_table(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    fake_api.add("GET", "/v1/secret/data/app",
                 (200, {"data": {"data": {"user": "u", "pw": "p"}, "metadata": META}}))
    r = cli("kv", "get", "secret/app")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "= Secret Path =", "secret/data/app", "",
        "======= Metadata =======",
        "Key                Value", "---                -----",
        "created_time       2026-01-01T00:00:00Z", "custom_metadata    <nil>",
        "deletion_time      n/a", "destroyed          false", "version            3", "",
        "==== Data ====", "Key     Value", "---     -----", "pw      p", "user    u",
    ]


def test_get_version_json_and_mount_flag(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret")
    fake_api.add("GET", "/v1/secret/data/app",
                 (200, {"request_id": "r", "data": {"data": {"a": "1"}, "metadata": META}}))
    r = cli("kv", "get", "-mount=secret", "-version=2", "-format=json", "app")
    assert r.code == 0, r.err
    assert FakeApi.query(fake_api.requests[-1]) == {"version": ["2"]}
    out = json.loads(r.out)
    assert list(out) == ["request_id", "lease_id", "lease_duration", "renewable", "data",
                         "warnings"]
    assert out["data"]["data"] == {"a": "1"}


def test_get_field_and_missing(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    v2(fake_api, "secret/gone")
    v2(fake_api, "secret/deleted")
    fake_api.add("GET", "/v1/secret/data/app",
                 (200, {"data": {"data": {"a": "1", "data": "x"}, "metadata": META}}))
    fake_api.add("GET", "/v1/secret/data/gone", (404, {"errors": []}))
    fake_api.add("GET", "/v1/secret/data/deleted",
                 (404, {"data": {"data": None, "metadata": {**META, "deletion_time": "t"}}}))
    assert (cli("kv", "get", "-field=a", "secret/app").out) == "1"
    assert cli("kv", "get", "-field=a", "-format=json", "secret/app").out == '"1"'
    assert cli("kv", "get", "-field=data", "secret/app").out == "x"
    missing_field = cli("kv", "get", "-field=zz", "secret/app")
    assert missing_field.code == 1 and 'Field "zz" not present' in missing_field.err
    gone = cli("kv", "get", "secret/gone")
    assert (gone.code, gone.out, gone.err) == (2, "", "No value found at secret/data/gone\n")
    deleted = cli("kv", "get", "-format=json", "secret/deleted")
    assert deleted.code == 0 and json.loads(deleted.out)["data"]["data"] is None
    no_data = cli("kv", "get", "-field=a", "secret/deleted")
    assert (no_data.code, no_data.err) == (2, "No data found at secret/data/deleted\n")


def test_get_v1_and_preflight_failure(cli: Cli, fake_api: FakeApi) -> None:
    v1(fake_api, "kv/app")
    fake_api.add("GET", "/v1/kv/app", (200, {"lease_duration": 2764800, "data": {"a": "1"}}))
    r = cli("kv", "get", "kv/app")
    assert r.out.splitlines() == ["== Data ==", "Key    Value", "---    -----", "a      1"]
    fake_api.add("GET", UI + "nomount/x", (403, {"errors": ["preflight capability check"]}))
    failed = cli("kv", "get", "nomount/x")
    assert failed.code == 2 and failed.err.startswith("Error making API request.")


def test_put_v2_body_cas_and_output(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    fake_api.add("PUT", "/v1/secret/data/app", (200, {"data": META}))
    r = cli("kv", "put", "-cas=2", "secret/app", "a=1", "b=x", "b=y")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/secret/data/app") == [
        {"data": {"a": "1", "b": ["x", "y"]}, "options": {"cas": 2}}]
    assert r.out.splitlines()[:4] == ["= Secret Path =", "secret/data/app", "",
                                      "======= Metadata ======="]
    cli("kv", "put", "secret/app", "-", stdin='{"j": {"n": 1}}')
    assert fake_api.bodies("PUT", "/v1/secret/data/app")[-1] == \
        {"data": {"j": {"n": 1}}, "options": {}}
    assert cli("kv", "put", "-field=version", "secret/app", "a=1").out == "3"


def test_put_v1_and_usage_errors(cli: Cli, fake_api: FakeApi) -> None:
    v1(fake_api, "kv/app")
    fake_api.add("PUT", "/v1/kv/app", (204, None))
    r = cli("kv", "put", "kv/app", "a=1")
    assert (r.code, r.out) == (0, "Success! Data written to: kv/app\n")
    assert fake_api.bodies("PUT", "/v1/kv/app") == [{"a": "1"}]
    assert cli("kv", "put", "-format=json", "kv/app", "a=1").out == ""
    assert (cli("kv", "put").code, cli("kv", "put", "kv/app").err) == (1, "Must supply data\n")
    bad = cli("kv", "put", "kv/app", "novalue")
    assert bad.code == 1 and bad.err.startswith("Failed to parse K=V data: invalid key/value")


def test_patch_uses_merge_patch(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    fake_api.add("PATCH", "/v1/secret/data/app", (200, {"data": META}))
    r = cli("kv", "patch", "-cas=3", "-remove-data=old", "secret/app", "a=2")
    assert r.code == 0, r.err
    sent = fake_api.requests[-1]
    assert sent.headers["Content-Type"] == "application/merge-patch+json"
    assert fake_api.bodies("PATCH", "/v1/secret/data/app") == [
        {"data": {"a": "2", "old": None}, "options": {"cas": 3}}]


def _rw_routes(api: FakeApi) -> None:
    api.add("GET", "/v1/secret/data/app",
            (200, {"data": {"data": {"a": "1", "b": "2"}, "metadata": META}}))
    api.add("PUT", "/v1/secret/data/app", (200, {"data": META}))


def test_patch_falls_back_to_read_write_on_405_and_403(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    _rw_routes(fake_api)
    fake_api.add("PATCH", "/v1/secret/data/app", (405, {"errors": ["unsupported"]}))
    assert cli("kv", "patch", "secret/app", "b=3").code == 0
    assert fake_api.bodies("PUT", "/v1/secret/data/app") == [
        {"data": {"a": "1", "b": "3"}, "options": {"cas": 3}}]
    fake_api.add("PATCH", "/v1/secret/data/app", (403, {"errors": ["permission denied"]}))
    r = cli("kv", "patch", "secret/app", "b=4")
    assert r.code == 0 and 'add the "patch" capability' in r.err
    strict = cli("kv", "patch", "-method=patch", "secret/app", "b=5")
    assert strict.code == 2 and "Code: 403" in strict.err


def test_patch_rw_and_v1_refusal(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    _rw_routes(fake_api)
    assert cli("kv", "patch", "-method=rw", "-format=json", "secret/app", "c=1").code == 0
    assert not [r for r in fake_api.requests if r.method == "PATCH"]
    v1(fake_api, "kv/app")
    refused = cli("kv", "patch", "kv/app", "a=1")
    assert (refused.code, refused.err) == (
        2, "K/V engine mount must be version 2 for patch support\n")


def test_list(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/team")
    fake_api.add("GET", "/v1/secret/metadata/team", (200, {"data": {"keys": ["b", "a/"]}}))
    r = cli("kv", "list", "secret/team/")
    assert r.out.splitlines() == ["Keys", "----", "a/", "b"]
    assert FakeApi.query(fake_api.requests[-1]) == {"list": ["true"]}
    assert json.loads(cli("kv", "list", "-format=json", "secret/team").out) == ["b", "a/"]
    v2(fake_api, "secret")
    fake_api.add("GET", "/v1/secret/metadata", (404, {"errors": []}))
    empty = cli("kv", "list", "-mount=secret", "-format=json")
    assert (empty.code, json.loads(empty.out)) == (2, {})
    assert cli("kv", "list", "-field=x", "secret/team").code == 1  # no -field on list


def test_delete_undelete_destroy_bodies(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    for method, path in (("DELETE", "data"), ("PUT", "delete"), ("PUT", "undelete"),
                         ("PUT", "destroy")):
        fake_api.add(method, f"/v1/secret/{path}/app", (204, None))
    assert cli("kv", "delete", "secret/app").out == \
        "Success! Data deleted (if it existed) at: secret/data/app\n"
    assert cli("kv", "delete", "-versions=1,2", "-versions=3", "secret/app").code == 0
    assert fake_api.bodies("PUT", "/v1/secret/delete/app") == [{"versions": ["1", "2", "3"]}]
    assert cli("kv", "undelete", "-versions=2", "secret/app").out == \
        "Success! Data written to: secret/undelete/app\n"
    assert fake_api.bodies("PUT", "/v1/secret/undelete/app") == [{"versions": ["2"]}]
    assert cli("kv", "destroy", "-versions=1", "secret/app").code == 0
    none = cli("kv", "destroy", "secret/app")
    assert none.code == 1 and 'use the "-versions" flag' in none.err


def test_metadata_put_patch_get_delete(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    path = "/v1/secret/metadata/app"
    fake_api.add("PUT", path, (204, None))
    fake_api.add("PATCH", path, (204, None))
    fake_api.add("DELETE", path, (204, None))
    fake_api.add("GET", path, (200, {"data": {
        "current_version": 2, "max_versions": 0, "versions": {
            "10": {"created_time": "t", "deletion_time": "", "destroyed": False},
            "2": {"created_time": "t", "deletion_time": "", "destroyed": True}}}}))
    assert cli("kv", "metadata", "put", "-max-versions=5", "-cas-required",
               "-delete-version-after=1h", "-custom-metadata=team=ops", "secret/app").code == 0
    assert fake_api.bodies("PUT", path) == [{"max_versions": 5, "cas_required": True,
                                             "delete_version_after": "1h0m0s",
                                             "custom_metadata": {"team": "ops"}}]
    cli("kv", "metadata", "put", "secret/app")
    assert fake_api.bodies("PUT", path)[-1] == {}
    cli("kv", "metadata", "patch", "-remove-custom-metadata=team", "secret/app")
    patch = [r for r in fake_api.requests if r.method == "PATCH"][-1]
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert fake_api.bodies("PATCH", path) == [{"custom_metadata": {"team": None}}]
    lines = cli("kv", "metadata", "get", "secret/app").out.splitlines()
    assert lines[:2] == ["== Metadata Path ==", "secret/metadata/app"]
    versions = [line for line in lines if "Version" in line]
    assert versions == ["====== Version 2 ======", "===== Version 10 ====="]
    assert cli("kv", "metadata", "delete", "secret/app").out == \
        "Success! Data deleted (if it existed) at: secret/metadata/app\n"
    v1(fake_api, "kv/app")
    refused = cli("kv", "metadata", "get", "kv/app")
    assert (refused.code, refused.err) == (1, "Metadata not supported on KV Version 1\n")


def test_wrap_ttl_header_and_output(cli: Cli, fake_api: FakeApi) -> None:
    v2(fake_api, "secret/app")
    wrapped: dict[str, Any] = {"wrap_info": {
        "token": "s.w", "accessor": "a", "ttl": 120, "creation_time": "2026-01-01T00:00:00Z",
        "creation_path": "secret/data/app"}}
    fake_api.add("GET", "/v1/secret/data/app", (200, wrapped))
    r = cli("kv", "get", "-wrap-ttl=2m", "secret/app")
    assert r.code == 0, r.err
    preflight, read = fake_api.requests[-2:]
    assert "X-Vault-Wrap-TTL" not in preflight.headers
    assert read.headers["X-Vault-Wrap-TTL"] == "2m0s"
    assert r.out.splitlines()[2].split() == ["wrapping_token:", "s.w"]
    env = cli("kv", "get", "secret/app", env={"VAULT_WRAP_TTL": "30s"})
    assert env.code == 0 and fake_api.requests[-1].headers["X-Vault-Wrap-TTL"] == "30s"


def test_connection_error_exits_2(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("GET", UI + "secret/app", requests.ConnectionError("refused"))
    assert cli("kv", "get", "secret/app").code == 2
