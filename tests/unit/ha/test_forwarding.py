"""Standby -> active forwarding against controlled peers: every wait is bounded.

The cluster listener relays to a local stand-in for the node's API; misbehaving
peers are plain sockets that connect and say nothing, listen and never accept,
or take a request and never answer.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest

from strongroom.core.core import Core
from strongroom.ha import forwarding, standby
from strongroom.ha.cluster_tls import ClusterIdentity, generate_identity, server_context
from strongroom.ha.forwarding import ClusterListener, Forwarder, NotDelivered
from strongroom.ha.state import CLUSTER_TLS_PATH, HAStatus
from strongroom.http import dispatch
from strongroom.http.dispatch import Dispatcher
from strongroom.http.edge import HttpRequest


@pytest.fixture(scope="module")
def identity() -> ClusterIdentity:
    return generate_identity()


class LocalApi:
    """The node's own API on loopback: counts requests, answers 200 with the path."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(self.path)
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster_port(identity: ClusterIdentity, api_address: str,
                 is_active: Callable[[], bool] = lambda: True
                 ) -> Iterator[tuple[ClusterListener, str]]:
    """A node's cluster port relaying to ``api_address``; yields it and its URL."""
    url = f"https://127.0.0.1:{free_port()}"
    cluster = ClusterListener(url, api_address, False, "node-secret", is_active)
    cluster.start(identity)
    try:
        yield cluster, url
    finally:
        cluster.stop()


@pytest.fixture
def api() -> Iterator[LocalApi]:
    local = LocalApi()
    yield local
    local.close()


@pytest.fixture
def listener(api: LocalApi, identity: ClusterIdentity) -> Iterator[tuple[ClusterListener, str]]:
    with cluster_port(identity, api.address) as port:
        yield port


