"""A standby forwards the client's TLS certificate; the active believes it only from
the cluster relay (the node secret beside it), never from a client's own header."""

from __future__ import annotations

import base64

import pytest

from strongroom.ha import standby
from strongroom.ha.forwarding import FORWARDED_HEADER
from strongroom.http.dispatch import CLIENT_CERT_HEADER, Dispatcher, forward_headers
from strongroom.http.edge import HttpRequest
from tests.support.nodes import dev_node
from tests.support.pki import make_ca, make_leaf

KEY = CLIENT_CERT_HEADER.lower()


def test_a_standby_forwards_the_certificate_its_listener_saw() -> None:
    der = make_leaf(make_ca("Fwd"), "web").der
    forged = base64.b64encode(b"not mine").decode()
    req = HttpRequest("POST", "auth/cert/login", headers={KEY: forged, "x-other": "1"},
                      client_cert_der=der)
    headers = forward_headers(req)
    assert headers[CLIENT_CERT_HEADER] == base64.b64encode(der).decode()
    assert KEY not in headers and headers["x-other"] == "1"
    # No certificate: the client's header is dropped, none is sent.
    assert forward_headers(HttpRequest("GET", "x", headers={KEY: forged})) == {}


def test_the_active_believes_the_header_only_from_the_relay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ca = make_ca("Fwd Root")
    leaf = make_leaf(ca, "web")
    d = dev_node()
    assert d.call("POST", "sys/auth/cert", json={"type": "cert"}).status_code == 204
    assert d.call("POST", "auth/cert/certs/web", json={"certificate": ca.pem}).status_code == 204
    monkeypatch.setitem(standby.NODE_SECRET, "value", "node-secret")
    dispatcher = Dispatcher(d.node.core)
    cert = base64.b64encode(leaf.der).decode()

    def login(headers: dict[str, str]) -> tuple[int, bytes | None]:
        result = dispatcher.dispatch(HttpRequest("POST", "/v1/auth/cert/login",
                                                 headers=headers, body=b"{}"))
        return result.status, result.body

    status, body = login({KEY: cert})  # a client's own header
    assert (status, body) == (400, b'{"errors":["no client certificate found"]}')
    status, _ = login({KEY: cert, FORWARDED_HEADER.lower(): "guess"})
    assert status == 400
    status, body = login({KEY: cert, FORWARDED_HEADER.lower(): "node-secret"})
    assert status == 200, body
    status, body = login({KEY: "%%%", FORWARDED_HEADER.lower(): "node-secret"})
    assert (status, body) == (400, b'{"errors":["no client certificate found"]}')
