"""``login/<username>``: search-then-bind against the directory, then groups to policies.

Existence is never revealed: a user the directory does not have, a search that finds
several, and a wrong password all answer Vault's "failed to bind as user" (400) after
the same steps: the missing user's bind goes to a DN that cannot exist, with the
password given, so the directory does the same round trip (and the same work) as for
a wrong password. The login guard (auth/login_guard.py) counts both as failures, per
client and per username, and slows the next attempts alike.

Renewal (``renew_login``) logs in again, as Vault's AuthRenew does: the user's password
is kept with the token (its ``internal`` data, in the token entry behind the barrier,
never shown by a lookup nor audited), so a user whose password changed, or whom the
directory now refuses (a locked account), can no longer renew; then the groups are
read again and the policies must be unchanged. A token issued before the password was
kept (none in ``internal``) is checked as before: the user must still be found.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ldap3

from strongroom.auth.tokenutil import cidrs_allow
from strongroom.core.logical import Alias, Auth
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_roles import sanitize_policies
from strongroom.errors import (
    BadRequestError,
    InvalidCredentialsError,
    PermissionDeniedError,
    StrongroomError,
)
from strongroom.framework import Field, FieldData, FieldType, Path

from .client import (
    BIND_FAILED,
    LdapError,
    anonymous_bind,
    bind,
    dial,
    escape_dn_value,
    escape_filter,
    first_cn,
    render,
    search,
)
from .config import LdapConfig
from .path_groups import GROUP, USER, load

if TYPE_CHECKING:
    from . import LdapBackend

log = logging.getLogger(__name__)

NULL_BIND = ("password cannot be of zero length when passwordless binds are being "
             "denied")
# Where a login for a user the directory does not have binds: an entry no directory
# holds (a random name), looked up and refused as a wrong password is.
_NOWHERE = "cn=strongroom-no-such-user-"


@dataclass
class _Found:
    """The directory's answer for one username."""

    bind_dn: str
    alias: str = ""
    groups: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _searching(cfg: LdapConfig) -> bool:
    return cfg.discoverdn or bool(cfg.binddn and cfg.bindpass)


def _service_bind(cfg: LdapConfig, conn: ldap3.Connection) -> bool:
    if cfg.bindpass:
        return bind(conn, cfg.binddn, cfg.bindpass)
    # No password: anonymous when there is no DN either (discoverdn); a DN without a
    # password is an unauthenticated bind, never sent (client.bind refuses it).
    return anonymous_bind(conn) if not cfg.binddn else False


def _user_filter(cfg: LdapConfig, username: str) -> str:
    values = {"UserAttr": escape_filter(cfg.userattr), "Username": escape_filter(username)}
    if cfg.upndomain:
        values = {"UserAttr": "userPrincipalName",
                  "Username": f"{escape_filter(username)}@{cfg.upndomain}"}
    return render(cfg.userfilter or "({{.UserAttr}}={{.Username}})", values)


def _search_user(cfg: LdapConfig, conn: ldap3.Connection,
                 username: str) -> list[tuple[str, dict[str, list[str]]]] | None:
    """The entries matching the username (at most 2 asked), None if the service bind
    was refused."""
    if not _service_bind(cfg, conn):
        return None
    return search(cfg, conn, cfg.userdn, _user_filter(cfg, username), [cfg.userattr],
                  size_limit=2)


def _constructed_dn(cfg: LdapConfig, username: str) -> str:
    if cfg.upndomain:
        return f"{escape_dn_value(username)}@{cfg.upndomain}"
    return f"{cfg.userattr}={escape_dn_value(username)},{cfg.userdn}"


def _user_dn(cfg: LdapConfig, conn: ldap3.Connection, bind_dn: str, username: str) -> str:
    if not cfg.upndomain:
        return bind_dn
    found = search(cfg, conn, cfg.userdn,
                   f"(userPrincipalName={escape_filter(username)}@{cfg.upndomain})", [])
    return found[-1][0] if found else ""


