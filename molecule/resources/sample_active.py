#!/usr/bin/env python3
"""Sample every node's /v1/sys/health continuously through a disruption; print JSON.

One thread per node polls its health without pause (--interval between polls) and
records each answer with the moment the request was sent and the moment the answer
came back (code 0: no answer). A node may be probed from inside another network
namespace (--node NAME=URL@PID: the namespace of process PID, e.g. a podman
container's init), which is how a node cut off the controller's network is still
watched: through its own loopback interface.

Once every node has answered (and --expect-active, if given, answered 200), the
--disrupt command runs (in the background: sampling goes on while e.g. `podman stop`
waits for the container). Sampling continues until another node than
--expect-active has been seen active, every node's demotion has been observed (the
disrupted node no longer answers 200), and --settle seconds have passed since the
takeover; or until --timeout.

"Active" spans: a run of consecutive 200 answers of a node counts as active from the
moment its first request was sent to the moment its last answer arrived. Two nodes
whose active spans overlap were active at the same time (within the sampler's
resolution: one poll, a few milliseconds on a local network). The summary gives:
  takeover_seconds   from the start of --disrupt to the first 200 of another node
                     (when it came back); null if none
  new_active         that node
  max_active         the most nodes active at one time over the whole run
  overlaps           [{nodes, start, seconds}] where two spans overlap (must be [])
  demoted_seconds    when the disrupted node's last 200 answer arrived, after the start
  last_codes         each node's last answer; codes: each node's answers, run-length
                     encoded [[code, count, first_seconds], ...] from the disruption
  baseline_ok        every node answered before the disruption, --expect-active with 200
Exit status 0 when the run finished (whatever it saw: the caller asserts), 2 when the
baseline was never reached (nothing was disrupted), 3 when --disrupt failed.
Standard library only: it runs with whatever python3 the controller has.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import shlex
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CLONE_NEWNET = 0x40000000


@dataclass
class Sample:
    sent: float
    received: float
    code: int


@dataclass
class Node:
    name: str
    url: str
    netns_pid: int | None = None
    samples: list[Sample] = field(default_factory=list)
    error: str = ""


def enter_netns(pid: int) -> None:
    """Move the calling thread (only it) into the network namespace of process pid."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns(/proc/{pid}/ns/net): {os.strerror(errno)}")
    finally:
        os.close(fd)


def probe(url: str, context: ssl.SSLContext, timeout: float) -> int:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 8200,
                                           context=context, timeout=timeout)
        try:
            conn.request("GET", "/v1/sys/health")
            return conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return 0


def poll(node: Node, context: ssl.SSLContext, interval: float, timeout: float,
         stop: threading.Event) -> None:
    try:
        if node.netns_pid is not None:
            enter_netns(node.netns_pid)
    except OSError as exc:
        node.error = str(exc)
        return
    while not stop.is_set():
        sent = time.time()
        code = probe(node.url, context, timeout)
        node.samples.append(Sample(sent, time.time(), code))
        stop.wait(interval)


def active_spans(samples: list[Sample]) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start: float | None = None
    last = 0.0
    for sample in samples:
        if sample.code == 200:
            if start is None:
                start = sample.sent
            last = sample.received
        elif start is not None:
            spans.append((start, last))
            start = None
    if start is not None:
        spans.append((start, last))
    return spans


