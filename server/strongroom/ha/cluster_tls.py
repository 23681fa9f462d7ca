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
import re
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.barrier.secmem import wipe, wipe_immutable

CLUSTER_NAME = "strongroom-cluster"


@dataclass(frozen=True, eq=False)
class ClusterIdentity:
    """The certificate and its private key. The key is a bytearray its owner wipes as
    soon as it is loaded into an SSL context (OpenSSL keeps its own copy there, and
    clears it when the context is freed): nothing else keeps it past a seal."""

    cert_pem: bytes
    key_pem: bytearray  # never logged, never written to disk

    def wipe(self) -> None:
        wipe(self.key_pem)

    @property
    def wiped(self) -> bool:
        return not any(self.key_pem)


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
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    key_pem = bytearray(pem)
    wipe_immutable(pem)  # ours alone: the library hands bytes, we keep the bytearray
    return ClusterIdentity(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                           key_pem=key_pem)


# The stored form is {"cert": "<PEM>", "key": "<PEM>"} exactly as json.dumps writes it,
# built and parsed here by hand so the key never becomes a str (json would make
# several, freed without being cleared). A PEM needs only its newlines escaped.
_FIELD = re.compile(rb'"(cert|key)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_UNESCAPE = {ord("n"): ord("\n"), ord("r"): ord("\r"), ord("/"): ord("/"),
             ord("\\"): ord("\\"), ord('"'): ord('"')}


def _escaped_length(pem: bytes | bytearray) -> int:
    return len(pem) + pem.count(b"\n")


def _write_escaped(out: bytearray, pos: int, pem: bytes | bytearray) -> int:
    for byte in pem:
        if byte == 0x0A:
            out[pos:pos + 2] = b"\\n"
            pos += 2
        else:
            out[pos] = byte
            pos += 1
    return pos


def identity_to_json(identity: ClusterIdentity) -> bytearray:
    """The stored form, in one buffer allocated once (the caller wipes it)."""
    head, middle, tail = b'{"cert": "', b'", "key": "', b'"}'
    out = bytearray(len(head) + _escaped_length(identity.cert_pem) + len(middle)
                    + _escaped_length(identity.key_pem) + len(tail))
    out[:len(head)] = head
    pos = _write_escaped(out, len(head), identity.cert_pem)
    out[pos:pos + len(middle)] = middle
    pos = _write_escaped(out, pos + len(middle), identity.key_pem)
    out[pos:] = tail
    return out


def _unescape(text: memoryview) -> bytearray:
    escapes = i = 0
    while i < len(text):
        if text[i] == 0x5C:
            escapes += 1
            i += 1
        i += 1
    # Sized exactly once: a bytearray resized later may move, leaving the old block behind.
    out = bytearray(len(text) - escapes)
    pos = i = 0
    while i < len(text):
        byte = text[i]
        if byte == 0x5C:
            i += 1
            mapped = _UNESCAPE.get(text[i]) if i < len(text) else None
            if mapped is None:
                wipe(out)
                raise ValueError("unexpected escape in the cluster identity")
            byte = mapped
        out[pos] = byte
        pos += 1
        i += 1
    return out


def identity_from_json(raw: bytes | bytearray) -> ClusterIdentity:
    """Parse the stored form (``raw`` is left as it is; the caller wipes it).

    Raises:
        ValueError: If it lacks the certificate or the key.
    """
    found: dict[bytes, bytearray] = {}
    view = memoryview(raw)
    try:
        for match in _FIELD.finditer(raw):
            start, end = match.span(2)
            field = match.group(1)
            if field in found:
                wipe(found[field])
            found[field] = _unescape(view[start:end])
    finally:
        view.release()
    if b"cert" not in found or b"key" not in found:
        for value in found.values():
            wipe(value)
        raise ValueError("cluster identity lacks its certificate or key")
    cert = bytes(found[b"cert"])
    return ClusterIdentity(cert_pem=cert, key_pem=found[b"key"])


def _load_chain(context: ssl.SSLContext, identity: ClusterIdentity) -> None:
    fd = os.memfd_create("strongroom-cluster", os.MFD_CLOEXEC)
    chain = bytearray(len(identity.cert_pem) + len(identity.key_pem))
    try:
        chain[:len(identity.cert_pem)] = identity.cert_pem
        chain[len(identity.cert_pem):] = identity.key_pem
        os.write(fd, chain)
        path = f"/proc/self/fd/{fd}"
        context.load_cert_chain(path)
    finally:
        wipe(chain)
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
