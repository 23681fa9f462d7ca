"""Cert auth against Strongroom and OpenBao side by side, over TLS listeners that ask
for client certificates (``tls_client_ca_file``), through hvac's ``auth.cert``: roles,
logins, CRLs, config and bad inputs answer alike.

One difference, by design: OpenBao's listener asks for any client certificate and
leaves the trust decision to the method; Python's ``ssl`` cannot ask without verifying,
so Strongroom's listener refuses a certificate its ``tls_client_ca_file`` does not
vouch for at the handshake (test_a_certificate_the_listener_does_not_trust).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests

from tests.support import requires
from tests.support.pki import make_ca, make_crl, make_leaf
from tests.support.servers import ServerProcess, free_port, running, strongroom_server

TIMEOUT = 10
LISTENER = """
listener "tcp" {{
  address            = "127.0.0.1:{port}"
  tls_cert_file      = "{workdir}/server.pem"
  tls_key_file       = "{workdir}/server-key.pem"
  tls_client_ca_file = "{workdir}/clients.pem"
}}
disable_mlock = true
"""
# Differ per server or per login; what they name is compared through other fields.
VOLATILE = {"client_token", "accessor", "entity_id", "request_id", "lease_id"}


class Pki:
    def __init__(self) -> None:
        self.ca = make_ca("Compat Root")
        self.other = make_ca("Compat Other Root")
        self.unknown = make_ca("Compat Unknown Root")
        self.server = make_leaf(self.ca, "127.0.0.1", ips=("127.0.0.1",), server=True,
                                client=False)
        self.leaves = {
            "web": make_leaf(self.ca, "web1.example.com", dns=("web1.example.com",),
                             ous=("Platform",)),
            "web2": make_leaf(self.ca, "web2.example.com"),
            "db": make_leaf(self.ca, "db1.example.com", dns=("db1.example.com",)),
            "stranger": make_leaf(self.other, "web1.example.com"),
            "unknown": make_leaf(self.unknown, "web1.example.com"),
        }

    def write(self, workdir: Path) -> dict[str, tuple[str, str]]:
        self.server.write(workdir, "server")
        (workdir / "clients.pem").write_text(self.ca.pem + self.other.pem)
        (workdir / "ca.pem").write_text(self.ca.pem)
        return {name: leaf.write(workdir, name) for name, leaf in self.leaves.items()}


class Side:
    """One server as the tests see it: its URL, root token, CA file, client cert files."""

    def __init__(self, server: ServerProcess, workdir: Path,
                 files: dict[str, tuple[str, str]]) -> None:
        self.url = server.url
        self.ca = str(workdir / "ca.pem")
        self.files = files
        s = requests.Session()
        s.trust_env = False
        init = s.put(self.url + "/v1/sys/init", json={"secret_shares": 1,
                                                      "secret_threshold": 1},
                     verify=self.ca, timeout=TIMEOUT).json()
        s.put(self.url + "/v1/sys/unseal", json={"key": init["keys"][0]}, verify=self.ca,
              timeout=TIMEOUT)
        s.close()
        self.root = init["root_token"]
        self.client = hvac.Client(url=self.url, token=self.root, verify=self.ca,
                                  timeout=TIMEOUT)
        self._wait_active()

    def _wait_active(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client.sys.read_health_status(method="GET").get("sealed") is False:
                    return
            except (hvac.exceptions.VaultError, requests.RequestException):
                pass
            time.sleep(0.1)
        raise TimeoutError("not active")

    def raw(self, method: str, path: str, cert: str | None = None,
            body: Any = None) -> tuple[int, Any]:
        resp = requests.request(method, f"{self.url}/v1/{path}", json=body, timeout=TIMEOUT,
                                headers={"X-Vault-Token": self.root, "Connection": "close"},
                                cert=self.files[cert] if cert else None, verify=self.ca)
        if not resp.content:
            return resp.status_code, None
        doc = resp.json()
        return resp.status_code, doc.get("errors", strip(doc.get("data")))

    def renew(self, token: str, cert: str | None) -> Any:
        """token/renew-self (Vault asks the method: the same certificate must be
        presented again unless ``disable_binding``)."""
        resp = requests.post(f"{self.url}/v1/auth/token/renew-self", timeout=TIMEOUT,
                             headers={"X-Vault-Token": token, "Connection": "close"},
                             cert=self.files[cert] if cert else None, verify=self.ca)
        if not resp.content:
            return resp.status_code, None
        doc = resp.json()
        if "errors" in doc:
            # Vault's binding error ends with both certificates' bytes: compared up to them.
            return resp.status_code, [e.split(":\n\toriginal")[0].rstrip()
                                      for e in doc["errors"]]
        return resp.status_code, strip(doc["auth"])

    def login(self, cert: str, name: str = "") -> Any:
        cert_file, key_file = self.files[cert]
        try:
            # hvac takes the CA file from the client's ``verify`` (its cacert wants PEM).
            resp = self.client.auth.cert.login(name=name, cert_pem=cert_file,
                                               key_pem=key_file, use_token=False)
        except hvac.exceptions.VaultError as exc:
            return type(exc).__name__, exc.errors
        return strip(resp["auth"])


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    return value


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def sides(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Side]]:
    bao = requires.bao()
    bao_dir, sr_dir = tmp_path_factory.mktemp("bao-cert"), tmp_path_factory.mktemp("sr-cert")
    bao_files, sr_files = pki.write(bao_dir), pki.write(sr_dir)
    port = free_port()
    (bao_dir / "bao.hcl").write_text('storage "inmem" {}\n' + LISTENER.format(
        port=port, workdir=bao_dir))
    sr_config = 'storage "file" {{\n  path = "{workdir}/data"\n}}\n' + LISTENER + "workers = 2\n"
    with running([bao, "server", f"-config={bao_dir / 'bao.hcl'}"], bao_dir, "bao.log",
                 f"https://127.0.0.1:{port}", verify=str(bao_dir / "ca.pem")) as theirs, \
            strongroom_server(sr_dir, sr_config, scheme="https",
                              verify=str(sr_dir / "ca.pem")) as ours:
        yield {"openbao": Side(theirs, bao_dir, bao_files),
               "strongroom": Side(ours, sr_dir, sr_files)}


def both(sides: dict[str, Side], scenario: Any) -> dict[str, Any]:
    return {name: scenario(side) for name, side in sides.items()}


def same(sides: dict[str, Side], scenario: Any) -> Any:
    seen = both(sides, scenario)
    assert seen["strongroom"] == seen["openbao"]
    return seen["openbao"]


def test_roles_logins_and_crls(sides: dict[str, Side], pki: Pki) -> None:
    def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {}
        c = side.client
        c.sys.enable_auth_method("cert")
        c.sys.create_or_update_policy("web", 'path "secret/*" { capabilities = ["read"] }')
        c.auth.cert.create_ca_certificate_role(
            "web", certificate=pki.ca.pem, allowed_common_names="web*.example.com",
            token_policies=["web"], token_ttl=3600, display_name="webs")
        c.auth.cert.create_ca_certificate_role(
            "dbs", certificate=pki.ca.pem, allowed_dns_sans=["db*.example.com"],
            allowed_organizational_units="", token_ttl="30m")
        out["read"] = c.auth.cert.read_ca_certificate_role("web")["data"]
        out["list"] = c.auth.cert.list_certificate_roles()["data"]
        out["web"] = side.login("web")
        out["web-by-name"] = side.login("web", name="web")
        out["db"] = side.login("db")
        out["db-as-web"] = side.login("db", name="web")
        out["stranger"] = side.login("stranger")
        out["missing-role"] = side.login("web", name="nope")
        out["no-cert"] = side.raw("POST", "auth/cert/login")
        crl = make_crl(pki.ca, [pki.leaves["web"]])
        out["crl-write"] = side.raw("POST", "auth/cert/crls/revoked", body={"crl": crl})
        out["crl-read"] = side.raw("GET", "auth/cert/crls/revoked")
        out["crl-list"] = side.raw("LIST", "auth/cert/crls")
        out["revoked"] = side.login("web")
        out["revoked-other-fine"] = side.login("db")
        out["crl-delete"] = side.raw("DELETE", "auth/cert/crls/revoked")
        out["unrevoked"] = side.login("web")
        token = side.client.auth.cert.login(
            cert_pem=side.files["web"][0], key_pem=side.files["web"][1],
            use_token=False)["auth"]["client_token"]
        out["renew-same-cert"] = side.renew(token, "web")
        out["renew-other-cert"] = side.renew(token, "db")
        out["renew-twin-cert"] = side.renew(token, "web2")  # the role's, not the login's
        out["renew-no-cert"] = side.renew(token, None)
        out["config"] = side.raw("GET", "auth/cert/config")
        c.auth.cert.configure_tls_certificate(disable_binding=True)
        out["config-after"] = side.raw("GET", "auth/cert/config")
        db_token = side.client.auth.cert.login(
            cert_pem=side.files["db"][0], key_pem=side.files["db"][1],
            use_token=False)["auth"]["client_token"]
        out["delete"] = side.raw("DELETE", "auth/cert/certs/dbs")
        out["renew-role-gone"] = side.renew(db_token, "db")
        out["read-deleted"] = side.raw("GET", "auth/cert/certs/dbs")
        out["db-after-delete"] = side.login("db")
        return out

    seen = both(sides, scenario)
    ours, theirs = seen["strongroom"], seen["openbao"]
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key] == theirs[key], key
    assert theirs["web"]["policies"] == ["default", "web"]
    assert theirs["revoked"][0] == "InvalidRequest"


def test_bad_inputs(sides: dict[str, Side], pki: Pki) -> None:
    crl_pem = make_crl(pki.ca, [])

    def scenario(side: Side) -> dict[str, Any]:
        raw = side.raw
        out: dict[str, Any] = {
            "no-certificate": raw("POST", "auth/cert/certs/bad", body={}),
            "garbage-certificate": raw("POST", "auth/cert/certs/bad",
                                       body={"certificate": "not a pem"}),
            "server-only-leaf": raw("POST", "auth/cert/certs/bad",
                                    body={"certificate": pki.server.pem}),
            "ttl-over-max": raw("POST", "auth/cert/certs/bad", body={
                "certificate": pki.ca.pem, "token_ttl": 100, "token_max_ttl": 10}),
            "deprecated-ttl-over-max": raw("POST", "auth/cert/certs/bad", body={
                "certificate": pki.ca.pem, "ttl": 100, "max_ttl": 10}),
            "both-policy-names": raw("POST", "auth/cert/certs/bad", body={
                "certificate": pki.ca.pem, "policies": "a", "token_policies": "b"}),
            "bad-token-type": raw("POST", "auth/cert/certs/bad", body={
                "certificate": pki.ca.pem, "token_type": "odd"}),
            "not-stored": raw("GET", "auth/cert/certs/bad"),
            "crl-nothing": raw("POST", "auth/cert/crls/x", body={}),
            "crl-empty-url": raw("POST", "auth/cert/crls/x", body={"url": ""}),
            "crl-read-missing": raw("GET", "auth/cert/crls/x"),
            "crl-delete-missing": raw("DELETE", "auth/cert/crls/x"),
            "crl-empty": raw("POST", "auth/cert/crls/empty", body={"crl": crl_pem}),
            "crl-empty-read": raw("GET", "auth/cert/crls/empty"),
            "crl-empty-delete": raw("DELETE", "auth/cert/crls/empty"),
            "config-cache": raw("POST", "auth/cert/config", body={"ocsp_cache_size": 1}),
            "login-get": raw("GET", "auth/cert/login", cert="web"),
            "unknown-path": raw("GET", "auth/cert/nothing"),
        }
        status, errors = raw("POST", "auth/cert/crls/x", body={"crl": "garbage"})
        out["crl-garbage"] = (status, [e.split(":")[0] for e in errors])
        return out

    seen = both(sides, scenario)
    ours, theirs = seen["strongroom"], seen["openbao"]
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key] == theirs[key], key


def test_a_bad_deprecated_bound_cidr_is_refused(sides: dict[str, Side], pki: Pki) -> None:
    """A difference (fail closed): OpenBao's go-sockaddr reads a string that is no
    address as a UNIX socket path and stores it (no login can ever match it);
    Strongroom refuses it, in ``token_bound_cidrs`` and the deprecated ``bound_cidrs``."""
    for field in ("bound_cidrs", "token_bound_cidrs"):
        body = {"certificate": pki.ca.pem, field: "300.1.1.1/8"}
        status, errors = sides["strongroom"].raw("POST", "auth/cert/certs/cidr", body=body)
        assert status == 400 and "300.1.1.1/8" in errors[0]
        assert sides["strongroom"].raw("GET", "auth/cert/certs/cidr")[0] == 404
        assert sides["openbao"].raw("POST", "auth/cert/certs/cidr", body=body) == (204, None)


def test_a_certificate_the_listener_does_not_trust(sides: dict[str, Side]) -> None:
    assert sides["openbao"].login("unknown") == (
        "InvalidRequest", ["invalid certificate or no client certificate supplied"])
    # The alert, or (TLS 1.3: the client already sent its request) the close after it.
    with pytest.raises(requests.ConnectionError, match="UNKNOWN_CA|EOF|reset"):
        sides["strongroom"].login("unknown")

