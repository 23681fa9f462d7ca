"""Token-role policy globs: go-glob's meaning, matched without backtracking.

A glob compiled to a regex (``.*`` per star) backtracked: a 60 KB policy name
against ``team-*-*-ro`` held a worker for 12 s, and every extra star multiplied
that by the name's length. No test here times anything: the matcher's own count
of substring searches shows it never retries, and the in-process requests below
would not finish at all with a backtracking matcher.
"""

from __future__ import annotations

import itertools
import re

import pytest

from strongroom.core.token_create import MAX_POLICY_NAME
from strongroom.framework.globmatch import glob_match, match_with_steps
from tests.support.nodes import DevNode, dev_node


def _regex_glob(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.S) is not None


def test_same_answers_as_a_regex_on_every_small_case() -> None:
    for plen in range(6):
        for pattern in map("".join, itertools.product("ab*", repeat=plen)):
            for vlen in range(6):
                for value in map("".join, itertools.product("ab", repeat=vlen)):
                    assert glob_match(pattern, value) == _regex_glob(pattern, value), (
                        pattern, value)


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("team-*-*-ro", "team-a-b-ro", True), ("team-*-*-ro", "team--ro", False),
    ("team-*-*-ro", "team---ro", True), ("*", "", True), ("", "", True), ("", "a", False),
    ("a*a", "a", False), ("*.example.*", "x.example.com", True), ("a.b", "aXb", False),
])
def test_go_glob_examples(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


@pytest.mark.parametrize(("pattern", "value"), [
    ("team-*-*-ro", "team-" + "-" * 60_000),          # the case, two stars
    ("team-*-*-*-ro", "team-" + "-" * 60_000),        # three: cubic for a regex
    ("*a*a*a*a*a*a*a*a*a*a*b", "a" * 60_000),         # ten: hopeless for a regex
])
def test_pathological_inputs_take_one_search_per_segment(pattern: str, value: str) -> None:
    matched, steps = match_with_steps(pattern, value)
    assert matched is False
    assert steps <= pattern.count("*") + 1


@pytest.fixture
def d() -> DevNode:
    node = dev_node()
    resp = node.call("POST", "auth/token/roles/team", json={
        "allowed_policies_glob": ["team-*-*-*-ro", "*a*a*a*a*a*a*a*a*a*a*b"],
        "disallowed_policies_glob": ["*x*x*x*x*x*x*x*x*x*x*y"], "orphan": True})
    assert resp.status_code == 204, resp.text
    return node


def test_role_globs_still_allow_and_refuse(d: DevNode) -> None:
    ok = d.call("POST", "auth/token/create/team", json={"policies": ["team-a-b-c-ro"]})
    assert ok.status_code == 200, ok.text
    assert "team-a-b-c-ro" in ok.json["auth"]["policies"]
    bad = d.call("POST", "auth/token/create/team", json={"policies": ["team-a-ro"]})
    assert bad.status_code == 400 and "must be subset" in bad.json["errors"][0]


@pytest.mark.parametrize(("name", "status", "text"), [
    # Within the length limit, yet a backtracking matcher would not finish these:
    ("a" * MAX_POLICY_NAME, 400, "must be subset"),            # ten stars, no final "b"
    ("team-" + "-" * (MAX_POLICY_NAME - 5), 400, "must be subset"),
    # Allowed by "team-*-*-*-ro", then the disallowed glob's worst case (no "y").
    ("team-x-x-x" + "x" * (MAX_POLICY_NAME - 13) + "-ro", 200, "does not exist"),
])
def test_pathological_names_are_answered(d: DevNode, name: str, status: int,
                                         text: str) -> None:
    resp = d.call("POST", "auth/token/create/team", json={"policies": [name]})
    assert resp.status_code == status, resp.text
    assert text in (resp.json["errors"] if status == 400 else resp.json["warnings"])[0]


def test_overlong_policy_names_are_refused(d: DevNode) -> None:
    """Longer than any policy can be named (the policy store's limit): refused up front."""
    name = "team-" + "-" * 60_000
    for path in ("auth/token/create/team", "auth/token/create"):
        resp = d.call("POST", path, json={"policies": [name]})
        assert resp.status_code == 400
        assert resp.json["errors"] == [
            f"policy name is too long: {len(name)} characters, the limit is 128"]
    ok = d.call("POST", "auth/token/create", json={"policies": ["p" * MAX_POLICY_NAME]})
    assert ok.status_code == 200, ok.text
