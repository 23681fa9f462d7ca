"""``config``: the method's options (Vault's ``disable_binding``,
``enable_identity_alias_metadata``, ``ocsp_cache_size``)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from strongroom.barrier.view import StorageView
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import FieldData, Path
from strongroom.framework.fields import Field, FieldType

if TYPE_CHECKING:
    from . import CertBackend

KEY = "config"
_MAX_CACHE = 100000


@dataclass
class CertConfig:
    disable_binding: bool = False
    enable_identity_alias_metadata: bool = False
    ocsp_cache_size: int = 0


def load_config(storage: StorageView) -> CertConfig:
    raw = storage.get(KEY)
    if raw is None:
        return CertConfig()
    doc = json.loads(raw)
    return CertConfig(**{k: v for k, v in doc.items() if k in CertConfig.__dataclass_fields__})


def paths(backend: CertBackend) -> list[Path]:
    storage = backend.ctx.storage

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data=asdict(load_config(storage)))

    def write(req: Request, data: FieldData, m: re.Match[str]) -> None:
        config = load_config(storage)
        if data.has("disable_binding"):
            config.disable_binding = data.get("disable_binding")
        if data.has("enable_identity_alias_metadata"):
            config.enable_identity_alias_metadata = data.get("enable_identity_alias_metadata")
        if data.has("ocsp_cache_size"):
            size = data.get("ocsp_cache_size")
            if size < 2 or size > _MAX_CACHE:
                raise BadRequestError(
                    f"invalid cache size, must be >= 2 and <= {_MAX_CACHE}")
            config.ocsp_cache_size = size
        storage.put(KEY, json.dumps(asdict(config)).encode())

    fields = {"disable_binding": Field(FieldType.BOOL),
              "enable_identity_alias_metadata": Field(FieldType.BOOL),
              "ocsp_cache_size": Field(FieldType.INT, default=100)}
    return [Path("config", {Operation.READ: read, Operation.UPDATE: write}, fields)]
