"""A fake Vault API for CLI unit tests, plugged in as a requests transport adapter."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

Reply = tuple[int, Any]
Handler = Callable[[requests.PreparedRequest], Reply]


class FakeApi(BaseAdapter):
    """A requests transport that answers from a route table instead of the network.

    Routes map ``(METHOD, "/v1/path")`` to a reply ``(status, body)``, a list of
    replies consumed in order, a handler ``request -> reply``, or an exception
    to raise. A body that is a dict is sent as JSON, a str raw, None empty.
    """

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Any] = {}
        self.requests: list[requests.PreparedRequest] = []

    def add(self, method: str, path: str, reply: Any) -> None:
        self.routes[(method, path)] = reply

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(r.body) if isinstance(r.body, bytes | str) and r.body else None
                for r in self.requests
                if r.method == method and urlsplit(r.url or "").path == path]

    def send(  # type: ignore[override]  # the fake ignores transport options
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.requests.append(request)
        parts = urlsplit(request.url or "")
        route = self.routes.get((request.method or "", parts.path))
        if isinstance(route, list):
            route = route.pop(0)
        if isinstance(route, BaseException):
            raise route
        if callable(route):
            route = route(request)
        status, body = route if route is not None else (404, {"errors": []})
        resp = requests.Response()
        resp.status_code = status
        resp.url = request.url or ""
        resp.request = request
        if isinstance(body, dict | list):
            resp._content = json.dumps(body).encode()
            resp.headers["Content-Type"] = "application/json"
        else:
            resp._content = (body or "").encode()
        return resp

    def close(self) -> None:
        pass

    @staticmethod
    def query(request: requests.PreparedRequest) -> dict[str, list[str]]:
        return parse_qs(urlsplit(request.url or "").query)
