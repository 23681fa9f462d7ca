"""pytest plugin the probe loads into hvac's test run (``-p hvac_plugin``).

It adapts hvac's harness to a server that takes a second to start instead of a few
milliseconds, without touching hvac's files:

hvac's ``ServerManager.start_vault`` waits for the *first* server of a cluster to answer
and then sets ``cluster_ready``, so it never waits for the second one (its HA tests run two
servers on one consul); it then unseals both, and the unseal of the second node gets
"connection refused" after 3 quick retries (0.1 s backoff). A Go ``vault`` binary listens
within milliseconds, Strongroom (gunicorn, Python imports) within about a second. After
``start_vault`` returns, this waits until every node it started answers
``sys/health`` (any status), up to 30 s, or until its process has exited.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any
from urllib.parse import urlsplit

import requests


def _wait_for_nodes(manager: Any, timeout: float = 30.0) -> None:
    from tests.utils import get_config_file_path  # type: ignore[import-not-found]

    deadline = time.monotonic() + timeout
    for address in manager.get_active_vault_addresses():
        while time.monotonic() < deadline:
            try:
                requests.get(f"{address}/v1/sys/health", timeout=2,
                             verify=get_config_file_path("server-cert.pem"))
                break
            except (requests.ConnectionError, requests.Timeout):
                if all(p.process.poll() is not None for p in manager._processes
                       if p.name == "vault"):
                    return  # every server died: hvac's own retry logic reports it
                time.sleep(0.1)


def pytest_configure(config: Any) -> None:
    from tests.utils.server_manager import ServerManager  # type: ignore[import-not-found]

    original = ServerManager.start_vault
    if getattr(original, "_probe_wrapped", False):
        return

    def start_vault(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        _wait_for_nodes(self)
        return result

    start_vault._probe_wrapped = True  # type: ignore[attr-defined]
    ServerManager.start_vault = start_vault
    if os.environ.get("PROBE_PATCH_CERT_LOGIN") == "1":
        _patch_cert_login()


def _patch_cert_login() -> None:
    """Opt-in (PROBE_PATCH_CERT_LOGIN=1): hvac 2.4.0's ``Cert.login`` called with a
    certificate path and no ``key_pem`` sends ``cert=(path, "")``, and urllib3 2 then
    opens a key file named "" (FileNotFoundError) before any request leaves: the login
    tests of test_cert.py never reach the server. This passes the key of the client's
    own certificate (hvac's test fixture) instead, so they do."""
    import hvac.api.auth_methods.cert as cert_module  # type: ignore[import-untyped]

    original = cert_module.Cert.login
    if getattr(original, "_probe_wrapped", False):
        return

    def login(self: Any, *args: Any, **kwargs: Any) -> Any:
        configured = self._adapter._kwargs.get("cert")
        if (not kwargs.get("key_pem") and configured
                and kwargs.get("cert_pem") == configured[0]):
            kwargs["key_pem"] = configured[1]
        return original(self, *args, **kwargs)

    login._probe_wrapped = True  # type: ignore[attr-defined]
    cert_module.Cert.login = login


# -- recording (PROBE_RECORD=<file>): every API exchange's shape, for probes/hvac_diff.py --

_CURRENT_TEST = ["(class setup)"]


def _shape(value: Any, depth: int = 0) -> Any:
    """The JSON's structure without its values: keys, and the type of each leaf."""
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        return {str(k): _shape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0], depth + 1)] if value else []
    if value is None:
        return "null"
    return type(value).__name__


def _record(path: str, request: Any, response: Any) -> None:
    import json

    url = urlsplit(request.url)
    if not url.path.startswith("/v1/"):
        return
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = "(not json)"
    sent = None
    if request.body:
        try:
            sent = _shape(json.loads(request.body))
        except (ValueError, TypeError):
            sent = "(not json)"
    record = {"test": _CURRENT_TEST[0], "method": request.method, "path": url.path,
              "query": url.query, "sent": sent, "status": response.status_code,
              "shape": _shape(body),
              "errors": body.get("errors") if isinstance(body, dict) else None}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def _patch_recording(path: str) -> None:
    original = requests.Session.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        # Recording must never change a test's outcome.
        with contextlib.suppress(Exception):
            _record(path, request, response)
        return response

    requests.Session.send = send  # type: ignore[method-assign]


def pytest_runtest_setup(item: Any) -> None:
    _CURRENT_TEST[0] = item.nodeid


def pytest_sessionstart(session: Any) -> None:
    record = os.environ.get("PROBE_RECORD")
    if record:
        _patch_recording(record)
