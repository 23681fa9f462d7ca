"""Cross-check the ACL's indexed lookup against a literal model of Vault's algorithm.

The model below restates ``CheckAllowedFromNonExactPaths`` plainly: the longest
prefix rule plus every matching ``+`` rule, sorted by the documented priority
rules, highest wins. Random policies (fixed seed) must pick the same winner.
"""

from __future__ import annotations

import functools
import random

from strongroom.core.request import Operation
from strongroom.policy import ACL, parse_policy

SEGMENTS = ["a", "b", "ab", "+"]


def random_pattern(rng: random.Random) -> str:
    parts = [rng.choice(SEGMENTS) for _ in range(rng.randint(1, 4))]
    pattern = "/".join(parts)
    ending = rng.random()
    if ending < 0.3 and not pattern.endswith("+"):
        pattern += "*"  # glob straight after text: "a/a*"
    elif ending < 0.5:
        pattern += "/*"
    return pattern


def random_path(rng: random.Random) -> str:
    path = "/".join(rng.choice(["a", "b", "ab", "abc", "x"]) for _ in range(rng.randint(1, 5)))
    return path + "/" if rng.random() < 0.2 else path


def model_winner(patterns: list[str], path: str) -> str | None:
    if path in patterns:
        return path
    prefixes = [p for p in patterns if p.endswith("*") and "/+" not in p and not p.startswith("+")]
    candidates = []  # (first wildcard, is prefix, wildcard count, stem, pattern)
    matching = [p for p in prefixes if path.startswith(p[:-1])]
    if matching:
        best = max(matching, key=len)
        candidates.append((len(best) - 1, True, 0, best[:-1], best))
    segmented = [p for p in patterns if p == "+" or "/+" in p or p.startswith("+/")]
    path_parts = path.split("/")
    for pattern in segmented:
        is_prefix = pattern.endswith("*")
        stem = pattern[:-1] if is_prefix else pattern
        parts = stem.split("/")
        if len(path_parts) < len(parts) or (not is_prefix and len(path_parts) != len(parts)):
            continue
        ok = all(
            part == "+"
            or part == path_parts[i]
            or (is_prefix and i == len(parts) - 1 and path_parts[i].startswith(part))
            for i, part in enumerate(parts)
        )
        if ok:
            candidates.append((pattern.index("+"), is_prefix, parts.count("+"), stem, pattern))

    def compare(x: tuple[int, bool, int, str, str], y: tuple[int, bool, int, str, str]) -> int:
        # Vault's documented criteria in order; -1 means x has the lower priority.
        if x[0] != y[0]:
            return -1 if x[0] < y[0] else 1  # earlier first wildcard
        if x[1] != y[1]:
            return -1 if x[1] else 1  # ends in `*`
        if x[2] != y[2]:
            return -1 if x[2] > y[2] else 1  # more `+` segments
        if len(x[3]) != len(y[3]):
            return -1 if len(x[3]) < len(y[3]) else 1  # shorter
        if x[3] != y[3]:
            return -1 if x[3] < y[3] else 1  # lexically smaller
        return 0

    if not candidates:
        return None
    return sorted(candidates, key=functools.cmp_to_key(compare))[-1][4]


def test_indexed_lookup_matches_the_model() -> None:
    rng = random.Random(20240601)
    checked = 0
    for _ in range(400):
        patterns = sorted({random_pattern(rng) for _ in range(rng.randint(1, 12))})
        patterns = [p for p in patterns if "+*" not in p]
        text = "\n".join(
            f'path "{p}" {{ capabilities = ["read"]\n required_parameters = ["r{i}"] }}'
            for i, p in enumerate(patterns)
        )
        acl = ACL([parse_policy("fuzz", text)])
        for _ in range(25):
            path = random_path(rng)
            expected = model_winner(patterns, path)
            reason = acl.allowed_operation(Operation.READ, path).reason
            if expected is None:
                assert reason.startswith("no rule matches"), (patterns, path, reason)
            else:
                marker = f"'r{patterns.index(expected)}'"
                assert marker in reason, (patterns, path, expected, reason)
            checked += 1
    assert checked == 10_000
