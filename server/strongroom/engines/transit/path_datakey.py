"""``datakey/<plaintext|wrapped>/<name>``: a fresh random key, returned encrypted under
the named key (and in plaintext for ``plaintext``)."""

from __future__ import annotations

import base64
import os
import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .common import decode_context
from .goencoding import Base64Error, b64decode
from .policy import TransitInternalError

if TYPE_CHECKING:
    from . import TransitBackend

_BITS = {128: 16, 256: 32, 512: 64}
_FIELDS = {
    "name": Field(FieldType.STRING),
    "plaintext": Field(FieldType.STRING),
    "context": Field(FieldType.STRING, default=""),
    "bits": Field(FieldType.INT, default=256),
    "key_version": Field(FieldType.INT, default=0),
    "associated_data": Field(FieldType.STRING, default=""),
}


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def datakey(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        kind = m.group("plaintext")
        if kind not in ("plaintext", "wrapped"):
            raise BadRequestError("Invalid path, must be 'plaintext' or 'wrapped'")
        context = decode_context(str(data.get("context")))
        policy = b.keys.get(m.group("name"))
        if policy is None:
            raise BadRequestError("encryption key not found")
        size = _BITS.get(int(data.get("bits")))
        if size is None:
            raise BadRequestError("invalid bit length")
        new_key = os.urandom(size)
        ad = None
        encoded_ad = str(data.get("associated_data"))
        if encoded_ad:
            if not policy.type.associated_data_supported:
                raise BadRequestError("'associated_data' provided for non-AEAD cipher suite "
                                      f"{policy.type.api_name}")
            try:
                ad = b64decode(encoded_ad)
            except Base64Error as exc:
                raise TransitInternalError("unable to get associated_data/additional_data "
                                           f"from factory[0]: {exc}") from None
        version = int(data.get("key_version"))
        ciphertext = policy.encrypt(new_key, context=context, version=version,
                                    associated_data=ad)
        out = {"ciphertext": ciphertext, "key_version": version or policy.latest_version}
        if kind == "plaintext":
            out["plaintext"] = base64.b64encode(new_key).decode()
        return Response(data=out)

    name = NAME.replace("?P<name>", "?P<plaintext>")
    return [Path(f"datakey/{name}/{NAME}", {Operation.UPDATE: datakey}, _FIELDS)]
