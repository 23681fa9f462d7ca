"""The transit engine against OpenBao 2.7, side by side: the same requests to both dev
servers must give the same status codes, the same error texts and the same response
shapes (values that are random, like ciphertexts and creation times, are compared by
form: prefix, decoded length, type).

Covers keys create/read/list/delete/config, rotate, trim, encrypt/decrypt/rewrap
(single and batch, context, associated_data, key_version, per-item errors,
partial_failure_response_code), datakey, cache-config and config/keys, bad input
(wrong base64, trimmed and future versions, tampered ciphertexts, unknown key types,
a 10,000-item batch), and ACL policies with a least-privilege token (issue 14 point 4).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support import requires
from tests.support.servers import bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 30
_CT = re.compile(r"vault:v(\d+):([A-Za-z0-9+/=]*)")
_VOLATILE = {"request_id", "lease_id", "lease_duration", "renewable", "wrap_info", "auth",
             "mount_type"}


class Server:
    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url

    def call(self, method: str, path: str, body: Any = None,
             token: str = ROOT) -> requests.Response:
        return requests.request(method, f"{self.url}/v1/{path}",
                                headers={"X-Vault-Token": token}, json=body,
                                timeout=TIMEOUT, allow_redirects=False)

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        resp = self.call(method, path, body)
        assert resp.status_code in (200, 204), (self.kind, path, resp.text)
        return resp.json() if resp.status_code == 200 else {}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    requires.bao()
    with strongroom_dev_server(tmp_path_factory.mktemp("sr"), root_token=ROOT) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao"), root_token=ROOT) as theirs:
        pair = {"openbao": Server("openbao", theirs.url),
                "strongroom": Server("strongroom", ours.url)}
        for server in pair.values():
            server.ok("POST", "sys/mounts/transit", {"type": "transit"})
        yield pair


def shape(value: Any, loose: frozenset[str] = frozenset({"public_key"})) -> Any:
    """A value with its random parts replaced by their form; the fields named in
    ``loose`` (random base64: public keys, data keys) by their decoded length."""
    if isinstance(value, dict):
        return {k: (f"<base64 {len(base64.b64decode(v))}B>" if k in loose and isinstance(
            v, str) and v and not v.startswith("-----") else shape(v, loose))
            for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, list):
        return [shape(v, loose) for v in value]
    if isinstance(value, str):
        match = _CT.fullmatch(value)
        if match:
            return f"<ciphertext v{match.group(1)} {len(base64.b64decode(match.group(2)))}B>"
        if re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", value):
            return "<time>"
        if value.startswith("-----BEGIN"):
            return value.split("\n", 1)[0]
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
        return "<unix time>"
    return value


def observe(resp: requests.Response, *loose: str) -> tuple[int, Any]:
    if resp.status_code == 204 or not resp.content:
        return resp.status_code, None
    body = resp.json()
    return resp.status_code, shape(body, frozenset({"public_key", *loose}))


def same(servers: dict[str, Server], fn: Callable[[Server], Any]) -> Any:
    seen = {kind: fn(server) for kind, server in servers.items()}
    assert seen["strongroom"] == seen["openbao"], seen
    return seen["strongroom"]


def both(servers: dict[str, Server], method: str, path: str, body: Any = None,
         loose: tuple[str, ...] = ()) -> Any:
    return same(servers, lambda s: observe(s.call(method, path, body), *loose))


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


# -- keys ----------------------------------------------------------------------------------

KEY_TYPES = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305",
             "ed25519", "ecdsa-p256",
             "ecdsa-p384", "ecdsa-p521", "rsa-2048"]


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_create_and_read_every_type(servers: dict[str, Server], key_type: str) -> None:
    name = f"t-{key_type}"
    status, body = both(servers, "POST", f"transit/keys/{name}", {"type": key_type})
    assert status == 200 and body["data"]["type"] == key_type
    both(servers, "GET", f"transit/keys/{name}")
    both(servers, "POST", f"transit/keys/{name}/rotate")
    status, body = both(servers, "GET", f"transit/keys/{name}")
    assert sorted(body["data"]["keys"]) == ["1", "2"]


def test_hmac_keys(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/hm", {"type": "hmac"})  # no key_size: Vault's 500
    both(servers, "POST", "transit/keys/hm", {"type": "hmac", "key_size": 16})
    both(servers, "POST", "transit/keys/hm", {"type": "hmac", "key_size": 64})
    both(servers, "GET", "transit/keys/hm")
    both(servers, "POST", "transit/keys/hm2", {"type": "aes256-gcm96", "key_size": 64})


def test_create_options_and_errors(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/bad", {"type": "nope"})
    both(servers, "POST", "transit/keys/bad", {"convergent_encryption": True})
    both(servers, "POST", "transit/keys/bad", {"type": "ecdsa-p256", "derived": True})
    both(servers, "POST", "transit/keys/bad", {"type": "ed25519", "derived": True,
                                               "convergent_encryption": True})
    both(servers, "POST", "transit/keys/bad", {"auto_rotate_period": "10m"})
    both(servers, "POST", "transit/keys/opt", {"derived": True, "convergent_encryption": True,
                                               "exportable": True,
                                               "allow_plaintext_backup": True,
                                               "auto_rotate_period": "2h"})
    both(servers, "POST", "transit/keys/opt", {"type": "rsa-2048"})  # exists: a warning
    both(servers, "GET", "transit/keys/opt")
    both(servers, "GET", "transit/keys/missing")
    both(servers, "POST", "transit/keys/dk", {"derived": True})
    both(servers, "GET", "transit/keys/dk")
    both(servers, "POST", "transit/keys/ded", {"type": "ed25519", "derived": True})
    both(servers, "GET", "transit/keys/ded")


def test_list_and_delete(servers: dict[str, Server]) -> None:
    for name in ("ld-a", "ld-b", "ld-c"):
        both(servers, "POST", f"transit/keys/{name}")
    same(servers, lambda s: s.call("LIST", "transit/keys?after=ld-a&limit=1").json()
         ["data"]["keys"])
    both(servers, "DELETE", "transit/keys/ld-a")
    both(servers, "DELETE", "transit/keys/ld-nothing")
    both(servers, "POST", "transit/keys/ld-a/config", {"deletion_allowed": True})
    both(servers, "DELETE", "transit/keys/ld-a")
    both(servers, "GET", "transit/keys/ld-a")
    both(servers, "POST", "transit/encrypt/ld-a", {"plaintext": b64("x")})


def test_config_rotate_trim(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/cfg")
    for _ in range(4):
        both(servers, "POST", "transit/keys/cfg/rotate")
    both(servers, "POST", "transit/keys/nokey/rotate")
    both(servers, "POST", "transit/keys/nokey/config", {"deletion_allowed": True})
    for body in ({"min_decryption_version": 9}, {"min_decryption_version": -1},
                 {"min_encryption_version": 9}, {"min_decryption_version": 0},
                 {"min_decryption_version": 3, "min_encryption_version": 2},
                 {"auto_rotate_period": "30m"}, {"auto_rotate_period": "1h"},
                 {"exportable": True}, {"exportable": False}, {}):
        both(servers, "POST", "transit/keys/cfg/config", body)
    both(servers, "POST", "transit/keys/cfg/trim", {"min_available_version": 2})
    both(servers, "POST", "transit/keys/cfg/config",
         {"min_decryption_version": 3, "min_encryption_version": 4})
    both(servers, "POST", "transit/keys/cfg/trim", {})
    both(servers, "POST", "transit/keys/cfg/trim", {"min_available_version": 4})
    both(servers, "POST", "transit/keys/cfg/trim", {"min_available_version": 0})
    both(servers, "POST", "transit/keys/cfg/trim", {"min_available_version": 3})
    both(servers, "POST", "transit/keys/cfg/trim", {"min_available_version": 2})
    both(servers, "POST", "transit/keys/nokey/trim", {"min_available_version": 1})
    both(servers, "POST", "transit/keys/cfg/config", {"min_decryption_version": 1})
    both(servers, "GET", "transit/keys/cfg")


# -- encrypt / decrypt -----------------------------------------------------------------------

def _encrypt(s: Server, name: str, body: dict[str, Any]) -> str:
    return str(s.ok("POST", f"transit/encrypt/{name}", body)["data"]["ciphertext"])


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305",
                                      "xchacha20-poly1305",
                                      "rsa-2048"])
def test_encrypt_decrypt_round_trip(servers: dict[str, Server], key_type: str) -> None:
    name = f"ed-{key_type}"
    both(servers, "POST", f"transit/keys/{name}", {"type": key_type})
    both(servers, "POST", f"transit/encrypt/{name}", {"plaintext": b64("hello")})
    both(servers, "POST", f"transit/encrypt/{name}", {"plaintext": ""})

    def round_trip(s: Server) -> Any:
        ct = _encrypt(s, name, {"plaintext": b64("hello world")})
        return observe(s.call("POST", f"transit/decrypt/{name}", {"ciphertext": ct}))
    same(servers, round_trip)
    both(servers, "POST", f"transit/encrypt/{name}",
         {"plaintext": b64("x"), "associated_data": b64("ad")})


def test_bad_input(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/bi")
    for body in ({"plaintext": "not base64!"}, {"plaintext": "aGk"}, {}, {"plaintext": 5},
                 {"plaintext": b64("x"), "key_version": 2},
                 {"plaintext": b64("x"), "key_version": -1},
                 {"plaintext": b64("x"), "associated_data": "%%%"},
                 {"plaintext": b64("x"), "context": b64("c")}):
        both(servers, "POST", "transit/encrypt/bi", body)
    for ct in ("", "nope", "vault:v1", "vault:vX:abc", "vault:v2:" + b64(b"\0" * 40),
               "vault:v1:@@@", "vault:v1:" + b64(b"short"), "vault:v1:" + b64(b"\0" * 40),
               "vault:v0:" + b64(b"\0" * 40), "vault:v-1:" + b64(b"\0" * 40)):
        both(servers, "POST", "transit/decrypt/bi", {"ciphertext": ct})

    def tampered(s: Server) -> Any:
        ct = _encrypt(s, "bi", {"plaintext": b64("secret")})
        raw = bytearray(base64.b64decode(ct.split(":")[2]))
        raw[-1] ^= 1
        bad = "vault:v1:" + base64.b64encode(bytes(raw)).decode()
        wrong_ad = s.call("POST", "transit/decrypt/bi",
                          {"ciphertext": ct, "associated_data": b64("other")})
        return observe(s.call("POST", "transit/decrypt/bi", {"ciphertext": bad})), \
            observe(wrong_ad)
    same(servers, tampered)

    def trimmed(s: Server) -> Any:
        s.ok("POST", "transit/keys/bt")
        old = _encrypt(s, "bt", {"plaintext": b64("old")})
        s.ok("POST", "transit/keys/bt/rotate")
        s.ok("POST", "transit/keys/bt/config",
             {"min_decryption_version": 2, "min_encryption_version": 2})
        s.ok("POST", "transit/keys/bt/trim", {"min_available_version": 2})
        return observe(s.call("POST", "transit/decrypt/bt", {"ciphertext": old}))
    same(servers, trimmed)


def test_batches(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/bb")
    items = [{"plaintext": b64("a"), "reference": "r1"}, {"plaintext": "!!"},
             {"plaintext": b64("c"), "key_version": 7}]
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": items})
    both(servers, "POST", "transit/encrypt/bb",
         {"batch_input": items, "partial_failure_response_code": 207})
    both(servers, "POST", "transit/encrypt/bb",
         {"batch_input": items, "partial_failure_response_code": 900})
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": []})
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": [{"plaintext": 1}, "x"]})
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": [{"plaintext": 1},
                                                                  {"context": 2}]})
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": [{"plaintext": b64("a"),
                                                                   "context": b64("c")},
                                                                  {"plaintext": b64("b")}]})
    both(servers, "POST", "transit/encrypt/bb", {"batch_input": [{"key_version": 1.5,
                                                                   "plaintext": ""}]})

    def decrypt_batch(s: Server) -> Any:
        good = _encrypt(s, "bb", {"plaintext": b64("good")})
        batch = [{"ciphertext": good}, {"ciphertext": "vault:v9:AAAA"}, {"ciphertext": ""},
                 {"ciphertext": good, "reference": "ref"}]
        return (observe(s.call("POST", "transit/decrypt/bb", {"batch_input": batch})),
                observe(s.call("POST", "transit/rewrap/bb", {"batch_input": batch})),
                observe(s.call("POST", "transit/decrypt/bb", {"batch_input": [{}]})))
    same(servers, decrypt_batch)


def test_batch_of_ten_thousand(servers: dict[str, Server]) -> None:
    """OpenBao 2.7 refuses the request at its HTTP layer (max_request_json_strings,
    1,000 strings by default); Strongroom's limit is 10,000 items (its HTTP layer's
    bound on JSON arrays), so it processes this one: each item succeeds or fails on its
    own, the bad one does not fail the others."""
    both(servers, "POST", "transit/keys/big")
    items = [{"plaintext": b64(f"item {i}")} for i in range(10_000)]
    items[5000] = {"plaintext": "not base64"}
    theirs = servers["openbao"].call("POST", "transit/encrypt/big", {"batch_input": items})
    assert (theirs.status_code, theirs.json()) == (400, {"errors": [
        "refused JSON input due to high complexity: exceeded maximum number of strings"]})
    ours = servers["strongroom"].call("POST", "transit/encrypt/big", {"batch_input": items})
    results = ours.json()["data"]["batch_results"]
    assert ours.status_code == 400 and len(results) == 10_000
    assert [i for i, r in enumerate(results) if "error" in r] == [5000]
    assert results[5000] == {"error": "illegal base64 data at input byte 3", "reference": ""}
    back = servers["strongroom"].call("POST", "transit/decrypt/big", {"batch_input": [
        {"ciphertext": r["ciphertext"]} for r in results[:5000]]}).json()["data"]
    assert [base64.b64decode(r["plaintext"]) for r in back["batch_results"][:3]] == [
        b"item 0", b"item 1", b"item 2"]
    # One more item is past Strongroom's documented limit: a clear 400 before any work.
    over = servers["strongroom"].call("POST", "transit/encrypt/big",
                                      {"batch_input": [*items, {"plaintext": ""}]})
    assert (over.status_code, over.json()) == (400, {"errors": [
        "refused JSON input due to high complexity: JSON array exceeds allowed element "
        "count"]})


def test_derived_and_convergent(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/dv", {"derived": True})
    both(servers, "POST", "transit/encrypt/dv", {"plaintext": b64("x")})
    both(servers, "POST", "transit/encrypt/dv", {"plaintext": b64("x"), "context": "%%"})
    both(servers, "POST", "transit/keys/cv", {"derived": True, "convergent_encryption": True})

    def convergent(s: Server) -> Any:
        one = _encrypt(s, "cv", {"plaintext": b64("same"), "context": b64("ctx")})
        two = _encrypt(s, "cv", {"plaintext": b64("same"), "context": b64("ctx")})
        other = _encrypt(s, "cv", {"plaintext": b64("same"), "context": b64("ctx2")})
        wrong = s.call("POST", "transit/decrypt/cv", {"ciphertext": one,
                                                       "context": b64("ctx2")})
        return one == two, one == other, observe(wrong)
    same(servers, convergent)
    # Upsert on encrypt: creates a derived key from the context, or refuses.
    both(servers, "POST", "transit/encrypt/up1", {"plaintext": b64("x"), "context": b64("c")})
    both(servers, "GET", "transit/keys/up1")
    both(servers, "POST", "transit/encrypt/up2", {"plaintext": b64("x"), "type": "ecdsa-p256"})
    both(servers, "POST", "transit/encrypt/up3", {"plaintext": b64("x"),
                                                  "convergent_encryption": True})


def test_datakey_and_cache_config(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/keys/dkey")
    for kind in ("plaintext", "wrapped", "other"):
        both(servers, "POST", f"transit/datakey/{kind}/dkey", loose=("plaintext",))
    both(servers, "POST", "transit/datakey/plaintext/dkey", {"bits": 512},
         loose=("plaintext",))
    both(servers, "POST", "transit/datakey/plaintext/dkey", {"bits": 100})
    both(servers, "POST", "transit/datakey/plaintext/nokey")
    both(servers, "GET", "transit/cache-config")
    both(servers, "POST", "transit/cache-config", {"size": 3})
    both(servers, "POST", "transit/cache-config", {"size": 20})
    both(servers, "GET", "transit/cache-config")
    both(servers, "POST", "transit/cache-config", {"size": 0})
    both(servers, "GET", "transit/config/keys")


# -- ACL policies (issue 14 point 4) ---------------------------------------------------------

POLICY = """
path "transit/keys/*" {
  capabilities = ["create", "update", "read"]
  denied_parameters = { "exportable" = [true, "true"] }
  allowed_parameters = { "type" = ["aes128-gcm96", "aes256-gcm96"], "*" = [] }
}
path "transit/encrypt/only-this" { capabilities = ["update"] }
path "transit/decrypt/only-this" { capabilities = ["update"] }
"""


def test_least_privilege_policy(servers: dict[str, Server]) -> None:
    def run(s: Server) -> Any:
        s.ok("PUT", "sys/policies/acl/transit-lp", {"policy": POLICY})
        token = s.ok("POST", "auth/token/create", {"policies": ["transit-lp"]})[
            "auth"]["client_token"]
        s.ok("POST", "transit/keys/only-this")
        s.ok("POST", "transit/keys/not-this")
        calls = [
            ("POST", "transit/keys/lp-a", {"type": "aes256-gcm96"}),
            ("POST", "transit/keys/lp-b", {"type": "rsa-2048"}),
            ("POST", "transit/keys/lp-c", {"exportable": True}),
            ("POST", "transit/keys/lp-d", {"exportable": False}),
            ("POST", "transit/keys/lp-e", {"type": "ed25519", "exportable": "true"}),
            ("POST", "transit/encrypt/only-this", {"plaintext": b64("x")}),
            ("POST", "transit/encrypt/only-this", {"plaintext": b64("x"),
                                                    "name": "not-this"}),
            ("POST", "transit/encrypt/not-this", {"plaintext": b64("x")}),
            ("POST", "transit/encrypt/new-key", {"plaintext": b64("x")}),
        ]
        seen = [observe(s.call(m, p, body, token=token)) for m, p, body in calls]
        # The body's name never redirected the request: not-this has no new version and
        # the ciphertext decrypts with only-this.
        ct = s.call("POST", "transit/encrypt/only-this",
                    {"plaintext": b64("y"), "name": "not-this"}, token=token).json()
        back = s.call("POST", "transit/decrypt/only-this",
                      {"ciphertext": ct["data"]["ciphertext"]}, token=token).json()
        return seen, back["data"]["plaintext"]
    results = {kind: run(server) for kind, server in servers.items()}
    for i, (ours, theirs) in enumerate(zip(results["strongroom"][0], results["openbao"][0],
                                           strict=True)):
        assert ours == theirs, (i, ours, theirs)
    seen, plaintext = results["strongroom"]
    assert plaintext == b64("y")
    statuses = [status for status, _ in seen]
    assert statuses == [200, 403, 403, 200, 403, 200, 200, 403, 403]


def test_type_specific_errors(servers: dict[str, Server]) -> None:
    for name, body in (("ts-ed", {"type": "ed25519", "derived": True}),
                       ("ts-rsa", {"type": "rsa-2048"}),
                       ("ts-hm", {"type": "hmac", "key_size": 32}),
                       ("ts-dv", {"derived": True})):
        both(servers, "POST", f"transit/keys/{name}", body)
    calls: list[tuple[str, str, Any]] = [
        ("GET", "transit/keys/ts-ed?context=Y3R4", None),
        ("GET", "transit/keys/ts-ed?context=%25%25", None),
        ("POST", "transit/encrypt/ts-ed", {"plaintext": b64("x")}),
        ("POST", "transit/encrypt/ts-hm", {"plaintext": b64("x")}),
        ("POST", "transit/encrypt/ts-rsa", {"plaintext": b64("x"), "associated_data": b64("a")}),
        ("POST", "transit/encrypt/ts-rsa", {"plaintext": b64("x" * 300)}),
        ("POST", "transit/decrypt/ts-rsa", {"ciphertext": "vault:v1:AAAA"}),
        ("POST", "transit/decrypt/ts-hm", {"ciphertext": "vault:v1:AAAA"}),
        ("POST", "transit/datakey/wrapped/ts-dv", None),
        ("POST", "transit/datakey/wrapped/ts-dv", {"context": "%%"}),
        ("POST", "transit/datakey/wrapped/ts-rsa", {"associated_data": b64("a")}),
        ("POST", "transit/datakey/wrapped/ts-rsa", None),
        ("POST", "transit/datakey/wrapped/ts-ed", None),
        ("POST", "transit/rewrap/ts-dv", {"ciphertext": "vault:v1:AAAA"}),
        ("POST", "transit/rewrap/ts-dv", {}),
        ("POST", "transit/rewrap/ts-none", {"ciphertext": "x"}),
        ("POST", "transit/keys/ts-dv/rotate", {"external_key_ref": "x"}),
        ("POST", "transit/keys/ts-dv", {"key_size": 32}),
        ("POST", "transit/keys/ts-new", {"type": "hmac", "key_size": 8}),
        ("POST", "transit/keys/ts-new", {"external_key_ref": "a:b"}),
        ("PUT", "transit/cache-config", {"size": -1}),
        ("POST", "transit/keys/ts-hm/rotate", None),
        ("GET", "transit/keys/ts-hm", None),
        ("POST", "transit/encrypt/ts-dv", {"batch_input": [
            {"plaintext": b64("x"), "context": b64("c"), "key_version": 0, "reference": 5}]}),
        ("POST", "transit/encrypt/ts-dv", {"batch_input": {"a": 1}}),
        ("POST", "transit/encrypt/ts-dv", {"batch_input": "x"}),
        ("POST", "transit/decrypt/ts-dv", {"batch_input": [{"ciphertext": 5}]}),
        ("POST", "transit/decrypt/ts-dv", {"batch_input": [
            {"ciphertext": "vault:v1:AAAA", "context": b64("c"), "associated_data": "%%"}]}),
    ]
    for method, path, body in calls:
        both(servers, method, path, body)

    def datakey_round_trip(s: Server) -> Any:
        made = s.ok("POST", "transit/datakey/plaintext/ts-dv", {"context": b64("c")})["data"]
        back = s.ok("POST", "transit/decrypt/ts-dv", {"ciphertext": made["ciphertext"],
                                                       "context": b64("c")})["data"]
        return back["plaintext"] == made["plaintext"], len(base64.b64decode(back["plaintext"]))
    assert same(servers, datakey_round_trip) == (True, 32)


def test_disable_upsert(servers: dict[str, Server]) -> None:
    both(servers, "POST", "transit/config/keys", {"disable_upsert": True})
    both(servers, "GET", "transit/config/keys")
    both(servers, "POST", "transit/encrypt/du-new", {"plaintext": b64("x")})
    both(servers, "POST", "transit/config/keys", {"disable_upsert": False})
    both(servers, "POST", "transit/encrypt/du-new", {"plaintext": b64("x")})


def test_soft_delete(servers: dict[str, Server]) -> None:
    """OpenBao's keys/<name>/soft-delete: kept in storage, refused for every use."""
    both(servers, "POST", "transit/keys/sd")

    def run(s: Server) -> Any:
        ct = _encrypt(s, "sd", {"plaintext": b64("x")})
        seen = [observe(s.call(m, p, body)) for m, p, body in (
            ("DELETE", "transit/keys/sd/soft-delete", None),
            ("DELETE", "transit/keys/sd/soft-delete", None),
            ("DELETE", "transit/keys/sd-none/soft-delete", None),
            ("POST", "transit/encrypt/sd", {"plaintext": b64("x")}),
            ("POST", "transit/decrypt/sd", {"ciphertext": ct}),
            ("POST", "transit/encrypt/sd", {"batch_input": [{"plaintext": b64("x")}]}),
            ("POST", "transit/rewrap/sd", {"ciphertext": ct}),
            ("POST", "transit/datakey/plaintext/sd", None),
            ("POST", "transit/keys/sd/rotate", None),
            ("GET", "transit/keys/sd", None),
            ("POST", "transit/keys/sd/soft-delete-restore", None),
            ("POST", "transit/keys/sd/soft-delete-restore", None),
            ("POST", "transit/keys/sd-none/soft-delete-restore", None),
            ("POST", "transit/decrypt/sd", {"ciphertext": ct}))]
        return seen
    same(servers, run)
