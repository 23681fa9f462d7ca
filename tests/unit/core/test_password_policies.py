"""sys/policies/password/<name> (+ /generate), with OpenBao's answers and errors."""

from __future__ import annotations

import base64

import pytest

from tests.support.nodes import DevNode, dev_node

POLICY = ('length = 16\nrule "charset" {\n  charset = "abcdef"\n  min-chars = 2\n}\n'
          'rule "charset" {\n  charset = "0123"\n  min-chars = 3\n}\n')


@pytest.fixture
def d() -> DevNode:
    return dev_node()


def test_write_read_list_generate_delete(d: DevNode) -> None:
    assert d.call("PUT", "sys/policies/password/p1", json={"policy": POLICY}).status_code == 204
    assert d.call("GET", "sys/policies/password/p1").json["data"] == {"policy": POLICY}
    assert d.call("LIST", "sys/policies/password").json["data"] == {"keys": ["p1"]}
    for _ in range(20):
        password = d.call("GET", "sys/policies/password/p1/generate").json["data"]["password"]
        assert len(password) == 16 and set(password) <= set("abcdef0123")
        assert sum(c in "abcdef" for c in password) >= 2
        assert sum(c in "0123" for c in password) >= 3
    assert d.call("DELETE", "sys/policies/password/p1").status_code == 204
    assert d.call("GET", "sys/policies/password/p1").status_code == 404


def test_base64_policy_is_accepted(d: DevNode) -> None:
    encoded = base64.b64encode(POLICY.encode()).decode()
    assert d.call("PUT", "sys/policies/password/b", json={"policy": encoded}).status_code == 204
    assert d.call("GET", "sys/policies/password/b").json["data"]["policy"] == POLICY


@pytest.mark.parametrize(("policy", "status", "error"), [
    ('length = 2\nrule "charset" {\n charset = "abc"\n}', 400,
     "1 error occurred:\n\t* passwords must be between 4 and 100 characters\n\n"),
    ('length = 3\nrule "charset" {\n charset = "abc"\n min-chars = 5\n}', 400,
     "1 error occurred:\n\t* invalid password policy: 1 error occurred:\n\t* specified "
     "rules require at least 5 characters but 3 is specified\n\n\n\n"),
    ("length = 10", 400, "1 error occurred:\n\t* invalid password policy: 1 error "
     "occurred:\n\t* no charset specified\n\n\n\n"),
    ("", 400, "1 error occurred:\n\t* missing policy\n\n"),
])
def test_bad_policies(d: DevNode, policy: str, status: int, error: str) -> None:
    resp = d.call("PUT", "sys/policies/password/bad", json={"policy": policy})
    assert (resp.status_code, resp.json["errors"]) == (status, [error])
    assert d.call("GET", "sys/policies/password/bad").status_code == 404


def test_missing_policy(d: DevNode) -> None:
    for path in ("sys/policies/password/nope", "sys/policies/password/nope/generate"):
        resp = d.call("GET", path)
        assert (resp.status_code, resp.json["errors"]) == (
            404, ["1 error occurred:\n\t* policy does not exist\n\n"])
