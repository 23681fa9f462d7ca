"""OpenPGP protection of init output: key checks, share/token encryption, key files."""

from __future__ import annotations

import base64
from pathlib import Path

import pysequoia
import pytest
from pysequoia import CipherSuite, Tsk
from pysequoia.packet import PacketPile, Tag

from strongroom.errors import BadRequestError
from strongroom.seal import pgp, shamir


@pytest.fixture(scope="module")
def holders() -> list[Tsk]:
    """Three real keyholders, two key types (decrypting needs the secret keys)."""
    return [Tsk.generate("alice <alice@strongroom.test>"),
            Tsk.generate("bob <bob@strongroom.test>", cipher_suite=CipherSuite.P256),
            Tsk.generate("carol <carol@strongroom.test>")]


def public(tsk: Tsk) -> bytes:
    return bytes(tsk.extract_certificate())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decrypt(tsk: Tsk, message: bytes) -> bytes:
    plain = pysequoia.decrypt(message, decryptor=tsk.decryptor()).bytes
    assert plain is not None
    return plain


def sign_only(tsk: Tsk) -> bytes:
    """The certificate without its subkeys: a primary key that can only certify."""
    packets = []
    for packet in PacketPile.from_bytes(public(tsk)):
        if packet.tag == Tag.PublicSubkey:
            break
        packets.append(packet)
    return bytes(pysequoia.Cert.from_packets(packets))


def error_of(value: object) -> str:
    with pytest.raises(BadRequestError) as info:
        pgp.parse_public_key(value, "pgp_keys[0]")
    assert info.value.status == 400
    return info.value.message


# --- the wire format ----------------------------------------------------------------

def test_share_plaintext_is_the_hex_share(holders: list[Tsk]) -> None:
    shares = shamir.split(bytes(range(32)), 3, 2)
    certs = [pgp.parse_public_key(b64(public(h)), f"pgp_keys[{i}]")
             for i, h in enumerate(holders)]
    messages = pgp.encrypt_shares(shares, certs)
    for share, message, holder in zip(shares, messages, holders, strict=True):
        # A binary OpenPGP message (new-format PKESK packet first), not armor.
        assert message[0] == 0xC1
        assert decrypt(holder, message) == share.hex().encode()
    # Each is readable only by its own holder.
    with pytest.raises(RuntimeError):
        decrypt(holders[1], messages[0])
    recovered = [bytes.fromhex(decrypt(h, m).decode()) for h, m in zip(holders, messages,
                                                                      strict=True)]
    assert shamir.combine(recovered[:2]) == bytes(range(32))


def test_encrypt_shares_needs_one_key_per_share(holders: list[Tsk]) -> None:
    cert = pgp.parse_public_key(b64(public(holders[0])), "k")
    with pytest.raises(ValueError, match="one certificate per share"):
        pgp.encrypt_shares([b"a", b"b"], [cert])


def test_encryptions_differ_each_time(holders: list[Tsk]) -> None:
    cert = pgp.parse_public_key(b64(public(holders[0])), "k")
    assert pgp.encrypt(b"same", cert) != pgp.encrypt(b"same", cert)


# --- accepted key encodings ------------------------------------------------------------

def test_line_wrapped_base64_is_accepted(holders: list[Tsk]) -> None:
    """`gpg --export | base64` wraps at 76 columns; Go's decoder skips CR/LF too."""
    text = b64(public(holders[0]))
    wrapped = "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n"
    cert = pgp.parse_public_key(wrapped, "k")
    assert cert.fingerprint == holders[0].extract_certificate().fingerprint


# --- refused keys ------------------------------------------------------------------

def test_keybase_is_refused_with_a_reason() -> None:
    message = error_of("keybase:jefferai")
    assert "keybase" in message and "not supported" in message and "pgp_keys[0]" in message


@pytest.mark.parametrize("value", ["not base64!", "abc", "QUJD=X=="])
def test_bad_base64(value: str) -> None:
    assert error_of(value).startswith("error decoding given PGP key: pgp_keys[0] is not "
                                      "valid base64")


