"""OpenBao's listener switches for the unauthenticated key endpoints, against bao 2.7.

``disable_unauthed_rekey_endpoints`` / ``disable_unauthed_generate_root_endpoints`` turn
off sys/rekey*/init|update|verify and sys/generate-root/attempt|update on a listener:
anyone who reaches them could otherwise cancel a round in progress. Same config, same
requests, same answers on both servers, sealed and unsealed; with the switches off
(Strongroom's default, Vault's behaviour) the endpoints are served.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import (
    ServerProcess,
    bao_server,
    strongroom_server,
)

SWITCHES = ("  disable_unauthed_rekey_endpoints = true\n"
            "  disable_unauthed_generate_root_endpoints = true\n")
ROUTES = ("sys/rekey/init", "sys/rekey/update", "sys/rekey/verify",
          "sys/rekey-recovery-key/init", "sys/generate-root/attempt",
          "sys/generate-root/update")


def _strongroom(workdir: Path, switches: str) -> Iterator[ServerProcess]:
    body = ('storage "file" {{\n  path = "{workdir}/data"\n}}\n'
            'listener "tcp" {{\n  address     = "127.0.0.1:{port}"\n  tls_disable = true\n'
            + switches.replace("{", "{{").replace("}", "}}")
            + "}}\ndisable_mlock = true\nworkers       = 2\n")
    return strongroom_server(workdir, body)


def _answers(url: str) -> list[tuple[str, str, int, object]]:
    """(state, route, status, body) for GET and PUT of every route, sealed then unsealed."""
    seen: list[tuple[str, str, int, object]] = []

    def sweep(state: str) -> None:
        for route in ROUTES:
            for method in ("GET", "PUT"):
                r = requests.request(method, f"{url}/v1/{route}", json={}, timeout=10)
                seen.append((state, f"{method} {route}", r.status_code, r.json()))

    sweep("uninitialized")
    init = requests.put(f"{url}/v1/sys/init",
                        json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
    assert init.status_code == 200, init.text
    sweep("sealed")
    r = requests.put(f"{url}/v1/sys/unseal", json={"key": init.json()["keys"][0]}, timeout=30)
    assert r.status_code == 200 and not r.json()["sealed"], r.text
    sweep("unsealed")
    return seen


def test_switched_off_endpoints_answer_as_openbao(tmp_path: Path) -> None:
    records = {}
    for name, launch in (("bao", bao_server), ("strongroom", _strongroom)):
        workdir = tmp_path / name
        workdir.mkdir()
        with launch(workdir, SWITCHES) as server:
            records[name] = _answers(server.url)
    assert records["strongroom"] == records["bao"]
    # The switch really turns them off: nothing is served, in any state.
    assert all(status in (400, 404, 405, 503) for _, _, status, _ in records["strongroom"])
    unsealed = [status for state, _, status, _ in records["strongroom"] if state == "unsealed"]
    assert unsealed and set(unsealed) <= {404, 405}


@pytest.mark.parametrize("switches", ["", "  disable_unauthed_rekey_endpoints = false\n"])
def test_by_default_the_endpoints_are_served_as_in_vault(tmp_path: Path,
                                                         switches: str) -> None:
    with _strongroom(tmp_path, switches) as server:
        init = requests.put(f"{server.url}/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
        requests.put(f"{server.url}/v1/sys/unseal", json={"key": init.json()["keys"][0]},
                     timeout=30).raise_for_status()
        rekey = requests.get(f"{server.url}/v1/sys/rekey/init", timeout=10)
        assert rekey.status_code == 200 and rekey.json()["started"] is False
        gen = requests.get(f"{server.url}/v1/sys/generate-root/attempt", timeout=10)
        assert gen.status_code == 200 and gen.json()["started"] is False


def test_a_bad_switch_value_is_refused_at_start(tmp_path: Path) -> None:
    from strongroom.config import ConfigError, load_config

    config = tmp_path / "bad.hcl"
    config.write_text('storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:1"\n'
                      '  tls_disable = true\n  disable_unauthed_rekey_endpoints = "maybe"\n}\n')
    with pytest.raises(ConfigError, match="disable_unauthed_rekey_endpoints"):
        load_config(str(config))
