"""Transport-neutral view of one HTTP request, and its translation rules.

Both the WSGI and the ASGI front ends build an ``HttpRequest`` and hand it to
the dispatcher; nothing here depends on the server interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.core.request import Operation
from strongroom.core.wrapping import parse_wrap_ttl
from strongroom.errors import (
    BadRequestError,
    UnsupportedMediaTypeError,
    UnsupportedOperationError,
)

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
MERGE_PATCH = "application/merge-patch+json"
TOO_LARGE = "http: request body too large"

# Vault's listener limits on a JSON body (Vault 1.18+: max_json_depth,
# max_json_string_value_length, max_json_object_entry_count and
# max_json_array_element_count), with its defaults (sdk/helper/jsonutil). Every
# answer built from a body within them still encodes (strongroom.jsoncodec).
MAX_JSON_DEPTH = 500
MAX_JSON_STRING_VALUE_LENGTH = 1024 * 1024  # bytes, keys included
MAX_JSON_OBJECT_ENTRY_COUNT = 10_000
MAX_JSON_ARRAY_ELEMENT_COUNT = 10_000
# orjson reads integers exactly only in this range; beyond it, it returns a float
# silently (10**30 became 1e+30), so such a number is refused rather than altered.
MIN_JSON_INTEGER = -(2**63)
MAX_JSON_INTEGER = 2**64 - 1
_COMPLEX = "refused JSON input due to high complexity: "
# Any integer literal out of range has at least 19 digits (2**63 has 19). Searched for
# as a run of 19 zeros in the body with every digit mapped to "0" (translate and a
# substring search run at C speed; a regex took ~200 us on a 10 KB transit batch).
_LONG_DIGITS = b"0" * 19
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))


@dataclass(frozen=True)
class JsonLimits:
    """Bounds on a JSON request body, as a listener configures them."""

    max_depth: int = MAX_JSON_DEPTH
    max_string_value_length: int = MAX_JSON_STRING_VALUE_LENGTH
    max_object_entry_count: int = MAX_JSON_OBJECT_ENTRY_COUNT
    max_array_element_count: int = MAX_JSON_ARRAY_ELEMENT_COUNT
    # Strongroom's own bounds on what a large body may cost to parse (see
    # _check_estimated_size): far above any real request, far below a memory bomb.
    estimate_above_bytes: int = 1 << 20
    max_containers: int = 100_000
    max_values: int = 500_000


DEFAULT_JSON_LIMITS = JsonLimits()

_METHOD_OPERATIONS = {
    "GET": Operation.READ,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "PATCH": Operation.PATCH,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
}
_TRUE = ("true", "1", "t", "yes")


@dataclass
class HttpRequest:
    method: str
    path: str  # below /v1/
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    remote_addr: str = ""
    remote_port: int = 0  # for the audit log (Vault's remote_port)
    # The TLS client certificate (DER) the connection presented (cert auth), if any.
    client_cert_der: bytes | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        return self.params.get(name)


def api_path(raw_path: str) -> str:
    """The path below /v1/, rejecting traversal and empty segments."""
    path = raw_path[len("/v1/"):]
    segments = path.split("/")
    # A trailing '/' (LIST on a folder) is the only empty segment allowed.
    body = segments[:-1] if path.endswith("/") else segments
    if path and any(seg in ("", ".", "..") for seg in body):
        raise BadRequestError("invalid request path: empty, '.' or '..' segment")
    if any(ord(ch) < 0x20 for ch in path):
        raise BadRequestError("invalid request path: control character")
    return path


def operation(req: HttpRequest) -> Operation:
    op = _METHOD_OPERATIONS.get(req.method)
    if op is None:
        raise UnsupportedOperationError(f"unsupported method {req.method}")
    if op is Operation.READ and (req.param("list") or "").lower() in _TRUE:
        return Operation.LIST
    if op is Operation.PATCH:
        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != MERGE_PATCH:
            raise UnsupportedMediaTypeError(
                f"PATCH requires Content-Type {MERGE_PATCH}, got {content_type!r}")
    return op


def parse_body(raw: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> dict[str, Any]:
    """The JSON object in the body ({} when empty); 400 if it is not one.

    Bodies beyond ``limits`` (nesting, string bytes, object entries, array
    elements) and integers orjson cannot hold exactly are refused here, before
    anything is stored or any token use is spent on them.
    """
    if not raw.strip():
        return {}
    _check_estimated_size(raw, limits)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit exceeded"):  # orjson's own cap, 1024 levels
            raise BadRequestError(_COMPLEX + "JSON input exceeds allowed nesting depth") from None
        raise BadRequestError(f"failed to parse JSON input: {exc.msg}") from None
    if doc is None:
        # Go's decoder leaves a map nil for `null`: Vault takes it as no body (the bao CLI
        # sends it, e.g. `bao login -wrap-ttl=...` unwrapping with an empty token argument).
        return {}
    if not isinstance(doc, dict):
        raise BadRequestError("failed to parse JSON input: body must be a JSON object")
    if not _within_limits_by_size(raw, limits):
        check_json_limits(doc, limits)
    if _LONG_DIGITS in raw.translate(_DIGITS_AS_ZERO):
        _check_integers(raw)
    return doc


def _within_limits_by_size(raw: bytes, limits: JsonLimits) -> bool:
    """True if the body's bytes alone prove every limit holds, so the walk of the parsed
    document (~1 us per value) can be skipped. Each count bounds what it limits, counting
    bytes inside strings too (so it errs towards walking): nesting depth <= the number of
    '{' and '['; an object's entries <= the number of ':'; an array's elements <= the
    number of ',' + 1; a decoded string's UTF-8 bytes <= its escaped form's bytes."""
    return (len(raw) <= limits.max_string_value_length
            and raw.count(b"{") + raw.count(b"[") <= limits.max_depth
            and raw.count(b":") <= limits.max_object_entry_count
            and raw.count(b",") < limits.max_array_element_count)


def _check_estimated_size(raw: bytes, limits: JsonLimits) -> None:
    """Refuse a large body whose parse alone would cost far more than its bytes.

    Every limit above is checked on the parsed document, but parsing 32 MiB of ``{}``
    builds ten million objects (a gigabyte, tens of seconds) before any check, and
    before the token is even looked at. Counting the bytes that open containers or
    separate values (memchr-fast; bytes inside strings count too, which errs on the
    safe side) bounds that work first; small bodies cannot be costly, so they skip it.
    """
    if len(raw) <= limits.estimate_above_bytes:
        return
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > limits.max_containers or (
            containers + raw.count(b",") + raw.count(b":") > limits.max_values):
        raise BadRequestError(_COMPLEX + "exceeded maximum estimated memory limits")


def check_json_limits(doc: Any, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> None:
    """Refuse (400) a parsed document beyond ``limits``; a loop, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise BadRequestError(_COMPLEX + "JSON input exceeds allowed nesting depth")
        if isinstance(node, dict):
            if len(node) > limits.max_object_entry_count:
                raise BadRequestError(_COMPLEX + "JSON object exceeds allowed entry count")
            values: Any = node.values()
            for key in node:
                _check_string(key, limits)
        else:
            if len(node) > limits.max_array_element_count:
                raise BadRequestError(_COMPLEX + "JSON array exceeds allowed element count")
            values = node
        for value in values:
            if isinstance(value, dict | list):
                stack.append((value, depth + 1))
            elif isinstance(value, str):
                _check_string(value, limits)


