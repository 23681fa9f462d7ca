"""Parsing helpers: Go durations, duration/map flags, key=value data, KV paths."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests

from strongroom.cli.client import ApiClient, ApiError, ClientConfig
from strongroom.cli.durations import (
    HOUR,
    MILLISECOND,
    MINUTE,
    SECOND,
    go_duration,
    parse_duration_flag,
    parse_go_duration,
    truncate_seconds,
)
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kv_manage import parse_versions
from strongroom.cli.kvdata import ArgsDataError, parse_args_data, string_lists
from strongroom.cli.kvpath import (
    add_prefix,
    ensure_trailing_slash,
    go_path_join,
    preflight,
    resolve,
    sanitize_path,
)

from cli_fakes import FakeApi

# --- durations -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "ns"), [
    ("90", 90 * SECOND), ("1h", HOUR), ("1h30m", HOUR + 30 * MINUTE), ("500ms", 500 * MILLISECOND),
    ("1.5s", 1500 * MILLISECOND), ("2d", 48 * HOUR), ("0", 0), ("", 0), (".5s", 500 * MILLISECOND),
    ("-1h", -HOUR), ("1h0m0s", HOUR),
])
def test_parse_duration_flag(text: str, ns: int) -> None:
    assert parse_duration_flag(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("abc", 'time: invalid duration "abc"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("1h5", 'time: missing unit in duration "1h5"'),
    (".", 'time: invalid duration "."'),
])
def test_parse_go_duration_errors_use_go_wording(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        parse_go_duration(text)


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (HOUR, "1h0m0s"), (90 * SECOND, "1m30s"), (768 * HOUR, "768h0m0s"),
    (1500 * MILLISECOND, "1.5s"), (300 * MILLISECOND, "300ms"), (1500, "1.5µs"), (7, "7ns"),
    (-90 * SECOND, "-1m30s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_truncate_seconds() -> None:
    assert truncate_seconds(90 * SECOND + 5) == 90
    assert truncate_seconds(500 * MILLISECOND) == 0


def test_duration_and_map_flags() -> None:
    fs = FlagSet()
    fs.duration("ttl", "TTL.")
    fs.duration("after", "After.", default=-1)
    fs.mapping("meta", "Metadata.")
    parsed = fs.parse(["-ttl=1h", "-meta=a=b", "-meta", "c=d=e", "rest"])
    assert parsed.duration("ttl") == HOUR and parsed.duration("after") == -1
    assert parsed.mapping("meta") == {"a": "b", "c": "d=e"}
    assert parsed.args == ["rest"]
    assert fs.parse([]).mapping("meta") == {}  # the default is not shared between parses
    with pytest.raises(UsageError, match='invalid value "x" for flag -ttl: time: invalid'):
        fs.parse(["-ttl=x"])
    with pytest.raises(UsageError, match='missing = in KV pair: "novalue"'):
        fs.parse(["-meta=novalue"])
    assert "-ttl=<duration>" in fs.help() and "-meta=<key=value>" in fs.help()


# --- key=value data ------------------------------------------------------------


def test_parse_args_data_forms(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("file-value")
    (tmp_path / "d.json").write_text('{"j": 1}')
    data = parse_args_data(io.StringIO(), [
        "a=1", f"f=@{tmp_path / 'v.txt'}", "lit=\\@x", "r=x", "r=y", "r=z", "", "eq=a=b",
        f"@{tmp_path / 'd.json'}",
    ])
    assert data == {"a": "1", "f": "file-value", "lit": "@x", "r": ["x", "y", "z"],
                    "eq": "a=b", "j": 1}


def test_parse_args_data_stdin() -> None:
    assert parse_args_data(io.StringIO('{"s": "v", "n": 2}'), ["-", "x=1"]) == \
        {"s": "v", "n": 2, "x": "1"}
    assert parse_args_data(io.StringIO("raw\n"), ["k=-"]) == {"k": "raw\n"}
    with pytest.raises(ArgsDataError, match="stdin already consumed"):
        parse_args_data(io.StringIO("{}"), ["-", "k=-"])


@pytest.mark.parametrize(("args", "message"), [
    (["novalue"], 'invalid key/value pair "novalue": format must be key=value'),
    (["a=@/no/such"], 'invalid key/value pair "a=@/no/such": error reading file: open '
                      "/no/such: no such file or directory"),
    (["-"], 'invalid key/value pair "-": '),
])
def test_parse_args_data_errors(args: list[str], message: str) -> None:
    with pytest.raises(ArgsDataError) as info:
        parse_args_data(io.StringIO("[1]"), args)
    assert str(info.value).startswith(message)


def test_string_lists() -> None:
    assert string_lists({"a": "1", "b": ["x", "y"], "n": 3}) == \
        {"a": ["1"], "b": ["x", "y"], "n": ["3"]}


def test_parse_versions() -> None:
    assert parse_versions(["1,2", " 3 ", ""]) == ["1", "2", "3"]


# --- KV paths ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "mount", "prefix", "expected"), [
    ("secret/foo", "secret/", "data", "secret/data/foo"),
    ("secret/foo/bar", "secret/", "metadata", "secret/metadata/foo/bar"),
    ("secret", "secret/", "metadata", "secret/metadata"),
    ("secret/", "secret/", "data", "secret/data"),
    ("team/kv/foo", "team/kv/", "delete", "team/kv/delete/foo"),
    ("kv/foo", "ns1/kv/", "data", "kv/data/foo"),  # mount path carrying a namespace
])
def test_add_prefix(path: str, mount: str, prefix: str, expected: str) -> None:
    assert add_prefix(path, mount, prefix) == expected


def test_path_helpers() -> None:
    assert go_path_join("secret/", "foo//bar/") == "secret/foo/bar"
    assert go_path_join("", "") == ""
    assert go_path_join("a", "../b") == "b"
    assert sanitize_path("  /secret/foo/ ") == "secret/foo"
    assert ensure_trailing_slash("kv") == "kv/" and ensure_trailing_slash("kv/") == "kv/"
    assert ensure_trailing_slash("") == ""


def _client(api: FakeApi) -> ApiClient:
    session = requests.Session()
    session.mount("http://", api)
    return ApiClient(ClientConfig(address="http://vault.test", token="t"), session=session)


def test_preflight_versions_and_errors() -> None:
    api = FakeApi()
    ui = "/v1/sys/internal/ui/mounts/"
    api.add("GET", ui + "secret/foo", (200, {"data": {"path": "secret/",
                                                      "options": {"version": "2"}}}))
    api.add("GET", ui + "kv/foo", (200, {"data": {"path": "kv/", "options": None}}))
    api.add("GET", ui + "old/foo", (404, {"errors": []}))
    api.add("GET", ui + "none/foo", (403, {"errors": ["preflight capability check"]}))
    client = _client(api)
    assert preflight(client, "secret/foo") == ("secret/", 2)
    assert preflight(client, "kv/foo") == ("kv/", 1)
    assert preflight(client, "old/foo") == ("", 1)
    with pytest.raises(ApiError) as info:
        preflight(client, "none/foo")
    assert info.value.status == 403


def test_resolve_with_mount_flag_and_path_form() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/internal/ui/mounts/secret",
            (200, {"data": {"path": "secret/", "options": {"version": "2"}}}))
    api.add("GET", "/v1/sys/internal/ui/mounts/secret/app/db",
            (200, {"data": {"path": "secret/", "options": {"version": "2"}}}))
    api.add("GET", "/v1/sys/internal/ui/mounts/kv",
            (200, {"data": {"path": "kv/", "options": {"version": "1"}}}))
    client = _client(api)
    flagged = resolve(client, "app/db", "secret")
    assert flagged.api_path("data") == "secret/data/app/db" and flagged.v2
    assert resolve(client, "/secret/app/db/", "").api_path("metadata") == \
        "secret/metadata/app/db"
    v1 = resolve(client, "app", "kv")
    assert (v1.v2, v1.api_path("data")) == (False, "kv/app")
    # The preflight is never wrapped, even with -wrap-ttl.
    assert all("X-Vault-Wrap-TTL" not in r.headers for r in api.requests)
