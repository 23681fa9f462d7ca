"""Core.handle's stages: audit (fail closed), lease and login registration, special paths.

Audit devices and the expiration manager come with issue 12; here test doubles that
implement core/hooks.py's protocols drive the stages the core already runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from strongroom.core.core import Core
from strongroom.core.hooks import AuditBroker, LeaseRegistrar
from strongroom.core.logical import Auth, LogicalBackend, Secret, SecretType, SpecialPaths
from strongroom.core.mounts import MountEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.core.tokens import TokenEntry
from strongroom.errors import StrongroomError
from strongroom.framework import FieldData, Path, PathBackend
from tests.support.nodes import DevNode, dev_node

INTERNAL = {"errors": ["internal error"]}


@dataclass
class RecordingAudit:
    """An audit broker with one device that records, or (``working=False``) cannot."""

    working: bool = True
    events: list[tuple[str, str, str | None]] = field(default_factory=list)
    responses: list[Response | None] = field(default_factory=list)

    def enabled(self) -> bool:
        return True

    def log_request(self, req: Request, mount: MountEntry | None,
                    error: str | None = None) -> bool:
        self.events.append(("request", req.path, error))
        return self.working

    def log_response(self, req: Request, mount: MountEntry | None, resp: Response | None,
                     error: str | None = None) -> bool:
        self.events.append(("response", req.path, error))
        self.responses.append(resp)
        return self.working


@dataclass
class RecordingLeases:
    fail: bool = False
    secrets: list[tuple[str, str, Secret]] = field(default_factory=list)
    tokens: list[tuple[str, TokenEntry, Auth]] = field(default_factory=list)
    trail: list[str] | None = None

    def register(self, req: Request, mount: MountEntry, secret: Secret) -> str:
        if self.trail is not None:
            self.trail.append("lease")
        if self.fail:
            raise StrongroomError("storage is full")
        lease_id = f"{req.path}/lease{len(self.secrets) + 1}"
        self.secrets.append((lease_id, mount.path, secret))
        return lease_id

    def register_auth(self, req: Request, mount: MountEntry | None, entry: TokenEntry,
                      auth: Auth) -> None:
        self.tokens.append((req.path, entry, auth))


class CredsBackend(PathBackend):
    """A leased engine: each read of creds/<role> makes a user, revoked with its lease."""

    def __init__(self, ttl: int = 0, max_ttl: int = 0) -> None:
        self.revoked: list[str] = []
        self.trail: list[str] = []
        self._ttl, self._max_ttl = ttl, max_ttl
        super().__init__(
            [Path("creds/(?P<role>[^/]+)", {Operation.READ: self._creds}),
             Path("admin/(?P<what>.+)", {Operation.UPDATE: self._admin})],
            special_paths=SpecialPaths(sudo=("admin/*",)),
            secret_types=[SecretType("creds", revoke=self._revoke)],
        )

    def _creds(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        self.trail.append("handle")
        user = f"{m.group('role')}-user"
        return Response(secret=Secret("creds", {"username": user, "password": "pw"},
                                      internal={"username": user}, ttl=self._ttl,
                                      max_ttl=self._max_ttl))

    def _admin(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(data={"done": m.group("what")})

    def _revoke(self, secret: Secret) -> None:
        self.revoked.append(secret.internal["username"])


class LoginBackend(PathBackend):
    """An auth method: ``login`` is unauthenticated and answers with an Auth."""

    def __init__(self, policies: list[str]) -> None:
        self._policies = policies
        super().__init__(
            [Path("login", {Operation.UPDATE: self._login}, warn_unknown=False),
             Path("other", {Operation.UPDATE: self._login}, warn_unknown=False)],
            special_paths=SpecialPaths(unauthenticated=("login",)),
        )

    def _login(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return Response(auth=Auth(policies=list(self._policies), metadata={"user": "alice"},
                                  display_name="alice", ttl=int(req.data.get("ttl", 0))))


def mount(core: Core, entry: MountEntry, backend: LogicalBackend) -> None:
    """Serve ``backend`` at ``entry.path`` through the core's resolve stage."""
    resolve = core._resolve

    def resolved(path: str) -> tuple[LogicalBackend, str, MountEntry | None]:
        if path.startswith(entry.path):
            return backend, path[len(entry.path):], entry
        return resolve(path)

    core._resolve = resolved  # type: ignore[method-assign]


