"""The front ends: read the request, dispatch, write the answer.

The WSGI app (gthread, and the tests' ``falcon.testing`` client) is built on Falcon;
the ASGI app that the default worker serves is http/asgi.py. Which one gunicorn runs
is a measured choice (serve.py, bench/README.md).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import falcon

from strongroom.core.core import Core
from strongroom.http.asgi import StrongroomAsgi
from strongroom.http.dispatch import (
    JSON,
    NOT_FOUND_RESULT,
    TOO_LARGE_RESULT,
    WORKER_HEADER,
    Dispatcher,
    HttpResult,
    error_result,
)
from strongroom.http.edge import (
    DEFAULT_MAX_REQUEST_SIZE,
    HttpRequest,
)


def _http_request(req: falcon.Request, body: bytes) -> HttpRequest:
    return HttpRequest(
        method=req.method,
        path=req.path,
        # A repeated query parameter keeps its first value, as Go's url.Values.Get does.
        params={k: v if isinstance(v, str) else v[0] for k, v in req.params.items()},
        headers={k.lower(): v for k, v in req.headers.items()},
        body=body,
        remote_addr=req.remote_addr or "",
        remote_port=int(req.env.get("REMOTE_PORT") or 0),
        client_cert_der=_client_cert(req.env),
    )


def _client_cert(env: dict[str, Any]) -> bytes | None:
    """The TLS client certificate (DER) of a gthread worker's connection: gunicorn
    hands the app its socket, an ``ssl.SSLSocket`` on a TLS listener."""
    getpeercert = getattr(env.get("gunicorn.socket"), "getpeercert", None)
    if getpeercert is None:
        return None
    der = getpeercert(binary_form=True)
    return der if isinstance(der, bytes) and der else None


def _write(resp: falcon.Response, result: HttpResult) -> None:
    resp.status = result.status
    resp.set_header("Cache-Control", "no-store")
    if WORKER_HEADER:
        resp.set_header("X-Strongroom-Worker", str(os.getpid()))
    for name, value in result.headers.items():
        resp.set_header(name, value)
    if result.body is not None:
        resp.content_type = JSON
        resp.data = result.body


class WsgiSink:
    def __init__(self, dispatcher: Dispatcher, max_size: int) -> None:
        self._dispatcher = dispatcher
        self._max = max_size

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        if req.content_length is not None and req.content_length > self._max:
            _write(resp, TOO_LARGE_RESULT)
            return
        body = _read_wsgi_body(req, self._max + 1)
        if len(body) > self._max:
            _write(resp, TOO_LARGE_RESULT)
            return
        result = self._dispatcher.dispatch(_http_request(req, body))
        if result.delay > 0:
            # A failed login's backoff. WSGI has no event loop: this request's own
            # thread waits (gthread is kept for comparison only; uvicorn awaits it).
            time.sleep(result.delay)
        _write(resp, result)


def _read_wsgi_body(req: falcon.Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, chunked or not.

    Falcon's bounded stream trusts Content-Length alone and reads a chunked body
    (which has none) as empty; a server that de-chunks sets ``wsgi.input_terminated``,
    and then the raw input ends where the body does.
    """
    if req.content_length is None and req.env.get("wsgi.input_terminated"):
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = req.stream.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    return req.bounded_stream.read(limit)


def _not_found_wsgi(req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
    _write(resp, NOT_FOUND_RESULT)


def _falcon_error(req: Any, resp: Any, exc: falcon.HTTPError, params: Any) -> None:
    _write(resp, error_result(exc.status_code, [exc.title or "error"]))


def build_falcon_app(
    core: Core, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    switched_off: frozenset[str] = frozenset(),
) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App(media_type=JSON)
    app.req_options.auto_parse_qs_csv = False
    # Later sinks take precedence: anything outside /v1/ is a JSON 404.
    app.add_sink(_not_found_wsgi, prefix="/")
    app.add_sink(WsgiSink(Dispatcher(core, switched_off), max_request_size), prefix="/v1/")
    app.add_error_handler(falcon.HTTPError, _falcon_error)
    return app


def build_asgi_app(core: Core, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
                   threads: int = 0, switched_off: frozenset[str] = frozenset()
                   ) -> StrongroomAsgi:
    """The ASGI app (http/asgi.py); with ``threads`` the core runs in a pool of that many."""
    executor = ThreadPoolExecutor(threads, thread_name_prefix="core") if threads else None
    return StrongroomAsgi(Dispatcher(core, switched_off), max_request_size, executor)
