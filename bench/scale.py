#!/usr/bin/env python3
"""Storage scale: what requests and disk cost as the data grows, Strongroom vs OpenBao.

Both servers run side by side in the same run, on real storage: OpenBao 2.7 on
raft (``storage "raft"``, initialised and unsealed through the API) and
Strongroom on its embedded file storage (``storage "file"``, ``--workers``
processes). Each gets a KV v2 mount at ``secret/`` and the same keys,
``secret/data/bulk/k000000`` ... in one folder, in steps (``--levels``, default
1,000 / 10,000 / 100,000 keys). At each level, alternating between the servers
(``--rounds`` times, medians kept) so that load from elsewhere hits both alike:

* KV v2 read and write (an update) latency of random keys;
* ``LIST secret/metadata/bulk/?limit=100&after=<random key>``: one page of 100;
* ``LIST secret/metadata/bulk/``: the whole folder;
* paging through the whole folder 100 at a time (folders up to ``--walk-max``);
* ``du`` of each storage directory: bytes per key (marginal: growth / keys added).

Then ``--tokens`` service tokens are created on each and the disk growth per token
reported. Ratios: speed = OpenBao's time / Strongroom's (>= 1: Strongroom as
fast); disk = Strongroom's / OpenBao's (target <= 1.5). The load average is
printed with every level: the machine is shared, compare ratios of the same run.

    python bench/scale.py [--levels 1000,10000,100000] [--tokens 5000] [--workers 2]
                          [--rounds 3] [--output bench/results/scale.json]

Needs requests and ``bao`` on PATH; run from the repo root with PYTHONPATH=server.
While measuring, the servers are pinned to CPU 0 and this client to CPU 1 when the
machine has two CPUs or more (``--no-pin`` to skip); seeding runs on every CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
FOLDER = "bulk"
PAGE = 100


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def key_name(i: int) -> str:
    return f"{FOLDER}/k{i:06d}"


def du_bytes(path: Path) -> int:
    """Disk blocks used (du), in bytes: what the store really costs, slack included."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[0])


@dataclass
class Server:
    name: str
    url: str
    storage: Path
    proc: subprocess.Popen[bytes]
    token: str = ""
    sessions: list[requests.Session] = field(default_factory=list)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.headers["X-Vault-Token"] = self.token
        self.sessions.append(s)
        return s

    def call(self, s: requests.Session, method: str, path: str,
             body: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 204)
             ) -> requests.Response:
        r = s.request(method, f"{self.url}/v1/{path}", json=body, timeout=600)
        if r.status_code not in ok:
            raise RuntimeError(f"{self.name} {method} {path}: {r.status_code} {r.text[:300]}")
        return r


def wait_answering(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            requests.get(url + "/v1/sys/health", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer")


def init_unseal(srv: Server) -> None:
    s = requests.Session()
    r = srv.call(s, "POST", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
    doc = r.json()
    srv.token = doc["root_token"]
    srv.call(s, "POST", "sys/unseal", {"key": doc["keys_base64"][0]})
    deadline = time.monotonic() + 60  # raft elects itself leader after unseal
    while time.monotonic() < deadline:
        if s.get(f"{srv.url}/v1/sys/health", timeout=5).status_code == 200:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"{srv.name} did not become active")
    s.headers["X-Vault-Token"] = srv.token
    while True:  # the first mount can race the leader's set-up on raft
        r = s.post(f"{srv.url}/v1/sys/mounts/secret", timeout=30,
                   json={"type": "kv", "options": {"version": "2"}})
        if r.status_code in (200, 204) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    srv.call(s, "GET", "sys/mounts/secret/tune")


def process_tree(root: int) -> list[int]:
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        pending += [int(c) for c in children]
    return pids


def set_cpus(srv: Server, cpus: set[int]) -> None:
    """Move every thread of the server's process tree (new threads inherit it)."""
    for pid in process_tree(srv.proc.pid):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except OSError:
                pass  # a thread that just ended


@contextmanager
def start(name: str, argv: list[str], workdir: Path, url: str, storage: Path,
          env: dict[str, str] | None = None) -> Iterator[Server]:
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                            start_new_session=True)
    try:
        wait_answering(url, proc, name)
        srv = Server(name, url, storage, proc)
        init_unseal(srv)
        yield srv
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        log.close()


def openbao(workdir: Path) -> Any:
    port, cluster = free_port(), free_port()
    data = workdir / "bao-raft"
    data.mkdir()
    config = workdir / "bao.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{data}"\n  node_id = "scale"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "http://127.0.0.1:{cluster}"\n'
        "disable_mlock = true\n")
    bao = shutil.which("bao") or "bao"
    return start("openbao", [bao, "server", f"-config={config}"], workdir,
                 f"http://127.0.0.1:{port}", data, {**os.environ, "HOME": str(workdir)})


