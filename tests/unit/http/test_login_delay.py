"""A failed login's backoff (``LoginFailedError.delay``) is awaited by the ASGI front
end: that connection's answer waits, the worker's event loop keeps serving others."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from strongroom.errors import LoginFailedError
from strongroom.http.asgi import StrongroomAsgi
from strongroom.http.dispatch import Dispatcher, HttpResult
from strongroom.http.edge import HttpRequest

DELAY = 0.3


class _Dispatcher:
    def dispatch(self, request: Any) -> HttpResult:
        if request.path.endswith("/login/alice"):
            result = HttpResult(400, b'{"errors":["invalid username or password"]}')
            result.delay = DELAY
            return result
        return HttpResult(204)


async def _call(app: StrongroomAsgi, path: str, done: dict[str, float]) -> int:
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [(b"content-length", b"2")], "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    done[path] = time.monotonic()
    return int(sent[0]["status"])


def test_delay_is_awaited_without_holding_the_loop() -> None:
    app = StrongroomAsgi(_Dispatcher(), max_size=1 << 20)  # type: ignore[arg-type]
    done: dict[str, float] = {}

    async def both() -> list[int]:
        start = time.monotonic()
        statuses = await asyncio.gather(_call(app, "/v1/auth/userpass/login/alice", done),
                                        _call(app, "/v1/secret/data/x", done))
        done["start"] = start
        return list(statuses)

    assert asyncio.run(both()) == [400, 204]
    assert done["/v1/auth/userpass/login/alice"] - done["start"] >= DELAY
    # The other request was answered while the failed login's answer waited.
    assert done["/v1/secret/data/x"] < done["/v1/auth/userpass/login/alice"]


def test_dispatcher_carries_the_delay() -> None:
    class Core:
        def sync(self) -> Any:
            raise LoginFailedError("invalid username or password", delay=2.5)

    dispatcher = Dispatcher.__new__(Dispatcher)
    dispatcher.core = Core()  # type: ignore[assignment]
    dispatcher.switched_off = frozenset()
    result = dispatcher.dispatch(HttpRequest(method="POST", path="/v1/auth/u/login/x",
                                             params={}, headers={}, body=b"{}"))
    assert result.status == 400 and result.delay == 2.5
    assert result.body == b'{"errors":["invalid username or password"]}'
