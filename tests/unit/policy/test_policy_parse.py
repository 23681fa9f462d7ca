"""Tests for strongroom.policy.parse: Vault's HCL/JSON policy syntax and its errors."""

from __future__ import annotations

import base64
import json

import pytest

from strongroom.errors import BadRequestError
from strongroom.policy import (
    PathRule,
    Policy,
    PolicyError,
    decode_policy_body,
    normalize_policy_name,
    parse_policy,
)


def rules(text: str) -> tuple[PathRule, ...]:
    return parse_policy("test", text).paths


def only_rule(text: str) -> PathRule:
    (rule,) = rules(text)
    return rule


# --- HCL syntax --------------------------------------------------------------


def test_basic_hcl_policy_keeps_raw_text_and_normalizes_name() -> None:
    text = 'path "secret/data/*" {\n  capabilities = ["read", "list"]\n}\n'
    policy = parse_policy("  Dev-Team ", text)
    assert policy == Policy(
        name="dev-team",
        raw=text,
        paths=(PathRule("secret/data/*", frozenset({"read", "list"}), {}, {}),),
    )
    assert not policy.templated


def test_repeated_path_blocks_are_all_kept_in_order() -> None:
    # pyhcl would keep only the last block here, silently losing the deny.
    got = rules(
        'path "a" { capabilities = ["read"] }\n'
        'path "a" { capabilities = ["deny"] }\n'
        'path "b" { capabilities = ["list"] }\n'
    )
    assert [(r.path, set(r.capabilities)) for r in got] == [
        ("a", {"read"}),
        ("a", {"deny"}),
        ("b", {"list"}),
    ]


def test_hcl_comments_commas_escapes_and_block_syntax() -> None:
    rule = only_rule(
        """
        # hash comment
        // slash comment
        /* block
           comment */
        path "secret/\\"quoted\\"/x" {
          capabilities = ["create", "update",]  # trailing comma
          allowed_parameters {
            "Name" = ["a\\tb", 5, -2, 1.5, true, ["x", "y"]],
            "*" = []
          }
          required_parameters = ["name"]
          comment = "ignored"
        }
        """
    )
    assert rule.path == 'secret/"quoted"/x'
    assert rule.capabilities == {"create", "update"}
    assert dict(rule.allowed_parameters) == {
        "name": ("a\tb", 5, -2, 1.5, True, ("x", "y")),
        "*": (),
    }
    assert rule.required_parameters == ("name",)


def test_heredoc_and_numeric_ttls() -> None:
    rule = only_rule(
        'path "x" {\n'
        '  capabilities = ["read"]\n'
        "  min_wrapping_ttl = 60\n"
        '  max_wrapping_ttl = "1h"\n'
        "  comment = <<EOT\nfree\ntext\nEOT\n"
        "}\n"
    )
    assert (rule.min_wrapping_ttl, rule.max_wrapping_ttl) == (60, 3600)


def test_empty_and_comment_only_documents_have_no_paths() -> None:
    assert rules("") == ()
    assert rules("# nothing here\n") == ()
    assert rules('name = "ignored"\n') == ()


def test_leading_slash_is_stripped_from_paths() -> None:
    assert only_rule('path "/secret/foo" { capabilities = ["read"] }').path == "secret/foo"


def test_empty_block_is_a_rule_with_no_capabilities() -> None:
    assert only_rule('path "secret/foo" {}').capabilities == frozenset()


# --- JSON syntax -------------------------------------------------------------


def test_json_policy_object_form() -> None:
    text = json.dumps(
        {
            "path": {
                "secret/*": {"capabilities": ["read"], "max_wrapping_ttl": "90s"},
                "secret/foo": {"policy": "write", "denied_parameters": {"Bar": ["x*"]}},
            }
        }
    )
    first, second = rules(text)
    assert (first.path, first.max_wrapping_ttl) == ("secret/*", 90)
    assert first.capabilities == {"read"}
    assert second.capabilities == {"create", "read", "update", "delete", "list"}
    assert dict(second.denied_parameters) == {"bar": ("x*",)}


def test_json_list_form_and_repeated_keys_are_kept() -> None:
    as_list = rules('{"path": [{"a": {"capabilities": ["read"]}}, {"a": {"policy": "deny"}}]}')
    repeated = rules('{"path": {"a": {"capabilities": ["read"]}, "a": {"policy": "deny"}}}')
    for got in (as_list, repeated):
        assert [(r.path, set(r.capabilities)) for r in got] == [("a", {"read"}), ("a", {"deny"})]


