"""``encrypt/<name>``: one plaintext or a ``batch_input``, creating the key on a
create-capable write to a missing key (Vault's upsert, unless ``config/keys``
``disable_upsert``)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path

from .batch import decode_items, respond
from .cipher import latest_encryptor
from .goencoding import Base64Error, b64decode
from .keytypes import KeyType
from .policy import Policy, TransitInternalError, new_policy

if TYPE_CHECKING:
    from . import TransitBackend

_UPSERT_TYPES = {"aes128-gcm96": KeyType.AES128_GCM96, "aes256-gcm96": KeyType.AES256_GCM96,
                 "chacha20-poly1305": KeyType.CHACHA20_POLY1305,
                 "xchacha20-poly1305": KeyType.XCHACHA20_POLY1305}
_FIELDS = {
    "name": Field(FieldType.STRING),
    "plaintext": Field(FieldType.STRING),
    "context": Field(FieldType.STRING, default=""),
    "type": Field(FieldType.STRING, default="aes256-gcm96"),
    "convergent_encryption": Field(FieldType.BOOL, default=False),
    "key_version": Field(FieldType.INT, default=0),
    "partial_failure_response_code": Field(FieldType.INT),
    "associated_data": Field(FieldType.STRING, default=""),
    "batch_input": Field(FieldType.ANY),
}
CONTEXT_MISMATCH = "context should be set either in all the request blocks or in none"


def associated_data(policy: Policy, index: int, encoded: str) -> bytes | None:
    """An item's ``associated_data``: refused for non-AEAD keys, decoded as Vault's
    factory does (a bad encoding is an internal error there)."""
    if not encoded:
        return None
    if not policy.type.associated_data_supported:
        raise BadRequestError(f"'[{index}].associated_data' provided for non-AEAD cipher "
                              f"suite {policy.type.api_name}")
    try:
        return b64decode(encoded)
    except Base64Error as exc:
        raise TransitInternalError("unable to get associated_data/additional_data from "
                                   f"factory[0]: {exc}") from None


def checked_associated_data(policy: Policy, index: int, encoded: str,
                            out: dict[str, Any]) -> tuple[bytes | None, str]:
    """A batch item's associated data and ``""``, or None and the failure's kind with
    ``out["error"]`` set: "user" (Vault sets no error flag for this one) or "internal"."""
    try:
        return associated_data(policy, index, encoded), ""
    except BadRequestError as exc:
        out["error"] = exc.message
        return None, "user"
    except StrongroomError as exc:
        out["error"] = exc.message
        return None, "internal"


def paths(b: TransitBackend) -> list[Path]:
    from . import NAME

    def upsert(req: Request, data: FieldData, name: str, derived: bool) -> tuple[Policy | None,
                                                                                 bool]:
        convergent = bool(data.get("convergent_encryption"))
        if convergent and not derived:
            raise BadRequestError("convergent encryption requires derivation to be enabled, "
                                  "so context is required")
        from .path_config import upsert_disabled

        disabled = upsert_disabled(b)
        type_name = str(data.get("type"))
        key_type = _UPSERT_TYPES.get(type_name)
        if key_type is None:
            if type_name.startswith("ecdsa-p"):
                raise BadRequestError(f"key type {type_name} not supported for this operation")
            raise BadRequestError(f"unknown key type {type_name}")
        if disabled:
            return b.keys.get(name), False
        return b.keys.create(name, lambda: new_policy(name, key_type, derived=derived,
                                                      convergent=convergent))

    def encrypt_one(req: Request, data: FieldData, name: str) -> Response:
        """The common single-value request, with the batch code's order of checks and
        errors but none of its per-item bookkeeping (the hot path)."""
        if not data.has("plaintext"):
            raise BadRequestError("missing plaintext to encrypt")
        error = ""
        plaintext = context = None
        context_text = str(data.get("context"))
        try:
            plaintext = b64decode(str(data.get("plaintext")))
            if context_text:
                context = b64decode(context_text)
        except Base64Error as exc:
            error = str(exc)
        if req.operation is Operation.CREATE:
            policy, _created = upsert(req, data, name, bool(context_text))
        else:
            policy = b.keys.get(name)
        if policy is None:
            raise BadRequestError("encryption key not found")
        if error:
            raise BadRequestError(error)
        ad = associated_data(policy, 0, str(data.get("associated_data")))
        version = int(data.get("key_version"))
        ciphertext = policy.encrypt(plaintext or b"", context=context, version=version,
                                    associated_data=ad)
        return Response(data={"ciphertext": ciphertext,
                              "key_version": version or policy.latest_version})

    def encrypt(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("name")
        raw_batch = data.raw.get("batch_input")
        if raw_batch is None:
            return encrypt_one(req, data, name)
        items = decode_items(raw_batch, require_plaintext=True)
        if not items:
            raise BadRequestError("missing batch input to process")
        n = len(items)
        errors: list[str] = [""] * n
        plaintexts: list[bytes] = [b""] * n
        context_set = bool(items[0].context)
        user_errors = internal_errors = successes = False
        for i, item in enumerate(items):
            if bool(item.context) != context_set:
                raise BadRequestError(CONTEXT_MISMATCH)
            try:
                plaintexts[i] = b64decode(item.plaintext)
                if item.context:
                    item.decoded_context = b64decode(item.context)
            except Base64Error as exc:
                user_errors = True
                errors[i] = str(exc)
        if req.operation is Operation.CREATE:
            # OpenBao reports every upsert as a creation, so its "created beforehand"
            # warning never shows: none here either.
            policy, _created = upsert(req, data, name, context_set)
        else:
            policy = b.keys.get(name)
        if policy is None:
            raise BadRequestError("encryption key not found")
        results: list[dict[str, Any]] = []
        # Random nonces for all items in one system call (24 bytes covers every AEAD).
        randomness = os.urandom(24 * len(items))
        fast = latest_encryptor(policy)
        for i, item in enumerate(items):
            out: dict[str, Any] = {}
            results.append(out)
            if errors[i]:
                out["error"] = errors[i]
                continue
            ad, failed = checked_associated_data(policy, i, item.associated_data, out)
            if failed:
                internal_errors |= failed == "internal"
                continue
            try:
                random = randomness[24 * i:24 * i + 24]
                if fast is not None and ad is None and not item.key_version:
                    ciphertext = fast(plaintexts[i], random)
                else:
                    ciphertext = policy.encrypt(plaintexts[i], context=item.decoded_context,
                                                version=item.key_version, associated_data=ad,
                                                random=random)
            except StrongroomError as exc:
                if exc.status >= 500:
                    internal_errors = True
                else:
                    user_errors = True
                out["error"] = exc.message
                continue
            successes = True
            out["ciphertext"] = ciphertext
            out["key_version"] = item.key_version or policy.latest_version
        for item, out in zip(items, results, strict=True):
            out["reference"] = item.reference
        resp = Response(data={"batch_results": results})
        return respond(resp, data.get("partial_failure_response_code"), successes,
                       user_errors, internal_errors)

    ops = {Operation.CREATE: encrypt, Operation.UPDATE: encrypt}
    return [Path(f"encrypt/{NAME}", ops, _FIELDS, existence=b.key_exists)]
