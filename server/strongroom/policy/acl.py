"""The ACL: a token's policies merged and precompiled for fast checks.

Semantics follow Vault's ``vault/acl.go``: stanzas with the same pattern are
merged across policies (capabilities unioned, a ``deny`` erasing the rest);
a request is then judged by the single most specific matching pattern (exact,
else the highest-priority ``*``/``+`` pattern); a ``deny`` on a less specific
pattern does not override a more specific grant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from strongroom.core.request import Operation
from strongroom.policy.model import DENY, ROOT, ROOT_POLICY_NAME, Policy
from strongroom.policy.params import Permissions, check_parameters, merge_rule
from strongroom.policy.template import IdentityInfo, render

_OP_CAPABILITY = {
    Operation.READ: "read",
    Operation.LIST: "list",
    Operation.CREATE: "create",
    Operation.UPDATE: "update",
    Operation.PATCH: "patch",
    Operation.DELETE: "delete",
}
# Vault checks request parameters for these operations (read included: GET
# query parameters are request data too).
_PARAMETER_OPS = frozenset({Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.PATCH})


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :meth:`ACL.allowed_operation`.

    Attributes:
        allowed: Whether the request may proceed.
        root: The token holds the root policy.
        sudo: The matched rule grants sudo (always true for root).
        capabilities: The matched rule's capabilities (``{"root"}`` for root,
            empty when no rule matched).
        min_wrapping_ttl: The matched rule's bound in seconds, 0 if unset.
        max_wrapping_ttl: The matched rule's bound in seconds, 0 if unset.
        reason: Why, in words fit for a log line (never for the client).
    """

    allowed: bool
    root: bool
    sudo: bool
    capabilities: frozenset[str]
    min_wrapping_ttl: int
    max_wrapping_ttl: int
    reason: str


_ROOT_DECISION = Decision(True, True, True, frozenset({ROOT}), 0, 0, "root policy")
_HELP_DECISION = Decision(True, False, False, frozenset(), 0, 0, "help is always allowed")


def _decide(allowed: bool, perms: Permissions, reason: str) -> Decision:
    return Decision(
        allowed,
        False,
        perms.sudo,
        perms.capabilities,
        perms.min_wrapping_ttl,
        perms.max_wrapping_ttl,
        reason,
    )


_Priority = tuple[int, int, int, int, str]


def _priority(pattern: str, first_wildcard: int, is_prefix: bool, plus_count: int) -> _Priority:
    # Ascending = higher priority: a later first wildcard, no trailing `*`, fewer
    # `+` segments, a longer pattern, then (arbitrarily) the lexically greater.
    return (first_wildcard, 0 if is_prefix else 1, -plus_count, len(pattern), pattern)


@dataclass(frozen=True, slots=True)
class _Wildcard:
    """A ``*`` or ``+`` pattern, with its sort key from Vault's priority rules."""

    parts: tuple[str, ...]  # `+` patterns only: the segments, trailing `*` removed
    is_prefix: bool
    priority: _Priority
    perms: Permissions

    def matches(self, segments: list[str]) -> bool:
        parts, last = self.parts, len(self.parts) - 1
        if len(segments) < len(parts) or (not self.is_prefix and len(segments) != len(parts)):
            return False
        for i, part in enumerate(parts):
            segment = segments[i]
            if part != "+" and part != segment:
                if not (self.is_prefix and i == last and segment.startswith(part)):
                    return False
        return True


def _grants(perms: Permissions) -> bool:
    """Any capability but ``deny`` (which, merged, erases all others)."""
    return bool(perms.capabilities) and DENY not in perms.capabilities


def _reaches_mount(wildcard: _Wildcard, mount_parts: list[str]) -> bool:
    """Whether a ``+`` pattern can match some path under the mount.

    The bare-mount walk of Vault's ``CheckAllowedFromNonExactPaths``: the
    pattern's segments are matched against the mount's (``+`` matches any),
    up to the mount's last segment; ``mount_parts`` is the mount path split on
    ``/``, so it ends with an empty string.
    """
    last = len(wildcard.parts) - 1
    depth = len(mount_parts) - 2  # index of the mount's last segment
    matched: list[str] = []
    for i, part in enumerate(wildcard.parts):
        if i > depth:
            break
        segment = mount_parts[i]
        if part in ("+", segment):
            matched.append(segment)
        elif wildcard.is_prefix and i == last and segment.startswith(part):
            matched.extend(mount_parts[i:])
        if i == depth:
            return ("/".join(matched) + "/").startswith("/".join(mount_parts))
    return False


