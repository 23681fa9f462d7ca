"""Auth methods' paths never run on a worker's event loop: a login may wait on a
password hash or a directory server, and the loop serves every other connection of
the worker. The token store's paths stay inline (they are as quick as any other)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from strongroom.http.asgi import StrongroomAsgi, runs_on_thread
from strongroom.http.dispatch import HttpResult


@pytest.mark.parametrize(("path", "threaded"), [
    ("/v1/auth/userpass/login/alice", True),
    ("/v1/auth/ldap/login/bob", True),
    ("/v1/auth/approle/role/r/secret-id", True),
    ("/v1/auth/token/lookup-self", False),
    # A renewal may ask the login's method (ldap: the directory) again.
    ("/v1/auth/token/renew-self", True),
    ("/v1/auth/token/renew-accessor", True),
    ("/v1/sys/leases/renew", True),
    ("/v1/sys/renew/auth/ldap/login/x/abc", True),
    ("/v1/auth/token", False),
    ("/v1/secret/data/auth/x", False),
    ("/v1/sys/auth/userpass", False),
])
def test_which_paths_run_on_a_thread(path: str, threaded: bool) -> None:
    assert runs_on_thread(path) is threaded


class _RecordingDispatcher:
    """Records the thread each request ran on (the dispatcher's real work is not the
    subject here: which thread calls it is)."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def dispatch(self, request: Any) -> HttpResult:
        self.threads.append(threading.current_thread().name)
        return HttpResult(204)


def _call(app: StrongroomAsgi, path: str) -> None:
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [(b"content-length", b"2")], "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 204


def test_a_login_runs_on_a_thread_and_the_token_store_inline() -> None:
    dispatcher = _RecordingDispatcher()
    app = StrongroomAsgi(dispatcher, max_size=1 << 20)  # type: ignore[arg-type]
    assert app.inline  # local storage: the core runs on the loop by default
    main = threading.current_thread().name
    _call(app, "/v1/auth/userpass/login/alice")
    _call(app, "/v1/auth/token/lookup-self")
    assert dispatcher.threads[0].startswith("core-large")
    assert dispatcher.threads[1] == main


class _Mount:
    def __init__(self, type_: str) -> None:
        self.type = type_


class _Router:
    """The mounts this process's router has loaded (another worker may know more)."""

    def __init__(self, mounts: dict[str, str]) -> None:
        self._mounts = mounts

    def match(self, path: str) -> tuple[_Mount, None, str] | None:
        for prefix, type_ in self._mounts.items():
            if path.startswith(prefix):
                return _Mount(type_), None, path[len(prefix):]
        return None


class _CoreDispatcher(_RecordingDispatcher):
    def __init__(self, mounts: dict[str, str]) -> None:
        super().__init__()
        self.core = type("Core", (), {"router": _Router(mounts)})()


def test_a_directory_login_has_threads_of_its_own_even_on_a_mount_not_loaded_yet() -> None:
    """A mount another worker enabled a moment ago is unknown to this process's router
    until dispatch syncs the core: such a login may wait on a silent directory, so it
    must not take the shared pool that token renewals and other logins run on."""
    dispatcher = _CoreDispatcher({"auth/ldap/": "ldap", "auth/userpass/": "userpass",
                                  "auth/token/": "token"})
    app = StrongroomAsgi(dispatcher, max_size=1 << 20)  # type: ignore[arg-type]
    main = threading.current_thread().name
    for path in ("/v1/auth/ldap/login/bob", "/v1/auth/ldap-new/login/bob",
                 "/v1/auth/userpass/login/alice", "/v1/auth/token/renew-self",
                 "/v1/sys/leases/renew", "/v1/auth/token/lookup-self", "/v1/secret/data/x"):
        _call(app, path)
    # A renewal may bind to a directory again (an ldap token's): threads of its own, so a
    # silent directory holds renewals only, never the shared pool's logins.
    assert [name.split("_")[0] for name in dispatcher.threads] == [
        "core-directory", "core-directory", "core-large", "core-renewal", "core-renewal",
        main, main]
