"""http/fast_path.py: which requests the fast path takes, and that it refuses the rest.

Everything refused goes to h11 unchanged, so a refusal is always safe; what must
never happen is the fast path accepting a request h11 would read differently (or
refuse). Each refused case below is one h11 handles (or answers 400) itself.
"""

from __future__ import annotations

import pytest

from strongroom.http.fast_path import (
    MAX_HEAD,
    UnsafeHeaderError,
    parse_simple,
    render_response,
)

GET = b"GET /v1/secret/data/x HTTP/1.1\r\nHost: a\r\nX-Vault-Token: root\r\n\r\n"


def test_a_plain_get_is_taken() -> None:
    req = parse_simple(GET)
    assert req is not None
    assert (req.method, req.target, req.body, req.close) == (
        "GET", b"/v1/secret/data/x", b"", False)
    assert req.headers == {"host": "a", "x-vault-token": "root"}


def test_vault_s_list_verb_and_a_query_are_taken() -> None:
    req = parse_simple(b"LIST /v1/secret/metadata/?list=true&a=%20 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert req is not None and req.method == "LIST"
    assert req.target == b"/v1/secret/metadata/?list=true&a=%20"


def test_a_body_with_its_content_length_is_taken() -> None:
    body = b'{"data":{"v":"x"}}'
    req = parse_simple(b"POST /v1/secret/data/x HTTP/1.1\r\nHost: a\r\nContent-Length: "
                       + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    assert req is not None and req.body == body and req.close


def test_header_values_are_trimmed_and_the_first_of_a_repeated_header_wins() -> None:
    req = parse_simple(b"GET / HTTP/1.1\r\nHost: a\r\nX-Vault-Token: \t one \t\r\n"
                       b"x-vault-token: two\r\nX-Empty:\r\n\r\n")
    assert req is not None
    assert req.headers["x-vault-token"] == "one" and req.headers["x-empty"] == ""


@pytest.mark.parametrize("raw", [
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\n",                                  # head incomplete
    b"GET /v1/x HTTP/1.0\r\nHost: a\r\n\r\n",                              # HTTP/1.0
    b"GET /v1/x HTTP/2.0\r\nHost: a\r\n\r\n",                              # other versions
    b"get /v1/x HTTP/1.1\r\nHost: a\r\n\r\n",                              # lower-case method
    b"GET http://a/v1/x HTTP/1.1\r\nHost: a\r\n\r\n",                      # absolute form
    b"GET /v1/x y HTTP/1.1\r\nHost: a\r\n\r\n",                            # space in target
    b"GET /v1/\x7fx HTTP/1.1\r\nHost: a\r\n\r\n",                          # DEL in target
    b"GET /v1/x HTTP/1.1\r\n\r\n",                                         # no Host
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                   # two Hosts
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",                # folded line
    b"GET /v1/x HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",                        # bare LF
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",                     # space before colon
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",                 # NUL in a value
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n",                  # bad name
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab",      # body incomplete
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nabc",     # more than the body
    b"POST /v1/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na",
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /v1/x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, te\r\n\r\n",
    GET + GET,                                                              # pipelined
])
def test_anything_else_is_left_to_h11(raw: bytes) -> None:
    assert parse_simple(raw) is None


def test_a_head_beyond_h11_s_bound_is_left_to_h11() -> None:
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n"
    assert parse_simple(big) is None


def test_the_answer_is_written_as_h11_writes_it() -> None:
    out = render_response(200, [(b"date", b"D"), (b"content-length", b"2")], b"{}")
    assert out == b"HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 2\r\n\r\n{}"
    assert render_response(299, [], b"").startswith(b"HTTP/1.1 299 \r\n")


@pytest.mark.parametrize("value", [b"a\r\nset-cookie: x", b"a\nb", b"a\x00"])
def test_a_header_that_would_split_the_answer_is_never_written(value: bytes) -> None:
    with pytest.raises(UnsafeHeaderError):
        render_response(307, [(b"location", value)], b"")
