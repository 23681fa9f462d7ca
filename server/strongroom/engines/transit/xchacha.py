"""XChaCha20-Poly1305 (as Go's ``chacha20poly1305.NewX`` and libsodium), built on
``cryptography``'s ChaCha20 and ChaCha20-Poly1305, which lack the extended-nonce form.

XChaCha20-Poly1305 with a 24-byte nonce is ChaCha20-Poly1305 under the subkey
HChaCha20(key, nonce[:16]) with the 12-byte nonce 0^4 || nonce[16:]. HChaCha20 is the
ChaCha20 block function without its final addition of the input state, keeping words
0-3 and 12-15: one ChaCha20 keystream block whose 16-byte nonce field (counter ||
nonce) is nonce[:16] gives those words plus the known input words, which are
subtracted back out.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

NONCE_SIZE = 24
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_ZERO_BLOCK = bytes(64)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    encryptor = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor()
    block = struct.unpack("<16I", encryptor.update(_ZERO_BLOCK))
    inputs = struct.unpack("<4I", nonce16)
    words = [(block[i] - _SIGMA[i]) & 0xFFFFFFFF for i in range(4)]
    words += [(block[12 + i] - inputs[i]) & 0xFFFFFFFF for i in range(4)]
    return struct.pack("<8I", *words)


class XChaCha20Poly1305:
    """The ``cryptography`` AEAD interface (encrypt/decrypt) with 24-byte nonces."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("XChaCha20-Poly1305 key must be 32 bytes")
        self._key = key

    def _inner(self, nonce: bytes) -> tuple[ChaCha20Poly1305, bytes]:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("XChaCha20-Poly1305 nonce must be 24 bytes")
        return ChaCha20Poly1305(hchacha20(self._key, nonce[:16])), b"\0\0\0\0" + nonce[16:]

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        aead, inner_nonce = self._inner(nonce)
        return aead.encrypt(inner_nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        aead, inner_nonce = self._inner(nonce)
        return aead.decrypt(inner_nonce, data, associated_data)
