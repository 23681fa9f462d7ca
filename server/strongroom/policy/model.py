"""Parsed ACL policies: immutable values shared by the parser and the ACL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from strongroom.errors import BadRequestError

# A value in allowed_parameters/denied_parameters; nested lists are frozen to tuples.
ParamValue: TypeAlias = "str | int | float | bool | tuple[ParamValue, ...]"

DENY = "deny"
SUDO = "sudo"
ROOT = "root"
# The capabilities Vault Community Edition documents. `subscribe` (event
# notifications) and `recover` (snapshot recovery) are Enterprise-only there.
CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", SUDO, DENY})

ROOT_POLICY_NAME = "root"
DEFAULT_POLICY_NAME = "default"
RESPONSE_WRAPPING_POLICY_NAME = "response-wrapping"
CONTROL_GROUP_POLICY_NAME = "control-group"
# Names sys/policy may never write (Vault's immutablePolicies) ...
IMMUTABLE_POLICY_NAMES = frozenset(
    {ROOT_POLICY_NAME, RESPONSE_WRAPPING_POLICY_NAME, CONTROL_GROUP_POLICY_NAME}
)
# ... and may never delete: those plus `default`, which may be edited but must exist.
UNDELETABLE_POLICY_NAMES = IMMUTABLE_POLICY_NAMES | {DEFAULT_POLICY_NAME}


class PolicyError(BadRequestError):
    """A policy document or name is invalid; the message says what and where."""


@dataclass(frozen=True, slots=True)
class PathRule:
    """One ``path "..." { ... }`` stanza, validated.

    Attributes:
        path: The pattern as written, minus one leading ``/``: exact, a prefix
            ending in ``*``, and/or with ``+`` segment wildcards.
        capabilities: Capability names; exactly ``{"deny"}`` when deny is present.
        allowed_parameters: Lower-cased parameter name -> allowed values (empty
            tuple = any value); empty mapping = no restriction.
        denied_parameters: Same shape; values here are refused.
        required_parameters: Names that must be present in the request data.
        min_wrapping_ttl: Seconds; 0 = unset.
        max_wrapping_ttl: Seconds; 0 = unset.
        templated: The path holds ``{{identity...}}`` placeholders.
    """

    path: str
    capabilities: frozenset[str]
    allowed_parameters: Mapping[str, tuple[ParamValue, ...]]
    denied_parameters: Mapping[str, tuple[ParamValue, ...]]
    required_parameters: tuple[str, ...] = ()
    min_wrapping_ttl: int = 0
    max_wrapping_ttl: int = 0
    templated: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """A named ACL policy.

    Attributes:
        name: Normalized (trimmed, lower-case) name.
        raw: The document exactly as submitted, for ``sys/policy`` reads.
        paths: The stanzas in document order (repeats kept; the ACL merges them).
    """

    name: str
    raw: str
    paths: tuple[PathRule, ...]

    @classmethod
    def root(cls) -> Policy:
        """The built-in ``root`` policy: no rules; the ACL allows everything by name."""
        return cls(name=ROOT_POLICY_NAME, raw="", paths=())

    @property
    def templated(self) -> bool:
        """Whether any path uses identity templating."""
        return any(rule.templated for rule in self.paths)
