"""AES-256-GCM sealing of one value, the only place the barrier touches hazmat.

Layout of a sealed value: term (4 bytes, big-endian) | version (1) | nonce (12) |
ciphertext+tag. The storage path is the associated data, so an entry copied to
another path fails authentication instead of decrypting.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION_GCM_PATH_AAD = 2
NONCE_SIZE = 12
_HEADER = struct.Struct(">IB")
HEADER_SIZE = _HEADER.size + NONCE_SIZE


class DecryptError(Exception):
    """Authentication failed or the blob is malformed; deliberately carries no detail."""


def seal_value(aead: AESGCM, term: int, path: str,
               plaintext: bytes | bytearray) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    header = _HEADER.pack(term, VERSION_GCM_PATH_AAD)
    return header + nonce + aead.encrypt(nonce, plaintext, path.encode())


def read_term(blob: bytes) -> int:
    """The key term a sealed value was written with."""
    if len(blob) < HEADER_SIZE + 16:
        raise DecryptError
    term, version = _HEADER.unpack_from(blob)
    if version != VERSION_GCM_PATH_AAD:
        raise DecryptError
    return int(term)


def open_value_into(aead: AESGCM, path: str, blob: bytes) -> bytearray:
    """Like :func:`open_value`, into a new bytearray the caller wipes (for key material)."""
    if len(blob) < HEADER_SIZE + 16:
        raise DecryptError
    nonce = blob[_HEADER.size:HEADER_SIZE]
    out = bytearray(len(blob) - HEADER_SIZE - 16)
    try:
        aead.decrypt_into(nonce, blob[HEADER_SIZE:], path.encode(), out)
    except InvalidTag:
        raise DecryptError from None
    return out


def open_value(aead: AESGCM, path: str, blob: bytes) -> bytes:
    if len(blob) < HEADER_SIZE + 16:
        raise DecryptError
    nonce = blob[_HEADER.size:HEADER_SIZE]
    try:
        return aead.decrypt(nonce, blob[HEADER_SIZE:], path.encode())
    except InvalidTag:
        raise DecryptError from None
