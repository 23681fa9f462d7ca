"""random/: byte counts and sources from the URL or the body, as OpenBao reads them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from transit_vectors import call, router, warnings

SEAL_WARNING = "no seal/entropy augmentation available, using platform entropy source"


@pytest.fixture(scope="module")
def r() -> Any:
    return router({})


def _size(data: dict[str, str], fmt: str = "base64") -> int:
    text = data["random_bytes"]
    return len(bytes.fromhex(text)) if fmt == "hex" else len(base64.b64decode(text))


@pytest.mark.parametrize(("path", "body", "size"), [
    ("random", {}, 32),
    ("random", {"bytes": 4}, 4),
    ("random/8", {}, 8),
    ("random/8", {"bytes": 4}, 8),  # the URL wins
    ("random/seal", {"bytes": 3}, 3),
    ("random/all/4", {}, 4),
    ("random/platform/4", {}, 4),
    ("random/platform", {}, 32),
    ("random/131072", {}, 131072),
    ("random", {"urlbytes": "5"}, 32),  # a body "urlbytes" is not the URL
    ("random", {"source": "bogus", "bytes": 2}, 2),  # nor is a body "source"
    # "-1" is no source name: it is urlbytes, ignored without a source (as OpenBao).
    ("random/-1", {"bytes": 3}, 3),
])
def test_sizes(r: Any, path: str, body: dict[str, Any], size: int) -> None:
    status, data = call(r, path, body)
    assert status == 200
    assert _size(data) == size


def test_hex_and_fresh_bytes(r: Any) -> None:
    _, one = call(r, "random/16", {"format": "hex"})
    _, two = call(r, "random/16", {"format": "hex"})
    assert _size(one, "hex") == 16 and one != two
    assert len(one["random_bytes"]) == 32


def test_seal_source_warns(r: Any) -> None:
    assert warnings(r, "random/seal", {"bytes": 4}) == [SEAL_WARNING]
    assert warnings(r, "random/seal/4", {}) == [SEAL_WARNING]
    assert warnings(r, "random/all/4", {}) == []
    assert warnings(r, "random", {}) == []


BAD = [
    ("random/foo/4", {}, 'unsupported entropy source "foo"; must be "platform" or "seal", '
     'or "all"'),
    ("random/4/5", {}, 'unsupported entropy source "4"; must be "platform" or "seal", or "all"'),
    ("random/foo", {}, 'error parsing url-set byte count: strconv.Atoi: parsing "foo": '
     "invalid syntax"),
    ("random/seal/x", {}, 'error parsing url-set byte count: strconv.Atoi: parsing "x": '
     "invalid syntax"),
    ("random/platform/4/5", {}, 'error parsing url-set byte count: strconv.Atoi: parsing '
     '"4/5": invalid syntax'),
    ("random/99999999999999999999", {}, "error parsing url-set byte count: strconv.Atoi: "
     'parsing "99999999999999999999": value out of range'),
    ("random/0", {}, "'bytes' cannot be less than 1"),
    ("random", {"bytes": 0}, "'bytes' cannot be less than 1"),
    ("random", {"bytes": -5}, "'bytes' cannot be less than 1"),
    ("random/131073", {}, "'bytes' should be less than 131072"),
    ("random", {"format": "foo"}, 'unsupported encoding format "foo"; must be "hex" or '
     '"base64"'),
    ("random", {"format": ""}, 'unsupported encoding format ""; must be "hex" or "base64"'),
]


@pytest.mark.parametrize(("path", "body", "text"), BAD, ids=[f"{p}:{t[:30]}" for p, _, t in BAD])
def test_bad_requests(r: Any, path: str, body: dict[str, Any], text: str) -> None:
    assert call(r, path, body) == (400, text)
