"""SecretIDs of a role: ``role/<name>/secret-id`` (generate; LIST: the accessors),
``custom-secret-id``, ``secret-id/lookup``, ``secret-id/destroy``,
``secret-id-accessor/lookup`` and ``secret-id-accessor/destroy``.

A SecretID is returned once, by the request that made it (wrap that response, with
``X-Vault-Wrap-TTL``, to hand it to a machine through a third party); storage keeps
only its HMAC under the role's key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError, PermissionDeniedError
from strongroom.framework import Field, FieldData, FieldType, Path

from .cidrs import first_invalid, is_subset
from .path_role import ROLE_NAME, mount_max_ttl, not_found
from .store import Role, SecretEntry, go_quote, go_quote_list, internal_error

if TYPE_CHECKING:
    from . import AppRoleBackend

_NAME = {"role_name": Field(FieldType.STRING)}
_ISSUE_FIELDS = {
    **_NAME,
    "metadata": Field(FieldType.STRING, default=""),
    "cidr_list": Field(FieldType.LIST, default=[]),
    "token_bound_cidrs": Field(FieldType.LIST, default=[]),
    "num_uses": Field(FieldType.INT),
    "ttl": Field(FieldType.DURATION),
}
_LIST_FIELDS = {"after": Field(FieldType.STRING), "limit": Field(FieldType.INT)}
_BY_SECRET = {**_NAME, "secret_id": Field(FieldType.STRING, default="")}
_BY_ACCESSOR = {**_NAME, "secret_id_accessor": Field(FieldType.STRING, default="")}
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: a SecretID that never expires


def rfc3339nano(epoch: float) -> str:
    """Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped)."""
    if not epoch:
        return _ZERO_TIME
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.rstrip("0").rstrip(".") + "Z"


def entry_data(entry: SecretEntry) -> dict[str, Any]:
    return {
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.num_uses,
        "secret_id_ttl": entry.ttl,
        "creation_time": rfc3339nano(entry.creation_time),
        "expiration_time": rfc3339nano(entry.expiration_time),
        "last_updated_time": rfc3339nano(entry.last_updated_time),
        "metadata": dict(entry.metadata),
        "cidr_list": list(entry.cidr_list),
        "token_bound_cidrs": list(entry.token_bound_cidrs),
    }


def parse_metadata(text: str) -> dict[str, str]:
    """Vault's strutil.ParseArbitraryKeyValues: JSON (optionally base64) of string
    values, else ``k=v,k2=v2``; an empty value is refused."""
    text = text.strip()
    out: dict[str, str] = {}
    if not text:
        return out
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        text = decoded
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and all(isinstance(v, str) for v in doc.values()):
        out = {str(k): v for k, v in doc.items()}
    else:
        for pair in sorted({p.strip().lower() for p in text.split(",") if p.strip()}):
            shards = pair.split("=")
            if len(shards) != 2:
                raise BadRequestError("failed to parse metadata: failed to parse the input: "
                                      "invalid <key,value> format")
            key, value = shards[0].strip(), shards[1].strip()
            if not key or not value:
                raise BadRequestError(
                    "failed to parse metadata: failed to parse the input: invalid <key,value> "
                    f"pair <{go_quote(key)},{go_quote(value)}>")
            out[key] = value
    for key, value in out.items():
        if key and not value:
            raise BadRequestError(f"failed to parse metadata: invalid value for key "
                                  f"{go_quote(key)}")
    return out


def paths(b: AppRoleBackend) -> list[Path]:
    def role_or_500(name: str) -> Role:
        role = b.store.role(name)
        if role is None:
            raise internal_error(f"role {go_quote(name)} does not exist")
        return role

    def issue(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return _issue(b, data, m.group("role_name"), str(uuid.uuid4()))

    def issue_custom(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return _issue(b, data, m.group("role_name"), str(data.get("secret_id") or ""))

    def list_accessors(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = m.group("role_name")
        role = b.store.role(name)
        if role is None:
            raise BadRequestError(f"role {go_quote(name)} does not exist")
        keys = []
        limit = max(int(data.get("limit") or 0), 0)
        for secret_hmac in b.store.secret_hmacs(role, str(data.get("after") or ""), limit):
            entry = b.store.secret(role, secret_hmac)
            if entry is not None:
                keys.append(entry.accessor)
        return Response(data={"keys": keys}) if keys else not_found()

    def target(data: FieldData, m: re.Match[str]) -> tuple[Role, str]:
        """The role and the HMAC of the body's SecretID (lookup and destroy)."""
        secret_id = str(data.get("secret_id") or "")
        if not secret_id:
            raise BadRequestError("missing secret_id")
        role = role_or_500(m.group("role_name"))
        return role, _hmac_or_500(b, role, secret_id)

    def lookup(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        role, secret_hmac = target(data, m)
        with b.store.secret_lock(secret_hmac):
            entry = b.store.secret(role, secret_hmac)
            if entry is None:
                return None
            if b.store.accessor_target(role, entry.accessor) is None:
                # A SecretID whose accessor is gone is revoked on sight (Vault).
                b.store.delete_secret(role, secret_hmac, "")
                raise BadRequestError("invalid secret id")
        return Response(data=entry_data(entry))

    def destroy(req: Request, data: FieldData, m: re.Match[str]) -> None:
        role, secret_hmac = target(data, m)
        with b.store.secret_lock(secret_hmac):
            entry = b.store.secret(role, secret_hmac)
            if entry is not None:
                b.store.delete_secret(role, secret_hmac, entry.accessor)

    def lookup_accessor(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        accessor = str(data.get("secret_id_accessor") or "")
        if not accessor:
            raise BadRequestError("missing secret_id_accessor")
        role = role_or_500(m.group("role_name"))
        secret_hmac = b.store.accessor_target(role, accessor)
        if secret_hmac is None:
            # Vault answers 404 with the reason in data.error.
            return Response(status=404, data={
                "error": f"failed to find accessor entry for secret_id_accessor: "
                         f"{go_quote(accessor)}"})
        entry = b.store.secret(role, secret_hmac)
        return Response(data=entry_data(entry)) if entry is not None else None

    def destroy_accessor(req: Request, data: FieldData, m: re.Match[str]) -> None:
        accessor = str(data.get("secret_id_accessor") or "")
        if not accessor:
            raise BadRequestError("missing secret_id_accessor")
        role = role_or_500(m.group("role_name"))
        secret_hmac = b.store.accessor_target(role, accessor)
        if secret_hmac is None:
            raise internal_error("failed to find accessor entry for secret_id_accessor: "
                                 f"{go_quote(accessor)}")
        with b.store.secret_lock(secret_hmac):
            if b.store.secret(role, secret_hmac) is None:
                raise PermissionDeniedError("invalid secret id accessor")
            b.store.delete_secret(role, secret_hmac, accessor)

    base = f"role/{ROLE_NAME}"
    return [
        Path(f"{base}/secret-id/?", {Operation.UPDATE: issue, Operation.LIST: list_accessors},
             {**_ISSUE_FIELDS, **_LIST_FIELDS}),
        Path(f"{base}/custom-secret-id",
             {Operation.UPDATE: issue_custom},
             {**_ISSUE_FIELDS, "secret_id": Field(FieldType.STRING, default="")}),
        Path(f"{base}/secret-id/lookup/?", {Operation.UPDATE: lookup}, _BY_SECRET),
        Path(f"{base}/secret-id/destroy/?",
             {Operation.UPDATE: destroy, Operation.DELETE: destroy}, _BY_SECRET),
        Path(f"{base}/secret-id-accessor/lookup/?", {Operation.UPDATE: lookup_accessor},
             _BY_ACCESSOR),
        Path(f"{base}/secret-id-accessor/destroy/?",
             {Operation.UPDATE: destroy_accessor, Operation.DELETE: destroy_accessor},
             _BY_ACCESSOR),
    ]


def _hmac_or_500(b: AppRoleBackend, role: Role, secret_id: str) -> str:
    try:
        return b.store.secret_hmac(role, secret_id)
    except ValueError as exc:
        raise internal_error(f"failed to create HMAC of secret_id: {exc}") from None


def _issue(b: AppRoleBackend, data: FieldData, name: str, secret_id: str) -> Response:
    """Vault's handleRoleSecretIDCommon, its checks in its order."""
    if not secret_id:
        raise BadRequestError("missing secret_id")
    with b.store.role_lock(name):
        role = b.store.role(name)
        if role is None:
            raise NotFoundError(f"role {go_quote(name)} does not exist")
        if not role.bind_secret_id:
            raise BadRequestError("bind_secret_id is not set on the role")
        cidrs = list(data.get("cidr_list") or [])
        bad = first_invalid(cidrs)
        if bad is not None:
            raise internal_error(f"failed to validate CIDR blocks: invalid CIDR address: {bad}")
        _check_subset(role.secret_id_bound_cidrs or [], cidrs)
        token_cidrs = list(data.get("token_bound_cidrs") or [])
        bad = first_invalid(token_cidrs)
        if bad is not None:
            raise internal_error(
                f"failed to validate token CIDR blocks: invalid CIDR address: {bad}")
        _check_subset(role.token.bound_cidrs, token_cidrs)
        num_uses = role.secret_id_num_uses
        if data.has("num_uses"):
            num_uses = int(data.get("num_uses"))
            if num_uses < 0:
                raise BadRequestError("num_uses cannot be negative")
            limit = role.secret_id_num_uses
            if limit > 0 and (num_uses == 0 or num_uses > limit):
                raise BadRequestError(
                    "num_uses cannot be higher than the role's secret_id_num_uses")
        ttl = role.secret_id_ttl
        if data.has("ttl"):
            ttl = int(data.get("ttl"))
            limit = role.secret_id_ttl
            if limit > 0 and (ttl == 0 or ttl > limit):
                raise BadRequestError("ttl cannot be longer than the role's secret_id_ttl")
        metadata = parse_metadata(str(data.get("metadata") or ""))
        now = b.ctx.clock().timestamp()
        # Vault's deriveSecretIDTTL: never longer than the mount's max lease TTL.
        maximum = mount_max_ttl(b)
        effective = maximum if ttl < 0 or ttl > maximum else ttl
        entry = SecretEntry(num_uses=num_uses, ttl=ttl, creation_time=now,
                            last_updated_time=now,
                            expiration_time=now + effective if effective else 0.0,
                            metadata=metadata, cidr_list=cidrs, token_bound_cidrs=token_cidrs)
        secret_hmac = _hmac_or_store_error(b, role, secret_id)
        if not b.store.register_secret(role, secret_hmac, entry):
            raise internal_error("failed to store secret_id: SecretID is already registered")
    return Response(data={"secret_id": secret_id, "secret_id_accessor": entry.accessor,
                          "secret_id_ttl": effective, "secret_id_num_uses": num_uses})


def _hmac_or_store_error(b: AppRoleBackend, role: Role, secret_id: str) -> str:
    try:
        return b.store.secret_hmac(role, secret_id)
    except ValueError as exc:
        raise internal_error(
            f"failed to store secret_id: failed to create HMAC of secret ID: {exc}") from None


def _check_subset(role_cidrs: list[str], secret_cidrs: list[str]) -> None:
    if not is_subset(role_cidrs, secret_cidrs):
        raise internal_error(
            "failed to verify subset relationship between CIDR blocks on the role "
            f"{go_quote_list(role_cidrs)} and CIDR blocks on the secret ID "
            f"{go_quote_list(secret_cidrs)}")
