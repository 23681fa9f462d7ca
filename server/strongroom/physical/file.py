"""File storage: the embedded default backend of a production node.

One file per entry. Processes (gunicorn workers) and threads share the directory
without locks: a put renames a complete temp file over the entry, and a reader
holds whichever complete version it opened.

Layout: each key segment but the last becomes a directory named
``quote(segment, safe="")``; the last becomes a file named ``"@" + quote(...)``.
``quote`` escapes '@' and '+', so leaf names (always '@...'), directory names
(never '@' or '+') and temp files ('+tmp-...') can never collide, and since '/'
is escaped too no key can name a path outside ``root``.

Each file is framed as ``MAGIC | payload length (8 bytes, big-endian) |
SHA-256(payload) | payload`` so truncation and bit rot are detected on read.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from urllib.parse import quote, unquote

from strongroom.errors import CorruptEntryError, InvalidKeyError, StorageError
from strongroom.physical.base import validate_key, validate_prefix

_MAGIC = b"SRF1"
_LENGTH_BYTES = 8
_HEADER_LEN = len(_MAGIC) + _LENGTH_BYTES + hashlib.sha256().digest_size
_LEAF_PREFIX = "@"
_TEMP_PREFIX = "+tmp-"
_MAX_NAME_BYTES = 255  # NAME_MAX on every filesystem we care about
_MAX_PATH_BYTES = 4095 - 32  # PATH_MAX minus the NUL, with room for a temp file name
_PUT_ATTEMPTS = 8
_READ_CHUNK = 1 << 16
_DIR_MODE = 0o700
_FILE_MODE = 0o600
# POSIX only, like gunicorn: directory fsync is how renames are made durable.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


class FileBackend:
    """A :class:`~strongroom.physical.base.Backend` storing one file per entry under ``root``."""

    def __init__(self, root: str | os.PathLike[str], durable: bool = True) -> None:
        """Open (creating it with mode 0700 if needed) the storage directory.

        Args:
            root: The directory holding the entries.
            durable: fsync every change (off only for ``inmem``, whose directory is
                on tmpfs and dies with the node anyway).

        Raises:
            StorageError: If the directory cannot be created.
        """
        self._root = os.path.abspath(os.fspath(root))
        self._durable = durable
        try:
            os.makedirs(self._root, mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage directory: {exc.strerror}") from None

    def remove_temp_files(self) -> int:
        """Delete the temp files that writers killed mid-put left behind.

        Only safe while no other process writes to this directory: the node's master
        calls it at start, before any worker exists.

        Returns:
            How many were removed.
        """
        removed = 0
        for directory, _dirs, files in os.walk(self._root):
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    try:
                        os.unlink(os.path.join(directory, name))
                        removed += 1
                    except FileNotFoundError:
                        pass
        return removed

    def get(self, key: str) -> bytes | None:
        """Read an entry.

        Args:
            key: The entry's key.

        Returns:
            The stored value, or None if there is no such entry.

        Raises:
            InvalidKeyError: If the key is malformed or too long for a filesystem.
            CorruptEntryError: If the entry exists but is not intact.
            StorageError: If the filesystem fails.
        """
        validate_key(key)
        _, path = self._locate(key)
        try:
            data = _read_file(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _storage_error("get", key, exc) from None
        return _unframe(key, data)

    def put(self, key: str, value: bytes) -> None:
        """Write an entry atomically and durably, replacing any previous value.

        Once this returns the value survives a process or machine crash; until
        then readers see the old or the new value, never a mix.

        Args:
            key: The entry's key.
            value: The bytes to store.

        Raises:
            InvalidKeyError: If the key is malformed or too long for a filesystem.
            StorageError: If the filesystem fails.
        """
        validate_key(key)
        directory, path = self._locate(key)
        blob = _frame(bytes(value))
        for attempt in range(_PUT_ATTEMPTS):
            try:
                if attempt:  # the common case, an existing folder, skips the mkdirs
                    self._make_dirs(directory)
                self._write_replace(directory, path, blob)
                return
            except FileNotFoundError:
                # The folder is new, or a concurrent delete pruned it (having just
                # emptied it) between our mkdir and our temp file: (re)create it.
                continue
            except OSError as exc:
                raise _storage_error("put", key, exc) from None
        raise StorageError(f"storage put of {key!r} failed: parent directory kept vanishing")

    def delete(self, key: str) -> None:
        """Remove an entry; removing a missing entry is not an error.

        Args:
            key: The entry's key.

        Raises:
            InvalidKeyError: If the key is malformed or too long for a filesystem.
            StorageError: If the filesystem fails.
        """
        validate_key(key)
        directory, path = self._locate(key)
        try:
            os.unlink(path)
            self._sync_dir(directory)  # so an acknowledged delete stays deleted
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise _storage_error("delete", key, exc) from None
        self._prune(directory)

    def list(self, prefix: str) -> list[str]:
        """List the immediate children of ``prefix`` with Vault's LIST semantics.

        Args:
            prefix: '' or a key followed by '/'.

        Returns:
            Sorted leaf names, and folder names with a trailing '/'; [] if nothing
            lies under ``prefix``.

        Raises:
            InvalidKeyError: If the prefix is malformed or too long for a filesystem.
            StorageError: If the filesystem fails.
        """
        validate_prefix(prefix)
        dirs = [_encode_segment(seg, "") for seg in prefix[:-1].split("/")] if prefix else []
        directory = os.path.join(self._root, *dirs)
        _check_path_length(directory)
        children: list[str] = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    child = _child_name(entry)
                    if child is not None and (not child.endswith("/") or _has_leaf(entry.path)):
                        children.append(child)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise _storage_error("list", prefix, exc) from None
        return sorted(children)

    def _locate(self, key: str) -> tuple[str, str]:
        """The directory holding ``key``'s file, and the file's path."""
        *dirs, leaf = key.split("/")
        directory = os.path.join(self._root, *(_encode_segment(seg, "") for seg in dirs))
        path = os.path.join(directory, _encode_segment(leaf, _LEAF_PREFIX))
        _check_path_length(path)
        return directory, path

    def _make_dirs(self, directory: str) -> None:
        relative = os.path.relpath(directory, self._root)
        parent = self._root
        for name in [] if relative == os.curdir else relative.split(os.sep):
            path = os.path.join(parent, name)
            try:
                os.mkdir(path, _DIR_MODE)
            except FileExistsError:
                pass
            else:
                # Make the new directory's name durable, or an acknowledged entry
                # in it could vanish with it on power loss. One made by a concurrent
                # writer is fsynced by that writer, maybe just after we return: a
                # narrow window accepted rather than fsync every ancestor per put.
                self._sync_dir(parent)
            parent = path

    def _write_replace(self, directory: str, path: str, blob: bytes) -> None:
        temp = os.path.join(directory, _TEMP_PREFIX + secrets.token_hex(8))
        fd = os.open(temp, _CREATE_FLAGS, _FILE_MODE)
        try:
            try:
                view = memoryview(blob)
                while view:  # os.write may write less than asked
                    view = view[os.write(fd, view):]
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            # Never leave a stray temp file behind, even on KeyboardInterrupt.
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        self._sync_dir(directory)

    def _sync_dir(self, directory: str) -> None:
        if self._durable:
            _fsync_dir(directory)

    def _prune(self, directory: str) -> None:
        """Best effort: remove directories left empty, deepest first, stopping at root."""
        while directory != self._root:
            try:
                os.rmdir(directory)
            except OSError:
                # Not empty (maybe a concurrent put), already gone (a concurrent
                # delete), or anything else: stop; list ignores empty folders anyway.
                return
            directory = os.path.dirname(directory)


def _check_path_length(path: str) -> None:
    if len(os.fsencode(path)) > _MAX_PATH_BYTES:
        raise InvalidKeyError("storage key is too long for the file backend")


@functools.lru_cache(maxsize=8192)
def _encode_segment(segment: str, prefix: str) -> str:
    # Cached: the same few path segments (mounts, token salts, KV keys) recur on every
    # request, and quote() dominated a read's cost.
    try:
        name = prefix + quote(segment, safe="")
    except UnicodeEncodeError:
        raise InvalidKeyError("storage key is not valid UTF-8") from None
    if len(name) > _MAX_NAME_BYTES:  # quote's output is ASCII
        raise InvalidKeyError("storage key segment is too long for the file backend")
    return name


def _decode_name(name: str) -> str | None:
    """The segment a directory name (without '@') encodes, or None for foreign files."""
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


def _child_name(entry: os.DirEntry[str]) -> str | None:
    """The LIST name of a directory entry, or None for temp and foreign files."""
    if entry.name.startswith(_LEAF_PREFIX):
        if not entry.is_file(follow_symlinks=False):
            return None
        return _decode_name(entry.name[len(_LEAF_PREFIX) :])
    if not entry.is_dir(follow_symlinks=False):
        return None
    segment = _decode_name(entry.name)
    return None if segment is None else segment + "/"


def _has_leaf(directory: str) -> bool:
    """Whether any entry lives below ``directory``: empty folders are not listed."""
    pending = [directory]  # iterative: keys may nest ~1000 deep, past the recursion limit
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    child = _child_name(entry)
                    if child is not None and not child.endswith("/"):
                        return True
                    if child is not None:
                        pending.append(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # pruned by a concurrent delete
    return False


def _frame(payload: bytes) -> bytes:
    length = len(payload).to_bytes(_LENGTH_BYTES, "big")
    return b"".join((_MAGIC, length, hashlib.sha256(payload).digest(), payload))


def _unframe(key: str, data: bytes) -> bytes:
    if len(data) < _HEADER_LEN:
        raise CorruptEntryError(key, "file is empty" if not data else "file is truncated")
    if not data.startswith(_MAGIC):
        raise CorruptEntryError(key, "bad magic bytes")
    length_end = len(_MAGIC) + _LENGTH_BYTES
    length = int.from_bytes(data[len(_MAGIC) : length_end], "big")
    payload = data[_HEADER_LEN:]
    if len(payload) != length:
        raise CorruptEntryError(key, f"payload is {len(payload)} bytes, header says {length}")
    if not hmac.compare_digest(hashlib.sha256(payload).digest(), data[length_end:_HEADER_LEN]):
        raise CorruptEntryError(key, "checksum mismatch")
    return payload


def _read_file(path: str) -> bytes:
    """The whole file, with as few system calls as a small entry allows."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = [os.read(fd, _READ_CHUNK)]
        # A regular file returns less than asked only at its end.
        while len(chunks[-1]) == _READ_CHUNK:
            chunks.append(os.read(fd, _READ_CHUNK))
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(operation: str, key: str, exc: OSError) -> StorageError:
    # Name the key and the errno only: never a value, and not the full path.
    reason = exc.strerror or "unknown error"
    return StorageError(f"storage {operation} of {key!r} failed: {reason}")
