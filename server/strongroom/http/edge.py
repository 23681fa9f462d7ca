"""Transport-neutral view of one HTTP request, and its translation rules.

Both the WSGI and the ASGI front ends build an ``HttpRequest`` and hand it to
the dispatcher; nothing here depends on the server interface.
"""

from __future__ import annotations

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


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in the body ({} when empty); 400 if it is not one."""
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"failed to parse JSON input: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise BadRequestError("failed to parse JSON input: body must be a JSON object")
    return doc


def request_data(req: HttpRequest) -> dict[str, Any]:
    """GET/LIST parameters, or the JSON body of a write, as Vault passes them on."""
    if req.method in ("GET", "HEAD", "LIST"):
        return {k: v for k, v in req.params.items() if k != "list"}
    return parse_body(req.body)


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
