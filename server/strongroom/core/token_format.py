"""How tokens are shown: the lookup data block and the ``auth`` block, as Vault shapes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strongroom.core.logical import Auth
from strongroom.core.tokens import ROOT_TOKEN_PATH, TokenEntry


def go_time(ts: float) -> str:
    """Go's RFC3339Nano in UTC: 'Z', fraction digits as available, trailing zeros trimmed."""
    micros = round(ts * 1_000_000)
    seconds, frac = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:06d}".rstrip("0")
    return text + "Z"


def token_lookup_data(entry: TokenEntry, token_id: str, now: float) -> dict[str, Any]:
    """The data block of auth/token/lookup* for ``entry`` (id "" for accessor lookups)."""
    expired = bool(entry.expire_at) and entry.expire_at <= now
    data: dict[str, Any] = {
        "accessor": entry.accessor,
        "creation_time": int(entry.creation_time),
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": go_time(entry.expire_at) if entry.expire_at else None,
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token_id,
        "issue_time": go_time(entry.creation_time),
        "meta": entry.meta,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": entry.policies,
        # Vault: renewable only while the lease can still be extended.
        "renewable": entry.renewable and bool(entry.expire_at) and not expired,
        "ttl": entry.remaining_ttl(now),
        "type": entry.type,
    }
    if entry.path == ROOT_TOKEN_PATH:
        # Made by init or generate-root: Vault registers no lease for it, and these
        # two come from the lease.
        del data["issue_time"], data["renewable"]
    if entry.last_renewal:
        data["last_renewal"] = go_time(entry.last_renewal)
        data["last_renewal_time"] = int(entry.last_renewal)
    if entry.role:
        data["role"] = entry.role
    if entry.period:
        data["period"] = entry.period
    if entry.bound_cidrs:
        data["bound_cidrs"] = list(entry.bound_cidrs)
    return data


def auth_of(entry: TokenEntry, token_id: str, lease_duration: int,
            num_uses: int | None = None) -> Auth:
    """The typed ``auth`` result of an existing token (a renewal): already issued.

    A renewal reports the use count the token was created with (Vault keeps it in
    the token's lease).
    """
    return Auth(
        policies=entry.policies, metadata=entry.meta or {}, ttl=lease_duration,
        explicit_max_ttl=entry.explicit_max_ttl, period=entry.period,
        num_uses=entry.num_uses if num_uses is None else num_uses,
        renewable=entry.renewable, token_type=entry.type, entity_id=entry.entity_id,
        orphan=entry.orphan, role=entry.role, client_token=token_id,
        accessor=entry.accessor, issued=True)


def render_auth(auth: Auth) -> dict[str, Any]:
    """The ``auth`` object of a response, as Vault shapes it.

    Vault omits token_policies and identity_policies when empty, and shows no
    metadata as null.
    """
    rendered: dict[str, Any] = {
        "client_token": auth.client_token,
        "accessor": auth.accessor,
        "policies": auth.policies,
    }
    if auth.policies:
        rendered["token_policies"] = auth.policies
    rendered.update({
        "metadata": auth.metadata or None,
        "lease_duration": auth.ttl,
        "renewable": auth.renewable,
        "entity_id": auth.entity_id,
        "token_type": auth.token_type,
        "orphan": auth.orphan,
        "mfa_requirement": None,
        "num_uses": auth.num_uses,
    })
    return rendered


def parse_auth(rendered: dict[str, Any]) -> Auth:
    """:func:`render_auth`'s inverse, for a stored (wrapped) response: issued already."""
    return Auth(
        policies=list(rendered.get("policies") or []),
        metadata=dict(rendered.get("metadata") or {}),
        ttl=int(rendered.get("lease_duration") or 0),
        renewable=bool(rendered.get("renewable")),
        entity_id=str(rendered.get("entity_id") or ""),
        token_type=str(rendered.get("token_type") or "service"),
        orphan=bool(rendered.get("orphan")),
        num_uses=int(rendered.get("num_uses") or 0),
        client_token=str(rendered.get("client_token") or ""),
        accessor=str(rendered.get("accessor") or ""),
        issued=True)
