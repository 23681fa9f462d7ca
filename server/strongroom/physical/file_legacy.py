"""The file storage's first on-disk format: one file per entry (read-only, for migration).

Until issue 14 the file backend kept each entry in its own file: each key segment
but the last became a directory named ``quote(segment, safe="")``, the last a
file named ``"@" + quote(...)``, framed as ``MAGIC | payload length (8 bytes,
big-endian) | SHA-256(payload) | payload``; writers left ``+tmp-*`` files behind
when killed mid-put. A small entry cost a whole filesystem block (4 KiB) and a
directory entry, and a LIST read a whole directory, which is why the format
changed (physical/file.py). This module finds such entries so that
:class:`~strongroom.physical.file.FileBackend` can import them once, at open, and
then removes them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from urllib.parse import quote, unquote

from strongroom.errors import CorruptEntryError, InvalidKeyError
from strongroom.physical.base import validate_key

MAGIC = b"SRF1"
_LENGTH_BYTES = 8
_HEADER_LEN = len(MAGIC) + _LENGTH_BYTES + hashlib.sha256().digest_size
LEAF_PREFIX = "@"
TEMP_PREFIX = "+tmp-"
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


def frame(payload: bytes) -> bytes:
    """The old format's framing (tests write legacy stores with it)."""
    length = len(payload).to_bytes(_LENGTH_BYTES, "big")
    return b"".join((MAGIC, length, hashlib.sha256(payload).digest(), payload))


def unframe(key: str, data: bytes) -> bytes:
    """The payload of a legacy file, checked against its length and checksum."""
    if len(data) < _HEADER_LEN:
        raise CorruptEntryError(key, "file is empty" if not data else "file is truncated")
    if not data.startswith(MAGIC):
        raise CorruptEntryError(key, "bad magic bytes")
    length_end = len(MAGIC) + _LENGTH_BYTES
    length = int.from_bytes(data[len(MAGIC):length_end], "big")
    payload = data[_HEADER_LEN:]
    if len(payload) != length:
        raise CorruptEntryError(key, f"payload is {len(payload)} bytes, header says {length}")
    if not hmac.compare_digest(hashlib.sha256(payload).digest(), data[length_end:_HEADER_LEN]):
        raise CorruptEntryError(key, "checksum mismatch")
    return payload


def legacy_path(root: str, key: str) -> str:
    """Where the old format kept ``key`` (tests write legacy stores with it)."""
    *dirs, leaf = key.split("/")
    names = [quote(seg, safe="") for seg in dirs] + [LEAF_PREFIX + quote(leaf, safe="")]
    return os.path.join(root, *names)


def decode_name(name: str) -> str | None:
    """The key segment a legacy name (without '@') encodes, or None for foreign names."""
    if not name.isascii():
        return None
    try:
        segment = unquote(name, errors="strict")
        canonical = quote(segment, safe="")
    except UnicodeError:
        return None
    if canonical != name or "/" in segment:
        return None
    try:
        validate_key(segment)
    except InvalidKeyError:
        return None
    return segment


def walk(root: str, skip: frozenset[str]) -> Iterator[tuple[str, str]]:
    """Every legacy entry under ``root`` as ``(key, file path)``.

    Temp files, symlinks and foreign names are not entries (the old LIST ignored
    them too); ``skip`` names top-level files that belong to the new format.
    """
    pending: list[tuple[str, str]] = [(root, "")]
    while pending:  # iterative: keys may nest ~1000 deep, past the recursion limit
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in listed:
            if not prefix and entry.name in skip:
                continue
            if entry.name.startswith(LEAF_PREFIX):
                segment = decode_name(entry.name[len(LEAF_PREFIX):])
                if segment is not None and entry.is_file(follow_symlinks=False):
                    yield prefix + segment, entry.path
            elif entry.is_dir(follow_symlinks=False):
                segment = decode_name(entry.name)
                if segment is not None:
                    pending.append((entry.path, prefix + segment + "/"))


def read_entry(key: str, path: str) -> bytes:
    """A legacy entry's payload (CorruptEntryError if it is not intact)."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return unframe(key, b"".join(chunks))


def remove_leftovers(root: str, skip: frozenset[str]) -> int:
    """Delete legacy entries and temp files, then the directories left empty.

    Called once the entries are safely in the new format (or were half-written
    temp files no reader ever saw). Foreign files are left alone.

    Returns:
        How many files were removed.
    """
    removed = 0
    directories: list[str] = []  # each after its parent
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in listed:
            if directory == root and entry.name in skip:
                continue
            if entry.is_dir(follow_symlinks=False):
                if decode_name(entry.name) is not None:
                    pending.append(entry.path)
                    directories.append(entry.path)
            elif entry.name.startswith(TEMP_PREFIX) or (
                    entry.name.startswith(LEAF_PREFIX)
                    and decode_name(entry.name[len(LEAF_PREFIX):]) is not None):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
    for directory in reversed(directories):  # the deepest first
        _rmdir_quietly(directory)
    return removed


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty (foreign files), not a directory, or gone: leave it
