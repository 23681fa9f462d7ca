"""tokenutil: the token_* fields as OpenBao 2.7 parses, renders and applies them (the
error texts were read from a bao dev server's userpass users endpoint)."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.auth.tokenutil import (
    DEPRECATED_FIELDS,
    TOKEN_FIELDS,
    TokenParams,
    cidrs_allow,
    parse_cidrs,
    upgrade,
)
from strongroom.core.logical import Auth
from strongroom.errors import BadRequestError
from strongroom.framework.fields import FieldData

SCHEMA = {**TOKEN_FIELDS, **DEPRECATED_FIELDS}


def parsed(raw: dict[str, Any], start: TokenParams | None = None,
           deprecated: dict[str, str] | None = None) -> TokenParams:
    params = start or TokenParams()
    params.update_from(FieldData(SCHEMA, raw), create=start is None, deprecated=deprecated)
    return params


def test_defaults_render_as_vault_does() -> None:
    assert TokenParams().to_data() == {
        "token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 0,
        "token_no_default_policy": False, "token_num_uses": 0, "token_period": 0,
        "token_policies": [], "token_strictly_bind_ip": False, "token_ttl": 0,
        "token_type": "default"}


def test_fields_parse_with_durations_lists_and_types() -> None:
    params = parsed({"token_ttl": "1h", "token_max_ttl": 7200, "token_period": "0",
                     "token_policies": " A, b,,a", "token_bound_cidrs": "10.1.2.3/8, ::1",
                     "token_num_uses": "3", "token_type": "service",
                     "token_no_default_policy": "true", "token_explicit_max_ttl": "2h"})
    assert params.to_data() == {
        "token_bound_cidrs": ["10.1.2.3/8", "::1"], "token_explicit_max_ttl": 7200,
        "token_max_ttl": 7200, "token_no_default_policy": True, "token_num_uses": 3,
        "token_period": 0, "token_policies": ["A", "b", "", "a"],
        "token_strictly_bind_ip": False, "token_ttl": 3600, "token_type": "service"}
    # An update keeps what it does not name.
    parsed({"token_ttl": 60}, start=params)
    assert params.ttl == 60 and params.max_ttl == 7200 and params.num_uses == 3
    assert TokenParams.from_json(params.to_json()) == params


@pytest.mark.parametrize(("raw", "message"), [
    ({"token_ttl": -5}, "error converting input for field \"token_ttl\": cannot provide "
                        "negative value '-5'"),
    ({"token_num_uses": -1}, "'token_num_uses' cannot be negative"),
    ({"token_ttl": 100, "token_max_ttl": 50},
     "'token_ttl' cannot be greater than 'token_max_ttl'"),
    ({"token_type": "default-service"}, "invalid 'token_type' value \"default-service\""),
    ({"token_type": "batch", "token_period": 5},
     "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens"),
    ({"token_type": "batch", "token_num_uses": 5},
     "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with "
     "limited use count"),
    ({"token_max_ttl": "abc"},
     "error converting input for field \"token_max_ttl\": time: invalid duration \"abc\""),
    ({"token_bound_cidrs": "x"}, "error parsing address \"x\": Unable to convert \"x\" to an "
                                 "IPv4 or IPv6 address, or a UNIX Socket"),
    ({"token_bound_cidrs": ["300.1.1.1"]},
     "error parsing address \"300.1.1.1\": Unable to convert \"300.1.1.1\" to an IPv4 or "
     "IPv6 address, or a UNIX Socket"),
    ({"token_strictly_bind_ip": True, "token_bound_cidrs": "10.0.0.0/8"},
     "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one"),
])
def test_bad_inputs_carry_vaults_texts(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestError) as err:
        parsed(raw)
    assert err.value.message == message


def test_deprecated_fields_stand_in_when_alone() -> None:
    mapping = {"policies": "token_policies", "ttl": "token_ttl"}
    params = parsed({"policies": "B, a,a", "ttl": 30}, deprecated=mapping)
    assert params.policies == ["a", "b"] and params.ttl == 30  # ParsePolicies for old ones
    params = parsed({"policies": "x", "token_policies": "Y"}, deprecated=mapping)
    assert params.policies == ["Y"]  # the new field wins
    data = FieldData(SCHEMA, {"token_policies": "Y"})
    assert upgrade(data, "policies", "token_policies", ["old"], ["Y"]) is None
    data = FieldData(SCHEMA, {"policies": "a"})
    assert upgrade(data, "policies", "token_policies", [], ["a"]) == ["a"]
    data = FieldData(SCHEMA, {})
    assert upgrade(data, "policies", "token_policies", ["keep"], []) == ["keep"]


def test_apply_populates_the_auth() -> None:
    params = parsed({"token_policies": "p1", "token_ttl": 10, "token_max_ttl": 20,
                     "token_period": 5, "token_num_uses": 2, "token_bound_cidrs": "10.0.0.0/8",
                     "token_no_default_policy": True, "token_explicit_max_ttl": 30})
    auth = Auth(renewable=False)
    params.apply(auth)
    assert (auth.policies, auth.ttl, auth.max_ttl, auth.period, auth.num_uses) == (
        ["p1"], 10, 20, 5, 2)
    assert auth.bound_cidrs == ["10.0.0.0/8"] and auth.no_default_policy
    assert auth.explicit_max_ttl == 30 and auth.renewable and auth.token_type == "default"
    strict = parsed({"token_strictly_bind_ip": True})
    strict.apply(auth, remote_addr="192.0.2.7")
    assert auth.bound_cidrs == ["192.0.2.7"]


def test_cidrs() -> None:
    assert parse_cidrs("10.0.0.1/32, 10.1.2.3/8,fe80::1/64") == [
        "10.0.0.1", "10.1.2.3/8", "fe80::1/64"]
    assert cidrs_allow([], "anything")
    assert cidrs_allow(["10.0.0.0/8"], "10.9.9.9")
    assert not cidrs_allow(["10.0.0.0/8"], "11.0.0.1")
    assert cidrs_allow(["127.0.0.1"], "127.0.0.1")
    assert not cidrs_allow(["127.0.0.1"], "127.0.0.2")
    assert cidrs_allow(["10.0.0.0/8"], "::ffff:10.1.1.1")  # dual-stack listener
    assert not cidrs_allow(["10.0.0.0/8"], "")  # unknown address: refused
    assert not cidrs_allow(["::1"], "127.0.0.1")
