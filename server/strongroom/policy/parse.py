"""Parse and validate Vault ACL policy documents (HCL or JSON).

Error messages follow Vault's (``failed to parse policy: path "x": ...``) so
clients that surface them read the same as against Vault.
"""

from __future__ import annotations

import base64
import binascii
import json
from types import MappingProxyType

from strongroom.config import ConfigError, parse_duration
from strongroom.policy._hcl import HCLSyntaxError, Item, Obj, Value, read_document
from strongroom.policy.model import (
    CAPABILITIES,
    DENY,
    ROOT_POLICY_NAME,
    ParamValue,
    PathRule,
    Policy,
    PolicyError,
)

# Policy, PathRule and PolicyError are re-exported: callers import them from here.
__all__ = [
    "PathRule",
    "Policy",
    "PolicyError",
    "decode_policy_body",
    "normalize_policy_name",
    "parse_policy",
]

_RULE_KEYS = frozenset(
    {
        "comment",
        "policy",
        "capabilities",
        "allowed_parameters",
        "denied_parameters",
        "required_parameters",
        "min_wrapping_ttl",
        "max_wrapping_ttl",
    }
)
# Keys Vault parses for Enterprise features. Accepting and ignoring them would
# silently drop an MFA or control-group requirement, so they are refused.
_ENTERPRISE_KEYS = frozenset({"mfa_methods", "control_group", "subscribe_event_types"})
# The deprecated `policy = "..."` shorthand, expanded as Vault does.
_SHORTHAND = {
    "deny": (DENY,),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}


def normalize_policy_name(name: str) -> str:
    """Trim and lower-case a policy name, as Vault's policy store does.

    Raises:
        PolicyError: The name is empty.
    """
    normalized = name.strip().lower()
    if not normalized:
        raise PolicyError("policy name must be provided")
    return normalized


def decode_policy_body(body: str) -> str:
    """Return ``body`` base64-decoded if it is valid standard base64, else unchanged.

    Vault's ``sys/policy`` write accepts the document base64-encoded and tries
    Go's ``base64.StdEncoding`` (padded, CR/LF ignored) on every submission.
    """
    compact = body.replace("\r", "").replace("\n", "")
    # Go insists on whole padded quanta; Python alone would accept "YWJj=".
    if not compact or len(compact) % 4:
        return body
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return body
    # Go keeps arbitrary bytes and lets the parser fail; replacement does the same.
    return decoded.decode("utf-8", errors="replace")


def parse_policy(name: str, text: str) -> Policy:
    """Parse a policy document into a validated :class:`Policy`.

    Args:
        name: Policy name; normalized with :func:`normalize_policy_name`. ``root``
            is refused: it is built in (:data:`strongroom.policy.ROOT_POLICY`).
        text: HCL1 or JSON policy text (already base64-decoded).

    Returns:
        The policy, keeping ``text`` verbatim as ``raw``.

    Raises:
        PolicyError: Bad name, invalid syntax, unknown key, unknown capability,
            misplaced wildcard, bad parameter or TTL.
    """
    normalized = normalize_policy_name(name)
    if normalized == ROOT_POLICY_NAME:
        raise PolicyError('cannot update "root" policy')
    try:
        document = read_document(text)
    except HCLSyntaxError as exc:
        raise _fail(str(exc)) from None
    rules: list[PathRule] = []
    for item in document.items:
        if item.keys == ("name",) and isinstance(item.value, str):
            continue  # Vault reads it, then the store overrides it with the URL name.
        if item.keys[0] == "name":
            raise _fail(f"name must be a string{_at(item)}")
        if item.keys[0] != "path":
            raise _fail(f"invalid key {_q(item.keys[0])}{_at(item)}")
        rules.extend(_parse_rule(pattern, body, item) for pattern, body in _path_entries(item))
    return Policy(name=normalized, raw=text, paths=tuple(rules))


def _q(value: object) -> str:
    # Go's %q, which Vault's messages use: double quotes, JSON-style escapes.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _fail(message: str) -> PolicyError:
    return PolicyError(f"failed to parse policy: {message}")


def _at(item: Item) -> str:
    return f" on line {item.line}" if item.line else ""


def _path_entries(item: Item) -> list[tuple[str, Value]]:
    # HCL gives `path "x" { }` as keys ("path", "x"); JSON gives {"path": {"x": {}}}
    # or {"path": [{"x": {}}, ...]}, which HCL's JSON reader flattens the same way.
    if len(item.keys) == 2:
        return [(item.keys[1], item.value)]
    if len(item.keys) == 1:
        groups = item.value if isinstance(item.value, tuple) else (item.value,)
        objects = [group for group in groups if isinstance(group, Obj)]
        entries = [entry for group in objects for entry in group.items]
        if len(objects) == len(groups) and all(
            len(entry.keys) == 1 and isinstance(entry.value, Obj) for entry in entries
        ):
            return [(entry.keys[0], entry.value) for entry in entries]
    raise _fail(f'path stanzas take exactly one pattern: path "<pattern>" {{ ... }}{_at(item)}')


