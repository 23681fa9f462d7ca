"""sys/init and sys/unseal decode their bodies as Vault's Go structs do.

``null`` is a field left out (hvac sends ``secret_shares: null`` under auto-unseal);
a string, a bool or a fraction for an int field is a 400 (Go's encoding/json is
strict there), never a 500 and never an initialization with a guessed value.
"""

from __future__ import annotations

import falcon.testing
import pytest

from strongroom.config import dev_config
from strongroom.wsgi import build_node


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(build_node(dev_config()).app)


def test_null_shares_are_absent(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_put("/v1/sys/init",
                               json={"secret_shares": None, "secret_threshold": None})
    # OpenBao 2.7 (Shamir) answers exactly this: absent shares are zero shares.
    assert resp.status_code == 400
    assert resp.json == {"errors": ["invalid seal configuration: shares must be at least one"]}
    assert client.simulate_get("/v1/sys/init").json == {"initialized": False}


def test_null_optional_fields_are_ignored(client: falcon.testing.TestClient) -> None:
    resp = client.simulate_put("/v1/sys/init", json={
        "secret_shares": 1, "secret_threshold": 1, "stored_shares": None,
        "recovery_shares": None, "recovery_threshold": None, "pgp_keys": None,
        "root_token_pgp_key": None})
    assert resp.status_code == 200, resp.text
    key = resp.json["keys"][0]
    resp = client.simulate_put("/v1/sys/unseal", json={"key": key, "reset": None})
    assert resp.status_code == 200 and resp.json["sealed"] is False, resp.text


@pytest.mark.parametrize(("value", "kind"), [
    ("3", "string"), (True, "bool"), (1.5, "number 1.5"), (1.0, "number 1.0"),
    ([], "array"), ({}, "object"), (2**63, "number 9223372036854775808"),
])
@pytest.mark.parametrize("field", ["secret_shares", "secret_threshold"])
def test_non_integers_are_refused(client: falcon.testing.TestClient, field: str,
                                  value: object, kind: str) -> None:
    body = {"secret_shares": 1, "secret_threshold": 1, field: value}
    resp = client.simulate_put("/v1/sys/init", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json == {"errors": [
        f"failed to decode JSON input: json: cannot unmarshal {kind} into Go struct field "
        f"InitRequest.{field} of type int"]}
    assert client.simulate_get("/v1/sys/init").json == {"initialized": False}
