"""The listener's fast path (http/fast_path.py) answers exactly as the h11 path does.

Each request is sent twice to a real dev server over raw sockets: once as it is
(a whole simple request: the fast path), once with a ``TE: trailers`` header, which
changes nothing about the request's meaning but which the fast path leaves to h11.
Status, headers (but the date) and body (but the request id) must be the same.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Iterator

import pytest

from tests.support.servers import ServerProcess, running, strongroom_env

H11 = b"TE: trailers\r\n"  # a header only h11 takes: forces the h11 path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fast")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = [sys.executable, "-m", "strongroom.cli.main", "server", "-dev",
            "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    with running(args, tmp, "dev.log", f"http://127.0.0.1:{port}",
                 env=strongroom_env()) as srv:
        yield srv


def _address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def read_answer(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """One whole answer (head, body) from ``sock``, and what came after it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def request(method: str, path: str, body: bytes = b"", extra: bytes = b"",
            token: str = "root") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {token}\r\n").encode()
    if body:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


# What differs between two answers to the same request: when and which write.
VOLATILE = {"request_id", "created_time", "version"}


def _stable(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_stable(v) for v in doc]
    return doc


def normalized(answer: bytes) -> tuple[bytes, list[bytes], object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *fields = head.split(b"\r\n")
    kept = sorted(f.lower() for f in fields
                  if not f.lower().startswith((b"date:", b"content-length:")))
    # The length is checked against the body; the body may differ in a version's digits.
    lengths = [f for f in fields if f.lower().startswith(b"content-length:")]
    assert lengths == [b"content-length: %d" % len(body)] or (
        status.startswith(b"HTTP/1.1 ") and lengths and not body), answer
    return status, kept, _stable(json.loads(body)) if body.startswith(b"{") else body


def exchange(server: ServerProcess, raw: bytes) -> bytes:
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(raw)
        answer, _ = read_answer(sock)
        return answer


CASES = [
    ("POST", "/v1/secret/data/fast", b'{"data":{"v":"1"}}'),
    ("GET", "/v1/secret/data/fast", b""),
    ("LIST", "/v1/secret/metadata/", b""),
    ("GET", "/v1/secret/metadata/?list=true", b""),
    ("GET", "/v1/secret/metadata/?list=1&list=0", b""),
    ("GET", "/v1/secret/data/nothing%20here", b""),
    ("GET", "/v1/sys/health", b""),
    ("HEAD", "/v1/sys/health", b""),
    ("GET", "/elsewhere", b""),
    ("FOO", "/v1/secret/data/fast", b""),
    ("POST", "/v1/secret/data/fast", b'{"data":'),
    ("GET", "/v1/auth/token/lookup-self", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_the_fast_path_answers_as_h11_does(server: ServerProcess, method: str, path: str,
                                           body: bytes) -> None:
    exchange(server, request("POST", "/v1/secret/data/fast", b'{"data":{"v":"1"}}'))
    slow = exchange(server, request(method, path, body, extra=H11))
    fast = exchange(server, request(method, path, body))
    assert normalized(fast) == normalized(slow), (fast, slow)


def test_a_bad_token_is_refused_on_both_paths(server: ServerProcess) -> None:
    fast = exchange(server, request("GET", "/v1/secret/data/fast", token="nope"))
    slow = exchange(server, request("GET", "/v1/secret/data/fast", token="nope", extra=H11))
    assert fast.startswith(b"HTTP/1.1 403 ") and normalized(fast) == normalized(slow)


def test_both_paths_take_turns_on_one_kept_alive_connection(server: ServerProcess) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        statuses = []
        for extra in (b"", H11, b"", b"", H11, H11, b""):
            sock.sendall(request("GET", "/v1/sys/health", extra=extra))
            answer, rest = read_answer(sock)
            assert rest == b""
            statuses.append(answer[:12])
        assert statuses == [b"HTTP/1.1 200"] * 7


def test_pipelined_requests_are_answered_in_order(server: ServerProcess) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(request("GET", "/v1/sys/health") + request("GET", "/nowhere")
                     + request("GET", "/v1/sys/health"))
        rest = b""
        statuses = []
        for _ in range(3):
            answer, rest = read_answer(sock, rest)
            statuses.append(answer[:12])
    assert statuses == [b"HTTP/1.1 200", b"HTTP/1.1 404", b"HTTP/1.1 200"]


def test_connection_close_is_honoured(server: ServerProcess) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(request("GET", "/v1/sys/health", extra=b"Connection: close\r\n"))
        answer, rest = read_answer(sock)
        assert b"\r\nconnection: close\r\n" in answer.lower()
        assert rest == b"" and sock.recv(100) == b""  # closed by the server
