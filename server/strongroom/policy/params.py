"""Merged per-pattern permissions and Vault's request-parameter checks.

Merging follows ``NewACL`` in Vault's ``vault/acl.go``; value matching follows
its current (1.21+) default: a list or comma-separated string is judged element
by element, so ``"C,D"`` is refused when ``C`` is denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.policy.model import DENY, SUDO, ParamValue, PathRule


class Permissions:
    """What one pattern grants once every policy's stanzas for it are merged.

    Built from the first stanza seen for a pattern and merged with later ones
    by :func:`merge_rule`; :meth:`freeze` then precomputes what the hot path
    reads, and nothing changes it after that.
    """

    __slots__ = (
        "capabilities",
        "sorted_capabilities",
        "sudo",
        "allowed",
        "denied",
        "required",
        "min_wrapping_ttl",
        "max_wrapping_ttl",
        "allowed_all",
        "checks_parameters",
    )

    def __init__(self, rule: PathRule) -> None:
        self.capabilities: frozenset[str] = rule.capabilities
        self.allowed: dict[str, list[ParamValue]] = {
            k: list(v) for k, v in rule.allowed_parameters.items()
        }
        self.denied: dict[str, list[ParamValue]] = {
            k: list(v) for k, v in rule.denied_parameters.items()
        }
        self.required: tuple[str, ...] = rule.required_parameters
        self.min_wrapping_ttl = rule.min_wrapping_ttl
        self.max_wrapping_ttl = rule.max_wrapping_ttl
        self.sorted_capabilities: tuple[str, ...] = ()
        self.sudo = False
        self.allowed_all = False
        self.checks_parameters = False

    def freeze(self) -> None:
        """Precompute the flags :func:`check_parameters` and the ACL read."""
        self.sorted_capabilities = tuple(sorted(self.capabilities))
        self.sudo = SUDO in self.capabilities
        self.allowed_all = "*" in self.allowed
        self.checks_parameters = bool(self.required or self.allowed or self.denied)


def merge_rule(perms: Permissions, rule: PathRule) -> None:
    """Merge a further stanza with the same pattern into ``perms``, as Vault does."""
    if DENY in perms.capabilities:
        return  # Once denied, nothing else for this pattern matters.
    if DENY in rule.capabilities:
        perms.capabilities = frozenset({DENY})
        perms.allowed, perms.denied = {}, {}
        return
    perms.capabilities = perms.capabilities | rule.capabilities
    # Vault keeps the lesser of two set bounds for both min and max, "in line
    # with keeping token lifetimes as short as possible" (policies docs).
    perms.min_wrapping_ttl = _lesser(perms.min_wrapping_ttl, rule.min_wrapping_ttl)
    perms.max_wrapping_ttl = _lesser(perms.max_wrapping_ttl, rule.max_wrapping_ttl)
    _merge_values(perms.allowed, rule.allowed_parameters)
    _merge_values(perms.denied, rule.denied_parameters)
    perms.required += tuple(p for p in rule.required_parameters if p not in perms.required)


def _lesser(current: int, new: int) -> int:
    return new if new and (not current or new < current) else current


def _merge_values(
    into: dict[str, list[ParamValue]], new: Mapping[str, tuple[ParamValue, ...]]
) -> None:
    for key, values in new.items():
        # An empty list ("any value") on either side wins over specific values.
        if not values or (key in into and not into[key]):
            into[key] = []
        else:
            into[key] = list(values) + into.get(key, [])


def check_parameters(perms: Permissions, data: Mapping[str, Any]) -> str:
    """Apply required/denied/allowed parameters to request ``data``.

    Returns:
        An empty string if the data passes, else why it does not.
    """
    for name in perms.required:
        # Vault lower-cases the policy's name but not the request's keys.
        if name.lower() not in data:
            return f"required parameter {name!r} is missing"
    if not data:
        return ""
    if perms.denied:
        if "*" in perms.denied:
            return "all parameters are denied"
        for name, value in data.items():
            denied = perms.denied.get(name.lower())
            if denied is not None and _in_denied(value, denied):
                return f"parameter {name!r} has a denied value"
    if not perms.allowed or (perms.allowed_all and len(perms.allowed) == 1):
        return ""
    for name, value in data.items():
        allowed = perms.allowed.get(name.lower())
        if allowed is None:
            if not perms.allowed_all:
                return f"parameter {name!r} is not allowed"
        elif not _in_allowed(value, allowed):
            return f"parameter {name!r} has a value that is not allowed"
    return ""


def _in_allowed(value: Any, allowed: list[ParamValue]) -> bool:
    if not allowed or _in_list(value, allowed):
        return True
    elements = _elements(value)
    return elements is not None and all(_in_list(e, allowed) for e in elements)


def _in_denied(value: Any, denied: list[ParamValue]) -> bool:
    if not denied or _in_list(value, denied):
        return True
    elements = _elements(value)
    return elements is not None and any(_in_list(e, denied) for e in elements)


def _elements(value: Any) -> list[Any] | None:
    # A list is judged per element; so is a string, since the backend may well
    # read it as a comma-separated list (Vault assumes so too).
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        # Unlike Go's splitter, "" stays [""] rather than vacuously passing.
        return [part.strip() for part in value.split(",")]
    return None


def _in_list(value: Any, candidates: list[ParamValue]) -> bool:
    return any(_matches(candidate, value) for candidate in candidates)


def _matches(candidate: ParamValue, value: Any) -> bool:
    if isinstance(candidate, str):
        return isinstance(value, str) and _glob_match(candidate, value)
    if isinstance(candidate, bool) or isinstance(value, bool):
        return type(candidate) is type(value) and candidate == value
    if isinstance(candidate, tuple):
        return isinstance(value, list | tuple) and _freeze(value) == candidate
    return isinstance(value, int | float) and candidate == value


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _glob_match(pattern: str, value: str) -> bool:
    # Vault's strutil.GlobbedStringsMatch: a leading and/or trailing `*` only;
    # a lone "*" (shorter than two characters) matches itself literally.
    if len(pattern) < 2:
        return value == pattern
    starts, ends = pattern.startswith("*"), pattern.endswith("*")
    if starts and ends:
        return pattern[1:-1] in value
    if starts:
        return value.endswith(pattern[1:])
    if ends:
        return value.startswith(pattern[:-1])
    return value == pattern