def timed(fn: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return fn(), time.monotonic() - started


def test_forwarded_request_reaches_the_local_api(listener: tuple[ClusterListener, str],
                                                 api: LocalApi,
                                                 identity: ClusterIdentity) -> None:
    forwarder = Forwarder(identity, listener[1], timeout=5)
    status, body, _ = forwarder.forward("GET", "/v1/sys/x", {"X-Vault-Token": "t"}, b"")
    assert status == 200 and json.loads(body) == {"path": "/v1/sys/x"}
    status, _, _ = forwarder.forward("POST", "/v1/sys/y", {}, b'{"a": 1}')  # kept alive
    assert status == 200 and api.requests == ["/v1/sys/x", "/v1/sys/y"]


def test_a_silent_peer_does_not_stop_forwarding(listener: tuple[ClusterListener, str],
                                                identity: ClusterIdentity) -> None:
    """A peer that connects and never starts TLS used to block the port's only thread."""
    silent = socket.create_connection(("127.0.0.1", int(listener[1].rsplit(":", 1)[1])))
    try:
        time.sleep(0.2)  # the listener has accepted it
        forwarder = Forwarder(identity, listener[1], timeout=2)
        (status, _, _), took = timed(lambda: forwarder.forward("GET", "/v1/a", {}, b""))
        assert status == 200 and took < 1.5, took
        # And the HA loop can still stop the listener (shutdown waited for that thread).
        stopper = threading.Thread(target=listener[0].stop, daemon=True)
        stopper.start()
        stopper.join(5)
        assert not stopper.is_alive(), "ClusterListener.stop() hung on a silent peer"
    finally:
        silent.close()


def test_a_peer_without_the_cluster_certificate_is_refused(
        listener: tuple[ClusterListener, str], api: LocalApi) -> None:
    stranger = Forwarder(generate_identity(), listener[1], timeout=2)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        stranger.forward("GET", "/v1/a", {}, b"")
    assert api.requests == []


def test_an_active_that_never_completes_tls_fails_fast(identity: ClusterIdentity) -> None:
    """A frozen or wedged master: the kernel accepts the TCP connection, nobody answers."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        forwarder = Forwarder(identity, f"https://127.0.0.1:{frozen.getsockname()[1]}",
                              timeout=30, connect_timeout=0.5)
        with pytest.raises(NotDelivered) as raised:
            forwarder.forward("GET", "/v1/a", {}, b"")
        assert isinstance(raised.value.__cause__, TimeoutError)
        # Not the answer timeout, and not twice the connect timeout (no retry).
        _, took = timed(lambda: pytest.raises(NotDelivered, forwarder.forward,
                                              "GET", "/v1/a", {}, b""))
        assert took < 0.9, took


class RawPeer:
    """A bare TCP peer on loopback, counting the requests it reads; what it does with
    each connection (in a thread of its own) is the subclass's."""

    scheme = ""

    def __init__(self) -> None:
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.address = f"{self.scheme}127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._take, args=(conn,), daemon=True).start()

    def _take(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._sock.close()


class Mute(RawPeer):
    """Completes mutual TLS, reads requests, never answers: an active whose API hangs."""

    scheme = "https://"

    def __init__(self, identity: ClusterIdentity) -> None:
        self._context = server_context(identity)
        self._held: list[socket.socket] = []
        super().__init__()

    def _take(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
            self._held.append(tls)
            if tls.recv(65536):
                self.requests += 1
        except OSError:
            pass

    def close(self) -> None:
        super().close()
        for tls in self._held:
            tls.close()


def test_an_unanswered_request_times_out_once_and_is_not_resent(
        identity: ClusterIdentity) -> None:
    mute = Mute(identity)
    try:
        forwarder = Forwarder(identity, mute.address, timeout=0.5)
        _, took = timed(lambda: pytest.raises(TimeoutError, forwarder.forward,
                                              "POST", "/v1/secret/data/x", {}, b"{}"))
        assert 0.4 < took < 0.9, took
        time.sleep(0.1)
        assert mute.requests == 1  # a POST the active may be carrying out is not sent again
    finally:
        mute.close()


@pytest.mark.parametrize("seen_before_sending", [True, False])
def test_a_kept_alive_connection_the_active_closed_is_replaced(
        monkeypatch: pytest.MonkeyPatch, api: LocalApi, identity: ClusterIdentity,
        seen_before_sending: bool) -> None:
    """Noticed before the request goes out, or only when sending it fails (a close racing
    the send): either way the request is delivered once, on a new connection."""
    monkeypatch.setattr(forwarding, "IDLE_TIMEOUT", 0.3)
    if not seen_before_sending:
        monkeypatch.setattr(forwarding, "_closed_by_peer", lambda sock: False)
    with cluster_port(identity, api.address) as (_, url):
        forwarder = Forwarder(identity, url, timeout=5)
        assert forwarder.forward("GET", "/v1/one", {}, b"")[0] == 200
        time.sleep(0.8)  # the listener closes the idle connection
        assert forwarder.forward("POST", "/v1/two", {}, b"{}")[0] == 200
        assert api.requests == ["/v1/one", "/v1/two"]  # each delivered once


def test_an_unreachable_local_api_is_answered_as_not_relayed(
        identity: ClusterIdentity) -> None:
    """With the node's API gone (stopping) the listener answers, saying nothing was carried
    out; a dropped connection would look idle-closed to the standby."""
    with cluster_port(identity, f"127.0.0.1:{free_port()}") as (_, url):
        forwarder = Forwarder(identity, url, timeout=5)
        status, body, headers = forwarder.forward("GET", "/v1/a", {}, b"")
        assert status == 503 and json.loads(body) == {"errors": ["node is not active"]}
        assert forwarding.not_relayed(status, headers)


class HangsUp(RawPeer):
    """The node's API reads a request and closes without answering (a worker killed
    while carrying it out)."""

    def _take(self, conn: socket.socket) -> None:
        with conn:
            if conn.recv(65536):
                self.requests += 1


def test_a_relay_failure_after_sending_is_answered_500(identity: ClusterIdentity) -> None:
    """The request may have been carried out: the standby must not send it again."""
    api = HangsUp()
    try:
        with cluster_port(identity, api.address) as (_, url):
            forwarder = Forwarder(identity, url, timeout=5)
            status, body, headers = forwarder.forward("POST", "/v1/a", {}, b"{}")
            assert status == 500 and json.loads(body) == {"errors": ["internal error"]}
            assert not forwarding.not_relayed(status, headers) and api.requests == 1
    finally:
        api.close()


class Barrier:
    def __init__(self, identity: ClusterIdentity) -> None:
        self._doc = json.dumps({"cert": identity.cert_pem.decode(),
                                "key": identity.key_pem.decode()}).encode()

    def get(self, path: str) -> bytes | None:
        return self._doc if path == CLUSTER_TLS_PATH else None


def standby_dispatcher(identity: ClusterIdentity, cluster_addr: str) -> Dispatcher:
    ha = HAStatus(enabled=True, node_id="b", leader_id="a",
                  leader_api_addr="http://127.0.0.1:8200", leader_cluster_addr=cluster_addr)
    core = SimpleNamespace(barrier=Barrier(identity), snapshot=SimpleNamespace(sealed=False),
                           sync=lambda: SimpleNamespace(ha=ha))
    return Dispatcher(cast(Core, core))


def test_a_standby_answers_promptly_when_the_active_does_not(
        identity: ClusterIdentity) -> None:
    """A frozen active (its master stopped): the client gets Vault's error shape in about
    the connect timeout, not after the client's own read timeout."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        dispatcher = standby_dispatcher(identity,
                                        f"https://127.0.0.1:{frozen.getsockname()[1]}")
        request = HttpRequest(method="GET", path="/v1/auth/token/lookup-self", params={},
                              headers={"x-vault-token": "t"}, body=b"", remote_addr="")
        result, took = timed(lambda: dispatcher.dispatch(request))
    assert result.status == 500
    assert json.loads(result.body or b"") == {
        "errors": ["local node not active but active cluster node not found"]}
    # One connect timeout, then the wait for a new leader that does not come.
    assert took < forwarding.CONNECT_TIMEOUT + dispatch.LEADER_WAIT + 1, took


class Leadership:
    """A standby's view of the leader, changed by the test as the cluster would."""

    def __init__(self, identity: ClusterIdentity, leader: str, cluster_addr: str) -> None:
        self.ha = self.status(leader, cluster_addr)
        self.core = SimpleNamespace(barrier=Barrier(identity),
                                    snapshot=SimpleNamespace(sealed=False),
                                    sync=lambda: SimpleNamespace(ha=self.ha))

    @staticmethod
    def status(leader: str, cluster_addr: str) -> HAStatus:
        return HAStatus(enabled=True, node_id="standby", leader_id=leader,
                        leader_api_addr=f"https://{leader}:8200",
                        leader_cluster_addr=cluster_addr)

    def change_after(self, seconds: float, leader: str, cluster_addr: str) -> None:
        def change() -> None:
            time.sleep(seconds)
            self.ha = self.status(leader, cluster_addr)
        threading.Thread(target=change, daemon=True).start()

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(cast(Core, self.core))


def client_request(method: str = "POST", path: str = "/v1/secret/data/x") -> HttpRequest:
    return HttpRequest(method=method, path=path, params={},
                       headers={"x-vault-token": "t"}, body=b"{}", remote_addr="")


@pytest.fixture
def new_active(identity: ClusterIdentity) -> Iterator[tuple[LocalApi, str]]:
    api = LocalApi()
    with cluster_port(identity, api.address) as (_, url):
        yield api, url
    api.close()


def test_a_request_refused_by_a_stepping_down_active_follows_the_new_one(
        api: LocalApi, identity: ClusterIdentity,
        new_active: tuple[LocalApi, str]) -> None:
    """The old active's cluster port still answers but the node has stepped down: the
    request was not carried out there, so it goes to the new active, once."""
    with cluster_port(identity, api.address, is_active=lambda: False) as (_, url):
        view = Leadership(identity, "a", url)
        view.change_after(0.3, "b", new_active[1])
        result = view.dispatcher().dispatch(client_request())
        assert result.status == 200, result
        assert api.requests == [] and new_active[0].requests == ["/v1/secret/data/x"]


def test_a_closed_cluster_port_is_followed_to_the_new_active(
        api: LocalApi, identity: ClusterIdentity,
        new_active: tuple[LocalApi, str]) -> None:
    """The old active stopped its cluster port while the standby held a kept-alive
    connection to it (the failure of the ha scenario's rolling upgrade): the connection is
    found closed, a new one refused, and the request waits for the new active."""
    with cluster_port(identity, api.address) as (old, url):
        view = Leadership(identity, "a", url)
        dispatcher = view.dispatcher()
        assert dispatcher.dispatch(client_request("GET", "/v1/one")).status == 200
        old.stop()  # step-down: the port closes, its connections with it
    view.change_after(0.3, "b", new_active[1])
    result, took = timed(lambda: dispatcher.dispatch(client_request()))
    assert result.status == 200 and took < dispatch.LEADER_WAIT, (result, took)
    assert api.requests == ["/v1/one"] and new_active[0].requests == ["/v1/secret/data/x"]


def test_a_request_that_may_have_been_carried_out_is_not_sent_again(
        identity: ClusterIdentity, new_active: tuple[LocalApi, str]) -> None:
    hangs_up = HangsUp()
    try:
        with cluster_port(identity, hangs_up.address) as (_, url):
            view = Leadership(identity, "a", url)
            view.change_after(0.1, "b", new_active[1])
            result = view.dispatcher().dispatch(client_request())
            assert result.status == 500 and hangs_up.requests == 1
            assert new_active[0].requests == []
    finally:
        hangs_up.close()


def test_without_a_new_leader_the_standby_gives_up_after_the_wait(
        api: LocalApi, identity: ClusterIdentity) -> None:
    with cluster_port(identity, api.address, is_active=lambda: False) as (_, url):
        view = Leadership(identity, "a", url)
        result, took = timed(lambda: view.dispatcher().dispatch(client_request()))
        assert result.status == 500 and api.requests == []
        assert json.loads(result.body or b"") == {
            "errors": ["local node not active but active cluster node not found"]}
        assert dispatch.LEADER_WAIT - 0.2 < took < dispatch.LEADER_WAIT + 1, took


def test_a_relayed_request_reaching_a_demoted_node_is_refused_uncarried(
        monkeypatch: pytest.MonkeyPatch, identity: ClusterIdentity) -> None:
    """Relayed by this node's cluster port an instant before it stepped down: its API
    refuses it (a standby's writes are not fenced) in the shape the standby retries."""
    monkeypatch.setitem(standby.NODE_SECRET, "value", "node-secret")
    view = Leadership(identity, "b", "https://127.0.0.1:1")
    request = client_request()
    request.headers[forwarding.FORWARDED_HEADER.lower()] = "node-secret"
    result = view.dispatcher().dispatch(request)
    assert result.status == 503
    assert forwarding.not_relayed(result.status, {k.lower(): v
                                                  for k, v in result.headers.items()})