def _token(d: DevNode, rules: str) -> str:
    d.call("POST", "sys/policies/acl/p", json={"policy": rules})
    token: str = d.call("POST", "auth/token/create",
                        json={"policies": ["p"]}).json["auth"]["client_token"]
    return token


# -- audit ------------------------------------------------------------------------


def test_the_default_broker_has_no_device_and_requests_proceed() -> None:
    d = dev_node()
    assert isinstance(d.node.core.audit, AuditBroker)
    assert not d.node.core.audit.enabled()
    assert d.call("POST", "secret/data/a", json={"data": {"k": "v"}}).status_code == 200


def test_a_device_records_the_request_before_and_the_response_after() -> None:
    d = dev_node()
    audit = RecordingAudit()
    d.node.core.audit = audit
    assert d.call("POST", "secret/data/a", json={"data": {"k": "v"}}).status_code == 200
    assert audit.events == [("request", "secret/data/a", None),
                            ("response", "secret/data/a", None)]
    recorded = audit.responses[0]
    assert recorded is not None and recorded.data is not None
    assert recorded.data["version"] == 1


def test_no_device_recording_the_request_fails_closed_and_nothing_happens() -> None:
    d = dev_node()
    audit = RecordingAudit(working=False)
    d.node.core.audit = audit
    resp = d.call("POST", "secret/data/a", json={"data": {"k": "v"}})
    assert (resp.status_code, resp.json) == (500, INTERNAL)
    assert audit.events == [("request", "secret/data/a", None)]  # never handled
    audit.working = True
    assert d.call("GET", "secret/data/a").status_code == 404


def test_a_refused_request_is_recorded_with_its_error() -> None:
    d = dev_node()
    token = _token(d, 'path "secret/data/mine" { capabilities = ["read"] }')
    audit = RecordingAudit()
    d.node.core.audit = audit
    assert d.call("GET", "secret/data/theirs", token=token).status_code == 403
    # The request with its error, then its answer (OpenBao records both: issue 12's
    # tests/compat/test_audit_vs_bao.py compares the entries).
    [(kind, path, error), (kind2, path2, error2)] = audit.events
    assert (kind, path, kind2, path2) == ("request", "secret/data/theirs",
                                          "response", "secret/data/theirs")
    assert error is not None and "permission denied" in error and error2 == error


def test_a_failed_handler_is_recorded_as_the_response_error() -> None:
    d = dev_node()
    audit = RecordingAudit()
    d.node.core.audit = audit
    resp = d.call("POST", "secret/data/a", json={})
    assert resp.status_code == 400
    assert audit.events == [("request", "secret/data/a", None),
                            ("response", "secret/data/a", "no data provided")]


def test_an_unrecorded_response_is_a_500_after_the_fact() -> None:
    d = dev_node()
    audit = RecordingAudit()
    d.node.core.audit = audit

    def broken(req: Request, mount: MountEntry | None, resp: Response | None,
               error: str | None = None) -> bool:
        return False

    audit.log_response = broken  # type: ignore[method-assign]
    resp = d.call("POST", "secret/data/a", json={"data": {"k": "v"}})
    assert (resp.status_code, resp.json) == (500, INTERNAL)
    d.node.core.audit = RecordingAudit()
    assert d.call("GET", "secret/data/a").json["data"]["data"] == {"k": "v"}  # as Vault


# -- leases -----------------------------------------------------------------------


def _creds_node(config: dict[str, Any] | None = None, **kwargs: int) -> tuple[
        DevNode, CredsBackend]:
    d = dev_node()
    backend = CredsBackend(**kwargs)
    mount(d.node.core, MountEntry(path="db/", type="database", config=config or {}), backend)
    return d, backend


def test_a_leased_secret_without_an_expiration_manager_fails_closed_and_is_revoked() -> None:
    d, backend = _creds_node()
    d.node.core.leases = None  # issue 12 installs the expiration manager; without one:
    resp = d.call("GET", "db/creds/app")
    assert (resp.status_code, resp.json) == (500, INTERNAL)
    assert backend.revoked == ["app-user"]  # no credential outlives the failed request


def test_a_failed_registration_revokes_the_secret_too() -> None:
    d, backend = _creds_node()
    d.node.core.leases = RecordingLeases(fail=True)
    assert d.call("GET", "db/creds/app").status_code == 500
    assert backend.revoked == ["app-user"]


