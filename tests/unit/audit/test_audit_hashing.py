"""What the audit log HMACs and what it leaves in clear (Vault's hashstructure rules)."""

from __future__ import annotations

import hashlib
import hmac

from strongroom.audit.entry import FormatConfig, LogInput, compact, encode, render
from strongroom.audit.hashing import elide_list_data, hash_structure, identified_hmac
from strongroom.audit.jsonx import to_jsonx


def test_identified_hmac_is_hmac_sha256_keyed_by_the_salt() -> None:
    expected = hmac.new(b"salt", b"hunter2", hashlib.sha256).hexdigest()
    assert identified_hmac(b"salt", "hunter2") == "hmac-sha256:" + expected


def test_strings_hashed_times_numbers_keys_and_ignored_keys_in_clear() -> None:
    data = {"password": "hunter2", "n": 5, "ok": True, "none": None,
            "when": "2026-12-05T07:01:47.563918511Z", "offset": "2026-12-05T07:01:47+02:00",
            "nested": {"list": ["a", 1, {"deep": "b"}]}, "plain": "keep"}
    out = hash_structure(data, lambda s: f"H({s})", ignored=("plain",))
    assert out == {"password": "H(hunter2)", "n": 5, "ok": True, "none": None,
                   "when": "2026-12-05T07:01:47.563918511Z",
                   "offset": "2026-12-05T07:01:47+02:00",
                   "nested": {"list": ["H(a)", 1, {"deep": "H(b)"}]}, "plain": "keep"}
    assert data["password"] == "hunter2"  # the request's own data is not touched
    # Not a time: hashed (a date alone, or a time with junk).
    assert hash_structure(["2026-12-05", "2026-12-05T07:01:47Zx"], lambda s: "H") == ["H", "H"]


def test_elide_list_responses_keeps_only_counts() -> None:
    assert elide_list_data({"keys": ["a", "b"], "key_info": {"a": {}}, "other": "x"}) == {
        "keys": 2, "key_info": 1, "other": "x"}


def _input() -> LogInput:
    return LogInput(
        kind="response",
        auth={"client_token": "hvs.secret", "accessor": "acc", "policies": ["root"],
              "remaining_uses": 0, "token_type": "service"},
        request={"id": "r1", "operation": "list", "client_token": "hvs.secret",
                 "client_token_accessor": "acc", "path": "secret/metadata/",
                 "data": None, "remote_port": 0},
        response={"mount_type": "kv", "data": {"keys": ["a", "b"]},
                  "auth": {"client_token": "hvs.child", "accessor": "acc2"},
                  "wrap_info": {"token": "hvs.wrap", "accessor": "acc3", "ttl": 60}},
        list_op=True, time_ns=1_796_454_107_109_452_115)


def test_render_hashes_tokens_and_accessors_and_omits_empty_fields() -> None:
    entry = render(_input(), FormatConfig(), lambda s: f"H({s})")
    assert entry["time"] == "2026-12-05T07:01:47.109452115Z"
    assert entry["auth"] == {"client_token": "H(hvs.secret)", "accessor": "H(acc)",
                             "policies": ["root"], "token_type": "service"}
    assert entry["request"] == {"id": "r1", "operation": "list",
                                "client_token": "H(hvs.secret)",
                                "client_token_accessor": "H(acc)", "path": "secret/metadata/"}
    assert entry["response"]["auth"] == {"client_token": "H(hvs.child)", "accessor": "H(acc2)"}
    assert entry["response"]["wrap_info"] == {"token": "H(hvs.wrap)", "accessor": "H(acc3)",
                                              "ttl": 60}
    assert entry["response"]["data"] == {"keys": ["H(a)", "H(b)"]}
    assert "error" not in entry


def test_options_hmac_accessor_log_raw_elide_prefix_jsonx() -> None:
    plain = render(_input(), FormatConfig(hmac_accessor=False), lambda s: f"H({s})")
    assert plain["auth"]["accessor"] == "acc" and plain["auth"]["client_token"] == "H(hvs.secret)"
    assert plain["response"]["wrap_info"]["accessor"] == "acc3"
    raw = render(_input(), FormatConfig(raw=True), lambda s: f"H({s})")
    assert raw["auth"]["client_token"] == "hvs.secret"
    elided = render(_input(), FormatConfig(elide_list_responses=True), lambda s: f"H({s})")
    assert elided["response"]["data"] == {"keys": 2}
    line = encode(elided, FormatConfig(prefix="AUDIT:"))
    assert line.startswith(b"AUDIT:{") and line.endswith(b"}\n") and line.count(b"\n") == 1
    xml = encode(elided, FormatConfig(format="jsonx"))
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?><json:object')
    assert b'<json:string name="type">response</json:string>' in xml and xml.count(b"\n") == 1


def test_jsonx_escapes_and_types() -> None:
    assert to_jsonx({"a": "<&>", "b": [1, None, False]}) == (
        b'<?xml version="1.0" encoding="UTF-8"?><json:object xmlns:json='
        b'"http://www.ibm.com/xmlns/prod/2009/jsonx"><json:string name="a">&lt;&amp;&gt;'
        b'</json:string><json:array name="b"><json:number>1</json:number><json:null/>'
        b"<json:boolean>false</json:boolean></json:array></json:object>")


def test_compact_is_go_omitempty() -> None:
    assert compact({"a": "", "b": 0, "c": False, "d": [], "e": {}, "f": None, "g": True,
                    "h": 1, "i": "x"}) == {"g": True, "h": 1, "i": "x"}