def test_json_whole_number_float_ttl_is_accepted() -> None:
    rule = only_rule('{"path": {"x": {"capabilities": ["read"], "min_wrapping_ttl": 30.0}}}')
    assert rule.min_wrapping_ttl == 30


# --- capabilities and the deprecated shorthand -------------------------------


@pytest.mark.parametrize(
    ("shorthand", "expected"),
    [
        ("deny", {"deny"}),
        ("read", {"read", "list"}),
        ("write", {"create", "read", "update", "delete", "list"}),
        ("sudo", {"create", "read", "update", "delete", "list", "sudo"}),
    ],
)
def test_policy_shorthand_maps_as_vault_does(shorthand: str, expected: set[str]) -> None:
    assert only_rule(f'path "x" {{ policy = "{shorthand}" }}').capabilities == expected


def test_shorthand_adds_to_explicit_capabilities() -> None:
    rule = only_rule('path "x" { policy = "read"\n capabilities = ["update", "sudo"] }')
    assert rule.capabilities == {"read", "list", "update", "sudo"}


def test_deny_excludes_every_other_capability_and_setting() -> None:
    rule = only_rule(
        'path "x" {\n capabilities = ["read", "deny", "sudo"]\n'
        ' allowed_parameters = { "a" = [] }\n min_wrapping_ttl = 5\n}'
    )
    assert rule.capabilities == {"deny"}
    assert not rule.allowed_parameters and rule.min_wrapping_ttl == 0
    assert only_rule('path "x" { policy = "deny"\n capabilities = ["read"] }').capabilities == {
        "deny"
    }


def test_every_documented_capability_is_accepted() -> None:
    caps = '["create", "read", "update", "patch", "delete", "list", "sudo"]'
    assert len(only_rule(f'path "x" {{ capabilities = {caps} }}').capabilities) == 7


# --- templating --------------------------------------------------------------


