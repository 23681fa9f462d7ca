"""Start real server processes (Strongroom under gunicorn, OpenBao) for tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support import requires

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_LATE_PORTS: set[int] = set()


def late_bound_port() -> int:
    """A free port below the kernel's ephemeral range, for a listener opened later.

    free_port() hands out a port the kernel also gives outgoing connections as their
    source port: a port bound only later (a standby's cluster port, once it becomes
    active) may be some connection's by then, and binding it fails (EADDRINUSE).
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    for _ in range(200):
        port = random.randrange(max(1024, low - 10000), low)
        if port in _LATE_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # noqa: S104 - the cluster listener binds all
            except OSError:
                continue
        _LATE_PORTS.add(port)
        return port
    return free_port()


def wait_until_answering(url: str, proc: subprocess.Popen[bytes], timeout: float = 30,
                         verify: str | bool = True) -> None:
    """Poll sys/health until the server answers (any status) or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.get(url + "/v1/sys/health", timeout=1, verify=verify)
            return
        except (requests.ConnectionError, requests.Timeout):  # not yet (or a busy machine)
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_for_workers(self, count: int, timeout: float = 20) -> set[int]:
        """Wait until the arbiter has ``count`` live children (workers boot after bind)."""
        deadline = time.monotonic() + timeout
        while len(pids := self.worker_pids()) != count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} workers, have {len(pids)}")
            time.sleep(0.05)
        return pids

    def arbiter_pid(self) -> int | None:
        """The gunicorn arbiter: the one child of the owner (``proc``), if it runs."""
        children = child_pids(self.proc.pid)
        return min(children) if children else None

    def worker_pids(self) -> set[int]:
        """The workers: the arbiter's children (none while there is no arbiter)."""
        arbiter = self.arbiter_pid()
        return child_pids(arbiter) if arbiter is not None else set()

    def node_pids(self) -> set[int]:
        """Every process of the node: owner, arbiter, workers."""
        arbiter = self.arbiter_pid()
        return {self.proc.pid, *([arbiter] if arbiter else []), *self.worker_pids()}


def process_alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def child_pids(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         capture_output=True, text=True, check=False).stdout
    return {int(p) for p in out.split()}


def file_config(workers: int = 2) -> str:
    """A node on file storage in its workdir, plain HTTP ({port}, {workdir} filled later)."""
    return (
        'storage "file" {{\n  path = "{workdir}/data"\n}}\n'
        'listener "tcp" {{\n  address     = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f"disable_mlock = true\nworkers       = {workers}\n"
    )


def strongroom_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "server") + os.pathsep + env.get("PYTHONPATH", "")
    env["STRONGROOM_DEBUG_WORKER_HEADER"] = "1"
    return env


@contextmanager
def running(args: list[str], workdir: Path, log_name: str, url: str,
            env: dict[str, str] | None = None, ready: bool = True,
            verify: str | bool = True) -> Iterator[ServerProcess]:
    """Run ``args`` logging to ``workdir/log_name``; stop it when the block exits."""
    log = open(workdir / log_name, "wb")  # noqa: SIM115 - closed on exit
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    server = ServerProcess(url, proc, workdir)
    try:
        if ready:
            wait_until_answering(url, proc, verify=verify)
        yield server
    finally:
        server.stop()
        log.close()


def bao_binary() -> str:
    """OpenBao for the differential tests (skips locally, fails under CI=true if absent)."""
    return requires.bao()


@contextmanager
def strongroom_server(workdir: Path, config_body: str, scheme: str = "http",
                      verify: str | bool = True, ready: bool = True) -> Iterator[ServerProcess]:
    """Run `strongroom server -config=...`; config_body may use {port} and {workdir}."""
    port = free_port()
    config = workdir / "server.hcl"
    config.write_text(config_body.format(port=port, workdir=workdir))
    args = [sys.executable, "-m", "strongroom.cli.main", "server", f"-config={config}"]
    with running(args, workdir, "server.log", f"{scheme}://127.0.0.1:{port}",
                 env=strongroom_env(), ready=ready, verify=verify) as server:
        yield server


@contextmanager
def strongroom_dev_server(workdir: Path, root_token: str = "root") -> Iterator[ServerProcess]:
    """`strongroom server -dev`, like `vault server -dev`: in memory, unsealed, KV v2."""
    port = free_port()
    args = [sys.executable, "-m", "strongroom.cli.main", "server", "-dev",
            f"-dev-root-token-id={root_token}", f"-dev-listen-address=127.0.0.1:{port}"]
    with running(args, workdir, "dev.log", f"http://127.0.0.1:{port}",
                 env=strongroom_env()) as server:
        yield server


@contextmanager
def bao_server(workdir: Path, listener_options: str = "") -> Iterator[ServerProcess]:
    """A real, non-dev OpenBao server on inmem storage (so init/unseal are exercised);
    ``listener_options`` are HCL lines added to its listener stanza."""
    bao = bao_binary()
    port = free_port()
    config = workdir / "bao.hcl"
    config.write_text(
        'storage "inmem" {}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n'
        f"{listener_options}}}\n"
        "disable_mlock = true\n"
    )
    with running([bao, "server", f"-config={config}"], workdir, "bao.log",
                 f"http://127.0.0.1:{port}") as server:
        yield server


def free_port_pair() -> int:
    """A port whose successor is free too: a dev OpenBao binds its cluster port at +1."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of adjacent ports")


@contextmanager
def bao_dev_server(workdir: Path, root_token: str = "root") -> Iterator[ServerProcess]:
    """`bao server -dev`: in memory, unsealed, KV v2 at secret/ (the reference for -dev)."""
    bao = bao_binary()
    port = free_port_pair()
    args = [bao, "server", "-dev", f"-dev-root-token-id={root_token}",
            f"-dev-listen-address=127.0.0.1:{port}"]
    with running(args, workdir, "bao-dev.log", f"http://127.0.0.1:{port}",
                 env={**os.environ, "HOME": str(workdir)}) as server:
        yield server