def analyse(nodes: list[Node], since: float, expect: str | None) -> dict[str, object]:
    spans = {node.name: active_spans(list(node.samples)) for node in nodes}
    events: list[tuple[float, int, str]] = []
    for name, node_spans in spans.items():
        for start, end in node_spans:
            events += [(start, 1, name), (end, -1, name)]
    # At equal times an end is counted before a start: touching spans do not overlap.
    events.sort(key=lambda e: (e[0], e[1]))
    current: set[str] = set()
    max_active = 0
    overlaps: list[dict[str, object]] = []
    opened: float | None = None
    for moment, delta, name in events:
        if delta > 0:
            current.add(name)
            if len(current) == 2:
                opened = moment
        else:
            if len(current) == 2 and opened is not None:
                overlaps.append({"nodes": sorted(current), "start": round(opened - since, 3),
                                 "seconds": round(moment - opened, 3)})
                opened = None
            current.discard(name)
        max_active = max(max_active, len(current))
    takeover: tuple[float, str] | None = None
    for node in nodes:
        if node.name == expect:
            continue
        first = next((s.received for s in node.samples if s.sent >= since and s.code == 200),
                     None)
        if first is not None and (takeover is None or first < takeover[0]):
            takeover = (first, node.name)
    demoted = None
    if expect is not None:
        target = next(node for node in nodes if node.name == expect)
        last_200 = [s.received for s in target.samples if s.code == 200]
        demoted = round(max(last_200) - since, 3) if last_200 else None
    codes: dict[str, list[list[float]]] = {}
    for node in nodes:
        runs: list[list[float]] = []
        for sample in node.samples:
            if sample.sent < since:
                continue
            if runs and runs[-1][0] == sample.code:
                runs[-1][1] += 1
            else:
                runs.append([sample.code, 1, round(sample.sent - since, 3)])
        codes[node.name] = runs
    return {
        "takeover_seconds": round(takeover[0] - since, 3) if takeover else None,
        "new_active": takeover[1] if takeover else None,
        "max_active": max_active,
        "overlaps": overlaps,
        "demoted_seconds": demoted,
        "last_codes": {node.name: node.samples[-1].code if node.samples else None
                       for node in nodes},
        "samples": {node.name: len(node.samples) for node in nodes},
        "errors": {node.name: node.error for node in nodes if node.error},
        "codes": codes,
    }


def baseline_reached(nodes: list[Node], expect: str | None) -> bool:
    for node in nodes:
        if not node.samples or node.samples[-1].code == 0:
            return False
        if (node.name == expect) != (node.samples[-1].code == 200):
            return False
    return True


def settled(nodes: list[Node], since: float, expect: str | None, settle: float) -> bool:
    report = analyse(nodes, since, expect)
    takeover = report["takeover_seconds"]
    if takeover is None or time.time() - since < float(takeover) + settle:  # type: ignore[arg-type]
        return False
    target = next((node for node in nodes if node.name == expect), None)
    return target is None or (bool(target.samples) and target.samples[-1].code != 200)


def parse_node(spec: str) -> Node:
    name, _, rest = spec.partition("=")
    url, _, pid = rest.partition("@")
    if not name or not url:
        raise argparse.ArgumentTypeError(f"--node NAME=URL[@PID], not {spec!r}")
    return Node(name, url, int(pid) if pid else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", action="append", type=parse_node, required=True,
                        dest="nodes", help="NAME=URL, or NAME=URL@PID to probe from PID's netns")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--expect-active", help="the node active before the disruption")
    parser.add_argument("--disrupt", help="command that disrupts the cluster (split as by a shell)")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to keep sampling after the takeover")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--probe-timeout", type=float, default=1.0)
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca_file)
    nodes: list[Node] = args.nodes
    stop = threading.Event()
    threads = [threading.Thread(target=poll, daemon=True,
                                args=(node, context, args.interval, args.probe_timeout, stop))
               for node in nodes]
    for thread in threads:
        thread.start()

    deadline = time.time() + 30
    while not baseline_reached(nodes, args.expect_active):
        if time.time() > deadline or any(node.error for node in nodes):
            stop.set()
            report = analyse(nodes, time.time(), args.expect_active)
            print(json.dumps({"baseline_ok": False, **report}))
            return 2
        time.sleep(0.05)

    since = time.time()
    disrupt = (subprocess.Popen(shlex.split(args.disrupt), stdout=subprocess.DEVNULL)
               if args.disrupt else None)
    while time.time() - since < args.timeout:
        if settled(nodes, since, args.expect_active, args.settle):
            break
        time.sleep(0.2)
    rc = disrupt.wait() if disrupt else 0
    stop.set()
    for thread in threads:
        thread.join(args.probe_timeout + 1)
    report = analyse(nodes, since, args.expect_active)
    print(json.dumps({"baseline_ok": True, "disrupt_rc": rc, **report}))
    return 3 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
