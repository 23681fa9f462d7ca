"""Token creation: Vault's handleCreateCommon, one check at a time, in Vault's order."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.core.logical import Auth
from strongroom.core.request import Request, Response
from strongroom.core.token_batch import BATCH_TYPE
from strongroom.core.token_roles import has_policy_rules, role_policies, sanitize_policies
from strongroom.core.token_ttl import calculate_ttl
from strongroom.core.tokens import TokenEntry
from strongroom.errors import BadRequestError
from strongroom.framework import FieldData
from strongroom.framework.gotypes import (
    SECOND_NS,
    GoParseError,
    duration_seconds,
    parse_go_duration,
    weak_string,
)

if TYPE_CHECKING:
    from strongroom.core.core import Core

_DISPLAY_NAME = re.compile(r"[^a-zA-Z0-9-]")
_NOT_ASSIGNABLE = ("response-wrapping", "control-group")
# The policy store's longest name (core/policy_store.py): a longer one can never
# name a policy, and refusing it bounds what role globs and ACL lookups get to
# chew on. Vault sets no limit (OpenBao 2.7 issues the token with a warning).
MAX_POLICY_NAME = 128


def _duration(data: FieldData, name: str) -> int:
    """One of Vault's string duration fields of token creation, in seconds.

    Vault decodes them as strings (true is "1") and parses them in the handler
    with Go's int64 limits, so nothing that would overflow a TTL is accepted.
    """
    if not data.has(name):
        return 0
    try:
        text = weak_string(data.get(name))
    except GoParseError as exc:
        raise BadRequestError(f"Field validation failed: error converting input for field "
                              f'"{name}": \'\' {exc}') from None
    if text == "":
        return 0
    try:
        # The old "lease" field takes Go's duration syntax only (time.ParseDuration).
        seconds = (parse_go_duration(text) // SECOND_NS if name == "lease"
                   else duration_seconds(text))
    except GoParseError as exc:
        raise BadRequestError(str(exc)) from None
    if seconds < 0:
        raise BadRequestError(f"{name} must be positive")
    return seconds


def _token_type(data: FieldData, role: dict[str, Any] | None) -> str:
    wanted = data.get("type") or ""
    if role is not None:
        role_type = role["token_type"]
        if role_type == "default-batch" and not wanted:
            wanted = "batch"
        elif role_type in ("service", "batch"):
            wanted = role_type
    if wanted in ("", "service"):
        return "service"
    if wanted != "batch":
        raise BadRequestError("invalid 'token_type' value")
    for name in ("explicit_max_ttl", "num_uses", "period"):
        if data.has(name):
            if data.get(name) if name == "num_uses" else _duration(data, name):
                raise BadRequestError(f'batch tokens cannot have "{name}" set')
            break  # Vault's switch stops at the first field given, zero or not
    return "batch"


def _policies(data: FieldData, parent: TokenEntry, role: dict[str, Any] | None,
              sudo: bool) -> list[str]:
    raw = data.raw.get("policies")
    # Vault weak-decodes the body: a string is one policy name, not a comma list.
    requested = [raw] if isinstance(raw, str) else list(data.get("policies") or [])
    for name in requested:
        if len(name.strip()) > MAX_POLICY_NAME:
            raise BadRequestError(f"policy name is too long: {len(name.strip())} characters, "
                                  f"the limit is {MAX_POLICY_NAME}")
    no_default = bool(data.get("no_default_policy"))
    add_default = False
    if role is not None and has_policy_rules(role):
        requested = role_policies(role, requested, no_default, parent.policies)
    elif not requested:
        requested = sanitize_policies(parent.policies, add_default=False)
    elif not sudo:
        if not set(sanitize_policies(requested, False)) <= set(
                sanitize_policies(parent.policies, False)):
            raise BadRequestError("child policies must be subset of parent")
        add_default = not no_default and "default" in parent.policies
    else:
        add_default = not no_default
    policies = sanitize_policies(requested, add_default)
    if no_default:
        policies = [p for p in policies if p != "default"]
    for policy in policies:
        if policy in _NOT_ASSIGNABLE:
            raise BadRequestError(f'cannot assign policy "{policy}"')
    return policies


def _check_custom_id(token_id: str, sudo: bool) -> None:
    if not sudo:
        raise BadRequestError("root or sudo privileges required to specify token id")
    if token_id.startswith("hvs."):
        raise BadRequestError("custom token ID cannot have the 'hvs.' prefix")
    if token_id.startswith("s."):
        raise BadRequestError("custom token ID cannot have the 's.' prefix")
    if "." in token_id:
        raise BadRequestError("custom token ID cannot have a '.' in the value")


def _merge(requested: int, from_role: int, what: str, warnings: list[str]) -> int:
    """The lesser of a creation value and the role's, as Vault merges period and max TTL."""
    if not from_role:
        return requested
    if not requested:
        return from_role
    lesser = min(requested, from_role)
    warnings.append(f"{what} specified both during creation call and in role; using the "
                    f"lesser value of {lesser} seconds")
    return lesser


