"""Go's decoders as Vault's transit engine uses them, with Go's error texts.

Clients see these texts per batch item (``illegal base64 data at input byte 3``),
and Vault's acceptance rules differ from Python's: Go's ``StdEncoding`` skips
``\\r`` and ``\\n`` anywhere, requires padding, and ignores non-zero trailing bits;
``strconv.Atoi`` takes a sign and leading zeros but no spaces or underscores.
"""

from __future__ import annotations

import binascii
import re

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = (0x0A, 0x0D)
_ATOI = re.compile(r"[+-]?[0-9]+")
INT64_MAX = (1 << 63) - 1


class GoBase64Error(ValueError):
    """``str()`` is Go's ``CorruptInputError`` text."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def b64decode(text: str) -> bytes:
    """``base64.StdEncoding.DecodeString(text)``; raises GoBase64Error."""
    try:
        # The common case: canonical input, decoded in C.
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    src = text.encode("utf-8", "surrogatepass")
    _scan(src)
    # Valid for Go: drop the newlines Go skips and decode leniently (trailing bits).
    cleaned = src.replace(b"\n", b"").replace(b"\r", b"")
    return binascii.a2b_base64(cleaned)


def _scan(src: bytes) -> None:
    """Walk the input as Go's decodeQuantum does, raising at Go's offset."""
    si = 0
    n = len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return
                raise GoBase64Error(si - j)
            c = src[si]
            si += 1
            if c in _ALPHABET:
                j += 1
                continue
            if c in _NEWLINES:
                continue
            if c != 0x3D:  # '='
                raise GoBase64Error(si - 1)
            if j in (0, 1):
                raise GoBase64Error(si - 1)
            if j == 2:
                while si < n and src[si] in _NEWLINES:
                    si += 1
                if si == n:
                    raise GoBase64Error(n)
                if src[si] != 0x3D:
                    raise GoBase64Error(si - 1)
                si += 1
            while si < n and src[si] in _NEWLINES:
                si += 1
            if si < n:
                raise GoBase64Error(si)
            return


def atoi(text: str) -> int | None:
    """``strconv.Atoi`` on a 64-bit platform; None where Go returns an error."""
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        return None
    return value
