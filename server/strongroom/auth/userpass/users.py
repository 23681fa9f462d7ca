"""userpass users: ``users/`` (LIST), ``users/<u>`` (create, read, update, delete),
``users/<u>/password`` and ``users/<u>/policies`` (Vault's path_users.go,
path_user_password.go, path_user_policies.go; texts and statuses checked against
OpenBao 2.7)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from strongroom.auth.tokenutil import (
    DEPRECATED_FIELDS,
    TOKEN_FIELDS,
    TokenParams,
    parse_cidrs,
    parse_policies,
    upgrade,
)
from strongroom.barrier.view import StorageView
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError, StrongroomError, multierror
from strongroom.framework import Field, FieldData, FieldType, Path

# framework.GenericNameRegex("username"), with Go's ASCII \w.
WORD = "[0-9A-Za-z_]"
USERNAME = rf"(?P<username>{WORD}(?:[0-9A-Za-z_.-]*{WORD})?)"
# Vault hashes with bcrypt.DefaultCost and accepts given hashes of cost 5 to 12.
HASH_COST = 10
MIN_COST, MAX_COST = 5, 12
BCRYPT_MAX = 72  # bytes of password bcrypt reads
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
# Vault's deprecated user fields and their token_* successors.
DEPRECATED = {"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl",
              "bound_cidrs": "token_bound_cidrs"}


@dataclass
class UserEntry:
    token: TokenParams = field(default_factory=TokenParams)
    password_hash: str = ""
    # Vault keeps the deprecated fields beside their successors (shown on a read).
    policies: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    bound_cidrs: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps({"token": self.token.to_json(), "password_hash": self.password_hash,
                           "policies": self.policies, "ttl": self.ttl,
                           "max_ttl": self.max_ttl, "bound_cidrs": self.bound_cidrs}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> UserEntry:
        doc = json.loads(raw)
        entry = cls(token=TokenParams.from_json(doc.get("token")),
                    password_hash=str(doc.get("password_hash") or ""),
                    policies=list(doc.get("policies") or []), ttl=int(doc.get("ttl", 0)),
                    max_ttl=int(doc.get("max_ttl", 0)),
                    bound_cidrs=list(doc.get("bound_cidrs") or []))
        # Vault's user(): entries from before the token_* fields fill them in.
        token = entry.token
        token.ttl = token.ttl or entry.ttl
        token.max_ttl = token.max_ttl or entry.max_ttl
        token.policies = token.policies or list(entry.policies)
        token.bound_cidrs = token.bound_cidrs or list(entry.bound_cidrs)
        return entry


class UserStore:
    def __init__(self, storage: StorageView) -> None:
        self._storage = storage

    def get(self, username: str) -> UserEntry | None:
        if not username:
            raise StrongroomError(multierror("missing username"))
        raw = self._storage.get("user/" + username.lower())
        return None if raw is None else UserEntry.from_json(raw)

    def put(self, username: str, entry: UserEntry) -> None:
        self._storage.put("user/" + username.lower(), entry.to_json())

    def delete(self, username: str) -> None:
        self._storage.delete("user/" + username.lower())

    def names(self, after: str, limit: int) -> list[str]:
        return self._storage.list_page("user/", after, limit)


def hash_password(password: str) -> str:
    secret = password.encode()
    if len(secret) > BCRYPT_MAX:
        # Go's bcrypt refuses these too (ErrPasswordTooLong, a 500 in Vault): bcrypt
        # reads 72 bytes only.
        raise StrongroomError(multierror("bcrypt: password length exceeds 72 bytes"))
    return bcrypt.hashpw(secret, bcrypt.gensalt(HASH_COST)).decode()


def _set_password(entry: UserEntry, password: str, password_hash: str) -> None:
    """Vault's updateUserPassword."""
    _validate_password_input(password, password_hash)
    if password:
        entry.password_hash = hash_password(password)
        return
    match = _BCRYPT_HASH.match(password_hash)
    if match is None:
        raise BadRequestError("password_hash is not a valid bcrypt hash")
    cost = int(match.group(1))
    if cost < MIN_COST:
        raise BadRequestError(f"bcrypt cost of {cost} is too low, want {MIN_COST} at minimum")
    if cost > MAX_COST:
        raise BadRequestError(f"bcrypt cost of {cost} exceeds maximum cost of {MAX_COST}")
    entry.password_hash = password_hash


