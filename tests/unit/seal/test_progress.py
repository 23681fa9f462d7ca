"""The share collector shared by unseal, rekey and generate-root (seal/progress.py)."""

from __future__ import annotations

import base64
import hmac
import itertools

import pytest

from strongroom.errors import BadRequestError
from strongroom.seal import progress
from strongroom.seal.progress import ShareCollector, decode_share


def share(byte: int) -> bytearray:
    return bytearray([byte]) * 33


def counting_nonces() -> ShareCollector:
    numbers = itertools.count(1)
    return ShareCollector(nonce_factory=lambda: f"nonce-{next(numbers)}")


def test_a_round_has_one_nonce_from_its_first_share_until_the_threshold() -> None:
    collector = counting_nonces()
    assert (collector.progress, collector.nonce) == (0, "")
    assert collector.add(share(1), 3) is None
    assert (collector.progress, collector.nonce, collector.threshold) == (1, "nonce-1", 3)
    assert collector.add(share(2), 3) is None
    assert (collector.progress, collector.nonce) == (2, "nonce-1")
    parts = collector.add(share(3), 3)
    assert parts == [share(1), share(2), share(3)]
    assert (collector.progress, collector.nonce) == (0, "")
    collector.add(share(4), 3)
    assert collector.nonce == "nonce-2"  # a new round, a new nonce


def test_the_default_nonce_is_a_uuid4() -> None:
    collector = ShareCollector()
    collector.add(share(1), 2)
    nonce = collector.nonce
    assert len(nonce) == 36 and nonce[14] == "4"


def test_a_duplicate_share_is_ignored_and_wiped() -> None:
    collector = counting_nonces()
    collector.add(share(1), 2)
    again = share(1)
    assert collector.add(again, 2) is None
    assert collector.progress == 1 and collector.nonce == "nonce-1"
    assert again == bytearray(33)  # the collector took it and wiped it


def test_duplicates_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: bytearray, b: bytearray) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(progress.hmac, "compare_digest", spy)
    collector = ShareCollector()
    collector.add(share(1), 3)
    collector.add(share(2), 3)
    assert calls  # every comparison went through hmac.compare_digest


def test_reset_wipes_the_shares_and_forgets_the_nonce() -> None:
    collector = counting_nonces()
    given = [share(1), share(2)]
    for part in given:
        collector.add(part, 3)
    collector.reset()
    assert (collector.progress, collector.nonce, collector.threshold) == (0, "", 0)
    assert all(part == bytearray(33) for part in given)


def test_the_shares_returned_at_the_threshold_are_the_callers() -> None:
    collector = ShareCollector()
    first = share(7)
    collector.add(first, 2)
    parts = collector.add(share(8), 2)
    assert parts is not None and parts[0] is first
    collector.reset()
    assert first == share(7)  # no longer the collector's: reset does not touch it


def test_begin_starts_a_round_with_a_nonce_and_drops_the_previous_one() -> None:
    collector = counting_nonces()
    old = share(1)
    collector.add(old, 3)
    assert collector.begin() == "nonce-2"
    assert (collector.progress, collector.nonce) == (0, "nonce-2")
    assert old == bytearray(33)
    collector.add(share(2), 3)
    assert collector.nonce == "nonce-2"  # the explicit round's nonce is kept


@pytest.mark.parametrize("encode", [bytes.hex, lambda b: base64.b64encode(b).decode()])
def test_decode_share_accepts_hex_and_base64(encode: object) -> None:
    raw = bytes(range(33))
    assert callable(encode)
    decoded = decode_share(f"  {encode(raw)}\n")
    assert isinstance(decoded, bytearray) and decoded == raw


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("zz-not-a-key!", "'key' must be a valid hex or base64 string"),
        ("abcd", "invalid key: key is shorter than minimum 16 bytes"),
        ("ab" * 40, "invalid key: key is longer than maximum 33 bytes"),
    ],
)
def test_decode_share_refuses_with_vaults_messages(key: str, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        decode_share(key)
    assert caught.value.message == message
