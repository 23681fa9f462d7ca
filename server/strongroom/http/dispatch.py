"""One request in, one response out: raw sys routes, the core, Vault's envelope."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.core.core import Core
from strongroom.core.request import Request, Response
from strongroom.errors import StrongroomError
from strongroom.http.edge import (
    HttpRequest,
    api_path,
    operation,
    request_data,
    request_token,
    wrap_ttl,
)
from strongroom.http.sys_routes import RAW_ROUTES

log = logging.getLogger(__name__)
JSON = "application/json"


@dataclass
class HttpResult:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def envelope(resp: Response, request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "lease_id": resp.lease_id,
        "renewable": resp.renewable,
        "lease_duration": resp.lease_duration,
        "data": resp.data,
        "wrap_info": resp.wrap_info,
        "warnings": resp.warnings or None,
        "auth": resp.auth,
        "mount_type": resp.mount_type,
    }


def error_result(status: int, messages: list[str]) -> HttpResult:
    return HttpResult(status, orjson.dumps({"errors": messages}))


class Dispatcher:
    def __init__(self, core: Core) -> None:
        self.core = core

    def dispatch(self, req: HttpRequest) -> HttpResult:
        try:
            return self._dispatch(req)
        except StrongroomError as exc:
            # A bare 404 (nothing stored at a path) is Vault's {"errors": []}.
            return error_result(exc.status, [exc.message] if exc.message else [])
        except Exception:  # noqa: BLE001 - the edge answers 500, never a traceback
            log.exception("event=unhandled_error method=%s", req.method)
            return error_result(500, ["internal error"])

    def _dispatch(self, req: HttpRequest) -> HttpResult:
        req.path = api_path(req.path)
        raw = RAW_ROUTES.get(req.path.rstrip("/"))
        if raw is not None:
            status, body = raw(req, self.core)
            if body is None or req.method == "HEAD":
                return HttpResult(status)
            return HttpResult(status, orjson.dumps(body))
        core_req = Request(
            operation=operation(req),
            path=req.path,
            data=request_data(req),
            token=request_token(req),
            headers=req.headers,
            remote_addr=req.remote_addr,
            wrap_ttl=wrap_ttl(req),
        )
        result = self.core.handle(core_req)
        if result.raw:
            body = None if result.data is None else orjson.dumps(result.data)
            return HttpResult(result.status, body)
        if result.data is None and result.auth is None and result.wrap_info is None and not (
            result.warnings
        ) and result.status == 200:
            return HttpResult(204)
        body = envelope(result, core_req.request_id)
        if result.legacy_top_level and result.data:
            body = {**result.data, **body}
        return HttpResult(result.status, orjson.dumps(body))

