"""The per-worker cache of decoded token entries: exact across the workers of a node.

Two cores on one change ring, as two gunicorn workers (file storage, node-private):
whatever one worker does to a token (revoke, renew, spend a use) holds in the other
from its very next request, although the other answered from its cache before.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from strongroom.config import ServerConfig, StorageConfig, dev_config
from strongroom.node.shared import ChangeRing, SharedCounters
from strongroom.physical.chain import build_chain
from strongroom.wsgi import build_node


def file_config(root: Path) -> ServerConfig:
    return dataclasses.replace(dev_config(), storage=StorageConfig("file", {"path": str(root)}))


class Pair:
    """Two workers of one node and the root token."""

    def __init__(self, root: Path) -> None:
        config = file_config(root)
        ring, counters = ChangeRing(), SharedCounters()
        self.one = build_node(config, storage=build_chain(config, ring), counters=counters)
        init = self.one.coordinator.initialize(1, 1)
        self.one.coordinator.unseal(init["keys"][0])
        self.two = build_node(config, coordinator=self.one.coordinator,
                              storage=build_chain(config, ring), counters=counters)
        self.a = falcon.testing.TestClient(self.one.app)
        self.b = falcon.testing.TestClient(self.two.app)
        self.root = init["root_token"]

    def create(self, **body: Any) -> str:
        resp = self.a.simulate_post("/v1/auth/token/create", json=body,
                                    headers={"X-Vault-Token": self.root})
        assert resp.status_code == 200, resp.text
        return str(resp.json["auth"]["client_token"])

    @staticmethod
    def lookup_self(client: falcon.testing.TestClient, token: str) -> falcon.testing.Result:
        return client.simulate_get("/v1/auth/token/lookup-self",
                                   headers={"X-Vault-Token": token})


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_the_cache_is_on_for_node_private_storage_and_serves_repeat_lookups(
        pair: Pair) -> None:
    token = pair.create(policies=["default"])
    assert pair.lookup_self(pair.b, token).status_code == 200
    tokens = pair.two.core.tokens
    assert len(tokens._entries) >= 1
    reads = 0
    inner = tokens._read

    def counting(token_hash: str) -> Any:
        nonlocal reads
        reads += 1
        return inner(token_hash)

    tokens._read = counting  # type: ignore[method-assign]
    for _ in range(3):
        assert pair.lookup_self(pair.b, token).status_code == 200
    assert reads == 0  # decoded once, served from the cache since


def test_a_token_revoked_in_one_worker_is_refused_by_the_other_at_once(pair: Pair) -> None:
    token = pair.create(policies=["default"])
    assert pair.lookup_self(pair.b, token).status_code == 200  # warm in worker two
    resp = pair.a.simulate_post("/v1/auth/token/revoke-self", headers={"X-Vault-Token": token})
    assert resp.status_code == 204
    assert pair.lookup_self(pair.b, token).status_code == 403
    assert pair.lookup_self(pair.a, token).status_code == 403


def test_a_renewal_in_one_worker_shows_in_the_other(pair: Pair) -> None:
    token = pair.create(policies=["default"], ttl="1h", renewable=True)
    before = pair.lookup_self(pair.b, token).json["data"]
    resp = pair.a.simulate_post("/v1/auth/token/renew-self", json={"increment": "3h"},
                                headers={"X-Vault-Token": token})
    assert resp.status_code == 200, resp.text
    after = pair.lookup_self(pair.b, token).json["data"]
    assert after["ttl"] > before["ttl"] + 3000
    assert after.get("last_renewal_time") and not before.get("last_renewal_time")


def test_limited_use_tokens_are_never_served_from_the_cache(pair: Pair) -> None:
    token = pair.create(policies=["default"], num_uses=2)
    assert pair.lookup_self(pair.b, token).status_code == 200  # use 1 (worker two)
    assert pair.lookup_self(pair.a, token).status_code == 200  # use 2 (worker one): revoked
    assert pair.lookup_self(pair.b, token).status_code == 403
    assert pair.lookup_self(pair.a, token).status_code == 403
    assert not pair.two.core.tokens._entries.get(
        pair.two.core.tokens.salted(token))


def test_a_parent_revoked_in_one_worker_takes_its_cached_child_everywhere(
        pair: Pair) -> None:
    parent = pair.create(policies=["root"])
    resp = pair.a.simulate_post("/v1/auth/token/create", json={"policies": ["default"]},
                                headers={"X-Vault-Token": parent})
    child = resp.json["auth"]["client_token"]
    assert pair.lookup_self(pair.b, child).status_code == 200
    assert pair.a.simulate_post("/v1/auth/token/revoke-self",
                                headers={"X-Vault-Token": parent}).status_code == 204
    assert pair.lookup_self(pair.b, child).status_code == 403


def test_a_cached_entry_is_a_copy_changes_to_it_are_not_kept(pair: Pair) -> None:
    token = pair.create(policies=["default"])
    pair.two.core.sync()  # as before every request
    tokens = pair.two.core.tokens
    first = tokens.lookup(token, pair.two.core.now())
    assert first is not None
    first.policies.append("root")
    first.num_uses = 5
    again = tokens.lookup(token, pair.two.core.now())
    assert again is not None and again.policies == ["default"] and again.num_uses == 0


def test_a_read_that_raced_with_an_invalidation_is_served_but_not_kept(pair: Pair) -> None:
    token = pair.create(policies=["default"])
    pair.two.core.sync()
    tokens = pair.two.core.tokens
    token_hash = tokens.salted(token)
    inner = tokens._read

    def racing(h: str) -> Any:
        entry = inner(h)
        tokens.invalidate("sys/token/id/" + h)  # a write published while this read ran
        return entry

    tokens._read = racing  # type: ignore[method-assign]
    assert tokens.lookup(token, pair.two.core.now()) is not None
    assert token_hash not in tokens._entries


def test_no_cache_where_other_nodes_may_write(tmp_path: Path) -> None:
    config = file_config(tmp_path)
    node = build_node(config, storage=build_chain(config), counters=SharedCounters())
    assert node.core.storage.cache is None
    assert node.core.tokens._cache_entries is False
