"""ACL.has_mount_access: Vault's hasMountAccess, which sys/internal/ui/mounts answers by.

The cases marked "bao" were checked against a real ``bao server -dev`` (2.7):
``GET sys/internal/ui/mounts/<mount>`` with a token holding only that policy;
tests/compat/test_least_privilege_vs_bao.py runs the same ones against both servers.
"""

from __future__ import annotations

import pytest

from strongroom.policy import ACL, ROOT_POLICY, parse_policy


def acl_of(*texts: str) -> ACL:
    return ACL([parse_policy(f"p{i}", text) for i, text in enumerate(texts)])


def rule(path: str, *caps: str) -> str:
    quoted = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{ capabilities = [{quoted}] }}'


@pytest.mark.parametrize(("policy", "mount", "visible"), [
    # bao: a grant anywhere under the mount, through each kind of rule.
    (rule("secret/data/app/*", "read"), "secret/", True),
    (rule("secret/metadata/", "list"), "secret/", True),
    (rule("secret/data/app/one", "read"), "secret/", True),
    (rule("lpmount/deep/path", "update"), "lpmount/deep/", True),
    (rule("+/data/app/*", "read"), "secret/", True),
    (rule("+/data/app/*", "read"), "cubbyhole/", True),
    (rule("secr*", "read"), "secret/", True),
    (rule("secret/*", "sudo"), "secret/", True),
    # bao: nothing under the mount.
    (rule("other/+/x", "read"), "secret/", False),
    (rule("nothing/here", "read"), "secret/", False),
    (rule("secret/data/app/one"), "secret/", False),
    (rule("secret/data/app/*", "read"), "secretx/", False),
    (rule("secret/data/app/*", "read"), "cubbyhole/", False),
    # A `+` pattern reaches a two-segment mount only through both segments.
    (rule("lpmount/+/x", "read"), "lpmount/deep/", True),
    (rule("+/deep/*", "read"), "lpmount/deep/", True),
    (rule("+/other/*", "read"), "lpmount/deep/", False),
    (rule("+", "read"), "lpmount/deep/", False),
    (rule("+", "read"), "secret/", True),
])
def test_any_grant_under_the_mount_makes_it_visible(policy: str, mount: str,
                                                    visible: bool) -> None:
    assert acl_of(policy).has_mount_access(mount) is visible


def test_deny_under_the_mount_is_skipped_not_fatal() -> None:
    acl = acl_of(rule("secret/data/locked", "deny"), rule("secret/data/open", "read"))
    assert acl.has_mount_access("secret/")
    assert not acl_of(rule("secret/data/locked", "deny")).has_mount_access("secret/")


def test_merged_deny_erases_the_grant() -> None:
    acl = acl_of(rule("secret/data/app/*", "read"), rule("secret/data/app/*", "deny"))
    assert not acl.has_mount_access("secret/")


def test_deny_only_prefix_rule_hides_the_mount() -> None:
    """A deliberate difference: OpenBao 2.7 shows ``secret/`` to this token (its
    CheckAllowedFromNonExactPaths returns the covering ``*`` rule unchecked), against
    its own doc comment; a token that is only denied there learns nothing from us."""
    assert not acl_of(rule("secret/*", "deny")).has_mount_access("secret/")


def test_root_sees_every_mount() -> None:
    assert ACL([ROOT_POLICY]).has_mount_access("anything/")
