"""Attacker-side review of issue 14 on real servers (raw sockets where framing matters).

F1: a status that forbids a body (1xx, 204, 304), which a client can choose
(``sys/health?activecode=``, transit's ``partial_failure_response_code``), must never be
followed by a body on a kept-alive connection: the next answer on that connection
would start inside the stray body (a response desync; behind a proxy that reuses
upstream connections, another client's answer). Go drops the body of a 204/304 and
follows a 1xx with a 200; each answer below must be followed by the next request's
own, intact answer, on the fast path and on the h11 path.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator

import pytest

from tests.support.servers import ServerProcess, running, strongroom_env

H11 = b"TE: trailers\r\n"  # a header only h11 takes: forces the h11 path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("review")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = [sys.executable, "-m", "strongroom.cli.main", "server", "-dev",
            "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    with running(args, tmp, "dev.log", f"http://127.0.0.1:{port}",
                 env=strongroom_env()) as srv:
        yield srv


def _exchange_then_follow(server: ServerProcess, first: bytes) -> bytes:
    """Send ``first``, then (once its answer has begun) a seal-status request on the
    same connection; everything received until the seal-status body is complete."""
    host, port = server.url.removeprefix("http://").split(":")
    follow = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(first)
        data = sock.recv(65536)
        assert data, "closed without an answer"
        try:
            sock.sendall(follow)
        except OSError:
            return data  # the server closed after the first answer: no desync possible
        sock.settimeout(3)
        while b'"storage_type"' not in data:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    return data


def _answers_are_framed(data: bytes) -> None:
    """Every response head starts right after the previous message ends."""
    rest = data
    while rest:
        assert rest.startswith(b"HTTP/1.1 "), f"desynchronised at {rest[:80]!r}"
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"incomplete head {head!r}"
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if status < 200 or status in (204, 304):
            assert length == 0, f"{status} declares a body: {head!r}"
        rest = rest[length:]


def _health(code: str, extra: bytes = b"") -> bytes:
    return (f"GET /v1/sys/health?activecode={code} HTTP/1.1\r\nHost: x\r\n".encode()
            + extra + b"\r\n")


def _batch(code: int, extra: bytes = b"") -> bytes:
    body = json.dumps({"partial_failure_response_code": code,
                       "batch_input": [{"plaintext": "aGk="}, {"plaintext": "!"}]}).encode()
    return (b"POST /v1/transit/encrypt/review-f1 HTTP/1.1\r\nHost: x\r\n"
            b"X-Vault-Token: root\r\nContent-Length: %d\r\n" % len(body) + extra
            + b"\r\n" + body)


@pytest.fixture(scope="module")
def transit(server: ServerProcess) -> None:
    import requests
    resp = requests.post(server.url + "/v1/sys/mounts/transit", json={"type": "transit"},
                         headers={"X-Vault-Token": "root"}, timeout=10)
    assert resp.status_code in (204, 400), resp.text


@pytest.mark.parametrize("path", [b"", H11], ids=["fast", "h11"])
@pytest.mark.parametrize("code", ["100", "101", "204", "304"])
def test_a_bodiless_health_status_never_desyncs_the_connection(
        server: ServerProcess, code: str, path: bytes) -> None:
    data = _exchange_then_follow(server, _health(code, path))
    _answers_are_framed(data)


@pytest.mark.parametrize("path", [b"", H11], ids=["fast", "h11"])
@pytest.mark.parametrize("code", [1, 99, 100, 103, 204, 304])
def test_a_bodiless_partial_failure_code_never_desyncs_the_connection(
        server: ServerProcess, transit: None, code: int, path: bytes) -> None:
    data = _exchange_then_follow(server, _batch(code, path))
    _answers_are_framed(data)


# F3: transit key names follow Vault's GenericNameRegex, whose \w is Go's (ASCII
# letters, digits, underscore) and which has no '@': OpenBao answers 404 for the
# others. Python's \w is Unicode, so a look-alike key ("pаy" with a Cyrillic 'а')
# could be created next to "pay", and names OpenBao cannot address were accepted.
@pytest.mark.parametrize(("name", "status"), [
    ("Plain_1", 200), ("a.b-c", 200), ("a..b", 200),
    ("a@b", 404), ("a%C3%A9", 404), ("p%D0%B0y", 404), ("%EF%BC%91", 404), ("-ab", 404),
])
def test_transit_key_names_are_vaults_ascii_names(server: ServerProcess, transit: None,
                                                  name: str, status: int) -> None:
    import requests
    for path in (f"transit/keys/{name}", f"transit/encrypt/{name}",
                 f"transit/datakey/plaintext/{name}"):
        body = {"plaintext": "aGk="} if "encrypt" in path else {}
        resp = requests.post(f"{server.url}/v1/{path}", json=body,
                             headers={"X-Vault-Token": "root"}, timeout=10)
        assert resp.status_code == status, (path, resp.text)