def _groups(cfg: LdapConfig, conn: ldap3.Connection, user_dn: str, username: str) -> list[str]:
    if cfg.use_token_groups:
        # Active Directory's tokenGroups: not supported here (OpenLDAP has no such
        # attribute); no directory groups, so fewer policies, never more.
        log.warning("event=ldap_token_groups_unsupported")
        return []
    if not cfg.groupfilter or not cfg.groupdn:
        return []
    filt = render(cfg.groupfilter, {"UserDN": escape_filter(user_dn),
                                    "Username": escape_filter(username)})
    names: set[str] = set()
    insensitive = not cfg.use_pre111_group_cn_behavior
    for dn, attrs in search(cfg, conn, cfg.groupdn, filt, [cfg.groupattr],
                            page_size=max(cfg.max_page_size, 0)):
        values = attrs.get(cfg.groupattr.lower()) or []
        for value in values or [dn]:
            names.add(first_cn(value, insensitive))
    return sorted(names)


def _alias(cfg: LdapConfig, conn: ldap3.Connection, username: str) -> str:
    if cfg.username_as_alias:
        return username
    if not _searching(cfg):
        return _constructed_dn(cfg, username)
    entries = _search_user(cfg, conn, username)
    if entries is None:
        raise LdapError("LDAP search for entity alias attribute failed: LDAP bind (service) "
                        "failed")
    if len(entries) != 1:
        raise LdapError("LDAP search for entity alias attribute 0 or not unique")
    attrs = entries[0][1]
    if len(attrs) != 1:
        raise LdapError("LDAP attribute missing for entity alias mapping")
    values = next(iter(attrs.values()))
    if len(values) != 1:
        raise LdapError(f"LDAP entity alias attribute {cfg.userattr} empty or not unique "
                        "for entity alias mapping")
    return values[0]


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _directory_groups(cfg: LdapConfig, conn: ldap3.Connection, bind_dn: str,
                      username: str, found: _Found) -> None:
    """After the user's bind: groups (as the service account, or anonymously)."""
    if cfg.binddn and cfg.bindpass and not bind(conn, cfg.binddn, cfg.bindpass):
        raise LdapError("ldap operation failed: failed to re-bind with the BindDN user")
    user_dn = _user_dn(cfg, conn, bind_dn, username)
    if cfg.anonymous_group_search:
        with dial(cfg) as anon:
            found.groups = _groups(cfg, anon, user_dn, username)
    else:
        found.groups = _groups(cfg, conn, user_dn, username)
    if not found.groups:
        found.warnings.append(f"no LDAP groups found in groupDN {_go_quote(cfg.groupdn)}; "
                              "only policies from locally-defined groups available")
    found.alias = _alias(cfg, conn, username)


def _policies(b: LdapBackend, cfg: LdapConfig, username: str,
              ldap_groups: list[str]) -> list[str]:
    user = load(b, USER, username) or {}
    groups = [*(user.get("groups") or []), *ldap_groups]
    if not cfg.case_sensitive_names:
        groups = [g.lower() for g in groups]
    policies: list[str] = []
    for name in groups:
        group = load(b, GROUP, name) if name else None
        if group:
            policies.extend(group.get("policies") or [])
    policies.extend(user.get("policies") or [])
    return sanitize_policies(policies, add_default=False)


def _canonical(cfg: LdapConfig, username: str) -> str:
    # Some directories trim spaces silently: the alias and the guard's principal must
    # not differ from the directory's idea of the user (CVE-2025-6004).
    username = username.strip()
    return username if cfg.case_sensitive_names else username.lower()


