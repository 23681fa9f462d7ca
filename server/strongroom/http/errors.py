"""Every error leaves as Vault's ``{"errors": [...]}`` with the status its type carries."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson

from strongroom.errors import StrongroomError

log = logging.getLogger(__name__)

JSON = "application/json"


def write_errors(resp: falcon.Response, status: int, messages: list[str]) -> None:
    resp.status = status
    resp.content_type = JSON
    resp.data = orjson.dumps({"errors": messages})


def handle_exception(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
) -> None:
    """Falcon error handler for everything raised below the edge."""
    if isinstance(exc, StrongroomError):
        # A bare 404 (nothing stored at a path) is Vault's {"errors": []}.
        write_errors(resp, exc.status, [exc.message] if exc.message else [])
    elif isinstance(exc, falcon.HTTPError):
        write_errors(resp, exc.status_code, [exc.title or "error"])
    else:
        # Never echo an unexpected exception: it may carry request data.
        log.exception("event=unhandled_error method=%s path=%s", req.method, req.path)
        write_errors(resp, 500, ["internal error"])
