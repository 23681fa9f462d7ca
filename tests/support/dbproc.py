"""What the PostgreSQL and MariaDB test servers share: a private directory the server's
own user can use, a child process that dies with the test run, a readiness poll.

Both servers refuse to run as root (initdb, postgres) or drop to a user themselves
(mariadbd ``--user``): as root the data directory is handed to that user and the
process runs as it; as anyone else it runs as the caller.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def service_user(name: str) -> pwd.struct_passwd | None:
    """The account to run a server as: ``name`` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"running as root needs the {name!r} user (installed with the "
                           "server package)") from None


def private_dir(prefix: str, user: pwd.struct_passwd | None) -> Path:
    """A fresh 0700 directory owned by ``user`` (or us)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _preexec(user: pwd.struct_passwd | None) -> Callable[[], None]:
    def run() -> None:  # between fork and exec, in the child
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        # After the uid change: changing credentials clears the parent-death signal.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return run


def run_as(user: pwd.struct_passwd | None, args: list[str], cwd: Path,
           timeout: float = 120) -> None:
    """Run a set-up command to completion as ``user``; its output is in the error."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": str(cwd)}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_preexec(user), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): "
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


def spawn_as(user: pwd.struct_passwd | None, args: list[str], cwd: Path,
             log: Path) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": str(cwd)}
    with open(log, "ab") as out:
        if user is not None:
            os.chown(log, user.pw_uid, user.pw_gid)
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_preexec(user))


def wait_ready(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
               timeout: float = 60) -> None:
    """Poll ``ready`` until it is true; fail at once if the server exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]!r} exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-3000:]}")
        if ready():
            return
        time.sleep(0.05)
    raise TimeoutError(f"server not ready after {timeout}s: "
                       f"{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Ask the server to shut down (``sig``), then kill it if it does not."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
