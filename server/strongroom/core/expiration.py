"""The expiration manager: every leased secret and every service token is a lease.

One :class:`ExpirationManager` per Core (``core.leases``), so any worker registers,
renews, revokes and looks leases up (sys/leases/*); expiries run only in the node's
owner on the active node (core/lease_expiry.py drives :meth:`expire`). Compare
OpenBao's ``vault/expiration.go``; the storage layout is core/lease_store.py.

Revocation and renewal go back through the router to the mount that issued the
secret (matched by path, checked by mount accessor: a mount re-enabled at the same
path is another mount), as ``backend.secret_type(name).revoke(secret)`` with the
``internal`` the backend kept. A token's lease revokes the token (and its tree).

Concurrency: every change to one lease happens under ``node_lock("lease|<id>")``,
which excludes every thread of every process of the node; across nodes, only the
active node writes (a node that lost the HA lock has its writes fenced).
"""

from __future__ import annotations

import logging
import random
import secrets
import string
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from strongroom.core.hooks import LeaseRegistrationError
from strongroom.core.lease_store import (
    AUTH_KIND,
    ID_PREFIX,
    LeaseEntry,
    LeaseStore,
    check_lease_id,
)
from strongroom.core.logical import Auth, Secret, SecretType
from strongroom.core.request import Request, Response
from strongroom.core.results import mount_ttls
from strongroom.core.token_ttl import calculate_ttl
from strongroom.errors import BadRequestError, StrongroomError
from strongroom.node.locks import node_lock

if TYPE_CHECKING:
    from collections.abc import Callable

    from strongroom.core.core import Core
    from strongroom.core.mounts import MountEntry
    from strongroom.core.tokens import TokenEntry

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits
# Vault's revocation retries: 6 attempts, backoff 2^n * 10 s (+-50%), then irrevocable.
MAX_REVOKE_ATTEMPTS = 6
REVOKE_RETRY_BASE = 10.0
MAX_ERROR_LENGTH = 240  # Vault's maxIrrevocableErrorLength
OUT_OF_RETRIES = "out of retries"


class UnrecoverableRevokeError(StrongroomError):
    """A revocation that no retry can fix (the mount or its secret type is gone)."""


def _lock(lease_id: str) -> AbstractContextManager[None]:
    return node_lock("lease|" + lease_id)


