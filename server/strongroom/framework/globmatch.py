"""``*``-only globs (ryanuber/go-glob, as Vault's token roles use it), without backtracking.

A glob turned into a regular expression (``.*`` per star) backtracks: a 60 KB
policy name against ``team-*-*-ro`` took 12 s of a worker, and each further
star multiplies that by the name's length. Here each literal segment between
stars is searched once, left to right, from where the previous one ended; the
leftmost occurrence is always the best choice for a star-only glob, so nothing
is ever retried. The cost is a fixed number of substring searches (one per
segment), each at most linear in the value with CPython's search algorithm.
"""

from __future__ import annotations

from collections.abc import Iterable


def glob_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern``, in which only ``*`` is special.

    ``*`` matches any run of characters, the empty one included; a pattern
    without a star must equal the value (go-glob's ``Glob``).
    """
    return match_with_steps(pattern, value)[0]


def match_with_steps(pattern: str, value: str) -> tuple[bool, int]:
    """:func:`glob_match` and the number of substring searches it made (for tests).

    The count never exceeds the number of segments (stars + 1), whatever the
    value: the proof that the matcher does not backtrack.
    """
    parts = pattern.split("*")
    if len(parts) == 1:
        return value == pattern, 1
    first, middle, last = parts[0], parts[1:-1], parts[-1]
    steps = 1
    if not value.startswith(first):
        return False, steps
    cursor = len(first)
    # The last segment must sit at the very end, after everything matched before.
    end = len(value) - len(last)
    if end < cursor:
        return False, steps
    for part in middle:
        steps += 1
        found = value.find(part, cursor, end)
        if found < 0:
            return False, steps
        cursor = found + len(part)
    steps += 1
    return value.endswith(last), steps


def glob_any(patterns: Iterable[str], value: str) -> bool:
    """Whether ``value`` matches one of ``patterns``."""
    return any(glob_match(p, value) for p in patterns)
