"""The PKCS#11 seal against real SoftHSM tokens (no mock): wrap/unwrap over two
partitions, a partition missing, refusing the PIN, without its library or key."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from strongroom.config import ConfigError, SealConfig
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.seal.base import SealConfig as StoredSealConfig
from strongroom.seal.base import SealedRootKey, is_auto_seal
from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import CKM_AES_GCM, PartitionConfig, resolve
from tests.support.softhsm import USER_PIN, SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)

ROOT = bytearray(range(32))
SECRET_PIN = USER_PIN


def partition(hsm: SoftHsm, name: str, label: str, priority: int = 1, *,
              pin: str = USER_PIN, generate: bool = True, lib: str | None = None,
              key_label: str = "strongroom-root") -> PartitionConfig:
    return PartitionConfig(name=name, priority=priority, lib=lib or hsm.lib,
                           token_label=label, key_label=key_label, generate_key=generate,
                           pin=pin)


def two(hsm: SoftHsm) -> Pkcs11Seal:
    hsm.init_token("tok-a")
    hsm.init_token("tok-b")
    return Pkcs11Seal([partition(hsm, "hsm-b", "tok-b", 2), partition(hsm, "hsm-a", "tok-a", 1)])


def test_wraps_once_per_partition_and_unwraps(softhsm: SoftHsm) -> None:
    seal = two(softhsm)
    assert is_auto_seal(seal) and seal.type == "pkcs11"
    stored = seal.wrap(ROOT)
    assert [w.key_id for w in stored.wrapped] == ["tok-a/strongroom-root",
                                                  "tok-b/strongroom-root"]
    assert all(w.mechanism == "CKM_AES_GCM" and len(w.iv) == 12 for w in stored.wrapped)
    assert all(bytes(ROOT) not in w.ciphertext for w in stored.wrapped)
    assert stored.wrapped[0].iv != stored.wrapped[1].iv
    again = SealedRootKey.from_json(stored.to_json())
    assert seal.unwrap(again) == ROOT
    assert seal.health().degraded is False
    protected = seal.protect(ROOT, StoredSealConfig("pkcs11", 1, 1))
    assert protected.shares == [] and protected.stored is not None
    assert seal.recover([], protected.stored, StoredSealConfig("pkcs11", 1, 1)) == ROOT


def test_a_fresh_seal_object_unwraps_what_another_wrapped(softhsm: SoftHsm) -> None:
    stored = two(softhsm).wrap(ROOT)
    fresh = Pkcs11Seal([partition(softhsm, "hsm-a", "tok-a", generate=False),
                        partition(softhsm, "hsm-b", "tok-b", 2, generate=False)])
    assert fresh.unwrap(stored) == ROOT


def test_one_token_deleted_unwraps_from_the_other_and_reports_it(
        softhsm: SoftHsm, caplog: pytest.LogCaptureFixture) -> None:
    seal = two(softhsm)
    stored = seal.wrap(ROOT)
    moved = softhsm.delete_token("tok-a")
    caplog.set_level(logging.INFO, "strongroom.seal.pkcs11")
    assert seal.unwrap(stored) == ROOT
    health = seal.health()
    assert health.degraded is True
    assert health.reasons == ('seal partition "hsm-a" unavailable: token tok-a not found',)
    assert [(b.name, b.healthy) for b in health.backends] == [("hsm-a", False),
                                                              ("hsm-b", True)]
    assert health.backends[0].unhealthy_since is not None
    assert "event=seal_partition_lost seal=hsm-a" in caplog.text
    # Back: the next check sees it (the library is re-initialized) and logs the recovery.
    softhsm.restore_token(moved)
    seal.check()
    assert seal.health().degraded is False
    assert "event=seal_partition_recovered seal=hsm-a" in caplog.text


def test_both_tokens_gone_fails_with_each_reason(softhsm: SoftHsm) -> None:
    seal = two(softhsm)
    stored = seal.wrap(ROOT)
    softhsm.delete_token("tok-a")
    softhsm.delete_token("tok-b")
    with pytest.raises(StrongroomError) as err:
        seal.unwrap(stored)
    assert "hsm-a: token tok-a not found" in str(err.value)
    assert "hsm-b: token tok-b not found" in str(err.value)
    assert err.value.status == 500
    assert len(seal.health().reasons) == 2


def test_wrong_pin_is_reported_never_logged_and_not_retried(
        softhsm: SoftHsm, caplog: pytest.LogCaptureFixture) -> None:
    stored = two(softhsm).wrap(ROOT)
    wrong = "987654-wrong-pin"
    seal = Pkcs11Seal([partition(softhsm, "hsm-a", "tok-a", pin=wrong),
                       partition(softhsm, "hsm-b", "tok-b", 2)])
    caplog.set_level(logging.DEBUG)
    assert seal.unwrap(stored) == ROOT
    (reason,) = seal.health().reasons
    assert "PIN was refused (CKR_PIN_INCORRECT)" in reason and "not retried" in reason
    seal.check()  # skips hsm-a: a retried wrong PIN would lock a real HSM
    assert wrong not in caplog.text and wrong not in reason
    assert USER_PIN not in caplog.text
    assert wrong not in repr(seal.partitions) and USER_PIN not in repr(seal.partitions)


def test_missing_library_is_a_partition_failure(softhsm: SoftHsm, tmp_path: Path) -> None:
    stored = two(softhsm).wrap(ROOT)
    seal = Pkcs11Seal([partition(softhsm, "gone", "tok-a", lib=str(tmp_path / "nope.so")),
                       partition(softhsm, "hsm-b", "tok-b", 2)])
    assert seal.unwrap(stored) == ROOT
    (reason,) = seal.health().reasons
    assert reason.startswith('seal partition "gone" unavailable: cannot load the PKCS#11 '
                             f"library {tmp_path / 'nope.so'}")


def test_missing_key_without_generate_key(softhsm: SoftHsm) -> None:
    softhsm.init_token("tok-a")
    seal = Pkcs11Seal([partition(softhsm, "hsm-a", "tok-a", generate=False)])
    with pytest.raises(StrongroomError, match="key 'strongroom-root' not found in token "
                       r"tok-a \(generate_key is false\)"):
        seal.wrap(ROOT)


def test_a_partition_added_later_gets_its_wrap_on_complete(softhsm: SoftHsm) -> None:
    softhsm.init_token("tok-a")
    one = Pkcs11Seal([partition(softhsm, "hsm-a", "tok-a")])
    stored = one.wrap(ROOT)
    softhsm.init_token("tok-b")
    both = Pkcs11Seal([partition(softhsm, "hsm-a", "tok-a"),
                       partition(softhsm, "hsm-b", "tok-b", 2)])
    root = both.unwrap(stored)
    completed = both.complete(stored, root)
    assert completed is not None and len(completed.wrapped) == 2
    assert completed.wrapped[0] == stored.wrapped[0]  # never drops or replaces a wrap
    assert both.complete(completed, root) is None
    softhsm.delete_token("tok-a")
    assert both.unwrap(completed) == ROOT


def test_a_tampered_ciphertext_does_not_open(softhsm: SoftHsm) -> None:
    seal = two(softhsm)
    stored = seal.wrap(ROOT)
    flipped = tuple(replace(w, ciphertext=bytes([w.ciphertext[0] ^ 1]) + w.ciphertext[1:])
                    for w in stored.wrapped)
    with pytest.raises(StrongroomError, match="no seal partition could decrypt") as err:
        seal.unwrap(replace(stored, wrapped=flipped))
    assert ("hsm-a: token tok-a: the stored root key (tok-b/strongroom-root) does not "
            "decrypt with key 'strongroom-root'") in str(err.value)
    # One good wrap is enough.
    assert seal.unwrap(replace(stored, wrapped=(flipped[0], stored.wrapped[1]))) == ROOT


def test_recover_refuses_shares(softhsm: SoftHsm) -> None:
    seal = two(softhsm)
    with pytest.raises(BadRequestError):
        seal.recover([bytearray(32)], seal.wrap(ROOT), StoredSealConfig("pkcs11", 1, 1))


def test_bad_mechanism_in_config() -> None:
    stanza = SealConfig("pkcs11", {"lib": "/x.so", "token_label": "t", "pin": "1",
                                   "key_label": "k", "mechanism": "0x0009"})
    with pytest.raises(ConfigError, match="CKM_RSA_PKCS_OAEP is not supported"):
        resolve(stanza, {})
    for ok in ("0x1087", "4231", "CKM_AES_GCM", "aes_gcm"):
        good = SealConfig("pkcs11", {**stanza.options, "mechanism": ok})
        assert resolve(good, {}).mechanism == CKM_AES_GCM