def test_identity_templates_mark_the_rule_and_policy() -> None:
    policy = parse_policy(
        "t",
        'path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read"] }\n'
        'path "secret/plain" { capabilities = ["read"] }\n',
    )
    assert [r.templated for r in policy.paths] == [True, False]
    assert policy.templated


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('path "x" { capabilities = ["read", "fly"] }', 'invalid capability "fly"'),
        ('path "x" { capabilities = ["subscribe"] }', 'invalid capability "subscribe"'),
        ('path "x" { capabilities = ["recover"] }', 'invalid capability "recover"'),
        ('path "x" { capabilities = ["root"] }', 'invalid capability "root"'),
        ('path "x" { policy = "admin" }', 'invalid policy "admin"'),
        ('path "x" { capabilities = "read" }', "capabilities must be a list"),
        ('path "x" { capabilities = [1] }', "capabilities must be a list"),
        ('path "x" { capabilites = ["read"] }', 'invalid key "capabilites" on line 1'),
        ('pathh "x" { capabilities = ["read"] }', 'invalid key "pathh" on line 1'),
        ('path "x" { mfa_methods = ["m"] }', "Vault Enterprise feature"),
        ('path "x" { control_group = { ttl = "1h" } }', "Vault Enterprise feature"),
        ('path "x" { subscribe_event_types = ["*"] }', "Vault Enterprise feature"),
        ('path "x" {\ncapabilities = ["read"]\ncapabilities = ["list"]\n}', "duplicate key"),
        ('path "secret/*/foo" { capabilities = ["read"] }', "only allowed as the last"),
        ('path "*/x" { capabilities = ["read"] }', "only allowed as the last"),
        ('path "secret/+*" { capabilities = ["read"] }', "'+*' is forbidden"),
        ('path "a/{{identity.entity.id" { capabilities = ["read"] }', "unbalanced"),
        ('path "a/{{x}}}}/{{y" { capabilities = ["read"] }', "unbalanced"),
        ('path { capabilities = ["read"] }', "exactly one pattern"),
        ('path "a" "b" { capabilities = ["read"] }', "exactly one pattern"),
        ('path = "x"', "exactly one pattern"),
        ('path "x" = 1', "expected '{'"),
        ('path "x" "y"', "expected '{'"),
        ('path "x" { capabilities = ["read"]', "expected a key, got end of input"),
        ('path "x" { capabilities = [read] }', "expected a value"),
        ('path "x" { capabilities = ["read" "list"] }', "expected ',' or ']'"),
        ('path "x" { capabilities = ["re\nad"] }', "string literal not terminated"),
        ('path "x" { capabilities = ["\\q"] }', "invalid escape"),
        ('path "x" { comment = <<EOT\nnever closed\n }', "heredoc <<EOT not terminated"),
        ('/* open comment\npath "x" {}', "comment not terminated"),
        ('path "x" { capabilities = ["read"] } ;', "illegal character ';'"),
        ('path "x" { min_wrapping_ttl = 09 }', "invalid number"),
        ('{"path": {"x": {"capabilities": ["read"]}', "invalid JSON"),
        ('{"path": {"x": {"capabilities": null}}}', "null is not a valid"),
        ('{"path": {"x": {"capabilities": ["read"]}}, "extra": 1}', 'invalid key "extra"'),
        ('{"path": {"x": 1}}', "exactly one pattern"),
        ("name {}", "name must be a string"),
        ('name = ["x"]', "name must be a string"),
    ],
)
def test_invalid_documents_raise_policy_error(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("p", text)
    assert fragment in info.value.message
    assert info.value.message.startswith("failed to parse policy: ")
    assert isinstance(info.value, BadRequestError) and info.value.status == 400


def test_json_array_document_is_rejected() -> None:
    # Only a document starting with "{" is JSON; this one is (bad) HCL.
    with pytest.raises(PolicyError, match="failed to parse policy"):
        parse_policy("p", '[{"path": {}}]')


def test_error_names_the_offending_path() -> None:
    with pytest.raises(PolicyError, match='path "secret/foo": invalid capability "bogus"'):
        parse_policy("p", 'path "secret/foo" { capabilities = ["bogus"] }')


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('allowed_parameters = ["a"]', "must be a map"),
        ('allowed_parameters = { "a" = "x" }', "must map to a list"),
        ('denied_parameters = { "a" = { b = 1 } }', "must map to a list"),
        ('allowed_parameters = { "a" = [{ b = 1 }] }', "values must be strings"),
        ('allowed_parameters = { "a*" = [] }', "cannot contain non-tail wildcards"),
        ('denied_parameters = { "*a" = [] }', "cannot contain non-tail wildcards"),
        ('allowed_parameters = { "/a/b" = [] }', "JSON-pointer"),
        ('allowed_parameters = { "A" = []\n "a" = [] }', 'duplicate parameter "a"'),
        ('required_parameters = "a"', "must be a list of strings"),
        ('required_parameters = ["*"]', "wildcard is not permitted"),
        ('min_wrapping_ttl = "soon"', "error parsing min_wrapping_ttl"),
        ("max_wrapping_ttl = true", "error parsing max_wrapping_ttl"),
        ('max_wrapping_ttl = "-5s"', "error parsing max_wrapping_ttl"),
        ('min_wrapping_ttl = "2m"\n max_wrapping_ttl = "1m"', "cannot be less than"),
    ],
)
def test_invalid_rule_settings(body: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse_policy("p", f'path "x" {{\n capabilities = ["update"]\n {body}\n}}')


# --- names and bodies --------------------------------------------------------


def test_policy_names_are_trimmed_and_lower_cased() -> None:
    assert normalize_policy_name("  My.Policy@Team ") == "my.policy@team"


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_policy_name_is_rejected(name: str) -> None:
    with pytest.raises(PolicyError, match="name"):
        parse_policy(name, "")


@pytest.mark.parametrize("name", ["root", " ROOT "])
def test_root_cannot_be_parsed_from_text(name: str) -> None:
    with pytest.raises(PolicyError, match='cannot update "root" policy'):
        parse_policy(name, 'path "*" { capabilities = ["sudo"] }')


def test_base64_bodies_are_decoded_as_vault_does() -> None:
    text = 'path "secret/*" {\n  capabilities = ["read"]\n}\n'
    encoded = base64.b64encode(text.encode()).decode()
    assert decode_policy_body(encoded) == text
    # Go's decoder ignores line breaks inside the base64 text.
    assert decode_policy_body(encoded[:10] + "\r\n" + encoded[10:]) == text
    assert decode_policy_body(text) == text  # quotes, spaces, braces: not base64
    assert decode_policy_body("") == ""
    assert decode_policy_body("YWJj=") == "YWJj="  # bad padding: kept as is