def _parse_rule(pattern: str, body: Value, item: Item) -> PathRule:
    where = f"path {_q(pattern)}"
    if not isinstance(body, Obj):
        raise _fail(f"{where}: expected a {{ ... }} block{_at(item)}")
    fields: dict[str, Value] = {}
    for entry in body.items:
        key = entry.keys[0]
        if key in _ENTERPRISE_KEYS:
            raise _fail(f"{where}: {_q(key)} is a Vault Enterprise feature and is not supported")
        if key not in _RULE_KEYS or len(entry.keys) != 1:
            raise _fail(f"{where}: invalid key {_q(key)}{_at(entry)}")
        if key in fields:
            raise _fail(f"{where}: duplicate key {_q(key)}{_at(entry)}")
        fields[key] = entry.value

    path = pattern[1:] if pattern.startswith("/") else pattern
    _check_pattern(where, path)
    caps = _capabilities(where, fields)
    allowed = _parameters(where, "allowed_parameters", fields.get("allowed_parameters"))
    denied = _parameters(where, "denied_parameters", fields.get("denied_parameters"))
    required = _required(where, fields.get("required_parameters"))
    min_ttl = _ttl(where, "min_wrapping_ttl", fields.get("min_wrapping_ttl"))
    max_ttl = _ttl(where, "max_wrapping_ttl", fields.get("max_wrapping_ttl"))
    if min_ttl and max_ttl and max_ttl < min_ttl:
        raise _fail(f"{where}: max_wrapping_ttl cannot be less than min_wrapping_ttl")
    templated = "{{" in path
    if DENY in caps:
        # Vault stops reading a deny stanza at the capability: nothing else applies.
        return PathRule(path, caps, _EMPTY, _EMPTY, templated=templated)
    return PathRule(path, caps, allowed, denied, required, min_ttl, max_ttl, templated)


_EMPTY: MappingProxyType[str, tuple[ParamValue, ...]] = MappingProxyType({})


def _check_pattern(where: str, path: str) -> None:
    if "+*" in path:
        raise _fail(f"{where}: invalid use of wildcards ('+*' is forbidden)")
    if "*" in path[:-1]:
        # Vault would take such a `*` literally; its docs allow the glob only last.
        raise _fail(f"{where}: the glob '*' is only allowed as the last character")
    # Identity templates must balance: each "{{" needs exactly one "}}" after it.
    for piece in path.split("{{")[1:]:
        if piece.count("}}") != 1:
            raise _fail(f"{where}: failed to validate policy templating: unbalanced braces")


def _capabilities(where: str, fields: dict[str, Value]) -> frozenset[str]:
    raw = fields.get("capabilities", ())
    if not isinstance(raw, tuple) or not all(isinstance(c, str) for c in raw):
        raise _fail(f"{where}: capabilities must be a list of strings")
    caps = [str(c) for c in raw]
    if "policy" in fields:
        shorthand = fields["policy"]
        if not isinstance(shorthand, str) or shorthand not in _SHORTHAND:
            raise _fail(f"{where}: invalid policy {_q(shorthand)}")
        caps.extend(_SHORTHAND[shorthand])
    for cap in caps:
        if cap not in CAPABILITIES:
            raise _fail(f"{where}: invalid capability {_q(cap)}")
    # deny excludes everything else, whatever else was listed.
    return frozenset({DENY}) if DENY in caps else frozenset(caps)


def _parameters(
    where: str, label: str, raw: Value | None
) -> MappingProxyType[str, tuple[ParamValue, ...]]:
    if raw is None:
        return _EMPTY
    if not isinstance(raw, Obj):
        raise _fail(f"{where}: {label} must be a map of parameter name to list of values")
    parsed: dict[str, tuple[ParamValue, ...]] = {}
    for entry in raw.items:
        key = entry.keys[0].lower()
        if len(entry.keys) != 1 or not isinstance(entry.value, tuple):
            raise _fail(f"{where}: {label}: parameter {_q(key)} must map to a list of values")
        if "*" in key and key != "*":
            raise _fail(
                f"{where}: {label}: parameter key {_q(key)} cannot contain non-tail wildcards"
            )
        if key.startswith("/"):
            # Recent Vault reads these as JSON pointers into nested data; matching
            # them literally would silently not enforce them, so refuse instead.
            raise _fail(f"{where}: {label}: JSON-pointer parameter key {_q(key)} is not supported")
        if key in parsed:
            raise _fail(f"{where}: {label}: duplicate parameter {_q(key)}")
        parsed[key] = tuple(_param_value(where, label, v) for v in entry.value)
    return MappingProxyType(parsed)


def _param_value(where: str, label: str, value: Value) -> ParamValue:
    if isinstance(value, Obj):
        raise _fail(f"{where}: {label}: values must be strings, numbers, booleans or lists")
    if isinstance(value, tuple):
        return tuple(_param_value(where, label, v) for v in value)
    return value


def _required(where: str, raw: Value | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, tuple) or not all(isinstance(p, str) for p in raw):
        raise _fail(f"{where}: required_parameters must be a list of strings")
    for name in raw:
        if "*" in str(name):
            raise _fail(
                f"{where}: required_parameters: parameter key {_q(name)}: "
                "wildcard is not permitted here"
            )
    return tuple(str(name) for name in raw)


def _ttl(where: str, label: str, raw: Value | None) -> int:
    if raw is None:
        return 0
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # JSON documents may spell 60 as 60.0
    try:
        return parse_duration(raw)
    except ConfigError as exc:
        raise _fail(f"{where}: error parsing {label}: {exc.reason}") from None
