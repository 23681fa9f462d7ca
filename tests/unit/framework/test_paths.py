"""framework/paths.py: path matching, operations, existence, warnings, URL captures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from strongroom.core.logical import LogicalBackend, Secret, SecretType, SpecialPaths
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NoRouteError, UnsupportedOperationError
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend

Seen = list[tuple[str, dict[str, Any]]]


def _recorder(seen: Seen, tag: str, *names: str) -> Any:
    def handler(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        seen.append((tag, {n: data.get(n) for n in names}))
        return Response(data={"tag": tag})

    return handler


def _req(op: Operation, path: str = "", **data: Any) -> Request:
    return Request(operation=op, path=path, data=dict(data))


def _backend(seen: Seen, **kwargs: Any) -> PathBackend:
    fields = {"name": Field(FieldType.STRING), "policy": Field(FieldType.STRING),
              "count": Field(FieldType.INT, 1)}
    return PathBackend([
        Path("keys/?", {Operation.LIST: _recorder(seen, "list")}),
        Path("keys/(?P<name>[^/]+)", {Operation.READ: _recorder(seen, "read", "name"),
                                      Operation.UPDATE: _recorder(seen, "write", "name",
                                                                  "policy", "count")},
             fields),
        Path("keys/(?P<name>[^/]+)/rotate", {Operation.UPDATE: _recorder(seen, "rotate")},
             warn_unknown=False),
    ], **kwargs)


def test_the_first_matching_path_handles_the_request() -> None:
    seen: Seen = []
    backend = _backend(seen)
    backend.handle(_req(Operation.LIST), "keys/")
    backend.handle(_req(Operation.LIST), "keys")
    backend.handle(_req(Operation.READ), "keys/k1")
    backend.handle(_req(Operation.UPDATE), "keys/k1/rotate")
    assert [tag for tag, _ in seen] == ["list", "list", "read", "rotate"]
    assert seen[2][1] == {"name": "k1"}


def test_patterns_are_anchored_and_unknown_paths_are_no_route() -> None:
    backend = _backend([])
    for rel in ("keys/a/b", "xkeys/a", "keys/a/rotate/x", ""):
        with pytest.raises(NoRouteError):
            backend.handle(_req(Operation.READ), rel)


def test_an_operation_the_path_lacks_is_405_and_create_falls_back_to_update() -> None:
    seen: Seen = []
    backend = _backend(seen)
    with pytest.raises(UnsupportedOperationError) as caught:
        backend.handle(_req(Operation.DELETE), "keys/k1")
    assert caught.value.status == 405
    backend.handle(_req(Operation.CREATE, policy="p"), "keys/k1")
    assert seen == [("write", {"name": "k1", "policy": "p", "count": 1})]


def test_fields_are_validated_before_the_handler_runs() -> None:
    seen: Seen = []
    with pytest.raises(BadRequestError, match='field "count"'):
        _backend(seen).handle(_req(Operation.UPDATE, count="many"), "keys/k1")
    assert seen == []


def test_captured_values_win_over_body_fields() -> None:
    """The ACL decided on the URL: a body "name" must not redirect the request
    (before issue 11 the body won, so the handler saw "other")."""
    seen: Seen = []
    backend = _backend(seen)
    resp = backend.handle(_req(Operation.UPDATE, name="other", policy="p"), "keys/allowed")
    assert seen == [("write", {"name": "allowed", "policy": "p", "count": 1})]
    # Not an unknown field; but, as Vault's framework does (seen against OpenBao 2.7 in
    # tests/compat/test_transit_vs_bao.py, issue 14), the response says it was replaced.
    assert resp is not None and resp.warnings == [
        "Endpoint replaced the value of these parameters with the values captured from "
        "the endpoint's path: [name]"]


def test_existence_sees_the_captured_value_too() -> None:
    asked: list[str] = []

    def exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        asked.append(data.get("name"))
        return data.get("name") == "present"

    ops = {Operation.UPDATE: _recorder([], "write")}
    backend = PathBackend([Path("k/(?P<name>.+)", ops, {"name": Field()}, existence=exists),
                           Path("plain", ops)])
    assert backend.existence(_req(Operation.UPDATE, name="present"), "k/absent") is False
    assert backend.existence(_req(Operation.UPDATE), "k/present") is True
    assert asked == ["absent", "present"]
    assert backend.existence(_req(Operation.UPDATE), "plain") is None  # no check: update
    assert backend.existence(_req(Operation.UPDATE), "nowhere") is None


def test_unknown_parameters_are_a_warning_not_an_error() -> None:
    seen: Seen = []
    backend = _backend(seen)
    resp = backend.handle(_req(Operation.UPDATE, zeta=1, alpha=2, policy="p"), "keys/k1")
    assert resp is not None
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [alpha zeta]"]
    # A path that takes free-form input (warn_unknown=False) does not warn.
    resp = backend.handle(_req(Operation.UPDATE, anything=1), "keys/k1/rotate")
    assert resp is not None and resp.warnings == []


def test_captures_are_not_reported_as_unrecognized_even_without_a_field() -> None:
    def handler(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"id": m.group("id")})

    backend = PathBackend([Path("status/(?P<id>[^/]+)", {Operation.READ: handler})])
    resp = backend.handle(_req(Operation.READ, extra="x"), "status/abc")
    assert resp is not None and resp.data == {"id": "abc"}
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [extra]"]


def test_special_paths_secret_types_and_lifecycle_of_the_contract() -> None:
    revoked: list[str] = []
    kind = SecretType("creds", revoke=lambda s: revoked.append(s.data["user"]))
    special = SpecialPaths(unauthenticated=("login",), sudo=("admin/*",))
    backend = _backend([], special_paths=special, secret_types=[kind])
    assert isinstance(backend, LogicalBackend)
    assert backend.special_paths is special
    assert _backend([]).special_paths == SpecialPaths()
    found = backend.secret_type("creds")
    assert found is kind and backend.secret_type("other") is None
    found.revoke(Secret("creds", {"user": "u1"}))
    assert revoked == ["u1"]
    for hook in (backend.initialize, backend.periodic, backend.cleanup):
        hook()
    backend.invalidate("some/key")
