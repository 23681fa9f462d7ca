"""The LDAP auth method in process against a real slapd (tests/support/slapd.py): config,
groups/ and users/, login in each of Vault's modes (search-then-bind with binddn,
discoverdn, userdn+userattr direct bind, upndomain), StartTLS, LDAPS, failover, and
the answers that must not reveal whether a user exists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from strongroom.auth import login_guard
from strongroom.auth.ldap import LdapBackend, ldap_factory
from strongroom.auth.ldap.client import (
    BIND_FAILED,
    escape_dn_value,
    escape_filter,
    first_cn,
    render,
)
from strongroom.auth.ldap.path_login import NULL_BIND
from strongroom.barrier.view import StorageView
from strongroom.core.logical import Auth
from strongroom.core.mounts import MountContext, MountEntry
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import (
    BadRequestError,
    LoginFailedError,
    PermissionDeniedError,
    StrongroomError,
)
from strongroom.physical.inmem import InmemBackend
from tests.support.slapd import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PW,
    Slapd,
    password,
    running_slapd,
    user_dn,
)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The login guard's table is process-wide and every call here comes from one
    address: backoff is switched off but where a test looks at it."""
    monkeypatch.setattr(login_guard, "FREE_FAILURES", 10**6)


def backend() -> LdapBackend:
    ctx = MountContext(StorageView(InmemBackend(), "auth/x/"),
                       MountEntry(path="ldap/", type="ldap"), lambda: datetime.now(UTC))
    return ldap_factory(ctx)


def call(b: LdapBackend, op: Operation, path: str, data: dict[str, Any] | None = None,
         remote: str = "127.0.0.1") -> Response | None:
    return b.handle(Request(op, f"auth/ldap/{path}", data=dict(data or {}),
                            remote_addr=remote), path)


def search_config(s: Slapd, **extra: Any) -> dict[str, Any]:
    return {"url": s.ldap_url, "binddn": SERVICE_DN, "bindpass": SERVICE_PW,
            "userdn": PEOPLE, "userattr": "uid", "groupdn": GROUPS, **extra}


def configured(s: Slapd, **extra: Any) -> LdapBackend:
    b = backend()
    call(b, Operation.UPDATE, "config", search_config(s, **extra))
    call(b, Operation.UPDATE, "groups/admins", {"policies": "admin-pol"})
    call(b, Operation.UPDATE, "groups/devs", {"policies": ["dev-pol", "shared"]})
    return b


def login(b: LdapBackend, user: str, pw: str | None = None) -> Auth:
    resp = call(b, Operation.UPDATE, f"login/{user}",
                {"password": password(user.lower()) if pw is None else pw})
    assert resp is not None and resp.auth is not None
    return resp.auth


def login_error(b: LdapBackend, user: str, pw: str) -> StrongroomError:
    with pytest.raises(StrongroomError) as info:
        call(b, Operation.UPDATE, f"login/{user}", {"password": pw})
    return info.value


# -- pure helpers ------------------------------------------------------------------------

def test_filter_and_dn_escaping() -> None:
    assert escape_filter("a*b(c)\\d") == "a\\2ab\\28c\\29\\5cd"
    assert escape_filter("é") == "\\c3\\a9"
    assert escape_dn_value(" #a,b+c ") == "\\ #a\\,b\\+c\\ "
    assert render("(&(uid={{.Username}})(x={{ .UserDN }}))",
                  {"Username": "u", "UserDN": "d"}) == "(&(uid=u)(x=d))"
    assert first_cn("cn=Admins,ou=groups,dc=x", True) == "Admins"
    assert first_cn("admins", True) == "admins"
    assert first_cn("CN=ops,dc=x", True) == "ops"
    assert first_cn("cn=ops,dc=x", False) == "cn=ops,dc=x"  # pre-1.1.1: "CN" only
    assert first_cn("cn=Ops\\2c Team,dc=x", True) == "Ops, Team"  # unescaped, as go-ldap
    assert first_cn("cn=a\\+b,dc=x", True) == "a+b"


