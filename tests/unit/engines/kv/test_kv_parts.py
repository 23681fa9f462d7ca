"""The KV engine's pure parts: merge patch, Go-style decoding, timestamps, durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from strongroom.engines.kv.common import format_time, now_ns
from strongroom.engines.kv.merge_patch import merge_patch
from strongroom.engines.kv.parsing import (
    duration_seconds,
    format_duration,
    go_int,
    int_list,
)
from strongroom.errors import BadRequestError

# RFC 7386, Appendix A: (target, patch, result).
RFC_7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
def test_merge_patch_rfc_7386_examples(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # inputs are left alone


@pytest.mark.parametrize(("value", "expected"), [
    (5, 5), ("5", 5), ("", 0), (True, 1), (False, 0), ("-3", -3), ("0x10", 16),
    ("010", 8), ("1_000", 1000),
])
def test_go_int(value: object, expected: int) -> None:
    assert go_int("f", value) == expected


@pytest.mark.parametrize("value", ["abc", " 5", "1.5", 1.5, 2.0, None, [1], {"a": 1},
                                   2**63, "9223372036854775808", -(2**63) - 1, 10**30])
def test_go_int_rejects(value: object) -> None:
    """Vault's TypeInt is a Go int: past int64 is refused, not stored to fail later."""
    with pytest.raises(BadRequestError, match='field "f"'):
        go_int("f", value)


@pytest.mark.parametrize(("value", "expected"), [
    ([1, 2], [1, 2]), ("1,2", [1, 2]), (3, [3]), ("3", [3]), (["3", 4], [3, 4]),
    ("", []), ([], []), (None, []), (True, [1]), ("1,,2", [1, 0, 2]),
])
def test_int_list(value: object, expected: list[int]) -> None:
    assert int_list("versions", value) == expected


@pytest.mark.parametrize("value", [["x"], [1.5], " 1", {"a": 1}, [[1]], 1.0])
def test_int_list_rejects(value: object) -> None:
    with pytest.raises(BadRequestError, match='field "versions"'):
        int_list("versions", value)


@pytest.mark.parametrize(("value", "expected"), [
    (90, 90), ("90", 90), ("1h30m", 5400), ("1.5s", 1), ("1500ms", 1), ("2d", 172800),
    ("0", 0), ("", 0), (None, 0), ("-5m", -300), ("1h0m0s", 3600),
    ("2562047h", 2562047 * 3600), (9223372036, 9223372036), ("106751d", 106751 * 86400),
])
def test_duration_seconds(value: object, expected: int) -> None:
    assert duration_seconds("d", value, allow_negative=True) == expected


@pytest.mark.parametrize(("value", "reason"), [
    ("abc", 'time: invalid duration "abc"'), ("1x", 'time: unknown unit "x"'),
    ("h", "time: invalid duration"), (True, "could not parse duration from input"),
    ([1], "could not parse duration from input"), ("1 h", 'unknown unit " h"'),
    ("--1s", "invalid duration"), (1.9, 'missing unit in duration "1.9"'),
    # Past Go's int64 nanoseconds (2562047h47m16s): refused, as in Vault, instead of
    # stored and failing every later write (deletion time out of range).
    ("999999999999h", "time: invalid duration"), ("2562048h", "time: invalid duration"),
    (9223372037, "multiplication of durations resulted in overflow"),
    ("106752d", "multiplication of durations resulted in overflow"),
    (10**30, "time: invalid duration"),
])
def test_duration_seconds_rejects(value: object, reason: str) -> None:
    with pytest.raises(BadRequestError, match=f'field "d": .*{re.escape(reason)}'):
        duration_seconds("d", value, allow_negative=True)


def test_negative_durations_only_where_allowed() -> None:
    with pytest.raises(BadRequestError, match="cannot provide negative value"):
        duration_seconds("d", "-1s")
    assert duration_seconds("d", "-1s", allow_negative=True) == -1


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (1, "1s"), (59, "59s"), (90, "1m30s"), (3600, "1h0m0s"), (3661, "1h1m1s"),
    (-1, "-1s"), (100 * 3600, "100h0m0s"),
])
def test_format_duration_is_gos(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_timestamps_are_gos_rfc3339nano() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    assert format_time(now_ns(lambda: base)) == "2026-01-01T00:00:00Z"
    assert format_time(now_ns(lambda: base.replace(microsecond=123456))) == (
        "2026-01-01T00:00:00.123456Z")
    assert format_time(now_ns(lambda: base.replace(microsecond=120000))) == (
        "2026-01-01T00:00:00.12Z")
    assert format_time(1_767_225_600_123_456_789) == "2026-01-01T00:00:00.123456789Z"
    assert format_time(None) == ""
    east = base.astimezone(timezone(timedelta(hours=5)))
    assert format_time(now_ns(lambda: east)) == "2026-01-01T00:00:00Z"
    assert format_time(now_ns(lambda: base.replace(tzinfo=None))) == "2026-01-01T00:00:00Z"
