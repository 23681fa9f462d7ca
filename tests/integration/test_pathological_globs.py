"""A pathological token-role glob does not stall a worker (issue #9, point 5).

Against a real one-worker dev server: while a request whose policy name is the
worst case for a backtracking glob matcher is served, a health check is answered
too. Both get a generous timeout (no timing is asserted): with the old regex
matcher the pathological request alone ran for hours and the health check waited
behind it, so both timed out.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support.servers import strongroom_dev_server

GENEROUS = 60.0
HEADERS = {"X-Vault-Token": "root"}


def test_health_is_answered_while_a_pathological_glob_is_matched(tmp_path: Path) -> None:
    with strongroom_dev_server(tmp_path) as srv:
        role = requests.post(f"{srv.url}/v1/auth/token/roles/team", headers=HEADERS, json={
            "allowed_policies_glob": ["team-*-*-*-ro", "*a*a*a*a*a*a*a*a*a*a*b"],
            "orphan": True}, timeout=GENEROUS)
        assert role.status_code == 204, role.text
        names = ["a" * 128, "team-" + "-" * 123]  # the longest names allowed
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            slow = [pool.submit(requests.post, f"{srv.url}/v1/auth/token/create/team",
                                headers=HEADERS, json={"policies": [name]}, timeout=GENEROUS)
                    for name in names]
            health = requests.get(f"{srv.url}/v1/sys/health", timeout=GENEROUS)
            assert health.status_code == 200
            for future in slow:
                resp = future.result()
                assert resp.status_code == 400
                assert "must be subset of the role's allowed policies" in resp.json()["errors"][0]
        # The 60 KB name of the issue is refused before any matching.
        long = requests.post(f"{srv.url}/v1/auth/token/create/team", headers=HEADERS,
                             json={"policies": ["team-" + "-" * 60_000]}, timeout=GENEROUS)
        assert long.status_code == 400
        assert long.json()["errors"] == [
            "policy name is too long: 60005 characters, the limit is 128"]