# -- config ------------------------------------------------------------------------------

def test_config_defaults_and_bindpass_never_read() -> None:
    b = backend()
    resp = call(b, Operation.READ, "config")
    assert resp is not None and resp.data is not None
    assert resp.data["url"] == "ldap://127.0.0.1" and resp.data["deny_null_bind"] is True
    assert resp.data["userattr"] == "cn" and resp.data["tls_max_version"] == "tls12"
    call(b, Operation.UPDATE, "config", {"url": "LDAP://Example", "bindpass": "s3cret",
                                         "userattr": "UID", "token_policies": "a,b"})
    data = call(b, Operation.READ, "config").data  # type: ignore[union-attr]
    assert data["url"] == "ldap://example" and data["userattr"] == "uid"
    assert "bindpass" not in data and "s3cret" not in str(data)
    assert data["token_policies"] == ["a", "b"]


@pytest.mark.parametrize(("body", "message"), [
    ({"certificate": "not a pem"},
     "failed to parse server tls cert: failed to decode PEM block in the certificate"),
    ({"tls_min_version": "tls99"}, "invalid 'tls_min_version'"),
    ({"tls_min_version": "tls13", "tls_max_version": "tls12"},
     "'tls_max_version' must be greater than or equal to 'tls_min_version'"),
    ({"client_tls_cert": "x"}, "both client_tls_cert and client_tls_key must be set"),
])
def test_config_bad_inputs(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestError) as info:
        call(backend(), Operation.UPDATE, "config", body)
    assert info.value.message == message


def test_config_bad_template() -> None:
    with pytest.raises(BadRequestError, match="^invalid groupfilter: "):
        call(backend(), Operation.UPDATE, "config", {"groupfilter": "(cn={{.Username)"})


# -- groups and users --------------------------------------------------------------------

def test_groups_and_users_crud_list_case_insensitive() -> None:
    b = backend()
    assert call(b, Operation.LIST, "groups").status == 404  # type: ignore[union-attr]
    call(b, Operation.UPDATE, "groups/Ops", {"policies": "B, a ,a"})
    assert call(b, Operation.READ, "groups/OPS").data == {"policies": ["a", "b"]}  # type: ignore[union-attr]
    call(b, Operation.UPDATE, "users/Bob", {"groups": "x, Y,x", "policies": "p"})
    assert call(b, Operation.READ, "users/bob").data == {"groups": "x,y", "policies": ["p"]}  # type: ignore[union-attr]
    assert call(b, Operation.LIST, "users/").data == {"keys": ["bob"]}  # type: ignore[union-attr]
    assert call(b, Operation.LIST, "groups").data == {"keys": ["ops"]}  # type: ignore[union-attr]
    call(b, Operation.DELETE, "users/BOB")
    assert call(b, Operation.READ, "users/bob").status == 404  # type: ignore[union-attr]


# -- logins ------------------------------------------------------------------------------

def test_search_then_bind_with_groups(slapd: Slapd) -> None:
    b = configured(slapd)
    call(b, Operation.UPDATE, "users/alice", {"policies": "own", "groups": "extra"})
    call(b, Operation.UPDATE, "groups/extra", {"policies": "extra-pol"})
    auth = login(b, "Alice")  # case-insensitive by default
    assert sorted(auth.policies) == ["admin-pol", "dev-pol", "extra-pol", "own", "shared"]
    assert auth.metadata == {"username": "alice"} and auth.display_name == "alice"
    assert auth.alias is not None and auth.alias.name == "alice"  # the userattr's value
    assert auth.alias.metadata == {"name": "alice"}
    # bob: only the posixGroup (memberUid); carol: no group, a warning as Vault's.
    assert sorted(login(b, "bob").policies) == ["dev-pol", "shared"]
    resp = call(b, Operation.UPDATE, "login/carol", {"password": password("carol")})
    assert resp is not None and resp.auth is not None and resp.auth.policies == []
    assert resp.warnings == [f'no LDAP groups found in groupDN "{GROUPS}"; only policies '
                             "from locally-defined groups available"]


