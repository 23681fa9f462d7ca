"""The storage interface every backend satisfies, and the key rules they share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from strongroom.errors import InvalidKeyError

MAX_KEY_LENGTH = 2048


@runtime_checkable
class Backend(Protocol):
    """A flat key -> bytes store with Vault's LIST semantics.

    Keys are '/'-separated paths. ``list(prefix)`` returns the immediate children
    of ``prefix`` (which is '' or ends in '/'): leaf names as-is, and
    sub-folders with a trailing '/', sorted, without duplicates.
    """

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> list[str]: ...


# One storage change of a multi-key transaction: ("put", key, value) or ("delete", key, None).
Op = tuple[str, str, bytes | None]


def apply_ops(backend: Backend, ops: Sequence[Op]) -> None:
    """Apply ``ops`` atomically where the backend can (Consul, inmem), else in order.

    Callers order their operations so that stopping part-way through leaves
    storage consistent (new data before the entry that makes it visible).
    """
    transaction = getattr(backend, "transaction", None)
    if transaction is not None:
        transaction(ops)
        return
    for verb, key, value in ops:
        if verb == "put":
            assert value is not None
            backend.put(key, value)
        else:
            backend.delete(key)


def validate_key(key: str) -> None:
    """Reject keys that are empty, absolute, traversing or otherwise malformed."""
    if not key:
        raise InvalidKeyError("storage key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError("storage key is too long")
    if key.endswith("/"):
        raise InvalidKeyError("storage key must not end with '/'")
    _validate_segments(key)


def validate_prefix(prefix: str) -> None:
    """A LIST prefix is '' or a valid key followed by '/'."""
    if prefix == "":
        return
    if not prefix.endswith("/"):
        raise InvalidKeyError("list prefix must be empty or end with '/'")
    _validate_segments(prefix[:-1])


# Every storage operation validates its key (often at several layers): regexes, not loops.
_BAD_SEGMENT = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _validate_segments(path: str) -> None:
    if not path:
        raise InvalidKeyError("storage key is empty")
    if _BAD_SEGMENT.search(path):
        raise InvalidKeyError("storage key has an empty, '.' or '..' segment")
    if _CONTROL.search(path):
        raise InvalidKeyError("storage key contains a control character")
