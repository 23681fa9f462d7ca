"""Token creation and roles: numbers Vault refuses are refused here, with its status code.

``num_uses = 10**30`` used to be accepted by a role and then every token created
against it failed with a 500 (no 64-bit integer to serialize); TTLs past Go's
int64 nanoseconds were accepted where Vault answers 400.
"""

from __future__ import annotations

import pytest

from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    return dev_node()


@pytest.mark.parametrize("value", [2**63, "9223372036854775808", 10**30, " 5", 1.0])
def test_role_num_uses_out_of_range_is_refused(d: DevNode, value: object) -> None:
    resp = d.call("POST", "auth/token/roles/r", json={"token_num_uses": value})
    assert resp.status_code == 400, resp.text
    d.call("POST", "auth/token/roles/r", json={"allowed_policies": ["p"]})
    assert d.call("POST", "auth/token/create/r", json={}).status_code == 200


@pytest.mark.parametrize("value", [2**63, 10**30, 1.0, " 5"])
def test_create_num_uses_out_of_range_is_refused(d: DevNode, value: object) -> None:
    resp = d.call("POST", "auth/token/create", json={"num_uses": value})
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize(("value", "uses"), [
    ("0x10", 16), (True, 1), ("", 0), (2**63 - 1, 2**63 - 1),
])
def test_create_num_uses_weak_decoding(d: DevNode, value: object, uses: int) -> None:
    """Vault decodes num_uses weakly (mapstructure): hex text, booleans, "" as 0."""
    resp = d.call("POST", "auth/token/create", json={"num_uses": value})
    assert resp.status_code == 200, resp.text
    token = resp.json["auth"]["client_token"]
    looked = d.call("POST", "auth/token/lookup", json={"token": token}).json["data"]
    assert looked["num_uses"] == uses


@pytest.mark.parametrize("field", ["ttl", "explicit_max_ttl", "period"])
@pytest.mark.parametrize(("value", "message"), [
    (9223372037, "multiplication of durations resulted in overflow"),
    ("2562048h", 'time: invalid duration "2562048h"'),
    (2**63 - 1, "multiplication of durations resulted in overflow"),
    (" 5", 'time: invalid duration " 5"'),
    ("-5", "must be positive"),
])
def test_create_durations_past_go_limits(d: DevNode, field: str, value: object,
                                         message: str) -> None:
    resp = d.call("POST", "auth/token/create", json={field: value})
    assert resp.status_code == 400, resp.text
    assert message in resp.json["errors"][0]
    if message == "must be positive":
        assert resp.json["errors"] == [f"{field} must be positive"]


@pytest.mark.parametrize(("value", "ttl"), [(True, 1), ("", 0), ("1d", 86400), ("010", 10)])
def test_create_ttl_is_a_weakly_decoded_string(d: DevNode, value: object, ttl: int) -> None:
    """Vault's ttl is a string field: true is "1" (1s), "" is none (a root child: 0)."""
    resp = d.call("POST", "auth/token/create", json={"ttl": value})
    assert resp.status_code == 200, resp.text
    assert resp.json["auth"]["lease_duration"] == ttl


@pytest.mark.parametrize("field", ["token_period", "period", "token_explicit_max_ttl",
                                   "explicit_max_ttl"])
@pytest.mark.parametrize("value", [9223372037, "2562048h", "999999999999h", " 5", 1.5])
def test_role_durations_past_go_limits(d: DevNode, field: str, value: object) -> None:
    resp = d.call("POST", "auth/token/roles/r", json={field: value})
    assert resp.status_code == 400, resp.text
    assert resp.json["errors"][0].startswith(f'error converting input for field "{field}": ')
    assert d.call("GET", "auth/token/roles/r").status_code == 404
