"""Key material in memory: mutable buffers that can be overwritten, never encoded copies.

Python's ``bytes`` and ``str`` are immutable: once a key has been one, its
bytes stay in the process's heap after the object is freed, until something
else happens to reuse that memory. After a seal that is a copy of the key for
anyone who can read the process's memory (a core dump, /proc/PID/mem, swap).
So keys live in ``bytearray`` objects that their owner overwrites with
:func:`wipe` when it is done with them, and the encodings the keys need
(base64 in the stored keyring, hex/base64 shares) are produced and parsed here
into and from bytearrays, by hand, without the stdlib codecs that return
``bytes``/``str``. The few immutable copies a library forces on us are zeroed
in place with :func:`wipe_immutable` (see its comment for why that is safe).
"""

from __future__ import annotations

import ctypes
import sys

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}
_HEX_VALUE = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
# Where the payload of a CPython bytes object starts (ob_sval): the fixed part of
# the object minus the trailing NUL that __basicsize__ counts.
_BYTES_DATA = bytes.__basicsize__ - 1
_STR_DATA = sys.getsizeof("") - 1


def random_key(size: int) -> bytearray:
    """``size`` random bytes read straight into a bytearray (os.urandom returns bytes)."""
    buf = bytearray(size)
    with open("/dev/urandom", "rb", buffering=0) as urandom:
        view = memoryview(buf)
        filled = 0
        while filled < size:
            got = urandom.readinto(view[filled:])
            if not got:
                raise OSError("short read from /dev/urandom")
            filled += got
        view.release()
    return buf


def wipe(buf: bytearray | memoryview | None) -> None:
    """Overwrite a mutable buffer with zeros, in place."""
    if buf is None or len(buf) == 0:
        return
    if isinstance(buf, memoryview):
        buf[:] = bytes(len(buf))
        return
    ctypes.memset((ctypes.c_char * len(buf)).from_buffer(buf), 0, len(buf))


def wipe_immutable(data: bytes) -> None:
    """Zero the payload of a ``bytes`` object that a library handed us, then never use it.

    Last resort, for copies we cannot avoid (AESGCM.decrypt of a caller's choice,
    bytes.fromhex of an unseal key arriving as text...). It writes into an object
    Python considers immutable, which is safe only because the caller owns the
    sole reference and drops it right after; objects of length 0 or 1 are shared
    singletons and are skipped (they hold no key material anyway).
    """
    if type(data) is not bytes or len(data) <= 1 or sys.implementation.name != "cpython":
        return
    ctypes.memset(id(data) + _BYTES_DATA, 0, len(data))


def wipe_immutable_str(text: object) -> None:
    """Zero an ASCII ``str`` that held a secret (a share's text), as :func:`wipe_immutable`.

    Only for a freshly decoded string that the caller alone references and drops
    next: never for literals or dictionary keys (they may be shared or hashed).
    """
    if (type(text) is not str or len(text) <= 1 or not text.isascii()
            or sys.implementation.name != "cpython"):
        return
    # A compact ASCII string's characters follow its fixed header (PyASCIIObject).
    ctypes.memset(id(text) + _STR_DATA, 0, len(text))


def b64_length(size: int) -> int:
    """Length of the padded base64 encoding of ``size`` bytes."""
    return -(-size // 3) * 4


def b64encode_at(out: bytearray, pos: int, data: bytes | bytearray | memoryview) -> int:
    """Write the padded base64 of ``data`` into ``out`` at ``pos``; returns the end position.

    ``out`` must already be long enough: a bytearray that grows is reallocated, and
    the old block, freed without being cleared, would keep a copy of what it held.
    """
    view = memoryview(data)
    try:
        for i in range(0, len(view), 3):
            chunk = view[i:i + 3]
            n = int.from_bytes(bytes(chunk) + b"\0" * (3 - len(chunk)), "big")
            quad = bytes((_B64[n >> 18], _B64[(n >> 12) & 63], _B64[(n >> 6) & 63],
                          _B64[n & 63]))
            if len(chunk) < 3:
                quad = quad[:len(chunk) + 1] + b"=" * (3 - len(chunk))
            out[pos:pos + 4] = quad
            pos += 4
    finally:
        view.release()
    return pos


def b64_text(data: bytes | bytearray) -> str:
    """Base64 text of a share with no intermediate ``bytes`` copy (b64encode makes one)."""
    buf = bytearray(b64_length(len(data)))
    b64encode_at(buf, 0, data)
    try:
        return buf.decode("ascii")
    finally:
        wipe(buf)


def b64decode_into(text: bytes | bytearray | memoryview) -> bytearray:
    """Decode standard, padded base64 (as ``b64decode(validate=True)``) into a new bytearray.

    Raises:
        ValueError: On a character outside the alphabet or a bad length or padding.
    """
    view = memoryview(text)
    end = len(view)
    while end and view[end - 1] == ord("="):
        end -= 1
    if len(view) % 4 or len(view) - end > 2:
        view.release()
        raise ValueError("invalid base64 length")
    # Sized up front: growing it would leave partial copies in freed memory.
    out = bytearray(end * 6 // 8)
    acc = bits = pos = 0
    try:
        for i in range(end):
            value = _B64_VALUE.get(view[i])
            if value is None:
                raise ValueError("invalid base64 character")
            acc = ((acc << 6) | value) & 0xFFFFFF
            bits += 6
            if bits >= 8:
                bits -= 8
                out[pos] = (acc >> bits) & 0xFF
                pos += 1
    except ValueError:
        wipe(out)
        raise
    finally:
        view.release()
        acc = 0
    return out


def hexdecode_into(text: bytes | bytearray | memoryview) -> bytearray:
    """Decode hex into a new bytearray.

    Raises:
        ValueError: On an odd length or a non-hex character.
    """
    view = memoryview(text)
    try:
        if len(view) % 2:
            raise ValueError("odd-length hex")
        out = bytearray(len(view) // 2)
        for i in range(len(out)):
            high, low = _HEX_VALUE.get(view[2 * i]), _HEX_VALUE.get(view[2 * i + 1])
            if high is None or low is None:
                wipe(out)
                raise ValueError("invalid hex character")
            out[i] = (high << 4) | low
        return out
    finally:
        view.release()
