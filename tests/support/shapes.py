"""Shapes of JSON answers, for comparing Strongroom with OpenBao in compat tests."""

from __future__ import annotations

import re
from typing import Any

MISSING = "<missing>"
# Deliberate, known divergences between OpenBao and HashiCorp Vault (Strongroom's
# target): Vault names the mount type in every logical response; OpenBao has KV
# metadata check-and-set, which Vault does not. These keys are left out of shapes.
STRONGROOM_ONLY = frozenset({"mount_type"})
BAO_ONLY = frozenset({"metadata_cas_required", "current_metadata_version"})
IGNORED = STRONGROOM_ONLY | BAO_ONLY
# OpenBao's policy endpoints add check-and-set and identity-template options that
# Vault's do not have; ignored in policy scenarios only (KV metadata has a real
# ``cas_required``).
BAO_ONLY_POLICY = frozenset({"cas_required", "version", "modified",
                             "allow_slashes_in_identity_templates",
                             "allow_wildcards_in_identity_templates"})

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ISO_OTHER = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d)?$")


def leaf_type(value: Any) -> str:
    """The type name; strings holding a timestamp are typed by its format."""
    if isinstance(value, str):
        if RFC3339_UTC.match(value):
            return "time(RFC3339 Z)"
        if ISO_OTHER.match(value):
            return "time(other: " + re.sub(r"\d", "9", value) + ")"
    return type(value).__name__


def shape(value: Any, depth: int = 99, ignored: frozenset[str] = IGNORED) -> Any:
    """Keys (sorted) at every level down to ``depth`` and the type of every leaf."""
    if isinstance(value, dict) and depth > 0:
        return {k: shape(v, depth - 1, ignored) for k, v in sorted(value.items())
                if k not in ignored}
    if isinstance(value, list) and depth > 0:
        return [shape(v, depth - 1, ignored) for v in value]
    return leaf_type(value)


def dig(value: Any, *path: str | int) -> Any:
    """``value[p0][p1]...``, or :data:`MISSING` when any step is absent."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return value
