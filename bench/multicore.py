#!/usr/bin/env python3
"""Does throughput grow with cores? Strongroom with N workers beside OpenBao on N cores.

Runs bench/run.py once per step of ``--steps`` (default ``1:0:1,2:0-1:1``: N workers on
CPUs, wrk on a CPU), each step with both servers, and prints one table: req/s per
step, the server's CPU, the load generator's CPU, and what that CPU cost means.

    python bench/multicore.py [--duration 8] [--only kv-read,...] [--concurrency 16,64]

On this 2-core box the 2-core step cannot give wrk a core of its own: wrk runs on one
of the server's two cores and takes its share. So each cell also reports the CPU the
server used per request (``server_cpu_us_per_request``, from /proc) and wrk's own
(``wrk_cpu_us_per_request``), and the table shows

- ``req/s``: what the clients got;
- ``server cores``: CPU-seconds per second the server's processes used;
- ``wrk cores``: the same for wrk (on shared cores, taken from the server);
- ``req/server-core-s``: requests per CPU-second of the server, the efficiency: flat
  across steps means each added core serves as many requests as the first;
- ``projected req/s``: ``req/server-core-s x cores``: what the server would serve with
  its cores to itself (wrk elsewhere), if it kept that efficiency. On a machine with
  spare cores, run the steps with wrk on a core of its own (e.g.
  ``--steps 1:0:7,2:0-1:7,4:0-3:7``) and the measured req/s is the figure.

Results: bench/results/multicore.json (+ one run.py JSON per step). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402 - bench/run.py

DEFAULT_STEPS = "1:0:1,2:0-1:1"


def parse_steps(text: str) -> list[tuple[int, str, int]]:
    """``N:CPUS:CLIENT,...`` as (workers, server CPUs, client CPU) tuples."""
    steps = []
    for item in text.split(","):
        workers, cpus, client = item.split(":")
        steps.append((int(workers), cpus.replace(".", ","), int(client)))
    return steps


def run_step(args: argparse.Namespace, workers: int, cpus: str, client: int) -> dict[str, Any]:
    out = Path(args.output).with_name(f"multicore-{workers}w.json")
    argv = ["--workers", str(workers), "--server-cpus", cpus, "--client-cpu", str(client),
            "--duration", str(args.duration), "--concurrency", args.concurrency,
            "--repeat", str(args.repeat), "--output", str(out),
            "--max-interference", str(args.max_interference)]
    if args.only:
        argv += ["--only", args.only]
    if args.servers:
        argv += ["--servers", args.servers]
    if args.strongroom_rev:
        argv += ["--strongroom-rev", args.strongroom_rev]
    print(f"[multicore] step: {workers} worker(s), server CPUs {cpus}, wrk CPU {client}",
          flush=True)
    status = run.main(argv)
    doc: dict[str, Any] = json.loads(out.read_text())
    doc["exit_status"] = status
    return doc


def summarize(steps: list[tuple[int, str, int]], docs: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    rows = []
    for (workers, cpus, client), doc in zip(steps, docs, strict=True):
        ncpu = len(run.cpu_list(cpus))
        for r in doc["results"]:
            for server in ("openbao", "strongroom"):
                cell = r.get(server)
                if not cell:
                    continue
                per_req = cell.get("server_cpu_us_per_request")
                eff = 1e6 / per_req if per_req else None
                rows.append({
                    "workload": r["workload"], "concurrency": r["concurrency"],
                    "server": server, "cores": ncpu, "client_cpu": client,
                    "shared": client in run.cpu_list(cpus),
                    "workers": workers if server == "strongroom" else "-",
                    "rps": cell["rps"], "p99_ms": cell["p99_ms"], "valid": cell["valid"],
                    "server_cores": round(cell["server_cpu_pct"] / 100, 2),
                    "wrk_cores": round(cell["wrk_cpu_pct"] / 100, 2),
                    "other_cores": round(cell["server_core_other_pct"] / 100, 2),
                    "req_per_server_core_s": round(eff) if eff else None,
                    "projected_rps": round(eff * ncpu) if eff else None,
                })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ["workload", "c", "server", "cores", "workers", "req/s", "p99 ms", "server cores",
            "wrk cores", "others", "req/server-core-s", "projected req/s"]
    lines = [head]
    for r in sorted(rows, key=lambda x: (x["workload"], x["concurrency"], x["server"],
                                          x["cores"])):
        lines.append([r["workload"], str(r["concurrency"]), r["server"],
                      f"{r['cores']}" + (" (wrk shares)" if r["shared"] else ""),
                      str(r["workers"]), f"{r['rps']:,.0f}" + ("" if r["valid"] else " !"),
                      f"{r['p99_ms']:.2f}", f"{r['server_cores']:.2f}", f"{r['wrk_cores']:.2f}",
                      f"{r['other_cores']:.2f}",
                      f"{r['req_per_server_core_s']:,}" if r["req_per_server_core_s"] else "-",
                      f"{r['projected_rps']:,}" if r["projected_rps"] else "-"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help="comma list of WORKERS:SERVER_CPUS:CLIENT_CPU (CPUs as 0-1 or 0.1; "
                   f"default {DEFAULT_STEPS})")
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--only", default="kv-read,kv-write,token-lookup-self,transit-encrypt")
    p.add_argument("--servers", default="")
    p.add_argument("--strongroom-rev", default="")
    p.add_argument("--max-interference", type=float, default=25)
    p.add_argument("--output", default=str(run.RESULTS_DIR / "multicore.json"))
    args = p.parse_args(argv)
    steps = parse_steps(args.steps)
    docs = [run_step(args, *step) for step in steps]
    rows = summarize(steps, docs)
    out = Path(args.output)
    out.write_text(json.dumps({"steps": [list(s) for s in steps], "rows": rows,
                               "loadavg": run.loadavg()}, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\nload average {run.loadavg()}; wrote {out}")
    return int(max(d["exit_status"] for d in docs))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except run.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