def test_a_registered_lease_is_reported_in_vaults_envelope() -> None:
    d, backend = _creds_node(ttl=600)
    leases = RecordingLeases()
    d.node.core.leases = leases
    assert isinstance(leases, LeaseRegistrar)
    resp = d.call("GET", "db/creds/app")
    assert resp.status_code == 200, resp.text
    body = resp.json
    assert body["lease_id"] == "db/creds/app/lease1"
    assert (body["lease_duration"], body["renewable"]) == (600, True)
    assert body["data"] == {"username": "app-user", "password": "pw"}
    assert "internal" not in resp.text and backend.revoked == []
    [(lease_id, mount_path, secret)] = leases.secrets
    assert (mount_path, secret.internal, secret.ttl) == ("db/", {"username": "app-user"}, 600)


@pytest.mark.parametrize(("config", "backend_ttls", "expected", "warned"), [
    ({}, {}, 768 * 3600, False),  # the system default (dev config: Vault's 768h)
    ({"default_lease_ttl": 300}, {}, 300, False),  # the mount's tuned default
    ({"max_lease_ttl": 900}, {"ttl": 3600}, 900, True),  # capped by the mount's max
    ({}, {"ttl": 3600, "max_ttl": 60}, 60, True),  # capped by the secret's own max
])
def test_lease_ttls_are_bounded_by_the_mount_and_the_system(
        config: dict[str, int], backend_ttls: dict[str, int], expected: int,
        warned: bool) -> None:
    d, _ = _creds_node(config, **backend_ttls)
    d.node.core.leases = RecordingLeases()
    body = d.call("GET", "db/creds/app").json
    assert body["lease_duration"] == expected
    assert bool(body["warnings"]) is warned


def test_kv_secrets_report_a_ttl_but_are_never_registered() -> None:
    d = dev_node()
    leases = RecordingLeases()
    d.node.core.leases = leases
    d.call("POST", "sys/mounts/kv1", json={"type": "kv"})
    d.call("POST", "kv1/a", json={"v": 1, "ttl": "1h"})
    body = d.call("GET", "kv1/a").json
    assert (body["lease_id"], body["lease_duration"], body["renewable"]) == ("", 3600, False)
    assert leases.secrets == []


def test_stages_run_in_order() -> None:
    d, backend = _creds_node()
    trail = backend.trail
    leases = RecordingLeases(trail=trail)
    d.node.core.leases = leases
    audit = RecordingAudit()
    d.node.core.audit = audit
    original_request, original_response = audit.log_request, audit.log_response

    def log_request(req: Request, mount: MountEntry | None, error: str | None = None) -> bool:
        trail.append("audit request")
        return original_request(req, mount, error)

    def log_response(req: Request, mount: MountEntry | None, resp: Response | None,
                     error: str | None = None) -> bool:
        trail.append("audit response")
        return original_response(req, mount, resp, error)

    audit.log_request = log_request  # type: ignore[method-assign]
    audit.log_response = log_response  # type: ignore[method-assign]
    resp = d.call("GET", "db/creds/app", headers={"X-Vault-Wrap-TTL": "60"})
    assert resp.status_code == 200 and resp.json["wrap_info"]["token"]
    assert trail == ["audit request", "handle", "lease", "audit response"]
    # The response recorded is the one the client got: wrapped.
    recorded = audit.responses[-1]
    assert recorded is not None and recorded.wrap_info is not None


def test_sudo_comes_from_the_backends_special_paths() -> None:
    d, _ = _creds_node()
    plain = _token(d, 'path "db/admin/*" { capabilities = ["update"] }')
    assert d.call("POST", "db/admin/x", token=plain, json={}).status_code == 403
    d.call("POST", "sys/policies/acl/s",
           json={"policy": 'path "db/admin/*" { capabilities = ["update", "sudo"] }'})
    sudo = d.call("POST", "auth/token/create",
                  json={"policies": ["s"]}).json["auth"]["client_token"]
    resp = d.call("POST", "db/admin/x", token=sudo, json={})
    assert resp.status_code == 200 and resp.json["data"] == {"done": "x"}


# -- logins -----------------------------------------------------------------------


def _login_node(policies: list[str], config: dict[str, Any] | None = None) -> DevNode:
    d = dev_node()
    mount(d.node.core, MountEntry(path="auth/test/", type="test", config=config or {}),
          LoginBackend(policies))
    return d


