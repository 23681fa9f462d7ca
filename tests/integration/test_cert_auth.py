"""Cert auth over a real TLS listener with several workers: the certificate the client
presented in the handshake reaches the method in every worker, on kept-alive
connections and with large bodies (run on a thread); CRLs written through one worker
bind all of them; ``tls_require_and_verify_client_cert`` refuses at the handshake."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.pki import make_ca, make_crl, make_leaf
from tests.support.servers import ServerProcess, strongroom_server

WORKERS = 3
CONFIG = """
storage "file" {{
  path = "{workdir}/data"
}}
listener "tcp" {{
  address            = "127.0.0.1:{port}"
  tls_cert_file      = "{workdir}/server.pem"
  tls_key_file       = "{workdir}/server-key.pem"
  tls_client_ca_file = "{workdir}/clients.pem"
  %s
}}
disable_mlock = true
workers = %d
"""
# Each request on its own connection, closed by the server: an idle kept-alive TLS
# connection holds a stopping worker (its close_notify waits for the client).
_CLOSE = {"Connection": "close"}
INVALID = "invalid certificate or no client certificate supplied"
NO_MATCH = "no chain matching all constraints could be found for this login certificate"


class Pki:
    def __init__(self, workdir: Path) -> None:
        self.ca = make_ca("Cert Auth Root")
        self.other = make_ca("Other Root")  # the listener trusts it, no role does
        self.unknown = make_ca("Unknown Root")  # nobody trusts it
        make_leaf(self.ca, "127.0.0.1", ips=("127.0.0.1",), server=True,
                  client=False).write(workdir, "server")
        (workdir / "clients.pem").write_text(self.ca.pem + self.other.pem)
        self.server_ca = str(workdir / "ca.pem")
        (workdir / "ca.pem").write_text(self.ca.pem)
        self.web = make_leaf(self.ca, "web1.example.com")
        leaves = {"web": self.web, "web2": make_leaf(self.ca, "web2.example.com"),
                  "stranger": make_leaf(self.other, "web1.example.com"),
                  "unknown": make_leaf(self.unknown, "web1.example.com")}
        self.files = {name: leaf.write(workdir, name) for name, leaf in leaves.items()}


def _ready(server: ServerProcess, cert: tuple[str, str] | None, verify: str) -> None:
    # The listener may refuse handshakes without a certificate: poll with one.
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}")
        try:
            requests.get(server.url + "/v1/sys/health", cert=cert, verify=verify, timeout=1,
                         headers=_CLOSE)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.05)
    raise TimeoutError("server did not answer")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Pki, str]]:
    workdir = tmp_path_factory.mktemp("cert-auth")
    pki = Pki(workdir)
    with strongroom_server(workdir, CONFIG % ("", WORKERS), scheme="https",
                           verify=pki.server_ca) as server:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would win over s.verify
        s.verify = pki.server_ca
        init = s.put(server.url + "/v1/sys/init",
                     json={"secret_shares": 1, "secret_threshold": 1}, timeout=10).json()
        assert s.put(server.url + "/v1/sys/unseal", json={"key": init["keys"][0]},
                     timeout=10).json()["sealed"] is False
        root = init["root_token"]
        h = {"X-Vault-Token": root}
        assert s.post(server.url + "/v1/sys/auth/cert", json={"type": "cert"},
                      headers=h, timeout=10).status_code == 204
        assert s.post(server.url + "/v1/sys/policies/acl/web", headers=h, timeout=10, json={
            "policy": 'path "secret/*" { capabilities = ["read"] }'}).status_code == 204
        assert s.post(server.url + "/v1/auth/cert/certs/web", headers=h, timeout=10, json={
            "certificate": pki.ca.pem, "token_policies": "web",
            "allowed_common_names": "web*.example.com"}).status_code == 204
        # An idle kept-alive TLS connection holds a stopping worker (its close_notify
        # waits for the client): close ours.
        s.close()
        yield server, pki, root


def fresh(server: ServerProcess, pki: Pki, method: str, path: str, cert: str | None,
          **kwargs: Any) -> requests.Response:
    """One request on a new connection (so successive ones spread over the workers)."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, server.url + "/v1/" + path, headers=headers,
                            cert=pki.files[cert] if cert else None, verify=pki.server_ca,
                            timeout=10, **kwargs)


