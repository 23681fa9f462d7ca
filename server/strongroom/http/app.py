"""The Falcon application: one sink for /v1/, raw sys routes, Vault's envelope."""

from __future__ import annotations

import os
from typing import Any

import falcon
import orjson

from strongroom.core.core import Core
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import NotFoundError
from strongroom.http.edge import (
    DEFAULT_MAX_REQUEST_SIZE,
    api_path,
    check_patch_content_type,
    operation,
    query_data,
    read_body,
    request_token,
    wrap_ttl,
)
from strongroom.http.errors import JSON, handle_exception
from strongroom.http.sys_routes import RAW_ROUTES


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


class ApiSink:
    """Serves every /v1/ path."""

    def __init__(self, core: Core, max_request_size: int) -> None:
        self._core = core
        self._max = max_request_size
        # Off by default: lets multi-worker tests see which process answered.
        self._worker_header = os.environ.get("STRONGROOM_DEBUG_WORKER_HEADER") == "1"

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        resp.set_header("Cache-Control", "no-store")
        if self._worker_header:
            resp.set_header("X-Strongroom-Worker", str(os.getpid()))
        path = api_path(req)
        raw = RAW_ROUTES.get(path.rstrip("/"))
        if raw is not None:
            status, body = raw(req, self._core, self._max)
            resp.status = status
            resp.content_type = JSON
            if body is not None and req.method != "HEAD":
                resp.data = orjson.dumps(body)
            return
        op = operation(req)
        if op is Operation.PATCH:
            check_patch_content_type(req)
        reads = req.method in ("GET", "HEAD", "LIST")
        data = query_data(req) if reads else read_body(req, self._max)
        core_req = Request(
            operation=op,
            path=path,
            data=data,
            token=request_token(req),
            headers={k.lower(): v for k, v in req.headers.items()},
            remote_addr=req.remote_addr or "",
            wrap_ttl=wrap_ttl(req),
        )
        result = self._core.handle(core_req)
        if result.raw:
            resp.status = result.status
            resp.content_type = JSON
            resp.data = orjson.dumps(result.data)
            return
        if result.data is None and result.auth is None and result.wrap_info is None and not (
            result.warnings
        ):
            resp.status = 204
            return
        resp.status = result.status
        resp.content_type = JSON
        body = envelope(result, core_req.request_id)
        if result.legacy_top_level and result.data:
            body = {**result.data, **body}
        resp.data = orjson.dumps(body)


def _not_found(req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
    raise NotFoundError("404 page not found")


def build_falcon_app(
    core: Core, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App(media_type=JSON)
    app.req_options.auto_parse_qs_csv = False
    # Later sinks take precedence: anything outside /v1/ is a JSON 404.
    app.add_sink(_not_found, prefix="/")
    app.add_sink(ApiSink(core, max_request_size), prefix="/v1/")
    app.add_error_handler(Exception, handle_exception)
    return app
