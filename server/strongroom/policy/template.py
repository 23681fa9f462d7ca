"""Identity templating of ACL paths (Vault's ``{{identity...}}`` placeholders), for
tokens that carry an identity entity (a login's).

Supported: ``identity.entity.id``, ``identity.entity.name``,
``identity.entity.metadata.<key>``, ``identity.entity.aliases.<mount accessor>.id``,
``.name`` and ``.metadata.<key>``. A stanza with a placeholder that cannot be filled
(no entity, an unknown key, groups, which are not kept) is skipped, as Vault does; so
is one whose value holds ``/``, ``*`` or ``+`` (OpenBao's defaults: a value must not
widen the path it is put in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_UNSAFE = frozenset("/*+")


@dataclass(frozen=True)
class AliasInfo:
    id: str
    name: str
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IdentityInfo:
    """What templates may name about a token's entity (hashable: ACLs are cached by it)."""

    entity_id: str
    entity_name: str
    metadata: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, AliasInfo], ...] = ()  # (mount accessor, alias)

    def value(self, name: str) -> str | None:
        parts = name.split(".")
        if parts[:2] != ["identity", "entity"] or len(parts) < 3:
            return None
        rest = parts[2:]
        if rest == ["id"]:
            return self.entity_id
        if rest == ["name"]:
            return self.entity_name
        if len(rest) == 2 and rest[0] == "metadata":
            return dict(self.metadata).get(rest[1])
        if len(rest) >= 3 and rest[0] == "aliases":
            alias = dict(self.aliases).get(rest[1])
            if alias is None:
                return None
            field = rest[2:]
            if field == ["id"]:
                return alias.id
            if field == ["name"]:
                return alias.name
            if len(field) == 2 and field[0] == "metadata":
                return dict(alias.metadata).get(field[1])
        return None


def render(path: str, info: IdentityInfo | None) -> str | None:
    """``path`` with its placeholders filled from ``info``; None if any cannot be."""
    if info is None:
        return None
    failed = False

    def fill(match: re.Match[str]) -> str:
        nonlocal failed
        value = info.value(match.group(1))
        if not value or _UNSAFE.intersection(value):
            failed = True
            return ""
        return value

    out = _PLACEHOLDER.sub(fill, path)
    return None if failed or "{{" in out or "}}" in out else out
