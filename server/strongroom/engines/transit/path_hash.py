"""``hash[/<algorithm>]``: a digest of base64 input, hex or base64 (OpenBao's checks).

No key is involved; sha1 and ``none`` are refused here (unlike sign/ and hmac/),
as in OpenBao.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .goencoding import Base64Error, b64decode

if TYPE_CHECKING:
    from . import TransitBackend

_ALGORITHMS = {"sha2-224": "sha224", "sha2-256": "sha256", "sha2-384": "sha384",
               "sha2-512": "sha512", "sha3-224": "sha3_224", "sha3-256": "sha3_256",
               "sha3-384": "sha3_384", "sha3-512": "sha3_512"}


def paths(b: TransitBackend) -> list[Path]:
    fields = {
        "input": Field(FieldType.STRING),
        "algorithm": Field(FieldType.STRING, default="sha2-256"),
        "urlalgorithm": Field(FieldType.STRING),
        "format": Field(FieldType.STRING, default="hex"),
    }
    return [Path(r"hash(?:/(?P<urlalgorithm>.+))?", {Operation.UPDATE: hash_write}, fields,
                 help="Generate a hash sum for input data")]


def hash_write(req: Request, data: FieldData, m: re.Match[str]) -> Response:
    # Present means sent, even as null (Vault's GetOk): null hashes the empty input.
    if "input" not in data.raw:
        raise BadRequestError("input missing")
    algorithm = m.group("urlalgorithm") or str(data.get("algorithm"))
    try:
        message = b64decode(str(data.get("input") or ""))
    except Base64Error as exc:
        raise BadRequestError(f"unable to decode input as base64: {exc}") from None
    fmt = str(data.get("format"))
    if fmt not in ("hex", "base64"):
        raise BadRequestError(f'unsupported encoding format {fmt}; must be "hex" or "base64"')
    name = _ALGORITHMS.get(algorithm)
    if name is None:
        raise BadRequestError(f"unsupported algorithm {algorithm}")
    digest = hashlib.new(name, message).digest()
    text = digest.hex() if fmt == "hex" else base64.b64encode(digest).decode()
    return Response(data={"sum": text})
