"""A standby forwards the client's address (review i15 F1): without it the active sees
its own loopback relay as every forwarded client, so CIDR bindings and the login
guard's per-client backoff judge the relay. The active believes the address only from
the cluster relay (the node secret beside it), never from a client's own header."""

from __future__ import annotations

import json

import pytest

from strongroom.ha import standby
from strongroom.ha.forwarding import FORWARDED_HEADER
from strongroom.http.dispatch import CLIENT_ADDR_HEADER, Dispatcher, forward_headers
from strongroom.http.edge import HttpRequest
from tests.support.nodes import dev_node

KEY = CLIENT_ADDR_HEADER.lower()


def test_a_standby_forwards_the_address_its_listener_saw() -> None:
    req = HttpRequest("POST", "auth/userpass/login/alice",
                      headers={KEY: "10.0.0.1 1", "x-other": "1"},
                      remote_addr="192.0.2.7", remote_port=4242)
    headers = forward_headers(req)
    assert headers[CLIENT_ADDR_HEADER] == "192.0.2.7 4242"
    assert KEY not in headers and headers["x-other"] == "1"


def test_the_active_believes_the_address_only_from_the_relay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d = dev_node()
    assert d.call("POST", "sys/auth/userpass", json={"type": "userpass"}).status_code == 204
    resp = d.call("POST", "auth/userpass/users/alice",
                  json={"password": "pw-alice", "token_bound_cidrs": "192.0.2.7/32"})
    assert resp.status_code == 204, resp.text
    monkeypatch.setitem(standby.NODE_SECRET, "value", "node-secret")
    dispatcher = Dispatcher(d.node.core)

    def login(headers: dict[str, str]) -> tuple[int, bytes | None]:
        # As the active sees a relayed request: from its own loopback.
        result = dispatcher.dispatch(HttpRequest(
            "POST", "/v1/auth/userpass/login/alice", headers=headers,
            body=json.dumps({"password": "pw-alice"}).encode(), remote_addr="127.0.0.1"))
        return result.status, result.body

    status, _ = login({KEY: "192.0.2.7 4242"})  # a client's own header
    assert status == 400
    status, _ = login({KEY: "192.0.2.7 4242", FORWARDED_HEADER.lower(): "guess"})
    assert status == 400
    status, body = login({KEY: "192.0.2.7 4242", FORWARDED_HEADER.lower(): "node-secret"})
    assert status == 200, body
    token = json.loads(body or b"{}")["auth"]["client_token"]

    def lookup(headers: dict[str, str]) -> int:
        return dispatcher.dispatch(HttpRequest(
            "GET", "/v1/auth/token/lookup-self", remote_addr="127.0.0.1",
            headers={"x-vault-token": token, **headers})).status

    # The bound token, used through a standby from its own address and from elsewhere.
    assert lookup({KEY: "192.0.2.7 1", FORWARDED_HEADER.lower(): "node-secret"}) == 200
    assert lookup({KEY: "198.51.100.1 1", FORWARDED_HEADER.lower(): "node-secret"}) == 403
    assert lookup({FORWARDED_HEADER.lower(): "node-secret"}) == 403