def issue(core: Core, req: Request, data: FieldData, rel_path: str, *, orphan: bool,
          role: dict[str, Any] | None) -> Response:
    """Create a token as ``req``'s token (the parent) asks; ``rel_path`` names the endpoint."""
    parent = req.token_entry
    assert parent is not None, "the core authenticates before routing"
    if parent.type == "batch":
        raise BadRequestError("batch tokens cannot create more tokens")
    if parent.num_uses < 0:  # on its last use: Vault's (untainted) lookup misses it
        raise BadRequestError("parent token lookup failed: no parent found")
    if parent.num_uses > 0:  # a child would escape the use count
        raise BadRequestError("restricted use token cannot generate child tokens")
    sudo = "root" in parent.policies or core.has_sudo(parent, req.path)
    renewable = bool(data.get("renewable"))
    token_type = _token_type(data, role)
    batch = token_type == BATCH_TYPE
    num_uses = int(data.get("num_uses"))
    if num_uses < 0:
        raise BadRequestError("number of uses cannot be negative")
    if data.get("entity_alias"):
        if role is None:
            raise BadRequestError("'entity_alias' is only allowed in combination with token role")
        raise BadRequestError("invalid 'entity_alias' value")  # no identity store (yet)

    path = "auth/token/" + rel_path
    if role is not None:
        renewable = renewable and bool(role["renewable"])
        if role["token_num_uses"] and (not num_uses or role["token_num_uses"] < num_uses):
            num_uses = role["token_num_uses"]
        if role["path_suffix"]:
            path += "/" + role["path_suffix"]
    display = "token"
    if data.get("display_name"):
        display = _DISPLAY_NAME.sub("-", "token-" + data.get("display_name")).removesuffix("-")
    token_id = data.get("id") or ""
    if token_id:
        _check_custom_id(token_id, sudo)

    policies = _policies(data, parent, role, sudo)
    if "root" in policies:
        if "root" not in parent.policies:
            raise BadRequestError("root tokens may not be created without parent token being "
                                  "root")
        if batch:
            raise BadRequestError("batch tokens cannot be root tokens")

    if role is not None:
        orphan = bool(role["orphan"])
    elif data.get("no_parent"):
        if not sudo:
            raise BadRequestError("root or sudo privileges required to create orphan token")
        orphan = True

    explicit_max = _duration(data, "explicit_max_ttl")
    period = _duration(data, "period")
    if period and not sudo:
        raise BadRequestError("root or sudo privileges required to create periodic token")
    ttl = _duration(data, "ttl") if data.get("ttl") not in (None, "") else _duration(
        data, "lease")
    warnings: list[str] = []
    max_to_use, period_to_use = explicit_max, period
    if role is not None and not batch:
        max_to_use = _merge(explicit_max, role["token_explicit_max_ttl"], "Explicit max TTL",
                            warnings)
        period_to_use = _merge(period, role["token_period"], "Period", warnings)
    now = core.now()
    if period_to_use or ttl or "root" not in policies:
        ttl, ttl_warnings = calculate_ttl(
            default_ttl=core.default_lease_ttl, max_ttl=core.max_lease_ttl, increment=0,
            backend_ttl=ttl, period=period_to_use, explicit_max=max_to_use, start=int(now),
            now=int(now))
        warnings += ttl_warnings
    if not ttl and max_to_use:
        ttl = max_to_use
    if not ttl:
        if parent.expire_at:
            raise BadRequestError("expiring root tokens cannot create non-expiring root tokens")
        renewable = False

    existing = set(core.policies.names())
    warnings += [f'Policy "{p}" does not exist' for p in policies if p not in existing]
    # The pipeline's login stage issues the token (core/results.py), as for every login.
    auth = Auth(
        policies=policies,
        metadata={str(k): str(v) for k, v in (data.get("meta") or {}).items()},
        display_name=display,
        ttl=ttl,
        explicit_max_ttl=explicit_max,
        period=period,
        num_uses=num_uses,
        renewable=renewable and not batch,
        token_type=token_type,
        orphan=orphan,
        creation_path=path,
        role=role["name"] if role is not None else "",
        token_id=token_id,
        bound_cidrs=list(role.get("token_bound_cidrs") or []) if role is not None else [],
    )
    return Response(auth=auth, warnings=warnings)
