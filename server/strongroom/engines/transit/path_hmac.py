"""``hmac/<name>[/<algorithm>]``, and the HMAC half of ``verify/<name>``.

Every key version carries an HMAC key (``hmac_key``); an ``hmac`` type key uses
its own key. Outputs are ``vault:v<N>:<base64>``. The answers, error texts and
their order follow OpenBao 2.7 (``algorithm=none`` is refused; an unknown
algorithm reads "unsupported algorithm '\\x00'", Go's %q of the zero HashType).
The key comes from the backend's per-process cache: no storage read per request.
"""

from __future__ import annotations

import base64
import hmac
import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import string_batch
from .goencoding import Base64Error, atoi, b64decode, go_quote
from .policy import Policy
from .signing import HASHLIB_NAMES, PREFIX, hmac_key

if TYPE_CHECKING:
    from . import TransitBackend

# framework.GenericNameRegex with Go's ASCII \w.
NAME = r"(?P<name>[0-9A-Za-z_](?:[0-9A-Za-z_.-]*[0-9A-Za-z_])?)"
URL_ALGORITHM = r"(?:/(?P<urlalgorithm>.+))?"
DEFAULT_HASH = "sha2-256"


def load_policy(b: TransitBackend, name: str) -> Policy | None:
    """The named key from the worker's cache (storage only on a cache miss)."""
    return b.keys.get(name)


def pick_algorithm(data: FieldData, match: re.Match[str]) -> str:
    """URL, then ``hash_algorithm``, then the deprecated ``algorithm``, then sha2-256."""
    for value in (match.group("urlalgorithm"), data.raw.get("hash_algorithm"),
                  data.raw.get("algorithm")):
        if value:
            return str(value)
    return DEFAULT_HASH


def _mac(key: bytes, algorithm: str, message: bytes) -> bytes:
    return hmac.new(key, message, HASHLIB_NAMES[algorithm]).digest()


def paths(b: TransitBackend) -> list[Path]:
    fields = {
        "name": Field(FieldType.STRING),
        "input": Field(FieldType.STRING),
        "algorithm": Field(FieldType.STRING, default=DEFAULT_HASH),
        "urlalgorithm": Field(FieldType.STRING),
        "key_version": Field(FieldType.INT, default=0),
        "batch_input": Field(FieldType.ANY),
    }

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return hmac_write(b, data, m)

    return [Path(f"hmac/{NAME}{URL_ALGORITHM}", {Operation.UPDATE: write}, fields,
                 help="Generate an HMAC for input data using the named key")]


def hmac_write(b: TransitBackend, data: FieldData, m: re.Match[str]) -> Response:
    version = int(data.get("key_version"))
    algorithm = m.group("urlalgorithm") or str(data.get("algorithm"))
    policy = load_policy(b, m.group("name"))
    if policy is None:
        raise BadRequestError("encryption key not found")
    if version == 0:
        version = policy.latest_version
    elif version != policy.latest_version and (
            policy.min_encryption_version > 0 and version < policy.min_encryption_version):
        raise BadRequestError("cannot generate HMAC: version is too old (disallowed by policy)")
    key = hmac_key(policy, version)
    if algorithm not in HASHLIB_NAMES and algorithm != "none":
        raise BadRequestError("unsupported algorithm '\\x00'")
    if algorithm == "none":
        raise BadRequestError("algorithm cannot be none")
    items = string_batch.parse(data.raw.get("batch_input"), "transit.batchRequestHMACItem")
    if items is None:
        if "input" not in data.raw:  # sent as null counts as sent, as in Vault
            raise BadRequestError("missing input for HMAC")
        single = {"input": str(data.get("input") or "")}
        return Response(data={"hmac": _hmac_item(key, algorithm, version, single)})
    results: list[dict[str, Any]] = []
    for item in items:
        try:
            result: dict[str, Any] = {"hmac": _hmac_item(key, algorithm, version, item)}
        except BadRequestError as exc:
            result = {"error": exc.message}
        result["reference"] = item.get("reference", "")
        results.append(result)
    return Response(data={"batch_results": results})


def _hmac_item(key: bytes, algorithm: str, version: int, item: dict[str, str]) -> str:
    if "input" not in item:
        raise BadRequestError("missing input for HMAC")
    try:
        message = b64decode(item["input"])
    except Base64Error as exc:
        raise BadRequestError(f"unable to decode input as base64: {exc}") from None
    return f"{PREFIX}{version}:" + base64.b64encode(_mac(key, algorithm, message)).decode()


def hmac_verify(b: TransitBackend, data: FieldData, m: re.Match[str],
                items: list[dict[str, str]], batch: bool) -> Response:
    """verify/ with ``hmac`` values; ``items`` already checked to all carry one."""
    algorithm = pick_algorithm(data, m)
    if algorithm not in HASHLIB_NAMES and algorithm != "none":
        raise BadRequestError(f"invalid hash algorithm {go_quote(algorithm)}")
    policy = load_policy(b, m.group("name"))
    if policy is None:
        raise BadRequestError("encryption key not found")
    if algorithm == "none":
        raise BadRequestError("algorithm cannot be none")
    results: list[dict[str, Any]] = []
    for item in items:
        try:
            result: dict[str, Any] = {"valid": _verify_item(policy, algorithm, item)}
        except BadRequestError as exc:
            if not batch:
                raise
            result = {"error": exc.message}
        if batch:
            if not result.get("valid"):
                result.pop("valid", None)  # OpenBao's item has valid,omitempty
            result["reference"] = item.get("reference", "")
        results.append(result)
    if not batch:
        return Response(data={"valid": results[0]["valid"]})
    return Response(data={"batch_results": results})


def _verify_item(policy: Policy, algorithm: str, item: dict[str, str]) -> bool:
    if "input" not in item:
        raise BadRequestError("missing input")
    try:
        message = b64decode(item["input"])
    except Base64Error as exc:
        raise BadRequestError(f"unable to decode input as base64: {exc}") from None
    if "hmac" not in item:
        raise BadRequestError("missing hmac")
    value = item["hmac"]
    if not value.startswith(PREFIX):
        raise BadRequestError("invalid HMAC to verify: no prefix")
    version_text, sep, encoded = value[len(PREFIX):].partition(":")
    if not sep:
        raise BadRequestError("invalid HMAC: wrong number of fields")
    try:
        version = atoi(version_text)
    except ValueError:
        raise BadRequestError("invalid HMAC: version number could not be decoded") from None
    try:
        expected = b64decode(encoded)
    except Base64Error as exc:
        raise BadRequestError(
            f"unable to decode verification HMAC as base64: {exc}") from None
    if version > policy.latest_version:
        raise BadRequestError("invalid HMAC: version is too new")
    if policy.min_decryption_version > 0 and version < policy.min_decryption_version:
        raise BadRequestError("cannot verify HMAC: version is too old (disallowed by policy)")
    key = hmac_key(policy, version)
    return hmac.compare_digest(_mac(key, algorithm, message), expected)
