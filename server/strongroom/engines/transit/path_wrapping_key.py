"""``wrapping_key``: the mount's RSA-4096 public key that BYOK imports are wrapped for.

As OpenBao, the key is an ordinary keysutil ring named ``import/wrapping-key``
(storage ``policy/import/wrapping-key``, so a LIST of ``keys`` shows ``import/`` as
OpenBao's does), made on first use under the ring's node lock (``KeyStore.create``
re-reads inside it: two workers asking at once agree on one key) and never rotated.
No path can reach it by name: key names cannot contain "/" (restore refuses them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path

from .keytypes import KeyType, TransitInternalError
from .policy import new_policy

if TYPE_CHECKING:
    from . import TransitBackend

WRAPPING_KEY_NAME = "import/wrapping-key"


def wrapping_private_key(b: TransitBackend) -> rsa.RSAPrivateKey:
    """The mount's wrapping key (cached per process by the keystore), made if absent."""
    p = b.keys.get(WRAPPING_KEY_NAME)
    if p is None:
        p, _ = b.keys.create(WRAPPING_KEY_NAME,
                             lambda: new_policy(WRAPPING_KEY_NAME, KeyType.RSA4096))
    key = p.key_entry(p.latest_version).rsa_key
    if key is None:
        raise TransitInternalError("error importing key: wrapping key was nil")
    return key


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        pem = wrapping_private_key(b).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return Response(data={"public_key": pem.decode()})

    return [Path("wrapping_key", {Operation.READ: read})]
