"""Root-protected endpoints: `update` without `sudo` is refused and changes nothing;
with `sudo` the operation happens.

Codes and messages as OpenBao 2.7 answers them (checked against `bao server -dev`):
403 "permission denied" for sys/rotate, sys/seal, sys/remount; auth/token/revoke-orphan
checks for itself and answers 400 "root or sudo privileges required to revoke and
orphan". sys/step-down: OpenBao needs sudo on an HA node (a node without HA returns 204
before any check, a no-op); Strongroom checks sudo either way.
"""

from __future__ import annotations

import json
from typing import Any

import falcon.testing
import pytest

from strongroom.config import dev_config
from strongroom.wsgi import build_node

Client = falcon.testing.TestClient
DENIED = {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
PROTECTED = ("sys/rotate", "sys/seal", "sys/remount", "sys/step-down",
             "auth/token/revoke-orphan")


class Node:
    def __init__(self) -> None:
        self.client = falcon.testing.TestClient(build_node(dev_config()).app)
        keys = self.client.simulate_put(
            "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json
        self.client.simulate_put("/v1/sys/unseal", json={"key": keys["keys"][0]})
        self.root = {"X-Vault-Token": keys["root_token"]}
        self.post("sys/mounts/secret", self.root, {"type": "kv", "options": {"version": "2"}})
        self.post("secret/data/kept", self.root, {"data": {"v": "1"}})
        for name, capabilities in (("nosudo", ["create", "update"]),
                                   ("withsudo", ["create", "update", "sudo"])):
            rules = "\n".join(f'path "{path}" {{ capabilities = {json.dumps(capabilities)} }}'
                              for path in PROTECTED)
            self.policy(name, rules)
        self.policy("parent", 'path "auth/token/create" { capabilities = ["update"] }')

    def policy(self, name: str, rules: str) -> None:
        assert self.client.simulate_put(f"/v1/sys/policies/acl/{name}", headers=self.root,
                                        json={"policy": rules}).status_code == 204

    def post(self, path: str, headers: dict[str, str],
             body: dict[str, Any] | None = None) -> falcon.testing.Result:
        return self.client.simulate_post(f"/v1/{path}", headers=headers, json=body or {})

    def token(self, policy: str, parent: dict[str, str] | None = None) -> dict[str, str]:
        created = self.post("auth/token/create", parent or self.root, {"policies": [policy]})
        assert created.status_code == 200, created.text
        return {"X-Vault-Token": created.json["auth"]["client_token"]}

    def term(self) -> int:
        return int(self.client.simulate_get("/v1/sys/key-status", headers=self.root).json["term"])

    def sealed(self) -> bool:
        return bool(self.client.simulate_get("/v1/sys/seal-status").json["sealed"])

    def mounts(self) -> set[str]:
        return set(self.client.simulate_get("/v1/sys/mounts", headers=self.root).json["data"])

    def alive(self, token: dict[str, str]) -> bool:
        return self.client.simulate_get("/v1/auth/token/lookup-self",
                                        headers=token).status_code == 200


@pytest.fixture
def node() -> Node:
    return Node()


def test_rotate_needs_sudo(node: Node) -> None:
    refused = node.post("sys/rotate", node.token("nosudo"))
    assert refused.status_code == 403 and refused.json == DENIED
    assert node.term() == 1  # no new key term
    assert node.post("sys/rotate", node.token("withsudo")).status_code == 204
    assert node.term() == 2


def test_seal_needs_sudo(node: Node) -> None:
    refused = node.post("sys/seal", node.token("nosudo"))
    assert refused.status_code == 403 and refused.json == DENIED
    assert not node.sealed()
    assert node.post("sys/seal", node.token("withsudo")).status_code == 204
    assert node.sealed()


def test_remount_needs_sudo(node: Node) -> None:
    move = {"from": "secret", "to": "moved"}
    refused = node.post("sys/remount", node.token("nosudo"), move)
    assert refused.status_code == 403 and refused.json == DENIED
    assert "secret/" in node.mounts() and "moved/" not in node.mounts()
    kept = node.client.simulate_get("/v1/secret/data/kept", headers=node.root)
    assert kept.status_code == 200 and kept.json["data"]["data"] == {"v": "1"}
    moved = node.post("sys/remount", node.token("withsudo"), move)
    assert moved.status_code == 200 and moved.json["data"]["migration_id"], moved.text
    assert "moved/" in node.mounts() and "secret/" not in node.mounts()
    kept = node.client.simulate_get("/v1/moved/data/kept", headers=node.root)
    assert kept.status_code == 200 and kept.json["data"]["data"] == {"v": "1"}


def test_step_down_needs_sudo(node: Node) -> None:
    refused = node.post("sys/step-down", node.token("nosudo"))
    assert refused.status_code == 403 and refused.json == DENIED
    assert node.client.simulate_get("/v1/sys/health").status_code == 200  # still active
    assert node.post("sys/step-down", node.token("withsudo")).status_code == 204


def test_revoke_orphan_needs_sudo(node: Node) -> None:
    victim = node.token("parent")
    child = node.token("default", parent=victim)
    refused = node.post("auth/token/revoke-orphan", node.token("nosudo"),
                        {"token": victim["X-Vault-Token"]})
    assert refused.status_code == 400
    assert refused.json == {"errors": ["root or sudo privileges required to revoke and orphan"]}
    assert node.alive(victim) and node.alive(child)
    done = node.post("auth/token/revoke-orphan", node.token("withsudo"),
                     {"token": victim["X-Vault-Token"]})
    assert done.status_code == 204, done.text
    assert not node.alive(victim) and node.alive(child)  # the child is orphaned, not revoked
    orphan = node.client.simulate_get("/v1/auth/token/lookup-self", headers=child).json
    assert orphan["data"]["orphan"] is True
