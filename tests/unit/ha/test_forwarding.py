"""Standby -> active forwarding against controlled peers: every wait is bounded.

The cluster listener relays to a local stand-in for the node's API; misbehaving
peers are plain sockets that connect and say nothing, listen and never accept,
or take a request and never answer.

No wall-clock assertions and no sleeps as synchronisation: each test waits for the
event it needs (a handshake under way, a connection closed, an attempt refused) and
asserts what happened (connections made, requests sent, attempts per leader). The
dispatcher's wait for a new leader runs on a fake clock (``fake_clock``).
"""

from __future__ import annotations

import http.server
import json
import logging
import select
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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


class FakeClock:
    """Stands in for ``time`` in the dispatcher: its sleep advances a virtual clock at
    once, so the leader wait is walked through without waiting, and measured exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(dispatch, "time", clock)
    return clock


def client_context_trusting(server: ClusterIdentity,
                            presented: ClusterIdentity | None) -> ssl.SSLContext:
    """A client that trusts the cluster port's certificate (so the handshake can only fail
    on the server's side) and presents ``presented`` (or no certificate at all)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=server.cert_pem.decode())
    context.check_hostname = False
    if presented is not None:
        context.load_cert_chain(*pem_files(presented))
    return context


def pem_files(identity: ClusterIdentity) -> tuple[str, str]:
    directory = tempfile.mkdtemp(prefix="sr-fwd-")
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    return str(cert), str(key)


