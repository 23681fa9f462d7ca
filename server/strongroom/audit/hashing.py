"""HMAC of the strings an audit entry carries, as Vault does it.

Every audit device has its own salt (a random UUID kept in the device's barrier
view, ``audit/<uuid>/salt``): a value is logged as ``hmac-sha256:<hex>`` where the
HMAC key is that salt, so the log shows whether two requests carried the same value
without showing the value. ``sys/audit-hash/<path>`` gives the same HMAC for a value
an operator already knows. Strings that parse as RFC 3339 times are left alone, as
are numbers, booleans and map keys (Vault's hashstructure walker); keys named in a
mount's ``audit_non_hmac_*_keys`` tune stay in clear.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Collection
from typing import Any

HMAC_TYPE = "hmac-sha256"
# Go's time.Time.UnmarshalText: RFC 3339, optional fraction, Z or a numeric offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def identified_hmac(salt: bytes, value: str) -> str:
    """``hmac-sha256:<hex>`` of ``value`` keyed by the device's salt."""
    return HMAC_TYPE + ":" + hmac.digest(salt, value.encode("utf-8", "surrogatepass"),
                                         "sha256").hex()


def is_time(value: str) -> bool:
    return bool(_RFC3339.match(value))


Hasher = Callable[[str], str]


def hash_structure(value: Any, fn: Hasher, ignored: Collection[str] = (),
                   key: str = "") -> Any:
    """A copy of ``value`` (decoded JSON) with every string HMAC'd by ``fn``.

    ``key`` is the map key the value sits under (a list inherits its key): a key in
    ``ignored`` leaves the value in clear, as Vault's non-HMAC key lists do.
    """
    if isinstance(value, str):
        if key in ignored or is_time(value):
            return value
        return fn(value)
    if isinstance(value, dict):
        return {str(k): hash_structure(v, fn, ignored, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hash_structure(v, fn, ignored, key) for v in value]
    return value


def elide_list_data(data: dict[str, Any]) -> dict[str, Any]:
    """``elide_list_responses``: a LIST answer's ``keys`` and ``key_info`` become their
    sizes (the names are often many and rarely of interest)."""
    out = dict(data)
    keys = out.get("keys")
    if isinstance(keys, list):
        out["keys"] = len(keys)
    info = out.get("key_info")
    if isinstance(info, dict):
        out["key_info"] = len(info)
    return out
