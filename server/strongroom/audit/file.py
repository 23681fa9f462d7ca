"""The ``file`` audit device: one line per entry, appended with one ``write`` on a
descriptor opened with O_APPEND, so entries of every thread and every worker of the
node land whole and never interleave (the kernel appends each write atomically to a
regular file). ``file_path=stdout`` writes to standard output, ``discard`` nowhere.

Rotation: move the file away and send the node SIGHUP. The owner passes it to the
gunicorn arbiter, which starts fresh workers (their devices open the path anew) and
drains the old ones (their last lines go to the moved file; none is lost). A device
also reopens its file after a failed write, as Vault does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from typing import TYPE_CHECKING

from strongroom.audit.device import AuditDevice, describe
from strongroom.errors import BadRequestError

if TYPE_CHECKING:
    from strongroom.core.mounts import MountContext

DEFAULT_MODE = 0o600


def _parse_mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise BadRequestError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if value < 0:
        raise BadRequestError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return value


class FileDevice(AuditDevice):
    def __init__(self, ctx: MountContext) -> None:
        super().__init__(ctx)
        path = self.options.get("file_path", self.options.get("path"))
        if path is None:
            raise BadRequestError("file_path is required")
        if path.lower() in ("stdout", "discard"):
            path = path.lower()
        self.path = path
        self.mode = DEFAULT_MODE
        if "mode" in self.options:
            mode = _parse_mode(self.options["mode"])
            if mode == 0:
                self.mode = 0  # keep the existing file's mode
            elif mode > 0o7777:
                raise BadRequestError("file mode does not represent a regular file")
            else:
                self.mode = mode & ~0o111
        self._fd: int | None = None
        self._lock = threading.Lock()

    def test(self) -> None:
        if self.path not in ("stdout", "discard"):
            if self.mode == 0:
                try:
                    os.stat(self.path)
                except OSError as exc:
                    raise BadRequestError(f"stat {self.path}: {describe(exc).split(': ')[-1]}"
                                          ) from None
            try:
                with self._lock:
                    self._open()
            except OSError as exc:
                raise BadRequestError(f'sanity check failed; unable to open "{self.path}" '
                                      f"for writing: {describe(exc)}") from None
        super().test()

    def _open(self) -> int:
        """The descriptor, opened (parents made) if it is not; called under the lock."""
        if self._fd is not None:
            return self._fd
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, mode=self.mode or 0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     self.mode or DEFAULT_MODE)
        try:
            st = os.fstat(fd)
            if self.mode and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != self.mode:
                os.fchmod(fd, self.mode)  # an existing file gets the configured mode
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def write(self, line: bytes) -> None:
        if self.path == "discard":
            return
        if self.path == "stdout":
            _write_all_once(sys.stdout.fileno(), line)
            return
        with self._lock:
            try:
                _write_all_once(self._open(), line)
                return
            except _ShortWriteError:
                raise  # part of the line is in the file: writing it again would garble it
            except OSError:
                # A stale descriptor (the file system went away and came back): reopen
                # once, as Vault does; a second failure is the device's.
                self._close_locked()
            _write_all_once(self._open(), line)

    def _close_locked(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._close_locked()


class _ShortWriteError(OSError):
    pass


def _write_all_once(fd: int, line: bytes) -> None:
    """One write(2) of the whole line; a short write (a full disk) is a failure."""
    written = os.write(fd, line)
    if written != len(line):
        # Take the fragment back if nothing was appended after it (the disk is full:
        # nothing else could be), so the next line starts a line of its own.
        with contextlib.suppress(OSError):
            end = os.lseek(fd, 0, os.SEEK_CUR)
            if os.fstat(fd).st_size == end:
                os.ftruncate(fd, end - written)
        raise _ShortWriteError(28, "no space left on device (short write)")
