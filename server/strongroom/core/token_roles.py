"""``auth/token/roles/<name>``: named templates that constrain token creation.

Stored with Vault's field names, including the deprecated ``period`` and
``explicit_max_ttl`` (kept apart from their ``token_`` successors so a read
returns what was written, as Vault does).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from strongroom.auth.tokenutil import parse_cidrs
from strongroom.barrier.view import StorageView
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_batch import BATCH_TYPE
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.framework.globmatch import glob_any

if TYPE_CHECKING:
    from strongroom.core.core import Core

_LIST, _DUR = FieldType.LIST, FieldType.DURATION
_ROLE_FIELDS = {
    "role_name": Field(FieldType.STRING),
    "allowed_policies": Field(_LIST), "disallowed_policies": Field(_LIST),
    "allowed_policies_glob": Field(_LIST), "disallowed_policies_glob": Field(_LIST),
    "orphan": Field(FieldType.BOOL), "renewable": Field(FieldType.BOOL),
    "path_suffix": Field(FieldType.STRING),
    "token_period": Field(_DUR), "period": Field(_DUR),
    "token_explicit_max_ttl": Field(_DUR), "explicit_max_ttl": Field(_DUR),
    "token_type": Field(FieldType.STRING), "token_no_default_policy": Field(FieldType.BOOL),
    "token_num_uses": Field(FieldType.INT), "allowed_entity_aliases": Field(_LIST),
    "token_bound_cidrs": Field(_LIST), "bound_cidrs": Field(_LIST),
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_PATH_SUFFIX = re.compile(r"\w[\w\-.]+\w", re.ASCII)  # Go MatchString: found anywhere
_TOKEN_TYPES = ("service", "batch", "default-service", "default-batch")


def sanitize_policies(policies: list[str], add_default: bool) -> list[str]:
    """Vault's policyutil.SanitizePolicies: trimmed, lowercased, sorted, root alone."""
    cleaned = [p.strip().lower() for p in policies]
    if "root" in cleaned:
        return ["root"]
    if add_default and "default" not in cleaned:
        cleaned.append("default")
    return sorted({p for p in cleaned if p})


def dedupe(items: list[str]) -> list[str]:
    """Vault's strutil.RemoveDuplicates(items, lowercase=true)."""
    return sorted({i.strip().lower() for i in items if i.strip()})