def test_a_login_path_gets_a_token_issued_by_the_login_stage() -> None:
    d = _login_node(["dev"], {"default_lease_ttl": 1200, "max_lease_ttl": 2400})
    leases = RecordingLeases()
    d.node.core.leases = leases
    resp = d.call("POST", "auth/test/login", token="", json={})
    assert resp.status_code == 200, resp.text
    auth = resp.json["auth"]
    assert auth["policies"] == ["default", "dev"] and auth["token_policies"] == auth["policies"]
    assert (auth["lease_duration"], auth["orphan"], auth["renewable"]) == (1200, True, True)
    assert auth["metadata"] == {"user": "alice"} and auth["accessor"]
    looked = d.call("GET", "auth/token/lookup-self", token=auth["client_token"]).json["data"]
    assert looked["path"] == "auth/test/login" and looked["display_name"] == "test-alice"
    assert looked["meta"] == {"user": "alice"} and looked["orphan"] is True
    [(path, entry, registered)] = leases.tokens
    assert path == "auth/test/login" and entry.accessor == auth["accessor"]
    assert registered.client_token == auth["client_token"]
    capped = d.call("POST", "auth/test/login", token="", json={"ttl": 99999}).json
    assert capped["auth"]["lease_duration"] == 2400 and capped["warnings"]


def test_a_login_cannot_make_a_root_token() -> None:
    d = _login_node(["root"])
    resp = d.call("POST", "auth/test/login", token="", json={})
    assert (resp.status_code, resp.json) == (
        400, {"errors": ["authentication methods cannot create root tokens"]})


def test_only_the_token_store_answers_an_auth_outside_login_paths() -> None:
    d = _login_node(["dev"])
    resp = d.call("POST", "auth/test/other", json={})
    assert (resp.status_code, resp.json) == (500, INTERNAL)


def test_token_creation_goes_through_the_login_stage() -> None:
    d = dev_node()
    leases = RecordingLeases()
    d.node.core.leases = leases
    resp = d.call("POST", "auth/token/create", json={"policies": ["default"], "ttl": "1h"})
    assert resp.status_code == 200, resp.text
    [(path, entry, auth)] = leases.tokens
    assert path == "auth/token/create" and entry.path == "auth/token/create"
    assert auth.client_token == resp.json["auth"]["client_token"] and auth.issued
    assert entry.parent_hash  # a child of the root token
    assert resp.json["auth"]["lease_duration"] == 3600 and resp.json["auth"]["orphan"] is False


def test_a_wrapped_token_creation_unwraps_to_the_same_auth_block() -> None:
    d = dev_node()
    wrapped = d.call("POST", "auth/token/create", json={"policies": ["default"], "ttl": "1h"},
                     headers={"X-Vault-Wrap-TTL": "60"}).json
    info = wrapped["wrap_info"]
    assert wrapped["auth"] is None and info["wrapped_accessor"]
    unwrapped = d.call("POST", "sys/wrapping/unwrap", token=info["token"], json={}).json
    auth = unwrapped["auth"]
    assert auth["accessor"] == info["wrapped_accessor"]
    assert list(auth) == ["client_token", "accessor", "policies", "token_policies",
                          "metadata", "lease_duration", "renewable", "entity_id",
                          "token_type", "orphan", "mfa_requirement", "num_uses"]
    assert (auth["policies"], auth["lease_duration"], auth["metadata"]) == (
        ["default"], 3600, None)
    looked = d.call("GET", "auth/token/lookup-self", token=auth["client_token"])
    assert looked.status_code == 200


def test_an_enabled_auth_method_gets_tokens_from_the_login_stage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The way issue 15's methods plug in: a type in the registry, enabled via sys/auth."""
    from strongroom import registry

    monkeypatch.setitem(registry.AUTH_METHODS, "testlogin", lambda ctx: LoginBackend(["dev"]))
    d = dev_node()
    enabled = d.call("POST", "sys/auth/people",
                     json={"type": "testlogin", "config": {"default_lease_ttl": "1h"}})
    assert enabled.status_code == 204, enabled.text
    resp = d.call("POST", "auth/people/login", token="", json={})
    assert resp.status_code == 200, resp.text
    auth = resp.json["auth"]
    assert (auth["policies"], auth["lease_duration"], auth["orphan"]) == (
        ["default", "dev"], 3600, True)
    looked = d.call("GET", "auth/token/lookup-self", token=auth["client_token"]).json["data"]
    assert looked["path"] == "auth/people/login"
    # Not a login path: an auth method may not answer with an Auth there.
    assert d.call("POST", "auth/people/other", json={}).status_code == 500
