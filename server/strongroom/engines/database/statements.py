"""SQL statement lists as Vault's plugins take them: each list item may hold several
statements separated by ``;`` (or be a JSON array of them), with ``{{name}}``-style
placeholders replaced by plain text (no parameters: DDL cannot take them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

# PostgreSQL bodies (DO $$ ... END $$, functions) are run whole, not split on ';'.
_END = re.compile(r"\bEND\b")
_QUOTED = re.compile(r"(\".*?\")|('.*?')")


def split(statement: str) -> list[str]:
    """One list item -> its statements (strutil.ParseArbitraryStringSlice)."""
    text = statement.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return [p.strip() for p in parsed if p.strip()]
    return [part.strip() for part in statement.split(";") if part.strip()]


def is_multiline_block(statement: str) -> bool:
    """A PostgreSQL block with an END outside quotes: executed as one statement."""
    return bool(_END.search(_QUOTED.sub("", statement)))


def expand(statements: Iterable[str], whole_blocks: bool = False) -> list[str]:
    """Every list item split into statements (blocks kept whole when asked)."""
    out: list[str] = []
    for statement in statements:
        if whole_blocks and is_multiline_block(statement):
            out.append(statement)
        else:
            out.extend(split(statement))
    return out


def render(query: str, values: Mapping[str, str]) -> str:
    """Replace ``{{key}}`` placeholders (dbutil.QueryHelper)."""
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value)
    return query


def parse_list(value: object) -> list[str]:
    """A statements field: a list of strings, or one string (Vault's TypeStringSlice)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]
