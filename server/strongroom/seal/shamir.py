"""Shamir secret sharing over GF(2^8), share-compatible with HashiCorp Vault's ``shamir``.

Each byte of the secret is the constant term of its own random polynomial of
degree ``threshold - 1``. A share is the polynomials' values at one point ``x``
followed by ``x`` itself as a single trailing byte, which is Vault's wire format,
so unseal keys produced by either implementation combine with the other.

The field is the AES field: polynomial x^8 + x^4 + x^3 + x + 1 (0x11B), with 3 as
the generator for the log/exp tables.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

_FIELD_POLY = 0x11B
_GENERATOR = 3


def _build_tables() -> tuple[bytes, bytes]:
    exp = bytearray(255)
    log = bytearray(256)
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # Multiply by the generator 3: value * 2 (reduced) XOR value.
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= _FIELD_POLY
        value = doubled ^ value
    # log[0] stays 0; it is never used unmasked (see _mul).
    return bytes(exp), bytes(log)


_EXP, _LOG = _build_tables()


def _nonzero_mask(a: int) -> int:
    """0xFF if ``a`` (0..255) is non-zero, else 0, without branching on ``a``."""
    return (-a >> 8) & 0xFF


def _mul(a: int, b: int) -> int:
    """Multiply in GF(2^8); the zero case is masked, not branched on."""
    product = _EXP[(_LOG[a] + _LOG[b]) % 255]
    return product & _nonzero_mask(a) & _nonzero_mask(b)


def _div(a: int, b: int) -> int:
    """Divide in GF(2^8). ``b`` must be non-zero (callers only divide by public values)."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    return _EXP[(_LOG[a] - _LOG[b]) % 255] & _nonzero_mask(a)


def _evaluate(coefficients: bytes, x: int) -> int:
    """Evaluate a polynomial (lowest-degree coefficient first) at ``x`` by Horner's rule."""
    result = 0
    for coefficient in reversed(coefficients):
        result = _mul(result, x) ^ coefficient
    return result


def split(secret: bytes | bytearray, parts: int, threshold: int) -> list[bytearray]:
    """Split ``secret`` into ``parts`` shares, any ``threshold`` of which recover it.

    Args:
        secret: The non-empty secret to split.
        parts: Number of shares to produce, ``threshold <= parts <= 255``.
        threshold: Shares needed to recover the secret, at least 2.

    Returns:
        ``parts`` shares, each ``len(secret) + 1`` bytes: the y-values followed by
        the share's x-coordinate. x-coordinates are distinct, non-zero and in
        random order.

    Raises:
        ValueError: If the arguments are out of range or the secret is empty.
    """
    if not secret:
        raise ValueError("cannot split an empty secret")
    if parts < threshold:
        raise ValueError("parts cannot be less than threshold")
    if parts > 255:
        raise ValueError("parts cannot exceed 255")
    if threshold < 2:
        raise ValueError("threshold must be at least 2")

    # A random permutation of the non-zero field elements: x = 0 would be the secret.
    x_coords = secrets.SystemRandom().sample(range(1, 256), parts)
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for share, x in zip(shares, x_coords, strict=True):
        share[-1] = x

    for index, secret_byte in enumerate(secret):
        # Uniformly random higher coefficients (a zero leading one included) keep
        # any threshold-1 shares independent of the secret.
        coefficients = bytes([secret_byte]) + secrets.token_bytes(threshold - 1)
        for share, x in zip(shares, x_coords, strict=True):
            share[index] = _evaluate(coefficients, x)

    # Mutable, so the caller can wipe them once handed out (barrier/secmem.py).
    return shares


def combine(parts: Sequence[bytes | bytearray]) -> bytearray:
    """Recover a secret from shares produced by :func:`split` (or Vault).

    Given fewer shares than the threshold this returns an unrelated value rather
    than failing: Shamir shares carry no threshold or checksum.

    Args:
        parts: At least two shares of equal length (two bytes or more), with
            distinct, non-zero x-coordinates.

    Returns:
        The secret, one byte shorter than each share, as a bytearray the caller
        wipes when done (an immutable copy would outlive a seal in memory).

    Raises:
        ValueError: If the shares are too few, malformed or share an x-coordinate.
    """
    if len(parts) < 2:
        raise ValueError("less than two parts cannot be used to reconstruct the secret")
    length = len(parts[0])
    if length < 2:
        raise ValueError("parts must be at least two bytes")
    if any(len(part) != length for part in parts):
        raise ValueError("all parts must be the same length")

    x_coords = [part[-1] for part in parts]
    if 0 in x_coords:
        raise ValueError("part has an invalid x-coordinate of 0")
    if len(set(x_coords)) != len(x_coords):
        raise ValueError("duplicate part detected")

    # Lagrange basis at 0: w_i = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR.
    # Depends only on the public x-coordinates, so it is computed once.
    weights = []
    for i, x_i in enumerate(x_coords):
        weight = 1
        for j, x_j in enumerate(x_coords):
            if i != j:
                weight = _mul(weight, _div(x_j, x_j ^ x_i))
        weights.append(weight)

    secret = bytearray(length - 1)
    for index in range(length - 1):
        value = 0
        for part, weight in zip(parts, weights, strict=True):
            value ^= _mul(part[index], weight)
        secret[index] = value
    return secret