def test_group_search_in_pages(slapd: Slapd) -> None:
    """max_page_size: the paged-results control, one group per page here."""
    auth = login(configured(slapd, max_page_size=1), "alice")
    assert sorted(auth.policies) == ["admin-pol", "dev-pol", "shared"]


def test_token_fields_apply(slapd: Slapd) -> None:
    b = configured(slapd, token_policies="base", token_ttl="1h", token_max_ttl="2h")
    auth = login(b, "bob")
    assert sorted(auth.policies) == ["base", "dev-pol", "shared"]
    assert (auth.ttl, auth.max_ttl) == (3600, 7200)


def test_failures_do_not_reveal_existence(slapd: Slapd) -> None:
    b = configured(slapd)
    wrong = login_error(b, "alice", "nope")
    missing = login_error(b, "nobody", "nope")
    ambiguous = login_error(b, "twin", password("twin"))  # two entries: refused
    for err in (wrong, missing, ambiguous):
        assert (type(err), err.status, err.message) == (
            type(wrong), 400, BIND_FAILED)
    # A password SASLprep would refuse is sent as it is, and is just wrong.
    assert login_error(b, "alice", "bad\x01pw\u00a0").message == BIND_FAILED
    # Filter metacharacters in the username are escaped, not interpreted.
    for user in ("*", "alice)(uid=*", "al*"):
        assert login_error(b, user, password("alice")).message == BIND_FAILED


def test_deny_null_bind(slapd: Slapd) -> None:
    b = configured(slapd)
    assert login_error(b, "alice", "").message == NULL_BIND
    b = configured(slapd, deny_null_bind=False)
    # Never sent as an unauthenticated bind: refused like a wrong password.
    assert login_error(b, "alice", "").message == BIND_FAILED


def test_direct_bind_userdn_userattr(slapd: Slapd) -> None:
    b = backend()
    call(b, Operation.UPDATE, "config", {"url": slapd.ldap_url, "userdn": PEOPLE,
                                         "userattr": "uid", "groupdn": GROUPS})
    call(b, Operation.UPDATE, "groups/admins", {"policies": "admin-pol"})
    auth = login(b, "alice")
    assert auth.alias is not None and auth.alias.name == user_dn("alice")
    assert "admin-pol" in auth.policies
    assert login_error(b, "alice", "bad").message == BIND_FAILED
    assert login_error(b, "ghost", "bad").message == BIND_FAILED


def test_discoverdn_anonymous_search(slapd: Slapd) -> None:
    b = backend()
    call(b, Operation.UPDATE, "config", {"url": slapd.ldap_url, "userdn": PEOPLE,
                                         "userattr": "uid", "discoverdn": True,
                                         "groupdn": GROUPS, "username_as_alias": True})
    call(b, Operation.UPDATE, "groups/devs", {"policies": "dev-pol"})
    auth = login(b, "bob")
    assert auth.policies == ["dev-pol"] and auth.alias is not None and auth.alias.name == "bob"


def test_upndomain_search(slapd: Slapd) -> None:
    b = configured(slapd, upndomain="example.org")
    auth = login(b, "alice")
    assert "admin-pol" in auth.policies
    assert login_error(b, "bob", password("bob")).message == BIND_FAILED  # no UPN


def test_starttls_and_ldaps_verify_the_server(slapd: Slapd) -> None:
    ca = slapd.ca_pem
    assert "admin-pol" in login(configured(slapd, starttls=True, certificate=ca),
                                "alice").policies
    assert "admin-pol" in login(configured(slapd, url=slapd.ldaps_url, certificate=ca),
                                "alice").policies
    # Without the CA the server is not trusted: no login, a connection error.
    err = login_error(configured(slapd, url=slapd.ldaps_url), "alice", password("alice"))
    assert err.status == 400 and "error connecting to host" in err.message
    err = login_error(configured(slapd, starttls=True), "alice", password("alice"))
    assert "error connecting to host" in err.message
    assert login(configured(slapd, url=slapd.ldaps_url, insecure_tls=True), "alice")
    # The certificate names 127.0.0.1 only: the same server reached as "localhost" is
    # refused (the name is checked, not only the chain), but with insecure_tls.
    by_name = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    err = login_error(configured(slapd, url=by_name, certificate=ca), "alice",
                      password("alice"))
    assert "Hostname mismatch" in err.message


