"""Vault's TTL arithmetic for tokens (framework.CalculateTTL) and its duration strings."""

from __future__ import annotations

from strongroom.errors import BadRequestError


def go_duration(seconds: int) -> str:
    """Go's Duration.String() for whole seconds, trimmed as Vault's humanDuration does."""
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{secs}s"
    elif minutes:
        text = f"{minutes}m{secs}s"
    else:
        text = f"{secs}s"
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return sign + text


def calculate_ttl(
    *,
    default_ttl: int,
    max_ttl: int,
    increment: int,
    backend_ttl: int,
    period: int,
    explicit_max: int,
    start: int,
    now: int,
) -> tuple[int, list[str]]:
    """The TTL to grant and the warnings Vault gives with it.

    ``start`` is when the token was issued and ``now`` the current time, both in whole
    seconds; ``increment`` is what a renewal asks for (0 on creation).
    """
    if 0 < explicit_max < max_ttl:
        max_ttl = explicit_max
    warnings: list[str] = []
    max_valid: int | None = None
    if period > 0:
        if period > max_ttl:
            warnings.append(
                f'period of "{go_duration(period)}" exceeded the effective max_ttl of '
                f'"{go_duration(max_ttl)}"; period value is capped accordingly')
            period = max_ttl
        ttl = period
        if explicit_max > 0:
            max_valid = start + explicit_max
    else:
        ttl = increment or backend_ttl or default_ttl
        max_valid = start + max_ttl
    if max_valid is not None:
        left = max_valid - now
        if left <= 0:
            raise BadRequestError("past the max TTL, cannot renew")
        if left < ttl:
            warnings.append(
                f'TTL of "{go_duration(ttl)}" exceeded the effective max_ttl of '
                f'"{go_duration(left)}"; TTL value is capped accordingly')
            ttl = left
    return ttl, warnings