def go_quote(values: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _defaults(name: str) -> dict[str, Any]:
    return {
        "name": name, "allowed_policies": [], "disallowed_policies": [],
        "allowed_policies_glob": [], "disallowed_policies_glob": [], "orphan": False,
        "renewable": True, "path_suffix": "", "period": 0, "token_period": 0,
        "explicit_max_ttl": 0, "token_explicit_max_ttl": 0, "token_type": "default-service",
        "token_no_default_policy": False, "token_num_uses": 0, "allowed_entity_aliases": None,
    }


class TokenRoles:
    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def _storage(self) -> StorageView:
        return StorageView(self._core.barrier, "sys/token/roles/")

    def paths(self) -> list[Path]:
        return [
            Path("roles/?", {Operation.LIST: self._list}),
            Path(
                "roles/(?P<role_name>[^/]+)",
                {Operation.READ: self._read, Operation.UPDATE: self._write,
                 Operation.DELETE: self._delete},
                _ROLE_FIELDS,
            ),
        ]

    def get(self, name: str) -> dict[str, Any] | None:
        if not _NAME.match(name):
            return None
        raw = self._storage.get(name)
        if raw is None:
            return None
        role = {**_defaults(name), **json.loads(raw)}
        # Vault's upgrade of roles written before the token_ fields existed.
        if role["period"] > 0 and not role["token_period"]:
            role["token_period"] = role["period"]
        if role["explicit_max_ttl"] > 0 and not role["token_explicit_max_ttl"]:
            role["token_explicit_max_ttl"] = role["explicit_max_ttl"]
        return role

    def _list(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = self._storage.list("")
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        role = self.get(m.group("role_name"))
        if role is None:
            raise NotFoundError("")  # Vault: a nil read answers 404 with no errors
        shown = {k: v for k, v in role.items() if k != "token_num_uses"}
        if role["token_num_uses"] > 0:
            shown["token_num_uses"] = role["token_num_uses"]
        return Response(data=shown)

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        # Vault's d.Get("role_name"): the URL's value, which wins over the body's.
        name = str(data.get("role_name"))
        if not _NAME.match(name):
            raise BadRequestError("invalid role name")
        role = self.get(name) or _defaults(name)
        for key in ("orphan", "renewable", "token_no_default_policy"):
            if data.has(key):
                role[key] = bool(data.get(key))
        if data.has("path_suffix"):
            suffix = data.get("path_suffix")
            if suffix and not _PATH_SUFFIX.search(suffix):
                raise BadRequestError("given role path suffix contains invalid characters; "
                                      r"must match \w[\w-.]+\w")
            role["path_suffix"] = suffix
        if ".." in role["path_suffix"]:
            raise BadRequestError("error registering path suffix: path cannot contain parent "
                                  "references")
        for key in ("allowed_policies", "allowed_policies_glob"):
            if data.has(key):
                role[key] = sanitize_policies(data.get(key), add_default=False)
        for key in ("disallowed_policies", "disallowed_policies_glob", "allowed_entity_aliases"):
            if data.has(key):
                role[key] = dedupe(data.get(key))
        for key in ("token_bound_cidrs", "bound_cidrs"):
            if data.has(key):
                try:
                    cidrs = parse_cidrs(data.get(key), key)
                except BadRequestError as exc:
                    raise BadRequestError(f"error parsing role fields: {exc.message}") from None
                # Shown on a read only when set, as Vault's role read does; the deprecated
                # name is kept (and shown) only while it is what set them (UpgradeValue).
                role.pop("token_bound_cidrs", None)
                role.pop("bound_cidrs", None)
                if cidrs:
                    role["token_bound_cidrs"] = cidrs
                    if data.has("bound_cidrs"):
                        role["bound_cidrs"] = cidrs
                break  # token_bound_cidrs wins over the deprecated bound_cidrs
        if "token_type" in data.raw:
            token_type = data.raw["token_type"]
            if token_type is None:
                raise BadRequestError("Invalid 'token_type' value: null")
            if token_type not in _TOKEN_TYPES:
                raise BadRequestError(f"invalid 'token_type' value {go_quote([token_type])[1:-1]}")
            role["token_type"] = token_type
        if data.has("token_num_uses"):
            if data.get("token_num_uses") < 0:
                raise BadRequestError("error parsing role fields: 'token_num_uses' cannot be "
                                      "negative")
            role["token_num_uses"] = int(data.get("token_num_uses"))
        _check_stored_batch(role, data)
        warnings = self._durations(role, data)
        _check_batch(role)
        self._storage.put(name, json.dumps(role).encode())
        return Response(warnings=warnings) if warnings else None

    def _durations(self, role: dict[str, Any], data: FieldData) -> list[str]:
        """Vault's backwards compatibility: token_ fields win; the old ones mirror into them."""
        warnings = []
        for new, old in (("token_period", "period"), ("token_explicit_max_ttl",
                                                      "explicit_max_ttl")):
            if data.has(new):
                role[new] = int(data.get(new))
                role[old] = 0
                if data.has(old):
                    warnings.append(f"Both '{new}' and deprecated '{old}' value supplied, "
                                    "ignoring the deprecated value")
            elif data.has(old):
                role[old] = role[new] = int(data.get(old))
        explicit, max_ttl = role["token_explicit_max_ttl"], self._core.max_lease_ttl
        if explicit and explicit > max_ttl:
            warnings.append(
                f"Given explicit max TTL of {explicit} is greater than system/mount allowed "
                f"value of {max_ttl} seconds; until this is fixed attempting to create tokens "
                "against this role will result in an error")
        return warnings

    def _delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        if _NAME.match(m.group("role_name")):
            self._storage.delete(m.group("role_name"))


def _check_stored_batch(role: dict[str, Any], data: FieldData) -> None:
    """Vault's tokenutil checks a role's stored batch type when a write leaves it alone."""
    if "token_type" in data.raw or role["token_type"] not in (BATCH_TYPE, "default-batch"):
        return
    period = data.get("token_period") if data.has("token_period") else role["token_period"]
    reason = ("generate periodic tokens" if period else
              "generate tokens with limited use count" if role["token_num_uses"] else "")
    if reason:
        raise BadRequestError("error parsing role fields: 'token_type' cannot be 'batch' or "
                              f"'default_batch' when set to {reason}")


def _check_batch(role: dict[str, Any]) -> None:
    if role["token_type"] != BATCH_TYPE:
        return
    reason = ("generate non-orphan tokens" if not role["orphan"] else
              "generate periodic tokens" if role["period"] or role["token_period"] else
              "generate renewable tokens" if role["renewable"] else
              "generate tokens with an explicit max TTL"
              if role["explicit_max_ttl"] or role["token_explicit_max_ttl"] else "")
    if reason:
        raise BadRequestError(f"'token_type' cannot be 'batch' when role is set to {reason}")


def role_policies(role: dict[str, Any], requested: list[str], no_default: bool,
                  parent_policies: list[str]) -> list[str]:
    """A role's policy rules, when it has any (Vault's handleCreateCommon, role case)."""
    disallowed, disallowed_glob = role["disallowed_policies"], role["disallowed_policies_glob"]
    add_default = (not no_default and not role["token_no_default_policy"]
                   and "default" not in disallowed and not glob_any(disallowed_glob, "default"))
    final = sanitize_policies(requested, add_default) if requested else []
    if role["allowed_policies"] or role["allowed_policies_glob"]:
        allowed = sanitize_policies(role["allowed_policies"], add_default)
        if not final:
            final = allowed
        else:
            allowed_glob = sanitize_policies(role["allowed_policies_glob"], False)
            allowed_set = set(allowed)
            if any(p not in allowed_set and not glob_any(allowed_glob, p) for p in final):
                raise BadRequestError(
                    f"token policies ({go_quote(final)}) must be subset of the role's allowed "
                    f"policies ({go_quote(allowed)}) or glob policies ({go_quote(allowed_glob)})")
    elif not final:
        final = sanitize_policies(parent_policies, add_default)
    # Computed once, not per requested policy: a request may name many.
    refused, refused_glob = set(dedupe(disallowed)), dedupe(disallowed_glob)
    for policy in final:
        if policy in refused or glob_any(refused_glob, policy):
            raise BadRequestError(f"token policy {go_quote([policy])[1:-1]} is disallowed by "
                                  "this role")
    return final


def has_policy_rules(role: dict[str, Any]) -> bool:
    return any(role[k] for k in ("allowed_policies", "disallowed_policies",
                                 "allowed_policies_glob", "disallowed_policies_glob"))
