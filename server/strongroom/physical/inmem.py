"""In-memory storage: the dev server's backend and the unit tests' default."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from strongroom.physical.base import validate_key, validate_prefix


class InmemBackend:
    """A dict guarded by a lock. Lost when the process exits, as in Vault's dev mode."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        validate_key(key)
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        validate_key(key)
        with self._lock:
            self._data[key] = bytes(value)

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._data.pop(key, None)

    def transaction(self, ops: Sequence[tuple[str, str, bytes | None]]) -> None:
        """All of ``ops`` under one lock: nobody sees half of them."""
        for _, key, _ in ops:
            validate_key(key)
        with self._lock:
            for verb, key, value in ops:
                if verb == "put":
                    assert value is not None
                    self._data[key] = bytes(value)
                else:
                    self._data.pop(key, None)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        children: set[str] = set()
        with self._lock:
            for key in self._data:
                if not key.startswith(prefix):
                    continue
                rest = key[len(prefix):]
                head, sep, _ = rest.partition("/")
                children.add(head + sep)
        return sorted(children)
