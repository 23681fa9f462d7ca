"""``keys/<name>/trim``: delete the versions below ``min_available_version`` for good
(from the document and the archive; Vault's ``pathTrimUpdate``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import format_policy
from .policy import Policy

if TYPE_CHECKING:
    from . import TransitBackend


def _trim(p: Policy, data: FieldData) -> None:
    if not data.has("min_available_version"):
        raise BadRequestError("missing min_available_version")
    value = int(data.get("min_available_version"))
    if value < p.min_available_version:
        raise BadRequestError("minimum available version cannot be decremented")
    if p.min_encryption_version == 0:
        raise BadRequestError("minimum available version cannot be set when minimum "
                              "encryption version is not set")
    if p.min_decryption_version == 0:
        raise BadRequestError("minimum available version cannot be set when minimum "
                              "decryption version is not set")
    if value > p.min_encryption_version:
        raise BadRequestError("minimum available version cannot be greater than minmum "
                              "encryption version")
    if value > p.min_decryption_version:
        raise BadRequestError("minimum available version cannot be greater than minimum "
                              "decryption version")
    if value < 0:
        raise BadRequestError("minimum available version cannot be negative")
    if value == 0:
        raise BadRequestError("minimum available version should be positive")
    p.min_available_version = value


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def trim(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        policy = b.keys.update(m.group("name"), lambda p: _trim(p, data))
        if policy is None:
            raise BadRequestError("invalid key name")
        return Response(data=format_policy(policy))

    fields = {"name": Field(FieldType.STRING),
              "min_available_version": Field(FieldType.INT)}
    return [Path(f"keys/{NAME}/trim", {Operation.UPDATE: trim}, fields)]
