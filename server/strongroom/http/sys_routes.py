"""The unauthenticated sys endpoints, answered without Vault's response envelope.

They work sealed and uninitialized, so they talk to the node coordinator
directly instead of going through Core.handle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from strongroom import __version__
from strongroom.config import ListenerConfig
from strongroom.core.core import Core
from strongroom.errors import BadRequestError, UnsupportedOperationError
from strongroom.framework.fields import FieldType, coerce
from strongroom.framework.gotypes import INT64_MAX, INT64_MIN
from strongroom.http.edge import HttpRequest, parse_body
from strongroom.http.sys_rekey import REKEY_ROUTES

RawHandler = Callable[[HttpRequest, Core], tuple[int, dict[str, Any] | None]]

# Far above any real key set (a key is a few KiB), and it keeps an init request
# well inside the coordinator's 1 MiB message limit (node/rpc.py).
_MAX_PGP_KEY_BYTES = 512 * 1024

_HEALTH_CODES = {
    "activecode": 200,
    "standbycode": 429,
    "drsecondarycode": 472,
    "performancestandbycode": 473,
    "sealedcode": 503,
    "uninitcode": 501,
}


def _flag(req: HttpRequest, name: str) -> bool:
    """Vault's query booleans: present and empty, or a true value."""
    value = req.param(name)
    return value is not None and value.lower() in ("", "true", "1", "t")