def paths(b: LdapBackend) -> list[Path]:
    def login(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        cfg = b.config()
        if cfg.token.bound_cidrs and not cidrs_allow(cfg.token.bound_cidrs, req.remote_addr):
            raise PermissionDeniedError()
        username = _canonical(cfg, m.group("username"))
        password = str(data.get("password") or "")
        # The guard counts per account: directories match user names without regard
        # to case (uid is caseIgnoreMatch) even where case_sensitive_names keeps the
        # case for policies and aliases (review i15 F3: one budget per case variant).
        principal = username.lower()
        if cfg.deny_null_bind and not password:
            # Says nothing about the user; checked before the guard claims an attempt.
            raise BadRequestError(NULL_BIND)
        known = b.guard.before(req, principal)
        try:
            with dial(cfg) as conn:
                if _searching(cfg):
                    entries = _search_user(cfg, conn, username)
                    if entries is None:
                        raise BadRequestError(BIND_FAILED)  # the service account, not them
                    dn = entries[0][0] if len(entries) == 1 else ""
                else:
                    dn = _constructed_dn(cfg, username)
                # A missing (or ambiguous) user binds where no entry can be: the same
                # round trip, the same answer as a wrong password.
                target = dn or f"{_NOWHERE}{secrets.token_hex(8)},{cfg.userdn or cfg.binddn}"
                if not bind(conn, target, password) or not dn:
                    b.guard.failure(req, principal, BIND_FAILED)
                b.guard.success(req, principal)
                found = _Found(bind_dn=dn)
                _directory_groups(cfg, conn, dn, username, found)
        except LdapError as exc:
            b.guard.abandon(req, principal, known)  # the directory failed, not the caller
            raise BadRequestError(str(exc)) from None
        if not found.alias:
            raise BadRequestError("missing entity alias attribute value")
        auth = Auth(metadata={"username": username}, display_name=username,
                    alias=Alias(found.alias, {"name": username}),
                    internal={"password": password})
        cfg.token.apply(auth, req.remote_addr)
        auth.policies = [*auth.policies, *_policies(b, cfg, username, found.groups)]
        return Response(data={}, warnings=found.warnings, auth=auth)

    return [Path("login/(?P<username>.+)", {Operation.UPDATE: login},
                 fields={"username": Field(FieldType.STRING),
                         "password": Field(FieldType.STRING)},
                 help="Log in with a username and password.")]


def renew_login_for(b: LdapBackend) -> Callable[[Request, Auth], Auth]:
    def renew_login(req: Request, auth: Auth) -> Auth:
        """Vault's AuthRenew: the login again, with the password kept with the token.
        A user not found or a refused bind is Vault's ErrInvalidCredentials (400,
        "failed to renew entry: invalid credentials"); a directory that cannot be
        reached, the login's error response (400, its text); a policy change, Vault's
        500 "failed to renew entry: policies have changed, not renewing".
        The login guard is not asked: a renewal guesses nothing (the password is the
        token's own) and needs the token."""
        cfg = b.config()
        username = auth.metadata.get("username", "")
        password = auth.internal.get("password")
        try:
            with dial(cfg) as conn:
                if _searching(cfg):
                    entries = _search_user(cfg, conn, username)
                    if not entries or len(entries) != 1:
                        raise InvalidCredentialsError
                    dn = entries[0][0]
                else:
                    dn = _constructed_dn(cfg, username)
                if isinstance(password, str):
                    if not password and cfg.deny_null_bind:
                        raise BadRequestError(NULL_BIND)
                    if not bind(conn, dn, password):
                        raise InvalidCredentialsError
                elif not _searching(cfg) and not anonymous_bind(conn):
                    raise InvalidCredentialsError
                found = _Found(bind_dn=dn)
                _directory_groups(cfg, conn, dn, username, found)
        except LdapError as exc:
            raise BadRequestError(str(exc)) from None
        wanted = [*cfg.token.policies, *_policies(b, cfg, username, found.groups)]

        def norm(items: list[str]) -> set[str]:
            return set(sanitize_policies(list(items), add_default=False)) - {"default"}

        if norm(wanted) != norm(auth.policies):
            raise StrongroomError("policies have changed, not renewing")
        auth.ttl, auth.max_ttl, auth.period = cfg.token.ttl, cfg.token.max_ttl, cfg.token.period
        return auth
    return renew_login
