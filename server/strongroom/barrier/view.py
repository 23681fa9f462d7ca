"""A prefixed window onto a Backend: each mount and subsystem sees only its own keys."""

from __future__ import annotations

from strongroom.physical.base import Backend, validate_key, validate_prefix


class StorageView:
    """Backend interface rooted at ``prefix`` of an underlying backend (usually the barrier)."""

    def __init__(self, backend: Backend, prefix: str) -> None:
        validate_prefix(prefix)
        self._backend = backend
        self.prefix = prefix

    def _full(self, key: str) -> str:
        validate_key(key)
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        return self._backend.get(self._full(key))

    def put(self, key: str, value: bytes) -> None:
        self._backend.put(self._full(key), value)

    def delete(self, key: str) -> None:
        self._backend.delete(self._full(key))

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        return self._backend.list(self.prefix + prefix)

    def sub_view(self, prefix: str) -> StorageView:
        validate_prefix(prefix)
        return StorageView(self._backend, self.prefix + prefix)
