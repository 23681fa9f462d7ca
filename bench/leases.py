#!/usr/bin/env python3
"""Lease-scale scenario: revoke-prefix cost with many unrelated leases, and break-glass.

For each server (OpenBao first, then Strongroom, same run, same machine) it issues
``--tokens`` service tokens (default 20,000; tokens are leases in both), ``--leases`` of
them (default 1,000) through the token role ``bench-breakglass`` (so their leases lie
under ``auth/token/create/bench-breakglass/``), then measures

* ``sys/leases/revoke-prefix/auth/token/no-such-prefix``: nothing matches (median of
  ``--repeat``); its cost must not grow with the leases stored elsewhere;
* ``sys/leases/revoke-prefix/auth/token/create/bench-breakglass`` (sync): the time to
  revoke the ``--leases`` leases under it, then checks that every sampled token is
  refused and that nothing is listed under the prefix any more.

    python bench/leases.py [--tokens 20000] [--leases 1000] [--servers openbao,strongroom]
                           [--strongroom-rev REV] [--output bench/results/leases.json]

Servers are started as bench/run.py starts them (dev mode, pinned to CPU 0); the
client runs on CPU 1. Seeding uses ``--seed-threads`` keep-alive connections.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 - bench/run.py: Server, make_servers, snapshot_source
import seeding  # noqa: E402 - bench/seeding.py: session, create_tokens

NO_MATCH_PREFIX = "auth/token/no-such-prefix"
ROLE = "bench-breakglass"
ROLE_PREFIX = f"auth/token/create/{ROLE}"


def scenario(srv: run.Server, args: argparse.Namespace) -> dict[str, Any]:
    url = srv.url
    root = seeding.session(run.ROOT_TOKEN)
    _role(root, url)
    t0 = time.perf_counter()
    doomed = [a["client_token"] for a in seeding.create_tokens(
        url, run.ROOT_TOKEN, ROLE_PREFIX, args.leases, args.seed_threads)]
    seeding.create_tokens(url, run.ROOT_TOKEN, "auth/token/create", args.tokens - args.leases,
                          args.seed_threads)
    seed_s = time.perf_counter() - t0
    print(f"[{srv.name}] seeded {args.tokens} tokens ({args.leases} under {ROLE_PREFIX}) "
          f"in {seed_s:.1f} s", flush=True)
    out: dict[str, Any] = {"seed_s": round(seed_s, 1)}

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        r = root.put(f"{url}/v1/sys/leases/revoke-prefix/{NO_MATCH_PREFIX}", timeout=300)
        times.append(time.perf_counter() - start)
        if r.status_code != 204:
            raise run.BenchError("revoke-prefix (no match) failed:\n"
                                 + run.describe_exchange(r))
    out["revoke_prefix_no_match_ms"] = {"median": round(statistics.median(times) * 1000, 2),
                                        "all": [round(t * 1000, 2) for t in times]}
    print(f"[{srv.name}] revoke-prefix, no match: median "
          f"{statistics.median(times) * 1000:.2f} ms", flush=True)

    start = time.perf_counter()
    r = root.put(f"{url}/v1/sys/leases/revoke-prefix/{ROLE_PREFIX}", json={"sync": True},
                 timeout=600)
    revoke_s = time.perf_counter() - start
    if r.status_code != 204:
        raise run.BenchError("revoke-prefix failed:\n" + run.describe_exchange(r))
    sample = doomed[:: max(1, len(doomed) // args.sample)]
    refused = sum(requests.get(f"{url}/v1/auth/token/lookup-self", timeout=60,
                               headers={"X-Vault-Token": t}).status_code == 403
                  for t in sample)
    left = root.request("LIST", f"{url}/v1/sys/leases/lookup/{ROLE_PREFIX}/", timeout=60)
    out["revoke_prefix_leases"] = {
        "leases": args.leases, "ms": round(revoke_s * 1000, 1),
        "sampled": len(sample), "sampled_refused_403": refused,
        "listed_after": len(left.json()["data"]["keys"]) if left.status_code == 200 else 0}
    print(f"[{srv.name}] revoke-prefix of {args.leases} leases: {revoke_s * 1000:.0f} ms, "
          f"{refused}/{len(sample)} sampled tokens refused, "
          f"{out['revoke_prefix_leases']['listed_after']} listed after", flush=True)
    root.close()
    return out


def _role(root: requests.Session, url: str) -> None:
    r = root.post(f"{url}/v1/auth/token/roles/{ROLE}", json={"allowed_policies": ["default"]},
                  timeout=60)
    if r.status_code not in (200, 204):
        raise run.BenchError("creating the token role failed:\n" + run.describe_exchange(r))


def _table(results: dict[str, dict[str, Any]], leases: int) -> str:
    def cell(name: str, *keys: str) -> str:
        v: Any = results.get(name)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return "-" if v is None else f"{v:,.2f}"

    rows = [
        ("revoke-prefix, no match, median (ms)", ("revoke_prefix_no_match_ms", "median")),
        (f"revoke-prefix of {leases:,} leases, sync (ms)", ("revoke_prefix_leases", "ms")),
    ]
    lines = ["| measure | OpenBao | Strongroom |", "|---|---|---|"]
    for label, keys in rows:
        lines.append(f"| {label} | {cell('openbao', *keys)} | {cell('strongroom', *keys)} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=20000)
    p.add_argument("--leases", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sample", type=int, default=50, help="revoked tokens checked for 403")
    p.add_argument("--seed-threads", type=int, default=8)
    p.add_argument("--servers", default="openbao,strongroom")
    p.add_argument("--strongroom-rev", default="")
    p.add_argument("--strongroom-cmd", default=run.DEFAULT_STRONGROOM_CMD)
    p.add_argument("--strongroom-env", action="append", default=[])
    p.add_argument("--bao-cmd", default=run.DEFAULT_BAO_CMD)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--output", default=str(run.RESULTS_DIR / "leases.json"))
    p.set_defaults(audit_file=False)  # run.make_servers asks; no audit device here
    args = p.parse_args(argv)
    if not 0 < args.leases <= args.tokens:
        p.error("--leases must be between 1 and --tokens")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {args.client_cpu})
    source, results = run.run_each_server(args, scenario, "bench-leases-src-")
    out = run.write_results(args, {"strongroom_source": source, "tokens": args.tokens,
                                   "leases": args.leases, "results": results})
    print()
    print(f"{args.tokens:,} tokens (leases), {args.leases:,} of them under {ROLE_PREFIX}; "
          f"Strongroom from {source}")
    print(_table(results, args.leases))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except run.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
