"""Go's decoders as transit's handlers use them, so errors read as OpenBao's.

OpenBao decodes every base64 input with ``base64.StdEncoding.DecodeString`` and
puts Go's error text in its answer ("unable to decode input as base64: illegal
base64 data at input byte 3"); clients and tests compare that text. Python's
decoders accept and refuse different inputs (line breaks, missing padding) and
say other things, so the slow path below follows Go's decoder step by step. The
fast path (``binascii`` in strict mode) only accepts inputs Go accepts too.
"""

from __future__ import annotations

import binascii
import re

_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_STD_MAP = {c: i for i, c in enumerate(_STD)}
_URL_MAP = {c: i for i, c in enumerate(_URL)}
_NEWLINES = (0x0A, 0x0D)
_ATOI = re.compile(r"[+-]?[0-9]+")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class Base64Error(ValueError):
    """Go's ``base64.CorruptInputError``; ``str()`` is Go's text."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def b64decode(text: str) -> bytes:
    """``base64.StdEncoding.DecodeString``: padded, '\\r' and '\\n' skipped."""
    raw = text.encode("utf-8", "surrogatepass")
    # binascii's strict mode still takes "AAAA====": padding only in the last two
    # places of whole quanta keeps the fast path to inputs Go decodes alike.
    if len(raw) % 4 == 0 and b"=" not in raw[:-2]:
        try:
            return binascii.a2b_base64(raw, strict_mode=True)
        except binascii.Error:
            pass
    return _go_decode(raw, _STD_MAP, padded=True)


def b64decode_raw_url(text: str) -> bytes:
    """``base64.RawURLEncoding.DecodeString`` (JWS signatures): no padding."""
    return _go_decode(text.encode("utf-8", "surrogatepass"), _URL_MAP, padded=False)


def _go_decode(src: bytes, alphabet: dict[int, int], padded: bool) -> bytes:
    """Go's ``Encoding.decode`` (non-strict), quantum by quantum, same offsets."""
    out = bytearray()
    si = 0
    n = len(src)
    while si < n:
        buf = [0, 0, 0, 0]
        dlen = 4
        j = 0
        trailing: int | None = None
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                if j == 1 or padded:
                    raise Base64Error(si - j)
                dlen = j
                break
            c = src[si]
            si += 1
            value = alphabet.get(c)
            if value is not None:
                buf[j] = value
                j += 1
                continue
            if c in _NEWLINES:
                continue
            if not padded or c != 0x3D:  # '='
                raise Base64Error(si - 1)
            # Padding: only after two or three symbols, and it ends the input.
            if j in (0, 1):
                raise Base64Error(si - 1)
            if j == 2:
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n:
                    raise Base64Error(n)
                if src[si] != 0x3D:
                    raise Base64Error(si - 1)
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            if si < n:
                trailing = si
            dlen = j
            break
        val = buf[0] << 18 | buf[1] << 12 | buf[2] << 6 | buf[3]
        out += val.to_bytes(3, "big")[: dlen - 1]
        if trailing is not None:
            raise Base64Error(trailing)
    return bytes(out)


def go_quote(text: str) -> str:
    """``strconv.Quote`` (Go's ``%q``): printable runes kept, the rest escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and code != 0x7F:
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def atoi(text: str) -> int:
    """``strconv.Atoi`` on a 64-bit platform; ValueError carries Go's text."""
    if not _ATOI.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value
