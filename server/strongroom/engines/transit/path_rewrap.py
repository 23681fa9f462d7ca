"""``rewrap/<name>``: decrypt and re-encrypt with the latest (or ``key_version``)
version without returning the plaintext. As in Vault, item errors do not change the
status and ``associated_data`` is not taken."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .batch import Item, decode_items
from .goencoding import Base64Error, b64decode
from .path_encrypt import CONTEXT_MISMATCH

if TYPE_CHECKING:
    from . import TransitBackend

_FIELDS = {
    "name": Field(FieldType.STRING),
    "ciphertext": Field(FieldType.STRING, default=""),
    "context": Field(FieldType.STRING, default=""),
    "key_version": Field(FieldType.INT, default=0),
    "batch_input": Field(FieldType.ANY),
}


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def rewrap(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        raw_batch = data.raw.get("batch_input")
        if raw_batch is not None:
            items = decode_items(raw_batch)
            if not items:
                raise BadRequestError("missing batch input to process")
        else:
            ciphertext = str(data.get("ciphertext"))
            if not ciphertext:
                raise BadRequestError("missing ciphertext to decrypt")
            items = [Item(ciphertext=ciphertext, context=str(data.get("context")),
                          key_version=int(data.get("key_version")))]
        errors = [""] * len(items)
        context_set = bool(items[0].context)
        for i, item in enumerate(items):
            if bool(item.context) != context_set:
                raise BadRequestError(CONTEXT_MISMATCH)
            if not item.ciphertext:
                errors[i] = "missing ciphertext to decrypt"
                continue
            if item.context:
                try:
                    item.decoded_context = b64decode(item.context)
                except Base64Error as exc:
                    errors[i] = str(exc)
        policy = b.keys.get(m.group("name"))
        if policy is None:
            raise BadRequestError("encryption key not found")
        results: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            out: dict[str, Any] = {}
            results.append(out)
            if errors[i]:
                out["error"] = errors[i]
                continue
            try:
                plain = policy.decrypt(item.ciphertext, context=item.decoded_context)
                ciphertext = policy.encrypt(plain, context=item.decoded_context,
                                            version=item.key_version)
            except StrongroomError as exc:
                if exc.status >= 500:
                    raise  # Vault fails the whole request on an internal error
                out["error"] = exc.message
                continue
            out["ciphertext"] = ciphertext
            out["key_version"] = item.key_version or policy.latest_version
        if raw_batch is not None:
            for item, out in zip(items, results, strict=True):
                out["reference"] = item.reference
            return Response(data={"batch_results": results})
        if "error" in results[0]:
            raise BadRequestError(results[0]["error"])
        return Response(data=results[0])

    return [Path(f"rewrap/{NAME}", {Operation.UPDATE: rewrap}, _FIELDS)]
