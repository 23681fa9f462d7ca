"""hash/: digests of base64 input in hex or base64, with OpenBao's checks and texts."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from transit_vectors import call, router

MSG = base64.b64encode(b"hello").decode()
ALGORITHMS = {"sha2-224": "sha224", "sha2-256": "sha256", "sha2-384": "sha384",
              "sha2-512": "sha512", "sha3-224": "sha3_224", "sha3-256": "sha3_256",
              "sha3-384": "sha3_384", "sha3-512": "sha3_512"}


@pytest.fixture(scope="module")
def r() -> Any:
    return router({})


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_every_algorithm_and_format(r: Any, alg: str) -> None:
    digest = hashlib.new(ALGORITHMS[alg], b"hello").digest()
    assert call(r, f"hash/{alg}", {"input": MSG}) == (200, {"sum": digest.hex()})
    assert call(r, "hash", {"input": MSG, "algorithm": alg, "format": "base64"}) == (
        200, {"sum": base64.b64encode(digest).decode()})


def test_defaults_and_known_values(r: Any) -> None:
    # OpenBao 2.7's answers for "hello" and for the empty input.
    assert call(r, "hash", {"input": MSG}) == (
        200, {"sum": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"})
    empty = (200, {"sum": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
    assert call(r, "hash", {"input": ""}) == empty
    assert call(r, "hash", {"input": None}) == empty  # sent as null: sent, empty
    assert call(r, "hash/sha3-512", {"input": MSG, "format": "base64"}) == (200, {
        "sum": "ddUnw2jy7+hI7Pawc6NnZ4AIBenu8rGFfV+YTwNutt+JHXX3LZsVRRjBzViDUobR2po43ro96Yta"
               "U+XteKhJdg=="})
    # The URL wins over the body; a body "urlalgorithm" is not the URL.
    assert call(r, "hash/sha2-512", {"input": MSG, "algorithm": "sha2-224"})[1]["sum"] == (
        hashlib.sha512(b"hello").hexdigest())
    assert call(r, "hash", {"input": MSG, "urlalgorithm": "sha2-512"})[1]["sum"] == (
        hashlib.sha256(b"hello").hexdigest())


BAD = [
    ({"input": MSG, "algorithm": "sha1"}, "hash", "unsupported algorithm sha1"),
    ({"input": MSG, "algorithm": "none"}, "hash", "unsupported algorithm none"),
    ({"input": MSG, "algorithm": ""}, "hash", "unsupported algorithm "),
    ({"input": MSG}, "hash/sha2-512/x", "unsupported algorithm sha2-512/x"),
    ({"input": MSG, "format": "foo"}, "hash",
     'unsupported encoding format foo; must be "hex" or "base64"'),
    ({"input": MSG, "format": ""}, "hash",
     'unsupported encoding format ; must be "hex" or "base64"'),
    ({"input": "!", "format": "foo"}, "hash",
     "unable to decode input as base64: illegal base64 data at input byte 0"),
    ({"input": "aGVsbG8==", "format": "foo"}, "hash",
     "unable to decode input as base64: illegal base64 data at input byte 8"),
    ({}, "hash", "input missing"),
]


@pytest.mark.parametrize(("body", "path", "text"), BAD, ids=[t for _, _, t in BAD])
def test_bad_requests(r: Any, body: dict[str, Any], path: str, text: str) -> None:
    assert call(r, path, body) == (400, text)


def test_line_breaks_in_base64_are_skipped_as_go_does(r: Any) -> None:
    assert call(r, "hash", {"input": "aGVs\r\nbG8="}) == call(r, "hash", {"input": MSG})
