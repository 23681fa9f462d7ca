"""LIST with a trailing slash: the full path's glob rules are judged before the trimmed path's.

GHSA-xp3c-3jw3-4vcr (OpenBao 2.6.0 fix f58d848): Vault
used to try the glob rules against the path without its trailing slash first, so
with ``list`` on ``secret/metadata/*`` and ``deny`` on ``secret/metadata/private/*``
a ``LIST secret/metadata/private/`` matched the broader grant (``secret/metadata/``
is the longest prefix of ``secret/metadata/private``) and listed the denied
folder. The fixed order: exact rule for the path, exact rule without the slash,
glob rules for the path, and only then glob rules without the slash.

Every case below was checked against ``bao server -dev`` 2.7.2 (LIST status and
``sys/capabilities``); tests/compat/test_least_privilege_vs_bao.py runs them on both.
"""

from __future__ import annotations

import pytest

from strongroom.core.request import Operation
from strongroom.policy import ACL, parse_policy

L = Operation.LIST


def acl_of(*rules: str) -> ACL:
    return ACL([parse_policy("p", "\n".join(rules))])


def test_deny_on_a_folder_is_not_bypassed_by_listing_it_with_a_slash() -> None:
    acl = acl_of('path "secret/metadata/*" { capabilities = ["list"] }',
                 'path "secret/metadata/private/*" { capabilities = ["deny"] }')
    for path in ("secret/metadata/private/", "secret/metadata/private"):
        assert not acl.allowed_operation(L, path).allowed, path
    assert acl.capabilities("secret/metadata/private/") == ["deny"]
    assert acl.allowed_operation(L, "secret/metadata/").allowed


@pytest.mark.parametrize(("rules", "caps"), [
    # A broader `*` grant no longer shadows the folder's own `*` rule...
    (['path "secret/*" { capabilities = ["read"] }',
      'path "secret/metadata/*" { capabilities = ["list"] }'],
     {"secret/metadata/": ["list"], "secret/metadata": ["read"],
      "secret/metadata/x/": ["list"]}),
    (['path "secret/metadata/*" { capabilities = ["list"] }',
      'path "secret/metadata*" { capabilities = ["read"] }'],
     {"secret/metadata/": ["list"], "secret/metadata": ["read"]}),
    # ...nor a `+` rule whose last segment matches the empty one after the slash.
    (['path "secret/metadata/+" { capabilities = ["list"] }',
      'path "secret/*" { capabilities = ["read"] }'],
     {"secret/metadata/": ["list"], "secret/metadata/x/": ["read"]}),
    (['path "secret/+/" { capabilities = ["list"] }',
      'path "secret/*" { capabilities = ["read"] }'],
     {"secret/metadata/": ["list"], "secret/metadata/x/": ["read"]}),
    # The trimmed path is tried only when no glob rule matches the full one: here
    # `secret/*` matches `secret/metadata/`, so `secret/+` (which only the trimmed
    # path matches) is not consulted.
    (['path "secret/+" { capabilities = ["list"] }',
      'path "secret/*" { capabilities = ["read"] }'],
     {"secret/metadata/": ["read"], "secret/metadata": ["list"]}),
    # Nothing matches the full path: the trimmed path's rules still apply.
    (['path "kv/+" { capabilities = ["list"] }'], {"kv/dir/": ["list"]}),
])
def test_full_path_glob_rules_win_over_trimmed_path_ones(rules: list[str],
                                                        caps: dict[str, list[str]]) -> None:
    acl = acl_of(*rules)
    assert {path: acl.capabilities(path) for path in caps} == caps
    for path, expected in caps.items():
        if path.endswith("/"):
            assert acl.allowed_operation(L, path).allowed is ("list" in expected), path
