"""sys/mounts' type aliases against Strongroom and OpenBao dev servers, side by side.

Found by the hvac probe (probes/hvac_diff.py on hvac's test_mount.py): a "generic"
mount came back as type "kv". Vault keeps "generic" as the mount's type (its
``mountAliases`` only pick the kv backend), stores "kv-v1"/"kv-v2" as kv with that
version, and refuses a version option on any other type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.servers import bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 10


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        yield {"strongroom": ours.url, "openbao": theirs.url}


def call(url: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{url}/v1/{path}", json=body, timeout=TIMEOUT,
                            headers={"X-Vault-Token": ROOT})


def entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    """What a client can rely on in a mount's listing entry (ids and versions differ)."""
    return {"type": entry["type"], "options": entry["options"],
            "accessor_prefix": entry["accessor"].rsplit("_", 1)[0],
            "deprecation_status": entry.get("deprecation_status")}


def scenario(url: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    enables = {
        "gen": {"type": "generic"},
        "gen-null-options": {"type": "generic", "options": None},
        "kvone": {"type": "kv-v1"},
        "kvtwo": {"type": "kv-v2", "options": {"version": "1"}},  # the alias wins
        "kvver": {"type": "kv", "options": {"version": "1"}},
        "tr-version": {"type": "transit", "options": {"version": "2"}},
        "gen-version": {"type": "generic", "options": {"version": "2"}},
        "unknown-version": {"type": "no-such-engine", "options": {"version": "1"}},
        # Vault's kv factory knows versions "", "1" and "2" only.
        "kv-v3": {"type": "kv", "options": {"version": "3"}},
        "kv-vabc": {"type": "kv", "options": {"version": "abc"}},
        "kv-vnull": {"type": "kv", "options": {"version": None}},
        "kv-vtrue": {"type": "kv", "options": {"version": True}},
        "kv-nested": {"type": "kv", "options": {"a": {"b": 1}}},
        "kv-listed": {"type": "kv", "options": {"a": [1]}},
    }
    for path, body in enables.items():
        resp = call(url, "POST", f"sys/mounts/{path}", body)
        seen[f"enable {path}"] = (resp.status_code,
                                  resp.json().get("errors") if resp.content else None)
    listing = call(url, "GET", "sys/mounts").json()["data"]
    seen["built-in options"] = {path: entry["options"] for path, entry in listing.items()
                                if path not in {f"{p}/" for p in enables}}
    for path in enables:
        if f"{path}/" in listing:
            seen[f"list {path}"] = entry_view(listing[f"{path}/"])
    for path, body in {"up-null": {"type": "userpass", "options": None},
                       "up-none": {"type": "userpass"}}.items():
        assert call(url, "POST", f"sys/auth/{path}", body).status_code == 204
    auths = call(url, "GET", "sys/auth").json()["data"]
    seen["auth options"] = {path: entry["options"] for path, entry in auths.items()}
    tunes = [("sys/mounts/kvtune", {"version": "3"}), ("sys/mounts/kvtune", {"version": "abc"}),
             ("sys/mounts/kvtune", {"version": "99999999999999999999"}),
             ("sys/mounts/kvtune", {"k": "v", "j": "w"}), ("sys/mounts/kvtune", {"k": ""}),
             ("sys/mounts/kvtune", {"version": "2"}), ("sys/mounts/kvtune", {"version": "1"}),
             ("sys/mounts/kvtune", {}), ("sys/mounts/kvtune", {"a": {"b": 1}}),
             ("sys/auth/up-none", {"version": "3"}), ("sys/auth/up-none", {"x": "y"})]
    assert call(url, "POST", "sys/mounts/kvtune", {"type": "kv"}).status_code == 204
    for i, (mount, options) in enumerate(tunes):
        resp = call(url, "POST", f"{mount}/tune", {"options": options})
        body = resp.json() if resp.content else {}
        # The upgrade warning's second version is 0 in OpenBao (a shadowed variable).
        seen[f"tune {i} {mount} {options}"] = (resp.status_code, body.get("errors"),
                                                len(body.get("warnings") or []))
    seen["tuned options"] = call(url, "GET", "sys/mounts/kvtune").json()["options"]
    seen["tuned auth options"] = call(url, "GET", "sys/auth").json()["data"]["up-none/"][
        "options"]
    seen["read gen"] = entry_view(call(url, "GET", "sys/mounts/gen").json()["data"])
    # A generic mount is a kv version 1 store.
    seen["write gen"] = call(url, "POST", "gen/a", {"k": "v"}).status_code
    read = call(url, "GET", "gen/a").json()
    seen["read gen/a"] = (read["data"], read.get("mount_type"))
    seen["kv-v2 data path"] = call(url, "GET", "kvtwo/data/none").status_code
    return seen


def test_mount_types_as_openbao(urls: dict[str, str]) -> None:
    ours, theirs = scenario(urls["strongroom"]), scenario(urls["openbao"])
    # mount_type: Vault (and Strongroom) put it in every response; OpenBao 2.x dropped it.
    assert ours["read gen/a"] == ({"k": "v"}, "generic")
    assert theirs["read gen/a"] == ({"k": "v"}, None)
    ours.pop("read gen/a")
    theirs.pop("read gen/a")
    assert ours == theirs
    assert ours["list gen"] == {"type": "generic", "options": {},
                                "accessor_prefix": "generic", "deprecation_status": None}
    assert ours["list kvone"]["options"] == {"version": "1"}
    assert ours["list kvtwo"]["options"] == {"version": "2"}
    assert ours["enable tr-version"] == (
        400, ['secrets engine "transit" does not allow setting a version'])
