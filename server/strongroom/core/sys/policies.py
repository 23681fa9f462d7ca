"""sys/policy, sys/policies/acl and sys/capabilities*."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.policy_store import validate_name
from strongroom.core.request import Operation, Request, Response
from strongroom.core.tokens import TokenEntry
from strongroom.errors import BadRequestError, NotFoundError, PermissionDeniedError
from strongroom.framework import Field, FieldData, FieldType, Handler, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core

_POLICY_FIELDS = {
    "name": Field(FieldType.STRING),
    "policy": Field(FieldType.STRING),
    "rules": Field(FieldType.STRING),
}
_CAP_FIELDS = {
    "token": Field(FieldType.STRING),
    "accessor": Field(FieldType.STRING),
    "path": Field(FieldType.LIST),
    "paths": Field(FieldType.LIST),
}


def policy_paths(core: Core) -> list[Path]:
    store = core.policies

    def list_legacy(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        names = store.names()
        return Response(data={"keys": names, "policies": names}, legacy_top_level=True)

    def list_acl(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"keys": store.names()})

    def read(legacy: bool) -> Handler:
        def handler(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
            name = validate_name(m.group("name"))
            text = store.raw(name)
            if text is None:
                raise NotFoundError("")
            body = {"name": name, ("rules" if legacy else "policy"): text}
            return Response(data=body, legacy_top_level=legacy)

        return handler

    def write(req: Request, data: FieldData, m: re.Match[str]) -> None:
        # Vault's d.Get("name"): the URL's value, which wins over a "name" in the body
        # (the ACL allowed the URL's policy, and only that one).
        name = str(data.get("name"))
        if name.endswith("/"):
            raise BadRequestError("cannot write to a path ending in '/'")
        text = data.get("policy") or data.get("rules")
        if not text:
            raise BadRequestError("'policy' parameter not supplied or empty")
        store.put(name, text)
        core.changed()

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        store.delete(str(data.get("name")))
        core.changed()

    def capabilities_of(entry: TokenEntry | None, data: FieldData) -> Response:
        if entry is None:
            raise BadRequestError("invalid token")
        paths = list(data.get("paths") or []) + list(data.get("path") or [])
        if not paths:
            raise BadRequestError("missing paths")
        acl = core.acl_for(entry)
        result: dict[str, object] = {p: acl.capabilities(p) for p in paths}
        if len(paths) == 1:  # Vault adds the bare key only for a single path
            result["capabilities"] = result[paths[0]]
        return Response(data=result, legacy_top_level=True)

    def caps_token(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        token = data.get("token")
        if not token:
            raise BadRequestError("missing token")
        return capabilities_of(core.tokens.lookup(token, core.now()), data)

    def caps_self(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        if req.token_entry is None:
            raise PermissionDeniedError()
        return capabilities_of(req.token_entry, data)

    def caps_accessor(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        accessor = data.get("accessor")
        if not accessor:
            raise BadRequestError("missing accessor")
        return capabilities_of(core.tokens.lookup_accessor(accessor, core.now()), data)

    name = "(?P<name>.+)"  # names may hold '/' (OpenBao accepts "team/app")
    crud = {Operation.UPDATE: write, Operation.DELETE: delete}
    return [
        Path("policy/?", {Operation.READ: list_legacy, Operation.LIST: list_legacy}),
        Path(f"policy/{name}", {Operation.READ: read(True), **crud}, _POLICY_FIELDS),
        Path("policies/acl/?", {Operation.LIST: list_acl}),
        Path(f"policies/acl/{name}", {Operation.READ: read(False), **crud}, _POLICY_FIELDS),
        Path("capabilities", {Operation.UPDATE: caps_token}, _CAP_FIELDS),
        Path("capabilities-self", {Operation.UPDATE: caps_self}, _CAP_FIELDS),
        Path("capabilities-accessor", {Operation.UPDATE: caps_accessor}, _CAP_FIELDS),
    ]
