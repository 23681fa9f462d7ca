"""KV settings Vault would refuse must be refused here too, not stored to break later.

``delete_version_after = "999999999999h"`` used to be accepted; every later write
to the key (or, set on ``config``, to the whole mount) then answered 500, the
deletion time being past what a clock can hold.
"""

from __future__ import annotations

import pytest

from tests.unit.engines.kv.kv_helpers import kv_node

# Past Go's int64 nanoseconds in each way Vault notices (OpenBao 2.7: 400 for each).
TOO_LONG = ["999999999999h", "2562048h", 9223372037, "106752d", 10**30, 1.5]


@pytest.mark.parametrize("value", TOO_LONG)
@pytest.mark.parametrize("where", ["secret/metadata/k", "secret/config"])
def test_unrepresentable_delete_version_after_is_refused(where: str, value: object) -> None:
    d, _ = kv_node()
    resp = d.call("POST", where, json={"delete_version_after": value})
    assert resp.status_code == 400, resp.text
    if value != 10**30:  # past 64 bits the body's JSON decoder may refuse it first
        assert 'error converting input for field "delete_version_after"' in resp.json["errors"][0]
    # Nothing was stored that breaks the next write or read.
    for _ in range(2):
        assert d.call("POST", "secret/data/k", json={"data": {"a": 1}}).status_code == 200
    assert d.call("GET", "secret/metadata/k").status_code == 200
    assert d.call("GET", "secret/config").json["data"]["delete_version_after"] == "0s"


def test_longest_delete_version_after_still_works() -> None:
    """Go's longest duration is accepted, and writes and reads go on working."""
    d, _ = kv_node()
    for where in ("secret/config", "secret/metadata/k"):
        assert d.call("POST", where, json={"delete_version_after": "2562047h"}).status_code == 204
    for _ in range(2):
        resp = d.call("POST", "secret/data/k", json={"data": {"a": 1}})
        assert resp.status_code == 200, resp.text
    assert d.call("GET", "secret/data/k").status_code == 200
    meta = d.call("GET", "secret/metadata/k").json["data"]
    assert meta["delete_version_after"] == "2562047h0m0s"


@pytest.mark.parametrize("field", ["max_versions"])
@pytest.mark.parametrize("value", [2**63, 10**30, "9223372036854775808"])
def test_integers_past_int64_are_refused(field: str, value: object) -> None:
    d, _ = kv_node()
    for where in ("secret/config", "secret/metadata/k"):
        resp = d.call("POST", where, json={field: value})
        assert resp.status_code == 400, resp.text
        assert "out of range" in resp.json["errors"][0]


@pytest.mark.parametrize("cas", [2**63, "9223372036854775808", 1.0])
def test_cas_past_int64_is_refused(cas: object) -> None:
    d, _ = kv_node()
    d.call("POST", "secret/data/k", json={"data": {"a": 1}})
    resp = d.call("POST", "secret/data/k", json={"data": {"a": 2}, "options": {"cas": cas}})
    assert resp.status_code == 400, resp.text
