"""Seal migration across an HA pair (two multi-worker nodes on real Consul, real SoftHSM).

Vault's documented order (docs/concepts/seal#seal-migration), both ways:

1. the standby restarts with the migration configuration and is unsealed with
   ``migrate`` and the old seal's keys: it joins as a standby, nothing is migrated yet;
2. the active node steps down; the standby takes over and, now active, migrates;
3. the old active restarts with the new configuration (it auto-unseals with PKCS#11,
   or takes the new unseal keys with Shamir).

A KV secret written before is read after each step; both nodes share one SoftHSM token
directory (the same HSM key, as every node of a cluster must). Last, a root token is
generated through the standby (its requests are forwarded to the active node).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.node.generate_root import decode_token
from tests.support.consul import ConsulCluster, consul_cluster
from tests.support.ha import NODE_CONFIG, health, poll
from tests.support.servers import ServerProcess, late_bound_port, strongroom_server
from tests.support.softhsm import SoftHsm, private_softhsm

pytestmark = pytest.mark.consul

softhsm = pytest.fixture(private_softhsm)

PIN = "pin-for-ha-migration-4711"
PKCS11 = """
seal "pkcs11" {{{{
  lib          = "{lib}"
  token_label  = "tok-ha"
  key_label    = "strongroom-root"
  generate_key = "true"{disabled}
}}}}
"""


@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


@pytest.fixture
def hsm(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    softhsm.init_token("tok-ha", pin=PIN)
    monkeypatch.setenv("VAULT_HSM_PIN", PIN)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
    return softhsm


class Pair:
    """Two nodes (indexes 0 and 1) that restart with a given seal configuration."""

    def __init__(self, consul: ConsulCluster, workdir: Path, stack: ExitStack) -> None:
        self.consul, self.workdir, self.stack = consul, workdir, stack
        prefix = "strongroom-migration/"
        self.token = consul.make_token(prefix)
        consul.api("DELETE", f"/v1/kv/{prefix}?recurse=true")
        self.prefix = prefix
        self.nodes: list[ServerProcess | None] = [None, None]
        self.starts = 0

    def start(self, index: int, seals: str) -> ServerProcess:
        old = self.nodes[index]
        if old is not None:
            old.stop()
        self.starts += 1
        config = NODE_CONFIG.format(consul=self.consul.host_ports[index], token=self.token,
                                    cluster_port=late_bound_port())
        config = config.replace('"strongroom/"', f'"{self.prefix}"') + seals
        workdir = self.workdir / f"node{index}-{self.starts}"
        workdir.mkdir(parents=True)
        node = self.stack.enter_context(strongroom_server(workdir, config))
        self.nodes[index] = node
        return node

    def node(self, index: int) -> ServerProcess:
        node = self.nodes[index]
        assert node is not None
        return node

    def active_index(self) -> int:
        def find() -> list[int] | None:
            actives = [i for i in (0, 1) if health(self.node(i)) == 200]
            return actives if len(actives) == 1 else None
        found: list[int] = poll(find, 40, "exactly one active node")
        return found[0]


def status(node: ServerProcess) -> dict[str, Any]:
    resp = requests.get(node.url + "/v1/sys/seal-status", timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def unseal(node: ServerProcess, keys: list[str], migrate: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in keys:
        resp = requests.put(node.url + "/v1/sys/unseal", timeout=30,
                            json={"key": key, "migrate": migrate})
        assert resp.status_code == 200, resp.text
        body = resp.json()
    return body


def read(node: ServerProcess, token: str) -> str:
    resp = requests.get(node.url + "/v1/secret/data/app", timeout=10,
                        headers={"X-Vault-Token": token})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["data"]["v"])


def step_down(node: ServerProcess, token: str) -> None:
    resp = requests.put(node.url + "/v1/sys/step-down", headers={"X-Vault-Token": token},
                        timeout=10)
    assert resp.status_code == 204, resp.text


def test_ha_pair_migrates_both_ways(consul: ConsulCluster, hsm: SoftHsm,
                                    tmp_path: Path) -> None:
    pkcs11 = PKCS11.format(lib=hsm.lib, disabled="")
    pkcs11_disabled = PKCS11.format(lib=hsm.lib, disabled='\n  disabled     = "true"')
    with ExitStack() as stack:
        pair = Pair(consul, tmp_path, stack)
        first = pair.start(0, "")
        pair.start(1, "")
        init = requests.put(first.url + "/v1/sys/init", timeout=30,
                            json={"secret_shares": 3, "secret_threshold": 2}).json()
        keys, token = init["keys"], init["root_token"]
        for index in (0, 1):
            unseal(pair.node(index), keys[:2])
        active = pair.active_index()
        headers = {"X-Vault-Token": token}
        url = pair.node(active).url
        assert requests.post(url + "/v1/sys/mounts/secret", json={"type": "kv-v2"},
                             headers=headers, timeout=10).status_code == 204
        assert requests.post(url + "/v1/secret/data/app", json={"data": {"v": "kept"}},
                             headers=headers, timeout=10).status_code == 200

        # Shamir -> pkcs11. 1: the standby, with -migrate and the unseal keys.
        standby = 1 - active
        node = pair.start(standby, pkcs11)  # Vault's way: the new stanza alone
        assert status(node)["migration"] is True
        done = unseal(node, keys[1:], migrate=True)
        assert done["sealed"] is False
        poll(lambda: health(pair.node(standby)) == 429, 30, "the migrated node as standby")
        # Nothing migrated yet: the active node still runs on the Shamir configuration.
        assert status(node)["migration"] is True
        assert status(pair.node(active))["type"] == "shamir"
        # 2: the active steps down; the other node takes over and migrates.
        step_down(pair.node(active), token)
        poll(lambda: health(pair.node(standby)) == 200, 40, "the migrated node active")
        poll(lambda: status(pair.node(standby))["migration"] is False, 30, "migration done")
        assert status(pair.node(standby))["type"] == "pkcs11"
        assert read(pair.node(standby), token) == "kept"
        # 3: the old active restarts with the new seal: it unseals itself.
        old = pair.start(active, pkcs11)
        poll(lambda: health(old) == 429, 40, "the old active back as an unsealed standby")
        assert read(old, token) == "kept"  # forwarded to the active node
        # Both restart with the pkcs11 stanza alone: no key typed, nothing lost.
        for index in (standby, active):
            pair.start(index, pkcs11)
        active = pair.active_index()
        standby = 1 - active
        poll(lambda: health(pair.node(standby)) == 429, 40, "a standby")
        assert read(pair.node(active), token) == "kept"

        # pkcs11 -> Shamir, the same order, with the recovery keys (the old unseal keys).
        node = pair.start(standby, pkcs11_disabled)
        seen = status(node)
        assert (seen["migration"], seen["type"], seen["t"], seen["n"]) == (True, "shamir", 2, 3)
        assert unseal(node, [keys[0], keys[2]], migrate=True)["sealed"] is False
        poll(lambda: health(pair.node(standby)) == 429, 30, "the migrated node as standby")
        step_down(pair.node(active), token)
        poll(lambda: health(pair.node(standby)) == 200, 40, "the migrated node active")
        poll(lambda: status(pair.node(standby))["migration"] is False, 30, "migration done")
        assert status(pair.node(standby))["type"] == "shamir"
        assert read(pair.node(standby), token) == "kept"
        old = pair.start(active, "")
        assert unseal(old, keys[1:])["sealed"] is False
        poll(lambda: health(old) == 429, 40, "the old active back as a standby")
        assert read(old, token) == "kept"

        # generate-root through the standby: forwarded to the active node's attempt.
        start = requests.put(old.url + "/v1/sys/generate-root/attempt", timeout=10).json()
        on_active = requests.get(pair.node(standby).url + "/v1/sys/generate-root/attempt",
                                 timeout=10).json()
        assert on_active["started"] is True and on_active["nonce"] == start["nonce"]
        for key in keys[:2]:
            done = requests.put(old.url + "/v1/sys/generate-root/update", timeout=10,
                                json={"key": key, "nonce": start["nonce"]}).json()
        assert done["complete"] is True
        assert read(old, decode_token(done["encoded_token"], start["otp"])) == "kept"