def logins_on_every_worker(server: ServerProcess, pki: Pki, cert: str,
                           **body: Any) -> dict[int, requests.Response]:
    seen: dict[int, requests.Response] = {}
    # A deadline, not a count: under load the kernel may hand many fresh connections in
    # a row to the same busy workers (60 tries once reached only 2 of 3 at load 15).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = fresh(server, pki, "POST", "auth/cert/login", cert, json=body)
        seen.setdefault(int(resp.headers["X-Strongroom-Worker"]), resp)
        if len(seen) == WORKERS:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered")


def test_login_works_in_every_worker(node: tuple[ServerProcess, Pki, str]) -> None:
    server, pki, _ = node
    for pid, resp in logins_on_every_worker(server, pki, "web").items():
        assert resp.status_code == 200, (pid, resp.text)
        auth = resp.json()["auth"]
        assert auth["policies"] == ["default", "web"]
        assert auth["metadata"]["common_name"] == "web1.example.com"
        assert auth["metadata"]["serial_number"] == str(pki.web.cert.serial_number)


def test_refusals(node: tuple[ServerProcess, Pki, str]) -> None:
    server, pki, _ = node
    resp = fresh(server, pki, "POST", "auth/cert/login", None)
    assert (resp.status_code, resp.json()) == (400, {"errors": ["no client certificate found"]})
    # The listener's CA file vouches for it, no role trusts its issuer.
    resp = fresh(server, pki, "POST", "auth/cert/login", "stranger")
    assert (resp.status_code, resp.json()) == (400, {"errors": [INVALID]})
    # Not even the listener trusts it: refused at the handshake (OpenBao, which asks for
    # any certificate, answers the 400 above instead).
    with pytest.raises(requests.ConnectionError):
        fresh(server, pki, "POST", "auth/cert/login", "unknown")


def test_the_certificate_reaches_every_request_of_a_connection_and_large_bodies(
        node: tuple[ServerProcess, Pki, str]) -> None:
    server, pki, _ = node
    with requests.Session() as s:
        s.cert = pki.files["web2"]
        s.trust_env = False
        s.verify = pki.server_ca
        for _ in range(3):
            resp = s.post(server.url + "/v1/auth/cert/login", json={}, timeout=10)
            assert resp.json()["auth"]["metadata"]["common_name"] == "web2.example.com"
        # Past the fast path's 16 KiB: h11, then a thread; still this connection's cert.
        big = s.post(server.url + "/v1/auth/cert/login", timeout=10,
                     data=json.dumps({"name": "web", "pad": "x" * 40000}))
        assert big.status_code == 200, big.text
        assert big.json()["auth"]["metadata"]["common_name"] == "web2.example.com"
        # A token request on the same connection (the fast path) still works.
        token = resp.json()["auth"]["client_token"]
        look = s.get(server.url + "/v1/auth/token/lookup-self",
                     headers={"X-Vault-Token": token}, timeout=10)
        assert look.status_code == 200 and look.json()["data"]["policies"] == [
            "default", "web"]
        # Renewal asks the method, which wants the login's certificate again: the fast
        # path (a small token request) carries the connection's certificate too.
        renew = s.post(server.url + "/v1/auth/token/renew-self",
                       headers={"X-Vault-Token": token}, timeout=10)
        assert renew.status_code == 200, renew.text
        assert renew.json()["auth"]["metadata"]["common_name"] == "web2.example.com"
    other = fresh(server, pki, "POST", "auth/token/renew-self", "web",
                  headers={"X-Vault-Token": token})
    assert other.status_code == 500
    assert "client identity during renewal not matching" in other.json()["errors"][0]
    none = fresh(server, pki, "POST", "auth/token/renew-self", None,
                 headers={"X-Vault-Token": token})
    assert (none.status_code, none.json()) == (
        400, {"errors": ["no client certificate found"]})


