#!/usr/bin/env python3
"""Failover timings of a 3-node Strongroom cluster on a 3-server Consul cluster.

Runs on loopback with the test harness's real Consul 1.8.7 servers. A writer
loop keeps writing numbered secrets through whichever node answers and records
every acknowledged write; each scenario then disrupts the cluster and measures
how long until writes are acknowledged again, and afterwards reads back every
acknowledged write (lost writes must be zero).

Scenarios, each repeated --runs times (median reported):
  sigkill        SIGKILL every process of the active node (owner, arbiter, workers)
  sigterm        SIGTERM the active node (graceful: it hands the lock over)
  consul-leader  SIGKILL the Consul leader

Usage: python bench/failover.py [--runs 5] [--only sigkill,sigterm,consul-leader]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "server"))

from tests.support.consul import ConsulCluster, consul_cluster  # noqa: E402
from tests.support.ha import Cluster, ha_cluster, poll, replace_node  # noqa: E402

TARGETS = {"sigkill": 5.0, "sigterm": 1.0, "consul-leader": 10.0}
REFERENCE = {"sigkill": "OpenBao on PostgreSQL: 11-13 s", "sigterm": "OpenBao: 1.2-1.3 s",
             "consul-leader": "n/a (OpenBao has no Consul storage)"}


class Writer(threading.Thread):
    """Writes secret/data/f<n> through any node that answers; remembers what was acked."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        # (n, when the request was sent): a write sent before the disruption and
        # answered after it must not count as "writes resumed".
        self.acked: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.session = requests.Session()

    def run(self) -> None:
        n = 0
        preferred = 0
        while not self.stop.is_set():
            nodes = self.cluster.nodes
            for offset in range(len(nodes)):
                node = nodes[(preferred + offset) % len(nodes)]
                if node.proc.poll() is not None:
                    continue
                sent = time.monotonic()
                try:
                    resp = self.session.post(
                        node.url + f"/v1/secret/data/f{n}", json={"data": {"n": n}},
                        headers={"X-Vault-Token": self.cluster.root}, timeout=2)
                except requests.RequestException:
                    continue
                if resp.status_code == 200:
                    with self.lock:
                        self.acked.append((n, sent))
                    preferred = (preferred + offset) % len(nodes)
                    n += 1
                    break
            else:
                time.sleep(0.02)

    def first_ack_after(self, moment: float) -> float | None:
        with self.lock:
            return next((t for _, t in self.acked if t > moment), None)


def consul_healthy(consul: ConsulCluster) -> bool:
    """All three servers back as healthy raft voters (autopilot may have removed one)."""
    for index in consul.alive():
        try:
            reply = consul.api("GET", "/v1/operator/autopilot/health", index=index, timeout=2)
        except requests.RequestException:
            continue
        if reply.status_code == 200:
            doc = reply.json()
            voters = [s for s in doc.get("Servers", []) if s.get("Voter") and s.get("Healthy")]
            return bool(doc.get("Healthy")) and len(voters) == 3
    return False


def lost_writes(cluster: Cluster, writer: Writer) -> int:
    with writer.lock:
        acked = [n for n, _ in writer.acked]
    active = cluster.active(timeout=60)
    lost = 0
    for n in acked:
        resp = requests.get(active.url + f"/v1/secret/data/f{n}", timeout=10,
                            headers={"X-Vault-Token": cluster.root})
        if resp.status_code != 200 or resp.json()["data"]["data"]["n"] != n:
            lost += 1
    return lost


def run_scenario(name: str, cluster: Cluster, consul: ConsulCluster, workdir: Path) -> float:
    writer = Writer(cluster)
    writer.start()
    poll(lambda: len(writer.acked) > 20, 20, "the writer to get going")
    active = cluster.active()
    if name == "consul-leader":
        leader = consul.leader_index()
        assert leader is not None
        consul.kill(leader)
        moment = time.monotonic()
    else:
        sig = signal.SIGKILL if name == "sigkill" else signal.SIGTERM
        others = active.node_pids() - {active.proc.pid}  # arbiter and workers
        moment = time.monotonic()
        # The owner (HA session holder) first: killed after its arbiter, it could see the
        # arbiter die and hand the lock over in the microseconds before its own SIGKILL,
        # measuring a graceful handover (0.01 s runs) instead of a crash.
        os.kill(active.proc.pid, sig)
        if sig == signal.SIGKILL:
            for pid in others:
                os.kill(pid, sig)
    took = poll(lambda: writer.first_ack_after(moment), 60, "writes to resume") - moment
    time.sleep(1.0)  # let the writer run on the new active for a moment
    writer.stop.set()
    writer.join(10)
    lost = lost_writes(cluster, writer)
    print(f"  {name}: writes resumed after {took:.2f} s; {len(writer.acked)} acknowledged, "
          f"{lost} lost", flush=True)
    if lost:
        raise SystemExit(f"{lost} acknowledged writes lost in {name}")
    if name == "consul-leader":
        consul.start(leader)
        consul.wait_for_leader()
        # Killing another server before this one is a voter again would lose quorum.
        poll(lambda: consul_healthy(consul), 90, "Consul to have three healthy voters")
        poll(lambda: len(cluster.standbys()) == 2, 60, "the cluster to settle")
    else:
        replace_node(cluster, consul, active, workdir)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(TARGETS))
    args = parser.parse_args()
    scenarios = [s for s in args.only.split(",") if s]
    results: dict[str, list[float]] = {s: [] for s in scenarios}
    # Kept after the run (node and Consul logs) so a slow scenario can be examined.
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-failover-"))
    print(f"logs under {workdir}", flush=True)
    if True:
        with consul_cluster(workdir / "consul") as consul, \
                ha_cluster(consul, workdir / "nodes") as cluster:
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs}", flush=True)
                for name in scenarios:
                    results[name].append(run_scenario(name, cluster, consul, workdir))
    print()
    print(f"{'scenario':15} {'median s':>9} {'min s':>7} {'max s':>7} {'target s':>9}  reference")
    summary = {}
    for name, times in results.items():
        med = statistics.median(times)
        summary[name] = {"runs": times, "median": med, "target": TARGETS[name]}
        print(f"{name:15} {med:9.2f} {min(times):7.2f} {max(times):7.2f} {TARGETS[name]:9.1f}"
              f"  {REFERENCE[name]}")
    out = REPO / "bench" / "results" / "failover.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
