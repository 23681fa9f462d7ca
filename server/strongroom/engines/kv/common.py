"""Helpers shared by KV v1 and v2: limits, key checks, times, locks, Vault's 404s."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.node.locks import node_lock

# One stored document (a v1 entry, or the data of one v2 version), as compact JSON.
MAX_DOCUMENT_BYTES = 1 << 20
# A secret's path below the mount (data/, metadata/ ... prefixes excluded), in UTF-8 bytes.
MAX_PATH_BYTES = 1024

_WRITES = (Operation.CREATE, Operation.UPDATE, Operation.PATCH)


def normalize_rel_path(req: Request, rel_path: str) -> str:
    """Vault's core rules, applied before routing: LIST targets a folder, writes a leaf."""
    if req.operation in _WRITES and req.path.endswith("/"):
        raise BadRequestError("cannot write to a path ending in '/'")
    if req.operation is Operation.LIST and rel_path and not rel_path.endswith("/"):
        return rel_path + "/"
    return rel_path


def not_found() -> Response:
    """Vault's bare 404 for "nothing here": ``{"errors": []}``."""
    return Response(status=404, raw=True, data={"errors": []})


def empty_not_found() -> Response:
    """Vault answers a PATCH of nothing with a 404 and no body at all."""
    return Response(status=404, raw=True, data=None)


def is_leaf(path: str) -> bool:
    """False for '' and 'folder/': names that can never hold a secret."""
    return bool(path) and not path.endswith("/")


def check_path(path: str) -> str:
    """A secret's path: no empty, '.' or '..' segment, no control character, bounded."""
    if len(path.encode()) > MAX_PATH_BYTES:
        raise BadRequestError(f"path is too long: the limit is {MAX_PATH_BYTES} bytes")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequestError("invalid path: empty, '.' or '..' segment")
        if any(ord(ch) < 0x20 or ch == "\x7f" for ch in segment):
            raise BadRequestError("invalid path: control character")
    return path


def check_prefix(prefix: str) -> str:
    """A LIST prefix: '' or a valid path followed by '/'."""
    if prefix:
        check_path(prefix[:-1])
    return prefix


def encode(doc: Any) -> bytes:
    """Compact JSON with sorted keys, as Go's encoding/json renders maps."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def encode_document(doc: Any) -> bytes:
    """Encode a secret's data, refusing documents over the size limit with a 400.

    Encoding it three levels deep proves a response can still carry it (the
    JSON encoder stops at 255 levels; a v2 read nests data three deep), and the
    wrapper's brackets strip off to leave the document's own encoding.
    """
    try:
        raw = encode([[[doc]]])[3:-3]
    except orjson.JSONEncodeError:
        raise BadRequestError("secret data is nested too deeply") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise BadRequestError(
            f"secret data is too large: {len(raw)} bytes, the limit is "
            f"{MAX_DOCUMENT_BYTES} bytes"
        )
    return raw


def key_lock(mount_uuid: str, path: str) -> AbstractContextManager[None]:
    """A striped per-key lock held across every worker process of this node."""
    return node_lock(f"kv|{mount_uuid}|{path}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def now_ns(clock: Callable[[], datetime]) -> int:
    """The clock's time as integer nanoseconds since the Unix epoch (naive = UTC)."""
    moment = clock()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Exact integer arithmetic (a float timestamp would round the microseconds).
    return (moment - _EPOCH) // _MICROSECOND * 1000


def format_time(ns: int | None) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros trimmed), or '' for no time, as Vault."""
    if ns is None:
        return ""
    return _format_ns(ns)


@lru_cache(maxsize=4096)
def _format_ns(ns: int) -> str:
    # Every read of a version formats the same creation time again: remembered (a
    # KV read spent ~10% of its time in strftime, py-spy).
    seconds, frac = divmod(ns, 1_000_000_000)
    moment = _EPOCH + timedelta(seconds=seconds)
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def list_response(keys: list[str]) -> Response:
    """A LIST response; no keys is a bare 404, as Vault answers an empty ListResponse."""
    if not keys:
        return not_found()
    return Response(data={"keys": keys})
