"""Tests for strongroom.policy.acl: matching, priority and merging, as Vault's ACL does."""

from __future__ import annotations

import pytest

from strongroom.core.request import Operation
from strongroom.policy import ACL, ROOT_POLICY, Decision, Policy, parse_policy

R, L, C, U, P, D, H = (
    Operation.READ,
    Operation.LIST,
    Operation.CREATE,
    Operation.UPDATE,
    Operation.PATCH,
    Operation.DELETE,
    Operation.HELP,
)


def acl_of(*texts: str) -> ACL:
    return ACL([parse_policy(f"p{i}", text) for i, text in enumerate(texts)])


def allowed(acl: ACL, op: Operation, path: str, **kwargs: object) -> bool:
    return acl.allowed_operation(op, path, **kwargs).allowed  # type: ignore[arg-type]


# A policy in the spirit of Vault's own ACL test fixture: shorthand and
# explicit capabilities, nested globs, deny, `+` wildcards, and `+` vs `*`.
MAIN = """
path "dev/*"              { policy = "sudo" }
path "stage/*"            { policy = "write" }
path "stage/aws/*"        { policy = "read"  capabilities = ["update", "sudo"] }
path "stage/aws/policy/*" { policy = "sudo" }
path "prod/*"             { policy = "read" }
path "prod/aws/*"         { policy = "deny" }
path "sys/*"              { policy = "deny" }
path "foo/bar"            { capabilities = ["read", "create", "sudo"] }
path "baz/quux"           { capabilities = ["read", "create", "patch"] }
path "test/+/segment"     { capabilities = ["read"] }
path "+/segment/at/front" { capabilities = ["read"] }
path "test/segment/at/end/+"     { capabilities = ["read"] }
path "test/segment/at/end/v2/+/" { capabilities = ["read"] }
path "test/+/wildcard/+/*"       { capabilities = ["read"] }
path "1/2/*"   { capabilities = ["create"] }
path "1/2/+"   { capabilities = ["read"] }
path "1/2/+/+" { capabilities = ["update"] }
"""

OVERLAY = """
path "dev/hide/*"         { policy = "deny" }
path "stage/aws/policy/*" { policy = "deny"  capabilities = ["read", "update", "sudo"] }
path "prod/*"             { policy = "write" }
path "sys/seal"           { policy = "sudo" }
path "foo/bar"            { capabilities = ["deny"] }
path "baz/quux"           { capabilities = ["deny"] }
"""


@pytest.mark.parametrize(
    ("op", "path", "ok", "sudo"),
    [
        (R, "root", False, False),
        (H, "root", True, False),
        (R, "dev/foo", True, True),
        (U, "dev/foo", True, True),
        (D, "stage/foo", True, False),
        (L, "stage/aws/foo", True, True),
        (U, "stage/aws/foo", True, True),
        (U, "stage/aws/policy/foo", True, True),
        (D, "prod/foo", False, False),
        (U, "prod/foo", False, False),
        (R, "prod/foo", True, False),
        (L, "prod/foo", True, False),
        (R, "prod/aws/foo", False, False),
        (R, "foo/bar", True, True),
        (L, "foo/bar", False, True),
        (U, "foo/bar", False, True),
        (C, "foo/bar", True, True),
        (R, "baz/quux", True, False),
        (C, "baz/quux", True, False),
        (P, "baz/quux", True, False),
        (L, "baz/quux", False, False),
        (U, "baz/quux", False, False),
        (R, "test/foo/bar/segment", False, False),
        (R, "test/foo/segment", True, False),
        (R, "test/bar/segment", True, False),
        (R, "test/segment/at/frond", False, False),
        (R, "test/segment/at/front", True, False),
        (R, "test/segment/at/end/foo", True, False),
        (R, "test/segment/at/end/foo/", False, False),
        (R, "test/segment/at/end/v2/foo/", True, False),
        (R, "test/segment/wildcard/at/foo/", True, False),
        (R, "test/segment/wildcard/at/end", True, False),
        (R, "test/segment/wildcard/at/end/", True, False),
        # `+` versus `*` on the same stem.
        (R, "1/2/3/4", False, False),
        (R, "1/2/3", True, False),
        (U, "1/2/3", False, False),
        (U, "1/2/3/4", True, False),
        (C, "1/2/3/4/5", True, False),
    ],
)
def test_single_policy(op: Operation, path: str, ok: bool, sudo: bool) -> None:
    decision = acl_of(MAIN).allowed_operation(op, path)
    assert (decision.allowed, decision.sudo) == (ok, sudo)


