"""JSON bodies are bounded at the edge, and nothing accepted is lost on the way out.

Before these bounds, data nested 300 deep was wrapped (200) but its unwrap
answered 500 *after* deleting the wrapping token (the data was gone), a
cubbyhole write of it could never be read back, and 10**30 became 1e+30.
"""

from __future__ import annotations

import json
from typing import Any

import falcon.testing
import pytest

from strongroom.errors import BadRequestError
from strongroom.http.edge import (
    MAX_JSON_ARRAY_ELEMENT_COUNT,
    MAX_JSON_DEPTH,
    MAX_JSON_OBJECT_ENTRY_COUNT,
    MAX_JSON_STRING_VALUE_LENGTH,
    JsonLimits,
    parse_body,
)
from strongroom.jsoncodec import UnencodableError, dumps
from strongroom.wsgi import Node

COMPLEX = "refused JSON input due to high complexity: "


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` objects one inside the other, ``leaf`` innermost."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def refused(raw: bytes, limits: JsonLimits | None = None) -> str:
    with pytest.raises(BadRequestError) as info:
        parse_body(raw, limits) if limits else parse_body(raw)
    return info.value.message


# --------------------------------------------------------------------------- parse_body


def test_defaults_are_vaults() -> None:
    # Vault 1.18+'s listener defaults (sdk/helper/jsonutil).
    assert (MAX_JSON_DEPTH, MAX_JSON_STRING_VALUE_LENGTH, MAX_JSON_OBJECT_ENTRY_COUNT,
            MAX_JSON_ARRAY_ELEMENT_COUNT) == (500, 1024 * 1024, 10_000, 10_000)


def test_depth_is_bounded_at_vaults_default() -> None:
    assert parse_body(nested_text(MAX_JSON_DEPTH)) == nested(MAX_JSON_DEPTH - 1, {"a": 1})
    assert refused(nested_text(MAX_JSON_DEPTH + 1)) == COMPLEX + (
        "JSON input exceeds allowed nesting depth")
    # Beyond orjson's own cap (1024) the answer is the same.
    for raw in (b"[" * 5000 + b"]" * 5000, b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"):
        assert refused(raw) == COMPLEX + "JSON input exceeds allowed nesting depth"
    assert refused(b'{"a":[[[]]]}', JsonLimits(max_depth=3)).endswith("nesting depth")
    assert parse_body(b'{"a":[[]]}', JsonLimits(max_depth=3)) == {"a": [[]]}


def test_strings_entries_and_elements_are_bounded() -> None:
    small = JsonLimits(max_string_value_length=8, max_object_entry_count=2,
                       max_array_element_count=2)
    assert parse_body(b'{"k":"12345678"}', small) == {"k": "12345678"}
    assert refused(b'{"k":"123456789"}', small).endswith("string value exceeds allowed length")
    assert refused(b'{"123456789":1}', small).endswith("string value exceeds allowed length")
    # Bytes, not characters: four 2-byte characters fit, five do not.
    assert parse_body('{"k":"éééé"}'.encode(), small) == {"k": "éééé"}
    assert refused('{"k":"ééééé"}'.encode(), small).endswith("exceeds allowed length")
    assert refused(b'{"a":1,"b":2,"c":3}', small).endswith("object exceeds allowed entry count")
    assert refused(b'{"a":[1,2,3]}', small).endswith("array exceeds allowed element count")
    assert refused(b'{"a":{"b":[{"c":"123456789"}]}}', small).endswith("allowed length")
    big = json.dumps({"k": "x" * (MAX_JSON_STRING_VALUE_LENGTH + 1)}).encode()
    assert refused(big).endswith("string value exceeds allowed length")
    many = json.dumps({str(i): i for i in range(MAX_JSON_OBJECT_ENTRY_COUNT + 1)}).encode()
    assert refused(many).endswith("object exceeds allowed entry count")


def test_integers_beyond_64_bits_are_refused_not_rounded() -> None:
    # orjson read 10**30 as the float 1e+30: the stored value silently changed.
    for literal in (b"1" + b"0" * 30, b"18446744073709551616", b"-9223372036854775809"):
        assert "integer out of range" in refused(b'{"v":' + literal + b"}")
    for value in (2**64 - 1, -(2**63), 10**18):
        assert parse_body(json.dumps({"v": value}).encode()) == {"v": value}
    # Long digit runs in strings and in floats are not integers.
    assert parse_body(b'{"v":"1000000000000000000000000000000"}') == {
        "v": "1000000000000000000000000000000"}
    assert parse_body(b'{"v":12345678901234567890123.5}') == {"v": 1.2345678901234568e22}


def test_the_walk_is_skipped_only_where_the_bytes_prove_every_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A body whose byte counts bound every limit is not walked (the walk cost a 100-item
    transit batch ~25% of its time); any count past its bound walks, and counts are
    conservative (braces, colons and commas inside strings count too)."""
    from strongroom.http import edge

    walked: list[object] = []
    real = edge.check_json_limits
    monkeypatch.setattr(edge, "check_json_limits",
                        lambda doc, limits=edge.DEFAULT_JSON_LIMITS: (walked.append(doc),
                                                                      real(doc, limits)))
    batch = json.dumps({"batch_input": [{"plaintext": "eA=="}] * 100}).encode()
    assert parse_body(batch)["batch_input"][99] == {"plaintext": "eA=="}
    assert walked == []
    limits = JsonLimits(max_depth=3, max_object_entry_count=2, max_array_element_count=2)
    assert parse_body(b'{"a":[[]]}', limits) == {"a": [[]]} and walked == []
    # Braces inside a string push the count past the bound: walked, and accepted.
    assert parse_body(b'{"a":"{{{{"}', limits) == {"a": "{{{{"} and len(walked) == 1
    assert refused(b'{"a":[1,2,3]}', limits).endswith("array exceeds allowed element count")
    assert refused(b'{"a":1,"b":2,"c":3}', limits).endswith("exceeds allowed entry count")


def test_everything_accepted_also_encodes() -> None:
    deepest = parse_body(nested_text(MAX_JSON_DEPTH))
    # The envelope, a KV v2 data.data and a wrapped response add a few levels.
    out = dumps({"data": {"data": {"response": deepest}}})
    assert json.loads(out) == {"data": {"data": {"response": deepest}}}
    assert dumps({"v": 2**64 - 1}) == b'{"v":18446744073709551615}'
    assert dumps(nested(3)) == b'{"a":{"a":{"a":1}}}'
    with pytest.raises(UnencodableError):
        dumps(nested(5000))


# --------------------------------------------------------------------------- a node


@pytest.fixture
def root(client: falcon.testing.TestClient) -> dict[str, str]:
    keys = client.simulate_put("/v1/sys/init",
                               json={"secret_shares": 1, "secret_threshold": 1}).json
    client.simulate_put("/v1/sys/unseal", json={"key": keys["keys"][0]})
    return {"X-Vault-Token": keys["root_token"]}


def _wrap(client: falcon.testing.TestClient, root: dict[str, str], payload: Any) -> str:
    resp = client.simulate_post("/v1/sys/wrapping/wrap", json=payload,
                                headers={**root, "X-Vault-Wrap-TTL": "60"})
    assert resp.status_code == 200, resp.text
    return str(resp.json["wrap_info"]["token"])


@pytest.mark.parametrize("depth", [300, MAX_JSON_DEPTH - 1])
def test_deeply_nested_data_unwraps_and_reads_back(
        client: falcon.testing.TestClient, root: dict[str, str], depth: int) -> None:
    payload = {"x": nested(depth - 1)}  # depth levels in all, the body itself included
    token = _wrap(client, root, payload)
    out = client.simulate_post("/v1/sys/wrapping/unwrap", json={"token": token}, headers=root)
    assert out.status_code == 200, out.text
    assert out.json["data"] == payload
    assert client.simulate_post("/v1/cubbyhole/deep", json=payload,
                                headers=root).status_code == 204
    read = client.simulate_get("/v1/cubbyhole/deep", headers=root)
    assert read.status_code == 200 and read.json["data"] == payload


def test_too_deep_data_is_refused_before_anything_is_stored(
        client: falcon.testing.TestClient, root: dict[str, str]) -> None:
    body = b'{"x":' + nested_text(MAX_JSON_DEPTH) + b"}"
    headers = {**root, "Content-Type": "application/json"}
    for path, extra in (("/v1/sys/wrapping/wrap", {"X-Vault-Wrap-TTL": "60"}),
                        ("/v1/cubbyhole/deep", {})):
        resp = client.simulate_post(path, body=body, headers={**headers, **extra})
        assert resp.status_code == 400, resp.text
        assert resp.json["errors"][0].endswith("nesting depth")
    assert client.simulate_get("/v1/cubbyhole/deep", headers=root).status_code == 404


def test_big_integers_are_refused_not_altered(
        client: falcon.testing.TestClient, root: dict[str, str]) -> None:
    headers = {**root, "Content-Type": "application/json"}
    resp = client.simulate_post("/v1/cubbyhole/n", body=b'{"v":1' + b"0" * 30 + b"}",
                                headers=headers)
    assert resp.status_code == 400 and "integer out of range" in resp.json["errors"][0]
    assert client.simulate_get("/v1/cubbyhole/n", headers=root).status_code == 404
    ok = client.simulate_post("/v1/cubbyhole/n", body=b'{"v":18446744073709551615}',
                              headers=headers)
    assert ok.status_code == 204
    assert client.simulate_get("/v1/cubbyhole/n", headers=root).json["data"] == {
        "v": 2**64 - 1}


def test_an_unwrap_that_cannot_be_answered_keeps_the_token(
        node: Node, client: falcon.testing.TestClient, root: dict[str, str]) -> None:
    """The token (and the only copy of the data) go only once the answer encodes."""
    token = _wrap(client, root, {"a": 1})
    entry = node.core.tokens.lookup(token, node.core.now())
    assert entry is not None
    # A stored response no encoder can write (a lone surrogate: the edge refuses those),
    # standing in for anything that makes the answer fail once the token is found.
    stored = (b'{"response":{"data":{"a":"\\ud800"}},"creation_path":"sys/wrapping/wrap",'
              b'"creation_time":"2024-01-01T00:00:00Z","creation_ttl":60}')
    node.core.wrapper._cubby(entry.hash).put("response", stored)
    # Through the body, and as the client token (whose single use is handed back).
    for op, headers, body in (("unwrap", root, {"token": token}),
                              ("rewrap", root, {"token": token}),
                              ("unwrap", {"X-Vault-Token": token}, None)):
        resp = client.simulate_post(f"/v1/sys/wrapping/{op}", json=body, headers=headers)
        assert resp.status_code == 500, resp.text
        looked = client.simulate_post("/v1/sys/wrapping/lookup", json={"token": token})
        assert looked.status_code == 200, (op, looked.text)


@pytest.mark.parametrize("ttl", ["9999999999999999", "99999999999h", "9223372037"])
def test_wrap_ttls_beyond_gos_duration_are_refused(
        client: falcon.testing.TestClient, root: dict[str, str], ttl: str) -> None:
    # OpenBao: 400 (Go's Duration overflows). Accepted, the token expired after year 9999
    # and looking it up by accessor answered 500.
    resp = client.simulate_post("/v1/sys/wrapping/wrap", json={"a": 1},
                                headers={**root, "X-Vault-Wrap-TTL": ttl})
    assert resp.status_code == 400 and "overflow" in resp.json["errors"][0]


def test_the_longest_wrap_ttl_is_usable(
        client: falcon.testing.TestClient, root: dict[str, str]) -> None:
    resp = client.simulate_post("/v1/sys/wrapping/wrap", json={"a": 1},
                                headers={**root, "X-Vault-Wrap-TTL": "9223372036"})
    assert resp.status_code == 200, resp.text
    accessor = resp.json["wrap_info"]["accessor"]
    looked = client.simulate_post("/v1/auth/token/lookup-accessor", json={"accessor": accessor},
                                  headers=root)
    assert looked.status_code == 200, looked.text