@pytest.mark.parametrize("value, fragment", [
    (None, "must be a string"),
    (42, "must be a string"),
    ("", "is empty"),
    ("   ", "is empty"),
    (b64(b"hello, this is no key"), "is not an OpenPGP key"),
])
def test_not_a_key(value: object, fragment: str) -> None:
    assert fragment in error_of(value)


def test_armored_key_is_refused_with_the_fix(holders: list[Tsk]) -> None:
    armored = str(holders[0].extract_certificate()).encode()
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    message = error_of(b64(armored))
    assert "ASCII-armored" in message and "gpg --export" in message


def test_secret_key_is_refused(holders: list[Tsk]) -> None:
    assert "secret key material" in error_of(b64(bytes(holders[0])))


def test_keyring_of_two_is_refused(holders: list[Tsk]) -> None:
    both = public(holders[0]) + public(holders[1])
    assert "more than one key" in error_of(b64(both))


def test_truncated_key_is_refused(holders: list[Tsk]) -> None:
    assert "is not an OpenPGP key" in error_of(b64(public(holders[0])[:40]))


def test_key_without_encryption_subkey_is_refused(holders: list[Tsk]) -> None:
    cert = sign_only(holders[0])
    assert pysequoia.Cert.from_bytes(cert)  # a well-formed certificate
    message = error_of(b64(cert))
    assert "has no usable encryption key" in message
    assert holders[0].extract_certificate().fingerprint in message


# --- the pgp_keys list -----------------------------------------------------------------

def test_share_keys_absent_or_empty_mean_no_encryption() -> None:
    assert pgp.parse_share_keys(None, 3) == []
    assert pgp.parse_share_keys([], 3) == []


def test_share_keys_count_must_match(holders: list[Tsk]) -> None:
    with pytest.raises(BadRequestError) as info:
        pgp.parse_share_keys([b64(public(holders[0]))] * 2, 3)
    assert info.value.message == ("invalid seal configuration: count mismatch between number "
                                  "of provided PGP keys and number of shares")


def test_share_keys_errors_name_the_entry(holders: list[Tsk]) -> None:
    with pytest.raises(BadRequestError) as info:
        pgp.parse_share_keys([b64(public(holders[0])), "%%%"], 2)
    assert info.value.message.startswith(
        "invalid seal configuration: error decoding given PGP key: pgp_keys[1]")


def test_share_keys_must_be_a_list(holders: list[Tsk]) -> None:
    with pytest.raises(BadRequestError, match="must be a list"):
        pgp.parse_share_keys(b64(public(holders[0])), 1)


# --- key files for `operator init -pgp-keys` -------------------------------------------

def test_key_files_binary_base64_and_armored(holders: list[Tsk], tmp_path: Path) -> None:
    raw = public(holders[0])
    (tmp_path / "k.gpg").write_bytes(raw)
    text = b64(raw)
    (tmp_path / "k.b64").write_text("\n".join(text[i:i + 64]
                                              for i in range(0, len(text), 64)) + "\n")
    (tmp_path / "k.asc").write_text(str(holders[0].extract_certificate()))
    fingerprint = holders[0].extract_certificate().fingerprint
    for name in ("k.gpg", "k.b64", "k.asc", "@k.gpg"):
        encoded = pgp.read_key_file(str(tmp_path / name) if name[0] != "@"
                                    else "@" + str(tmp_path / name[1:]))
        assert pgp.parse_public_key(encoded, name).fingerprint == fingerprint
    assert pgp.read_key_file(str(tmp_path / "k.gpg")) == text
    assert pgp.read_key_file(str(tmp_path / "k.b64")) == text


def test_key_file_errors(holders: list[Tsk], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-such-file"):
        pgp.read_key_file(str(tmp_path / "no-such-file"))
    with pytest.raises(ValueError, match="empty path"):
        pgp.read_key_file("@")
    (tmp_path / "secret.asc").write_text(str(holders[0]))
    with pytest.raises(ValueError, match="private key"):
        pgp.read_key_file(str(tmp_path / "secret.asc"))
    both = str(holders[0].extract_certificate()) + str(holders[1].extract_certificate())
    (tmp_path / "two.asc").write_text(both)
    with pytest.raises(ValueError, match="more than one key"):
        pgp.read_key_file(str(tmp_path / "two.asc"))
