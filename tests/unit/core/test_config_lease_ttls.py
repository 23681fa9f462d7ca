"""The config's default_lease_ttl/max_lease_ttl reach the core and bound TTLs as in Vault.

Before issue 11 they were parsed and dropped: tokens got 768h whatever the config said.
"""

from __future__ import annotations

import falcon.testing

from strongroom.config import DEFAULT_LEASE_TTL, parse_config
from strongroom.wsgi import build_node
from tests.support.nodes import DevNode

CONFIG = """
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
}
default_lease_ttl = "1h"
max_lease_ttl = "2h"
"""


def _node(text: str = CONFIG) -> DevNode:
    node = build_node(parse_config(text))
    result = node.coordinator.initialize(1, 1, "root")
    node.coordinator.unseal(result["keys"][0])
    return DevNode(node, falcon.testing.TestClient(node.app), result["root_token"])


def test_the_core_gets_the_configured_ttls() -> None:
    d = _node()
    assert (d.node.core.default_lease_ttl, d.node.core.max_lease_ttl) == (3600, 7200)


def test_a_token_without_ttl_gets_the_configured_default() -> None:
    d = _node()
    resp = d.call("POST", "auth/token/create", json={"policies": ["default"]})
    assert resp.status_code == 200, resp.text
    assert resp.json["auth"]["lease_duration"] == 3600
    token = resp.json["auth"]["client_token"]
    looked = d.call("GET", "auth/token/lookup-self", token=token).json["data"]
    assert looked["creation_ttl"] == 3600 and 3590 <= looked["ttl"] <= 3600


def test_a_longer_ttl_is_capped_at_the_configured_max_with_vaults_warning() -> None:
    d = _node()
    resp = d.call("POST", "auth/token/create", json={"policies": ["default"], "ttl": "10h"})
    assert resp.status_code == 200, resp.text
    assert resp.json["auth"]["lease_duration"] == 7200
    assert resp.json["warnings"] == [
        'TTL of "10h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly']


def test_renewal_is_bounded_by_the_configured_max_too() -> None:
    d = _node()
    token = d.call("POST", "auth/token/create",
                   json={"policies": ["default"]}).json["auth"]["client_token"]
    resp = d.call("POST", "auth/token/renew-self", token=token, json={"increment": "5h"})
    assert resp.status_code == 200, resp.text
    assert 7190 <= resp.json["auth"]["lease_duration"] <= 7200


def test_tune_reads_show_the_system_ttls_for_untuned_mounts() -> None:
    d = _node()
    assert d.call("POST", "sys/mounts/kv", json={"type": "kv"}).status_code == 204
    tune = d.call("GET", "sys/mounts/kv/tune").json
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (3600, 7200)
    d.call("POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "30m"})
    assert d.call("GET", "sys/mounts/kv/tune").json["default_lease_ttl"] == 1800
    d.call("POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "system"})
    assert d.call("GET", "sys/mounts/kv/tune").json["default_lease_ttl"] == 3600
    auth_tune = d.call("GET", "sys/auth/token/tune").json
    assert (auth_tune["default_lease_ttl"], auth_tune["max_lease_ttl"]) == (3600, 7200)


def test_kv_v1_reports_the_configured_default_unless_the_mount_is_tuned() -> None:
    d = _node()
    d.call("POST", "sys/mounts/kv", json={"type": "kv"})
    d.call("POST", "kv/a", json={"v": 1})
    assert d.call("GET", "kv/a").json["lease_duration"] == 3600
    tuned = d.call("POST", "sys/mounts/kv/tune", json={"default_lease_ttl": "30m"})
    assert tuned.status_code == 204, tuned.text
    assert d.call("GET", "kv/a").json["lease_duration"] == 1800


def test_without_ttls_in_the_config_vaults_768h_applies() -> None:
    d = _node(CONFIG.replace('default_lease_ttl = "1h"', "").replace('max_lease_ttl = "2h"', ""))
    assert DEFAULT_LEASE_TTL == 768 * 3600
    resp = d.call("POST", "auth/token/create", json={"policies": ["default"]})
    assert resp.json["auth"]["lease_duration"] == DEFAULT_LEASE_TTL
