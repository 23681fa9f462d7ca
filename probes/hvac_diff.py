#!/usr/bin/env python3
"""Compare what two servers answered to the same hvac tests (``hvac_suite.py --record``).

hvac's assertions are loose: a test passes on a response missing half of Vault's fields.
``--record`` keeps the shape of every API exchange (status, JSON keys, leaf types; no
values). This pairs the exchanges of the two runs (same test, method, path with ids
masked, n-th occurrence) and prints each distinct difference once, with how many
exchanges showed it:

    python probes/hvac_diff.py <workdir>/record-strongroom.jsonl <workdir>/record-bao.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# Ids, accessors, tokens, lease ids, dates in paths: not part of what is compared.
_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?<=/)[hsb]\.[A-Za-z0-9]{10,}|(?<=/)[A-Za-z0-9]{24,}")


def normalize(path: str) -> str:
    return _VOLATILE.sub("*", path)


def flatten(shape: Any, prefix: str = "") -> dict[str, str]:
    """``{"data": {"keys": ["str"]}}`` -> ``{"data.keys[]": "str"}``; maps whose keys are
    data (numbers, mount paths, ids) become one ``*`` entry with the union of their fields."""
    out: dict[str, str] = {}
    if isinstance(shape, dict):
        if not shape:
            out[prefix or "."] = "{}"
        keys = list(shape)
        dynamic = keys and all(re.fullmatch(r"\d+|.*/|[0-9a-f-]{36}", k) for k in keys)
        for key in keys:
            # Entries of a map keyed by data: the union of their fields (a field only
            # some entries have, e.g. deprecation_status, is not reported as missing).
            name = "*" if dynamic else key
            for field, kind in flatten(shape[key], f"{prefix}.{name}" if prefix else name
                                       ).items():
                out.setdefault(field, kind)
    elif isinstance(shape, list):
        if not shape:
            out[prefix + "[]"] = "[]"
        for item in shape[:1]:
            out.update(flatten(item, prefix + "[]"))
    else:
        out[prefix or "."] = str(shape)
    return out


def load(path: Path) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    seen: Counter[tuple[str, str, str]] = Counter()
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        key3 = (record["test"], record["method"], normalize(record["path"]))
        out[(*key3, seen[key3])] = record
        seen[key3] += 1
    return out


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    diffs = []
    if ours["status"] != theirs["status"]:
        diffs.append(f"status {ours['status']} (theirs {theirs['status']})"
                     f" ours={ours.get('errors')} theirs={theirs.get('errors')}")
        return diffs
    a, b = flatten(ours["shape"]), flatten(theirs["shape"])
    # A field both have at some depth is compared; one side's whole subtree missing is
    # reported once, at its top.
    for key in sorted(set(b) - set(a)):
        if not any(key.startswith(m + ".") or key.startswith(m + "[")
                   for m in set(b) - set(a) if m != key):
            diffs.append(f"missing {key}: {b[key]}")
    for key in sorted(set(a) - set(b)):
        if not any(key.startswith(m + ".") or key.startswith(m + "[")
                   for m in set(a) - set(b) if m != key):
            diffs.append(f"extra {key}: {a[key]}")
    for key in sorted(set(a) & set(b)):
        if a[key] != b[key] and "null" not in (a[key], b[key]):
            diffs.append(f"type {key}: {a[key]} (theirs {b[key]})")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ours", type=Path)
    parser.add_argument("theirs", type=Path)
    opts = parser.parse_args()
    ours, theirs = load(opts.ours), load(opts.theirs)
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for key, record in ours.items():
        other = theirs.get(key)
        if other is None:
            continue
        for diff in compare(record, other):
            found[(key[1], key[2], diff)].append(key[0])
    only = len(set(ours) - set(theirs)), len(set(theirs) - set(ours))
    print(f"{len(set(ours) & set(theirs))} exchanges paired; unpaired: {only[0]} ours, "
          f"{only[1]} theirs")
    for (method, path, diff), tests in sorted(found.items()):
        print(f"{method} {path}: {diff}  [x{len(tests)}, e.g. {tests[0].rsplit('::', 1)[-1]}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
