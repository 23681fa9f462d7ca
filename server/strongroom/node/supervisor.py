"""The node's processes: the owner (this process) forks the gunicorn arbiter, then runs.

The process systemd starts (its MainPID) owns the node: seal state and keys, HA, the
cluster port, background work. It forks the gunicorn arbiter *before it starts any
thread*, so no fork on the node ever copies a lock held by a thread that does not exist
in the child; the arbiter runs nothing but gunicorn (one thread) and forks the workers.
Key material never exists in the arbiter: the owner creates none before the fork.

No half-alive node:
- the owner dies: the kernel sends the arbiter SIGTERM (``PR_SET_PDEATHSIG``); it
  stops its workers, whose seal watchers lost the coordinator and wiped their keys
  (they answer 503 sealed while they drain);
- the arbiter dies: the owner (SIGCHLD) gives up leadership and exits non-zero, and
  systemd (Restart=on-failure) starts the node again; the workers get their own
  ``PR_SET_PDEATHSIG`` (set in gunicorn's post_fork) and exit.

Signals reach the owner only (KillMode=mixed): SIGTERM/SIGINT/SIGQUIT stop the node
(leadership is released first, then the arbiter is told to drain and the owner waits
for it); SIGHUP, SIGUSR1, SIGTTIN and SIGTTOU are passed on to the arbiter, which
handles them as gunicorn always has.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
_STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_FORWARD = (signal.SIGHUP, signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU)
_HANDLED = (*_STOP, *_FORWARD, signal.SIGCHLD)
# The arbiter is given its graceful timeout and then this much more before it is killed.
STOP_GRACE = 15.0
_GO = b"g"
_READY = b"r"


def set_parent_death_signal(sig: int, expected_parent: int) -> None:
    """Have the kernel send ``sig`` to this process when its parent exits.

    If the parent is already gone (it died before this call), exit at once.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != expected_parent:
        os._exit(1)


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about the node; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        log.warning("event=sd_notify_failed")


class Owner(Protocol):
    """What the owner process does around the arbiter (serve.py's StrongroomServer)."""

    def run_arbiter(self, ready: Callable[[], None]) -> int:
        """In the forked child: run gunicorn; call ``ready`` once it listens."""

    def close_in_arbiter(self) -> None:
        """In the forked child, first thing: drop what belongs to the owner alone."""

    def start_owner(self, arbiter_pid: int) -> None:
        """In the owner after the fork: coordinator, HA, background work (threads)."""

    def release_leadership(self) -> None:
        """First step of a stop: hand the HA lock over."""

    def stop_owner(self) -> None:
        """Last step: end HA, close the coordinator, remove runtime directories."""