@pytest.mark.parametrize(
    ("op", "path", "ok", "sudo"),
    [
        (R, "dev/foo", True, True),
        (R, "dev/hide/foo", False, False),
        (U, "dev/hide/foo", False, False),
        (D, "stage/foo", True, False),
        (L, "stage/aws/foo", True, True),
        (U, "stage/aws/policy/foo", False, False),  # deny merged into the same pattern
        (D, "prod/foo", True, False),  # write and read unioned
        (U, "prod/foo", True, False),
        (R, "prod/aws/foo", False, False),
        (R, "sys/status", False, False),
        (U, "sys/seal", True, True),  # exact grant beats the sys/* deny
        (R, "foo/bar", False, False),
        (C, "foo/bar", False, False),
        (P, "baz/quux", False, False),
    ],
)
def test_layered_policies(op: Operation, path: str, ok: bool, sudo: bool) -> None:
    decision = acl_of(MAIN, OVERLAY).allowed_operation(op, path)
    assert (decision.allowed, decision.sudo) == (ok, sudo)


def test_deny_wins_on_the_same_pattern_whatever_the_policy_order() -> None:
    grant = 'path "secret/foo" { capabilities = ["read", "update", "sudo"] }'
    deny = 'path "secret/foo" { capabilities = ["deny"] }'
    for acl in (acl_of(grant, deny), acl_of(deny, grant), acl_of(deny + "\n" + grant)):
        decision = acl.allowed_operation(R, "secret/foo")
        assert not decision.allowed and decision.capabilities == {"deny"}
        assert acl.capabilities("secret/foo") == ["deny"]


def test_deny_on_a_broader_glob_does_not_override_a_more_specific_grant() -> None:
    # Vault judges by the most specific pattern only; deny is not global.
    acl = acl_of(
        'path "secret/*" { capabilities = ["deny"] }',
        'path "secret/open" { capabilities = ["read"] }',
    )
    assert allowed(acl, R, "secret/open")
    assert not allowed(acl, R, "secret/other")


def test_specific_deny_beats_broad_grant() -> None:
    acl = acl_of(
        'path "secret/*" { capabilities = ["read", "list"] }\n'
        'path "secret/super-secret" { capabilities = ["deny"] }'
    )
    assert allowed(acl, R, "secret/anything")
    assert not allowed(acl, R, "secret/super-secret")


def test_capabilities_are_unioned_across_policies() -> None:
    acl = acl_of(
        'path "kv/x" { capabilities = ["read"] }',
        'path "kv/x" { capabilities = ["update"] }',
        'path "kv/*" { capabilities = ["delete"] }',
    )
    assert acl.capabilities("kv/x") == ["read", "update"]
    assert not allowed(acl, D, "kv/x")  # the exact pattern wins; kv/* is not consulted


def test_empty_exact_rule_blocks_a_broader_grant() -> None:
    acl = acl_of('path "secret/*" { capabilities = ["read"] }\npath "secret/foo" {}')
    assert not allowed(acl, R, "secret/foo")
    assert acl.capabilities("secret/foo") == ["deny"]


# --- priority (Vault's "Priority matching" rules) ----------------------------


