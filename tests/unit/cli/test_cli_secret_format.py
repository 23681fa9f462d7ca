"""Printing API answers as vault does: Go struct JSON, secret tables, -field, headings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.cli import output
from strongroom.cli.kv import header_for_map, pad_equal_signs
from strongroom.cli.secret import go_time_string, raw_field, secret_rows, shape, sort_maps
from tests.support import requires

AUTH_RESPONSE: dict[str, Any] = {
    "request_id": "r-1", "lease_id": "", "renewable": False, "lease_duration": 0,
    "data": None, "wrap_info": None, "warnings": ["Policy \"x\" does not exist"],
    "auth": {"client_token": "s.tok", "accessor": "acc", "policies": ["default", "x"],
             "token_policies": ["default", "x"], "metadata": {"b": "2", "a": "1"},
             "lease_duration": 3600, "renewable": True, "entity_id": "", "token_type":
             "service", "orphan": False, "mfa_requirement": None, "num_uses": 0},
    "mount_type": "token",
}
WRAP_RESPONSE: dict[str, Any] = {
    "request_id": "", "data": None, "wrap_info": {
        "token": "s.wrap", "accessor": "wacc", "ttl": 300,
        "creation_time": "2026-11-28T19:22:22.263759500Z",
        "creation_path": "sys/wrapping/wrap"},
}


def test_shape_follows_go_struct_order_and_sorts_maps() -> None:
    out = shape({"data": {"b": 1, "a": {"z": 1, "y": 2}}, "renewable": True, "extra": "x",
                 "request_id": "r"})
    assert list(out) == ["request_id", "lease_id", "lease_duration", "renewable", "data",
                         "warnings"]
    assert list(out["data"]) == ["a", "b"] and list(out["data"]["a"]) == ["y", "z"]
    assert (out["lease_id"], out["lease_duration"], out["warnings"]) == ("", 0, None)


def test_shape_auth_and_wrap_blocks() -> None:
    out = shape(AUTH_RESPONSE)
    assert list(out["auth"]) == ["client_token", "accessor", "policies", "token_policies",
                                 "identity_policies", "metadata", "orphan", "entity_id",
                                 "lease_duration", "renewable", "mfa_requirement"]
    assert out["auth"]["identity_policies"] is None and out["mount_type"] == "token"
    wrap = shape(WRAP_RESPONSE)["wrap_info"]
    assert wrap["wrapped_accessor"] == "" and wrap["ttl"] == 300
    assert shape(None)["data"] is None


def test_secret_rows_for_auth() -> None:
    rows = dict(secret_rows(shape(AUTH_RESPONSE)))
    assert list(rows) == ["token", "token_accessor", "token_duration", "token_renewable",
                          "token_policies", "identity_policies", "policies", "token_meta_a",
                          "token_meta_b"]
    assert rows["token_duration"] == "1h"
    assert rows["token_policies"] == '["default" "x"]' and rows["identity_policies"] == "[]"
    root = shape({"auth": {"client_token": "r", "lease_duration": 0}})
    assert dict(secret_rows(root))["token_duration"] == "∞"


def test_secret_rows_for_wrap_and_leases() -> None:
    rows = dict(secret_rows(shape(WRAP_RESPONSE)))
    assert rows["wrapping_token_ttl:"] == "5m"
    assert rows["wrapping_token_creation_time:"] == "2026-11-28 19:22:22.2637595 +0000 UTC"
    assert "wrapped_accessor:" not in rows
    leased = dict(secret_rows(shape({"lease_id": "db/creds/x", "lease_duration": 60,
                                     "renewable": True, "data": {"ttl": 90, "u": "x"}})))
    assert list(leased) == ["lease_id", "lease_duration", "lease_renewable", "ttl", "u"]
    assert (leased["lease_duration"], leased["ttl"]) == ("1m", "1m30s")
    kv1 = dict(secret_rows(shape({"lease_duration": 2764800, "data": {"a": "1"}})))
    assert kv1 == {"refresh_interval": "768h", "a": "1"}
    assert secret_rows(shape({"data": {}})) == []


def test_raw_field_selection() -> None:
    auth = shape(AUTH_RESPONSE)
    assert raw_field(auth, "token") == "s.tok"
    assert raw_field(auth, "token_duration") == 3600
    assert raw_field(auth, "policies") == ["default", "x"]
    wrap = shape(WRAP_RESPONSE)
    assert raw_field(wrap, "wrapping_token") == "s.wrap"
    assert raw_field(wrap, "wrapping_token_ttl") == 300
    plain = shape({"request_id": "r", "lease_duration": 5, "data": {"a": 1, "data": {"k": 2}}})
    assert (raw_field(plain, "a"), raw_field(plain, "request_id")) == (1, "r")
    assert raw_field(plain, "refresh_interval") == 5
    assert raw_field(plain, "data") == {"k": 2}
    assert raw_field(shape({"data": {"a": 1}}), "data") == {"a": 1}
    assert raw_field(plain, "missing") is None


def test_go_time_string() -> None:
    assert go_time_string("2026-11-28T19:22:22.500Z") == "2026-11-28 19:22:22.5 +0000 UTC"
    assert go_time_string("2026-11-28T19:22:22Z") == "2026-11-28 19:22:22 +0000 UTC"
    assert go_time_string("2026-11-28T19:22:22+02:00") == \
        "2026-11-28 19:22:22 +0200 +0200"
    assert go_time_string("garbage") == "garbage"


@pytest.mark.parametrize(("header", "total", "expected"), [
    ("Secret Path", len("secret/data/foo"), "= Secret Path ="),
    ("Metadata", 15 + 9, "======= Metadata ======="),
    ("Data", 9, "== Data =="),
    ("Metadata Path", len("secret/metadata/foo"), "== Metadata Path =="),
])
def test_pad_equal_signs(header: str, total: int, expected: str) -> None:
    assert pad_equal_signs(header, total) == expected


def test_header_for_map() -> None:
    assert header_for_map("Data", {"a": 1, "b": 2}) == "== Data =="
    assert header_for_map("Data", {"key": 1}) == "=== Data ==="
    assert header_for_map("Data", {}) == "== Data =="
    assert header_for_map("Version 1", {"created_time": "", "deletion_time": "",
                                        "destroyed": False}) == "====== Version 1 ======"


def test_columns_layout() -> None:
    text = output.columns(["Path", "Type", "Description"],
                          [["secret/", "kv", "key/value"], ["kv2/", "kv", ""]])
    assert text.splitlines() == [
        "Path       Type    Description",
        "----       ----    -----------",
        "secret/    kv      key/value",
        "kv2/       kv      n/a",
    ]


def test_format_field_encodes_in_json_and_yaml_modes() -> None:
    assert output.format_field("v", "table") == "v"
    assert output.format_field(["a", "b"], "table") == "[a b]"
    assert output.format_field("v", "json") == '"v"'
    assert json.loads(output.format_field({"k": [1]}, "json")) == {"k": [1]}


def test_yaml_quotes_like_go() -> None:
    requires.module("yaml", "pip install pyyaml")
    text = output.to_yaml({"a": "1", "b": "", "c": "plain", "d": None})
    assert text.splitlines() == ['a: "1"', 'b: ""', "c: plain", "d: null"]


def test_sort_maps_recurses_into_lists() -> None:
    assert json.dumps(sort_maps({"b": [{"d": 1, "c": 2}], "a": 0})) == \
        '{"a": 0, "b": [{"c": 2, "d": 1}]}'
