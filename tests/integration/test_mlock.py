"""disable_mlock = false locks every server process's memory, or the server refuses to start.

Real server processes: with locking allowed (root here has CAP_IPC_LOCK) the
owner (the key holder) and every worker show locked memory (VmLck) in /proc/PID/status; with
CAP_IPC_LOCK dropped (capsh, or setpriv) and RLIMIT_MEMLOCK lowered (prlimit)
the server exits at once with a message that names what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import requires
from tests.support.servers import child_pids, free_port, strongroom_env, strongroom_server

WORKERS = 2
LOCKED_CONFIG = (
    'storage "file" {{\n  path = "{workdir}/data"\n}}\n'
    'listener "tcp" {{\n  address     = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
    f"disable_mlock = false\nworkers       = {WORKERS}\n"
)


def locked_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmLck in /proc/{pid}/status")


def has_cap_ipc_lock() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 14 & 1)  # CAP_IPC_LOCK is 14
    return False


@pytest.mark.skipif(not has_cap_ipc_lock(), reason="needs CAP_IPC_LOCK to lock memory")
def test_owner_and_every_worker_lock_their_memory(tmp_path: Path) -> None:
    with strongroom_server(tmp_path, LOCKED_CONFIG) as server:
        workers = server.wait_for_workers(WORKERS)
        # A worker locks itself right after the fork, before it serves: once each has
        # answered a request, each has locked (or failed to boot).
        answered: set[int] = set()
        deadline = time.monotonic() + 30
        while answered != workers:
            assert time.monotonic() < deadline, f"workers never answered: {workers - answered}"
            resp = requests.get(server.url + "/v1/sys/health", timeout=5,
                                headers={"Connection": "close"})
            answered.add(int(resp.headers["X-Strongroom-Worker"]))
        for pid in (server.proc.pid, *workers):
            assert locked_kib(pid) > 0, f"process {pid} has no locked memory"


def without_ipc_lock(argv: list[str]) -> list[str]:
    """``argv`` run with CAP_IPC_LOCK dropped and RLIMIT_MEMLOCK at 64 KiB."""
    limited = ["prlimit", "--memlock=65536:65536", "--", *argv]
    if shutil.which("capsh"):
        # A dropped bounding-set capability is gone from the program exec'd after it.
        return ["capsh", "--drop=cap_ipc_lock", "--", "-c", 'exec "$@"', "sh", *limited]
    if shutil.which("setpriv"):
        return ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock", *limited]
    requires.missing("capsh or setpriv", "apt-get install libcap2-bin (or util-linux)")


def test_start_up_fails_clearly_when_memory_cannot_be_locked(tmp_path: Path) -> None:
    requires.binary("prlimit", "apt-get install util-linux")
    config = tmp_path / "server.hcl"
    config.write_text(LOCKED_CONFIG.format(port=free_port(), workdir=tmp_path))
    argv = [sys.executable, "-m", "strongroom.cli.main", "server", f"-config={config}"]
    done = subprocess.run(without_ipc_lock(argv), capture_output=True, text=True, timeout=60,
                          env=strongroom_env(), cwd=tmp_path, check=False)
    assert done.returncode == 1, (done.stdout, done.stderr)
    for words in ("Failed to lock memory", "CAP_IPC_LOCK", "RLIMIT_MEMLOCK", "disable_mlock"):
        assert words in done.stderr, done.stderr
    assert not (tmp_path / "data").exists() or not os.listdir(tmp_path / "data")


def test_dev_mode_does_not_lock(tmp_path: Path) -> None:
    """Under the same limits dev mode starts and locks nothing, as `vault server -dev`."""
    port = free_port()
    argv = [sys.executable, "-m", "strongroom.cli.main", "server", "-dev",
            f"-dev-listen-address=127.0.0.1:{port}"]
    proc = subprocess.Popen(without_ipc_lock(argv), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=strongroom_env(), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        seen = []
        # The dev banner is printed once the node is unsealed and about to serve.
        for line in proc.stdout:
            seen.append(line)
            if b"Root Token" in line:
                break
        else:
            pytest.fail(f"dev server exited with {proc.wait()}: {b''.join(seen).decode()}")
        # capsh, sh and prlimit each exec the next: proc.pid is the node's owner, its
        # child the arbiter, whose children are the workers.
        arbiter = child_pids(proc.pid)
        for pid in (proc.pid, *arbiter, *(w for a in arbiter for w in child_pids(a))):
            assert locked_kib(pid) == 0
    finally:
        proc.terminate()
        proc.wait(15)
