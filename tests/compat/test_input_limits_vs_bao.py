"""Integers and durations at and past Go's limits: Strongroom answers as OpenBao does.

Each request goes to a real ``bao server -dev`` and a real ``strongroom server -dev``
and the status codes must be equal (issue #9, point 6: values Vault refuses were
accepted, stored, and then broke later writes with a 500). After the whole table
the things those values used to break still work.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import (
    ServerProcess,
    bao_dev_server,
    bao_server,
    file_config,
    strongroom_dev_server,
    strongroom_server,
)

ROOT = "root"
TIMEOUT = 30.0
_names = itertools.count(1)

TOO_LONG = ["999999999999h", "2562048h", 9223372037, "106752d", 2**63 - 1, 2**63, 10**30]
DURATIONS = [*TOO_LONG, "2562047h", 9223372036, "106751d", "1d", "1.5h", ".5h", "5.h", "1µs",
             "+5", "-0", "010", " 5", "1.5", 1.5, 1.0, "1e3", "0x10", "xd", "abc", "", None,
             True, [], {}]
INTS = [2**63 - 1, 2**63, "9223372036854775807", "9223372036854775808", 10**30, -1, "-5",
        1.0, 1.5, "1.5", " 5", "0x10", "010", "1_0", "+5", True, "", None, "abc", [], {}]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    with bao_dev_server(tmp_path_factory.mktemp("bao"), ROOT) as bao, \
            strongroom_dev_server(tmp_path_factory.mktemp("sr"), ROOT) as sr:
        for srv in (bao, sr):
            call(srv, "POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        yield {"bao": bao, "strongroom": sr}


def call(srv: ServerProcess, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Vault-Token": ROOT, **(headers or {})})


def same_status(servers: dict[str, ServerProcess], method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> int:
    got = {name: call(srv, method, path, body, headers) for name, srv in servers.items()}
    statuses = {name: resp.status_code for name, resp in got.items()}
    assert statuses["strongroom"] == statuses["bao"], (
        method, path, body, {name: resp.text[:300] for name, resp in got.items()})
    assert statuses["strongroom"] != 500
    return statuses["bao"]


@pytest.mark.parametrize("value", DURATIONS, ids=repr)
def test_kv_delete_version_after(servers: dict[str, ServerProcess], value: Any) -> None:
    key = f"dva{next(_names)}"
    same_status(servers, "POST", f"secret/metadata/{key}", {"delete_version_after": value})
    for _ in range(2):
        assert same_status(servers, "POST", f"secret/data/{key}", {"data": {"a": 1}}) == 200
    assert same_status(servers, "GET", f"secret/data/{key}") == 200


@pytest.mark.parametrize("value", DURATIONS, ids=repr)
def test_kv_config_delete_version_after(servers: dict[str, ServerProcess], value: Any) -> None:
    same_status(servers, "POST", "secret/config", {"delete_version_after": value})
    key = f"cfg{next(_names)}"
    for _ in range(2):
        assert same_status(servers, "POST", f"secret/data/{key}", {"data": {"a": 1}}) == 200
    same_status(servers, "POST", "secret/config", {"delete_version_after": "0s"})


@pytest.mark.parametrize("value", INTS, ids=repr)
def test_kv_max_versions(servers: dict[str, ServerProcess], value: Any) -> None:
    key = f"mv{next(_names)}"
    same_status(servers, "POST", f"secret/metadata/{key}", {"max_versions": value})
    assert same_status(servers, "POST", f"secret/data/{key}", {"data": {"a": 1}}) == 200


@pytest.mark.parametrize("value", INTS, ids=repr)
def test_token_num_uses(servers: dict[str, ServerProcess], value: Any) -> None:
    same_status(servers, "POST", "auth/token/create", {"num_uses": value})


@pytest.mark.parametrize("value", DURATIONS, ids=repr)
@pytest.mark.parametrize("field", ["ttl", "explicit_max_ttl", "period"])
def test_token_create_durations(servers: dict[str, ServerProcess], field: str,
                                value: Any) -> None:
    same_status(servers, "POST", "auth/token/create", {field: value})


@pytest.mark.parametrize("value", DURATIONS, ids=repr)
@pytest.mark.parametrize("field", ["token_period", "token_explicit_max_ttl", "period"])
def test_token_role_durations(servers: dict[str, ServerProcess], field: str,
                              value: Any) -> None:
    role = f"role{next(_names)}"
    if same_status(servers, "POST", f"auth/token/roles/{role}", {field: value}) == 204:
        assert same_status(servers, "POST", f"auth/token/create/{role}", {}) == 200


@pytest.mark.parametrize("value", INTS, ids=repr)
def test_token_role_num_uses(servers: dict[str, ServerProcess], value: Any) -> None:
    role = f"role{next(_names)}"
    if same_status(servers, "POST", f"auth/token/roles/{role}",
                   {"token_num_uses": value}) == 204:
        assert same_status(servers, "POST", f"auth/token/create/{role}", {}) == 200


@pytest.mark.parametrize("value", ["18446744073709551616h", "2562048h", "9223372037",
                                   "9223372036854775808", "2562047h", "1h"])
@pytest.mark.parametrize("field", ["default_lease_ttl", "max_lease_ttl"])
def test_mount_tune(servers: dict[str, ServerProcess], field: str, value: str) -> None:
    same_status(servers, "POST", "sys/mounts/kv1/tune", {field: value})
    assert same_status(servers, "GET", "sys/mounts") == 200
    assert same_status(servers, "POST", "kv1/a", {"x": 1}) == 204
    assert same_status(servers, "GET", "kv1/a") == 200
    same_status(servers, "POST", "sys/mounts/kv1/tune",
                {"default_lease_ttl": "768h", "max_lease_ttl": "768h"})


@pytest.mark.parametrize("value", ["18446744073709551616h", "2562048h", "9223372037", "abc",
                                   "1.5", "5m"])
def test_wrap_ttl_header(servers: dict[str, ServerProcess], value: str) -> None:
    same_status(servers, "GET", "auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": value})


# -- sys/init: Go's strict struct decoding; null is a field left out ---------------------

INIT_BODIES = [
    {"secret_shares": None, "secret_threshold": None},
    {"secret_shares": "3", "secret_threshold": 2}, {"secret_shares": True, "secret_threshold": 1},
    {"secret_shares": 1.5, "secret_threshold": 1}, {"secret_shares": 1.0, "secret_threshold": 1},
    {"secret_shares": 2**63, "secret_threshold": 1}, {"secret_shares": 10**30,
                                                     "secret_threshold": 1},
    {"secret_shares": -1, "secret_threshold": 1}, {"secret_shares": 0, "secret_threshold": 1},
    {"secret_shares": 5, "secret_threshold": 6}, {"secret_shares": 5, "secret_threshold": "2"},
    {"secret_shares": 5, "secret_threshold": None}, {"secret_shares": [], "secret_threshold": 1},
]


@pytest.fixture(scope="module")
def uninitialized(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[dict[str, ServerProcess]]:
    with bao_server(tmp_path_factory.mktemp("bao-init")) as bao, \
            strongroom_server(tmp_path_factory.mktemp("sr-init"), file_config(1)) as sr:
        yield {"bao": bao, "strongroom": sr}


@pytest.mark.parametrize("body", INIT_BODIES, ids=repr)
def test_init_refusals(uninitialized: dict[str, ServerProcess], body: dict[str, Any]) -> None:
    assert same_status(uninitialized, "PUT", "sys/init", body) == 400
    for srv in uninitialized.values():
        assert call(srv, "GET", "sys/init").json() == {"initialized": False}


def test_init_with_null_optional_fields(uninitialized: dict[str, ServerProcess]) -> None:
    body = {"secret_shares": 1, "secret_threshold": 1, "stored_shares": None,
            "recovery_shares": None, "recovery_threshold": None, "pgp_keys": None}
    assert same_status(uninitialized, "PUT", "sys/init", body) == 200


@pytest.mark.parametrize("value", [b"a\x01b", b"a\x7fb", b"a\x1bb", b"a\x0bb", b"a\tb",
                                   b"caf\xc3\xa9", b"a\x00b"])
@pytest.mark.parametrize("path", ["/v1/sys/health", "/v1/secret/data/ctl"])
def test_control_characters_in_a_header_value(servers: dict[str, ServerProcess], path: str,
                                              value: bytes) -> None:
    """Go's net/http answers a control character (all but tab) in a header value with a
    plain 400 before any handler; h11 let them through (probe report, issue 15)."""
    answers = {}
    for name, srv in servers.items():
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         b"X-Vault-Token: root\r\nX-Probe: " + value + b"\r\n\r\n")
            head = sock.recv(65536).split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        fields = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip()
                  for line in head[1:]}
        answers[name] = (head[0], fields.get(b"content-type"),
                         fields.get(b"connection", b"").lower())
    assert answers["strongroom"] == answers["bao"]