def _health(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    if req.method not in ("GET", "HEAD"):
        raise UnsupportedOperationError("")
    codes = dict(_HEALTH_CODES)
    for name in codes:
        value = req.param(name)
        if value is not None:
            try:
                codes[name] = int(value)
            except ValueError:
                raise BadRequestError(f"unable to parse {name}: {value!r}") from None
            if not 100 <= codes[name] <= 599:
                raise BadRequestError(f"{name} must be an HTTP status code")
    standby_ok = _flag(req, "standbyok")
    perf_standby_ok = _flag(req, "perfstandbyok")
    snap = core.sync()
    standby = snap.ha.standby
    body: dict[str, Any] = {
        "initialized": snap.initialized,
        "sealed": snap.sealed,
        "standby": snap.sealed or standby,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(time.time()),
        "version": __version__,
        "enterprise": False,
    }
    if not snap.sealed:
        body["cluster_name"] = snap.cluster_name
        body["cluster_id"] = snap.cluster_id
    if not snap.initialized:
        return codes["uninitcode"], body
    if snap.sealed:
        return codes["sealedcode"], body
    if standby and not standby_ok:
        return codes["standbycode"], body
    del perf_standby_ok  # performance standbys arrive with replication
    return codes["activecode"], body


def _init_int(body: dict[str, Any], name: str) -> int:
    """A Go int field of Vault's InitRequest, decoded as encoding/json does.

    Strict, not weak: a string, a bool or a fraction is refused (Vault: 400), and
    null is the field left out (hvac sends ``secret_shares: null`` under
    auto-unseal), which the seal's own checks then judge.
    """
    value = body.get(name)
    if value is None:
        return 0
    kind = ("bool" if isinstance(value, bool) else "string" if isinstance(value, str)
            else "array" if isinstance(value, list) else "object" if isinstance(value, dict)
            else "")
    if not kind and (isinstance(value, float) or not INT64_MIN <= value <= INT64_MAX):
        kind = f"number {json.dumps(value)}"
    if kind:
        raise BadRequestError(f"failed to decode JSON input: json: cannot unmarshal {kind} "
                              f"into Go struct field InitRequest.{name} of type int")
    return int(value)


def _key_list(body: dict[str, Any], name: str) -> list[str] | None:
    """``pgp_keys``/``recovery_pgp_keys``: a list of strings, or null (left out)."""
    keys = body.get(name)
    if keys is not None and not (
        isinstance(keys, list) and all(isinstance(k, str) for k in keys)
    ):
        raise BadRequestError(f"'{name}' must be a list of base64-encoded public keys")
    return keys


def _init(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    if req.method in ("GET", "HEAD"):
        return 200, {"initialized": core.sync().initialized}
    if req.method not in ("PUT", "POST"):
        raise UnsupportedOperationError("")
    body = parse_body(req.body)
    shares = _init_int(body, "secret_shares")
    threshold = _init_int(body, "secret_threshold")
    recovery_shares = _init_int(body, "recovery_shares")
    recovery_threshold = _init_int(body, "recovery_threshold")
    pgp_keys = _key_list(body, "pgp_keys")
    recovery_keys = _key_list(body, "recovery_pgp_keys")
    root_key = body.get("root_token_pgp_key")
    if root_key is not None and not isinstance(root_key, str):
        raise BadRequestError("'root_token_pgp_key' must be a base64-encoded public key")
    if (sum(map(len, pgp_keys or [])) + sum(map(len, recovery_keys or []))
            + len(root_key or "") > _MAX_PGP_KEY_BYTES):
        raise BadRequestError(
            f"the PGP keys exceed {_MAX_PGP_KEY_BYTES // 1024} KiB in total; export them "
            "without third-party signatures (gpg --export-options export-minimal)"
        )
    # The coordinator applies the seal's rules (recovery keys with an auto-seal, see
    # node/recovery.py), checks the keys and encrypts (seal/pgp.py), so with PGP the
    # plaintext shares never leave it.
    result = core.coordinator.initialize(
        shares, threshold, pgp_keys=pgp_keys or None, root_token_pgp_key=root_key or None,
        recovery_shares=recovery_shares, recovery_threshold=recovery_threshold,
        recovery_pgp_keys=recovery_keys or None,
    )
    core.sync()
    return 200, result


def _seal_status(
    req: HttpRequest, core: Core
) -> tuple[int, dict[str, Any] | None]:
    if req.method not in ("GET", "HEAD"):
        raise UnsupportedOperationError("")
    return 200, core.coordinator.seal_status()


def _seal_backend_status(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    """Vault 1.16: each seal backend's (HSM partition's) health; unauthenticated."""
    if req.method not in ("GET", "HEAD"):
        raise UnsupportedOperationError("")
    return 200, core.coordinator.seal_backend_status()


def _unseal(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    if req.method not in ("PUT", "POST"):
        raise UnsupportedOperationError("")
    body = parse_body(req.body)
    # null is the field left out (Go decodes it to false).
    reset = coerce("reset", FieldType.BOOL, body.get("reset") or False)
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise BadRequestError("'key' must be a string")
    migrate = coerce("migrate", FieldType.BOOL, body.get("migrate") or False)
    status = core.coordinator.unseal(key or None, reset, migrate)
    core.sync()
    return 200, status


def _go_string(body: dict[str, Any], name: str, struct: str) -> str:
    """A Go string field (null is the field left out); anything else is Vault's 400."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = ("bool" if isinstance(value, bool) else "number" if isinstance(value, int | float)
                else "array" if isinstance(value, list) else "object")
        raise BadRequestError(f"failed to decode JSON input: json: cannot unmarshal {kind} "
                              f"into Go struct field {struct}.{name} of type string")
    return value


def _generate_root_attempt(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    """Vault's sys/generate-root/attempt: GET status, PUT/POST start, DELETE cancel.

    Unauthenticated, as in Vault (the key shares are the authorization); a standby
    forwards it to the active node (http/dispatch.py).
    """
    coordinator = core.coordinator
    if req.method in ("GET", "HEAD"):
        return 200, coordinator.generate_root_status()
    if req.method == "DELETE":
        coordinator.generate_root_cancel()
        return 204, None
    if req.method not in ("PUT", "POST"):
        raise UnsupportedOperationError("")
    body = parse_body(req.body)
    otp = _go_string(body, "otp", "GenerateRootInitRequest")
    pgp_key = _go_string(body, "pgp_key", "GenerateRootInitRequest")
    if len(pgp_key) > _MAX_PGP_KEY_BYTES:
        raise BadRequestError(f"the PGP key exceeds {_MAX_PGP_KEY_BYTES // 1024} KiB")
    return 200, coordinator.generate_root_start(otp or None, pgp_key or None)


def _generate_root_update(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    """Vault's sys/generate-root/update: one key share with the attempt's nonce."""
    body = parse_body(req.body)
    key = _go_string(body, "key", "GenerateRootUpdateRequest")
    # Go decodes field names case-insensitively: the CLI sends "Nonce"/"Key" too.
    nonce = _go_string(body, "nonce", "GenerateRootUpdateRequest") or _go_string(
        body, "Nonce", "GenerateRootUpdateRequest")
    key = key or _go_string(body, "Key", "GenerateRootUpdateRequest")
    if not key:
        raise BadRequestError("'key' must be specified in request body as JSON")
    return 200, core.coordinator.generate_root_update(key, nonce)


def _leader(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
    if req.method not in ("GET", "HEAD"):
        raise UnsupportedOperationError("")
    ha = core.sync().ha
    return 200, {
        "ha_enabled": ha.enabled,
        "is_self": ha.active,
        "active_time": ha.active_since if ha.active else "0001-01-01T00:00:00Z",
        "leader_address": ha.leader_api_addr,
        "leader_cluster_address": ha.leader_cluster_addr,
        "performance_standby": False,
        "performance_standby_last_remote_wal": 0,
    }


RAW_ROUTES: dict[str, RawHandler] = {
    "sys/health": _health,
    "sys/init": _init,
    "sys/seal-status": _seal_status,
    "sys/seal-backend-status": _seal_backend_status,
    "sys/unseal": _unseal,
    "sys/leader": _leader,
    "sys/generate-root/attempt": _generate_root_attempt,
    "sys/generate-root/update": _generate_root_update,
    **REKEY_ROUTES,  # http/sys_rekey.py
}
GENERATE_ROOT_ROUTES = frozenset({"sys/generate-root/attempt", "sys/generate-root/update"})


def switched_off(listener: ListenerConfig | None) -> frozenset[str]:
    """The unauthenticated key routes a listener turns off (OpenBao's
    ``disable_unauthed_rekey_endpoints``/``disable_unauthed_generate_root_endpoints``)."""
    if listener is None:
        return frozenset()
    off: set[str] = set()
    if listener.disable_unauthed_rekey_endpoints:
        off.update(REKEY_ROUTES)
    if listener.disable_unauthed_generate_root_endpoints:
        off.update(GENERATE_ROOT_ROUTES)
    return frozenset(off)


# Raw routes an active node answers: a standby forwards them (Vault's
# handleForwardIfStandby; only the active changes the keys); the others describe the
# node that is asked.
ACTIVE_ONLY_RAW = frozenset({*GENERATE_ROOT_ROUTES, *REKEY_ROUTES})
