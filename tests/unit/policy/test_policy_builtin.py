"""Tests for the built-in policies."""

from __future__ import annotations

import pytest

from strongroom.core.request import Operation
from strongroom.policy import (
    ACL,
    DEFAULT_POLICY,
    DEFAULT_POLICY_HCL,
    RESPONSE_WRAPPING_POLICY,
    ROOT_POLICY,
    parse_policy,
)

DEFAULT = ACL([DEFAULT_POLICY])


@pytest.mark.parametrize(
    ("op", "path"),
    [
        (Operation.READ, "auth/token/lookup-self"),
        (Operation.UPDATE, "auth/token/renew-self"),
        (Operation.UPDATE, "auth/token/revoke-self"),
        (Operation.UPDATE, "sys/capabilities-self"),
        (Operation.READ, "sys/internal/ui/resultant-acl"),
        (Operation.UPDATE, "sys/renew"),
        (Operation.UPDATE, "sys/leases/renew"),
        (Operation.UPDATE, "sys/leases/lookup"),
        (Operation.CREATE, "cubbyhole/mine"),
        (Operation.READ, "cubbyhole/mine"),
        (Operation.LIST, "cubbyhole/"),
        (Operation.DELETE, "cubbyhole/a/b"),
        (Operation.UPDATE, "sys/wrapping/wrap"),
        (Operation.UPDATE, "sys/wrapping/lookup"),
        (Operation.UPDATE, "sys/wrapping/unwrap"),
        (Operation.UPDATE, "sys/tools/hash"),
        (Operation.UPDATE, "sys/tools/hash/sha2-512"),
        (Operation.UPDATE, "sys/control-group/request"),
        (Operation.READ, "identity/oidc/provider/default/authorize"),
        (Operation.UPDATE, "identity/oidc/provider/default/authorize"),
    ],
)
def test_default_policy_grants(op: Operation, path: str) -> None:
    assert DEFAULT.allowed_operation(op, path).allowed


@pytest.mark.parametrize(
    ("op", "path"),
    [
        (Operation.READ, "sys/mounts"),
        (Operation.UPDATE, "sys/mounts/secret"),
        (Operation.UPDATE, "auth/token/lookup-self"),
        (Operation.UPDATE, "auth/token/create"),
        (Operation.READ, "secret/data/x"),
        (Operation.UPDATE, "sys/tools/random"),
        (Operation.PATCH, "cubbyhole/mine"),
        (Operation.READ, "sys/policy/default"),
        (Operation.READ, "identity/entity/id/anything"),
    ],
)
def test_default_policy_does_not_grant(op: Operation, path: str) -> None:
    assert not DEFAULT.allowed_operation(op, path).allowed


def test_default_policy_capabilities_and_text() -> None:
    assert DEFAULT.capabilities("auth/token/lookup-self") == ["read"]
    assert DEFAULT.capabilities("sys/mounts") == ["deny"]
    assert DEFAULT_POLICY.name == "default" and DEFAULT_POLICY.raw == DEFAULT_POLICY_HCL
    assert DEFAULT_POLICY.templated  # the identity/entity rules
    # The text round-trips through the parser as an ordinary policy would.
    assert parse_policy("default", DEFAULT_POLICY_HCL) == DEFAULT_POLICY


def test_response_wrapping_policy() -> None:
    acl = ACL([RESPONSE_WRAPPING_POLICY])
    assert acl.allowed_operation(Operation.CREATE, "cubbyhole/response").allowed
    assert acl.allowed_operation(Operation.READ, "cubbyhole/response").allowed
    assert acl.allowed_operation(Operation.UPDATE, "sys/wrapping/unwrap").allowed
    assert not acl.allowed_operation(Operation.READ, "cubbyhole/other").allowed
    assert not acl.allowed_operation(Operation.READ, "auth/token/lookup-self").allowed


def test_root_policy() -> None:
    assert ROOT_POLICY.name == "root" and ROOT_POLICY.paths == ()
    assert ACL([ROOT_POLICY]).allowed_operation(Operation.UPDATE, "sys/mounts/x").allowed
