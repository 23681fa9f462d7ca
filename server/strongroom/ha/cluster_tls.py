"""The cluster certificate: mutual TLS between the nodes of one cluster.

The active node generates one self-signed certificate and key when it takes
over and stores them through the barrier (so only unsealed nodes can read
them). Every node presents it and trusts only it, so a forwarded request is
accepted only from a node that could unseal. Python's ssl module loads keys
from files only: the PEM goes into an anonymous memory file (memfd), never to
disk.
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLUSTER_NAME = "strongroom-cluster"


@dataclass(frozen=True)
class ClusterIdentity:
    cert_pem: bytes
    key_pem: bytes  # never logged, never written to disk


def generate_identity(valid_days: int = 3650) -> ClusterIdentity:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLUSTER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(CLUSTER_NAME)]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClusterIdentity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
    )


def _load_chain(context: ssl.SSLContext, identity: ClusterIdentity) -> None:
    fd = os.memfd_create("strongroom-cluster", os.MFD_CLOEXEC)
    try:
        os.write(fd, identity.cert_pem + identity.key_pem)
        path = f"/proc/self/fd/{fd}"
        context.load_cert_chain(path)
    finally:
        os.close(fd)


def server_context(identity: ClusterIdentity) -> ssl.SSLContext:
    """Accepts only peers presenting the cluster certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    _load_chain(context, identity)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=identity.cert_pem.decode())
    return context


def client_context(identity: ClusterIdentity) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    _load_chain(context, identity)
    context.load_verify_locations(cadata=identity.cert_pem.decode())
    # The certificate is pinned (it is the only trust anchor), whatever host it answers on.
    context.check_hostname = False
    return context
