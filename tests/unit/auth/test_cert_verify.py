"""The cert method's trust decision (auth/cert/verify.py) on its own."""

from __future__ import annotations

import datetime

from cryptography import x509

from strongroom.auth.cert.entry import CertEntry
from strongroom.auth.cert.verify import (
    INVALID,
    NO_MATCH,
    Trusted,
    _asn1_string,
    match,
    parse_pem_bundle,
)
from strongroom.http.asgi import _client_cert
from tests.support.pki import make_ca, make_leaf

NOW = datetime.datetime.now(datetime.UTC)


def test_a_look_alike_ca_with_the_same_name_is_not_an_issuer() -> None:
    real = make_ca("Same Name")
    forged = make_ca("Same Name")  # same subject, another key
    leaf = make_leaf(forged, "web")
    trusted = [Trusted(CertEntry("r"), [real.cert])]
    assert match(leaf.cert, trusted, set(), NOW) == INVALID
    good = make_leaf(real, "web")
    assert isinstance(match(good.cert, trusted, set(), NOW), Trusted)


def test_expiry_is_checked_against_the_clock() -> None:
    ca = make_ca("Clock")
    leaf = make_leaf(ca, "web")
    trusted = [Trusted(CertEntry("r"), [ca.cert])]
    later = NOW + datetime.timedelta(days=3)
    assert match(leaf.cert, trusted, set(), later) == INVALID


def test_revocation_is_by_serial_anywhere_in_the_chain() -> None:
    ca = make_ca("Revoking")
    leaf = make_leaf(ca, "web")
    trusted = [Trusted(CertEntry("r"), [ca.cert])]
    assert match(leaf.cert, trusted, {str(ca.cert.serial_number)}, NOW) == NO_MATCH
    assert match(leaf.cert, trusted, {str(leaf.cert.serial_number)}, NOW) == NO_MATCH


def test_pem_bundles_skip_what_is_not_a_plain_certificate() -> None:
    a, b = make_ca("A"), make_ca("B")
    key_block = a.key_pem
    with_headers = b.pem.replace("-----BEGIN CERTIFICATE-----\n",
                                 "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n")
    text = "junk\n" + key_block + a.pem + with_headers + b.pem.replace(
        "CERTIFICATE", "TRUSTED CERTIFICATE")
    parsed = parse_pem_bundle(text)
    assert [c.subject for c in parsed] == [a.cert.subject, b.cert.subject]
    assert parse_pem_bundle("") == [] and parse_pem_bundle("-----BEGIN CERT") == []


def test_asn1_strings() -> None:
    assert _asn1_string(bytes([0x0C, 3]) + b"abc") == "abc"
    assert _asn1_string(bytes([0x13, 2]) + b"ok") == "ok"
    assert _asn1_string(bytes([0x0C, 0x81, 3]) + b"abc") == "abc"
    assert _asn1_string(bytes([0x04, 3]) + b"abc") == ""  # an OCTET STRING: not a string
    assert _asn1_string(bytes([0x0C, 5]) + b"abc") == ""  # truncated
    assert _asn1_string(b"") == ""


def test_the_asgi_scope_carries_the_certificate() -> None:
    leaf = make_leaf(make_ca("Scope"), "web")
    der = leaf.der
    assert _client_cert({"extensions": {"tls": {"client_cert_der": der}}}) == der
    pem_only = {"extensions": {"tls": {"client_cert_chain": [leaf.pem]}}}
    assert _client_cert(pem_only) == der
    assert _client_cert({}) is None
    assert _client_cert({"extensions": {"tls": {"client_cert_chain": []}}}) is None
    assert x509.load_der_x509_certificate(der).subject == leaf.cert.subject