def test_url_failover_and_all_down(slapd: Slapd) -> None:
    from tests.support.servers import free_port

    dead = f"ldap://127.0.0.1:{free_port()}"
    assert login(configured(slapd, url=f"{dead},{slapd.ldap_url}"), "alice")
    err = login_error(configured(slapd, url=f"{dead},{dead}", connection_timeout=2),
                      "alice", password("alice"))
    assert err.message.startswith("2 errors occurred:\n\t* error connecting to host")


def test_token_bound_cidrs_at_login(slapd: Slapd) -> None:
    b = configured(slapd, token_bound_cidrs="10.0.0.0/8")
    with pytest.raises(PermissionDeniedError):
        call(b, Operation.UPDATE, "login/alice", {"password": password("alice")})
    assert call(b, Operation.UPDATE, "login/alice", {"password": password("alice")},
                remote="10.1.2.3").auth is not None  # type: ignore[union-attr]


def test_renew_login_checks_policies(slapd: Slapd) -> None:
    b = configured(slapd, token_ttl="1h")
    auth = login(b, "bob")
    renewed = b.renew_login(Request(Operation.UPDATE, "auth/token/renew-self"), auth)
    assert renewed.ttl == 3600
    call(b, Operation.UPDATE, "groups/devs", {"policies": "other"})
    with pytest.raises(StrongroomError, match="policies have changed, not renewing"):
        b.renew_login(Request(Operation.UPDATE, "auth/token/renew-self"), auth)



def test_backoff_answers_like_a_wrong_password(slapd: Slapd,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_guard, "FREE_FAILURES", 1)
    b = configured(slapd)
    errors = []
    for _ in range(3):
        with pytest.raises(LoginFailedError) as info:
            call(b, Operation.UPDATE, "login/dave", {"password": "x"}, remote="10.9.9.9")
        errors.append(info.value)
    assert [e.message for e in errors] == [BIND_FAILED] * 3
    assert errors[-1].delay > 0  # the third came inside the second's window
    # The right password is refused too while the client backs off.
    with pytest.raises(LoginFailedError, match=BIND_FAILED):
        call(b, Operation.UPDATE, "login/alice", {"password": password("alice")},
             remote="10.9.9.9")


def test_case_variants_share_one_backoff_with_case_sensitive_names(
        slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review i15 F3: with ``case_sensitive_names`` the guard's principal kept the case
    given, while the directory matches ``uid`` case-insensitively: every case variant of
    a name (alice, Alice, aLice... 2**len of them) had its own free failures and its
    own backoff against the one account."""
    monkeypatch.setattr(login_guard, "FREE_FAILURES", 1)
    monkeypatch.setattr(login_guard, "_tables", {})  # no counts from the tests above
    b = configured(slapd, case_sensitive_names=True)
    assert login(b, "ALICE", password("alice")).metadata["username"] == "ALICE"
    for i, variant in enumerate(("alice", "Alice", "aLice")):
        with pytest.raises(LoginFailedError):
            call(b, Operation.UPDATE, f"login/{variant}", {"password": "guess"},
                 remote=f"10.8.0.{i + 1}")
    # The third failure (one past the free one) opened a window for the account,
    # whichever case the next guess is spelled in.
    with pytest.raises(LoginFailedError) as info:
        call(b, Operation.UPDATE, "login/ALicE", {"password": "guess"}, remote="10.8.0.9")
    assert info.value.delay > 0
