#!/usr/bin/env python3
"""Slow-header clients against Strongroom and OpenBao: do other clients stay served?

For each server (dev mode, pinned to CPU 0; this harness on CPU 1):
1. `baseline`: wrk (on CPU 1) reads a KV secret over 16 kept-alive connections for
   D seconds: requests/s and p99.
2. N slow connections open and send a request's header lines one every
   `--interval` seconds, never finishing them; the same wrk run is measured again
   while they are held open.
3. Reported: the clients' rate under attack as a fraction of the baseline, their p99,
   failed requests, and how many slow connections the server closed (and when).

    python bench/slow_clients.py [--slow 500] [--duration 10] [--clients 4]
                                 [--servers openbao,strongroom] [--strongroom-env K=V]

Targets (issue 9): under 500 slow connections, >= 90% of the baseline rate and a
p99 below 1 s. Strongroom's dev listener closes slow headers after 10 s (Vault's
`http_read_header_timeout` default); OpenBao's dev listener has the same default.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    DEFAULT_BAO_CMD,
    DEFAULT_STRONGROOM_CMD,
    REPO_ROOT,
    Seed,
    Server,
    parse_wrk,
    run_wrk,
    seed,
    wrk_cmd,
)


def measure_clients(server: Server, sd: Seed, concurrency: int, seconds: float
                    ) -> dict[str, Any]:
    """wrk reading one KV secret over ``concurrency`` kept-alive connections (CPU 1)."""
    result = parse_wrk(run_wrk(wrk_cmd(server.url, "kv-read", sd, concurrency, seconds,
                                       cpu=1, timeout_s=10)))
    return {"rate": result["rps"], "p99_ms": result["p99_ms"],
            "failed": sum(result["errors"].values()), "requests": result["requests"]}


class SlowClients:
    """N connections that send header lines slowly and never finish their request."""

    def __init__(self, port: int, count: int, interval: float) -> None:
        self.port, self.count, self.interval = port, count, interval
        self.socks: list[socket.socket] = []
        self.opened = 0
        self.closed_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for _ in range(self.count):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")
                s.setblocking(False)
                self.socks.append(s)
                self.opened += 1
            except OSError:
                break
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            for s in list(self.socks):
                try:
                    s.send(b"X-Slow-%d: %d\r\n" % (n, n))
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    continue
                except OSError:
                    self.closed_at.append(time.monotonic() - self.started)
                    self.socks.remove(s)
                    s.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.socks:
            s.close()


def run_one(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    server.start()
    try:
        sd = seed(server, write_keys=1)
        baseline = measure_clients(server, sd, args.clients, args.duration)
        slow = SlowClients(server.port, args.slow, args.interval)
        slow.start()
        attacked = measure_clients(server, sd, args.clients, args.duration)
        slow_open_after = len(slow.socks)
        slow.stop()
        return {
            "baseline": baseline, "attacked": attacked,
            "ratio": attacked["rate"] / baseline["rate"] if baseline["rate"] else None,
            "slow_opened": slow.opened, "slow_still_open": slow_open_after,
            "first_closed_s": min(slow.closed_at) if slow.closed_at else None,
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slow", type=int, default=500)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--clients", type=int, default=16, help="wrk connections")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--servers", default="openbao,strongroom")
    p.add_argument("--strongroom-env", action="append", default=[])
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {1})
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "server"))
    env.update(kv.split("=", 1) for kv in args.strongroom_env)
    python = sys.executable
    servers = {
        "openbao": Server("openbao", DEFAULT_BAO_CMD.split(), dict(os.environ), cpu=0),
        "strongroom": Server("strongroom", DEFAULT_STRONGROOM_CMD.replace(
            "{python}", python).split(), env, cpu=0),
    }
    results = {name: run_one(servers[name], args) for name in args.servers.split(",")}
    print(json.dumps(results, indent=2))
    print(f"\n{'server':<12} {'base req/s':>10} {'attacked':>9} {'ratio':>6} "
          f"{'p99 ms':>8} {'failed':>6} {'slow open at end':>17} {'first closed s':>15}")
    for name, r in results.items():
        a, b = r["attacked"], r["baseline"]
        print(f"{name:<12} {b['rate']:>10.0f} {a['rate']:>9.0f} {r['ratio'] or 0:>6.2f} "
              f"{a['p99_ms'] or 0:>8.1f} {a['failed']:>6} {r['slow_still_open']:>17} "
              f"{r['first_closed_s'] or float('nan'):>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
