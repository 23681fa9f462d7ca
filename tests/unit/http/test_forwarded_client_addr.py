"""A standby forwards the client's address; the active believes it only from the
cluster relay (the node secret beside it): bound CIDRs judge the client, not the relay."""

from __future__ import annotations

import pytest

from strongroom.ha import standby
from strongroom.ha.forwarding import FORWARDED_HEADER
from strongroom.http.dispatch import CLIENT_ADDR_HEADER, Dispatcher, forward_headers
from strongroom.http.edge import HttpRequest
from tests.support.nodes import dev_node

KEY = CLIENT_ADDR_HEADER.lower()
RELAY = FORWARDED_HEADER.lower()


def test_a_standby_forwards_the_address_its_listener_saw() -> None:
    req = HttpRequest("GET", "x", headers={KEY: "10.9.9.9", "x-other": "1"},
                      remote_addr="192.0.2.5")
    headers = forward_headers(req)
    assert headers[CLIENT_ADDR_HEADER] == "192.0.2.5" and KEY not in headers
    assert headers["x-other"] == "1"


def test_the_active_believes_the_address_only_from_the_relay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d = dev_node()
    assert d.call("POST", "auth/token/roles/lan", json={
        "token_bound_cidrs": "10.0.0.0/8"}).status_code == 204
    token = d.call("POST", "auth/token/create/lan", json={"ttl": "1h"}).json["auth"][
        "client_token"]
    monkeypatch.setitem(standby.NODE_SECRET, "value", "node-secret")
    dispatcher = Dispatcher(d.node.core)

    def lookup(headers: dict[str, str], peer: str) -> int:
        result = dispatcher.dispatch(HttpRequest(
            "GET", "/v1/auth/token/lookup-self", headers={"x-vault-token": token, **headers},
            remote_addr=peer))
        return result.status

    assert lookup({}, "10.1.1.1") == 200
    assert lookup({}, "127.0.0.1") == 403
    # Relayed by the cluster port (whose peer is local): the forwarded client counts.
    assert lookup({KEY: "10.1.1.1", RELAY: "node-secret"}, "127.0.0.1") == 200
    assert lookup({KEY: "192.0.2.1", RELAY: "node-secret"}, "10.1.1.1") == 403
    # A client's own header, or a wrong secret, is ignored.
    assert lookup({KEY: "10.1.1.1"}, "127.0.0.1") == 403
    assert lookup({KEY: "10.1.1.1", RELAY: "guess"}, "127.0.0.1") == 403
