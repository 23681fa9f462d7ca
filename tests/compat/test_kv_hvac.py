"""hvac's KV v1 and v2 calls against OpenBao and Strongroom dev servers, side by side.

The same scenario runs against `bao server -dev` and `strongroom server -dev`
(real processes). Every call is recorded as its outcome (hvac's return type or
exception class, i.e. the status code) and the *shape* of the JSON returned (keys
and value types, recursively); a few values that must match exactly (data read
back, version numbers, error texts) are recorded as they are. The two records
must be identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest
import requests

from tests.support.servers import bao_dev_server, strongroom_dev_server

# Keys only one side reports: Strongroom (like current Vault) names the mount type;
# OpenBao adds metadata check-and-set, which Vault does not have.
STRONGROOM_ONLY = {"mount_type"}
BAO_ONLY = {"metadata_cas_required", "current_metadata_version"}
IGNORED = STRONGROOM_ONLY | BAO_ONLY
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}

# hvac's own kv.v2.patch() reads without passing raise_on_deleted_version.
pytestmark = pytest.mark.filterwarnings("ignore:The raise_on_deleted_version:DeprecationWarning")


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items()) if k not in IGNORED}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in IGNORED}
    return value


class Recorder:
    """Runs hvac calls, keeping what each returned (or raised) in comparable form."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def __call__(self, name: str, call: Callable[..., Any], *args: Any,
                 status_only: bool = False, **kwargs: Any) -> Any:
        assert name not in self.seen, name
        try:
            out = call(*args, **kwargs)
        except hvac.exceptions.VaultError as exc:
            self.seen[name] = (type(exc).__name__, None if status_only else shape(exc.json))
            return exc
        if isinstance(out, requests.Response):
            body = out.json() if out.content else None
            self.seen[name] = (out.status_code, shape(body))
            return body
        self.seen[name] = ("ok", shape(out))
        return out

    def value(self, name: str, value: Any) -> None:
        self.seen["=" + name] = strip(value)


