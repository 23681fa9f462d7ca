"""``groups/<name>`` (policies of a directory group) and ``users/<name>`` (policies and
extra groups of one user), each with its LIST. Names are lower-cased unless the config
says ``case_sensitive_names``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_roles import sanitize_policies
from strongroom.framework import Field, FieldData, FieldType, Path

if TYPE_CHECKING:
    from . import LdapBackend

GROUP = "group/"
USER = "user/"
_NOT_FOUND: dict[str, list[str]] = {"errors": []}
_NAME = Field(FieldType.STRING)
_LIST = Field(FieldType.LIST)


def dedupe(items: list[str], lower: bool) -> list[str]:
    """Vault's strutil.RemoveDuplicates: trimmed, empty dropped, sorted."""
    return sorted({(i.strip().lower() if lower else i.strip()) for i in items if i.strip()})


def _collect(b: LdapBackend, prefix: str) -> list[str]:
    """Every key under ``prefix``, at any depth (names may contain '/')."""
    out: list[str] = []
    pending = [""]
    while pending:
        sub = pending.pop()
        for key in b.ctx.storage.list(prefix + sub):
            if key.endswith("/"):
                pending.append(sub + key)
            else:
                out.append(sub + key)
    return sorted(out)


def load(b: LdapBackend, prefix: str, name: str) -> dict[str, Any] | None:
    raw = b.ctx.storage.get(prefix + name)
    return json.loads(raw) if raw is not None else None


def paths(b: LdapBackend) -> list[Path]:
    def canonical(name: str) -> str:
        return name if b.config().case_sensitive_names else name.lower()

    def listing(prefix: str) -> Any:
        def handler(req: Request, data: FieldData, m: re.Match[str]) -> Response:
            keys = _collect(b, prefix)
            if not keys:
                return Response(status=404, raw=True, data=dict(_NOT_FOUND))
            return Response(data={"keys": keys})
        return handler

    def read_group(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        group = load(b, GROUP, canonical(m.group("name")))
        if group is None:
            return Response(status=404, raw=True, data=dict(_NOT_FOUND))
        return Response(data={"policies": group.get("policies") or []})

    def write_group(req: Request, data: FieldData, m: re.Match[str]) -> None:
        policies = sanitize_policies(list(data.get("policies") or []), add_default=False)
        b.ctx.storage.put(GROUP + canonical(m.group("name")),
                          json.dumps({"policies": policies}).encode())

    def read_user(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        user = load(b, USER, canonical(m.group("name")))
        if user is None:
            return Response(status=404, raw=True, data=dict(_NOT_FOUND))
        # Vault answers the groups joined by commas, the policies as a list.
        return Response(data={"groups": ",".join(user.get("groups") or []),
                              "policies": user.get("policies") or []})

    def write_user(req: Request, data: FieldData, m: re.Match[str]) -> None:
        lower = not b.config().case_sensitive_names
        groups = dedupe(list(data.get("groups") or []), lower)
        policies = sanitize_policies(list(data.get("policies") or []), add_default=False)
        b.ctx.storage.put(USER + canonical(m.group("name")),
                          json.dumps({"groups": groups, "policies": policies}).encode())

    def delete(prefix: str) -> Any:
        # Vault deletes the name as given, which leaves a lower-cased entry in place
        # when "Alice" is deleted; the canonical name is deleted here (fail closed).
        def handler(req: Request, data: FieldData, m: re.Match[str]) -> None:
            b.ctx.storage.delete(prefix + canonical(m.group("name")))
        return handler

    return [
        Path("groups/?", {Operation.LIST: listing(GROUP)}),
        Path("groups/(?P<name>.+)", {Operation.READ: read_group,
                                     Operation.UPDATE: write_group,
                                     Operation.DELETE: delete(GROUP)},
             fields={"name": _NAME, "policies": _LIST}),
        Path("users/?", {Operation.LIST: listing(USER)}),
        Path("users/(?P<name>.+)", {Operation.READ: read_user, Operation.UPDATE: write_user,
                                    Operation.DELETE: delete(USER)},
             fields={"name": _NAME, "groups": _LIST, "policies": _LIST}),
    ]
