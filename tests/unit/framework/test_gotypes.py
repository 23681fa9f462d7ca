"""Go's integer and duration decoding (framework/gotypes.py), value by value.

The expected results are OpenBao 2.7's answers (tests/compat/test_input_limits_vs_bao.py
checks the same values against the real binary over HTTP).
"""

from __future__ import annotations

import pytest

from strongroom.framework.gotypes import (
    MAX_DURATION_SECONDS,
    GoParseError,
    duration_seconds,
    parse_go_duration,
    weak_int,
)


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("+0", 0), ("-0", 0), ("1s", 10**9), ("1.5h", 5400 * 10**9), (".5h", 1800 * 10**9),
    ("5.h", 5 * 3600 * 10**9), ("1µs", 1000), ("1μs", 1000), ("1h30m", 5400 * 10**9),
    ("-1m", -60 * 10**9), ("2562047h47m16.854775807s", 2**63 - 1),
    ("-2562047h47m16.854775808s", -(2**63)), ("1.0000000000000000000001s", 10**9),
])
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'), ("abc", 'time: invalid duration "abc"'),
    ("1", 'time: missing unit in duration "1"'), ("1.5", 'time: missing unit in duration "1.5"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'), (".s", 'time: invalid duration ".s"'),
    ("1h-1m", 'time: unknown unit "h-" in duration "1h-1m"'),
    (" 5s", 'time: invalid duration " 5s"'),
    # One past int64 nanoseconds, in each way Go detects it.
    ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
    ("2562048h", 'time: invalid duration "2562048h"'),
    ("999999999999h", 'time: invalid duration "999999999999h"'),
    ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
])
def test_parse_go_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(GoParseError) as err:
        parse_go_duration(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 0), ("", 0), (90, 90), ("90", 90), ("+5", 5), ("010", 10), ("1d", 86400),
    ("-1d", -86400), ("1500ms", 1), ("-1500ms", -1), ("2562047h", 2562047 * 3600),
    (MAX_DURATION_SECONDS, MAX_DURATION_SECONDS), ("106751d", 106751 * 86400),
])
def test_duration_seconds(value: object, seconds: int) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize(("value", "message"), [
    (True, "could not parse duration from input"), ([1], "could not parse duration from input"),
    (1.5, 'time: missing unit in duration "1.5"'), (1.0, 'time: missing unit in duration "1.0"'),
    ("xd", 'strconv.ParseInt: parsing "x": invalid syntax'),
    (MAX_DURATION_SECONDS + 1, "multiplication of durations resulted in overflow"),
    ("106752d", "multiplication of durations resulted in overflow"),
    (2**63, 'time: missing unit in duration "9223372036854775808"'),
    (10**30, "time: invalid duration"), (1e30, "time: invalid duration"),
])
def test_duration_seconds_rejects(value: object, message: str) -> None:
    with pytest.raises(GoParseError, match=message.replace("(", r"\(")):
        duration_seconds(value)


@pytest.mark.parametrize(("value", "number"), [
    (5, 5), (-5, -5), (True, 1), (False, 0), ("", 0), ("0x10", 16), ("0o17", 15), ("0b11", 3),
    ("010", 8), ("1_000", 1000), ("+7", 7), ("-0", 0), (2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)),
    ("9223372036854775807", 2**63 - 1),
])
def test_weak_int(value: object, number: int) -> None:
    assert weak_int(value) == number


@pytest.mark.parametrize(("value", "reason"), [
    (2**63, "value out of range"), (-(2**63) - 1, "value out of range"),
    (10**30, "value out of range"), (1e30, "value out of range"),
    ("9223372036854775808", "value out of range"), (1.0, "invalid syntax"),
    (1.5, "invalid syntax"), (" 5", "invalid syntax"), ("1e3", "invalid syntax"),
    ("1__0", "invalid syntax"), ("_1", "invalid syntax"), ("0x", "invalid syntax"),
    ("５", "invalid syntax"), ([], "unconvertible type"), ({}, "unconvertible type"),
])
def test_weak_int_rejects(value: object, reason: str) -> None:
    with pytest.raises(GoParseError, match=reason):
        weak_int(value)