class Supervisor:
    """Forks the arbiter and runs the owner's side until the node stops."""

    def __init__(self, owner: Owner, graceful_timeout: float) -> None:
        self._owner = owner
        self._graceful_timeout = graceful_timeout
        self._arbiter = 0
        self._status: int | None = None  # the arbiter's exit status once reaped

    def run(self) -> int:
        """Fork the arbiter, start the owner, serve until told to stop; the exit code."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        go_r, go_w = os.pipe()
        ready_r, ready_w = os.pipe()
        # Blocked across the fork: a signal in between would reach the child's copy of
        # our handlers (and our wake-up pipe).
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        previous = {sig: signal.signal(sig, _noop) for sig in _HANDLED}
        old_wakeup = signal.set_wakeup_fd(wake_w)
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
            for fd in (wake_r, wake_w, go_w, ready_r):
                os.close(fd)
            os._exit(self._arbiter_main(go_r, ready_w))
        self._arbiter = pid
        os.close(go_r)
        os.close(ready_w)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        try:
            return self._owner_main(wake_r, go_w, ready_r)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for fd in (wake_r, wake_w, ready_r):
                os.close(fd)

    # -- the arbiter (child) ------------------------------------------------------

    def _arbiter_main(self, go_r: int, ready_w: int) -> int:
        owner = os.getppid()
        try:
            set_parent_death_signal(signal.SIGTERM, owner)
            self._owner.close_in_arbiter()
            # systemd accepts notifications from the MainPID only (NotifyAccess=main):
            # the owner says READY once the arbiter has told it it listens.
            os.environ.pop("NOTIFY_SOCKET", None)
            # Wait for the owner to be ready to answer workers (coordinator, dev-mode
            # unseal): nothing may listen before. EOF: the owner failed or died.
            if os.read(go_r, 1) != _GO:
                return 1
            os.close(go_r)

            def ready() -> None:
                with contextlib.suppress(OSError):
                    os.write(ready_w, _READY)

            return self._owner.run_arbiter(ready)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("event=arbiter_failed")
            return 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    # -- the owner (parent) -------------------------------------------------------

    def _owner_main(self, wake_r: int, go_w: int, ready_r: int) -> int:
        try:
            self._owner.start_owner(self._arbiter)
        except BaseException:
            log.exception("event=owner_start_failed")
            os.close(go_w)  # the arbiter reads EOF and exits
            self._wait_arbiter(STOP_GRACE)
            self._owner.stop_owner()
            return 1
        os.write(go_w, _GO)
        os.close(go_w)
        stopping = False
        deadline = 0.0
        watch = [wake_r, ready_r]
        while True:
            readable = _select(watch)
            if ready_r in readable:
                if os.read(ready_r, 1) == _READY:
                    sd_notify("READY=1\nSTATUS=serving")
                    log.info("event=node_ready arbiter=%d", self._arbiter)
                else:
                    watch.remove(ready_r)  # the arbiter closed it: it is exiting
            for sig in _signals(wake_r) if wake_r in readable else ():
                if sig in _STOP and not stopping:
                    stopping = True
                    deadline = time.monotonic() + self._graceful_timeout + STOP_GRACE
                    sd_notify("STOPPING=1")
                    log.info("event=node_stopping signal=%s", signal.Signals(sig).name)
                    self._release()
                    # SIGTERM drains the workers; SIGINT/SIGQUIT stop them at once.
                    self._kill(signal.SIGTERM if sig == signal.SIGTERM else signal.SIGQUIT)
                elif sig in _FORWARD and not stopping:
                    self._kill(sig)
            self._reap()
            if self._status is not None:
                break
            if stopping and time.monotonic() > deadline:
                log.error("event=arbiter_stop_timeout: killed")
                self._kill(signal.SIGKILL)
                deadline = time.monotonic() + STOP_GRACE
        if not stopping:
            # Nobody asked the arbiter to stop: the node cannot serve. Hand leadership
            # over and exit non-zero so systemd starts the node again.
            log.error("event=arbiter_exited status=%d: stopping the node", self._status)
            self._release()
        self._owner.stop_owner()
        if stopping:
            return 0 if self._status == 0 else 1
        return self._status if self._status > 0 else 1

    def _release(self) -> None:
        try:
            self._owner.release_leadership()
        except Exception:  # noqa: BLE001 - stop the node anyway; the session TTL covers it
            log.exception("event=release_leadership_failed")

    def _kill(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._arbiter, sig)

    def _reap(self) -> None:
        if self._status is not None:
            return
        try:
            pid, status = os.waitpid(self._arbiter, os.WNOHANG)
        except ChildProcessError:
            self._status = 1
            return
        if pid == self._arbiter:
            self._status = os.waitstatus_to_exitcode(status)

    def _wait_arbiter(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._status is None:
            self._reap()
            if self._status is not None:
                return
            if time.monotonic() > deadline:
                self._kill(signal.SIGKILL)
                deadline = time.monotonic() + STOP_GRACE
            time.sleep(0.05)


def _noop(_sig: int, _frame: object) -> None:
    """The signal is read from the wake-up pipe; the handler only has to exist."""


def _select(fds: list[int]) -> list[int]:
    # A timeout anyway: a SIGCHLD lost to a full pipe must not leave us waiting forever.
    readable, _, _ = select.select(fds, [], [], 1.0)
    return list(readable)


def _signals(wake_r: int) -> list[int]:
    """The signals the wake-up pipe reports (the pipe is non-blocking on this side)."""
    try:
        return list(os.read(wake_r, 512))
    except BlockingIOError:
        return []