def _check_string(value: str, limits: JsonLimits) -> None:
    # Code points never outnumber UTF-8 bytes, and each takes at most four of them.
    if len(value) * 4 <= limits.max_string_value_length:
        return
    if len(value.encode("utf-8", "surrogatepass")) > limits.max_string_value_length:
        raise BadRequestError(_COMPLEX + "JSON string value exceeds allowed length")


class _IntegerOutOfRange(ValueError):
    pass


def _bounded_int(literal: str) -> int:
    value = int(literal)
    if not MIN_JSON_INTEGER <= value <= MAX_JSON_INTEGER:
        raise _IntegerOutOfRange
    return value


def _check_integers(raw: bytes) -> None:
    """Re-read a body holding a long digit run (rare) to see whether an integer
    literal, not a string, is out of range."""
    try:
        json.loads(raw, parse_int=_bounded_int)
    except _IntegerOutOfRange:
        raise BadRequestError(
            "failed to parse JSON input: integer out of range: integers must lie in "
            f"[{MIN_JSON_INTEGER}, {MAX_JSON_INTEGER}]") from None
    except ValueError:  # pragma: no cover - orjson read it already; json is laxer
        raise BadRequestError("failed to parse JSON input") from None


def request_data(req: HttpRequest, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> dict[str, Any]:
    """GET/LIST parameters, or the JSON body of a write, as Vault passes them on."""
    if req.method in ("GET", "HEAD", "LIST"):
        return {k: v for k, v in req.params.items() if k != "list"}
    return parse_body(req.body, limits)


def request_token(req: HttpRequest) -> str | None:
    token = req.header("x-vault-token")
    if token:
        return token
    auth = req.header("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def wrap_ttl(req: HttpRequest) -> int:
    return parse_wrap_ttl(req.header("x-vault-wrap-ttl"))