class ACL:
    """Every policy of one token, merged and compiled.

    Args:
        policies: The token's policies. Any policy named ``root`` makes this a
            root ACL that allows everything.
        identity: The token's entity, for templated stanzas; without it (or when a
            placeholder cannot be filled) they are skipped, as in Vault.
    """

    def __init__(self, policies: Sequence[Policy], identity: IdentityInfo | None = None) -> None:
        self.root = any(policy.name == ROOT_POLICY_NAME for policy in policies)
        merged: dict[tuple[str, str], Permissions] = {}
        for policy in policies:
            for rule in policy.paths:
                if rule.templated:
                    # Filled from the token's entity (policy/template.py); skipped when
                    # it cannot be, as Vault does.
                    filled = render(rule.path, identity)
                    if filled is None:
                        continue
                    rule = replace(rule, path=filled, templated=False)  # noqa: PLW2901
                path = rule.path
                if path == "+" or "/+" in path or path.startswith("+/"):
                    key = ("segment", path)
                elif path.endswith("*"):
                    key = ("prefix", path[:-1])
                else:
                    key = ("exact", path)
                if key in merged:
                    merge_rule(merged[key], rule)
                else:
                    merged[key] = Permissions(rule)

        self._exact: dict[str, Permissions] = {}
        self._prefix: dict[str, Permissions] = {}
        # `+` patterns are bucketed by their literal text before the first `+`,
        # which the request path must start with: a lookup then only tries the
        # buckets matching the path, not every pattern.
        self._buckets: dict[str, list[_Wildcard]] = {}
        for (kind, path), perms in merged.items():
            perms.freeze()
            if kind == "exact":
                self._exact[path] = perms
            elif kind == "prefix":
                self._prefix[path] = perms
            else:
                is_prefix = path.endswith("*")
                stem = path[:-1] if is_prefix else path
                parts = tuple(stem.split("/"))
                first = path.index("+")
                priority = _priority(stem, first, is_prefix, parts.count("+"))
                wildcard = _Wildcard(parts, is_prefix, priority, perms)
                self._buckets.setdefault(path[:first], []).append(wildcard)
        for bucket in self._buckets.values():
            bucket.sort(key=lambda w: w.priority, reverse=True)
        # Longest first: a later first wildcard is the first priority criterion.
        self._bucket_lengths = sorted({len(k) for k in self._buckets}, reverse=True)
        self._prefix_lengths = sorted({len(p) for p in self._prefix}, reverse=True)

    def allowed_operation(
        self,
        op: Operation,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        needs_sudo: bool = False,
        wrap_ttl: int | None = None,
    ) -> Decision:
        """Decide whether ``op`` on ``path`` is allowed, as Vault's ACL check does.

        Args:
            op: The request operation; HELP is always allowed.
            path: The request path (leading ``/`` ignored; a LIST path is given
                a trailing ``/`` if missing, as Vault's HTTP layer does).
            data: Request parameters, checked against the matched rule's
                allowed/denied/required parameters for read/create/update/patch.
            needs_sudo: The path is root-protected: require sudo too.
            wrap_ttl: The requested response-wrapping TTL in seconds, ``None``
                if unwrapped. A rule with wrapping bounds refuses unwrapped
                requests and TTLs outside them.

        Returns:
            The decision; ``allowed`` is False with a ``reason`` when refused.
        """
        if self.root:
            return _ROOT_DECISION
        if op == Operation.HELP:
            return _HELP_DECISION
        path = path.lstrip("/")
        is_list = op == Operation.LIST
        if is_list and not path.endswith("/"):
            path += "/"
        perms = self._lookup(path, is_list)
        if perms is None:
            return Decision(False, False, False, frozenset(), 0, 0, f"no rule matches {path!r}")
        capability = _OP_CAPABILITY.get(op)
        if capability is None or capability not in perms.capabilities:
            why = "denies it" if DENY in perms.capabilities else f"lacks {capability or op!r}"
            return _decide(False, perms, f"rule for {path!r} {why}")
        if perms.max_wrapping_ttl and (wrap_ttl is None or wrap_ttl > perms.max_wrapping_ttl):
            return _decide(False, perms, f"wrapping required, TTL <= {perms.max_wrapping_ttl}s")
        # Merged stanzas can leave max < min; then one of these two always refuses.
        if perms.min_wrapping_ttl and (wrap_ttl is None or wrap_ttl < perms.min_wrapping_ttl):
            return _decide(False, perms, f"wrapping required, TTL >= {perms.min_wrapping_ttl}s")
        if op in _PARAMETER_OPS and perms.checks_parameters:
            problem = check_parameters(perms, data or {})
            if problem:
                return _decide(False, perms, problem)
        if needs_sudo and not perms.sudo:
            return _decide(False, perms, f"{path!r} requires the sudo capability")
        return _decide(True, perms, f"granted {capability!r} on {path!r}")

    def capabilities(self, path: str) -> list[str]:
        """The capabilities this ACL has on ``path``, as ``sys/capabilities`` reports.

        Returns:
            ``["root"]`` for root; ``["deny"]`` when nothing matches, the rule
            denies, or it grants nothing; otherwise the sorted capability names.
        """
        if self.root:
            return [ROOT]
        # Vault evaluates this as a LIST, so `foo/` also finds a `foo` rule.
        perms = self._lookup(path.lstrip("/"), is_list=True)
        if perms is None or not perms.capabilities:
            return [DENY]
        return list(perms.sorted_capabilities)

    def has_mount_access(self, mount_path: str) -> bool:
        """Whether the token may see the mount at ``mount_path`` (e.g. ``secret/``).

        Vault's ``hasMountAccess`` (``vault/logical_system.go``), which answers
        ``sys/internal/ui/mounts``: any capability other than ``deny`` on the
        mount path itself or on any path under it, through an exact rule, a
        ``*`` rule or a ``+`` rule, grants it. A token with only
        ``read`` on ``secret/data/app/*`` thus sees ``secret/``.

        One deliberate difference: OpenBao's last step returns the longest
        ``*`` rule covering the mount without looking at its capabilities, so
        a lone ``path "secret/*" { capabilities = ["deny"] }`` lets the token
        see ``secret/``. Its own doc comment says that step returns "nil
        indicating no non-deny permissions were found"; Strongroom follows
        that intent and shows a mount to no token that is only denied there.
        """
        if self.root:
            return True
        if self.capabilities(mount_path) != [DENY]:
            return True
        for rules in (self._exact, self._prefix):
            if any(path.startswith(mount_path) and _grants(perms)
                   for path, perms in rules.items()):
                return True
        parts = mount_path.split("/")
        return any(_grants(w.perms) and _reaches_mount(w, parts)
                   for bucket in self._buckets.values() for w in bucket)

    def _lookup(self, path: str, is_list: bool) -> Permissions | None:
        perms = self._exact.get(path)
        if perms is not None:
            return perms
        trimmed = path[:-1] if is_list and path.endswith("/") else None
        if trimmed is not None:
            perms = self._exact.get(trimmed)
            if perms is not None:
                return perms
        # The full path's glob rules before the trimmed path's: the other order let
        # `list` on `a/*` win over `deny` on `a/private/*` for `LIST a/private/`
        # (advisory GHSA-xp3c-3jw3-4vcr; fixed in OpenBao 2.6.0 the same way).
        perms = self._non_exact(path)
        if perms is None and trimmed is not None:
            perms = self._non_exact(trimmed)
        return perms

    def _non_exact(self, path: str) -> Permissions | None:
        prefix: str | None = None
        for length in self._prefix_lengths:
            if length <= len(path) and path[:length] in self._prefix:
                prefix = path[:length]
                break
        # Only the longest prefix rule can win among prefixes (its wildcard is
        # latest), so it alone competes with the `+` patterns.
        found = None if prefix is None else self._prefix[prefix]
        if not self._buckets:
            return found
        prefix_length = -1 if prefix is None else len(prefix)
        # With no prefix match, a floor no real pattern's priority falls below.
        prefix_priority = _priority(prefix or "", prefix_length, True, 0)
        segments: list[str] | None = None
        for length in self._bucket_lengths:
            if length < prefix_length:
                break  # every remaining pattern's first wildcard is earlier
            bucket = self._buckets.get(path[:length])
            if bucket is None:
                continue
            if segments is None:
                segments = path.split("/")
            for wildcard in bucket:
                if wildcard.priority < prefix_priority:
                    break  # the prefix pattern outranks the rest of this bucket
                if wildcard.matches(segments):
                    return wildcard.perms
        return found
