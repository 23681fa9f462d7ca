"""Deeply nested policy documents are a 400 (OpenBao: 400), never a 500.

The policy reader recursed once per level: a policy nested 5000 deep (HCL or
JSON) hit Python's recursion limit and the write answered 500.
"""

from __future__ import annotations

import pytest

from strongroom.policy._hcl import MAX_NESTING
from strongroom.policy.parse import PolicyError, parse_policy
from tests.support.deep_inputs import DEEP, DEEP_POLICIES

DOCUMENTS = DEEP_POLICIES | {
    "json list": '{"path":{"x":{"capabilities":' + "[" * DEEP + "]" * DEEP + "}}}",
    "json far too deep": '{"path":' + "[" * 200_000 + "]" * 200_000 + "}",
}


@pytest.mark.parametrize("text", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_deep_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("deep", text)
    assert info.value.message.startswith("failed to parse policy: ")
    assert f"nested deeper than {MAX_NESTING} levels" in info.value.message


def test_nesting_up_to_the_bound_still_parses() -> None:
    # Only the depth differs: a value as deep as allowed reaches the key checks.
    allowed = 'path "x" ' + "{ a = " * (MAX_NESTING - 1) + "1" + " }" * (MAX_NESTING - 1)
    with pytest.raises(PolicyError) as info:
        parse_policy("deep", allowed)
    assert "nested deeper" not in info.value.message
    policy = parse_policy("ok", 'path "x" { capabilities = ["read"]\n'
                                '  allowed_parameters = { "k" = ["v"] } }')
    assert policy.paths[0].capabilities
