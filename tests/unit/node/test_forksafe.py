"""A fork while another thread imports a module must not leave the child hung on it.

Each case runs in its own interpreter: the scenario starts threads and forks, and
the fork handlers cannot be unregistered once installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.servers import REPO

# A thread imports `slowmod` (its body takes 1 s); the main thread forks while the
# import runs; the child imports `slowmod` itself and exits 0, or hangs until SIGALRM.
SCENARIO = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from strongroom.node import forksafe
    if sys.argv[2] == "guarded":
        forksafe.install()
    started = time.monotonic()
    threading.Thread(target=lambda: __import__("slowmod")).start()
    while "slowmod" not in sys.modules:  # its body is running now
        time.sleep(0.001)
    pid = os.fork()
    if pid == 0:
        signal.alarm(3)
        import slowmod
        os._exit(0 if slowmod.DONE else 1)
    forked_after = time.monotonic() - started
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print("child hung", forked_after)
    else:
        print("child exit", os.WEXITSTATUS(status), forked_after)
""")


def run_scenario(tmp_path: Path, mode: str) -> list[str]:
    (tmp_path / "slowmod.py").write_text("import time\ntime.sleep(1.0)\nDONE = True\n")
    out = subprocess.run([sys.executable, "-c", SCENARIO, str(tmp_path), mode],
                         capture_output=True, text=True, timeout=30, check=True,
                         env={"PYTHONPATH": str(REPO / "server"), "PATH": "/usr/bin:/bin"})
    return out.stdout.split()


def test_unguarded_fork_during_an_import_hangs_the_child(tmp_path: Path) -> None:
    """The hazard itself, in this Python: the child waits for a lock nobody will release."""
    words = run_scenario(tmp_path, "unguarded")
    assert words[:2] == ["child", "hung"], words


def test_guarded_fork_waits_for_the_import(tmp_path: Path) -> None:
    words = run_scenario(tmp_path, "guarded")
    assert words[:3] == ["child", "exit", "0"], words
    assert float(words[3]) >= 1.0  # the fork waited for slowmod's body to finish


def test_import_lock_is_released_on_both_sides(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import _imp, os, sys
        from strongroom.node import forksafe
        forksafe.install()
        pid = os.fork()
        if pid == 0:
            os._exit(3 if _imp.lock_held() else 0)
        _, status = os.waitpid(pid, 0)
        print(os.WEXITSTATUS(status), _imp.lock_held())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30, check=True, env={"PYTHONPATH": str(REPO / "server")})
    assert out.stdout.split() == ["0", "False"]


def test_nothing_in_flight_when_idle() -> None:
    from strongroom.node import forksafe

    assert forksafe.imports_in_flight() == []


def test_the_master_installs_the_guard_before_any_thread() -> None:
    """serve.py installs it first thing in on_starting: no thread runs yet and nothing
    else of the server was touched (the flow is stopped right after the install, so the
    test does not depend on what on_starting does next)."""
    script = textwrap.dedent("""
        import threading
        from unittest import mock
        from strongroom.node import forksafe
        from strongroom import serve

        class Stop(BaseException):
            pass

        app = mock.Mock(spec=serve.StrongroomServer)
        real_install = forksafe.install
        seen = {}

        def install():
            seen["threads"] = threading.active_count()
            seen["calls"] = len(app.mock_calls)
            real_install()
            raise Stop

        with mock.patch.object(serve.forksafe, "install", install):
            try:
                serve.StrongroomServer._on_starting(app, None)
            except Stop:
                pass
        print(forksafe.installed(), seen.get("threads"), seen.get("calls"))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30, check=True, env={"PYTHONPATH": str(REPO / "server")})
    assert out.stdout.split() == ["True", "1", "0"], out.stderr
