"""``auth/token/roles/<name>``: named templates that constrain token creation."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from strongroom.barrier.view import StorageView
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import Field, FieldData, FieldType, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core

_ROLE_FIELDS = {
    "role_name": Field(FieldType.STRING),
    "allowed_policies": Field(FieldType.LIST),
    "disallowed_policies": Field(FieldType.LIST),
    "orphan": Field(FieldType.BOOL),
    "renewable": Field(FieldType.BOOL),
    "path_suffix": Field(FieldType.STRING),
    "token_period": Field(FieldType.DURATION),
    "period": Field(FieldType.DURATION),
    "token_explicit_max_ttl": Field(FieldType.DURATION),
    "explicit_max_ttl": Field(FieldType.DURATION),
    "token_type": Field(FieldType.STRING),
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


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
        return json.loads(raw) if raw is not None else None

    def check_policies(self, role: dict[str, Any], policies: list[str]) -> None:
        allowed = set(role.get("allowed_policies") or [])
        disallowed = set(role.get("disallowed_policies") or [])
        wanted = set(policies) - {"default"}
        if wanted & disallowed:
            raise BadRequestError(
                f"token policies ({sorted(wanted)}) contains disallowed policies "
                f"({sorted(disallowed)})"
            )
        if allowed and not wanted <= allowed:
            raise BadRequestError(
                f"token policies ({sorted(wanted)}) must be subset of the role's "
                f"allowed policies ({sorted(allowed)})"
            )

    def _list(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        keys = self._storage.list("")
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def _read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        role = self.get(m.group("role_name"))
        if role is None:
            return None
        return Response(data={
            **role,
            "token_period": role.get("period", 0),
            "token_explicit_max_ttl": role.get("explicit_max_ttl", 0),
            "token_type": "service",
        })

    def _write(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("role_name")
        if not _NAME.match(name):
            raise BadRequestError("invalid role name")
        if data.get("token_type") not in (None, "", "service", "default"):
            raise BadRequestError("only service tokens are supported")
        role = self.get(name) or {"name": name, "orphan": False, "renewable": True}

        def pick(*names: str) -> Any:
            for field_name in names:
                if data.has(field_name):
                    return data.get(field_name)
            return None

        updates = {
            "allowed_policies": pick("allowed_policies"),
            "disallowed_policies": pick("disallowed_policies"),
            "orphan": pick("orphan"),
            "renewable": pick("renewable"),
            "path_suffix": pick("path_suffix"),
            "period": pick("token_period", "period"),
            "explicit_max_ttl": pick("token_explicit_max_ttl", "explicit_max_ttl"),
        }
        for key, value in updates.items():
            if value is not None:
                role[key] = sorted(value) if isinstance(value, list) else value
        role.setdefault("allowed_policies", [])
        role.setdefault("disallowed_policies", [])
        self._storage.put(name, json.dumps(role).encode())

    def _delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        if _NAME.match(m.group("role_name")):
            self._storage.delete(m.group("role_name"))