def kv_v2_scenario(client: hvac.Client, rec: Recorder) -> None:
    kv = client.secrets.kv.v2
    raw = client.adapter
    rec("configure", kv.configure, max_versions=4, mount_point="secret")
    rec.value("config", rec("read_configuration", kv.read_configuration,
                            mount_point="secret")["data"])
    rec("create", kv.create_or_update_secret, "app/db", {"user": "u", "nested": {"n": 1}})
    bad_cas = rec("create_bad_cas", kv.create_or_update_secret, "app/db", {"x": 1}, cas=0)
    rec.value("bad_cas_errors", bad_cas.errors)
    rec("update_cas", kv.create_or_update_secret, "app/db", {"user": "v"}, cas=1)
    read = rec("read", kv.read_secret_version, "app/db", raise_on_deleted_version=True)
    rec.value("read", (read["data"]["data"], read["data"]["metadata"]["version"]))
    read1 = rec("read_v1", kv.read_secret_version, "app/db", version=1,
                raise_on_deleted_version=True)
    rec.value("read_v1", read1["data"]["data"])
    rec("read_missing", kv.read_secret_version, "nope", raise_on_deleted_version=True)
    rec("read_missing_version", kv.read_secret_version, "app/db", version=42,
        raise_on_deleted_version=True)
    rec("patch_hvac", kv.patch, "app/db", {"extra": "x"})
    rec("patch_http", raw.request, "PATCH", "/v1/secret/data/app/db", headers=MERGE_PATCH,
        json={"data": {"extra": None, "nested": {"m": 2}}})
    # A 404 either way; the body differs (see test_patch_of_missing_key_body).
    rec("patch_http_missing", raw.request, "PATCH", "/v1/secret/data/nope",
        headers=MERGE_PATCH, json={"data": {"a": 1}}, status_only=True)
    rec.value("after_patch", kv.read_secret_version(
        "app/db", raise_on_deleted_version=True)["data"]["data"])
    sub = rec("subkeys", raw.get, "/v1/secret/subkeys/app/db")
    rec.value("subkeys", sub["data"]["subkeys"])
    rec("subkeys_depth", raw.get, "/v1/secret/subkeys/app/db", params={"depth": 1})
    rec("delete_latest", kv.delete_latest_version_of_secret, "app/db")
    rec("read_deleted_json", kv.read_secret_version, "app/db",
        raise_on_deleted_version=False)
    rec("read_deleted_raises", kv.read_secret_version, "app/db",
        raise_on_deleted_version=True)
    rec("patch_deleted", raw.request, "PATCH", "/v1/secret/data/app/db",
        headers=MERGE_PATCH, json={"data": {"a": 1}})
    rec("undelete", kv.undelete_secret_versions, "app/db", [4])
    rec("delete_versions", kv.delete_secret_versions, "app/db", [1, 99])
    rec("destroy", kv.destroy_secret_versions, "app/db", [2])
    rec("read_destroyed", kv.read_secret_version, "app/db", version=2,
        raise_on_deleted_version=False)
    rec("delete_no_versions", raw.post, "/v1/secret/delete/app/db", json={"versions": []})
    rec("metadata", kv.read_secret_metadata, "app/db")
    rec("update_metadata", kv.update_metadata, "app/db", max_versions=3,
        custom_metadata={"owner": "ops"})
    rec("patch_metadata", raw.request, "PATCH", "/v1/secret/metadata/app/db",
        headers=MERGE_PATCH, json={"custom_metadata": {"team": "blue", "owner": None}})
    meta = rec("metadata_after", kv.read_secret_metadata, "app/db")
    rec.value("metadata_after", {k: meta["data"][k] for k in (
        "current_version", "oldest_version", "max_versions", "custom_metadata",
        "cas_required", "delete_version_after")})
    rec.value("versions", sorted(meta["data"]["versions"]))
    rec("update_metadata_bad", kv.update_metadata, "app/db", custom_metadata={"k": ""})
    kv.create_or_update_secret("app/cache", {"v": 1})
    kv.create_or_update_secret("top", {"v": 1})
    keys = rec("list_root", kv.list_secrets, "")
    rec.value("list_root", keys["data"]["keys"])
    rec.value("list_app", rec("list_app", kv.list_secrets, "app")["data"]["keys"])
    rec("list_missing", kv.list_secrets, "nothing")
    rec("delete_metadata", kv.delete_metadata_and_all_versions, "app/db")
    rec("metadata_gone", kv.read_secret_metadata, "app/db")
    rec("v1_style_path", raw.get, "/v1/secret/app/cache")
    rec("root_of_data", raw.get, "/v1/secret/data")
    # hvac strips trailing slashes from URLs, so this one goes around it.
    rec("write_folder", requests.post, client.url + "/v1/secret/data/app/",
        headers={"X-Vault-Token": "root"}, json={"data": {"a": 1}}, timeout=10)
    rec("configure_cas", kv.configure, max_versions=4, cas_required=True,
        mount_point="secret")
    no_cas = rec("write_without_cas", kv.create_or_update_secret, "top", {"v": 2})
    rec.value("no_cas_errors", no_cas.errors)
    rec("write_with_cas", kv.create_or_update_secret, "top", {"v": 2}, cas=1)