def _validate_password_input(password: str, password_hash: str) -> None:
    if password and password_hash:
        raise BadRequestError("only one of password or password_hash may be provided")
    if not password and not password_hash:
        raise BadRequestError("must provide either password or password_hash")


def user_paths(users: UserStore) -> list[Path]:
    secret_fields = {"password": Field(), "password_hash": Field()}
    user_fields = {"username": Field(), **secret_fields, **TOKEN_FIELDS,
                   **{k: DEPRECATED_FIELDS[k] for k in DEPRECATED}}

    def exists(req: Request, data: FieldData, m: re.Match[str]) -> bool:
        return users.get(m.group("username")) is not None

    def list_users(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        limit = int(data.get("limit"))
        keys = users.names(str(data.get("after")), limit if limit > 0 else 0)
        if not keys:
            raise NotFoundError("")
        return Response(data={"keys": keys})

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        user = users.get(m.group("username"))
        if user is None:
            raise NotFoundError("")
        out: dict[str, Any] = user.token.to_data()
        if user.ttl > 0:
            out["ttl"] = user.ttl
        if user.max_ttl > 0:
            out["max_ttl"] = user.max_ttl
        if user.policies:
            out["policies"] = out["token_policies"]
        if user.bound_cidrs:
            out["bound_cidrs"] = list(user.bound_cidrs)
        return Response(data=out)

    def write(req: Request, data: FieldData, m: re.Match[str]) -> None:
        password = str(data.get("password") or "")
        password_hash = str(data.get("password_hash") or "")
        if req.operation is Operation.CREATE:
            _validate_password_input(password, password_hash)
        name = m.group("username")
        user = users.get(name) or UserEntry()
        user.token.update_from(data, create=req.operation is Operation.CREATE,
                               deprecated=DEPRECATED)
        if password or password_hash:
            _set_password(user, password, password_hash)
        token = user.token
        user.policies = upgrade(data, "policies", "token_policies", user.policies,
                                token.policies) or []
        user.ttl = upgrade(data, "ttl", "token_ttl", user.ttl, token.ttl) or 0
        user.max_ttl = upgrade(data, "max_ttl", "token_max_ttl", user.max_ttl,
                               token.max_ttl) or 0
        user.bound_cidrs = upgrade(data, "bound_cidrs", "token_bound_cidrs",
                                   user.bound_cidrs, token.bound_cidrs) or []
        users.put(name, user)

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        users.delete(m.group("username"))

    def update_password(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("username")
        user = users.get(name)
        if user is None:
            raise StrongroomError(multierror("username does not exist"))  # a 500, as Vault
        _set_password(user, str(data.get("password") or ""), str(data.get("password_hash") or ""))
        users.put(name, user)

    def update_policies(req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = m.group("username")
        user = users.get(name)
        if user is None:
            raise StrongroomError(multierror("username does not exist"))
        if data.has("token_policies"):
            user.token.policies = parse_policies(data.get("token_policies"), "token_policies")
            user.policies = list(user.token.policies) if data.has("policies") else []
        elif data.has("policies"):
            user.policies = parse_policies(data.get("policies"))
            user.token.policies = list(user.policies)
        users.put(name, user)

    return [
        Path("users/?", {Operation.LIST: list_users},
             fields={"after": Field(FieldType.STRING, ""), "limit": Field(FieldType.INT, 0)}),
        Path(f"users/{USERNAME}/password", {Operation.UPDATE: update_password},
             fields={"username": Field(), **secret_fields}),
        Path(f"users/{USERNAME}/policies", {Operation.UPDATE: update_policies},
             fields={"username": Field(), "policies": Field(FieldType.ANY),
                     "token_policies": Field(FieldType.ANY)}),
        Path(f"users/{USERNAME}", {Operation.READ: read, Operation.CREATE: write,
                                   Operation.UPDATE: write, Operation.DELETE: delete},
             fields=user_fields, existence=exists),
    ]


__all__ = ["USERNAME", "UserEntry", "UserStore", "hash_password", "parse_cidrs",
           "user_paths"]
