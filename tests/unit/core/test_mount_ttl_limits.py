"""Mount TTLs past Go's longest duration are refused, not stored to break every listing.

``sys/mounts/<m>/tune`` with ``max_lease_ttl = "18446744073709551616h"`` used to be
accepted; from then on ``GET sys/mounts``, the mount's tune and every KV v1 read
on it answered 500 (no 64-bit integer to serialize). OpenBao: 400.
"""

from __future__ import annotations

import pytest

from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    node = dev_node()
    resp = node.call("POST", "sys/mounts/kv1", json={"type": "kv", "options": {"version": "1"}})
    assert resp.status_code == 204, resp.text
    return node


@pytest.mark.parametrize("value", ["18446744073709551616h", "2562048h", "9223372037",
                                   "9223372036854775808"])
@pytest.mark.parametrize("field", ["default_lease_ttl", "max_lease_ttl"])
def test_tune_past_go_limits_is_refused(d: DevNode, field: str, value: str) -> None:
    resp = d.call("POST", "sys/mounts/kv1/tune", json={field: value})
    assert resp.status_code == 400, resp.text
    assert d.call("POST", "kv1/a", json={"x": 1}).status_code == 204
    assert d.call("GET", "kv1/a").status_code == 200
    assert d.call("GET", "sys/mounts").status_code == 200
    assert d.call("GET", "sys/mounts/kv1/tune").status_code == 200


@pytest.mark.parametrize("value", ["2562048h", "9223372037"])
def test_mount_config_past_go_limits_is_refused(d: DevNode, value: str) -> None:
    resp = d.call("POST", "sys/mounts/kv2", json={"type": "kv",
                                                  "config": {"default_lease_ttl": value}})
    assert resp.status_code == 400, resp.text
    assert d.call("GET", "sys/mounts").status_code == 200


def test_null_mount_config_ttl_is_absent(d: DevNode) -> None:
    resp = d.call("POST", "sys/mounts/kv3", json={
        "type": "kv", "config": {"default_lease_ttl": None, "max_lease_ttl": None}})
    assert resp.status_code == 204, resp.text
    tune = d.call("GET", "sys/mounts/kv3/tune").json["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (2764800, 2764800)
