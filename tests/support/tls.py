"""TLS material for tests: a self-signed certificate for 127.0.0.1 that is its own CA."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# A one-worker server on file storage with TLS from write_self_signed(workdir);
# for strongroom_server(); ``%s`` takes extra listener lines (e.g. tls_min_version).
TLS_FILE_CONFIG = """
storage "file" {{
  path = "{workdir}/data"
}}
listener "tcp" {{
  address         = "127.0.0.1:{port}"
  tls_cert_file   = "{workdir}/cert.pem"
  tls_key_file    = "{workdir}/key.pem"
  %s
}}
workers = 1
"""


def write_self_signed(workdir: Path) -> Path:
    """Write ``cert.pem`` and ``key.pem`` into ``workdir``; returns the certificate's path.

    Clients verify against the certificate itself, so it serves as the CA file too.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (workdir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return workdir / "cert.pem"