def kv_v1_scenario(client: hvac.Client, rec: Recorder) -> None:
    kv = client.secrets.kv.v1
    rec("v1_enable", client.sys.enable_secrets_engine, "kv", path="kv1",
        options={"version": "1"})
    rec("v1_create", kv.create_or_update_secret, "app/a", {"x": "1", "ttl": "1h"},
        mount_point="kv1")
    read = rec("v1_read", kv.read_secret, "app/a", mount_point="kv1")
    rec.value("v1_read", (read["data"], read["lease_duration"], read["renewable"]))
    rec("v1_update", kv.create_or_update_secret, "app/a", {"x": "2"}, method="PUT",
        mount_point="kv1")
    read = rec("v1_read_again", kv.read_secret, "app/a", mount_point="kv1")
    rec.value("v1_read_again", (read["data"], read["lease_duration"]))
    rec("v1_read_missing", kv.read_secret, "nope", mount_point="kv1")
    rec("v1_empty_write", kv.create_or_update_secret, "app/b", {}, method="POST",
        mount_point="kv1")
    kv.create_or_update_secret("app/c/d", {"y": 1}, mount_point="kv1")
    rec.value("v1_list", rec("v1_list", kv.list_secrets, "app", mount_point="kv1")
              ["data"]["keys"])
    rec("v1_list_missing", kv.list_secrets, "nothing", mount_point="kv1")
    rec("v1_delete", kv.delete_secret, "app/a", mount_point="kv1")
    rec("v1_read_deleted", kv.read_secret, "app/a", mount_point="kv1")


def wait_for_kv(url: str, timeout: float = 30) -> None:
    """A dev server answers sys/health before its secret/ mount finishes setting up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = requests.get(url + "/v1/secret/config", headers={"X-Vault-Token": "root"},
                            timeout=5)
        if resp.status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"KV v2 at {url} did not become ready")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, Any]] = {}
    starters = {"bao": bao_dev_server, "strongroom": strongroom_dev_server}
    for name, start in starters.items():
        with start(tmp_path_factory.mktemp(name)) as server:
            wait_for_kv(server.url)
            client = hvac.Client(url=server.url, token="root")
            rec = Recorder()
            kv_v2_scenario(client, rec)
            kv_v1_scenario(client, rec)
            out[name] = rec.seen
    yield out


def test_kv_v2_matches_openbao(records: dict[str, dict[str, Any]]) -> None:
    bao, ours = records["bao"], records["strongroom"]
    names = [n for n in bao if not n.lstrip("=").startswith("v1_")]
    assert len(names) > 40
    for name in names:
        assert ours[name] == bao[name], name


def test_kv_v1_matches_openbao(records: dict[str, dict[str, Any]]) -> None:
    bao, ours = records["bao"], records["strongroom"]
    names = [n for n in bao if n.lstrip("=").startswith("v1_")]
    assert len(names) > 10
    for name in names:
        assert ours[name] == bao[name], name


def test_scenario_saw_what_vault_documents(records: dict[str, dict[str, Any]]) -> None:
    """Pin the reference's answers too, so a change on either side is noticed."""
    seen = records["strongroom"]
    assert seen["=bad_cas_errors"] == [
        "check-and-set parameter did not match the current version"]
    assert seen["=no_cas_errors"] == ["check-and-set parameter required for this call"]
    assert seen["read_missing"] == ("InvalidPath", {"errors": []})
    assert seen["read_deleted_raises"][0] == "InvalidPath"
    assert seen["patch_http_missing"][0] == "InvalidPath"
    assert seen["=after_patch"] == {"nested": {"m": 2}, "user": "v"}
    assert seen["=metadata_after"]["custom_metadata"] == {"team": "blue"}
    assert seen["=v1_read"] == ({"ttl": "1h", "x": "1"}, 3600, False)
    assert seen["=v1_list"] == ["a", "c/"]
    assert seen["v1_read_missing"] == ("InvalidPath", {"errors": []})
    assert seen["list_missing"] == ("InvalidPath", {"errors": []})
    assert seen["write_folder"] == (400, {"errors": ["str"]})


def test_patch_of_missing_key_body(records: dict[str, dict[str, Any]]) -> None:
    """Known difference: on PATCH of a missing key Vault and OpenBao answer 404 with an
    empty body, Strongroom with {"errors": []} (hvac raises InvalidPath for both)."""
    for name in ("bao", "strongroom"):
        assert records[name]["patch_http_missing"] == ("InvalidPath", None)
