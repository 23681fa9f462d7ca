"""Response wrapping: a response stored in a single-use token's cubbyhole.

The client gets ``wrap_info`` (the wrapping token) instead of the response;
whoever holds that token can unwrap it exactly once before its TTL runs out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.barrier.view import StorageView
from strongroom.config import ConfigError, parse_duration
from strongroom.core.request import Operation, Request, Response
from strongroom.core.tokens import TokenEntry, generate_accessor
from strongroom.errors import BadRequestError

if TYPE_CHECKING:
    from strongroom.core.core import Core

WRAPPING_POLICY = "response-wrapping"
DEFAULT_WRAP_TTL = 300
_INVALID = "wrapping token is not valid or does not exist"


def parse_wrap_ttl(header: str | None) -> int:
    """X-Vault-Wrap-TTL: a Go duration or a number of seconds; 0 when absent."""
    if not header:
        return 0
    try:
        ttl = parse_duration(header)
    except (ConfigError, ValueError):
        raise BadRequestError(f"error parsing X-Vault-Wrap-TTL header: invalid duration "
                              f"{header!r}") from None
    if ttl <= 0:
        raise BadRequestError("X-Vault-Wrap-TTL must be positive")
    return ttl


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Wrapper:
    def __init__(self, core: Core) -> None:
        self._core = core

    def _cubby(self, token_hash: str) -> StorageView:
        return StorageView(self._core.barrier, f"sys/wrapping/{token_hash}/")

    def maybe_wrap(self, req: Request, resp: Response) -> Response:
        if not req.wrap_ttl or resp.raw or resp.wrap_info is not None:
            return resp
        if resp.data is None and resp.auth is None:
            return resp
        path = req.path
        if req.operation is Operation.LIST and not path.endswith("/"):
            path += "/"  # Vault records a wrapped LIST under its folder path
        return self.wrap(resp, req.wrap_ttl, path)

    def wrap(self, resp: Response, ttl: int, creation_path: str) -> Response:
        now = self._core.now()
        entry = TokenEntry(
            accessor=generate_accessor(),
            policies=[WRAPPING_POLICY],
            path=creation_path,
            creation_time=now,
            display_name="response-wrapping",
            num_uses=1,
            ttl=ttl,
            creation_ttl=ttl,
            expire_at=now + ttl,
        )
        token = self._core.tokens.create(entry)
        stored = {
            "response": {
                "data": resp.data, "auth": resp.auth, "lease_id": resp.lease_id,
                "lease_duration": resp.lease_duration, "renewable": resp.renewable,
                "warnings": resp.warnings, "mount_type": resp.mount_type,
            },
            "creation_path": creation_path,
            "creation_time": rfc3339(now),
            "creation_ttl": ttl,
        }
        self._cubby(entry.hash).put("response", json.dumps(stored).encode())
        wrap_info: dict[str, Any] = {
            "token": token,
            "accessor": entry.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
        }
        if resp.auth is not None:
            wrap_info["wrapped_accessor"] = resp.auth.get("accessor", "")
        return Response(wrap_info=wrap_info)

    def destroy(self, token_hash: str) -> None:
        self._cubby(token_hash).delete("response")

    def _load(self, entry: TokenEntry | None) -> dict[str, Any]:
        if entry is None or WRAPPING_POLICY not in entry.policies:
            raise BadRequestError(_INVALID)
        raw = self._cubby(entry.hash).get("response")
        if raw is None:
            raise BadRequestError(_INVALID)
        doc: dict[str, Any] = json.loads(raw)
        return doc

    def resolve(self, req: Request, body_token: str | None) -> TokenEntry | None:
        """The wrapping token named in the body, else the one making the request."""
        if body_token:
            return self._core.tokens.lookup(body_token, self._core.now())
        return req.token_entry

    def lookup(self, entry: TokenEntry | None) -> Response:
        doc = self._load(entry)
        return Response(data={k: doc[k] for k in ("creation_path", "creation_time",
                                                  "creation_ttl")})

    def unwrap(self, entry: TokenEntry | None) -> Response:
        doc = self._load(entry)
        assert entry is not None
        self._core.revoke_token(entry)
        return Response(**doc["response"])

    def rewrap(self, entry: TokenEntry | None) -> Response:
        doc = self._load(entry)
        assert entry is not None
        self._core.revoke_token(entry)
        return self.wrap(Response(**doc["response"]), int(doc["creation_ttl"]),
                         doc["creation_path"])
