"""``sys/rekey/*`` and ``sys/rekey-recovery-key/*``: unauthenticated, as in Vault.

Like Vault's raw handlers they are answered without the response envelope and
without a token (the key shares are the authorization); the node coordinator
holds the state (node/rekey.py), so a round survives its requests landing on
different workers. The PGP backups (``sys/rekey/backup``...) need a token: they
are in core/system.py. Bodies are decoded as Go's encoding/json decodes Vault's
request structs: a wrong type is a 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strongroom.core.core import Core
from strongroom.errors import BadRequestError, UnsupportedOperationError
from strongroom.framework.gotypes import INT64_MAX, INT64_MIN
from strongroom.http.edge import HttpRequest, parse_body

RawHandler = Callable[[HttpRequest, Core], tuple[int, dict[str, Any] | None]]
MAX_PGP_KEY_BYTES = 512 * 1024


def _kind(value: object) -> str:
    """Go's name for a JSON value's type in an unmarshal error."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return f"number {json.dumps(value)}"


def _go_field(body: dict[str, Any], name: str, go_type: str, struct: str) -> Any:
    """``body[name]`` checked as Go's decoder would (null and absent: the zero value)."""
    value = body.get(name)
    zero: dict[str, Any] = {"int": 0, "bool": False, "string": "", "[]string": None}
    if value is None:
        return zero[go_type]
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool)
        and INT64_MIN <= value <= INT64_MAX,
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "[]string": isinstance(value, list) and all(isinstance(v, str | None) for v in value),
    }[go_type]
    if not ok:
        kind = _kind(value)
        if go_type == "[]string" and isinstance(value, list):
            kind = next(_kind(v) for v in value if not isinstance(v, str | None))
            go_type = "string"
        raise BadRequestError(f"failed to decode JSON input: json: cannot unmarshal {kind} "
                              f"into Go struct field {struct}.{name} of type {go_type}")
    if go_type == "[]string":
        return [v or "" for v in value]
    return value


def _update_fields(req: HttpRequest, struct: str) -> tuple[str, str]:
    body = parse_body(req.body)
    # Vault's RekeyUpdateRequest has no JSON tags: Go matches "key"/"Key" alike.
    lowered = {k.lower(): v for k, v in body.items()}
    key = _go_field(lowered, "key", "string", struct)
    nonce = _go_field(lowered, "nonce", "string", struct)
    return key, nonce


def rekey_init(target: str) -> RawHandler:
    def handle(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
        coordinator = core.coordinator
        if req.method in ("GET", "HEAD"):
            return 200, coordinator.rekey_status(target)
        if req.method in ("PUT", "POST"):
            body = parse_body(req.body)
            struct = "RekeyRequest"
            pgp_keys = _go_field(body, "pgp_keys", "[]string", struct)
            if sum(map(len, pgp_keys or [])) > MAX_PGP_KEY_BYTES:
                # As sys/init: kept well inside the coordinator's message limit (rpc.py).
                raise BadRequestError(
                    f"the PGP keys exceed {MAX_PGP_KEY_BYTES // 1024} KiB in total; export "
                    "them without third-party signatures (gpg --export-options "
                    "export-minimal)")
            status = coordinator.rekey_init(
                target,
                secret_shares=_go_field(body, "secret_shares", "int", struct),
                secret_threshold=_go_field(body, "secret_threshold", "int", struct),
                pgp_keys=pgp_keys,
                backup=_go_field(body, "backup", "bool", struct),
                require_verification=_go_field(body, "require_verification", "bool", struct),
            )
            return 200, status
        if req.method == "DELETE":
            coordinator.rekey_cancel(target)
            return 204, None
        raise UnsupportedOperationError("")

    return handle


def rekey_update(target: str) -> RawHandler:
    def handle(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
        # Vault reads a body whatever the method.
        key, nonce = _update_fields(req, "RekeyUpdateRequest")
        return 200, core.coordinator.rekey_update(key or None, nonce, target)

    return handle


def rekey_verify(target: str) -> RawHandler:
    def handle(req: HttpRequest, core: Core) -> tuple[int, dict[str, Any] | None]:
        coordinator = core.coordinator
        if req.method in ("GET", "HEAD"):
            return 200, coordinator.rekey_verify_status(target)
        if req.method in ("PUT", "POST"):
            key, nonce = _update_fields(req, "RekeyVerificationUpdateRequest")
            return 200, coordinator.rekey_verify(key or None, nonce, target)
        if req.method == "DELETE":
            return 200, coordinator.rekey_verify_restart(target)
        raise UnsupportedOperationError("")

    return handle


REKEY_ROUTES: dict[str, RawHandler] = {
    f"sys/{prefix}/{name}": make(target)
    for prefix, target in (("rekey", "barrier"), ("rekey-recovery-key", "recovery"))
    for name, make in (("init", rekey_init), ("update", rekey_update),
                       ("verify", rekey_verify))
}
