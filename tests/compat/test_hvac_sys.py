"""hvac's seal/init/health calls, against Strongroom and OpenBao side by side.

The same scenario runs against both servers; we assert the status codes and
JSON keys Strongroom returns are the ones the reference returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from tests.support.servers import bao_server, file_config, strongroom_server

CONFIG = file_config(workers=2)


def scenario(url: str) -> dict[str, Any]:
    """Everything an operator does with hvac on a new server; returns what it observed."""
    seen: dict[str, Any] = {}
    client = hvac.Client(url=url)
    seen["initialized_before"] = client.sys.is_initialized()
    seen["health_uninit"] = client.sys.read_health_status(method="GET").status_code
    result = client.sys.initialize(secret_shares=5, secret_threshold=3)
    seen["init_keys"] = sorted(result)
    seen["n_keys"] = len(result["keys"])
    seen["initialized_after"] = client.sys.is_initialized()
    status = client.sys.read_seal_status()
    seen["sealed_status_keys"] = sorted(status)
    seen["health_sealed"] = client.sys.read_health_status(method="GET").status_code
    partial = client.sys.submit_unseal_key(result["keys"][0])
    seen["progress"] = (partial["sealed"], partial["progress"], bool(partial["nonce"]))
    done = client.sys.submit_unseal_keys(result["keys"][1:3])
    seen["unsealed"] = done["sealed"]
    seen["unsealed_status_keys"] = sorted(client.sys.read_seal_status())
    health = client.sys.read_health_status(method="GET")
    seen["health_active"] = health["sealed"] if isinstance(health, dict) else health.status_code
    seen["health_head"] = requests.head(url + "/v1/sys/health", timeout=5).status_code
    seen["health_sealedcode"] = requests.get(
        url + "/v1/sys/health", params={"standbyok": "true", "activecode": "204"}, timeout=5
    ).status_code
    client.token = result["root_token"]
    assert client.is_authenticated()
    client.sys.seal()
    seen["sealed_again"] = client.sys.is_sealed()
    seen["sealed_logical"] = requests.get(
        url + "/v1/sys/key-status", headers={"X-Vault-Token": result["root_token"]}, timeout=5
    ).status_code
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.submit_unseal_key("not-a-key")
    return seen


# Keys OpenBao reports that Vault does not, or that name its build differently.
BAO_ONLY = {"commit_date"}
STRONGROOM_ONLY = {"build_date"}


def normalise(seen: dict[str, Any]) -> dict[str, Any]:
    out = dict(seen)
    for key in ("sealed_status_keys", "unsealed_status_keys"):
        out[key] = sorted(set(seen[key]) - BAO_ONLY - STRONGROOM_ONLY)
    return out


def check(seen: dict[str, Any]) -> None:
    assert seen["initialized_before"] is False and seen["initialized_after"] is True
    assert seen["health_uninit"] == 501 and seen["health_sealed"] == 503
    assert seen["progress"] == (True, 1, True) and seen["unsealed"] is False
    assert seen["sealed_again"] is True and seen["sealed_logical"] == 503


def test_hvac_sys_scenario_matches_openbao(tmp_path: Path) -> None:
    (tmp_path / "sr").mkdir()
    (tmp_path / "bao").mkdir()
    with strongroom_server(tmp_path / "sr", CONFIG) as srv:
        ours = normalise(scenario(srv.url))
    check(ours)
    with bao_server(tmp_path / "bao") as bao:
        theirs = normalise(scenario(bao.url))
    check(theirs)
    assert ours == theirs
