"""Rekey of a Shamir node (sys/rekey/*) through the real app, coordinator and storage.

Expected answers are OpenBao 2.7.2's, recorded with the same requests (see
tests/compat/test_rekey_vs_bao.py, which runs the scenario against both).
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import falcon.testing
import pysequoia
import pytest
from pysequoia import Tsk

from strongroom.config import dev_config
from strongroom.node.root_key import BARRIER_BACKUP_PATH
from strongroom.seal.base import SEAL_CONFIG_PATH
from strongroom.wsgi import Node, build_node

UUID_LEN = 36


class ShamirNode:
    def __init__(self, shares: int = 3, threshold: int = 2) -> None:
        self.node: Node = build_node(dev_config())
        self.client = falcon.testing.TestClient(self.node.app)
        init = self.put("sys/init", secret_shares=shares, secret_threshold=threshold).json
        self.keys: list[str] = init["keys"]
        self.headers = {"X-Vault-Token": init["root_token"]}
        self.unseal(self.keys[:threshold])
        kv = self.client.simulate_put("/v1/secret/data/before", headers=self.headers,
                                      json={"data": {"v": "kept"}})
        if kv.status_code == 404:  # no KV mount outside dev mode: mount one
            self.client.simulate_post("/v1/sys/mounts/secret", headers=self.headers,
                                      json={"type": "kv", "options": {"version": "2"}})
            kv = self.client.simulate_put("/v1/secret/data/before", headers=self.headers,
                                          json={"data": {"v": "kept"}})
        assert kv.status_code == 200, kv.text

    def put(self, path: str, **body: Any) -> falcon.testing.Result:
        return self.client.simulate_put("/v1/" + path, json=body)

    def get(self, path: str) -> falcon.testing.Result:
        return self.client.simulate_get("/v1/" + path)

    def unseal(self, keys: list[str]) -> dict[str, Any]:
        self.put("sys/unseal", reset=True)
        status: dict[str, Any] = {}
        for key in keys:
            resp = self.put("sys/unseal", key=key)
            status = resp.json
            if resp.status_code != 200:
                return status
        return status

    def seal(self) -> None:
        assert self.client.simulate_put("/v1/sys/seal", headers=self.headers).status_code == 204

    def start(self, **body: Any) -> str:
        resp = self.put("sys/rekey/init", **body)
        assert resp.status_code == 200, resp.text
        return str(resp.json["nonce"])

    def secret(self) -> Any:
        resp = self.client.simulate_get("/v1/secret/data/before", headers=self.headers)
        return resp.json["data"]["data"] if resp.status_code == 200 else resp.status_code


@pytest.fixture
def node() -> ShamirNode:
    return ShamirNode()


def idle(required: int) -> dict[str, Any]:
    return {"nonce": "", "started": False, "t": 0, "n": 0, "progress": 0,
            "required": required, "pgp_fingerprints": None, "backup": False,
            "verification_required": False}


def test_rekey_makes_new_shares_and_old_ones_stop_working(node: ShamirNode) -> None:
    assert node.get("sys/rekey/init").json == idle(2)
    nonce = node.start(secret_shares=4, secret_threshold=3)
    first = node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    assert first.json == {**idle(2), "nonce": nonce, "started": True, "t": 3, "n": 4,
                          "progress": 1}
    done = node.put("sys/rekey/update", key=node.keys[1], nonce=nonce)
    assert done.status_code == 200
    body = done.json
    assert set(body) == {"nonce", "complete", "keys", "keys_base64", "pgp_fingerprints",
                         "backup", "verification_required"}
    assert (body["nonce"], body["complete"], body["backup"], body["pgp_fingerprints"],
            body["verification_required"]) == (nonce, True, False, None, False)
    new = body["keys"]
    assert len(new) == 4 and all(len(k) == 66 for k in new)
    assert [base64.b64decode(b).hex() for b in body["keys_base64"]] == new
    assert node.get("sys/rekey/init").json == idle(3)
    assert json.loads(node.node.physical.get(SEAL_CONFIG_PATH) or b"") == {
        "type": "shamir", "secret_shares": 4, "secret_threshold": 3}
    # Still unsealed and serving; after a seal only the new shares open it.
    assert node.secret() == {"v": "kept"}
    node.seal()
    assert node.unseal(node.keys[:3]) == {"errors": ["unseal failed, invalid key"]}
    status = node.unseal(new[1:4])
    assert status["sealed"] is False and (status["t"], status["n"]) == (3, 4)
    assert node.secret() == {"v": "kept"}


def test_threshold_one_hands_out_the_root_key_itself(node: ShamirNode) -> None:
    nonce = node.start(secret_shares=1, secret_threshold=1)
    node.put("sys/rekey/update", key=node.keys[2], nonce=nonce)
    body = node.put("sys/rekey/update", key=node.keys[0], nonce=nonce).json
    (only,) = body["keys"]
    assert len(only) == 64  # 32 bytes, no Shamir x-coordinate
    node.seal()
    assert node.unseal([only])["sealed"] is False
    assert node.secret() == {"v": "kept"}
    # And a node at threshold 1 rekeys with that single key.
    nonce = node.start(secret_shares=2, secret_threshold=2)
    assert node.put("sys/rekey/update", key=only, nonce=nonce).json["complete"] is True


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"secret_shares": 3, "secret_threshold": 4}, 500,
     "invalid rekey seal configuration: threshold cannot be larger than shares"),
    ({"secret_shares": 3, "secret_threshold": 1}, 500,
     "invalid rekey seal configuration: threshold must be greater than one for multiple "
     "shares"),
    ({}, 500, "invalid rekey seal configuration: shares must be at least one"),
    ({"secret_shares": 3, "secret_threshold": 2, "backup": True}, 400,
     "cannot request a backup of the new keys without providing PGP keys for encryption"),
    ({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["a"]}, 400,
     "incorrect number of PGP keys for rekey"),
    ({"secret_shares": "3"}, 400, "failed to decode JSON input: json: cannot unmarshal "
     "string into Go struct field RekeyRequest.secret_shares of type int"),
    ({"backup": "yes"}, 400, "failed to decode JSON input: json: cannot unmarshal string "
     "into Go struct field RekeyRequest.backup of type bool"),
    ({"pgp_keys": ["x", 1]}, 400, "failed to decode JSON input: json: cannot unmarshal "
     "number 1 into Go struct field RekeyRequest.pgp_keys of type string"),
    ({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["A" * (200 * 1024)] * 3},
     400, "the PGP keys exceed 512 KiB in total; export them without third-party "
     "signatures (gpg --export-options export-minimal)"),
])
def test_bad_init_requests(node: ShamirNode, body: dict[str, Any], status: int,
                           message: str) -> None:
    resp = node.put("sys/rekey/init", **body)
    assert (resp.status_code, resp.json) == (status, {"errors": [message]})
    assert node.get("sys/rekey/init").json == idle(2)


def test_nonce_duplicates_and_cancel(node: ShamirNode) -> None:
    assert node.put("sys/rekey/update", key=node.keys[0], nonce="x").json == {
        "errors": ["no barrier rekey in progress"]}
    nonce = node.start(secret_shares=4, secret_threshold=3)
    again = node.put("sys/rekey/init", secret_shares=4, secret_threshold=3)
    assert (again.status_code, again.json) == (400, {"errors": ["rekey already in progress"]})
    bad = node.put("sys/rekey/update", key=node.keys[0], nonce="nope")
    assert (bad.status_code, bad.json["errors"]) == (400, [
        f'incorrect nonce supplied; nonce for this rekey operation is "{nonce}"'])
    assert node.put("sys/rekey/update", key=node.keys[0], nonce=nonce).json["progress"] == 1
    dup = node.put("sys/rekey/update", key=base64.b64encode(
        bytes.fromhex(node.keys[0])).decode(), nonce=nonce)  # the same share, in base64
    assert (dup.status_code, dup.json) == (400, {"errors": [
        "given key has already been provided during this generation operation"]})
    assert node.get("sys/rekey/init").json["progress"] == 1
    cancel = node.client.simulate_delete("/v1/sys/rekey/init")
    assert cancel.status_code == 204
    assert node.get("sys/rekey/init").json == idle(2)
    assert node.client.simulate_delete("/v1/sys/rekey/init").status_code == 204


@pytest.mark.parametrize(("key", "message"), [
    (None, "'key' must be specified in request body as JSON"),
    ("", "'key' must be specified in request body as JSON"),
    ("zz", "'key' must be a valid hex or base64 string"),
    ("abcd", "key is shorter than minimum 16 bytes"),
    ("aa" * 34, "key is longer than maximum 33 bytes"),
])
def test_malformed_keys(node: ShamirNode, key: str | None, message: str) -> None:
    nonce = node.start(secret_shares=2, secret_threshold=2)
    resp = node.put("sys/rekey/update", key=key, nonce=nonce)
    assert (resp.status_code, resp.json) == (400, {"errors": [message]})


def test_wrong_shares_change_nothing(node: ShamirNode) -> None:
    nonce = node.start(secret_shares=4, secret_threshold=3)
    node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    bogus_x = "02" if node.keys[0][-2:] != "02" else "03"  # not keys[0]'s x-coordinate
    wrong = node.put("sys/rekey/update", key="aa" * 32 + bogus_x, nonce=nonce)
    assert wrong.status_code == 500
    assert wrong.json["errors"][0].startswith("failed to read root key: invalid key")
    # The round stays, its progress is gone (as Vault); the old shares still work.
    status = node.get("sys/rekey/init").json
    assert (status["started"], status["nonce"], status["progress"]) == (True, nonce, 0)
    node.seal()
    assert node.unseal(node.keys[1:3])["sealed"] is False


def test_verification_must_succeed_before_the_change(node: ShamirNode) -> None:
    nonce = node.start(secret_shares=3, secret_threshold=2, require_verification=True)
    node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    body = node.put("sys/rekey/update", key=node.keys[2], nonce=nonce).json
    assert body["verification_required"] is True and len(body["verification_nonce"]) == UUID_LEN
    vnonce = body["verification_nonce"]
    assert len(body["keys"]) == 3
    status = node.get("sys/rekey/init").json
    assert status["verification_nonce"] == vnonce and status["progress"] == 0
    late = node.put("sys/rekey/update", key=node.keys[1], nonce=nonce)
    assert late.json == {"errors": [
        "rekey operation already finished; verification must be performed; nonce for the "
        f'verification operation is "{vnonce}"']}
    # Not yet in effect: the old shares still unseal.
    node.seal()
    assert node.unseal(node.keys[:2])["sealed"] is False
    assert node.get("sys/rekey/verify").json == {"errors": ["no rekey configuration found"]}


def test_verification_mismatch_restart_and_success(node: ShamirNode) -> None:
    nonce = node.start(secret_shares=3, secret_threshold=2, require_verification=True)
    node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    body = node.put("sys/rekey/update", key=node.keys[1], nonce=nonce).json
    new, vnonce = body["keys"], body["verification_nonce"]
    assert node.get("sys/rekey/verify").json == {"nonce": vnonce, "started": True, "t": 2,
                                                 "n": 3, "progress": 0}
    bad_nonce = node.put("sys/rekey/verify", key=new[0], nonce="x")
    assert bad_nonce.json == {"errors": [
        f'incorrect nonce supplied; nonce for this verify operation is "{vnonce}"']}
    assert node.put("sys/rekey/verify", key=new[0], nonce=vnonce).json["progress"] == 1
    dup = node.put("sys/rekey/verify", key=new[0], nonce=vnonce)
    assert dup.json == {"errors": [
        "given key has already been provided during this verify operation"]}
    wrong = node.put("sys/rekey/verify", key=node.keys[2], nonce=vnonce)
    assert (wrong.status_code, wrong.json) == (400, {"errors": [
        "rekey verification failed; incorrect key shares supplied"]})
    rotated = node.get("sys/rekey/verify").json
    assert rotated["nonce"] != vnonce and rotated["progress"] == 0
    restarted = node.client.simulate_delete("/v1/sys/rekey/verify").json
    assert restarted["nonce"] not in (vnonce, rotated["nonce"]) and restarted["started"]
    vnonce = restarted["nonce"]
    assert node.put("sys/rekey/verify", key=new[2], nonce=vnonce).json["progress"] == 1
    done = node.put("sys/rekey/verify", key=new[1], nonce=vnonce)
    assert done.json == {"nonce": vnonce, "complete": True}
    assert node.get("sys/rekey/init").json == idle(2)
    node.seal()
    assert node.unseal(node.keys[:2]) == {"errors": ["unseal failed, invalid key"]}
    assert node.unseal(new[:2])["sealed"] is False
    assert node.secret() == {"v": "kept"}


def test_pgp_encrypted_shares_and_their_backup(node: ShamirNode) -> None:
    holders = [Tsk.generate(f"h{i} <h{i}@strongroom.test>") for i in range(2)]
    certs = [h.extract_certificate() for h in holders]
    pubs = [base64.b64encode(bytes(c)).decode() for c in certs]
    fps = [c.fingerprint for c in certs]
    nonce = node.start(secret_shares=2, secret_threshold=2, pgp_keys=pubs, backup=True)
    status = node.get("sys/rekey/init").json
    assert (status["pgp_fingerprints"], status["backup"]) == (fps, True)
    node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    body = node.put("sys/rekey/update", key=node.keys[1], nonce=nonce).json
    assert body["pgp_fingerprints"] == fps and body["backup"] is True
    plain = []
    for holder, enc in zip(holders, body["keys_base64"], strict=True):
        out = pysequoia.decrypt(base64.b64decode(enc), decryptor=holder.decryptor()).bytes
        assert out is not None
        plain.append(out.decode())
    # The backup needs a token; it holds the same encrypted shares.
    assert node.get("sys/rekey/backup").status_code == 403
    backup = node.client.simulate_get("/v1/sys/rekey/backup", headers=node.headers)
    assert backup.status_code == 200
    data = backup.json["data"]
    assert data["nonce"] == nonce
    assert data["keys"] == {fps[0]: [body["keys"][0]], fps[1]: [body["keys"][1]]}
    assert data["keys_base64"] == {fps[0]: [body["keys_base64"][0]],
                                   fps[1]: [body["keys_base64"][1]]}
    assert node.node.physical.get(BARRIER_BACKUP_PATH) is not None
    deleted = node.client.simulate_delete("/v1/sys/rekey/backup", headers=node.headers)
    assert deleted.status_code == 204
    gone = node.client.simulate_get("/v1/sys/rekey/backup", headers=node.headers)
    assert (gone.status_code, gone.json) == (400, {"errors": ["no backed-up keys found"]})
    node.seal()
    assert node.unseal(plain)["sealed"] is False


def test_a_second_concurrent_init_is_refused(node: ShamirNode) -> None:
    coordinator = node.node.coordinator
    results: list[str] = []

    def start() -> None:
        try:
            coordinator.rekey_init("barrier", secret_shares=2, secret_threshold=2)
            results.append("started")
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["rekey already in progress"] * 7 + ["started"]


def test_sealed_and_shamir_recovery_refusals(node: ShamirNode) -> None:
    for path in ("sys/rekey-recovery-key/init", "sys/rekey-recovery-key/verify"):
        resp = node.get(path)
        assert (resp.status_code, resp.json) == (400, {"errors": [
            "recovery rekeying not supported"]})
    nonce = node.start(secret_shares=2, secret_threshold=2)
    node.put("sys/rekey/update", key=node.keys[0], nonce=nonce)
    node.seal()
    for resp in (node.get("sys/rekey/init"), node.put("sys/rekey/init", secret_shares=1,
                                                      secret_threshold=1),
                 node.put("sys/rekey/update", key=node.keys[1], nonce=nonce)):
        assert (resp.status_code, resp.json) == (503, {"errors": ["Vault is sealed"]})
    # Sealing dropped the round and its shares.
    node.unseal(node.keys[:2])
    assert node.get("sys/rekey/init").json == idle(2)


def test_rotate_root_needs_sudo_and_is_refused_on_shamir(node: ShamirNode) -> None:
    assert node.client.simulate_put("/v1/sys/rotate/root").status_code == 403
    resp = node.client.simulate_put("/v1/sys/rotate/root", headers=node.headers)
    assert resp.status_code == 400
    assert "sys/rekey" in resp.json["errors"][0]


def test_a_shamir_node_whose_root_key_changed_elsewhere_refuses_to_rewrite_it() -> None:
    """Two owners on one storage (an HA pair): after a rekey on one, the other must not
    re-encrypt the keyring under the root key it unsealed with."""
    from strongroom.core.bootstrap import make_bootstrapper
    from strongroom.node.coordinator import LocalCoordinator, utcnow
    from strongroom.physical.inmem import InmemBackend

    physical = InmemBackend()
    first = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    keys = first.initialize(1, 1)["keys"]
    first.unseal(keys[0])
    second = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    second.unseal(keys[0])
    nonce = first.rekey_init("barrier", secret_shares=1, secret_threshold=1)["nonce"]
    (new,) = first.rekey_update(keys[0], nonce)["keys"]
    with pytest.raises(Exception, match="root key was changed by another node"):
        second.rotate()
    with pytest.raises(Exception, match="root key was changed by another node"):
        second.rekey_update(new, second.rekey_init("barrier", secret_shares=1,
                                                   secret_threshold=1)["nonce"])
    first.rotate()  # the node that rekeyed goes on; the new key opens the result
    third = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    assert third.unseal(new)["sealed"] is False


def test_a_standby_becoming_active_reloads_the_terms_the_old_active_added() -> None:
    """HA: sys/rotate on the active adds a term; the standby that takes over serves with
    it (entries written under it stay readable) and rotates on top of it."""
    from strongroom.core.bootstrap import make_bootstrapper
    from strongroom.ha.state import HAStatus
    from strongroom.node.coordinator import LocalCoordinator, utcnow
    from strongroom.physical.inmem import InmemBackend

    physical = InmemBackend()
    first = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    keys = first.initialize(1, 1)["keys"]
    first.unseal(keys[0])
    second = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    second.unseal(keys[0])
    first.rotate()
    first._barrier.put("sys/written-under-term-2", b"v")
    second._ha_status = HAStatus(enabled=True, active=True)  # as the HA manager sets it
    second._on_active()
    snap = second.snapshot()
    assert snap.keyring is not None and snap.keyring.active_term == 2
    assert second._barrier.get("sys/written-under-term-2") == b"v"
    second.rotate()
    third = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    third.unseal(keys[0])
    assert third.snapshot().keyring.active_term == 3  # type: ignore[union-attr]


def test_rotate_on_a_node_with_an_older_keyring_keeps_the_newer_terms() -> None:
    from strongroom.core.bootstrap import make_bootstrapper
    from strongroom.node.coordinator import LocalCoordinator, utcnow
    from strongroom.physical.inmem import InmemBackend

    physical = InmemBackend()
    first = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    keys = first.initialize(1, 1)["keys"]
    first.unseal(keys[0])
    second = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    second.unseal(keys[0])
    first.rotate()
    first._barrier.put("sys/written-under-term-2", b"v")
    second.rotate()  # before the fix: a new term 2 persisted over the first's term 2
    third = LocalCoordinator(physical, "inmem", make_bootstrapper(utcnow))
    third.unseal(keys[0])
    assert third.snapshot().keyring.active_term == 3  # type: ignore[union-attr]
    assert third._barrier.get("sys/written-under-term-2") == b"v"
