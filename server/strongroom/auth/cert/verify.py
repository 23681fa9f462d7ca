"""Which trusted certificate a TLS client certificate logs in with (Vault's
``verifyCredentials``), decided here with ``cryptography.x509``.

The listener already verified the client certificate against its
``tls_client_ca_file`` during the handshake; this is the method's own, independent
decision against the certificates its roles trust. Python 3.11's ``ssl`` hands over
only the leaf (not the chain the client sent), so a chain here is the leaf and one
trusted certificate that issued it directly. As in Go's ``x509.Verify`` with a roots
pool, every certificate of a CA role is a trust anchor: a role trusting a root whose
clients hold certificates from an intermediate lists the intermediate too (a PEM
bundle), and then matches through it.
"""

from __future__ import annotations

import datetime
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.framework.globmatch import glob_any

from .entry import CertEntry

NO_CERT = "no client certificate found"
INVALID = "invalid certificate or no client certificate supplied"
NO_MATCH = "no chain matching all constraints could be found for this login certificate"

_PEM_TYPES = (b"CERTIFICATE", b"TRUSTED CERTIFICATE")


def parse_pem_bundle(text: str) -> list[x509.Certificate]:
    """The certificates of a PEM bundle (Vault's ``parsePEM``: other blocks, blocks with
    headers and unparsable certificates are skipped)."""
    out: list[x509.Certificate] = []
    data = text.encode("utf-8", "replace")
    start = 0
    while True:
        begin = data.find(b"-----BEGIN ", start)
        if begin < 0:
            return out
        label_end = data.find(b"-----", begin + 11)
        if label_end < 0:
            return out
        label = data[begin + 11:label_end]
        end_marker = b"-----END " + label + b"-----"
        end = data.find(end_marker, label_end)
        if end < 0:
            return out
        start = end + len(end_marker)
        if label not in _PEM_TYPES:
            continue
        block = data[begin:start]
        body = block[label_end + 5 - begin:end - begin]
        if b":" in body:
            continue  # a block with headers (Proc-Type: ...) is not a plain certificate
        try:
            cert = x509.load_pem_x509_certificate(
                block.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE"))
            _ = cert.extensions  # parsed lazily: a malformed one would fail a login later
        except ValueError:
            continue
        out.append(cert)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def allows_client_auth(cert: x509.Certificate) -> bool:
    """No extended key usage at all, or one naming client authentication (or any)."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return (ExtendedKeyUsageOID.CLIENT_AUTH in usages
            or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages)


@dataclass
class Trusted:
    """One role and the certificates its ``certificate`` holds."""

    entry: CertEntry
    certs: list[x509.Certificate]


def _valid_at(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _issued_by(leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    if leaf.issuer != issuer.subject:
        return False
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def trusted_chains(leaf: x509.Certificate, roots: Iterable[x509.Certificate],
                   now: datetime.datetime) -> list[list[x509.Certificate]]:
    """Every chain ``[leaf, anchor]`` from ``roots``; none when the leaf is expired or
    not meant for client authentication (both refused by Go's ``Verify`` too)."""
    if not _valid_at(leaf, now) or not allows_client_auth(leaf):
        return []
    return [[leaf, root] for root in roots
            if _valid_at(root, now) and allows_client_auth(root) and _issued_by(leaf, root)]


def _last(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    # Go's pkix.Name keeps the last CommonName of the subject.
    values = name.get_attributes_for_oid(oid)
    return str(values[-1].value) if values else ""


def common_name(cert: x509.Certificate) -> str:
    return _last(cert.subject, NameOID.COMMON_NAME)


def _sans(cert: x509.Certificate, kind: type[x509.GeneralName]) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(kind)]  # type: ignore[arg-type]


def extension_strings(cert: x509.Certificate) -> dict[str, str]:
    """Each extension's value read as one ASN.1 string ("" when it is not one), keyed
    by its dotted OID (Vault's ``required_extensions`` and metadata extensions)."""
    return {ext.oid.dotted_string: _asn1_string(_raw_value(ext)) for ext in cert.extensions}


def _raw_value(ext: x509.Extension[x509.ExtensionType]) -> bytes:
    value = ext.value
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value
    try:
        return value.public_bytes()
    except (NotImplementedError, ValueError):
        return b""


# Go's asn1.Unmarshal into a string: these universal string types only.
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1",
                0x12: "ascii", 0x1E: "utf-16-be"}


def _asn1_string(der: bytes) -> str:
    if len(der) < 2 or der[0] not in _STRING_TAGS:
        return ""
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return ""
        length = int.from_bytes(der[2:2 + count], "big")
        offset = 2 + count
    content = der[offset:offset + length]
    if len(content) != length:
        return ""
    try:
        return content.decode(_STRING_TAGS[der[0]])
    except UnicodeDecodeError:
        return ""


def matches_constraints(leaf: x509.Certificate, chain: Sequence[x509.Certificate],
                        entry: CertEntry, revoked: set[str]) -> bool:
    """Vault's ``matchesConstraints``: no certificate of the chain revoked by a CRL
    (by serial number, as Vault), and every configured name constraint met."""
    if any(str(cert.serial_number) in revoked for cert in chain):
        return False
    cn = common_name(leaf)
    dns = _sans(leaf, x509.DNSName)
    emails = _sans(leaf, x509.RFC822Name)
    if entry.allowed_names and not (
            glob_any(entry.allowed_names, cn)
            or any(glob_any(entry.allowed_names, n) for n in dns + emails)):
        return False
    if entry.allowed_common_names and not glob_any(entry.allowed_common_names, cn):
        return False
    checks = ((entry.allowed_dns_sans, dns), (entry.allowed_email_sans, emails),
              (entry.allowed_uri_sans, _sans(leaf, x509.UniformResourceIdentifier)),
              (entry.allowed_organizational_units,
               [str(a.value) for a in leaf.subject.get_attributes_for_oid(
                   NameOID.ORGANIZATIONAL_UNIT_NAME)]))
    for patterns, values in checks:
        if patterns and not any(glob_any(patterns, v) for v in values):
            return False
    if entry.required_extensions:
        present = extension_strings(leaf)
        for required in entry.required_extensions:
            oid, _, pattern = required.partition(":")
            if oid not in present or not glob_any([pattern], present[oid]):
                return False
    return True


def match(leaf: x509.Certificate, trusted: Sequence[Trusted], revoked: set[str],
          now: datetime.datetime) -> Trusted | str:
    """The first role the certificate logs in with, or the error Vault answers."""
    leaf_der = leaf.public_bytes(Encoding.DER)
    cas = [t for t in trusted if is_ca(t.certs[0])]
    pinned = [t for t in trusted if not is_ca(t.certs[0])]
    for item in pinned:
        # A role holding the client's own (non-CA) certificate: that exact certificate.
        if hmac.compare_digest(item.certs[0].public_bytes(Encoding.DER), leaf_der) and (
                _valid_at(leaf, now)
                and matches_constraints(leaf, item.certs, item.entry, revoked)):
            return item
    chains = trusted_chains(leaf, [c for t in cas for c in t.certs], now)
    if not chains:
        return INVALID
    for item in cas:
        for anchor in item.certs:
            for chain in chains:
                if anchor in chain and matches_constraints(leaf, chain, item.entry, revoked):
                    return item
    return NO_MATCH
