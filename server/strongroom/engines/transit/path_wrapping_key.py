"""``wrapping_key``: the mount's RSA-4096 public key that BYOK imports are wrapped for.

As OpenBao, the key is an ordinary keysutil policy named ``import/wrapping-key``
(storage ``policy/import/wrapping-key``), made on first use and never rotated. It is
created under the node lock and re-read inside it, so two workers asking at once
agree on one key; once stored it never changes (nothing rotates, restores or deletes
it: key names cannot contain "/"), so each process keeps its private half after the
first read, for the life of the mount's backend.
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import StorageError
from strongroom.framework import FieldData, Path
from strongroom.node.locks import node_lock

from . import policy_json
from .policy import KeyType, Policy

if TYPE_CHECKING:
    from . import TransitBackend

WRAPPING_KEY_NAME = "import/wrapping-key"
STORAGE_KEY = "policy/" + WRAPPING_KEY_NAME


class WrappingKey:
    """The per-process handle on the mount's wrapping key."""

    def __init__(self, ctx: MountContext) -> None:
        # The mount's context, not the backend: the handle is the value of a weak map
        # keyed by the backend and must not keep it alive.
        self._ctx = ctx
        self._mutex = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None

    def _load(self) -> rsa.RSAPrivateKey | None:
        raw = self._ctx.storage.get(STORAGE_KEY)
        if raw is None:
            return None
        p = policy_json.loads(raw)
        entry = p.keys.get(p.latest_version)
        if entry is None or entry.rsa_key is None:
            raise StorageError("the stored wrapping key has no RSA private key")
        return entry.rsa_key

    def private_key(self) -> rsa.RSAPrivateKey:
        """The wrapping key, made (once per mount, cluster-wide) if there is none."""
        with self._mutex:
            if self._key is not None:
                return self._key
        key = self._load()
        if key is None:
            with node_lock(f"transit:{self._ctx.mount.uuid}:{WRAPPING_KEY_NAME}"):
                key = self._load()
                if key is None:
                    p = Policy(name=WRAPPING_KEY_NAME, type=KeyType.RSA4096)
                    p.rotate()  # the first version: a fresh RSA-4096 key
                    self._ctx.storage.put(STORAGE_KEY, policy_json.dumps(p))
                    key = p.keys[p.latest_version].rsa_key
                    assert key is not None
        with self._mutex:
            self._key = key
        return key

    def public_pem(self) -> str:
        return self.private_key().public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


_HANDLES: weakref.WeakKeyDictionary[TransitBackend, WrappingKey] = weakref.WeakKeyDictionary()
_HANDLES_LOCK = threading.Lock()


def wrapping_key(b: TransitBackend) -> WrappingKey:
    """The backend's handle (one per backend instance, i.e. per mount and process)."""
    with _HANDLES_LOCK:
        handle = _HANDLES.get(b)
        if handle is None:
            handle = _HANDLES[b] = WrappingKey(b.ctx)
        return handle


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"public_key": wrapping_key(b).public_pem()})

    return [Path("wrapping_key", {Operation.READ: read})]
