"""``decrypt/<name>``: one ciphertext or a ``batch_input`` with per-item errors."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .batch import decode_items, respond
from .goencoding import Base64Error, b64decode
from .path_encrypt import CONTEXT_MISMATCH, associated_data, checked_associated_data

if TYPE_CHECKING:
    from . import TransitBackend

_FIELDS = {
    "name": Field(FieldType.STRING),
    "ciphertext": Field(FieldType.STRING, default=""),
    "context": Field(FieldType.STRING, default=""),
    "partial_failure_response_code": Field(FieldType.INT),
    "associated_data": Field(FieldType.STRING, default=""),
    "batch_input": Field(FieldType.ANY),
}


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def decrypt_one(data: FieldData, name: str) -> Response:
        """The single-value request without the batch bookkeeping (the hot path), with
        the batch code's order of checks and errors."""
        ciphertext = str(data.get("ciphertext"))
        if not ciphertext:
            raise BadRequestError("missing ciphertext to decrypt")
        error = ""
        context = None
        context_text = str(data.get("context"))
        if context_text:
            try:
                context = b64decode(context_text)
            except Base64Error as exc:
                error = str(exc)
        policy = b.keys.get(name)
        if policy is None:
            raise BadRequestError("encryption key not found")
        if error:
            raise BadRequestError(error)
        ad = associated_data(policy, 0, str(data.get("associated_data")))
        plain = policy.decrypt(ciphertext, context=context, associated_data=ad)
        return Response(data={"plaintext": base64.b64encode(plain).decode()})

    def decrypt(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        raw_batch = data.raw.get("batch_input")
        if raw_batch is None:
            return decrypt_one(data, m.group("name"))
        items = decode_items(raw_batch, require_ciphertext=True)
        if not items:
            raise BadRequestError("missing batch input to process")
        errors = [""] * len(items)
        context_set = bool(items[0].context)
        user_errors = internal_errors = successes = False
        for i, item in enumerate(items):
            if bool(item.context) != context_set:
                raise BadRequestError(CONTEXT_MISMATCH)
            if not item.ciphertext:
                user_errors = True
                errors[i] = "missing ciphertext to decrypt"
                continue
            if item.context:
                try:
                    item.decoded_context = b64decode(item.context)
                except Base64Error as exc:
                    user_errors = True
                    errors[i] = str(exc)
        policy = b.keys.get(m.group("name"))
        if policy is None:
            raise BadRequestError("encryption key not found")
        results: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            out: dict[str, Any] = {"plaintext": ""}
            results.append(out)
            if errors[i]:
                out["error"] = errors[i]
                continue
            ad, failed = checked_associated_data(policy, i, item.associated_data, out)
            if failed:
                internal_errors |= failed == "internal"
                continue
            try:
                plain = policy.decrypt(item.ciphertext, context=item.decoded_context,
                                       associated_data=ad)
            except StrongroomError as exc:
                if exc.status >= 500:
                    internal_errors = True
                else:
                    user_errors = True
                out["error"] = exc.message
                continue
            successes = True
            out["plaintext"] = base64.b64encode(plain).decode()
        for item, out in zip(items, results, strict=True):
            out["reference"] = item.reference
        resp = Response(data={"batch_results": results})
        return respond(resp, data.get("partial_failure_response_code"), successes,
                       user_errors, internal_errors)

    return [Path(f"decrypt/{NAME}", {Operation.UPDATE: decrypt}, _FIELDS)]
