"""Seeding shared by the scale scenarios (bench/leases.py, bench/tokens.py): many tokens,
created over keep-alive connections from a thread pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import run  # bench/run.py: checked()


def session(token: str) -> requests.Session:
    """A keep-alive session sending ``token``, sized for the seeding threads."""
    s = requests.Session()
    s.headers["X-Vault-Token"] = token
    s.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32))
    return s


def create_tokens(url: str, token: str, path: str, count: int,
                  threads: int) -> list[dict[str, Any]]:
    """``count`` tokens created by ``token`` at ``path`` (a token create endpoint): their
    ``auth`` blocks."""
    s = session(token)

    def one(_: int) -> dict[str, Any]:
        r = s.post(f"{url}/v1/{path}", json={"policies": ["default"], "ttl": "4h"},
                   timeout=60)
        return dict(run.checked(r, path)["auth"])

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))
