"""Renewing a token an auth method's login issued (Vault's ExpirationManager.RenewToken
with the method's AuthRenew): the method says, from its current state, which TTL,
max TTL and period apply now, or refuses; the auth mount's tuned TTLs bound it.

A method offers it as an optional ``renew_login(req, auth) -> Auth | None`` on its
backend: ``auth`` carries the token's policies, metadata, ``internal`` (kept with the
token at login), ttl, period and explicit max TTL; the method returns the Auth with
``ttl``/``max_ttl``/``period`` to apply, None to leave the token unrenewed (Vault: an
empty answer, e.g. the user was deleted), or raises (a 500 "failed to renew entry:
...", as Vault, e.g. userpass's "policies have changed, not renewing"). A method
without it renews the token as the token store does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.logical import Auth
from strongroom.core.results import mount_ttls
from strongroom.core.token_ttl import calculate_ttl
from strongroom.errors import BadRequestError, StrongroomError, multierror

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.core.request import Request
    from strongroom.core.tokens import TokenEntry

_TOKEN_PREFIX = "auth/token/"  # noqa: S105 - a path, not a secret


class NotRenewed(Exception):  # noqa: N818 - a signal, not an error
    """The method answered nothing: the token keeps its TTL, the request answers 204."""


def login_renewal(core: Core, req: Request, entry: TokenEntry,
                  increment: int) -> tuple[int, list[str]] | None:
    """The TTL (and warnings) for renewing ``entry`` if an auth method's login issued
    it and the method has ``renew_login``; None when the token store's own rules apply.
    Raises ``NotRenewed`` when the method declines without an error."""
    if not entry.path.startswith("auth/") or entry.path.startswith(_TOKEN_PREFIX):
        return None
    match = core.router.match(entry.path)
    if match is None:
        # The method was disabled: its tokens were revoked with it (Vault).
        raise BadRequestError("lease not found")
    mount, backend, _rel = match
    renew = getattr(backend, "renew_login", None)
    default, maximum = mount_ttls(core, mount)
    auth = Auth(policies=list(entry.policies), metadata=dict(entry.meta or {}),
                display_name=entry.display_name, ttl=entry.ttl, period=entry.period,
                explicit_max_ttl=entry.explicit_max_ttl, num_uses=entry.num_uses,
                token_type=entry.type, entity_id=entry.entity_id,
                bound_cidrs=list(entry.bound_cidrs), internal=dict(entry.internal),
                client_token="", accessor=entry.accessor, issued=True)
    if renew is not None:
        try:
            renewed = renew(req, auth)
        except StrongroomError as exc:
            if isinstance(exc, BadRequestError):
                raise
            wrapped = StrongroomError(multierror(f"failed to renew entry: {exc.message}"))
            wrapped.status = exc.status  # 500, or 400 for InvalidCredentialsError
            raise wrapped from None
        if renewed is None:
            raise NotRenewed
        auth = renewed
    if 0 < auth.max_ttl < maximum:
        maximum = auth.max_ttl
    now = int(core.now())
    return calculate_ttl(default_ttl=default, max_ttl=maximum, increment=increment,
                         backend_ttl=auth.ttl, period=auth.period,
                         explicit_max=auth.explicit_max_ttl,
                         start=int(entry.creation_time), now=now)
