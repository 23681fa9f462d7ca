"""``sign/<name>[/<hash_algorithm>]`` and ``verify/<name>[/<hash_algorithm>]``.

Request checks run in OpenBao 2.7's order (marshaling and salt length before the
key lookup, the hash algorithm after it), so a request with several mistakes gets
the same first error. ``batch_input`` items fail one by one; a single request's
failure is a 400 with the item's error text. verify/ hands HMAC checks to
path_hmac. The crypto is in signing.py.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import signing, string_batch
from .goencoding import Base64Error, b64decode, go_quote
from .keytypes import TransitInternalError
from .path_hmac import NAME, URL_ALGORITHM, hmac_verify, load_policy, pick_algorithm
from .policy import Policy

if TYPE_CHECKING:
    from . import TransitBackend

_COMMON_FIELDS = {
    "name": Field(FieldType.STRING),
    "input": Field(FieldType.STRING),
    "context": Field(FieldType.STRING),
    "hash_algorithm": Field(FieldType.STRING, default="sha2-256"),
    "algorithm": Field(FieldType.STRING, default="sha2-256"),
    "urlalgorithm": Field(FieldType.STRING),
    "prehashed": Field(FieldType.BOOL, default=False),
    "signature_algorithm": Field(FieldType.STRING, default=""),
    "marshaling_algorithm": Field(FieldType.STRING, default="asn1"),
    "salt_length": Field(FieldType.STRING, default="auto"),
    "batch_input": Field(FieldType.ANY),
}
SIGN_FIELDS = {**_COMMON_FIELDS, "key_version": Field(FieldType.INT, default=0)}
VERIFY_FIELDS = {**_COMMON_FIELDS, "signature": Field(FieldType.STRING),
                 "hmac": Field(FieldType.STRING)}


def paths(b: TransitBackend) -> list[Path]:
    def sign(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return sign_write(b, data, m)

    def verify(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return verify_write(b, data, m)

    return [
        Path(f"sign/{NAME}{URL_ALGORITHM}", {Operation.UPDATE: sign}, SIGN_FIELDS,
             help="Generate a signature for input data using the named key"),
        Path(f"verify/{NAME}{URL_ALGORITHM}", {Operation.UPDATE: verify}, VERIFY_FIELDS,
             help="Verify a signature or HMAC for input data created using the named key"),
    ]


def _options(data: FieldData, m: re.Match[str]) -> signing.SigningOptions:
    """The request-wide options, checked before the key is looked up."""
    marshaling = str(data.get("marshaling_algorithm"))
    if marshaling not in signing.MARSHALING:
        raise BadRequestError(f"invalid marshaling type {go_quote(marshaling)}")
    return signing.SigningOptions(
        hash_algorithm=pick_algorithm(data, m), marshaling=marshaling,
        salt_length=signing.parse_salt_length(str(data.get("salt_length"))),
        signature_algorithm=str(data.get("signature_algorithm")),
        prehashed=bool(data.get("prehashed")))


def _check_key(policy: Policy | None, opts: signing.SigningOptions, missing: str,
               verb: str) -> Policy:
    if policy is None:
        raise BadRequestError(missing)
    if not policy.type.signing_supported:
        raise BadRequestError(f"key type {policy.type} does not support {verb}")
    if opts.hash_algorithm not in signing.HASH_ALGORITHMS:
        raise BadRequestError(f"invalid hash algorithm {go_quote(opts.hash_algorithm)}")
    if opts.hash_algorithm == "none" and (
            not opts.prehashed or opts.signature_algorithm != "pkcs1v15"):
        raise BadRequestError("hash_algorithm=none requires both prehashed=true and "
                              "signature_algorithm=pkcs1v15")
    return policy


def _decode_input(policy: Policy, item: dict[str, str], opts: signing.SigningOptions) -> bytes:
    if "input" not in item:
        raise BadRequestError("missing input")
    try:
        raw = b64decode(item["input"])
    except Base64Error as exc:
        raise BadRequestError(f"unable to decode input as base64: {exc}") from None
    return signing.digest(policy.type, raw, opts)


def _decode_context(item: dict[str, str]) -> bytes:
    text = item.get("context", "")
    if not text:
        return b""
    try:
        return b64decode(text)
    except Base64Error:
        raise BadRequestError("failed to base64-decode context") from None


def sign_write(b: TransitBackend, data: FieldData, m: re.Match[str]) -> Response:
    version = int(data.get("key_version"))
    opts = _options(data, m)
    policy = _check_key(load_policy(b, m.group("name")), opts, "signing key not found",
                        "signing")
    items = string_batch.parse(data.raw.get("batch_input"), "transit.batchRequestSignItem")
    if items is None:
        # A missing input signs the empty string, as OpenBao.
        item = {"input": str(data.get("input") or ""), "context": str(data.get("context") or "")}
        signature, public, used = _sign_item(policy, version, item, opts)
        out: dict[str, Any] = {"signature": signature, "key_version": used}
        if public:
            out["public_key"] = base64.b64encode(public).decode()
        return Response(data=out)
    results: list[dict[str, Any]] = []
    for item in items:
        try:
            signature, public, used = _sign_item(policy, version, item, opts)
            result: dict[str, Any] = {"signature": signature, "key_version": used}
            if public:
                result["publickey"] = base64.b64encode(public).decode()
        except (BadRequestError, TransitInternalError) as exc:
            result = {"key_version": 0, "error": exc.message}
        result["reference"] = item.get("reference", "")
        results.append(result)
    return Response(data={"batch_results": results})


def _sign_item(policy: Policy, version: int, item: dict[str, str],
               opts: signing.SigningOptions) -> tuple[str, bytes | None, int]:
    message = _decode_input(policy, item, opts)
    context = _decode_context(item)
    signature, public = signing.sign(policy, version, message, context, opts)
    return signature, public, version or policy.latest_version


def verify_write(b: TransitBackend, data: FieldData, m: re.Match[str]) -> Response:
    items = string_batch.parse(data.raw.get("batch_input"), "transit.batchRequestVerifyItem")
    batch = items is not None
    if items is None:
        item = {"input": str(data.get("input") or "")}
        # Sent as null counts as sent (Vault's GetOk), with an empty value.
        for key in ("signature", "hmac"):
            if key in data.raw:
                item[key] = str(data.get(key) or "")
        item["context"] = str(data.get("context") or "")
        items = [item]
    # All items verify signatures, or all verify HMACs (OpenBao's rule).
    signatures = sum(1 for i in items if "signature" in i)
    hmacs = sum(1 for i in items if "signature" not in i and "hmac" in i)
    missing = len(items) - signatures - hmacs
    if not batch and not signatures and not hmacs:
        raise BadRequestError("neither a 'signature' nor an 'hmac' were given to verify")
    if signatures and hmacs:
        raise BadRequestError(
            "elements of batch_input must all provide 'signature' or all provide 'hmac'")
    if missing and signatures:
        raise BadRequestError("some elements of batch_input are missing 'signature'")
    if missing and hmacs:
        raise BadRequestError("some elements of batch_input are missing 'hmac'")
    if missing:
        raise BadRequestError("no batch_input elements have 'signature' or 'hmac'")
    if hmacs:
        return hmac_verify(b, data, m, items, batch)
    return _verify_signatures(b, data, m, items, batch)


def _verify_signatures(b: TransitBackend, data: FieldData, m: re.Match[str],
                       items: list[dict[str, str]], batch: bool) -> Response:
    opts = _options(data, m)
    policy = _check_key(load_policy(b, m.group("name")), opts,
                        "signature verification key not found", "verification")
    results: list[dict[str, Any]] = []
    for item in items:
        try:
            result: dict[str, Any] = {"valid": _verify_item(policy, item, opts)}
        except (BadRequestError, TransitInternalError) as exc:
            if not batch:
                raise
            result = {"valid": False, "error": exc.message}
        result["reference"] = item.get("reference", "")
        results.append(result)
    if not batch:
        return Response(data={"valid": results[0]["valid"]})
    return Response(data={"batch_results": results})


def _verify_item(policy: Policy, item: dict[str, str], opts: signing.SigningOptions) -> bool:
    message = _decode_input(policy, item, opts)
    if "signature" not in item:
        raise BadRequestError("missing signature")
    context = _decode_context(item)
    return signing.verify(policy, message, item["signature"], context, opts)
