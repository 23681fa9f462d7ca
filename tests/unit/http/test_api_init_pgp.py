"""PUT sys/init with pgp_keys / root_token_pgp_key through the real app and node."""

from __future__ import annotations

import base64
from typing import Any

import falcon.testing
import pysequoia
import pytest
from pysequoia import CipherSuite, Tsk

from strongroom.config import dev_config
from strongroom.wsgi import build_node


@pytest.fixture(scope="module")
def holders() -> list[Tsk]:
    return [Tsk.generate("alice <alice@strongroom.test>"),
            Tsk.generate("bob <bob@strongroom.test>", cipher_suite=CipherSuite.RSA2k),
            Tsk.generate("carol <carol@strongroom.test>", cipher_suite=CipherSuite.P256),
            Tsk.generate("root <root@strongroom.test>")]


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(build_node(dev_config()).app)


def pub(tsk: Tsk) -> str:
    return base64.b64encode(bytes(tsk.extract_certificate())).decode()


def decrypt(tsk: Tsk, message_b64: str) -> str:
    plain = pysequoia.decrypt(base64.b64decode(message_b64), decryptor=tsk.decryptor()).bytes
    assert plain is not None
    return plain.decode()


def init(client: falcon.testing.TestClient, **body: Any) -> falcon.testing.Result:
    return client.simulate_put("/v1/sys/init", json={"secret_shares": 3,
                                                     "secret_threshold": 2, **body})


def test_encrypted_shares_and_root_token(client: falcon.testing.TestClient,
                                         holders: list[Tsk]) -> None:
    resp = init(client, pgp_keys=[pub(h) for h in holders[:3]],
                root_token_pgp_key=pub(holders[3]))
    assert resp.status_code == 200
    body = resp.json
    assert set(body) == {"keys", "keys_base64", "root_token"}
    assert len(body["keys"]) == len(body["keys_base64"]) == 3
    for hex_key, b64_key in zip(body["keys"], body["keys_base64"], strict=True):
        # keys and keys_base64 are two encodings of the same binary OpenPGP message.
        assert bytes.fromhex(hex_key) == base64.b64decode(b64_key)
    shares = [decrypt(h, k) for h, k in zip(holders[:3], body["keys_base64"], strict=True)]
    for share in shares:
        assert len(share) == 66 and bytes.fromhex(share)  # hex of 32 key bytes + x
    token = decrypt(holders[3], body["root_token"])
    assert token.startswith("hvs.")

    status = client.simulate_put("/v1/sys/unseal", json={"key": shares[0]}).json
    assert (status["sealed"], status["progress"]) == (True, 1)
    status = client.simulate_put("/v1/sys/unseal", json={"key": shares[2]}).json
    assert status["sealed"] is False
    me = client.simulate_get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert me.status_code == 200 and me.json["data"]["policies"] == ["root"]


def test_encrypted_keys_are_not_unseal_keys(client: falcon.testing.TestClient,
                                            holders: list[Tsk]) -> None:
    body = init(client, pgp_keys=[pub(h) for h in holders[:3]]).json
    resp = client.simulate_put("/v1/sys/unseal", json={"key": body["keys"][0]})
    assert resp.status_code == 400
    assert client.simulate_get("/v1/sys/seal-status").json["progress"] == 0


def test_single_share_is_encrypted_too(client: falcon.testing.TestClient,
                                       holders: list[Tsk]) -> None:
    body = init(client, secret_shares=1, secret_threshold=1, pgp_keys=[pub(holders[0])]).json
    key = decrypt(holders[0], body["keys_base64"][0])
    assert len(key) == 64  # the whole root key, hex
    assert client.simulate_put("/v1/sys/unseal", json={"key": key}).json["sealed"] is False


def test_root_token_key_alone(client: falcon.testing.TestClient, holders: list[Tsk]) -> None:
    body = init(client, root_token_pgp_key=pub(holders[3])).json
    assert all(len(k) == 66 for k in body["keys"])  # plain shares
    for key in body["keys"][:2]:
        client.simulate_put("/v1/sys/unseal", json={"key": key})
    token = decrypt(holders[3], body["root_token"])
    me = client.simulate_get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert me.status_code == 200


@pytest.mark.parametrize("empty", [{"pgp_keys": None}, {"pgp_keys": []},
                                   {"root_token_pgp_key": ""}, {"root_token_pgp_key": None},
                                   {"recovery_pgp_keys": []}])
def test_empty_fields_mean_no_encryption(client: falcon.testing.TestClient,
                                         empty: dict[str, Any]) -> None:
    body = init(client, **empty).json
    assert all(len(k) == 66 for k in body["keys"]) and body["root_token"].startswith("hvs.")


def _bad_requests(holders: list[Tsk]) -> list[tuple[dict[str, Any], str]]:
    good = [pub(h) for h in holders[:3]]
    return [
        ({"pgp_keys": good[:2]}, "invalid seal configuration: count mismatch between number "
                                 "of provided PGP keys and number of shares"),
        ({"pgp_keys": [good[0], "keybase:jefferai", good[2]]}, "keybase"),
        ({"pgp_keys": [good[0], good[1], "***"]},
         "invalid seal configuration: error decoding given PGP key: pgp_keys[2]"),
        ({"pgp_keys": [good[0], base64.b64encode(bytes(holders[1])).decode(), good[2]]},
         "secret key material"),
        ({"pgp_keys": [good[0], good[1], base64.b64encode(b"no key here").decode()]},
         "is not an OpenPGP key"),
        ({"pgp_keys": good[0]}, "'pgp_keys' must be a list"),
        ({"pgp_keys": [good[0], 7, good[2]]}, "'pgp_keys' must be a list"),
        ({"root_token_pgp_key": ["x"]}, "'root_token_pgp_key' must be a base64"),
        ({"root_token_pgp_key": "keybase:hashicorp"}, "root_token_pgp_key: keybase"),
        ({"pgp_keys": good, "root_token_pgp_key": "%%"},
         "error decoding given PGP key: root_token_pgp_key"),
        ({"recovery_pgp_keys": good},
         "parameters recovery_pgp_keys not applicable to seal type shamir"),
        ({"pgp_keys": ["A" * (200 * 1024)] * 3}, "exceed 512 KiB"),
        ({"secret_threshold": 4, "pgp_keys": good},
         "invalid seal configuration: threshold cannot be larger than shares"),
    ]


def test_bad_keys_are_400_and_leave_the_node_uninitialized(
        client: falcon.testing.TestClient, holders: list[Tsk]) -> None:
    for body, expected in _bad_requests(holders):
        resp = init(client, **body)
        assert resp.status_code == 400, (body, resp.json)
        assert set(resp.json) == {"errors"} and len(resp.json["errors"]) == 1
        assert expected in resp.json["errors"][0], resp.json
        assert client.simulate_get("/v1/sys/init").json == {"initialized": False}
    # Nothing was half-written: a normal init still works.
    assert init(client).status_code == 200


def test_already_initialized_is_reported_after_key_checks(
        client: falcon.testing.TestClient, holders: list[Tsk]) -> None:
    assert init(client).status_code == 200
    resp = init(client, pgp_keys=[pub(h) for h in holders[:3]])
    assert (resp.status_code, resp.json) == (400, {"errors": ["Vault is already initialized"]})
