#!/usr/bin/env python3
"""A client that keeps writing and reading secrets while the cluster changes under it.

It behaves like clients behind a health-checking load balancer: a background
thread polls every node's /v1/sys/health and requests go only to nodes that
answer 200 (active), 429 (standby, which forwards) or 473 (performance standby;
not 472, a DR secondary serves no clients). A request refused before it reached a
node (connection refused/reset on connect) moves on to the next node, as a load
balancer would; any other error or non-2xx answer is a failed
request. Runs until ``--stop-file`` appears, then writes a JSON summary.

Standard library only: it runs with whatever python3 the controller has.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HEALTHY = {200, 429, 473}  # active, standby, performance standby (forwards or serves reads)


class Node:
    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or ""
        self.port = parts.port or 8200
        self.context = context
        self.healthy = False

    def connect(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=timeout)

    def request(self, method: str, path: str, token: str,
                body: dict[str, object] | None = None) -> tuple[int, bytes]:
        conn = self.connect(timeout=30)
        try:
            conn.connect()  # a refusal here is safe to retry elsewhere: nothing was sent
        except OSError as exc:
            raise NotSent(str(exc)) from exc
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={"X-Vault-Token": token})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


class NotSent(Exception):
    """The request never reached the node."""


def watch_health(nodes: list[Node], stop: threading.Event) -> None:
    while not stop.is_set():
        for node in nodes:
            try:
                conn = node.connect(timeout=2)
                conn.request("GET", "/v1/sys/health?standbyok=false")
                node.healthy = conn.getresponse().status in HEALTHY
                conn.close()
            except OSError:
                node.healthy = False
        stop.wait(0.25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", required=True, help="comma-separated API URLs")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--stop-file", required=True, type=Path)
    parser.add_argument("--summary", required=True, type=Path)
    parser.add_argument("--ready-file", type=Path, help="created after the first success")
    parser.add_argument("--mount", default="secret")
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.ca_file)
    token = Path(args.token_file).read_text().strip()
    nodes = [Node(url.strip(), context) for url in args.nodes.split(",") if url.strip()]
    stop = threading.Event()
    threading.Thread(target=watch_health, args=(nodes, stop), daemon=True).start()

    counts = {"requests": 0, "ok": 0, "failed": 0, "rerouted": 0}
    failures: list[str] = []
    started = time.monotonic()
    turn = 0
    while not args.stop_file.exists():
        turn += 1
        key = f"{args.mount}/data/client-loop/k{turn % 16}"
        for method, body in (("POST", {"data": {"turn": turn}}), ("GET", None)):
            counts["requests"] += 1
            candidates = [n for n in nodes if n.healthy] or nodes
            offset = turn % len(candidates)
            outcome = "no node reachable"
            for node in candidates[offset:] + candidates[:offset]:
                try:
                    status, reply = node.request(method, f"/v1/{key}", token, body)
                except NotSent as exc:
                    counts["rerouted"] += 1
                    outcome = f"{node.url}: {exc}"
                    continue
                except OSError as exc:
                    outcome = f"{method} {key} via {node.url}: {exc!r}"
                    break
                if status in (200, 204) and (method == "POST"
                                             or json.loads(reply)["data"]["data"]["turn"] == turn):
                    outcome = ""
                else:
                    outcome = f"{method} {key} via {node.url}: HTTP {status} {reply[:200]!r}"
                break
            if outcome:
                counts["failed"] += 1
                failures.append(f"{time.monotonic() - started:.2f}s {outcome}")
            else:
                counts["ok"] += 1
                if args.ready_file and counts["ok"] == 1:
                    args.ready_file.touch()
    stop.set()
    summary = {**counts, "seconds": round(time.monotonic() - started, 2),
               "failures": failures[:50]}
    args.summary.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
