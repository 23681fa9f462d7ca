"""A small PKI for client-certificate tests: CAs, leaves, CRLs (``cryptography``)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def write(self, directory: Path, name: str) -> tuple[str, str]:
        """``name.pem`` and ``name-key.pem`` in ``directory``; their paths."""
        cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert.write_text(self.pem)
        key.write_text(self.key_pem)
        key.chmod(0o600)
        return str(cert), str(key)


def _name(cn: str, ous: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str, parent: Issued | None = None) -> Issued:
    """A CA (self-signed, or an intermediate of ``parent``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.cert.subject if parent else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    signer = parent.key if parent else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_leaf(ca: Issued | None, cn: str, *, dns: tuple[str, ...] = (),
              emails: tuple[str, ...] = (), uris: tuple[str, ...] = (),
              ous: tuple[str, ...] = (), ips: tuple[str, ...] = (),
              server: bool = False, client: bool = True,
              extensions: tuple[x509.UnrecognizedExtension, ...] = (),
              expired: bool = False) -> Issued:
    """A leaf issued by ``ca`` (self-signed when None) for client and/or server auth."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn, ous)
    end = _NOW - datetime.timedelta(minutes=1) if expired else _NOW + datetime.timedelta(days=1)
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + (
        [ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return Issued(builder.sign(ca.key if ca else key, hashes.SHA256()), key)


def make_crl(ca: Issued, revoked: list[Issued]) -> str:
    """A PEM CRL from ``ca`` revoking ``revoked``."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.cert.subject)
               .last_update(_NOW - datetime.timedelta(minutes=1))
               .next_update(_NOW + datetime.timedelta(days=1)))
    for item in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(item.cert.serial_number)
            .revocation_date(_NOW - datetime.timedelta(minutes=1)).build())
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def utf8_extension(oid: str, value: str) -> x509.UnrecognizedExtension:
    """An extension whose value is one DER UTF8String (for ``required_extensions``)."""
    raw = value.encode()
    assert len(raw) < 128
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), bytes([0x0C, len(raw)]) + raw)