@pytest.mark.parametrize(
    ("loser", "winner", "path"),
    [
        # Docs example: same first wildcard, both globs; more `+` loses (rule 3).
        ("secret/+/+/foo/*", "secret/*", "secret/a/b/foo/c"),
        # `*` vs `+/*`: tie on position and glob, `+` count decides.
        ("+/*", "*", "foo/bar/bar/baz"),
        # Rule 1: a later first wildcard wins.
        ("+/*", "foo/+/*", "foo/bar/bar/baz"),
        ("foo/+/(ar/baz", "foo/(ar/+/baz", "foo/(ar/(ar/baz"),
        ("foo/+", "foo/a*", "foo/abc"),
        # Rule 3: fewer `+` segments win.
        ("foo/+/+/*", "foo/+/bar/baz", "foo/bar/bar/baz"),
        ("foo/+/+/baz", "foo/+/bar/baz", "foo/bar/bar/baz"),
        # Rule 2: a pattern ending in `*` loses to one that does not.
        ("foo/bar/+/baz*", "foo/bar/+/baz", "foo/bar/bar/baz"),
        ("foo/*", "foo/+", "foo/bar"),
        # Rule 4: the longer pattern wins.
        ("foo/bar/+/b*", "foo/bar/+/ba*", "foo/bar/bar/baz"),
        ("secret/*", "secret/app/*", "secret/app/key"),
        # Rule 5: all else equal, the lexically greater pattern wins ("c" > "+").
        ("a/+/+/d", "a/+/c/+", "a/b/c/d"),
    ],
)
def test_priority_rules(loser: str, winner: str, path: str) -> None:
    for order in ((loser, winner), (winner, loser)):
        acl = acl_of(
            *(
                f'path "{p}" {{ capabilities = ["{"update" if p == winner else "read"}"] }}'
                for p in order
            )
        )
        assert allowed(acl, U, path), (order, path)
        assert not allowed(acl, R, path), (order, path)
        # Each pattern does match on its own, so the outcome is down to priority.
        assert allowed(acl_of(f'path "{loser}" {{ capabilities = ["read"] }}'), R, path)


def test_longest_prefix_wins_among_globs() -> None:
    acl = acl_of(
        'path "a/*" { capabilities = ["read"] }',
        'path "a/b/*" { capabilities = ["update"] }',
        'path "a/b/c*" { capabilities = ["delete"] }',
    )
    assert allowed(acl, R, "a/x") and not allowed(acl, U, "a/x")
    assert allowed(acl, U, "a/b/x") and not allowed(acl, R, "a/b/x")
    assert allowed(acl, D, "a/b/cat") and not allowed(acl, U, "a/b/cat")
    assert not allowed(acl, R, "b")


def test_exact_match_beats_every_wildcard() -> None:
    acl = acl_of(
        'path "a/b" { capabilities = ["read"] }',
        'path "a/+" { capabilities = ["update"] }',
        'path "a/*" { capabilities = ["delete"] }',
    )
    assert allowed(acl, R, "a/b") and not allowed(acl, U, "a/b")
    assert allowed(acl, U, "a/c") and not allowed(acl, D, "a/c")


def test_glob_and_prefix_semantics_from_the_docs() -> None:
    acl = acl_of(
        'path "secret/foo" { capabilities = ["read"] }\n'
        'path "secret/bar/*" { capabilities = ["read"] }\n'
        'path "secret/zip-*" { capabilities = ["read"] }'
    )
    assert allowed(acl, R, "secret/foo")
    assert not allowed(acl, R, "secret/food") and not allowed(acl, R, "secret/foo/bar")
    assert allowed(acl, R, "secret/bar/zip") and allowed(acl, R, "secret/bar/zip/zap")
    assert not allowed(acl, R, "secret/bars/zip")
    assert allowed(acl, R, "secret/zip-zap") and allowed(acl, R, "secret/zip-zap/zong")
    assert not allowed(acl, R, "secret/zip/zap")


