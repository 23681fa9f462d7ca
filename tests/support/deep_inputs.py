"""Policies nested far past any sane depth, in every syntax a policy may use."""

from __future__ import annotations

DEEP = 5000

DEEP_POLICIES = {
    "hcl object": 'path "x" ' + "{ a = " * DEEP + "1" + " }" * DEEP,
    "hcl list": 'path "x" { capabilities = ' + "[" * DEEP + "]" * DEEP + " }",
    "hcl blocks": 'path "x" ' + "a { " * DEEP + " }" * DEEP,
    "json object": '{"path":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
}
