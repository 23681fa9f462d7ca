"""A prefixed window onto a Backend: each mount and subsystem sees only its own keys."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.physical.base import (
    Backend,
    Op,
    apply_ops,
    list_page,
    validate_key,
    validate_prefix,
)


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

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> list[str]:
        validate_prefix(prefix)
        return list_page(self._backend, self.prefix + prefix, after, limit)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        return self._backend.list(self.prefix + prefix)

    def transaction(self, ops: Sequence[Op]) -> None:
        apply_ops(self._backend, [(verb, self._full(key), value) for verb, key, value in ops])

    def sub_view(self, prefix: str) -> StorageView:
        validate_prefix(prefix)
        return StorageView(self._backend, self.prefix + prefix)
