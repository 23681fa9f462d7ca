"""File storage: the embedded default backend of a production node.

The entries live in one SQLite database in WAL mode, ``<root>/+strongroom.db``
(with its ``-wal`` and ``-shm`` companions). Why not one file per entry, as the
first format did (physical/file_legacy.py): a small entry cost a whole 4 KiB
filesystem block plus a directory entry (12.8 KB per KV secret, 3.8x OpenBao's
raft storage), and a LIST had to read and sort a whole directory, so paging
through a folder was quadratic. Here entries are packed into pages, and keys sit
in an ordered index, so a page of a LIST is a range scan of its own size.

* **Crash safety**: a write is one SQLite transaction, committed (``synchronous
  = FULL``: the WAL is fsynced before ``put`` returns) or not at all; a process
  killed mid-write leaves a WAL tail that the next opener rolls back. Several
  writes can be one transaction (:meth:`FileBackend.transaction`).
* **Processes**: every gunicorn worker and the node's owner open the database
  themselves; SQLite's file locks serialise writers (a waiting writer retries
  for up to ``_BUSY_SECONDS``) and readers never block. Connections are per
  process and per thread, never carried across ``fork``.
* **Bit rot**: each value is stored with its CRC-32 and checked on read
  (CorruptEntryError), as the old format's checksum did.
* **Migration**: the first process to open a directory holding the old format
  imports every entry in one transaction, records that it did, then deletes the
  old files (a crash in between leaves files that :meth:`remove_temp_files`
  deletes at the next start; the import is never repeated).

Keys are stored as given (TEXT, compared bytewise on UTF-8, i.e. in code point
order: the order Vault's LIST sorts in).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Sequence

from strongroom.errors import CorruptEntryError, InvalidKeyError, StorageError
from strongroom.physical import file_legacy
from strongroom.physical.base import Op, validate_key, validate_prefix

log = logging.getLogger(__name__)

DB_NAME = "+strongroom.db"  # '+' never starts a legacy entry or directory name
_OWN_FILES = frozenset(DB_NAME + suffix for suffix in ("", "-wal", "-shm", "-journal"))
_BUSY_SECONDS = 60.0
_DIR_MODE = 0o700
_FILE_MODE = 0o600  # SQLite gives its -wal and -shm files the database's mode
# The WAL is copied into the database every ~1 MiB of pages (SQLite's default is
# 4 MiB) and cut back to 1 MiB after a checkpoint (it is reused, not truncated, by
# default): a small store is not dominated by its WAL on disk.
_WAL_PAGES = 256
_WAL_LIMIT_BYTES = 1 << 20
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    value BLOB NOT NULL,
    crc INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# A rowid table with a unique key index rather than a WITHOUT ROWID table: rows up
# to ~4 KB stay on their page (a WITHOUT ROWID row over ~1 KB spills whole
# overflow pages: 4.6 KB per 1.5 KB entry, measured), and LIST scans only the
# small index. The key is stored twice; that costs less than the spills.
_GET = "SELECT value, crc FROM entries WHERE key = ?"
_PUT = ("INSERT INTO entries (key, value, crc) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, crc = excluded.crc")
_DELETE = "DELETE FROM entries WHERE key = ?"
_SCAN_FROM = "SELECT key FROM entries WHERE key >= ? ORDER BY key"
_SCAN_AFTER = "SELECT key FROM entries WHERE key > ? ORDER BY key"
_SCAN_FROM_BELOW = "SELECT key FROM entries WHERE key >= ? AND key < ? ORDER BY key"
_SCAN_AFTER_BELOW = "SELECT key FROM entries WHERE key > ? AND key < ? ORDER BY key"
_IMPORTED = "legacy_files_imported"
Names = list[str]  # for annotations inside FileBackend, where `list` is the method

# Connections a forked child inherited: never used nor closed there (closing one
# could disturb the parent's SQLite locks), only kept from the garbage collector.
_INHERITED: list[object] = []


class FileBackend:
    """A :class:`~strongroom.physical.base.Backend` keeping its entries under ``root``."""

    def __init__(self, root: str | os.PathLike[str], durable: bool = True) -> None:
        """Open (creating it with mode 0700 if needed) the storage directory.

        Imports entries written in the old one-file-per-entry format, once.

        Args:
            root: The directory holding the entries.
            durable: fsync every change (off only for ``inmem``, whose directory is
                on tmpfs and dies with the node anyway).

        Raises:
            StorageError: If the directory or the database cannot be opened.
            CorruptEntryError: If an old-format entry to import is not intact.
        """
        self._root = os.path.abspath(os.fspath(root))
        self._durable = durable
        self._path = os.path.join(self._root, DB_NAME)
        self._pid = os.getpid()
        self._local = threading.local()
        try:
            os.makedirs(self._root, mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage directory: {exc.strerror}") from None
        self._import_legacy(self._conn())

    @property
    def root(self) -> str:
        return self._root

    def remove_temp_files(self) -> int:
        """Delete what a crash left behind: old-format files an import had not yet removed.

        Only safe while no other process writes to this directory: the node's master
        calls it at start, before any worker exists. (SQLite itself recovers an
        interrupted write at open.)

        Returns:
            How many files were removed.
        """
        return file_legacy.remove_leftovers(self._root, _OWN_FILES)

    def get(self, key: str) -> bytes | None:
        """Read an entry.

        Args:
            key: The entry's key.

        Returns:
            The stored value, or None if there is no such entry.

        Raises:
            InvalidKeyError: If the key is malformed.
            CorruptEntryError: If the entry exists but is not intact.
            StorageError: If the database fails.
        """
        validate_key(key)
        try:
            row = self._conn().execute(_GET, (key,)).fetchone()
        except UnicodeEncodeError:
            raise InvalidKeyError("storage key is not valid UTF-8") from None
        except sqlite3.Error as exc:
            raise _storage_error("get", key, exc) from None
        if row is None:
            return None
        value, crc = row
        if zlib.crc32(value) != crc:
            raise CorruptEntryError(key, "checksum mismatch")
        return bytes(value)

    def put(self, key: str, value: bytes) -> None:
        """Write an entry atomically and durably, replacing any previous value.

        Once this returns the value survives a process or machine crash; until
        then readers see the old or the new value, never a mix.

        Raises:
            InvalidKeyError: If the key is malformed.
            StorageError: If the database fails.
        """
        self.transaction([("put", key, value)])

    def delete(self, key: str) -> None:
        """Remove an entry; removing a missing entry is not an error.

        Raises:
            InvalidKeyError: If the key is malformed.
            StorageError: If the database fails.
        """
        self.transaction([("delete", key, None)])

    def transaction(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` (puts and deletes) atomically and durably: all of them or none.

        Raises:
            InvalidKeyError: If a key is malformed (nothing is written).
            StorageError: If the database fails (nothing is written).
        """
        rows: list[tuple[str, tuple[object, ...]]] = []
        for verb, key, value in ops:
            validate_key(key)
            _check_utf8(key)
            if verb == "put":
                assert value is not None
                blob = bytes(value)
                rows.append((_PUT, (key, blob, zlib.crc32(blob))))
            else:
                rows.append((_DELETE, (key,)))
        if not rows:
            return
        conn = self._conn()
        try:
            if len(rows) == 1:  # one statement is its own transaction
                conn.execute(*rows[0])
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement, params in rows:
                    conn.execute(statement, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _storage_error("write", rows[0][1][0], exc) from None

    def list(self, prefix: str) -> list[str]:
        """List the immediate children of ``prefix`` with Vault's LIST semantics.

        Args:
            prefix: '' or a key followed by '/'.

        Returns:
            Sorted leaf names, and folder names with a trailing '/'; [] if nothing
            lies under ``prefix``.

        Raises:
            InvalidKeyError: If the prefix is malformed.
            StorageError: If the database fails.
        """
        return self.list_page(prefix, "", 0)

    def list_page(self, prefix: str, after: str = "", limit: int = 0) -> Names:
        """The children of ``prefix`` that sort after ``after``, at most ``limit`` of them.

        OpenBao's ``ListPage``: ``after`` need not exist; ``limit`` <= 0 means no
        limit. Costs one index range scan per folder returned plus the leaves
        returned, not the size of the folder.
        """
        validate_prefix(prefix)
        try:
            return self._scan(prefix, after, limit)
        except UnicodeEncodeError:
            raise InvalidKeyError("storage key is not valid UTF-8") from None
        except sqlite3.Error as exc:
            raise _storage_error("list", prefix, exc) from None

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's state goes)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            self._local.conn = None
            conn.close()

    # -- internals ------------------------------------------------------------------

    def _scan(self, prefix: str, after: str, limit: int) -> Names:
        # Keys under "p/" sort below "p0" ('0' follows '/'), and the keys of a
        # folder "p/f/" below "p/f0": each folder met is reported once, then the
        # scan jumps past it instead of reading its whole subtree.
        conn = self._conn()
        below = prefix[:-1] + "0" if prefix else None
        start, inclusive = (prefix + after, False) if after else (prefix, True)
        skip = len(prefix)
        out: Names = []
        while True:
            if below is None:
                cursor = conn.execute(_SCAN_FROM if inclusive else _SCAN_AFTER, (start,))
            else:
                statement = _SCAN_FROM_BELOW if inclusive else _SCAN_AFTER_BELOW
                cursor = conn.execute(statement, (start, below))
            jump: str | None = None
            try:
                for (key,) in cursor:
                    rest = key[skip:]
                    slash = rest.find("/")
                    if slash < 0:
                        out.append(rest)  # rest > after: the scan starts past it
                    else:
                        folder = rest[:slash + 1]
                        if folder > after:  # not the folder 'after' points into
                            out.append(folder)
                        jump = prefix + rest[:slash] + "0"
                    if 0 < limit <= len(out):
                        return out
                    if jump is not None:
                        break
            finally:
                cursor.close()
            if jump is None:
                return out
            start, inclusive = jump, True

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use in each process."""
        if self._pid != os.getpid():  # a forked child: start afresh
            _INHERITED.append(self._local)
            self._local = threading.local()
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def _open(self) -> sqlite3.Connection:
        created = False
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
            os.close(os.open(self._path, flags, _FILE_MODE))
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot create the storage database: {exc.strerror}") from None
        try:
            conn = sqlite3.connect(self._path, timeout=_BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False, cached_statements=32)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'OFF'}")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES}")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the storage database: {exc}") from None
        if created and self._durable:
            _fsync_dir(self._root)  # the database's name survives a power loss
        return conn

    def _import_legacy(self, conn: sqlite3.Connection) -> None:
        """Import the old one-file-per-entry format once (see the module docstring)."""
        try:
            if conn.execute("SELECT 1 FROM meta WHERE name = ?", (_IMPORTED,)).fetchone():
                return
            conn.execute("BEGIN IMMEDIATE")  # one importer; the others wait, then see it done
            try:
                if conn.execute("SELECT 1 FROM meta WHERE name = ?", (_IMPORTED,)).fetchone():
                    conn.execute("ROLLBACK")
                    return
                count = 0
                for key, path in file_legacy.walk(self._root, _OWN_FILES):
                    value = file_legacy.read_entry(key, path)
                    conn.execute(_PUT, (key, value, zlib.crc32(value)))
                    count += 1
                conn.execute("INSERT INTO meta (name, value) VALUES (?, ?)",
                             (_IMPORTED, str(count)))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"cannot import old-format entries: {exc}") from None
        except OSError as exc:
            raise StorageError(f"cannot import old-format entries: {exc.strerror}") from None
        if count:
            log.info("event=file_storage_migrated entries=%d", count)
            file_legacy.remove_leftovers(self._root, _OWN_FILES)


def _check_utf8(key: str) -> None:
    try:
        key.encode()
    except UnicodeEncodeError:
        raise InvalidKeyError("storage key is not valid UTF-8") from None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(operation: str, key: object, exc: sqlite3.Error) -> StorageError:
    # Name the key and SQLite's reason only: never a value.
    return StorageError(f"storage {operation} of {key!r} failed: {exc}")
