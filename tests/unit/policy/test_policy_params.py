"""Tests for request-parameter constraints and wrapping-TTL bounds in the ACL."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.request import Operation
from strongroom.policy import ACL, parse_policy

WRITE_OPS = (Operation.CREATE, Operation.UPDATE, Operation.PATCH)


def acl_of(*texts: str) -> ACL:
    return ACL([parse_policy(f"p{i}", text) for i, text in enumerate(texts)])


def rule(body: str, path: str = "secret/foo") -> ACL:
    return acl_of(
        f'path "{path}" {{\n capabilities = ["create", "read", "update", "patch",'
        f' "delete", "list"]\n {body}\n}}'
    )


def ok(acl: ACL, data: dict[str, Any], op: Operation = Operation.UPDATE) -> bool:
    return acl.allowed_operation(op, "secret/foo", data).allowed


# --- required_parameters -----------------------------------------------------


def test_required_parameters_must_all_be_present() -> None:
    acl = rule('required_parameters = ["bar", "Baz"]')
    assert ok(acl, {"bar": 1, "baz": 2})
    assert not ok(acl, {"bar": 1})
    assert not ok(acl, {})
    decision = acl.allowed_operation(Operation.UPDATE, "secret/foo", {"bar": 1})
    assert "required parameter 'Baz'" in decision.reason
    # Vault lower-cases the policy's names, not the request's keys.
    assert not ok(acl, {"bar": 1, "BAZ": 2})


def test_parameter_checks_cover_read_create_update_patch_only() -> None:
    acl = rule('required_parameters = ["bar"]\n denied_parameters = { "x" = [] }')
    for op in (*WRITE_OPS, Operation.READ):
        assert not ok(acl, {"x": 1}, op), op
    assert ok(acl, {"x": 1}, Operation.DELETE)
    assert ok(acl, {"x": 1}, Operation.LIST)


# --- allowed_parameters ------------------------------------------------------


def test_allowed_parameters_empty_list_means_any_value() -> None:
    acl = rule('allowed_parameters = { "bar" = [] }')
    assert ok(acl, {"bar": "anything"}) and ok(acl, {"bar": 7}) and ok(acl, {})
    assert not ok(acl, {"bar": "x", "other": "y"})


def test_allowed_parameters_values_are_restricted() -> None:
    acl = rule('allowed_parameters = { "bar" = ["zip", "zap"] }')
    assert ok(acl, {"bar": "zip"}) and ok(acl, {"bar": "zap"})
    assert not ok(acl, {"bar": "zop"})
    assert not ok(acl, {"bar": None})


def test_allowed_star_lets_other_parameters_through() -> None:
    acl = rule('allowed_parameters = { "bar" = ["zip"]\n "*" = [] }')
    assert ok(acl, {"bar": "zip", "anything": "else"})
    assert not ok(acl, {"bar": "zap", "anything": "else"})
    assert ok(rule('allowed_parameters = { "*" = [] }'), {"a": 1, "b": 2})


def test_allowed_parameter_names_are_case_insensitive() -> None:
    acl = rule('allowed_parameters = { "Bar" = ["good"] }')
    assert ok(acl, {"bAR": "good"}) and not ok(acl, {"BAR": "bad"})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("foo-*", "foo-bar", True),
        ("foo-*", "bar-foo", False),
        ("*-foo", "bar-foo", True),
        ("*-foo", "foo-bar", False),
        ("*mid*", "a-mid-b", True),
        ("*mid*", "a-mi-d", False),
        ("*", "*", True),  # a lone "*" is literal, as in Vault
        ("*", "x", False),
        ("**", "anything", True),
        ("exact", "exact", True),
        ("exact", "exactly", False),
    ],
)
def test_globbed_values(pattern: str, value: str, expected: bool) -> None:
    assert ok(rule(f'allowed_parameters = {{ "bar" = ["{pattern}"] }}'), {"bar": value}) is expected


def test_typed_values() -> None:
    acl = rule('allowed_parameters = { "n" = [1, 2.5]\n "b" = [false]\n "l" = [["x", "y"]] }')
    assert ok(acl, {"n": 1}) and ok(acl, {"n": 2.5}) and ok(acl, {"n": 1.0})
    assert not ok(acl, {"n": 3}) and not ok(acl, {"n": "1"})
    assert ok(acl, {"b": False}) and not ok(acl, {"b": True}) and not ok(acl, {"b": 0})
    assert not ok(rule('allowed_parameters = { "n" = [1] }'), {"n": True})
    assert ok(acl, {"l": ["x", "y"]})  # whole-list match


def test_list_and_comma_values_are_judged_per_element() -> None:
    # Vault 1.21+ default: every element must be allowed.
    acl = rule('allowed_parameters = { "bar" = ["zip", "zap"] }')
    assert ok(acl, {"bar": ["zip", "zap"]})
    assert ok(acl, {"bar": "zip, zap"})
    assert not ok(acl, {"bar": ["zip", "nope"]})
    assert not ok(acl, {"bar": "zip,nope"})
    assert not ok(acl, {"bar": ""})  # no vacuous pass for the empty string
    assert ok(acl, {"bar": []})  # nothing to refuse


# --- denied_parameters -------------------------------------------------------


def test_denied_parameter_with_empty_list_denies_any_value() -> None:
    acl = rule('denied_parameters = { "bar" = [] }')
    assert not ok(acl, {"bar": "x"}) and not ok(acl, {"BAR": None})
    assert ok(acl, {"other": "x"})


def test_denied_values_and_globs() -> None:
    acl = rule('denied_parameters = { "bar" = ["zip", "bad*"] }')
    assert not ok(acl, {"bar": "zip"}) and not ok(acl, {"bar": "bad glob"})
    assert ok(acl, {"bar": "good"}) and ok(acl, {"bar": None})
    # One denied element is enough: lists and comma-separated strings.
    assert not ok(acl, {"bar": ["ok", "zip"]}) and not ok(acl, {"bar": "ok,zip"})
    assert ok(acl, {"bar": ["ok", "fine"]})


def test_denied_star_denies_any_parameter_but_not_an_empty_request() -> None:
    acl = rule('denied_parameters = { "*" = [] }')
    assert not ok(acl, {"anything": 1})
    assert ok(acl, {})


def test_denied_takes_precedence_over_allowed() -> None:
    acl = rule('allowed_parameters = { "bar" = [] }\n denied_parameters = { "bar" = ["zip"] }')
    assert ok(acl, {"bar": "zap"}) and not ok(acl, {"bar": "zip"})
    decision = acl.allowed_operation(Operation.UPDATE, "secret/foo", {"bar": "zip"})
    assert decision.reason == "parameter 'bar' has a denied value"


# --- merging across stanzas and policies -------------------------------------


def test_allowed_values_merge_and_empty_list_wins() -> None:
    acl = acl_of(
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "t" = [1, 2] } }',
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "t" = [3, 4]\n'
        ' "other" = ["x"] } }',
    )
    for value in (1, 2, 3, 4):
        assert acl.allowed_operation(Operation.UPDATE, "v", {"t": value}).allowed
    assert not acl.allowed_operation(Operation.UPDATE, "v", {"t": 5}).allowed
    widened = acl_of(
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "t" = [1] } }',
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "t" = [] } }',
    )
    assert widened.allowed_operation(Operation.UPDATE, "v", {"t": 99}).allowed


def test_allowed_star_from_another_stanza_opens_other_parameters() -> None:
    acl = acl_of(
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "t1" = ["foo"] } }',
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "*" = [] } }',
    )
    assert acl.allowed_operation(Operation.UPDATE, "v", {"t1": "foo", "x": 1}).allowed
    assert not acl.allowed_operation(Operation.UPDATE, "v", {"t1": "bar"}).allowed


def test_denied_and_required_merge() -> None:
    acl = acl_of(
        'path "v" { policy = "write"\n denied_parameters = { "baz" = [] }\n'
        ' required_parameters = ["baz"] }',
        'path "v" { policy = "write"\n denied_parameters = { "zip" = [] }\n'
        ' required_parameters = ["a"] }',
    )

    def check(data: dict[str, Any]) -> bool:
        return acl.allowed_operation(Operation.UPDATE, "v", data).allowed

    # baz is both required and denied: nothing can pass, as in Vault.
    assert not check({"baz": 1, "a": 1})
    assert not check({"a": 1})


def test_deny_in_a_later_stanza_drops_parameter_rules() -> None:
    acl = acl_of(
        'path "v" { capabilities = ["update"]\n allowed_parameters = { "a" = [] } }',
        'path "v" { capabilities = ["deny"] }',
    )
    assert not acl.allowed_operation(Operation.UPDATE, "v", {"a": 1}).allowed


# --- wrapping TTL bounds -----------------------------------------------------


def test_wrapping_bounds_are_enforced() -> None:
    acl = rule('min_wrapping_ttl = "100s"\n max_wrapping_ttl = "400s"')

    def wrapped(ttl: int | None) -> bool:
        return acl.allowed_operation(Operation.UPDATE, "secret/foo", wrap_ttl=ttl).allowed

    assert not wrapped(None)  # bounds make wrapping mandatory
    assert not wrapped(50) and not wrapped(450)
    assert wrapped(100) and wrapped(350) and wrapped(400)


def test_min_wrapping_ttl_alone_makes_wrapping_mandatory() -> None:
    acl = rule("min_wrapping_ttl = 1")
    assert not acl.allowed_operation(Operation.READ, "secret/foo").allowed
    assert acl.allowed_operation(Operation.READ, "secret/foo", wrap_ttl=30).allowed


def test_wrapping_bounds_merge_to_the_lesser_of_each() -> None:
    # Vault docs: when stanzas merge, the lowest value specified for each wins.
    acl = acl_of(
        'path "v" { policy = "write"\n max_wrapping_ttl = 300\n min_wrapping_ttl = 100 }',
        'path "v" { policy = "write"\n max_wrapping_ttl = 200\n min_wrapping_ttl = 50 }',
        'path "v" { policy = "write" }',  # unset bounds do not reset them
    )
    decision = acl.allowed_operation(Operation.UPDATE, "v", wrap_ttl=60)
    assert decision.allowed
    assert (decision.min_wrapping_ttl, decision.max_wrapping_ttl) == (50, 200)
    assert not acl.allowed_operation(Operation.UPDATE, "v", wrap_ttl=250).allowed
    assert not acl.allowed_operation(Operation.UPDATE, "v", wrap_ttl=40).allowed


def test_merged_contradictory_bounds_refuse_everything() -> None:
    acl = acl_of(
        'path "v" { policy = "write"\n min_wrapping_ttl = 300 }',
        'path "v" { policy = "write"\n max_wrapping_ttl = 200 }',
    )
    for ttl in (None, 100, 250, 300):
        assert not acl.allowed_operation(Operation.UPDATE, "v", wrap_ttl=ttl).allowed
