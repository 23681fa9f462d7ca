"""Go ``time.Duration`` parsing and printing, as the vault CLI's duration flags use them.

Durations are kept as integer nanoseconds, like Go. Flags accept a bare
integer as seconds (``-ttl=90``), Go's unit syntax (``1h30m``, ``500ms``) and
a ``d`` suffix for days, as Vault's ``parseutil.ParseDurationSecond`` does.
Values sent to the server use Go's ``Duration.String`` form (``1h0m0s``).
"""

from __future__ import annotations

import re

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND, "us": MICROSECOND, "µs": MICROSECOND, "μs": MICROSECOND,
    "ms": MILLISECOND, "s": SECOND, "m": MINUTE, "h": HOUR,
}
_NUMBER = re.compile(r"(\d*)(\.)?(\d*)")
_UNIT = re.compile(r"[^\d.]*")


def parse_go_duration(text: str) -> int:
    """Parse Go's ``time.ParseDuration`` syntax into nanoseconds.

    Raises:
        ValueError: With Go's message, e.g. ``time: invalid duration "abc"``.
    """
    s, sign = text, 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    while s:
        number = _NUMBER.match(s)
        assert number is not None  # the pattern also matches the empty string
        whole, dot, frac = number.groups()
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        s = s[number.end():]
        unit = _UNIT.match(s)
        name = unit.group(0) if unit else ""
        if not name:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if name not in _UNITS:
            raise ValueError(f'time: unknown unit "{name}" in duration "{text}"')
        s = s[len(name):]
        scale = _UNITS[name]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
    return sign * total


def parse_duration_flag(text: str) -> int:
    """Parse a duration flag value: seconds, a ``d`` day count, or Go syntax.

    Raises:
        ValueError: Unparseable value (message in Go's wording).
    """
    s = text.strip()
    if not s:
        return 0
    if re.fullmatch(r"[-+]?\d+", s):
        return int(s) * SECOND
    if s.endswith("d") and re.fullmatch(r"[-+]?\d+", s[:-1]):
        return int(s[:-1]) * 24 * HOUR
    return parse_go_duration(s)


def _fraction(value: int, digits: int) -> str:
    text = str(value).rjust(digits, "0").rstrip("0")
    return "." + text if text else ""


def go_duration(ns: int) -> str:
    """Format nanoseconds like Go's ``Duration.String``: ``1h0m0s``, ``1.5s``, ``300ms``."""
    if ns == 0:
        return "0s"
    sign, n = ("-", -ns) if ns < 0 else ("", ns)
    if n < SECOND:
        for unit, size, digits in (("ms", MILLISECOND, 6), ("µs", MICROSECOND, 3)):
            if n >= size:
                return f"{sign}{n // size}{_fraction(n % size, digits)}{unit}"
        return f"{sign}{n}ns"
    secs, frac = divmod(n, SECOND)
    text = f"{secs % 60}{_fraction(frac, 9)}s"
    minutes = secs // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def truncate_seconds(ns: int) -> int:
    """Whole seconds in ``ns``; under one second counts as 0 (Vault's ``truncateToSeconds``)."""
    return max(ns // SECOND, 0) if ns >= SECOND else 0
