"""Per-node runtime directories (worker socket, lock files, inmem storage), and their cleanup.

Each directory is named after the owner's PID, ``strongroom-<pid>-<kind>-<random>``,
so a node starting later can tell the directories of a crashed owner (its PID is
gone) from those of a node that is still running, and remove only the former.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile

log = logging.getLogger(__name__)

_PREFIX = "strongroom-"
_NAME_RE = re.compile(r"strongroom-(\d+)-[a-z]+-[A-Za-z0-9_]+")
# inmem storage lives in memory (tmpfs) when the system has one we may write to.
_SHM = "/dev/shm"  # noqa: S108 - a private 0700 directory is made inside it


def _bases() -> list[str]:
    bases = [tempfile.gettempdir()]
    if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK | os.X_OK):
        bases.insert(0, _SHM)
    return bases


def make_dir(kind: str) -> str:
    """A new private (0700) directory for this process; ``inmem`` goes to tmpfs if it can."""
    base = _bases()[0] if kind == "inmem" else tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{kind}-", dir=base)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (someone else's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_dirs() -> list[str]:
    """Remove the runtime directories of owners that no longer run (ours only).

    Returns:
        The directories removed.
    """
    removed = []
    for base in dict.fromkeys(_bases()):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            match = _NAME_RE.fullmatch(name)
            if match is None or pid_alive(int(match[1])):
                continue
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed runtime directories of stopped nodes count=%d", len(removed))
    return removed
