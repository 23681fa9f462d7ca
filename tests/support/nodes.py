"""In-process nodes for fast tests: a real core on inmem storage, driven over Falcon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon.testing

from strongroom.config import dev_config
from strongroom.wsgi import Node, build_node


@dataclass
class DevNode:
    node: Node
    client: falcon.testing.TestClient
    root_token: str

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """One API request as the root token (or ``token``); returns Falcon's Result."""
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("X-Vault-Token", token if token is not None else self.root_token)
        return self.client.simulate_request(method, "/v1/" + path.lstrip("/"),
                                            headers=headers, **kwargs)


def dev_node(root_token_id: str = "root") -> DevNode:
    """Initialized and unsealed like `strongroom server -dev` (KV v2 at secret/)."""
    node = build_node(dev_config(), dev=True)
    result = node.coordinator.initialize(1, 1, root_token_id)
    node.coordinator.unseal(result["keys"][0])
    return DevNode(node, falcon.testing.TestClient(node.app), result["root_token"])