def strongroom(workdir: Path, workers: int, source: Path) -> Any:
    port = free_port()
    data = workdir / "sr-data"
    config = workdir / "strongroom.hcl"
    config.write_text(
        f'storage "file" {{\n  path = "{data}"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f"disable_mlock = true\nworkers = {workers}\n")
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", "strongroom.cli.main", "server", f"-config={config}"]
    return start("strongroom", argv, workdir, f"http://127.0.0.1:{port}", data, env)


# -- load ------------------------------------------------------------------------------


def parallel(srv: Server, items: list[Any], fn: Callable[[requests.Session, Any], None],
             threads: int) -> float:
    """Run ``fn(session, item)`` over ``items`` on ``threads`` keep-alive connections."""
    chunks = [items[n::threads] for n in range(threads)]

    def run_chunk(chunk: list[Any]) -> None:
        s = srv.session()
        for item in chunk:
            fn(s, item)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run_chunk, chunks))
    return time.perf_counter() - started


def seed(srv: Server, start_at: int, stop: int, threads: int) -> float:
    def write(s: requests.Session, i: int) -> None:
        srv.call(s, "POST", f"secret/data/{key_name(i)}", {"data": {"value": f"v{i:026d}"}})
    return parallel(srv, list(range(start_at, stop)), write, threads)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure(srv: Server, keys: int, samples: int, rng: random.Random, walk: bool
            ) -> dict[str, float]:
    """Median milliseconds of each operation at the current size (one round)."""
    s = srv.session()
    picks = [rng.randrange(keys) for _ in range(samples)]
    out: dict[str, float] = {}
    out["kv_read_ms"] = statistics.median(
        timed(lambda i=i: srv.call(s, "GET", f"secret/data/{key_name(i)}")) for i in picks)
    def write(i: int) -> None:
        srv.call(s, "POST", f"secret/data/{key_name(i)}", {"data": {"value": f"w{i:026d}"}})
    out["kv_write_ms"] = statistics.median(
        timed(lambda i=i: write(i)) for i in picks[:samples // 2])

    def page(after: str) -> None:
        r = srv.call(s, "LIST", f"secret/metadata/{FOLDER}/?limit={PAGE}&after={after}")
        assert len(r.json()["data"]["keys"]) == PAGE
    out["list_page_ms"] = statistics.median(
        timed(lambda i=i: page(key_name(i)[len(FOLDER) + 1:]))
        for i in (rng.randrange(max(1, keys - 2 * PAGE)) for _ in range(max(5, samples // 10))))
    out["list_all_ms"] = statistics.median(
        timed(lambda: srv.call(s, "LIST", f"secret/metadata/{FOLDER}/")) for _ in range(3))
    if walk:
        def walk_all() -> None:
            after, seen = "", 0
            while True:
                r = srv.call(s, "LIST", f"secret/metadata/{FOLDER}/?limit={PAGE}&after={after}",
                             ok=(200, 404))
                if r.status_code == 404:
                    break
                names = r.json()["data"]["keys"]
                seen += len(names)
                after = names[-1]
            assert seen == keys, (seen, keys)
        out["walk_all_ms"] = timed(walk_all)
    return out


def settle(srv: Server) -> None:
    """Let the storage settle before du: OpenBao's raft snapshots, SQLite's checkpoint."""
    time.sleep(1.0)


# -- report ----------------------------------------------------------------------------


def speed(bao: float | None, sr: float | None) -> str:
    return f"{bao / sr:.2f}x" if bao and sr else "-"


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.2f} ms"
    return f"{v / 1000:.1f} KB"


def table(levels: list[dict[str, Any]], tokens: dict[str, Any] | None) -> str:
    lines = ["| keys | measure | OpenBao (raft) | Strongroom (file) | ratio | load avg |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]
    for lvl in levels:
        b, r = lvl["openbao"], lvl["strongroom"]
        for name, unit in (("kv_read_ms", "ms"), ("kv_write_ms", "ms"), ("list_page_ms", "ms"),
                           ("list_all_ms", "ms"), ("walk_all_ms", "ms")):
            if name in b:
                lines.append(f"| {lvl['keys']:,} | {name[:-3]} | {fmt(b[name], unit)} | "
                             f"{fmt(r[name], unit)} | {speed(b[name], r[name])} | "
                             f"{lvl['load']} |")
        for name in ("disk_per_key", "disk_per_key_marginal"):
            ratio = r[name] / b[name] if b[name] else 0
            lines.append(f"| {lvl['keys']:,} | {name} | {fmt(b[name], 'B')} | "
                         f"{fmt(r[name], 'B')} | {ratio:.2f}x disk | {lvl['load']} |")
    if tokens:
        b, r = tokens["openbao"], tokens["strongroom"]
        lines.append(f"| {tokens['count']:,} tokens | disk_per_token | {fmt(b, 'B')} | "
                     f"{fmt(r, 'B')} | {r / b:.2f}x disk | {tokens['load']} |")
    lines.append("")
    lines.append("speed ratio = OpenBao's median time / Strongroom's (>= 1: Strongroom as "
                 "fast); disk ratio = Strongroom / OpenBao (target <= 1.5)")
    if len(levels) > 1:
        first, last = levels[0], levels[-1]
        for name in ("kv_read_ms", "kv_write_ms", "list_page_ms"):
            growth = {srv: last[srv][name] / first[srv][name] for srv in ("openbao", "strongroom")}
            lines.append(f"{name[:-3]}: {last['keys']:,} keys vs {first['keys']:,}: "
                         f"OpenBao {growth['openbao']:.2f}x, Strongroom "
                         f"{growth['strongroom']:.2f}x the time")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--levels", default="1000,10000,100000")
    p.add_argument("--tokens", type=int, default=5000, help="0 skips the token step")
    p.add_argument("--workers", type=int, default=2, help="Strongroom worker processes")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--samples", type=int, default=200, help="reads per round (writes: half)")
    p.add_argument("--walk-max", type=int, default=10000, help="page through folders up to this")
    p.add_argument("--seed-threads", type=int, default=16)
    p.add_argument("--strongroom-src", default=str(REPO / "server"),
                   help="the server/ directory to run (e.g. an older checkout, to compare)")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--output", default=str(REPO / "bench" / "results" / "scale.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = sorted(int(x) for x in args.levels.split(","))
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    every_cpu = os.sched_getaffinity(0)
    rng = random.Random(14)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-scale-"))
    results: dict[str, Any] = {"levels": [], "argv": sys.argv[1:], "pinned": pin,
                               "strongroom_src": args.strongroom_src}
    print(f"work directory {workdir}; load average {loadavg()}", flush=True)
    try:
        with ExitStack() as stack:
            servers: list[Server] = [stack.enter_context(openbao(workdir)),
                                     stack.enter_context(strongroom(workdir, args.workers,
                                                                    Path(args.strongroom_src)))]
            settle(servers[0])
            base = {srv.name: du_bytes(srv.storage) for srv in servers}
            have = 0
            for level in levels:
                lvl: dict[str, Any] = {"keys": level}
                for srv in servers:
                    secs = seed(srv, have, level, args.seed_threads)
                    print(f"{srv.name}: seeded {level - have:,} keys in {secs:.1f} s "
                          f"({(level - have) / secs:.0f}/s), load {loadavg()}", flush=True)
                have = level
                if pin:  # measured pinned (servers on CPU 0, client on 1); seeded free
                    os.sched_setaffinity(0, {1})
                    for srv in servers:
                        set_cpus(srv, {0})
                rounds: dict[str, list[dict[str, float]]] = {srv.name: [] for srv in servers}
                for _ in range(args.rounds):
                    for srv in servers:  # alternate: both see the same machine
                        rounds[srv.name].append(measure(srv, level, args.samples, rng,
                                                        level <= args.walk_max))
                for srv in servers:
                    settle(srv)
                    used = du_bytes(srv.storage)
                    med = {k: statistics.median(r[k] for r in rounds[srv.name])
                           for k in rounds[srv.name][0]}
                    med["disk_bytes"] = used
                    med["disk_per_key"] = used / level
                    med["disk_per_key_marginal"] = (used - base[srv.name]) / level
                    lvl[srv.name] = med
                lvl["load"] = loadavg()
                if pin:
                    os.sched_setaffinity(0, every_cpu)
                    for srv in servers:
                        set_cpus(srv, every_cpu)
                results["levels"].append(lvl)
                print(table([lvl], None), flush=True)
            tokens = None
            if args.tokens:
                tokens = {"count": args.tokens}
                for srv in servers:
                    before = du_bytes(srv.storage)

                    def create(s: requests.Session, _: int, srv: Server = srv) -> None:
                        srv.call(s, "POST", "auth/token/create",
                                 {"policies": ["default"], "ttl": "4h"})
                    secs = parallel(srv, list(range(args.tokens)), create, args.seed_threads)
                    settle(srv)
                    tokens[srv.name] = (du_bytes(srv.storage) - before) / args.tokens
                    print(f"{srv.name}: {args.tokens:,} tokens in {secs:.1f} s", flush=True)
                tokens["load"] = loadavg()
                results["tokens"] = tokens
            for srv in servers:
                for s in srv.sessions:
                    s.close()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results["levels"], results.get("tokens")))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
