"""A fast path through one connection for the requests Vault clients send most.

h11 parses every request into events and checks every response it writes; with
uvicorn's request cycle around it, that was ~35% of a worker's time on a KV read
(py-spy, bench/README.md). Most requests are simple: one HTTP/1.1 request, whole
in one read, headers plain, no body or a Content-Length body that is all there.
:func:`parse_simple` reads exactly those, and refuses (None) anything else, which
then goes to h11 unchanged: the fast path never decides what an odd request means.
So its grammar is h11's (the same token, target and field-value rules, the same
mandatory single Host header), only narrower:

- origin-form target (``/...``), ``HTTP/1.1``, an upper-case method (``LIST``
  included: methods are tokens, not a fixed table);
- no Transfer-Encoding, Expect or Upgrade, at most one Content-Length (digits
  only), a Connection header of ``keep-alive`` or ``close`` only;
- no obsolete line folding, no bare LF, a header block within h11's 16 KiB;
- nothing after the body (a pipelined request): h11 orders those;
- a body of at most 16 KiB (``MAX_BODY``): a larger one may ask for seconds of work,
  which the ASGI cycle runs on a thread.

The answer is written as h11 would write it (status line, uvicorn's default
headers such as Date, the app's headers, the body), after checking that no header
value could split the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

# h11's grammar (h11/_abnf.py), for bytes.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
# Narrower than h11's ``[^\x00\s]``: no control character (Go's net/http refuses them in
# a value with a 400; http/asgi.py does so for what h11 lets through).
_FIELD_VCHAR = rb"[^\x00-\x20\x7f]"
_FIELD_CONTENT = _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*"
_HEADER = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:" + _FIELD_CONTENT + rb")?)[ \t]*")
_REQUEST_LINE = re.compile(rb"([A-Z]+) (/[\x21-\x7e]*) HTTP/1\.1")
# h11's bound on a request head (DEFAULT_MAX_INCOMPLETE_EVENT_SIZE), which uvicorn keeps.
MAX_HEAD = 16 * 1024
# Headers that change how the message is framed or answered: h11 handles them.
_REFUSED = frozenset({"transfer-encoding", "expect", "upgrade", "te", "trailer"})
# A larger body goes to h11 and the ASGI cycle, which runs it on a thread
# (http/asgi.py LARGE_BODY): what it asks for may cost seconds (a transit batch).
MAX_BODY = 16 * 1024
# What may not appear in a header we write (response splitting).
_UNSAFE = re.compile(rb"[\x00\r\n]")

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


@dataclass
class SimpleRequest:
    method: str
    target: bytes
    headers: dict[str, str]  # lower-case names; a repeated header keeps its first value
    body: bytes
    close: bool  # the client sent Connection: close


def parse_simple(data: bytes) -> SimpleRequest | None:
    """``data`` as one whole simple request, or None (h11 takes it)."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return None
    headers: dict[str, str] = {}
    hosts = 0
    length: int | None = None
    close = False
    for raw in lines[1:]:
        field = _HEADER.fullmatch(raw)
        if field is None:
            return None  # folded, malformed, a bare LF, a control character...
        name = field.group(1).decode("ascii").lower()
        value = field.group(2).decode("latin-1")
        if name in _REFUSED:
            return None
        if name == "host":
            hosts += 1
        elif name == "content-length":
            if length is not None or not value.isdigit() or not value.isascii():
                return None
            length = int(value)
        elif name == "connection":
            option = value.lower()
            if option == "close":
                close = True
            elif option != "keep-alive":
                return None
        headers.setdefault(name, value)
    if hosts != 1:
        return None  # h11 refuses none or several (a 400): let it say so
    start = end + 4
    if length is not None and length > MAX_BODY:
        return None
    if len(data) - start != (length or 0):
        return None  # the body is incomplete, or a pipelined request follows
    return SimpleRequest(line.group(1).decode("ascii"), line.group(2), headers,
                         data[start:], close)


class UnsafeHeaderError(ValueError):
    """A header the app answered with would split the response (never sent)."""


def render_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The response as h11 writes it (headers in the order given, names as given)."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
    for name, value in headers:
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise UnsafeHeaderError(name.decode("latin-1"))
        out.append(b"%s: %s\r\n" % (name, value))
    out.append(b"\r\n")
    out.append(body)
    return b"".join(out)
