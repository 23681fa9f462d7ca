#!/usr/bin/env python3
"""Benchmark Strongroom against OpenBao with wrk, one server at a time.

Layout (2-core box): the server under test runs alone, pinned to CPU 0 (for
Strongroom: the gunicorn master and its single worker); wrk, this harness and
py-spy run on CPU 1. Each server is started, checked, seeded, driven through
every workload x concurrency cell, and stopped before the other one starts.

    python bench/run.py [--duration 10] [--concurrency 1,16,64] [--only kv-read,...]
                        [--strongroom-cmd CMD] [--profile [WORKLOAD:C]]

Results: a table on stdout and bench/results/latest.json. See bench/README.md.
Needs: Python 3.11 stdlib + requests; wrk, taskset, bao on PATH; py-spy for --profile.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LUA_DIR = BENCH_DIR / "lua"
RESULTS_DIR = BENCH_DIR / "results"

ROOT_TOKEN = "root"  # noqa: S105 - the dev servers' well-known root token id
SERVER_ORDER = ("openbao", "strongroom")
DEFAULT_BAO_CMD = (
    "bao server -dev -dev-root-token-id=root -dev-no-store-token -dev-listen-address={addr}"
)
DEFAULT_STRONGROOM_CMD = (
    "{python} -m strongroom.cli.main server -dev -dev-root-token-id=root"
    " -dev-listen-address={addr}"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
NICE: list[str] = []  # ["nice", "-n", N] for the server and wrk, set from --nice


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    script: str  # file under bench/lua/
    default: bool = True


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("kv-read", "GET /v1/secret/data/bench (root token)", "read.lua"),
        Workload(
            "kv-write",
            "POST /v1/secret/data/bench-w-<n>, n cycling over --write-keys keys (root token)",
            "write.lua",
        ),
        Workload(
            "token-lookup-self",
            "GET /v1/auth/token/lookup-self with a child token (policy 'default')",
            "read.lua",
        ),
        Workload(
            "token-lookup-self-root",
            "GET /v1/auth/token/lookup-self with the root token",
            "read.lua",
        ),
        Workload(
            "transit-encrypt",
            "POST /v1/transit/encrypt/bench {plaintext: 64 random bytes} (aes256-gcm96, root)",
            "post.lua",
        ),
        Workload(
            "transit-decrypt",
            "POST /v1/transit/decrypt/bench {ciphertext of 64 bytes} (root token)",
            "post.lua",
        ),
        Workload(
            "transit-batch-encrypt-100",
            "POST /v1/transit/encrypt/bench {batch_input: 100 x 64 random bytes} (root)",
            "post.lua",
        ),
    )
}
TRANSIT = ("transit-encrypt", "transit-decrypt", "transit-batch-encrypt-100")
TRANSIT_BYTES = 64  # plaintext size of each encryption
BATCH_ITEMS = 100


@dataclass
class Seed:
    kv_value: str
    child_token: str
    child_accessor: str
    root_accessor: str
    write_keys: int
    # Transit (absent when the server has no transit engine: its cells are then invalid)
    transit_error: str = ""
    encrypt_body: str = ""
    decrypt_body: str = ""
    decrypt_expect: str = ""
    batch_body: str = ""


def wrk_args(workload: str, seed: Seed) -> list[str]:
    """Arguments passed to the Lua script after `--` (see bench/lua/*.lua)."""
    if workload == "kv-read":
        return ["/v1/secret/data/bench", ROOT_TOKEN, seed.kv_value]
    if workload == "kv-write":
        return ["/v1/secret/data/bench-w-", ROOT_TOKEN, str(seed.write_keys)]
    if workload == "token-lookup-self":
        return ["/v1/auth/token/lookup-self", seed.child_token, seed.child_accessor]
    if workload == "token-lookup-self-root":
        return ["/v1/auth/token/lookup-self", ROOT_TOKEN, seed.root_accessor]
    if workload == "transit-encrypt":
        return ["/v1/transit/encrypt/bench", ROOT_TOKEN, seed.encrypt_body, '"vault:v1:']
    if workload == "transit-decrypt":
        return ["/v1/transit/decrypt/bench", ROOT_TOKEN, seed.decrypt_body, seed.decrypt_expect]
    if workload == "transit-batch-encrypt-100":
        # A failed item makes the whole answer a 400 (Vault's batch rule): 2xx is all good.
        return ["/v1/transit/encrypt/bench", ROOT_TOKEN, seed.batch_body, '"batch_results"']
    raise BenchError(f"unknown workload {workload}")


def request_desc(workload: str, seed: Seed) -> str:
    """The HTTP request a workload sends, for error reports."""
    args = wrk_args(workload, seed)
    if workload == "kv-write":
        return (f"POST {args[0]}<0..{seed.write_keys - 1}>  X-Vault-Token: {args[1]}  "
                'Content-Type: application/json  body {"data":{"value":"<32 chars>"}}')
    if workload in TRANSIT:
        body = args[2] if len(args[2]) < 300 else args[2][:300] + "..."
        return (f"POST {args[0]}  X-Vault-Token: {args[1]}  Content-Type: application/json  "
                f"body {body}  (2xx body must contain {args[3]!r})")
    return f"GET {args[0]}  X-Vault-Token: {args[1]}  (2xx body must contain {args[2]!r})"


# --------------------------------------------------------------------------- /proc helpers


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime ticks) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_tree(root: int) -> list[int]:
    """root and all its descendants (live)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st is not None:
            children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return sorted(out)


def tree_cpu_ticks(pids: list[int]) -> int:
    return sum(st[1] for pid in pids if (st := proc_stat(pid)) is not None)


def cpu_times(cpu: int | list[int]) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU (or the sum over several) from /proc/stat."""
    cpus = cpu if isinstance(cpu, list) else [cpu]
    busy = total = 0
    lines = Path("/proc/stat").read_text().splitlines()
    for c in cpus:
        for line in lines:
            if line.startswith(f"cpu{c} "):
                vals = [int(v) for v in line.split()[1:]]
                busy += sum(vals[:8]) - vals[3] - vals[4]
                total += sum(vals[:8])
                break
        else:
            raise BenchError(f"cpu{c} not in /proc/stat")
    return busy, total


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def thread_affinities(pids: list[int]) -> dict[str, list[int]]:
    """Allowed CPUs of every thread of every pid, grouped as 'pid/tid' -> cpus."""
    out: dict[str, list[int]] = {}
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                out[f"{pid}/{tid}"] = sorted(os.sched_getaffinity(tid))
            except OSError:
                pass
    return out


def listening_socket_owner(port: int, pids: list[int]) -> int | None:
    """Which of pids holds the 127.0.0.1:port listening socket (None: none of them)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# --------------------------------------------------------------------------- servers


def cpu_list(cpus: int | str) -> list[int]:
    """``0`` or ``"0,1"`` or ``"0-3"`` as a sorted list of CPU numbers."""
    out: set[int] = set()
    for part in str(cpus).split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return sorted(out)


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    cpu: int | str  # the CPUs the server may use: 0, or "0,1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # Strongroom from a config file (--workers): health answers before init, and the
    # harness initializes, unseals and seeds the node itself (see NodeSetup).
    setup: NodeSetup | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.port = free_port()
        argv = [a.replace("{addr}", f"127.0.0.1:{self.port}") for a in self.argv]
        if self.setup is not None:
            argv = self.setup.argv(argv, self.port)
        full = ["taskset", "-c", ",".join(map(str, cpu_list(self.cpu))), *NICE, *argv]
        fd, log = tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")
        self.log_path = Path(log)
        print(f"[{self.name}] starting on CPU {self.cpu}: {shlex.join(full)}", flush=True)
        self.proc = subprocess.Popen(  # noqa: S603
            full,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(fd)
        set_autogroup_nice(self.proc.pid)
        self._wait_ready(timeout)
        if self.setup is not None:
            self.setup.initialize(self.url)
        self.info = self._describe(full)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        with requests.Session() as s:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                        + self.log_tail()
                    )
                try:
                    r = s.get(self.url + "/v1/sys/health", timeout=1)
                    # Before init a node answers 501 (sealed: 503): up, to be set up.
                    if r.status_code == 200 or (self.setup is not None
                                                and r.status_code in (501, 503)):
                        owner = listening_socket_owner(self.port, process_tree(self.proc.pid))
                        if owner is None:
                            raise BenchError(
                                f"port {self.port} answers but is not held by {self.name}'s "
                                "process tree (port race with another process?)"
                            )
                        return
                    last = f"HTTP {r.status_code}"
                except requests.RequestException as exc:
                    last = type(exc).__name__
                time.sleep(0.05)  # readiness poll interval, not a settle delay
        raise BenchError(f"{self.name} not ready after {timeout}s ({last}):\n" + self.log_tail())

    def _describe(self, full: list[str]) -> dict[str, Any]:
        assert self.proc is not None
        pids = process_tree(self.proc.pid)
        affinity = thread_affinities(pids)
        cpus = sorted({c for v in affinity.values() for c in v})
        if cpus != cpu_list(self.cpu):
            raise BenchError(f"{self.name} threads allowed on CPUs {cpus}, "
                             f"expected {cpu_list(self.cpu)}")
        return {
            "command": shlex.join(full),
            "address": self.url,
            "pids": {str(p): cmdline(p) for p in pids},
            "threads": len(affinity),
            "allowed_cpus": cpus,
        }

    def pids(self) -> list[int]:
        assert self.proc is not None
        return process_tree(self.proc.pid)

    def worker_pids(self) -> list[int]:
        """gunicorn workers: the arbiter's children, the owner's grandchildren (empty for
        OpenBao, a single process)."""
        assert self.proc is not None
        pids = self.pids()
        return [p for p in pids
                if (st := proc_stat(p)) and st[0] != self.proc.pid and st[0] in pids]

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        if self.setup is not None:
            self.setup.cleanup()
        self.proc = None


class NodeSetup:
    """Strongroom as deployed rather than in dev mode: file storage (on tmpfs, as the dev
    server's), ``workers`` gunicorn workers; initialized (one key share), unsealed, and
    given a root token with the dev servers' id so the workloads run unchanged."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        shm = "/dev/shm"  # noqa: S108 - tmpfs like the dev server; mkdtemp makes it 0700
        base = shm if os.path.isdir(shm) else None
        self._dir = Path(tempfile.mkdtemp(prefix="bench-strongroom-node-", dir=base))

    def argv(self, argv: list[str], port: int) -> list[str]:
        config = self._dir / "config.hcl"
        config.write_text(
            f'storage "file" {{\n  path = "{self._dir / "data"}"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            f"disable_mlock = true\nworkers = {self.workers}\n")
        python = argv[0]
        return [python, "-m", "strongroom.cli.main", "server", f"-config={config}"]

    def initialize(self, url: str) -> None:
        base = url + "/v1/"
        with requests.Session() as s:
            init = checked(s.put(base + "sys/init", json={"secret_shares": 1,
                                                          "secret_threshold": 1}, timeout=30),
                           "sys/init")
            checked(s.put(base + "sys/unseal", json={"key": init["keys"][0]}, timeout=30),
                    "sys/unseal")
            s.headers["X-Vault-Token"] = init["root_token"]
            checked(s.post(base + "auth/token/create", timeout=10, json={
                "id": ROOT_TOKEN, "policies": ["root"], "no_parent": True}),
                "create the root token 'root'")
            checked(s.post(base + "sys/mounts/secret", timeout=10, json={
                "type": "kv", "options": {"version": "2"}}), "mount kv-v2 at secret/")
            checked(s.post(base + "auth/token/revoke-self", timeout=10), "revoke init's root")

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


# --------------------------------------------------------------------------- seeding


def random_value(n: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def describe_exchange(r: requests.Response) -> str:
    req = r.request
    headers = "\n".join(f"  {k}: {v.decode() if isinstance(v, bytes) else v}"
                        for k, v in req.headers.items())
    body = req.body.decode() if isinstance(req.body, bytes) else (req.body or "")
    return (
        f"REQUEST  {req.method} {req.url}\n{headers}\n  body: {body}\n"
        f"RESPONSE {r.status_code} {r.reason}\n"
        + "\n".join(f"  {k}: {v}" for k, v in r.headers.items())
        + f"\n  body: {r.text[:2000]}"
    )


def checked(r: requests.Response, what: str) -> dict[str, Any]:
    if not 200 <= r.status_code < 300:
        raise BenchError(f"seeding failed ({what}):\n{describe_exchange(r)}")
    return r.json() if r.content else {}


def seed(server: Server, write_keys: int) -> Seed:
    s = requests.Session()
    s.headers["X-Vault-Token"] = ROOT_TOKEN
    base = server.url + "/v1/"
    value = random_value()
    checked(s.post(base + "secret/data/bench", json={"data": {"value": value}}, timeout=10),
            "write secret/data/bench")
    # Pre-create every write key so the measured writes are steady-state updates.
    for n in range(write_keys):
        checked(s.post(base + f"secret/data/bench-w-{n}",
                       json={"data": {"value": random_value()}}, timeout=10),
                f"write secret/data/bench-w-{n}")
    auth = checked(
        s.post(base + "auth/token/create", json={"policies": ["default"], "ttl": "4h"},
               timeout=10),
        "auth/token/create",
    )["auth"]
    root_self = checked(s.get(base + "auth/token/lookup-self", timeout=10), "lookup-self root")
    sd = Seed(value, auth["client_token"], auth["accessor"],
              root_self["data"]["accessor"], write_keys)
    try:
        seed_transit(s, base, sd)
    except BenchError as exc:
        sd.transit_error = str(exc)
    s.close()
    return sd


def seed_transit(s: requests.Session, base: str, sd: Seed) -> None:
    """A transit mount with key ``bench`` (aes256-gcm96), one ciphertext to decrypt and
    the bodies the transit workloads send (random 64-byte plaintexts)."""
    checked(s.post(base + "sys/mounts/transit", json={"type": "transit"}, timeout=10),
            "enable transit at transit/")
    checked(s.post(base + "transit/keys/bench", json={"type": "aes256-gcm96"}, timeout=10),
            "create transit key bench")
    plaintext = base64.b64encode(os.urandom(TRANSIT_BYTES)).decode()
    sd.encrypt_body = json.dumps({"plaintext": plaintext}, separators=(",", ":"))
    enc = checked(s.post(base + "transit/encrypt/bench", data=sd.encrypt_body, timeout=10,
                         headers={"Content-Type": "application/json"}), "transit encrypt")
    sd.decrypt_body = json.dumps({"ciphertext": enc["data"]["ciphertext"]},
                                 separators=(",", ":"))
    sd.decrypt_expect = plaintext
    items = [{"plaintext": base64.b64encode(os.urandom(TRANSIT_BYTES)).decode()}
             for _ in range(BATCH_ITEMS)]
    sd.batch_body = json.dumps({"batch_input": items}, separators=(",", ":"))


def precheck(server: Server, workload: str, sd: Seed) -> str | None:
    """One request of the workload through requests: None if fine, else the exchange."""
    if workload in TRANSIT and sd.transit_error:
        return f"no transit engine to measure: {sd.transit_error}"
    args = wrk_args(workload, sd)
    url = server.url + args[0]
    if workload in TRANSIT:
        r = requests.post(url, data=args[2], timeout=10, headers={
            "X-Vault-Token": args[1], "Content-Type": "application/json"})
        ok = 200 <= r.status_code < 300 and args[3] in r.text
        if ok and workload == "transit-batch-encrypt-100":
            results = r.json()["data"]["batch_results"]
            ok = len(results) == BATCH_ITEMS and all(
                str(x.get("ciphertext", "")).startswith("vault:v1:") for x in results)
    elif workload == "kv-write":
        r = requests.post(url + "0", json={"data": {"value": random_value()}},
                          headers={"X-Vault-Token": args[1]}, timeout=10)
        ok = 200 <= r.status_code < 300
    else:
        r = requests.get(url, headers={"X-Vault-Token": args[1]}, timeout=10)
        ok = 200 <= r.status_code < 300 and args[2] in r.text
    return None if ok else describe_exchange(r)


# --------------------------------------------------------------------------- wrk


def parse_wrk(out: str) -> dict[str, Any]:
    vals: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("BENCH "):
            _, key, val = line.split(" ", 2)
            vals[key] = float(val)
    m = re.search(r"BENCH_FIRST_ERROR_BEGIN\n(.*)\nBENCH_FIRST_ERROR_END", out, re.S)
    if "requests" not in vals:
        raise BenchError(f"could not parse wrk output:\n{out}")
    errors = {
        k: int(vals[k])
        for k in ("err_connect", "err_read", "err_write", "err_timeout", "bad_status", "bad_body")
    }
    secs = vals["duration_us"] / 1e6
    return {
        "requests": int(vals["requests"]),
        "seconds": round(secs, 3),
        "rps": round(vals["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(vals["lat_p50_us"] / 1000, 3),
        "p90_ms": round(vals["lat_p90_us"] / 1000, 3),
        "p99_ms": round(vals["lat_p99_us"] / 1000, 3),
        "p999_ms": round(vals["lat_p99.9_us"] / 1000, 3),
        "mean_ms": round(vals["lat_mean_us"] / 1000, 3),
        "max_ms": round(vals["lat_max_us"] / 1000, 3),
        "errors": errors,
        "first_error": m.group(1) if m else None,
        "valid": int(vals["requests"]) > 0 and not any(errors.values()),
    }


def wrk_cmd(url: str, workload: str, sd: Seed, conc: int, secs: float, cpu: int,
            timeout_s: int) -> list[str]:
    return [
        "taskset", "-c", str(cpu), *NICE, "wrk", "-t1", f"-c{conc}", f"-d{secs:g}s", "--latency",
        "--timeout", f"{timeout_s}s", "-s", str(LUA_DIR / WORKLOADS[workload].script),
        url, "--", *wrk_args(workload, sd),
    ]


def set_autogroup_nice(pid: int) -> None:
    """With sched_autogroup on, nice only ranks processes within one session's autogroup;
    across sessions the kernel shares CPU between autogroups. So a process started in its
    own session gets --nice applied to its autogroup as well."""
    if not NICE:
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(NICE[2])
    except OSError:
        pass  # no autogroup support (or not permitted): plain nice still applies


def run_wrk(cmd: list[str]) -> str:
    p = subprocess.Popen(  # noqa: S603
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        set_autogroup_nice(p.pid)
        out, err = p.communicate()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if p.returncode != 0:
        raise BenchError(f"wrk failed ({p.returncode}): {shlex.join(cmd)}\n{out}{err}")
    return out


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_for_quiet(args: argparse.Namespace) -> float:
    """Between cells the server idles, so CPU 0's load is other processes'. Wait (up to
    --quiet-wait s, in 0.5 s windows) until it is below --max-interference %; returns the
    last window's busy %."""
    deadline = time.monotonic() + args.quiet_wait
    while True:
        b0 = cpu_times(args.server_cpus)
        time.sleep(0.5)  # measurement window
        b1 = cpu_times(args.server_cpus)
        busy = 100 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * len(args.server_cpus)
        if busy <= args.max_interference or time.monotonic() >= deadline:
            return round(busy, 1)


def measure_once(server: Server, workload: str, sd: Seed, conc: int, args: argparse.Namespace
                 ) -> dict[str, Any]:
    pids = server.pids()
    la0 = loadavg()
    s0, c0, w0, k0, t0 = (tree_cpu_ticks(pids), cpu_times(args.server_cpus),
                          cpu_times(args.client_cpu), children_cpu_s(), time.monotonic())
    out = run_wrk(wrk_cmd(server.url, workload, sd, conc, args.duration, args.client_cpu,
                          args.wrk_timeout))
    s1, c1, w1, k1, t1 = (tree_cpu_ticks(pids), cpu_times(args.server_cpus),
                          cpu_times(args.client_cpu), children_cpu_s(), time.monotonic())
    res = parse_wrk(out)
    wall = t1 - t0
    server_pct = 100 * (s1 - s0) / (wall * CLK_TCK)
    # Busy % summed over the server's CPUs (up to 100 x their number).
    core_busy = (100 * (c1[0] - c0[0]) / max(1, c1[1] - c0[1])) * len(args.server_cpus)
    wrk_pct = 100 * (k1 - k0) / wall
    # When wrk shares the server's CPUs (--server-cpus including --client-cpu), its own
    # CPU is not interference: it is the load generator's cost, reported apart.
    shared = wrk_pct if args.client_cpu in args.server_cpus else 0.0
    res["server_cpu_pct"] = round(server_pct, 1)
    res["server_core_busy_pct"] = round(core_busy, 1)
    res["server_core_other_pct"] = round(max(0.0, core_busy - server_pct - shared), 1)
    res["wrk_cpu_pct"] = round(wrk_pct, 1)
    # The load generator's cost per request (CPU-seconds), to account for it where it
    # shares the server's cores (multi-core runs, bench/README.md).
    res["wrk_cpu_us_per_request"] = (
        round(1e6 * (k1 - k0) / res["requests"], 1) if res["requests"] else None)
    res["server_cpu_us_per_request"] = (
        round(1e6 * (s1 - s0) / CLK_TCK / res["requests"], 1) if res["requests"] else None)
    server_cpu_s = (s1 - s0) / CLK_TCK
    res["requests_per_server_cpu_s"] = (
        round(res["requests"] / server_cpu_s, 1) if server_cpu_s > 0 else None
    )
    res["client_core_busy_pct"] = round(100 * (w1[0] - w0[0]) / max(1, w1[1] - w0[1]), 1)
    res["loadavg_before"] = la0
    return res


def measure(server: Server, workload: str, sd: Seed, conc: int, args: argparse.Namespace
            ) -> dict[str, Any]:
    """--repeat measurements of one cell; reports the one with the median req/s (an
    invalid one wins, so errors are never hidden) and the spread of all of them."""
    runs = [measure_one(server, workload, sd, conc, args, warmup=(i == 0))
            for i in range(args.repeat)]
    invalid = [r for r in runs if not r["valid"]]
    res = invalid[0] if invalid else sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    res["repeats"] = [{"rps": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                       "noisy": r["noisy"]} for r in runs]
    return res


def measure_one(server: Server, workload: str, sd: Seed, conc: int, args: argparse.Namespace,
                warmup: bool) -> dict[str, Any]:
    """Warm up, then measure; re-measure (up to --retries) while another process took
    more than --max-interference % of the server's core, keeping the quietest attempt."""
    warm = None
    attempts = []
    for attempt in range(1 + args.retries):
        quiet = wait_for_quiet(args) if args.quiet_wait > 0 else None
        if warmup and attempt == 0 and args.warmup > 0:
            warm = parse_wrk(run_wrk(wrk_cmd(server.url, workload, sd, conc, args.warmup,
                                             args.client_cpu, args.wrk_timeout)))
        res = measure_once(server, workload, sd, conc, args)
        res["server_core_busy_before_pct"] = quiet
        attempts.append(res)
        if not res["valid"] or res["server_core_other_pct"] <= args.max_interference:
            break
        if attempt < args.retries:
            print(f"[{server.name}] {workload} c={conc}: {res['server_core_other_pct']}% of "
                  f"CPU {args.server_cpus} went to other processes; measuring again", flush=True)
    invalid = [a for a in attempts if not a["valid"]]
    res = invalid[0] if invalid else min(attempts, key=lambda a: a["server_core_other_pct"])
    res["request"] = request_desc(workload, sd)
    res["attempts"] = len(attempts)
    res["attempt_rps"] = [a["rps"] for a in attempts]
    res["noisy"] = res["server_core_other_pct"] > args.max_interference
    if warm is not None and not warm["valid"]:
        res["valid"] = False
        res["warmup_errors"] = warm["errors"]
        res["first_error"] = res["first_error"] or warm["first_error"]
    return res


# --------------------------------------------------------------------------- profiling


def frame_key(frame: str, with_line: bool) -> str:
    return frame if with_line else re.sub(r":\d+\)$", ")", frame)


def top_self(collapsed: str, n: int = 15, with_line: bool = False
             ) -> tuple[int, list[tuple[str, int]]]:
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, num = line.rpartition(" ")
        if not stack or not num.isdigit():
            continue
        leaf = stack.split(";")[-1]
        counts[frame_key(leaf, with_line)] += int(num)
        total += int(num)
    return total, counts.most_common(n)


def top_inclusive(collapsed: str, n: int = 25) -> tuple[int, list[tuple[str, int]]]:
    """Samples in which a function appears anywhere on the stack (counted once per stack)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, num = line.rpartition(" ")
        if not stack or not num.isdigit():
            continue
        total += int(num)
        for frame in {frame_key(f, False) for f in stack.split(";")}:
            counts[frame] += int(num)
    return total, counts.most_common(n)


def profile(server: Server, workload: str, sd: Seed, conc: int, args: argparse.Namespace
            ) -> dict[str, Any]:
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    workers = server.worker_pids()
    if not workers:
        raise BenchError("no gunicorn worker found")
    worker = workers[0]  # with --workers N, the first one (each serves a share)
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = RESULTS_DIR / f"profile-{workload}-c{conc}"
    outputs = {"flamegraph": stem.with_suffix(".svg"), "raw": stem.with_suffix(".txt")}
    runs = {}
    for fmt, path in outputs.items():
        spy = [
            "taskset", "-c", str(args.client_cpu), pyspy, "record", "--pid", str(worker),
            "--rate", str(args.profile_rate), "--duration", str(int(args.duration)),
            "--format", fmt, "--output", str(path),
        ]
        if args.profile_mode == "gil":
            spy.append("--gil")
        if args.nonblocking:
            spy.append("--nonblocking")
        if args.profile_native:
            spy.append("--native")
        print(f"[profile] {shlex.join(spy)}", flush=True)
        sp = subprocess.Popen(spy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
        out = run_wrk(wrk_cmd(server.url, workload, sd, conc, int(args.duration) + 1,
                              args.client_cpu, args.wrk_timeout))
        spy_out, _ = sp.communicate(timeout=60)
        if sp.returncode != 0 or not path.exists():
            msg = spy_out.decode(errors="replace")
            raise BenchError(f"py-spy failed ({sp.returncode}):\n{msg}")
        runs[fmt] = parse_wrk(out)
    total, top = top_self(outputs["raw"].read_text(), 15)
    _, top_lines = top_self(outputs["raw"].read_text(), 15, with_line=True)
    report = [f"py-spy self time ({args.profile_mode} mode), {workload} c={conc}, "
              f"worker pid {worker}, {total} samples",
              "", "by function:"]
    report += [f"{c:7d} {100 * c / total:5.1f}%  {f}" for f, c in top]
    report += ["", "by line:"]
    report += [f"{c:7d} {100 * c / total:5.1f}%  {f}" for f, c in top_lines]
    _, incl = top_inclusive(outputs["raw"].read_text(), 40)
    report += ["", "inclusive (function anywhere on the stack):"]
    report += [f"{c:7d} {100 * c / total:5.1f}%  {f}" for f, c in incl]
    top_path = stem.with_name(stem.name + "-top.txt")
    top_path.write_text("\n".join(report) + "\n")
    return {
        "workload": workload,
        "concurrency": conc,
        "worker_pid": worker,
        "rate_hz": args.profile_rate,
        "mode": args.profile_mode,
        "native": args.profile_native,
        "possible_samples": int(args.profile_rate * int(args.duration)),
        "samples": total,
        "files": {k: str(v.relative_to(REPO_ROOT)) for k, v in outputs.items()}
        | {"top": str(top_path.relative_to(REPO_ROOT))},
        "top_self_by_function": [
            {"frame": f, "samples": c, "pct": round(100 * c / total, 1)} for f, c in top
        ],
        "top_inclusive_by_function": [
            {"frame": f, "samples": c, "pct": round(100 * c / total, 1)} for f, c in incl[:25]
        ],
        "wrk_during_profile": {k: {"rps": v["rps"], "valid": v["valid"]} for k, v in runs.items()},
    }


# --------------------------------------------------------------------------- output


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.2f}"
    return f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def table(rows: list[dict[str, Any]]) -> str:
    head = ["workload", "conc", "bao req/s", "bao p50", "bao p99", "sr req/s", "sr p50",
            "sr p99", "req/s ratio", "p99 ratio", "req/cpu-s ratio", "note"]
    lines = [head]
    for r in rows:
        b, s = r.get("openbao"), r.get("strongroom")
        note = []
        if b and not b["valid"]:
            note.append("OpenBao INVALID")
        if s and not s["valid"]:
            note.append("Strongroom INVALID")
        for key, label in (("openbao", "bao"), ("strongroom", "sr")):
            cell = r.get(key)
            if cell and cell["valid"] and cell["noisy"]:
                note.append(f"{label} noisy ({cell['server_core_other_pct']:.0f}% to others)")
            if cell and len(cell.get("repeats", [])) > 1:
                rps = [x["rps"] for x in cell["repeats"]]
                note.append(f"{label} {min(rps):,.0f}-{max(rps):,.0f}/s")
        lines.append([
            r["workload"], str(r["concurrency"]),
            fmt_num(b and b["rps"]), fmt_num(b and b["p50_ms"], "ms"),
            fmt_num(b and b["p99_ms"], "ms"),
            fmt_num(s and s["rps"]), fmt_num(s and s["p50_ms"], "ms"),
            fmt_num(s and s["p99_ms"], "ms"),
            "-" if r["ratio_rps"] is None else f"{r['ratio_rps']:.3f}",
            "-" if r["ratio_p99"] is None else f"{r['ratio_p99']:.2f}",
            "-" if r["ratio_requests_per_cpu_s"] is None
            else f"{r['ratio_requests_per_cpu_s']:.3f}",
            ", ".join(note),
        ])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = []
    for i, row in enumerate(lines):
        out.append("  ".join(c.ljust(w) if j < 2 or j == len(head) - 1 else c.rjust(w)
                             for j, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + (
        "\n(latencies in ms; ratios are Strongroom / OpenBao; req/cpu-s ratio compares "
        "requests served per CPU-second the server itself used)"
    )


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr) else ""


def git_rev() -> str:
    rev = tool_version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "server"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return rev + ("+dirty(server/)" if dirty else "")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured cell")
    p.add_argument("--warmup", type=int, default=2,
                   help="seconds of unmeasured load before each cell (0: none)")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each cell this many times and report the median req/s run")
    p.add_argument("--concurrency", default="1,16,64", help="comma list of wrk connections")
    p.add_argument("--only", default="",
                   help=f"comma list of workloads (all: {','.join(WORKLOADS)}; default: "
                   + ",".join(w.name for w in WORKLOADS.values() if w.default) + ")")
    p.add_argument("--servers", default=",".join(SERVER_ORDER),
                   help="which servers to run (openbao,strongroom)")
    p.add_argument("--strongroom-cmd", default=DEFAULT_STRONGROOM_CMD,
                   help="Strongroom dev server command; {addr} and {python} are substituted; "
                   "run from the repo root with PYTHONPATH=server")
    p.add_argument("--strongroom-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for Strongroom (repeatable), e.g. "
                   "STRONGROOM_HTTP_WORKER=uvicorn")
    p.add_argument("--strongroom-rev", default="", metavar="REV",
                   help="run Strongroom's server/ as of this git revision (extracted to a "
                   "temporary directory) instead of the work tree")
    p.add_argument("--bao-cmd", default=DEFAULT_BAO_CMD, help="OpenBao dev server command")
    p.add_argument("--write-keys", type=int, default=1000,
                   help="kv-write cycles over this many keys")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--server-cpus", default="", metavar="LIST",
                   help="CPUs the server may use (e.g. 0,1), instead of --server-cpu; may "
                   "include --client-cpu (then wrk shares them: see bench/README.md, "
                   "multi-core)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run Strongroom from a config file with N gunicorn workers (file "
                   "storage on tmpfs, initialized and unsealed by the harness) instead of "
                   "the dev server (0, the default: the dev server, one worker)")
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--max-interference", type=float, default=10,
                   help="%% of the server core other processes may take before a cell is "
                   "measured again (and finally flagged noisy)")
    p.add_argument("--retries", type=int, default=2,
                   help="extra attempts for a cell disturbed by other processes")
    p.add_argument("--quiet-wait", type=float, default=0,
                   help="before each measured attempt, wait up to this many seconds for "
                   "the server's core to be quieter than --max-interference (0: don't)")
    p.add_argument("--nice", type=int, default=-15,
                   help="run the server and wrk at this nice value (negative needs root; "
                   "0: leave alone) so other processes on a shared box take less of CPU 0")
    p.add_argument("--wrk-timeout", type=int, default=10,
                   help="wrk per-request timeout in s (a timeout counts as an error)")
    p.add_argument("--profile", nargs="?", const="kv-read:16", default=None,
                   metavar="WORKLOAD:C",
                   help="py-spy the Strongroom worker during WORKLOAD at concurrency C "
                   "(default kv-read:16), in extra unmeasured runs")
    p.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--profile-mode", choices=("gil", "active"), default="gil",
                   help="gil: sample only the thread holding the GIL (py-spy --gil; default, "
                   "see README); active: every thread py-spy thinks is not idle")
    p.add_argument("--profile-native", action="store_true",
                   help="py-spy --native: include C/Rust frames (more overhead)")
    p.add_argument("--nonblocking", action="store_true",
                   help="py-spy --nonblocking (less overhead, less accurate)")
    p.add_argument("--audit-file", action="store_true",
                   help="enable one file audit device (same options) on each server before "
                   "seeding, as `audit enable file file_path=...`: every measured request is "
                   "audited; the logs go to a temp dir and are removed afterwards")
    p.add_argument("--output", default=str(RESULTS_DIR / "latest.json"))
    args = p.parse_args(argv)
    if args.repeat < 1 or args.duration < 1:
        p.error("--repeat and --duration must be at least 1")
    args.conc = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.server_cpus_text = args.server_cpus or str(args.server_cpu)
    args.server_cpus = cpu_list(args.server_cpus_text)
    if args.workers < 0:
        p.error("--workers takes a positive count (0: the dev server)")
    names = [w for w in args.only.split(",") if w.strip()] or [
        w.name for w in WORKLOADS.values() if w.default
    ]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    args.workloads = names
    args.server_list = [s for s in args.servers.split(",") if s.strip()]
    if any(s not in SERVER_ORDER for s in args.server_list):
        p.error(f"--servers takes {SERVER_ORDER}")
    if args.profile:
        wl, _, c = args.profile.partition(":")
        if wl not in WORKLOADS or not c.isdigit():
            p.error("--profile takes WORKLOAD:CONCURRENCY, e.g. kv-read:16")
        args.profile_target = (wl, int(c))
    return args



def run_each_server(args: argparse.Namespace, scenario: Callable[[Server, argparse.Namespace],
                    dict[str, Any]], prefix: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """Start each server of ``--servers`` in turn (from the work tree or
    ``--strongroom-rev``), run ``scenario`` on it, stop it: (source, results by server)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        if args.strongroom_rev:
            source = "git " + snapshot_source(args.strongroom_rev, Path(tmp))
            server_src = Path(tmp) / "server"
        else:
            source = f"work tree at {git_rev()}"
            server_src = REPO_ROOT / "server"
        servers = make_servers(args, server_src)
        results: dict[str, dict[str, Any]] = {}
        for name in args.servers.split(","):
            srv = servers[name]
            try:
                srv.start()
                results[name] = scenario(srv, args)
            finally:
                srv.stop()
    return source, results


def write_results(args: argparse.Namespace, doc: dict[str, Any]) -> Path:
    """Save a scenario's results (with the OpenBao version, load and commit) as JSON."""
    doc.update({"openbao": tool_version([args.bao_cmd.split()[0], "version"]),
                "loadavg": loadavg(),
                "git": subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                                      capture_output=True, text=True, check=False).stdout.strip()})
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return out

def snapshot_source(rev: str, into: Path) -> str:
    """Extract server/ as of git REV into `into`; returns the full commit id."""
    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify",
                             rev + "^{commit}"], capture_output=True, text=True, check=False)
    if commit.returncode != 0:
        raise BenchError(f"--strongroom-rev {rev}: {commit.stderr.strip()}")
    tar = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar",
                          commit.stdout.strip(), "server"], capture_output=True, check=False)
    if tar.returncode != 0:
        raise BenchError(f"git archive {rev} failed: {tar.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as tf:
        tf.extractall(into, filter="data")
    return commit.stdout.strip()


# OpenBao 2.7 refuses `sys/audit` unless its config allows it (a -dev server merges
# -config files into its own settings).
BAO_AUDIT_CONFIG = "unsafe_allow_api_audit_creation = true\n"


def enable_audit_file(server: Server, directory: Path) -> Path:
    """The file audit device, enabled through the API as an operator would."""
    log = directory / f"{server.name}-audit.log"
    r = requests.put(server.url + "/v1/sys/audit/file", timeout=10,
                     headers={"X-Vault-Token": ROOT_TOKEN},
                     json={"type": "file", "options": {"file_path": str(log)}})
    if r.status_code != 204:
        raise BenchError(f"enabling the file audit device failed:\n{describe_exchange(r)}")
    return log


def audit_log_summary(log: Path) -> dict[str, Any]:
    """Lines and bytes written, and whether every line parses (none torn)."""
    lines = 0
    size = 0
    unparsed = 0
    with open(log, "rb") as f:
        for line in f:
            lines += 1
            size += len(line)
            try:
                json.loads(line)
            except ValueError:
                unparsed += 1
    return {"lines": lines, "bytes": size, "unparsed_lines": unparsed}


def make_servers(args: argparse.Namespace, server_src: Path) -> dict[str, Server]:
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("VAULT_", "BAO_"))}
    sr_env = dict(base_env)
    sr_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(server_src), os.environ.get("PYTHONPATH", "")) if p
    )
    for item in args.strongroom_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise BenchError(f"--strongroom-env takes KEY=VALUE, got {item!r}")
        sr_env[key] = value
    python = sys.executable
    bao_argv = shlex.split(args.bao_cmd)
    if args.audit_file:
        bao_argv.append(f"-config={args.audit_dir / 'bao-audit.hcl'}")
    # Other scripts (leases.py, tokens.py) pass their own args: one server CPU, dev mode.
    cpus = getattr(args, "server_cpus_text", "") or args.server_cpu
    workers = getattr(args, "workers", 0)
    return {
        "openbao": Server("openbao", bao_argv, base_env, cpus),
        "strongroom": Server(
            "strongroom",
            [a.replace("{python}", python) for a in shlex.split(args.strongroom_cmd)],
            sr_env,
            cpus,
            setup=NodeSetup(workers) if workers else None,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (apt-get install wrk util-linux)")
    if "openbao" in args.server_list and shutil.which(shlex.split(args.bao_cmd)[0]) is None:
        raise BenchError("bao not found on PATH")
    ncpu = os.cpu_count() or 1
    if max(*args.server_cpus, args.client_cpu) >= ncpu:
        raise BenchError(f"CPUs must be < {ncpu}")
    if args.client_cpu in args.server_cpus:
        print(f"note: wrk (CPU {args.client_cpu}) shares the server's CPUs "
              f"{args.server_cpus}: its cost is in wrk_cpu_pct and wrk_cpu_us_per_request",
              flush=True)
    # The harness itself stays off the server's core.
    os.sched_setaffinity(0, {args.client_cpu})
    if args.nice < 0 and os.geteuid() != 0:
        print(f"warning: --nice {args.nice} needs root; running at nice 0", file=sys.stderr)
    elif args.nice != 0:
        NICE[:] = ["nice", "-n", str(args.nice)]

    audit_dir = tempfile.TemporaryDirectory(prefix="bench-audit-")
    args.audit_dir = Path(audit_dir.name)
    (args.audit_dir / "bao-audit.hcl").write_text(BAO_AUDIT_CONFIG)
    snapshot_dir = tempfile.TemporaryDirectory(prefix="bench-strongroom-src-")
    if args.strongroom_rev:
        commit = snapshot_source(args.strongroom_rev, Path(snapshot_dir.name))
        server_src = Path(snapshot_dir.name) / "server"
        source = f"git {commit} (--strongroom-rev {args.strongroom_rev})"
    else:
        server_src = REPO_ROOT / "server"
        source = f"work tree {server_src} at {git_rev()}"
    servers = make_servers(args, server_src)
    probe = subprocess.run(  # the package the Strongroom command will import
        [sys.executable, "-c", "import strongroom; print(strongroom.__file__)"],
        cwd=REPO_ROOT, env=servers["strongroom"].env, capture_output=True, text=True,
        check=False,
    )
    source += f"; imports {probe.stdout.strip() or probe.stderr.strip()[-300:]}"
    print(f"[strongroom] source: {source}", flush=True)
    try:
        return run_all(args, servers, source, ncpu)
    finally:
        snapshot_dir.cleanup()
        audit_dir.cleanup()


def run_all(args: argparse.Namespace, servers: dict[str, Server], source: str, ncpu: int
            ) -> int:
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    prechecks: dict[str, dict[str, str]] = {}
    server_info: dict[str, Any] = {}
    prof: dict[str, Any] | None = None
    started = dt.datetime.now(dt.UTC)
    la_start = loadavg()

    for name in args.server_list:
        srv = servers[name]
        try:
            srv.start()
            if name == "strongroom":
                srv.info["gunicorn_workers"] = srv.worker_pids()
            server_info[name] = srv.info
            print(f"[{name}] ready at {srv.url}; pids {list(srv.info['pids'])}, "
                  f"{srv.info['threads']} threads, CPUs {srv.info['allowed_cpus']}", flush=True)
            if args.audit_file:
                srv.info["audit_log"] = str(enable_audit_file(srv, args.audit_dir))
            sd = seed(srv, args.write_keys)
            for wl in args.workloads:
                bad = precheck(srv, wl, sd)
                if bad:
                    prechecks.setdefault(name, {})[wl] = bad
                    print(f"[{name}] {wl}: precheck FAILED\n{bad}", flush=True)
                if wl in TRANSIT and sd.transit_error:
                    continue  # nothing to measure (the failed precheck says why)
                for c in args.conc:
                    res = measure(srv, wl, sd, c, args)
                    cells.setdefault((wl, c), {})[name] = res
                    flag = "" if res["valid"] else f"  INVALID {res['errors']}"
                    print(f"[{name}] {wl:<22} c={c:<3} {res['rps']:>9,.0f} req/s  "
                          f"p50 {res['p50_ms']:7.2f} ms  p99 {res['p99_ms']:7.2f} ms  "
                          f"server {res['server_cpu_pct']:5.1f}% cpu{args.server_cpus_text} other "
                          f"{res['server_core_other_pct']:4.1f}%  wrk "
                          f"{res['wrk_cpu_pct']:5.1f}%{flag}", flush=True)
                    if res["first_error"]:
                        print(f"[{name}] request: {res['request']}\n"
                              f"[{name}] first failing response:\n{res['first_error']}",
                              flush=True)
                    if (name == "strongroom" and args.profile
                            and args.profile_target == (wl, c)):
                        prof = profile(srv, wl, sd, c, args)
                        print(f"[profile] wrote {prof['files']}", flush=True)
            # Threads started under load (gunicorn's pool, Go's Ms) must be on the core too.
            after = thread_affinities(srv.pids())
            srv.info["threads_after_run"] = len(after)
            srv.info["allowed_cpus_after_run"] = sorted({c for v in after.values() for c in v})
        finally:
            srv.stop()
            if srv.info.get("audit_log"):
                log = Path(srv.info["audit_log"])
                if log.exists():
                    srv.info["audit_summary"] = audit_log_summary(log)
                    print(f"[{name}] audit log: {srv.info['audit_summary']}", flush=True)
                    log.unlink()

    rows = []
    for wl in args.workloads:
        for c in args.conc:
            cell = cells.get((wl, c), {})
            b, s = cell.get("openbao"), cell.get("strongroom")
            rows.append({
                "workload": wl,
                "concurrency": c,
                "openbao": b,
                "strongroom": s,
                "ratio_rps": ratio(s and s["rps"], b and b["rps"]),
                "ratio_p99": ratio(s and s["p99_ms"], b and b["p99_ms"]),
                "ratio_requests_per_cpu_s": ratio(s and s["requests_per_server_cpu_s"],
                                                  b and b["requests_per_server_cpu_s"]),
            })

    doc = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": {
                "cpus": ncpu,
                "kernel": platform.release(),
                "python": platform.python_version(),
                "loadavg_start": la_start,
                "loadavg_end": loadavg(),
            },
            "versions": {
                "openbao": tool_version([shlex.split(args.bao_cmd)[0], "version"]),
                "wrk": tool_version(["wrk", "-v"]),
                "strongroom_source": source,
                "strongroom_env": args.strongroom_env,
            },
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
                "concurrency": args.conc,
                "workloads": {w: WORKLOADS[w].description for w in args.workloads},
                "write_keys": args.write_keys,
                "wrk": "wrk -t1 -c C --latency --timeout "
                       f"{args.wrk_timeout}s (HTTP/1.1 keep-alive, closed loop)",
                "nice": int(NICE[2]) if NICE else 0,
                "server_cpu": args.server_cpu,
                "server_cpus": args.server_cpus,
                "strongroom_workers": args.workers or "dev server (1)",
                "client_cpu": args.client_cpu,
                "transport": "plain HTTP over loopback (no TLS)",
                "audit": ("one file audit device (default options) on each server"
                          if args.audit_file else "none"),
            },
            "servers": server_info,
            "prechecks_failed": prechecks,
        },
        "results": rows,
        "profile": prof,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print()
    print(table(rows))
    if prof:
        print(f"\nTop {len(prof['top_self_by_function'])} frames by self time "
              f"({prof['workload']} c={prof['concurrency']}, py-spy {prof['mode']} mode, "
              f"{prof['samples']} of {prof['possible_samples']} possible samples):")
        for f in prof["top_self_by_function"]:
            print(f"  {f['samples']:7d} {f['pct']:5.1f}%  {f['frame']}")
    print(f"\nwrote {out}")
    invalid = [r for r in rows if any(r[k] and not r[k]["valid"] for k in SERVER_ORDER)]
    return 1 if invalid or prechecks else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