class ServerErrors(logging.Handler):
    """Collects the cluster port's failed-connection records (logged by its own thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []
        self.arrived = threading.Semaphore(0)

    def emit(self, record: logging.LogRecord) -> None:
        if "event=cluster_connection_failed" in record.getMessage() and record.exc_info:
            self.errors.append(record.exc_info[1])  # type: ignore[arg-type]
            self.arrived.release()


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    logger = logging.getLogger("strongroom.ha.forwarding")
    handler, level = ServerErrors(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_forwarded_request_reaches_the_local_api(listener: tuple[ClusterListener, str],
                                                 api: LocalApi,
                                                 identity: ClusterIdentity) -> None:
    forwarder = Forwarder(identity, listener[1], timeout=5)
    status, body, _ = forwarder.forward("GET", "/v1/sys/x", {"X-Vault-Token": "t"}, b"")
    assert status == 200 and json.loads(body) == {"path": "/v1/sys/x"}
    status, _, _ = forwarder.forward("POST", "/v1/sys/y", {}, b'{"a": 1}')  # kept alive
    assert status == 200 and api.requests == ["/v1/sys/x", "/v1/sys/y"]


class WatchedContext:
    """The cluster port's TLS context, telling when each server-side handshake starts
    and ends (wrap_socket performs the handshake)."""

    def __init__(self, real: ssl.SSLContext) -> None:
        self._real = real
        self._lock = threading.Lock()
        self.started = threading.Semaphore(0)
        self.count = 0
        self.ended: set[int] = set()  # which handshakes (0 = the first) have ended

    def wrap_socket(self, sock: socket.socket, **kwargs: Any) -> ssl.SSLSocket:
        with self._lock:
            number, self.count = self.count, self.count + 1
        self.started.release()
        try:
            return self._real.wrap_socket(sock, **kwargs)
        finally:
            with self._lock:
                self.ended.add(number)


def test_a_silent_peer_does_not_stop_forwarding(monkeypatch: pytest.MonkeyPatch,
                                                api: LocalApi,
                                                identity: ClusterIdentity) -> None:
    """A peer that connects and never starts TLS used to block the port's only thread:
    forwarding (and stopping the port) must go on while its handshake is still pending."""
    monkeypatch.setattr(forwarding, "HANDSHAKE_TIMEOUT", 120.0)  # pending all test long
    watched: list[WatchedContext] = []

    def watched_context(ident: ClusterIdentity) -> WatchedContext:
        watched.append(WatchedContext(server_context(ident)))
        return watched[-1]

    monkeypatch.setattr(forwarding, "server_context", watched_context)
    with cluster_port(identity, api.address) as (listener, url):
        silent = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        try:
            assert watched[0].started.acquire(timeout=30)  # its handshake is under way
            forwarder = Forwarder(identity, url, timeout=30, connect_timeout=30)
            status, _, _ = forwarder.forward("GET", "/v1/a", {}, b"")
            assert status == 200 and api.requests == ["/v1/a"]
            # The HA loop can still stop the listener (shutdown waited for that thread).
            stopper = threading.Thread(target=listener.stop, daemon=True)
            stopper.start()
            stopper.join(30)
            assert not stopper.is_alive(), "ClusterListener.stop() hung on a silent peer"
            # All of it happened while the silent peer still held its handshake: the
            # forwarder's (the second) ended, the silent peer's (the first) has not.
            assert watched[0].ended == {1}, watched[0].ended
        finally:
            silent.close()


@pytest.mark.parametrize(("presented", "client_alert", "server_reason"), [
    ("none", "TLSV13_ALERT_CERTIFICATE_REQUIRED", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    ("stranger", "TLSV1_ALERT_UNKNOWN_CA", "CERTIFICATE_VERIFY_FAILED"),
])
def test_a_peer_without_the_cluster_certificate_is_refused(
        listener: tuple[ClusterListener, str], api: LocalApi, identity: ClusterIdentity,
        server_errors: ServerErrors, presented: str, client_alert: str,
        server_reason: str) -> None:
    """The client trusts the cluster port's certificate, so its own side of the handshake
    succeeds: the only thing wrong is its client certificate (missing, or not the
    cluster's), and the cluster port is the one that refuses it."""
    port = int(listener[1].rsplit(":", 1)[1])
    client_identity = None if presented == "none" else generate_identity()
    context = client_context_trusting(identity, client_identity)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.3"  # the client accepted the server
        # TLS 1.3: the server judges the client's certificate after the client finished;
        # its verdict arrives as an alert on the first read.
        with pytest.raises(ssl.SSLError) as refused:
            tls.recv(1)
        assert refused.value.reason == client_alert, refused.value
    assert server_errors.arrived.acquire(timeout=30), "the cluster port logged no refusal"
    error = server_errors.errors[0]
    assert isinstance(error, ssl.SSLError) and error.reason == server_reason, error
    assert api.requests == []
    # Control: the same client with the cluster certificate is served.
    context = client_context_trusting(identity, identity)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /v1/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert tls.recv(12) == b"HTTP/1.1 200"
    assert api.requests == ["/v1/ok"]


def queued_connections(listening: socket.socket) -> int:
    """Connections the kernel completed on a socket nobody accepts from: accept them all."""
    listening.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = listening.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.timeout(60)  # the answer timeout (an hour) would hang the test, not pass it
def test_an_active_that_never_completes_tls_fails_fast(identity: ClusterIdentity) -> None:
    """A frozen or wedged master: the kernel accepts the TCP connection, nobody answers.
    The connect timeout covers the handshake (not the answer timeout), once (no retry)."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        forwarder = Forwarder(identity, f"https://127.0.0.1:{frozen.getsockname()[1]}",
                              timeout=3600, connect_timeout=0.5)
        for _ in range(2):
            with pytest.raises(NotDelivered) as raised:
                forwarder.forward("GET", "/v1/a", {}, b"")
            assert isinstance(raised.value.__cause__, TimeoutError)
            assert queued_connections(frozen) == 1  # one connection per forward


class RawPeer:
    """A bare TCP peer on loopback, counting the connections it accepts and the requests
    it reads; what it does with each connection (in a thread of its own) is the
    subclass's. A connection is counted before its TLS handshake can even start, so
    by the time a client's connect() returns, its connection has been counted."""

    scheme = ""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.request_seen = threading.Event()
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
            self.connections += 1
            threading.Thread(target=self._take, args=(conn,), daemon=True).start()

    def _take(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _count_request(self) -> None:
        self.requests += 1
        self.request_seen.set()

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
                self._count_request()
        except OSError:
            pass

    def close(self) -> None:
        super().close()
        for tls in self._held:
            tls.close()


@pytest.mark.timeout(60)  # the connect timeout (an hour) would hang the test, not pass it
def test_an_unanswered_request_times_out_once_and_is_not_resent(
        identity: ClusterIdentity) -> None:
    """The answer timeout (not the connect timeout) ends the wait, and a POST the active
    may be carrying out is not sent again: no second connection was even made."""
    mute = Mute(identity)
    try:
        forwarder = Forwarder(identity, mute.address, timeout=0.5, connect_timeout=3600)
        with pytest.raises(TimeoutError):
            forwarder.forward("POST", "/v1/secret/data/x", {}, b"{}")
        assert mute.request_seen.wait(30)  # it did reach the active
        assert mute.connections == 1 and mute.requests == 1
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
        kept = forwarder._local.conn.sock
        # Wait until the listener has closed the idle connection (it becomes readable:
        # the close), so the next request provably meets a closed connection.
        readable, _, _ = select.select([kept], [], [], 30)
        assert readable == [kept]
        assert forwarder.forward("POST", "/v1/two", {}, b"{}")[0] == 200
        assert forwarder._local.conn.sock is not kept  # replaced
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
                self._count_request()


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
    sealed = False

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


@pytest.mark.timeout(60)  # an unbounded wait would hang the test, not pass it
def test_a_standby_answers_promptly_when_the_active_does_not(
        identity: ClusterIdentity, fake_clock: FakeClock) -> None:
    """A frozen active (its master stopped): the client gets Vault's error shape after one
    connect timeout and the wait for a new leader, not after its own read timeout."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        dispatcher = standby_dispatcher(identity,
                                        f"https://127.0.0.1:{frozen.getsockname()[1]}")
        request = HttpRequest(method="GET", path="/v1/auth/token/lookup-self", params={},
                              headers={"x-vault-token": "t"}, body=b"", remote_addr="")
        started = fake_clock.now
        result = dispatcher.dispatch(request)
        assert queued_connections(frozen) == 1  # tried once, given up on (no resend)
    assert result.status == 500
    assert json.loads(result.body or b"") == {
        "errors": ["local node not active but active cluster node not found"]}
    # Then the wait for a new leader that does not come: LEADER_WAIT, no more.
    assert dispatch.LEADER_WAIT <= fake_clock.now - started < dispatch.LEADER_WAIT + 0.1


class Leadership:
    """A standby's view of the leader, changed by the test as the cluster would: when
    the standby's attempt at the current leader has failed (``after_first_attempt``),
    never after a guessed delay, so the first attempt provably happened."""

    def __init__(self, identity: ClusterIdentity, leader: str, cluster_addr: str) -> None:
        self.ha = self.status(leader, cluster_addr)
        self.core = SimpleNamespace(barrier=Barrier(identity),
                                    snapshot=SimpleNamespace(sealed=False),
                                    sync=lambda: SimpleNamespace(ha=self.ha))
        self.attempts: list[tuple[str, str]] = []  # (leader, outcome) per forward
        self._next: HAStatus | None = None

    @staticmethod
    def status(leader: str, cluster_addr: str) -> HAStatus:
        return HAStatus(enabled=True, node_id="standby", leader_id=leader,
                        leader_api_addr=f"https://{leader}:8200",
                        leader_cluster_addr=cluster_addr)

    def after_first_attempt(self, leader: str, cluster_addr: str) -> None:
        """Make ``leader`` the active node once the standby's first forward has ended."""
        self._next = self.status(leader, cluster_addr)

    def dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher(cast(Core, self.core))
        forward = dispatcher.standby.forward

        def watched(status: HAStatus, *args: Any) -> Any:
            outcome = "raised"
            try:
                answer = forward(status, *args)
                outcome = str(answer[0])
                return answer
            except NotDelivered:
                outcome = "not delivered"
                raise
            finally:
                self.attempts.append((status.leader_id, outcome))
                if self._next is not None:
                    self.ha, self._next = self._next, None

        dispatcher.standby.forward = watched  # type: ignore[method-assign]
        return dispatcher


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
        view.after_first_attempt("b", new_active[1])
        result = view.dispatcher().dispatch(client_request())
        assert result.status == 200, result
        assert view.attempts == [("a", "503"), ("b", "200")]  # refused, then followed
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
    view.after_first_attempt("b", new_active[1])
    result = dispatcher.dispatch(client_request())
    assert result.status == 200, result
    assert view.attempts == [("a", "200"), ("a", "not delivered"), ("b", "200")]
    assert api.requests == ["/v1/one"] and new_active[0].requests == ["/v1/secret/data/x"]


def test_a_request_that_may_have_been_carried_out_is_not_sent_again(
        identity: ClusterIdentity, new_active: tuple[LocalApi, str]) -> None:
    hangs_up = HangsUp()
    try:
        with cluster_port(identity, hangs_up.address) as (_, url):
            view = Leadership(identity, "a", url)
            view.after_first_attempt("b", new_active[1])  # a new active is there at once
            result = view.dispatcher().dispatch(client_request())
            assert result.status == 500 and hangs_up.requests == 1
            assert view.attempts == [("a", "500")] and new_active[0].requests == []
    finally:
        hangs_up.close()


def test_without_a_new_leader_the_standby_gives_up_after_the_wait(
        api: LocalApi, identity: ClusterIdentity, fake_clock: FakeClock) -> None:
    with cluster_port(identity, api.address, is_active=lambda: False) as (_, url):
        view = Leadership(identity, "a", url)
        started = fake_clock.now
        result = view.dispatcher().dispatch(client_request())
        assert result.status == 500 and api.requests == []
        assert view.attempts == [("a", "503")]
        assert json.loads(result.body or b"") == {
            "errors": ["local node not active but active cluster node not found"]}
        assert dispatch.LEADER_WAIT <= fake_clock.now - started < dispatch.LEADER_WAIT + 0.1


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
