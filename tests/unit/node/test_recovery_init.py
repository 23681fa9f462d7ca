"""Recovery keys at init with an auto-seal (Vault's sys/init rules), through the real app.

The seal is tests/support/soft_seal.py (software keys, the PKCS#11 seal's shape); the
node, its storage chain and the HTTP layer are the real ones.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import falcon.testing
import pysequoia
import pytest
from pysequoia import Tsk

from strongroom.config import dev_config
from strongroom.core.bootstrap import make_bootstrapper
from strongroom.node import recovery
from strongroom.node.coordinator import LocalCoordinator, utcnow
from strongroom.physical.chain import build_chain
from strongroom.seal import shamir
from strongroom.seal.base import RECOVERY_CONFIG_PATH, SEAL_CONFIG_PATH, AutoSeal, SealedRootKey
from strongroom.wsgi import build_node
from tests.support.soft_seal import SoftAutoSeal


class AutoNode:
    def __init__(self, seal: SoftAutoSeal | None = None) -> None:
        config = dev_config()
        self.seal = seal or SoftAutoSeal()
        self.storage = build_chain(config)
        self.coordinator = LocalCoordinator(self.storage.top, "inmem",
                                            make_bootstrapper(utcnow), seal=self.seal)
        node = build_node(config, coordinator=self.coordinator, storage=self.storage)
        self.client = falcon.testing.TestClient(node.app)
        self.physical = self.storage.physical

    def init(self, **body: Any) -> falcon.testing.Result:
        return self.client.simulate_put("/v1/sys/init", json=body)


@pytest.fixture
def node() -> AutoNode:
    return AutoNode()


def test_recovery_keys_are_made_split_and_stored_wrapped(node: AutoNode) -> None:
    resp = node.init(recovery_shares=5, recovery_threshold=3)
    assert resp.status_code == 200, resp.text
    body = resp.json
    assert set(body) == {"keys", "keys_base64", "recovery_keys", "recovery_keys_base64",
                         "root_token"}
    assert body["keys"] == [] and body["keys_base64"] == []
    assert len(body["recovery_keys"]) == 5
    shares = [bytes.fromhex(k) for k in body["recovery_keys"]]
    assert [base64.b64decode(k) for k in body["recovery_keys_base64"]] == shares
    assert all(len(s) == 33 for s in shares)
    # Any 3 combine into the key the seal stores; the stored form is not the key.
    key = shamir.combine(shares[1:4])
    stored = SealedRootKey.from_json(node.physical.get(recovery.RECOVERY_KEY_PATH) or b"")
    assert node.seal.unwrap(stored) == key
    assert bytes(key) not in (node.physical.get(recovery.RECOVERY_KEY_PATH) or b"")
    assert json.loads(node.physical.get(RECOVERY_CONFIG_PATH) or b"") == {
        "type": "shamir", "secret_shares": 5, "secret_threshold": 3}
    assert json.loads(node.physical.get(SEAL_CONFIG_PATH) or b"")["secret_shares"] == 1
    # Vault unseals an auto-sealed node right after init: the root token works at once.
    status = node.client.simulate_get("/v1/sys/seal-status").json
    assert (status["type"], status["sealed"], status["t"], status["n"]) == (
        "pkcs11", False, 3, 5)
    assert status["recovery_seal"] is True and status["recovery_seal_type"] == "shamir"
    me = node.client.simulate_get("/v1/auth/token/lookup-self",
                                  headers={"X-Vault-Token": body["root_token"]})
    assert me.status_code == 200


def test_one_recovery_share_is_the_key_itself(node: AutoNode) -> None:
    body = node.init(recovery_shares=1, recovery_threshold=1).json
    (share,) = body["recovery_keys"]
    stored = SealedRootKey.from_json(node.physical.get(recovery.RECOVERY_KEY_PATH) or b"")
    assert node.seal.unwrap(stored).hex() == share


def test_zero_recovery_shares_store_no_key(node: AutoNode) -> None:
    """Vault allows it (no recovery key) and then leaves the keys out of the answer."""
    resp = node.init()
    assert resp.status_code == 200, resp.text
    assert set(resp.json) == {"keys", "keys_base64", "root_token"}
    assert node.physical.get(recovery.RECOVERY_KEY_PATH) is None
    status = node.client.simulate_get("/v1/sys/seal-status").json
    assert (status["sealed"], status["t"], status["n"]) == (False, 0, 0)


def test_recovery_pgp_keys_encrypt_each_share(node: AutoNode) -> None:
    holders = [Tsk.generate(f"h{i} <h{i}@strongroom.test>") for i in range(3)]
    pubs = [base64.b64encode(bytes(h.extract_certificate())).decode() for h in holders]
    body = node.init(recovery_shares=3, recovery_threshold=2, recovery_pgp_keys=pubs).json
    plain = []
    for holder, enc in zip(holders, body["recovery_keys_base64"], strict=True):
        out = pysequoia.decrypt(base64.b64decode(enc), decryptor=holder.decryptor()).bytes
        assert out is not None
        plain.append(bytes.fromhex(out.decode()))
    stored = SealedRootKey.from_json(node.physical.get(recovery.RECOVERY_KEY_PATH) or b"")
    assert node.seal.unwrap(stored) == shamir.combine(plain[:2])


@pytest.mark.parametrize(("body", "message"), [
    ({"secret_shares": 5, "secret_threshold": 3},
     "parameters secret_shares,secret_threshold not applicable to seal type pkcs11"),
    ({"secret_shares": 1, "recovery_shares": 1, "recovery_threshold": 1},
     "parameters secret_shares not applicable to seal type pkcs11"),
    ({"pgp_keys": ["x"]}, "parameters pgp_keys not applicable to seal type pkcs11"),
    ({"recovery_shares": 3, "recovery_threshold": 4},
     "invalid recovery configuration: threshold cannot be larger than shares"),
    ({"recovery_shares": 3, "recovery_threshold": 1},
     "invalid recovery configuration: threshold must be greater than one for multiple "
     "shares"),
    ({"recovery_shares": 256, "recovery_threshold": 3},
     "invalid recovery configuration: shares must be less than 256"),
    ({"recovery_shares": 3, "recovery_threshold": 2, "recovery_pgp_keys": ["a", "b"]},
     "invalid recovery configuration: count mismatch between number of provided PGP keys "
     "and number of shares"),
    ({"recovery_shares": "3"}, "failed to decode JSON input: json: cannot unmarshal string "
     "into Go struct field InitRequest.recovery_shares of type int"),
    ({"recovery_pgp_keys": "x"}, "'recovery_pgp_keys' must be a list of base64-encoded "
     "public keys"),
])
def test_bad_init_requests_are_400_and_change_nothing(node: AutoNode, body: dict[str, Any],
                                                      message: str) -> None:
    resp = node.init(**body)
    assert resp.status_code == 400
    assert resp.json == {"errors": [message]}
    assert node.client.simulate_get("/v1/sys/init").json == {"initialized": False}
    assert node.physical.get(recovery.RECOVERY_KEY_PATH) is None


def test_a_bad_recovery_pgp_key_is_refused_before_anything_is_written(node: AutoNode) -> None:
    resp = node.init(recovery_shares=2, recovery_threshold=2,
                     recovery_pgp_keys=["not base64!", "x"])
    assert resp.status_code == 400
    assert resp.json["errors"][0].startswith(
        "invalid recovery configuration: error decoding given PGP key: recovery_pgp_keys[0]")
    assert node.client.simulate_get("/v1/sys/init").json == {"initialized": False}


def test_a_second_init_is_refused(node: AutoNode) -> None:
    assert node.init(recovery_shares=1, recovery_threshold=1).status_code == 200
    resp = node.init(recovery_shares=1, recovery_threshold=1)
    assert resp.status_code == 400 and resp.json == {"errors": ["Vault is already initialized"]}


def test_a_restarted_node_reports_the_recovery_config_while_sealed(node: AutoNode) -> None:
    node.init(recovery_shares=4, recovery_threshold=2)
    again = LocalCoordinator(node.storage.top, "inmem", make_bootstrapper(utcnow),
                             seal=node.seal)
    status = again.seal_status()
    assert (status["sealed"], status["t"], status["n"], status["recovery_seal"]) == (
        True, 2, 4, True)
    assert again.auto_unseal() is True


@pytest.mark.parametrize("body", [{"recovery_shares": 3, "recovery_threshold": 2},
                                  {"recovery_threshold": 2}, {"recovery_pgp_keys": ["k"]}])
def test_a_shamir_node_refuses_recovery_fields(body: dict[str, Any]) -> None:
    client = falcon.testing.TestClient(build_node(dev_config()).app)
    resp = client.simulate_put("/v1/sys/init", json={"secret_shares": 1,
                                                     "secret_threshold": 1, **body})
    assert resp.status_code == 400
    named = ",".join(k for k in ("recovery_shares", "recovery_threshold",
                                 "recovery_pgp_keys") if k in body)
    assert resp.json == {"errors": [f"parameters {named} not applicable to seal type shamir"]}
    status = client.simulate_get("/v1/sys/seal-status").json
    assert status["recovery_seal"] is False and "recovery_seal_type" not in status


def test_the_soft_seal_is_an_auto_seal() -> None:
    seal: AutoSeal = SoftAutoSeal()  # mypy checks the contract here
    assert seal.auto_unseal is True
