"""``cache-config``: how many key rings each process keeps decoded (0 = all)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .keystore import MIN_CACHE_SIZE

if TYPE_CHECKING:
    from . import TransitBackend


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"size": b.keys.cache_size})

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        size = int(data.get("size"))
        if size != 0 and size < MIN_CACHE_SIZE:
            raise BadRequestError(f"size must be 0 or a value greater or equal to "
                                  f"{MIN_CACHE_SIZE}")
        b.keys.write_cache_size(size)
        return Response(data={"size": size})

    ops = {Operation.READ: read, Operation.UPDATE: write, Operation.CREATE: write}
    return [Path("cache-config", ops, {"size": Field(FieldType.INT, default=0)})]
