"""The cert auth method on a dev node: roles, CRLs, config and logins with the client
certificate handed in as a gthread worker sees it (the connection's socket). Answers
are OpenBao 2.7's (tests/compat/test_cert_vs_bao.py asks ``bao`` the same)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.nodes import DevNode, dev_node
from tests.support.pki import Issued, make_ca, make_crl, make_leaf, utf8_extension

INVALID = "invalid certificate or no client certificate supplied"
NO_MATCH = "no chain matching all constraints could be found for this login certificate"


class _Socket:
    """What gunicorn hands the app as ``gunicorn.socket`` on a TLS listener."""

    def __init__(self, der: bytes | None) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        assert binary_form
        return self._der


def call(d: DevNode, method: str, path: str, cert: Issued | None = None,
         token: str | None = None, **kwargs: Any) -> Any:
    headers = {"X-Vault-Token": token if token is not None else d.root_token}
    extras = {"gunicorn.socket": _Socket(cert.der if cert else None)}
    return d.client.simulate_request(method, "/v1/" + path, headers=headers, extras=extras,
                                     **kwargs)


def login(d: DevNode, cert: Issued | None, **body: Any) -> Any:
    return call(d, "POST", "auth/cert/login", cert, token="", json=body)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    ca = make_ca("Test Root")
    other = make_ca("Other Root")
    inter = make_ca("Test Intermediate", parent=ca)
    return {
        "ca": ca, "other": other, "inter": inter,
        "web": make_leaf(ca, "web1.example.com", dns=("web1.example.com",),
                         emails=("ops@example.com",), uris=("spiffe://example/web",),
                         ous=("Platform",),
                         extensions=(utf8_extension("1.2.3.4.5", "blue"),)),
        "db": make_leaf(ca, "db1.example.com", dns=("db1.example.com",), ous=("Data",)),
        "stranger": make_leaf(other, "web1.example.com"),
        "via_inter": make_leaf(inter, "app.example.com"),
        "pinned": make_leaf(None, "pinned-client"),
        "expired": make_leaf(ca, "old.example.com", expired=True),
        "server_only": make_leaf(ca, "srv.example.com", server=True, client=False),
    }


@pytest.fixture(scope="module")
def d(pki: dict[str, Issued]) -> DevNode:
    node = dev_node()
    assert node.call("POST", "sys/auth/cert", json={"type": "cert"}).status_code == 204
    assert node.call("POST", "sys/policies/acl/web", json={
        "policy": 'path "secret/*" { capabilities = ["read"] }'}).status_code == 204
    resp = node.call("POST", "auth/cert/certs/web", json={
        "certificate": pki["ca"].pem, "token_policies": "web", "token_ttl": "1h",
        "display_name": "webs"})
    assert resp.status_code == 204, resp.text
    return node


def error(resp: Any) -> tuple[int, list[str]]:
    return resp.status_code, resp.json["errors"]


def test_login_issues_a_token_with_the_role_policies_and_metadata(
        d: DevNode, pki: dict[str, Issued]) -> None:
    resp = login(d, pki["web"])
    assert resp.status_code == 200, resp.text
    auth = resp.json["auth"]
    assert auth["policies"] == ["default", "web"]
    assert auth["token_policies"] == ["default", "web"]
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    meta = auth["metadata"]
    leaf = pki["web"].cert
    assert meta["cert_name"] == "web" and meta["common_name"] == "web1.example.com"
    assert meta["serial_number"] == str(leaf.serial_number)
    ski = leaf.extensions.get_extension_for_class(
        __import__("cryptography").x509.SubjectKeyIdentifier).value.digest
    assert meta["subject_key_id"] == ":".join(f"{b:02x}" for b in ski)
    assert len(meta["authority_key_id"].split(":")) == 20
    look = call(d, "GET", "auth/token/lookup-self", token=auth["client_token"])
    assert look.status_code == 200
    assert look.json["data"]["display_name"].endswith("webs")
    assert look.json["data"]["path"] == "auth/cert/login"


def test_no_certificate_and_unknown_issuers_are_refused(
        d: DevNode, pki: dict[str, Issued]) -> None:
    assert error(login(d, None)) == (400, ["no client certificate found"])
    assert error(login(d, pki["stranger"])) == (400, [INVALID])
    assert error(login(d, pki["expired"])) == (400, [INVALID])
    assert error(login(d, pki["server_only"])) == (400, [INVALID])
    # What OpenSSL accepted but cryptography cannot parse: refused, never a 500.
    garbage = d.client.simulate_request("POST", "/v1/auth/cert/login", json={},
                                        extras={"gunicorn.socket": _Socket(b"\x30\x03abc")})
    assert (garbage.status_code, garbage.json["errors"]) == (400, [INVALID])
    # A role named but absent: nothing trusted.
    assert error(login(d, pki["web"], name="nope")) == (400, [INVALID])


@pytest.mark.parametrize(("constraint", "value", "web_ok"), [
    ("allowed_common_names", "web*.example.com", True),
    ("allowed_common_names", "db*", False),
    ("allowed_names", "ops@*", True),
    ("allowed_dns_sans", "*.example.com", True),
    ("allowed_dns_sans", "*.example.org", False),
    ("allowed_email_sans", "ops@example.com", True),
    ("allowed_email_sans", "dev@*", False),
    ("allowed_uri_sans", "spiffe://example/*", True),
    ("allowed_uri_sans", "spiffe://other/*", False),
    ("allowed_organizational_units", "Plat*", True),
    ("allowed_organizational_units", "Data", False),
    ("required_extensions", "1.2.3.4.5:bl*", True),
    ("required_extensions", "1.2.3.4.5:red", False),
    ("required_extensions", "1.2.3.4.6:*", False),
])
def test_constraints(d: DevNode, pki: dict[str, Issued], constraint: str, value: str,
                     web_ok: bool) -> None:
    assert d.call("POST", "auth/cert/certs/constrained", json={
        "certificate": pki["ca"].pem, constraint: value}).status_code == 204
    try:
        resp = login(d, pki["web"], name="constrained")
        if web_ok:
            assert resp.status_code == 200, resp.text
            assert resp.json["auth"]["metadata"]["cert_name"] == "constrained"
        else:
            assert error(resp) == (400, [NO_MATCH])
    finally:
        d.call("DELETE", "auth/cert/certs/constrained")


def test_first_matching_role_wins_and_name_selects_one(
        d: DevNode, pki: dict[str, Issued]) -> None:
    assert d.call("POST", "auth/cert/certs/a-dbs", json={
        "certificate": pki["ca"].pem, "allowed_common_names": "db*"}).status_code == 204
    try:
        assert login(d, pki["db"]).json["auth"]["metadata"]["cert_name"] == "a-dbs"
        assert login(d, pki["web"]).json["auth"]["metadata"]["cert_name"] == "web"
        assert error(login(d, pki["web"], name="a-dbs")) == (400, [NO_MATCH])
        assert login(d, pki["db"], name="WEB").json["auth"]["metadata"]["cert_name"] == "web"
    finally:
        d.call("DELETE", "auth/cert/certs/a-dbs")


def test_intermediates_listed_in_the_role_and_pinned_leaves(
        d: DevNode, pki: dict[str, Issued]) -> None:
    # Only the leaf reaches the method: a client of an intermediate matches a role
    # that lists the intermediate (here root + intermediate in one bundle).
    assert error(login(d, pki["via_inter"])) == (400, [INVALID])
    assert d.call("POST", "auth/cert/certs/chain", json={
        "certificate": pki["ca"].pem + pki["inter"].pem}).status_code == 204
    assert d.call("POST", "auth/cert/certs/pin", json={
        "certificate": pki["pinned"].pem}).status_code == 204
    try:
        assert login(d, pki["via_inter"]).json["auth"]["metadata"]["cert_name"] == "chain"
        assert login(d, pki["pinned"]).json["auth"]["metadata"]["cert_name"] == "pin"
        other_self_signed = make_leaf(None, "pinned-client")
        assert error(login(d, other_self_signed)) == (400, [INVALID])
    finally:
        d.call("DELETE", "auth/cert/certs/chain")
        d.call("DELETE", "auth/cert/certs/pin")


def test_crls_revoke_by_serial(d: DevNode, pki: dict[str, Issued]) -> None:
    crl = make_crl(pki["ca"], [pki["web"]])
    assert d.call("POST", "auth/cert/crls/main", json={"crl": crl}).status_code == 204
    try:
        assert error(login(d, pki["web"])) == (400, [NO_MATCH])
        assert login(d, pki["db"]).status_code == 200
        read = d.call("GET", "auth/cert/crls/main")
        assert read.json["data"] == {"serials": {str(pki["web"].cert.serial_number): {}}}
        assert d.call("LIST", "auth/cert/crls").json["data"]["keys"] == ["main"]
    finally:
        assert d.call("DELETE", "auth/cert/crls/main").status_code == 204
    assert login(d, pki["web"]).status_code == 200
    assert error(d.call("DELETE", "auth/cert/crls/main")) == (400, ["no such CRL main"])
    assert error(d.call("GET", "auth/cert/crls/main")) == (400, ["no such CRL main"])
    assert error(d.call("POST", "auth/cert/crls/x", json={})) == (
        400, ["one of 'crl' or 'url' must be provided"])
    status, errors = error(d.call("POST", "auth/cert/crls/x", json={"crl": "garbage"}))
    assert status == 400 and errors[0].startswith("failed to parse CRL: ")


def test_role_read_list_and_bad_writes(d: DevNode, pki: dict[str, Issued]) -> None:
    read = d.call("GET", "auth/cert/certs/web")
    assert read.status_code == 200
    data = read.json["data"]
    assert data["certificate"] == pki["ca"].pem and data["display_name"] == "webs"
    assert data["token_policies"] == ["web"] and data["token_ttl"] == 3600
    assert data["allowed_common_names"] is None and data["token_type"] == "default"
    assert "policies" not in data and "ttl" not in data
    assert d.call("LIST", "auth/cert/certs").json["data"]["keys"] == ["web"]
    assert d.call("GET", "auth/cert/certs/none").status_code == 404
    assert error(d.call("POST", "auth/cert/certs/bad", json={})) == (
        400, ["failed to parse certificate"])
    assert error(d.call("POST", "auth/cert/certs/bad", json={"certificate": "x"})) == (
        400, ["failed to parse certificate"])
    assert error(d.call("POST", "auth/cert/certs/bad", json={
        "certificate": pki["server_only"].pem})) == (
        400, ["nonCA certificates should have TLS client authentication set as an "
              "extended key usage"])
    assert error(d.call("POST", "auth/cert/certs/bad", json={
        "certificate": pki["ca"].pem, "token_ttl": 100, "token_max_ttl": 10})) == (
        400, ["'token_ttl' cannot be greater than 'token_max_ttl'"])
    # The deprecated names are checked by the method itself, with its own text.
    assert error(d.call("POST", "auth/cert/certs/bad", json={
        "certificate": pki["ca"].pem, "ttl": 100, "max_ttl": 10})) == (
        400, ["ttl should be shorter than max_ttl"])
    assert d.call("GET", "auth/cert/certs/bad").status_code == 404


def test_deprecated_fields_map_to_token_fields(d: DevNode, pki: dict[str, Issued]) -> None:
    assert d.call("POST", "auth/cert/certs/old", json={
        "certificate": pki["ca"].pem, "policies": "a,b", "lease": 120,
        "max_ttl": "1h"}).status_code == 204
    try:
        data = d.call("GET", "auth/cert/certs/old").json["data"]
        assert data["token_policies"] == ["a", "b"] and data["policies"] == ["a", "b"]
        assert data["token_ttl"] == 120 and data["ttl"] == 120
        assert data["token_max_ttl"] == 3600 and data["max_ttl"] == 3600
        assert d.call("POST", "auth/cert/certs/old", json={
            "token_policies": "c"}).status_code == 204
        data = d.call("GET", "auth/cert/certs/old").json["data"]
        assert data["token_policies"] == ["c"] and "policies" not in data
    finally:
        d.call("DELETE", "auth/cert/certs/old")


def test_token_bound_cidrs_refuse_other_clients(d: DevNode, pki: dict[str, Issued]) -> None:
    assert d.call("POST", "auth/cert/certs/far", json={
        "certificate": pki["ca"].pem, "token_bound_cidrs": "10.9.0.0/16"}).status_code == 204
    try:
        resp = login(d, pki["web"], name="far")
        assert error(resp) == (403, ["permission denied"])
    finally:
        d.call("DELETE", "auth/cert/certs/far")


def test_config(d: DevNode) -> None:
    assert d.call("GET", "auth/cert/config").json["data"] == {
        "disable_binding": False, "enable_identity_alias_metadata": False,
        "ocsp_cache_size": 0}
    assert error(d.call("POST", "auth/cert/config", json={"ocsp_cache_size": 1})) == (
        400, ["invalid cache size, must be >= 2 and <= 100000"])
    assert d.call("POST", "auth/cert/config", json={
        "enable_identity_alias_metadata": True}).status_code == 204
    try:
        assert d.call("GET", "auth/cert/config").json["data"][
            "enable_identity_alias_metadata"] is True
    finally:
        d.call("POST", "auth/cert/config", json={"enable_identity_alias_metadata": False})


def test_a_least_privilege_token_manages_roles_only(
        d: DevNode, pki: dict[str, Issued]) -> None:
    assert d.call("POST", "sys/policies/acl/cert-admin", json={"policy": (
        'path "auth/cert/certs/*" { capabilities = ["create", "update", "read"] }')}
    ).status_code == 204
    token = d.call("POST", "auth/token/create", json={
        "policies": ["cert-admin"]}).json["auth"]["client_token"]
    resp = call(d, "POST", "auth/cert/certs/team", token=token, json={
        "certificate": pki["ca"].pem})
    assert resp.status_code == 204
    assert call(d, "GET", "auth/cert/certs/team", token=token).status_code == 200
    assert call(d, "DELETE", "auth/cert/certs/team", token=token).status_code == 403
    assert call(d, "POST", "auth/cert/crls/x", token=token,
                json={"crl": make_crl(pki["ca"], [])}).status_code == 403
    d.call("DELETE", "auth/cert/certs/team")


def test_metadata_extensions_and_identity_alias_metadata(
        d: DevNode, pki: dict[str, Issued]) -> None:
    assert d.call("POST", "auth/cert/certs/meta", json={
        "certificate": pki["ca"].pem, "allowed_metadata_extensions": "1.2.3.4.5,9.9.9",
        "allowed_common_names": "web1*"}).status_code == 204
    try:
        auth = login(d, pki["web"], name="meta").json["auth"]
        assert auth["metadata"]["1-2-3-4-5"] == "blue" and "9-9-9" not in auth["metadata"]
        entity = d.call("GET", f"identity/entity/id/{auth['entity_id']}").json["data"]
        alias = entity["aliases"][0]
        assert alias["name"] == "web1.example.com" and not alias["metadata"]
        assert d.call("POST", "auth/cert/config", json={
            "enable_identity_alias_metadata": True}).status_code == 204
        again = login(d, pki["web"], name="meta").json["auth"]
        assert again["entity_id"] == auth["entity_id"]  # one entity per common name
    finally:
        d.call("POST", "auth/cert/config", json={"enable_identity_alias_metadata": False})
        d.call("DELETE", "auth/cert/certs/meta")