class ExpirationManager:
    """Implements core/hooks.py's ``LeaseRegistrar`` and the lease operations."""

    def __init__(self, core: Core, retry_base: float = REVOKE_RETRY_BASE) -> None:
        self._core = core
        self.store = LeaseStore(core.barrier)
        self.retry_base = retry_base
        # The owner's expiry runner listens here (a lease id changed; everything may
        # have changed); in a worker nobody does.
        self.on_change: Callable[[str], None] | None = None
        self.on_reset: Callable[[], None] | None = None

    # -- change feed (Core subscribes these to sys/expire/id/) ------------------------

    def changed(self, key: str) -> None:
        if self.on_change is not None and key.startswith(ID_PREFIX):
            self.on_change(key[len(ID_PREFIX):])

    def reset(self) -> None:
        if self.on_reset is not None:
            self.on_reset()

    # -- registration (the pipeline's lease and login stages) -------------------------

    def register(self, req: Request, mount: MountEntry, secret: Secret) -> str:
        """Persist a lease for ``secret`` (TTL already bounded); its id is returned."""
        token = req.token_entry
        if token is None:
            raise StrongroomError("cannot register a lease with an empty client token")
        now = self._core.now()
        lease_id = f"{req.path.rstrip('/')}/" + "".join(
            secrets.choice(_ALPHABET) for _ in range(24))
        expire = now + secret.ttl if secret.ttl else 0.0
        # Vault indexes the lease under its token, or a batch token's parent (an orphan
        # batch token has nothing to revoke its leases with: they expire).
        index = token.hash if token.type != "batch" else token.parent_hash
        if token.type == "batch" and token.expire_at and (not expire or
                                                          expire > token.expire_at):
            expire = token.expire_at
            secret.ttl = max(0, int(expire - now))
        entry = LeaseEntry(
            lease_id=lease_id, path=req.path, secret_type=secret.type,
            internal=dict(secret.internal), renewable=secret.renewable, ttl=secret.ttl,
            max_ttl=secret.max_ttl, mount_accessor=mount.accessor, mount_path=mount.path,
            token_hash=index or "", issue_time=now, expire_time=expire)
        with _lock(lease_id):
            self.store.create(entry, index or "")
        if index and self._core.tokens.lookup_hash(index, self._core.now()) is None:
            # The token is gone: this was its last use (revoked when the handler
            # returned), or another request revoked it meanwhile and listed its leases
            # before this one was written. The secret goes with it, as Vault's.
            self.revoke_lazy(lease_id)
        return lease_id

    def register_auth(self, req: Request, mount: MountEntry | None, entry: TokenEntry,
                      auth: Auth) -> None:
        """A service token is a lease too: ``<creation path>/<token hash>``."""
        if entry.type == "batch":
            return  # batch tokens carry their own expiry; Vault gives them no lease
        lease = token_lease(entry, mount.accessor if mount is not None else "")
        try:
            with _lock(lease.lease_id):
                self.store.put(lease)
        except Exception as exc:  # noqa: BLE001 - any failure: the token must not outlive it
            log.error("event=lease_registration_failed kind=token path=%s error=%s",
                      entry.path, type(exc).__name__)
            # A token nobody would expire must not be handed out.
            self._core.revoke_token(entry)
            raise LeaseRegistrationError() from None

    # -- reading ------------------------------------------------------------------------

    def load(self, lease_id: str) -> LeaseEntry | None:
        """The stored entry; a relative id is Vault's storage error (400), other
        malformed ids name no lease."""
        if ".." in lease_id.split("/"):
            raise BadRequestError(
                f"failed to read lease entry {lease_id}: relative paths not supported")
        return self.store.get(lease_id)

    def get(self, lease_id: str) -> LeaseEntry | None:
        """The entry, with a token's times taken from the token itself (renewals)."""
        entry = self.load(lease_id)
        if entry is not None and entry.is_auth:
            token = self._core.tokens.lookup_hash(entry.token_hash, self._core.now())
            if token is None:
                return None  # revoked, or expired and revoked on sight just now
            entry.issue_time, entry.expire_time = token.creation_time, token.expire_at
            entry.last_renewal, entry.renewable = token.last_renewal, token.renewable
            entry.ttl = token.ttl
        return entry

    def renewable(self, entry: LeaseEntry | None, now: float) -> str:
        """Vault's leaseEntry.renewable(): "" if renewable, else why not."""
        if entry is None:
            return "lease not found"
        if entry.irrevocable:
            return "lease is expired and has failed previous revocation attempts"
        if not entry.expire_time:
            return "lease is not renewable"
        if entry.expire_time < now:
            return "lease expired"
        if not entry.renewable:
            return "lease is not renewable"
        return ""

    # -- renewal --------------------------------------------------------------------------

    def renew(self, lease_id: str, increment: int) -> Response:
        """sys/leases/renew: the backend renews, the mount and the role bound the TTL
        (max TTL measured from the lease's issue time, as Vault)."""
        core = self._core
        with _lock(lease_id):
            entry = self.get(lease_id)
            now = core.now()
            why = self.renewable(entry, now)
            if why:
                raise BadRequestError(why)
            assert entry is not None
            if entry.is_auth:
                raise BadRequestError("tokens cannot be renewed through this endpoint")
            mount, kind = self._route(entry)
            if kind.renew is None:
                raise BadRequestError("lease is not renewable")
            try:
                renewed = kind.renew(self._secret(entry), increment)
            except BadRequestError:
                raise  # the backend's own answer (Vault passes an error response on)
            except Exception as exc:  # noqa: BLE001 - Vault: 400, the lease unchanged
                raise BadRequestError(f"failed to renew entry: {_error_text(exc)}") from None
            if renewed is None:
                raise BadRequestError("lease is not renewable")
            default, maximum = mount_ttls(core, mount)
            if 0 < entry.max_ttl < maximum:
                maximum = entry.max_ttl
            ttl, warnings = calculate_ttl(
                default_ttl=default, max_ttl=maximum, increment=increment,
                backend_ttl=renewed.ttl, period=0, explicit_max=0,
                start=int(entry.issue_time), now=int(now))
            entry.ttl, entry.expire_time, entry.last_renewal = ttl, now + ttl, now
            entry.internal, entry.renewable = dict(renewed.internal), renewed.renewable
            self.store.put(entry)
        secret = Secret(entry.secret_type, dict(renewed.data), ttl=ttl,
                        renewable=entry.renewable, lease_id=lease_id, final=True)
        return Response(data=dict(renewed.data) or None, secret=secret, warnings=warnings)

    # -- revocation ---------------------------------------------------------------------

    def revoke(self, lease_id: str, force: bool = False) -> bool:
        """Revoke now (sys/leases/revoke, sync). Returns whether a lease was found.

        With ``force`` a failing backend revocation is logged and the lease deleted
        anyway (revoke-force: the operator takes over the cleanup)."""
        with _lock(lease_id):
            entry = self.load(lease_id)
            if entry is None:
                return False
            try:
                self._revoke_backend(entry)
            except Exception as exc:  # noqa: BLE001 - force: logged, then deleted
                if not force:
                    raise BadRequestError(
                        f"failed to revoke entry: {_error_text(exc)}") from None
                log.warning("event=lease_revoke_forced lease_id=%s error=%s", lease_id,
                            type(exc).__name__)
            self.store.delete(entry)
        log.info("event=lease_revoked lease_id=%s", lease_id)
        return True

    def revoke_lazy(self, lease_id: str) -> None:
        """Mark the lease expired now; the active node's owner revokes it (202)."""
        with _lock(lease_id):
            entry = self.load(lease_id)
            if entry is None or entry.irrevocable:
                return
            if not entry.is_auth:
                entry.expire_time, entry.next_attempt = self._core.now(), 0.0
                self.store.put(entry)
                return
        # A token's lease: the runner goes by the token's own expiry (kept current on
        # renewal) and would find it live. The token is revoked now instead; a large
        # tree is tombstoned (refused at once) and deleted in the background anyway.
        self.revoke(lease_id)

    def revoke_prefix(self, prefix: str, force: bool = False, sync: bool = True) -> int:
        """Revoke every lease whose id lies under ``prefix`` (a folder), or the lease
        named exactly ``prefix``; reads only what matches. Returns how many."""
        if not prefix.endswith("/"):
            if check_lease_id(prefix) and self.store.get(prefix) is not None:
                self._revoke_one(prefix, force, sync)
                return 1
            prefix += "/"
        if not check_lease_id(prefix.rstrip("/")):
            return 0  # no lease can live under a malformed prefix
        found = self.store.collect(prefix)
        for index, lease_id in enumerate(found):
            try:
                self._revoke_one(lease_id, force, sync)
            except BadRequestError as exc:
                raise BadRequestError(f'failed to revoke "{lease_id}" ({index + 1} / '
                                      f"{len(found)}): {exc.message}") from None
        return len(found)

    def _revoke_one(self, lease_id: str, force: bool, sync: bool) -> None:
        if sync:
            self.revoke(lease_id, force)
        else:
            self.revoke_lazy(lease_id)

    def revoke_by_token(self, token: TokenEntry) -> None:
        """A token is being revoked: its secrets' leases expire now (the owner revokes
        them, as Vault's RevokeByToken), and the token's own lease goes."""
        for lease_id in self.store.by_token(token.hash):
            self.revoke_lazy(lease_id)
        if token.type != "batch" and token.path:
            own = f"{token.path}/{token.hash}"
            if check_lease_id(own):
                self.store.delete(LeaseEntry(lease_id=own, path=token.path, kind=AUTH_KIND))

    def tidy(self) -> dict[str, int]:
        """Vault's Tidy: leases whose token is gone are revoked (a secret's: lazily, by
        the owner) or dropped (a token's own). Reads every lease: run in the background."""
        now = self._core.now()
        counts = {"checked": 0, "revoked": 0, "dropped": 0}
        for lease_id in self.store.collect(""):
            entry = self.store.get(lease_id)
            if entry is None or not entry.token_hash:
                continue
            counts["checked"] += 1
            if self._core.tokens.lookup_hash(entry.token_hash, now) is not None:
                continue
            if entry.is_auth:
                with _lock(lease_id):
                    self.store.delete(entry)
                counts["dropped"] += 1
            else:
                self.revoke_lazy(lease_id)
                counts["revoked"] += 1
        return counts

    # -- expiry (the owner, on the active node) -----------------------------------------

    def expire(self, lease_id: str, now: float | None = None) -> float:
        """One expiry attempt for a lease that may be due; returns when to look again
        (0: never: revoked, gone, irrevocable or not expiring)."""
        with _lock(lease_id):
            entry = self.store.get(lease_id)
            now = self._core.now() if now is None else now
            if entry is None or entry.irrevocable:
                return 0.0
            if entry.is_auth:
                return self._expire_token(entry, now)
            due = entry.due_at()
            if not due or due > now:
                return due
            try:
                self._revoke_backend(entry)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then kept
                return self._failed(entry, exc, now)
            self.store.delete(entry)
        log.info("event=lease_revoked lease_id=%s reason=expired", lease_id)
        return 0.0

    def _expire_token(self, entry: LeaseEntry, now: float) -> float:
        token = self._core.tokens.lookup_hash(entry.token_hash, now)
        if token is None:
            # Expired (just revoked on sight, with its tree and their leases) or gone.
            self.store.delete(entry)
            log.info("event=lease_revoked lease_id=%s reason=expired", entry.lease_id)
            return 0.0
        if token.expire_at != entry.expire_time:
            entry.expire_time = token.expire_at  # renewed since: keep restore accurate
            self.store.put(entry)
        return token.expire_at

    def _failed(self, entry: LeaseEntry, exc: Exception, now: float) -> float:
        entry.revoke_attempts += 1
        text = _error_text(exc)[:MAX_ERROR_LENGTH]
        if entry.revoke_attempts >= MAX_REVOKE_ATTEMPTS or isinstance(
                exc, UnrecoverableRevokeError):
            entry.irrevocable = True
            entry.revoke_error = (f"{OUT_OF_RETRIES}: {text}"
                                  if entry.revoke_attempts >= MAX_REVOKE_ATTEMPTS else text)
            entry.next_attempt = 0.0
            log.error("event=lease_irrevocable lease_id=%s attempts=%d error=%s",
                      entry.lease_id, entry.revoke_attempts, type(exc).__name__)
        else:
            delay = self.backoff(entry.revoke_attempts)
            entry.revoke_error, entry.next_attempt = text, now + delay
            log.error("event=lease_revoke_failed lease_id=%s attempts=%d next_attempt_s=%.1f "
                      "error=%s", entry.lease_id, entry.revoke_attempts, delay,
                      type(exc).__name__)
        self.store.put(entry)
        return entry.due_at()

    def backoff(self, attempt: int) -> float:
        """Vault's revokeExponentialBackoff: 2^attempt * base, +-50% at random."""
        exp = (1 << attempt) * self.retry_base
        return exp * 0.5 + random.random() * exp  # noqa: S311 - jitter, not a secret

    # -- the backend, through the router ------------------------------------------------

    def _route(self, entry: LeaseEntry) -> tuple[MountEntry, SecretType]:
        match = self._core.router.match(entry.path)
        if match is None or match[0].accessor != entry.mount_accessor:
            raise UnrecoverableRevokeError(f"no mount with accessor {entry.mount_accessor} "
                                           f"at {entry.mount_path}")
        mount, backend, _rel = match
        kind = backend.secret_type(entry.secret_type)
        if kind is None:
            raise UnrecoverableRevokeError(f"unknown secret type {entry.secret_type!r}")
        return mount, kind

    def _secret(self, entry: LeaseEntry) -> Secret:
        return Secret(entry.secret_type, {}, internal=dict(entry.internal), ttl=entry.ttl,
                      max_ttl=entry.max_ttl, renewable=entry.renewable,
                      lease_id=entry.lease_id, final=True)

    def _revoke_backend(self, entry: LeaseEntry) -> None:
        if entry.is_auth:
            token = self._core.tokens.lookup_hash(entry.token_hash, self._core.now())
            if token is not None:
                self._core.revoke_token(token)
            return
        _mount, kind = self._route(entry)
        kind.revoke(self._secret(entry))


def token_lease(entry: TokenEntry, mount_accessor: str = "") -> LeaseEntry:
    """The lease a service token is (times are read from the token when shown)."""
    return LeaseEntry(
        lease_id=f"{entry.path}/{entry.hash}", path=entry.path, kind=AUTH_KIND,
        renewable=entry.renewable, ttl=entry.ttl, mount_accessor=mount_accessor,
        token_hash=entry.hash, issue_time=entry.creation_time, expire_time=entry.expire_at,
        last_renewal=entry.last_renewal)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, StrongroomError):
        return exc.message
    return type(exc).__name__  # a library's text may carry a secret: its kind only
