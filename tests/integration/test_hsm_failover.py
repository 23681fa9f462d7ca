"""HA failover with the pkcs11 seal: two nodes on a real 3-server Consul cluster, each
with its own copy of the SoftHSM token material (as a site distributes it; the same HSM
key on every node). Nobody ever types a key: both nodes unseal themselves, and when the
active node dies the standby takes over unsealed and serves the secrets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.support import requires
from tests.support.consul import ConsulCluster, consul_binary, consul_cluster
from tests.support.ha import NODE_CONFIG, health, poll
from tests.support.servers import ServerProcess, late_bound_port, strongroom_server
from tests.support.softhsm import SoftHsm, make_softhsm

pytestmark = pytest.mark.consul

PIN = "ha-node-pin-5150"
SEAL = """
seal "pkcs11" {{
  lib          = "{lib}"
  token_label  = "strongroom"
  key_label    = "strongroom-root"
  generate_key = "true"
}}
"""


@pytest.fixture(scope="module")
def consul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulCluster]:
    if consul_binary() is None:
        requires.missing("consul", "scripts/install-consul.sh")
    with consul_cluster(tmp_path_factory.mktemp("consul")) as cluster:
        yield cluster


def _start(stack: ExitStack, workdir: Path, consul: ConsulCluster, index: int, token: str,
           hsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = NODE_CONFIG.format(consul=consul.host_ports[index], token=token,
                                cluster_port=late_bound_port())
    config += SEAL.format(lib=hsm.lib).replace("{", "{{").replace("}", "}}")
    # The child inherits this node's token directory and PIN (read at its start).
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    return stack.enter_context(strongroom_server(workdir, config))


def _sealed(node: ServerProcess) -> bool:
    return bool(requests.get(node.url + "/v1/sys/seal-status", timeout=5).json()["sealed"])


def test_the_standby_taking_over_is_unsealed_with_no_operator(
        consul: ConsulCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_HSM_PIN", PIN)
    monkeypatch.setenv("STRONGROOM_AUTO_UNSEAL_INTERVAL", "0.3")
    prefix = "strongroom/"
    token = consul.make_token(prefix)
    consul.api("DELETE", f"/v1/kv/{prefix}?recurse=true")
    first_hsm = make_softhsm(tmp_path / "hsm-node0")
    first_hsm.init_token("strongroom", pin=PIN)
    with ExitStack() as stack:
        first = _start(stack, tmp_path / "node0", consul, 0, token, first_hsm, monkeypatch)
        init = requests.put(first.url + "/v1/sys/init", timeout=30,
                            json={"recovery_shares": 1, "recovery_threshold": 1})
        assert init.status_code == 200, init.text
        root = init.json()["root_token"]
        poll(lambda: health(first) == 200, 30, "node 0 unsealed and active")
        headers = {"X-Vault-Token": root}
        resp = requests.post(first.url + "/v1/sys/mounts/secret", json={"type": "kv-v2"},
                             headers=headers, timeout=10)
        assert resp.status_code == 204, resp.text
        resp = requests.post(first.url + "/v1/secret/data/app", json={"data": {"v": "1"}},
                             headers=headers, timeout=10)
        assert resp.status_code == 200, resp.text

        # Node 1 gets a copy of the token material (the key was generated at init).
        second_hsm = make_softhsm(tmp_path / "hsm-node1")
        shutil.rmtree(second_hsm.tokendir)
        shutil.copytree(first_hsm.tokendir, second_hsm.tokendir)
        second = _start(stack, tmp_path / "node1", consul, 1, token, second_hsm, monkeypatch)
        poll(lambda: health(second) == 429, 30, "node 1 unsealed as a standby")

        first.stop()
        poll(lambda: health(second) == 200, 40, "node 1 to take over")
        assert _sealed(second) is False
        read = requests.get(second.url + "/v1/secret/data/app", headers=headers, timeout=10)
        assert read.status_code == 200 and read.json()["data"]["data"] == {"v": "1"}
        assert "event=auto_unseal" not in (second.workdir / "server.log").read_text()