def test_plus_matches_exactly_one_segment() -> None:
    acl = acl_of(
        'path "secret/+/teamb" { capabilities = ["read"] }\n'
        'path "secret/+/+/teamc" { capabilities = ["read"] }\n'
        'path "+" { capabilities = ["list"] }'
    )
    assert allowed(acl, R, "secret/foo/teamb")
    assert not allowed(acl, R, "secret/teamb") and not allowed(acl, R, "secret/a/b/teamb")
    assert allowed(acl, R, "secret/a/b/teamc") and not allowed(acl, R, "secret/a/teamc")
    assert acl.capabilities("anything") == ["list"]
    assert acl.capabilities("two/segments") == ["deny"]


# --- list handling and paths -------------------------------------------------


def test_list_matches_the_path_with_or_without_trailing_slash() -> None:
    acl = acl_of(
        'path "secret/metadata" { capabilities = ["list"] }\n'
        'path "kv/dir/*" { capabilities = ["list"] }'
    )
    for path in ("secret/metadata", "secret/metadata/", "/secret/metadata/"):
        assert allowed(acl, L, path), path
    assert allowed(acl, L, "kv/dir/") and allowed(acl, L, "kv/dir")
    assert not allowed(acl, R, "secret/metadata/")  # only LIST trims the slash


def test_leading_slashes_are_ignored() -> None:
    acl = acl_of('path "secret/x" { capabilities = ["read"] }')
    assert allowed(acl, R, "//secret/x")


def test_no_matching_rule() -> None:
    decision = acl_of('path "a" { capabilities = ["read"] }').allowed_operation(R, "b")
    assert decision == Decision(False, False, False, frozenset(), 0, 0, "no rule matches 'b'")
    assert ACL([]).capabilities("a") == ["deny"]


# --- help, sudo, root --------------------------------------------------------


def test_help_is_always_allowed() -> None:
    assert allowed(ACL([]), H, "sys/anything", needs_sudo=True)


def test_sudo_requirement() -> None:
    acl = acl_of(
        'path "sys/audit/*" { capabilities = ["update", "sudo"] }\n'
        'path "sys/auth/*" { capabilities = ["update"] }'
    )
    assert allowed(acl, U, "sys/audit/file", needs_sudo=True)
    decision = acl.allowed_operation(U, "sys/auth/x", needs_sudo=True)
    assert not decision.allowed and "sudo" in decision.reason
    assert allowed(acl, U, "sys/auth/x")
    # sudo alone grants no operation.
    assert not allowed(acl_of('path "x" { capabilities = ["sudo"] }'), R, "x", needs_sudo=True)


def test_root_policy_allows_everything() -> None:
    acl = ACL([ROOT_POLICY])
    decision = acl.allowed_operation(D, "sys/raw/anything", {"x": 1}, needs_sudo=True)
    assert decision.allowed and decision.root and decision.sudo
    assert decision.capabilities == {"root"}
    assert acl.capabilities("any/path") == ["root"]
    # Root is recognized by name even next to other policies.
    assert ACL([parse_policy("x", ""), Policy.root()]).root


def test_capabilities_are_sorted_like_vault() -> None:
    acl = acl_of(
        'path "dev/*" { policy = "sudo" }\n'
        'path "stage/aws/*" { policy = "read"  capabilities = ["update", "sudo"] }'
    )
    assert acl.capabilities("dev") == ["deny"]
    assert acl.capabilities("dev/") == ["create", "delete", "list", "read", "sudo", "update"]
    assert acl.capabilities("stage/aws/test") == ["list", "read", "sudo", "update"]


def test_decision_reports_the_matched_rule() -> None:
    acl = acl_of('path "a/*" { capabilities = ["read", "sudo"]\n max_wrapping_ttl = 60 }')
    decision = acl.allowed_operation(U, "a/b", wrap_ttl=30)
    assert decision == Decision(
        False, False, True, frozenset({"read", "sudo"}), 0, 60, "rule for 'a/b' lacks 'update'"
    )


def test_templated_rules_are_skipped_without_an_identity() -> None:
    acl = acl_of('path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }')
    assert not allowed(acl, R, "secret/{{identity.entity.id}}/x")
