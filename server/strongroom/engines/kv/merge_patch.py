"""JSON Merge Patch (RFC 7386), as Vault applies it to KV data and metadata."""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``target`` without modifying either.

    An object patch merges member by member: null deletes a member, an object
    merges recursively, anything else replaces. A non-object patch replaces the
    whole target (so a null patch yields null).
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
