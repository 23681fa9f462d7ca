"""The HTTP edge against an in-process node: Vault's shapes, codes and bad input."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest


def init_unseal(client: falcon.testing.TestClient) -> dict[str, Any]:
    keys = client.simulate_put(
        "/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2}
    ).json
    for key in keys["keys"][:2]:
        client.simulate_put("/v1/sys/unseal", json={"key": key})
    return keys


def test_uninitialized_endpoints(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/v1/sys/init").json == {"initialized": False}
    health = client.simulate_get("/v1/sys/health")
    assert health.status_code == 501 and health.json["initialized"] is False
    status = client.simulate_get("/v1/sys/seal-status").json
    assert status["initialized"] is False and status["sealed"] is True
    assert client.simulate_get("/v1/secret/x").status_code == 503


def test_health_codes_and_overrides(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/v1/sys/health", params={"uninitcode": "200"}).status_code == 200
    client.simulate_put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert client.simulate_get("/v1/sys/health").status_code == 503
    assert client.simulate_get("/v1/sys/health", params={"sealedcode": "299"}).status_code == 299
    head = client.simulate_head("/v1/sys/health")
    assert head.status_code == 503 and head.content == b""
    bad = client.simulate_get("/v1/sys/health", params={"activecode": "abc"})
    assert bad.status_code == 400 and "errors" in bad.json


def test_sealed_server_refuses_logical_requests(client: falcon.testing.TestClient) -> None:
    keys = client.simulate_put(
        "/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2}
    ).json
    resp = client.simulate_get("/v1/sys/key-status", headers={"X-Vault-Token": keys["root_token"]})
    assert resp.status_code == 503 and resp.json == {"errors": ["Vault is sealed"]}
    assert resp.headers["content-type"] == "application/json"


def test_full_cycle_rotate_and_seal(client: falcon.testing.TestClient) -> None:
    keys = init_unseal(client)
    token = {"X-Vault-Token": keys["root_token"]}
    assert client.simulate_get("/v1/sys/health").status_code == 200
    ks = client.simulate_get("/v1/sys/key-status", headers=token)
    assert ks.status_code == 200 and ks.json["data"]["term"] == 1
    for key in ("request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info",
                "warnings", "auth", "mount_type"):
        assert key in ks.json
    assert client.simulate_put("/v1/sys/rotate", headers=token).status_code == 204
    assert client.simulate_get("/v1/sys/key-status", headers=token).json["data"]["term"] == 2
    bearer = {"Authorization": f"Bearer {keys['root_token']}"}
    assert client.simulate_put("/v1/sys/seal", headers=bearer).status_code == 204
    assert client.simulate_get("/v1/sys/seal-status").json["sealed"] is True


def test_permission_and_routing_errors(client: falcon.testing.TestClient) -> None:
    keys = init_unseal(client)
    token = {"X-Vault-Token": keys["root_token"]}
    assert client.simulate_get("/v1/sys/key-status").status_code == 403
    denied = client.simulate_get("/v1/sys/key-status", headers={"X-Vault-Token": "nope"})
    assert denied.status_code == 403 and denied.json == {"errors": ["permission denied"]}
    missing = client.simulate_get("/v1/nope/x", headers=token)
    assert missing.status_code == 404
    assert missing.json == {"errors": ['no handler for route "nope/x". route entry not found.']}
    assert client.simulate_put("/v1/sys/seal", headers={"X-Vault-Token": "nope"}).status_code == 403
    assert client.simulate_get("/v1/sys/seal-status").json["sealed"] is False
    assert client.simulate_get("/elsewhere").status_code == 404


@pytest.mark.parametrize(
    "body", [b"{bad", b"[1,2]", b'"string"', b"\xff\xfe"],
)
def test_malformed_json_is_400(client: falcon.testing.TestClient, body: bytes) -> None:
    resp = client.simulate_put("/v1/sys/init", body=body)
    assert resp.status_code == 400 and resp.json["errors"]
    assert client.simulate_get("/v1/sys/init").json == {"initialized": False}


def test_oversized_body_is_413(client: falcon.testing.TestClient) -> None:
    body = b'{"key":"' + b"a" * (32 * 1024 * 1024) + b'"}'
    resp = client.simulate_put("/v1/sys/unseal", body=body)
    assert resp.status_code == 413 and resp.json["errors"]


@pytest.mark.parametrize("path", ["/v1/sys/../sys/key-status", "/v1/a//b", "/v1/./x"])
def test_traversal_paths_are_400(client: falcon.testing.TestClient, path: str) -> None:
    init_unseal(client)
    assert client.simulate_get(path).status_code == 400


def test_bad_unseal_input(client: falcon.testing.TestClient) -> None:
    client.simulate_put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2})
    for body, message in (
        ({}, "'key' must be specified"),
        ({"key": "zz"}, "valid hex or base64"),
        ({"key": 12}, "'key' must be a string"),
    ):
        resp = client.simulate_put("/v1/sys/unseal", json=body)
        assert resp.status_code == 400 and message in resp.json["errors"][0]
