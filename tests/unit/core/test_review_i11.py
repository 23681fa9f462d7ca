"""Findings of the issue-11 attacker review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import re

import pytest

from strongroom import registry
from strongroom.core.logical import Auth, SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path, PathBackend
from tests.support.nodes import DevNode, dev_node


class LoginMethod(PathBackend):
    """An auth method whose unauthenticated ``login`` issues a token with policy ``p``."""

    def __init__(self, ctx: MountContext) -> None:
        super().__init__([Path("login", {Operation.UPDATE: self._login})],
                         special_paths=SpecialPaths(unauthenticated=("login",)))

    def _login(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(auth=Auth(policies=["p"], display_name="alice"))


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> DevNode:
    monkeypatch.setitem(registry.AUTH_METHODS, "loginpass", LoginMethod)
    return dev_node()


def _login(d: DevNode, path: str) -> str:
    resp = d.client.simulate_post(f"/v1/auth/{path}/login")
    assert resp.status_code == 200, resp.text
    token: str = resp.json["auth"]["client_token"]
    return token


def test_moving_an_auth_method_revokes_the_tokens_it_issued(d: DevNode) -> None:
    """OpenBao's remountCredential revokes every lease under the source path before it
    moves the method. Without that, tokens issued at auth/people/ outlive the move and
    the method's later disable (which revokes auth/<new path>/ only): a disabled
    method's users keep their tokens."""
    assert d.call("POST", "sys/auth/people", json={"type": "loginpass"}).status_code == 204
    token = _login(d, "people")
    assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 200
    moved = d.call("POST", "sys/remount", json={"from": "auth/people", "to": "auth/staff"})
    assert moved.status_code == 200, moved.text
    assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 403
    # The moved method still logs in, and disabling it revokes what it issued since.
    fresh = _login(d, "staff")
    assert d.call("DELETE", "sys/auth/staff").status_code == 204
    assert d.call("GET", "auth/token/lookup-self", token=fresh).status_code == 403


def test_a_refused_move_revokes_nothing(d: DevNode) -> None:
    assert d.call("POST", "sys/auth/people", json={"type": "loginpass"}).status_code == 204
    token = _login(d, "people")
    refused = d.call("POST", "sys/remount", json={"from": "auth/people", "to": "auth/token"})
    assert refused.status_code == 400
    assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 200


def test_a_login_while_the_method_is_disabled_leaves_no_token(
        d: DevNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker may serve a login between the disable's revocation and the
    table write (it routes by the table it last read): that token must not outlive the
    method. Simulated by a login made right before the table changes."""
    assert d.call("POST", "sys/auth/people", json={"type": "loginpass"}).status_code == 204
    table = d.node.core.mounts.auth
    disable = table.disable
    late: list[str] = []

    def login_then_disable(path: str) -> object:
        late.append(_login(d, "people"))
        return disable(path)

    monkeypatch.setattr(table, "disable", login_then_disable)
    assert d.call("DELETE", "sys/auth/people").status_code == 204
    (token,) = late
    assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 403
