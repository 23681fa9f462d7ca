"""Translate a Falcon request into the core's Request: path, operation, body, token."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from strongroom.core.request import Operation
from strongroom.core.wrapping import parse_wrap_ttl
from strongroom.errors import BadRequestError, RequestTooLargeError, UnsupportedMediaTypeError

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
MERGE_PATCH = "application/merge-patch+json"

_METHOD_OPERATIONS = {
    "GET": Operation.READ,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "PATCH": Operation.PATCH,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
}
_TRUE = ("true", "1", "t", "yes")


def api_path(req: falcon.Request) -> str:
    """The path below /v1/, rejecting traversal and empty segments."""
    path = req.path[len("/v1/"):]
    segments = path.split("/")
    # A trailing '/' (LIST on a folder) is the only empty segment allowed.
    body = segments[:-1] if path.endswith("/") else segments
    if path and any(seg in ("", ".", "..") for seg in body):
        raise BadRequestError("invalid request path: empty, '.' or '..' segment")
    if any(ord(ch) < 0x20 for ch in path):
        raise BadRequestError("invalid request path: control character")
    return path


def operation(req: falcon.Request) -> Operation:
    op = _METHOD_OPERATIONS.get(req.method)
    if op is None:
        raise falcon.HTTPMethodNotAllowed(list(_METHOD_OPERATIONS))
    if op is Operation.READ and req.get_param("list", default="").lower() in _TRUE:
        return Operation.LIST
    return op


def read_body(req: falcon.Request, max_size: int = DEFAULT_MAX_REQUEST_SIZE) -> dict[str, Any]:
    """The JSON object in the body ({} when empty); 413 past ``max_size``, 400 if not JSON."""
    length = req.content_length
    if length is not None and length > max_size:
        raise RequestTooLargeError("http: request body too large")
    raw = req.bounded_stream.read(max_size + 1)
    if len(raw) > max_size:
        raise RequestTooLargeError("http: request body too large")
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"failed to parse JSON input: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise BadRequestError("failed to parse JSON input: body must be a JSON object")
    return doc


def request_token(req: falcon.Request) -> str | None:
    token = req.get_header("X-Vault-Token")
    if token:
        return token
    auth = req.get_header("Authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def wrap_ttl(req: falcon.Request) -> int:
    return parse_wrap_ttl(req.get_header("X-Vault-Wrap-TTL"))


def check_patch_content_type(req: falcon.Request) -> None:
    """Vault accepts PATCH only as a JSON merge patch."""
    if (req.content_type or "").split(";")[0].strip().lower() != MERGE_PATCH:
        raise UnsupportedMediaTypeError(
            f"PATCH requires Content-Type {MERGE_PATCH}, got {req.content_type!r}")


def query_data(req: falcon.Request) -> dict[str, Any]:
    """GET parameters become request data, as in Vault (minus the list switch)."""
    return {k: v for k, v in req.params.items() if k != "list"}