def test_a_crl_written_through_one_worker_binds_every_worker(
        node: tuple[ServerProcess, Pki, str]) -> None:
    server, pki, root = node
    h = {"X-Vault-Token": root}
    # Every worker caches the CRLs (empty) first.
    logins_on_every_worker(server, pki, "web")
    resp = fresh(server, pki, "POST", "auth/cert/crls/revoked", None, headers=h,
                 json={"crl": make_crl(pki.ca, [pki.web])})
    assert resp.status_code == 204, resp.text
    try:
        for pid, resp in logins_on_every_worker(server, pki, "web").items():
            assert (resp.status_code, resp.json()) == (400, {"errors": [NO_MATCH]}), pid
        for resp in logins_on_every_worker(server, pki, "web2").values():
            assert resp.status_code == 200
    finally:
        assert fresh(server, pki, "DELETE", "auth/cert/crls/revoked", None,
                     headers=h).status_code == 204
    for resp in logins_on_every_worker(server, pki, "web").values():
        assert resp.status_code == 200


def test_require_and_verify_refuses_handshakes_without_a_certificate(
        tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    with strongroom_server(tmp_path, CONFIG % ("tls_require_and_verify_client_cert = true", 1),
                           scheme="https", ready=False) as server:
        _ready(server, pki.files["web"], pki.server_ca)
        # The server's refusal, with TLS 1.3's alert for a missing certificate (or, the
        # client having sent its request already, the close that follows the alert).
        with pytest.raises(requests.ConnectionError, match="CERTIFICATE_REQUIRED|EOF|reset"):
            requests.get(server.url + "/v1/sys/health", verify=pki.server_ca, timeout=5,
                         headers=_CLOSE)
        with pytest.raises(requests.ConnectionError, match="UNKNOWN_CA|EOF|reset"):
            requests.get(server.url + "/v1/sys/health", cert=pki.files["unknown"],
                         verify=pki.server_ca, timeout=5, headers=_CLOSE)
        with requests.get(server.url + "/v1/sys/health", cert=pki.files["stranger"],
                          verify=pki.server_ca, timeout=5, headers=_CLOSE) as resp:
            assert resp.status_code == 501  # not initialized: the API answered


def test_the_gthread_worker_hands_over_the_certificate_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_HTTP_WORKER", "gthread")
    pki = Pki(tmp_path)
    with strongroom_server(tmp_path, CONFIG % ("", 1), scheme="https",
                           verify=pki.server_ca) as server:
        init = requests.put(server.url + "/v1/sys/init", verify=pki.server_ca, timeout=10,
                            headers=_CLOSE,
                            json={"secret_shares": 1, "secret_threshold": 1}).json()
        requests.put(server.url + "/v1/sys/unseal", json={"key": init["keys"][0]},
                     verify=pki.server_ca, headers=_CLOSE, timeout=10)
        h = {"X-Vault-Token": init["root_token"]}
        assert fresh(server, pki, "POST", "sys/auth/cert", None, headers=h,
                     json={"type": "cert"}).status_code == 204
        assert fresh(server, pki, "POST", "auth/cert/certs/web", None, headers=h,
                     json={"certificate": pki.ca.pem}).status_code == 204
        resp = fresh(server, pki, "POST", "auth/cert/login", "web")
        assert resp.status_code == 200, resp.text
        assert resp.json()["auth"]["metadata"]["common_name"] == "web1.example.com"
        resp = fresh(server, pki, "POST", "auth/cert/login", None)
        assert resp.json() == {"errors": ["no client certificate found"]}


def test_a_role_change_through_one_worker_binds_every_worker(
        node: tuple[ServerProcess, Pki, str]) -> None:
    """Each worker keeps the roles parsed in memory: a write or delete through one
    worker reaches the others' caches (the write notifier's invalidate)."""
    server, pki, root = node
    h = {"X-Vault-Token": root}
    for resp in logins_on_every_worker(server, pki, "stranger", name="others").values():
        assert (resp.status_code, resp.json()) == (400, {"errors": [INVALID]})
    assert fresh(server, pki, "POST", "auth/cert/certs/others", None, headers=h,
                 json={"certificate": pki.other.pem}).status_code == 204
    for pid, resp in logins_on_every_worker(server, pki, "stranger", name="others").items():
        assert resp.status_code == 200, (pid, resp.text)
    assert fresh(server, pki, "DELETE", "auth/cert/certs/others", None,
                 headers=h).status_code == 204
    for resp in logins_on_every_worker(server, pki, "stranger").values():
        assert (resp.status_code, resp.json()) == (400, {"errors": [INVALID]})
