"""Response wrapping: a response stored in a single-use token's cubbyhole.

The client gets ``wrap_info`` (the wrapping token) instead of the response;
whoever holds that token can unwrap it exactly once before its TTL runs out.

Exactly once holds across threads and worker processes: unwrap and rewrap
claim the token under its node-wide lock (the stripe ``Core._consume_use``
takes for the same token), re-read it there, and only then spend it. The
answer is encoded before the token is spent, so a response that cannot be
written leaves the token (and the data) in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.barrier.view import StorageView
from strongroom.config import MAX_DURATION_SECONDS, ConfigError, parse_duration
from strongroom.core.logical import Secret
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_format import parse_auth, render_auth
from strongroom.core.tokens import TokenEntry, generate_accessor
from strongroom.errors import BadRequestError, PermissionDeniedError
from strongroom.jsoncodec import dumps
from strongroom.node.locks import node_lock

if TYPE_CHECKING:
    from strongroom.core.core import Core

WRAPPING_POLICY = "response-wrapping"
DEFAULT_WRAP_TTL = 300
MAX_WRAP_TTL = MAX_DURATION_SECONDS  # the longest Go time.Duration, as Vault's header parser
INVALID_WRAPPING_TOKEN = "wrapping token is not valid or does not exist"  # noqa: S105 - a message
_INVALID = INVALID_WRAPPING_TOKEN
# The paths that take a wrapping token (in the body, else as the client token).
WRAPPING_TOKEN_PATHS = ("sys/wrapping/lookup", "sys/wrapping/unwrap", "sys/wrapping/rewrap")


def parse_wrap_ttl(header: str | None) -> int:
    """X-Vault-Wrap-TTL: a Go duration or a number of seconds; 0 when absent."""
    if not header:
        return 0
    try:
        ttl = parse_duration(header, bounded=False)  # too long: Vault's own message below
    except (ConfigError, ValueError):
        raise BadRequestError(f"error parsing X-Vault-Wrap-TTL header: invalid duration "
                              f"{header!r}") from None
    if ttl <= 0:
        raise BadRequestError("X-Vault-Wrap-TTL must be positive")
    if ttl > MAX_WRAP_TTL:
        # Go's time.Duration (nanoseconds in an int64) overflows: Vault refuses it too.
        # Unbounded, the token's expiry fell past year 9999 and lookups of it were 500s.
        raise BadRequestError("error parsing X-Vault-Wrap-TTL header: multiplication of "
                              "durations resulted in overflow, one operand may be too large")
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
        stored = {
            "response": rendered_response(resp),
            "creation_path": creation_path,
            "creation_time": rfc3339(now),
            "creation_ttl": ttl,
        }
        # Encoded before the token exists: a response that cannot be stored makes none.
        blob = dumps(stored)
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
        self._cubby(entry.hash).put("response", blob)
        wrap_info: dict[str, Any] = {
            "token": token,
            "accessor": entry.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
        }
        if resp.auth is not None:
            wrap_info["wrapped_accessor"] = resp.auth.accessor
        elif resp.mount_type == "approle" and isinstance(
                (resp.data or {}).get("secret_id_accessor"), str):
            # Vault names a wrapped AppRole SecretID's accessor: whoever handed it out
            # can revoke it without ever seeing the SecretID.
            wrap_info["wrapped_accessor"] = (resp.data or {})["secret_id_accessor"]
        return Response(wrap_info=wrap_info)

    def destroy(self, token_hash: str) -> None:
        self._cubby(token_hash).delete("response")

    def _load(self, entry: TokenEntry | None) -> dict[str, Any]:
        if entry is None or not is_wrapping_token(entry):
            raise BadRequestError(_INVALID)
        raw = self._cubby(entry.hash).get("response")
        if raw is None:
            raise BadRequestError(_INVALID)
        doc: dict[str, Any] = json.loads(raw)
        return doc

    @contextmanager
    def _claim(self, entry: TokenEntry | None) -> Iterator[tuple[TokenEntry, dict[str, Any]]]:
        """Hold the wrapping token alone, live, with its stored response.

        ``entry`` is what :meth:`resolve` found. Whoever leaves the block without
        an error must have spent the token; everyone waiting on the lock then
        finds it gone (400).
        """
        if entry is None or not is_wrapping_token(entry):
            raise BadRequestError(_INVALID)
        with node_lock("token|" + entry.hash):
            # Only the request's own token can be tainted (-1, token lookups hide such):
            # Core._consume_use claimed its single use under this same lock, so no other
            # request holds it. A token named in the body is re-read here: another worker
            # may have spent it since it was looked up.
            own = entry.num_uses == -1
            if not own and self._core.tokens.lookup_hash(entry.hash, self._core.now()) is None:
                raise BadRequestError(_INVALID)
            doc = self._load(entry)
            try:
                yield entry, doc
            except Exception:
                if own:
                    # Nothing was answered: give the claimed use back, so that the core
                    # does not revoke the token once this request ends.
                    entry.num_uses = 1
                    self._core.tokens.save(entry)
                raise

    def _spend(self, entry: TokenEntry) -> None:
        self.destroy(entry.hash)  # first: a crash mid-revocation leaves nothing to unwrap
        self._core.revoke_token(entry)

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
        with self._claim(entry) as (entry, doc):
            resp = stored_response(doc["response"])
            # The answer must be writable before the only copy of the data goes.
            dumps(rendered_response(resp))
            self._spend(entry)
        return resp

    def rewrap(self, entry: TokenEntry | None) -> Response:
        with self._claim(entry) as (entry, doc):
            # The new token holds the response before the old one goes: never neither.
            fresh = self.wrap(stored_response(doc["response"]), int(doc["creation_ttl"]),
                              doc["creation_path"])
            self._spend(entry)
        return fresh


def validate_wrapping_token(core: Core, req: Request) -> None:
    """Vault checks the wrapping token before anything else on the wrapping paths:
    the body's ``token``, else the client token. No token at all is a 403; one
    that is not a live wrapping token (unknown, spent, any other kind) is a 400.
    """
    named = req.data.get("token") if req.data else None
    if named is not None:
        if not isinstance(named, str):
            raise PermissionDeniedError(
                "error validating wrapping token: could not decode token in request body")
        if not named:
            raise PermissionDeniedError(
                "error validating wrapping token: empty token in request body")
        entry = core.tokens.lookup(named, core.now())
    else:
        if not req.token:
            raise PermissionDeniedError("error validating wrapping token: token is empty")
        entry = req.token_entry
    if entry is None or not is_wrapping_token(entry):
        raise BadRequestError(INVALID_WRAPPING_TOKEN)


def rendered_response(resp: Response) -> dict[str, Any]:
    """What a wrapping token keeps: the response as its client would have seen it."""
    return {
        "data": resp.data, "auth": render_auth(resp.auth) if resp.auth is not None else None,
        "lease_id": resp.lease_id, "lease_duration": resp.lease_duration,
        "renewable": resp.renewable, "warnings": resp.warnings, "mount_type": resp.mount_type,
    }


def stored_response(doc: dict[str, Any]) -> Response:
    """:func:`rendered_response`'s inverse: its token issued and its lease (if any)
    registered already, so the pipeline's later stages pass it on unchanged."""
    resp = Response(data=doc.get("data"), warnings=list(doc.get("warnings") or []),
                    mount_type=str(doc.get("mount_type") or ""))
    if doc.get("auth"):
        resp.auth = parse_auth(doc["auth"])
    lease_id, ttl = str(doc.get("lease_id") or ""), int(doc.get("lease_duration") or 0)
    renewable = bool(doc.get("renewable"))
    if lease_id or ttl or renewable:
        # Set after construction: the data stays what was stored (even null).
        resp.secret = Secret("", resp.data or {}, ttl=ttl, renewable=renewable,
                             lease_id=lease_id, final=True)
    return resp


def is_wrapping_token(entry: TokenEntry) -> bool:
    """Vault's test: a wrapping token holds the response-wrapping policy alone."""
    return entry.policies == [WRAPPING_POLICY]
