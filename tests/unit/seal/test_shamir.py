"""Shamir secret sharing: round trips, threshold behaviour, Vault's share format."""

from __future__ import annotations

import itertools
import random
import secrets

import pytest

from strongroom.seal import shamir
from strongroom.seal.shamir import combine, split


def test_field_arithmetic_matches_aes_field() -> None:
    # FIPS-197 worked examples plus Vault's own field test values.
    assert shamir._mul(0x57, 0x83) == 0xC1
    assert shamir._mul(0x57, 0x13) == 0xFE
    assert shamir._mul(3, 7) == 9
    assert shamir._mul(3, 0) == 0
    assert shamir._mul(0, 3) == 0
    assert shamir._div(0, 7) == 0
    assert shamir._div(3, 3) == 1
    assert shamir._div(6, 3) == 2
    for a in range(256):
        for b in range(1, 256):
            assert shamir._mul(shamir._div(a, b), b) == a


def test_hand_computed_vector_in_vault_format() -> None:
    # f(x) = 0x42 + 3x: f(1) = 0x41, f(2) = 0x42 ^ (3*2) = 0x44; x is the last byte.
    assert combine([bytes([0x41, 0x01]), bytes([0x44, 0x02])]) == b"\x42"
    assert combine([bytes([0x44, 0x02]), bytes([0x41, 0x01])]) == b"\x42"


@pytest.mark.parametrize(
    ("parts", "threshold"),
    [(2, 2), (3, 2), (3, 3), (5, 3), (10, 7), (20, 20), (255, 2), (255, 3), (255, 255)],
)
def test_round_trip(parts: int, threshold: int) -> None:
    secret = secrets.token_bytes(32 if parts * threshold < 10_000 else 4)
    shares = split(secret, parts, threshold)
    assert len(shares) == parts
    assert all(len(share) == len(secret) + 1 for share in shares)
    xs = [share[-1] for share in shares]
    assert len(set(xs)) == parts and 0 not in xs
    assert combine(shares) == secret
    assert combine(random.sample(shares, threshold)) == secret


def test_x_coordinates_are_in_random_order() -> None:
    orders = {tuple(share[-1] for share in split(b"k", 5, 2)) for _ in range(20)}
    assert len(orders) > 1


def test_every_threshold_subset_recovers() -> None:
    secret = secrets.token_bytes(16)
    shares = split(secret, 6, 3)
    for size in (3, 4, 5, 6):
        for subset in itertools.combinations(shares, size):
            assert combine(list(subset)) == secret


def test_fewer_than_threshold_gives_another_secret() -> None:
    secret = secrets.token_bytes(32)
    shares = split(secret, 6, 4)
    for subset in itertools.combinations(shares, 3):
        assert combine(list(subset)) != secret
    assert combine(shares[:2]) != secret


def test_random_property_loop() -> None:
    rng = random.Random(secrets.randbits(64))
    for _ in range(150):
        secret = secrets.token_bytes(rng.randint(1, 48))
        threshold = rng.randint(2, 8)
        parts = rng.randint(threshold, 12)
        shares = split(secret, parts, threshold)
        assert combine(rng.sample(shares, rng.randint(threshold, parts))) == secret


def test_single_byte_secret_covers_every_value() -> None:
    for value in range(256):
        assert combine(split(bytes([value]), 3, 2)[1:]) == bytes([value])


def test_duplicate_x_rejected() -> None:
    shares = split(b"secret", 3, 2)
    with pytest.raises(ValueError, match="duplicate"):
        combine([shares[0], shares[0]])
    forged = shares[1][:-1] + shares[0][-1:]
    with pytest.raises(ValueError, match="duplicate"):
        combine([shares[0], forged])


@pytest.mark.parametrize(
    ("secret", "parts", "threshold", "message"),
    [
        (b"", 3, 2, "empty"),
        (b"s", 2, 3, "less than threshold"),
        (b"s", 256, 2, "exceed 255"),
        (b"s", 3, 1, "at least 2"),
        (b"s", 0, 0, "at least 2"),
    ],
)
def test_split_bad_args(secret: bytes, parts: int, threshold: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(secret, parts, threshold)


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [b"\x01\x02"],
        [b"\x01", b"\x02"],
        [b"\x01\x02", b"\x01\x02\x03"],
        [b"\x01\x00", b"\x02\x01"],
    ],
)
def test_combine_bad_args(parts: list[bytes]) -> None:
    with pytest.raises(ValueError):
        combine(parts)
