"""A whole dev node in this process, and a Falcon test client on its WSGI app."""

from __future__ import annotations

import falcon.testing
import pytest

from strongroom.config import dev_config
from strongroom.wsgi import Node, build_node


@pytest.fixture
def node() -> Node:
    return build_node(dev_config())


@pytest.fixture
def client(node: Node) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(node.app)
