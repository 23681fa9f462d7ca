"""How tokens are shown: the lookup data block and the ``auth`` block, as Vault shapes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strongroom.core.tokens import TokenEntry


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
    if entry.last_renewal:
        data["last_renewal"] = go_time(entry.last_renewal)
        data["last_renewal_time"] = int(entry.last_renewal)
    if entry.role:
        data["role"] = entry.role
    if entry.period:
        data["period"] = entry.period
    return data


def auth_block(entry: TokenEntry, token_id: str, lease_duration: int,
               num_uses: int | None = None) -> dict[str, Any]:
    """The ``auth`` object of a token create/renew response.

    Vault omits token_policies and identity_policies when empty. A renewal reports
    the use count the token was created with (Vault keeps it in the token's lease).
    """
    auth: dict[str, Any] = {
        "client_token": token_id,
        "accessor": entry.accessor,
        "policies": entry.policies,
    }
    if entry.policies:
        auth["token_policies"] = entry.policies
    auth.update({
        "metadata": entry.meta,
        "lease_duration": lease_duration,
        "renewable": entry.renewable,
        "entity_id": entry.entity_id,
        "token_type": entry.type,
        "orphan": entry.orphan,
        "mfa_requirement": None,
        "num_uses": entry.num_uses if num_uses is None else num_uses,
    })
    return auth
