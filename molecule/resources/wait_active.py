#!/usr/bin/env python3
"""Poll nodes' /v1/sys/health until exactly one answers 200 (active); print JSON.

Prints {"active": URL, "seconds": elapsed, "statuses": {url: code}} and exits 0,
or exits 1 after --timeout. Used by the failover checks to time a takeover from
the moment the active node was stopped. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import time
from urllib.parse import urlsplit


def status(url: str, context: ssl.SSLContext) -> int:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 8200,
                                           context=context, timeout=1)
        conn.request("GET", "/v1/sys/health")
        code = conn.getresponse().status
        conn.close()
        return code
    except OSError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", required=True, help="comma-separated API URLs")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--since", type=float, default=None,
                        help="epoch seconds to count from (default: now)")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca_file)
    urls = [u.strip() for u in args.nodes.split(",") if u.strip()]
    started = time.time() if args.since is None else args.since
    statuses: dict[str, int] = {}
    while time.time() - started < args.timeout:
        statuses = {url: status(url, context) for url in urls}
        active = [url for url, code in statuses.items() if code == 200]
        if len(active) == 1:
            print(json.dumps({"active": active[0], "seconds": round(time.time() - started, 2),
                              "statuses": statuses}))
            return 0
        time.sleep(0.1)
    print(json.dumps({"active": None, "seconds": None, "statuses": statuses}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
