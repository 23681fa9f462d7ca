#!/usr/bin/env python3
"""Token-scale scenario: what token operations cost when the store holds many tokens.

For each server (OpenBao first, then Strongroom, same run, same machine) it issues
``--tokens`` service tokens (default 20,000): one parent with ``--children`` children
(default 5,000) and the rest children of root; then measures

* ``LIST auth/token/accessors`` (the first call, then the median of ``--repeat``);
* ``sys/leases/revoke-prefix/auth/token/no-such-prefix`` (nothing matches; median);
* revoking the parent (``auth/token/revoke``): time until the call returns, that
  every sampled child answers 403 right after it, and the time until the store is
  clean (``LIST auth/token/accessors`` no longer shows any of the tree).

    python bench/tokens.py [--tokens 20000] [--children 5000] [--servers openbao,strongroom]
                           [--strongroom-rev REV] [--output bench/results/tokens.json]

Servers are started as bench/run.py starts them (dev mode, pinned to CPU 0); the
client runs on CPU 1. Seeding uses ``--seed-threads`` keep-alive connections.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 - bench/run.py: Server, make_servers, snapshot_source
import seeding  # noqa: E402 - bench/seeding.py: session, create_tokens

NO_MATCH_PREFIX = "auth/token/no-such-prefix"


def _timed(fn: Callable[[], requests.Response], what: str) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    r = fn()
    elapsed = time.perf_counter() - start
    if not 200 <= r.status_code < 300:
        raise run.BenchError(f"{what} failed:\n{run.describe_exchange(r)}")
    return elapsed, r


def _accessors(s: requests.Session, url: str) -> list[str]:
    r = s.request("LIST", url + "/v1/auth/token/accessors", timeout=300)
    return list(run.checked(r, "LIST auth/token/accessors")["data"]["keys"])


def _fresh_worker_list(srv: run.Server, lister: Callable[[], requests.Response]) -> float:
    before = set(srv.worker_pids())
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (now := set(srv.worker_pids())) or now & before or len(now) < len(before):
        if time.monotonic() > deadline:
            raise run.BenchError("gunicorn did not re-fork the worker")
        time.sleep(0.05)  # readiness poll
    run.Server._wait_ready(srv, 60)
    return _timed(lister, "LIST auth/token/accessors (fresh worker)")[0]


def scenario(srv: run.Server, args: argparse.Namespace) -> dict[str, Any]:
    url = srv.url
    root = seeding.session(run.ROOT_TOKEN)
    t0 = time.perf_counter()
    # The parent creates its children: it needs auth/token/create (root does).
    parent = run.checked(root.post(url + "/v1/auth/token/create",
                                   json={"policies": ["root"], "ttl": "4h"}, timeout=60),
                         "create parent")["auth"]
    children = [(a["client_token"], a["accessor"]) for a in seeding.create_tokens(
        url, parent["client_token"], "auth/token/create", args.children, args.seed_threads)]
    seeding.create_tokens(url, run.ROOT_TOKEN, "auth/token/create",
                          args.tokens - args.children - 1, args.seed_threads)
    seed_s = time.perf_counter() - t0
    print(f"[{srv.name}] seeded {args.tokens} tokens in {seed_s:.1f} s", flush=True)
    out: dict[str, Any] = {"seed_s": round(seed_s, 1)}

    # LIST auth/token/accessors: first call, then the median of --repeat.
    lister = lambda: root.request("LIST", url + "/v1/auth/token/accessors", timeout=300)  # noqa: E731
    first, r = _timed(lister, "LIST auth/token/accessors")
    listed = len(r.json()["data"]["keys"])
    times = [_timed(lister, "LIST auth/token/accessors")[0] for _ in range(args.repeat)]
    out["list_accessors"] = {"keys": listed, "first_ms": round(first * 1000, 1),
                             "median_ms": round(statistics.median(times) * 1000, 1),
                             "all_ms": [round(t * 1000, 1) for t in times]}
    print(f"[{srv.name}] LIST accessors: {listed} keys, first {first*1000:.0f} ms, "
          f"median {statistics.median(times)*1000:.0f} ms", flush=True)
    if srv.name == "strongroom":
        # A worker that never listed (re-forked, as after a restart): its first LIST.
        fresh = _fresh_worker_list(srv, lister)
        out["list_accessors"]["fresh_worker_first_ms"] = round(fresh * 1000, 1)
        print(f"[{srv.name}] LIST accessors, a fresh worker's first: {fresh*1000:.0f} ms",
              flush=True)

    # revoke-prefix where nothing matches.
    prefixer = lambda: root.put(url + "/v1/sys/leases/revoke-prefix/" + NO_MATCH_PREFIX,  # noqa: E731
                                timeout=300)
    times = [_timed(prefixer, "revoke-prefix")[0] for _ in range(args.repeat)]
    out["revoke_prefix_no_match_ms"] = {"median": round(statistics.median(times) * 1000, 1),
                                        "all": [round(t * 1000, 1) for t in times]}
    print(f"[{srv.name}] revoke-prefix (no match): median "
          f"{statistics.median(times)*1000:.1f} ms", flush=True)

    # Revoke the parent: time to return, children refused at once, time until clean.
    doomed = {parent["accessor"], *(a for _, a in children)}
    start = time.perf_counter()
    returned, _ = _timed(lambda: root.post(url + "/v1/auth/token/revoke",
                                           json={"token": parent["client_token"]},
                                           timeout=600), "auth/token/revoke")
    sample = children[:: max(1, len(children) // args.sample)]
    codes = [requests.get(url + "/v1/auth/token/lookup-self", timeout=60,
                          headers={"X-Vault-Token": tok}).status_code for tok, _ in sample]
    while True:
        left = doomed & set(_accessors(root, url))
        if not left:
            break
        if time.perf_counter() - start > args.clean_timeout:
            raise run.BenchError(f"{len(left)} revoked tokens still listed after "
                                 f"{args.clean_timeout} s")
        # Poll gently: each LIST takes the server's core from the work being timed.
        time.sleep(0.25)
    clean = time.perf_counter() - start
    out["revoke_tree"] = {"children": args.children, "return_ms": round(returned * 1000, 1),
                          "clean_ms": round(clean * 1000, 1),
                          "children_sampled": len(sample),
                          "children_refused_403": sum(c == 403 for c in codes)}
    print(f"[{srv.name}] revoke parent of {args.children}: returned in "
          f"{returned*1000:.0f} ms, clean after {clean*1000:.0f} ms, "
          f"{sum(c == 403 for c in codes)}/{len(sample)} sampled children 403 at once",
          flush=True)
    others_left = len(_accessors(root, url))
    out["tokens_left"] = others_left
    root.close()
    return out


def _table(results: dict[str, dict[str, Any]]) -> str:
    def cell(name: str, *keys: str) -> str:
        v: Any = results.get(name)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return "-" if v is None else f"{v:,.1f}"

    rows = [
        ("LIST auth/token/accessors, first call (ms)", ("list_accessors", "first_ms")),
        ("LIST auth/token/accessors, median (ms)", ("list_accessors", "median_ms")),
        ("LIST auth/token/accessors, a fresh worker's first (ms)",
         ("list_accessors", "fresh_worker_first_ms")),
        ("revoke-prefix, no match, median (ms)", ("revoke_prefix_no_match_ms", "median")),
        ("revoke parent of N children: call returns (ms)", ("revoke_tree", "return_ms")),
        ("revoke parent of N children: storage clean (ms)", ("revoke_tree", "clean_ms")),
    ]
    lines = ["| measure | OpenBao | Strongroom |", "|---|---|---|"]
    for label, keys in rows:
        lines.append(f"| {label} | {cell('openbao', *keys)} | {cell('strongroom', *keys)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20000)
    p.add_argument("--children", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sample", type=int, default=50, help="children checked for 403")
    p.add_argument("--seed-threads", type=int, default=8)
    p.add_argument("--clean-timeout", type=float, default=600)
    p.add_argument("--servers", default="openbao,strongroom")
    p.add_argument("--strongroom-rev", default="")
    p.add_argument("--strongroom-cmd", default=run.DEFAULT_STRONGROOM_CMD)
    p.add_argument("--strongroom-env", action="append", default=[])
    p.add_argument("--bao-cmd", default=run.DEFAULT_BAO_CMD)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--output", default=str(run.RESULTS_DIR / "tokens.json"))
    args = p.parse_args(argv)
    args.audit_file = False  # run.make_servers' option: no audit device in this scenario
    if not 0 <= args.children < args.tokens:
        p.error("--children must be below --tokens")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {args.client_cpu})
    source, results = run.run_each_server(args, scenario, "bench-tokens-src-")
    out = run.write_results(args, {"strongroom_source": source, "tokens": args.tokens,
                                   "children": args.children, "results": results})
    print()
    print(f"{args.tokens:,} tokens, a parent with {args.children:,} children; "
          f"Strongroom from {source}")
    print(_table(results))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except run.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
