"""Core.handle: the staged request pipeline (DESIGN.md section 1b).

sealed? -> authenticate -> resolve the mount -> authorize -> audit the request ->
handle -> register the lease / the login -> wrap -> audit the response.

One Core per worker process. Node-level seal state comes from the coordinator
(a shared seal generation); storage changes made by any process of the node
arrive through the write notifier's change feed, key by key: the policy cache,
the token store and the mount tables drop what changed. Both are checked before
every request with a few memory reads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime

from strongroom.audit.broker import DeviceBroker
from strongroom.auth.tokenutil import cidrs_allow
from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.keyring import Keyring
from strongroom.barrier.view import StorageView
from strongroom.config import DEFAULT_LEASE_TTL
from strongroom.core.bootstrap import TOKEN_STORE_PREFIX
from strongroom.core.expiration import ExpirationManager
from strongroom.core.hooks import (
    AuditBroker,
    LeaseRegistrar,
    NoAudit,
    audit_failure,
    audit_refusal,
    audit_request,
    audit_response,
)
from strongroom.core.identity import IDENTITY_PREFIX, IdentityStore
from strongroom.core.identity_backend import IdentityBackend
from strongroom.core.lease_store import ID_PREFIX as LEASE_ID_PREFIX
from strongroom.core.logical import LogicalBackend, special_match
from strongroom.core.mount_table import Mounts
from strongroom.core.mounts import (
    MOUNT_TABLE_KEYS,
    MOUNT_VIEW_PREFIXES,
    EngineFactory,
    MountEntry,
    Router,
)
from strongroom.core.policy_store import PolicyStore
from strongroom.core.request import Operation, Request, Response
from strongroom.core.results import register_lease, register_login
from strongroom.core.system import SystemBackend
from strongroom.core.token_backend import TokenBackend
from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.core.wrapping import (
    INVALID_WRAPPING_TOKEN,
    WRAPPING_TOKEN_PATHS,
    Wrapper,
    validate_wrapping_token,
)
from strongroom.engines.cubbyhole import CubbyholeBackend
from strongroom.errors import (
    BadRequestError,
    FencedError,
    NoRouteError,
    PermissionDeniedError,
    SealedError,
    StrongroomError,
    multierror,
    no_route_message,
)
from strongroom.ha.standby import forget_forwarders
from strongroom.node.coordinator import NodeSnapshot, SealCoordinator, utcnow
from strongroom.node.locks import node_lock
from strongroom.node.shared import SharedCounters, Slot
from strongroom.physical.chain import StorageChain
from strongroom.policy.acl import ACL


class Core:
    def __init__(
        self,
        storage: StorageChain,
        coordinator: SealCoordinator,
        counters: SharedCounters,
        engines: dict[str, EngineFactory] | None = None,
        auth_methods: dict[str, EngineFactory] | None = None,
        audit_devices: dict[str, EngineFactory] | None = None,
        clock: Callable[[], datetime] = utcnow,
        default_lease_ttl: int = DEFAULT_LEASE_TTL,
        max_lease_ttl: int = DEFAULT_LEASE_TTL,
    ) -> None:
        self.storage = storage
        self.coordinator = coordinator
        self.counters = counters
        self.clock = clock
        self.default_lease_ttl = default_lease_ttl
        self.max_lease_ttl = max_lease_ttl
        self.barrier = AESGCMBarrier(storage.top, on_unknown_term=self._force_seal_sync)
        # Decoded token entries are cached per worker where every write reaches this
        # node's change feed (storage.cache: node-private storage), as reads are.
        self.tokens = TokenStore(StorageView(self.barrier, TOKEN_STORE_PREFIX),
                                 on_revoke=self._token_revoked,
                                 cache_entries=storage.cache is not None)
        self.policies = PolicyStore(self.barrier)
        self.identity = IdentityStore(self.barrier, clock)
        self.router = Router()
        self.wrapper = Wrapper(self)
        # The pipeline's plug points (core/hooks.py); the audit broker is installed once
        # the mount tables exist (its devices are the audit table's mounts); the
        # expiration manager registers every leased secret and token.
        self.audit: AuditBroker = NoAudit()
        self.expiration = ExpirationManager(self)
        self.leases: LeaseRegistrar | None = self.expiration
        self._system = SystemBackend(self)
        self._token_backend = TokenBackend(self)
        # sys/, auth/token/ and cubbyhole/ are mounts like any other, built by the
        # core's own factories; what can be enabled comes from strongroom.registry.
        self.mounts = Mounts(
            self.barrier, clock, self.router, self.changed,
            engines=engines if engines is not None else {},
            auth_methods=auth_methods if auth_methods is not None else {},
            audit_devices=audit_devices if audit_devices is not None else {},
            builtin_factories={"system": lambda ctx: self._system,
                               "token": lambda ctx: self._token_backend,
                               "cubbyhole": CubbyholeBackend.factory,
                              "identity": lambda ctx: IdentityBackend(self.identity)},
            system_ttls=(default_lease_ttl, max_lease_ttl))
        # Every enabled audit device records every request (fail closed: none did, the
        # request is refused); devices reload with the audit table (audit/broker.py).
        self.audit = DeviceBroker(self)
        self._sync_lock = threading.Lock()
        self._applied: tuple[int, ...] = ()
        self._changes = storage.changes()
        self._tables_changed: set[str] = set()
        self._remount = False
        self._subscribe()
        self.snapshot = NodeSnapshot(0, False, True, None)
        # A worker's coordinator reports seals from its watcher thread, before any
        # request here: the token salt is wiped then, with the keyring (issue #9).
        on_seal = getattr(coordinator, "on_seal", None)
        if on_seal is not None:
            on_seal(self.forget_secrets)

    def now(self) -> float:
        return self.clock().timestamp()

    # -- cross-worker state -------------------------------------------------------

    def _subscribe(self) -> None:
        """Route the node's storage changes to what caches them in this process."""
        changes = self._changes
        changes.subscribe("sys/policy/", lambda _key: self.policies.invalidate(),
                          self.policies.invalidate)
        changes.subscribe(TOKEN_STORE_PREFIX, self.tokens.invalidate, self.tokens.invalidate_all)
        changes.subscribe(IDENTITY_PREFIX, self.identity.invalidate, self.identity.invalidate)
        # Lease entries: the owner's expiry runner (core/lease_expiry.py) listens.
        changes.subscribe(LEASE_ID_PREFIX, self.expiration.changed, self.expiration.reset)
        for key in MOUNT_TABLE_KEYS:
            changes.subscribe(key, self._table_changed, self._remount_all)
        for prefix in MOUNT_VIEW_PREFIXES:
            # A key under a mount's view goes to that mount's backend (invalidate(rel)).
            changes.subscribe(prefix, self.mounts.invalidate, self._remount_all)

    def _table_changed(self, key: str) -> None:
        self._tables_changed.add(key)

    def _remount_all(self) -> None:
        self._remount = True  # once per sync, whatever else changed

    def _apply_mount_changes(self) -> None:
        """Reload each mount table that changed, once however many writes it took; after
        a reset (the feed lost track), rebuild every backend: any cache may be stale."""
        tables = sorted(self._tables_changed)
        self._tables_changed.clear()
        if self._remount:
            self._remount = False
            self.mounts.unload()
            self.mounts.load()
            return
        for key in tables:
            self.mounts.invalidate(key)

    def sync(self) -> NodeSnapshot:
        """Apply whatever changed (in any process of the node) since this one last looked.

        Another thread may be applying a change right now: it consumed the change records
        first (``pending`` is already False) and is still reloading what they name (a
        mount, an audit device). Such a thread holds the lock: wait for it, else this
        request ran against the old state: a login to a just-enabled mount answered 403
        (no route), a request on a just-enabled audit device went unrecorded."""
        current = self.counters.snapshot()
        if current != self._applied or self._changes.pending or self._sync_lock.locked():
            with self._sync_lock:
                # Another thread may have applied it while we waited for the lock.
                if current != self._applied or self._changes.pending:
                    self._apply(current)
        return self.snapshot

    def _apply(self, current: tuple[int, ...]) -> None:
        before = self._applied or (-1,) * len(current)
        if before[Slot.SEAL] != current[Slot.SEAL]:
            self._apply_seal()
        elif self.barrier.sealed:
            self._changes.skip()  # nothing is cached while sealed; unseal reloads all
        else:
            self._changes.dispatch()
            self._apply_mount_changes()
        # Published only once applied: a thread that sees it can rely on the state.
        self._applied = current

    def _apply_seal(self) -> None:
        snap = self.coordinator.snapshot()
        # Writes carry the active node's lock session; a standby's carry none.
        session = snap.ha.session if snap.ha.active else None
        if snap.keyring is not None and not snap.ha.active and self._holds(snap.keyring):
            # Same keys, and not (or no longer) the active node: only the HA status moved,
            # and a standby forwards what would need the mount table. A node cut off from
            # Consul must still answer health, and a reload would wait on the storage it
            # cannot reach. (Becoming active does reload: another node may have changed
            # mounts and policies meanwhile.)
            snap.keyring.wipe()
            self.storage.set_session(session)
            self.snapshot = snap
            return
        # Everything is reloaded (or dropped) below: earlier changes are moot.
        self._changes.skip()
        self._tables_changed.clear()
        self._remount = False
        if snap.keyring is None:
            self.barrier.seal()
            self.forget_secrets()
            self.mounts.unload()
        else:
            self.barrier.install(snap.keyring)
            self.policies.invalidate()
            self.identity.invalidate()
            self.tokens.invalidate_all()
            # A standby never writes: backends are initialized once this node is active.
            self.mounts.load(active=not snap.ha.standby)
        self.storage.set_session(session)
        self.snapshot = snap

    def _holds(self, keyring: Keyring) -> bool:
        """Whether this worker's barrier is open with exactly ``keyring``'s keys."""
        try:
            return self.barrier.keyring.same_keys(keyring)
        except SealedError:
            return False

    def forget_secrets(self) -> None:
        """Wipe the key material the core holds beside the barrier's keyring (seal)."""
        self.tokens.forget()
        forget_forwarders()  # a standby's cluster key, in its forwarders' SSL contexts

    def _force_seal_sync(self) -> None:
        with self._sync_lock:
            self._apply_seal()

    def changed(self, _what: object = None) -> None:
        """Apply this process's own storage change now (the notifier published it).

        Other processes apply it before their next request. The argument is ignored
        (callers used to name a counter slot).
        """
        self.sync()

    def tokens_changed(self) -> None:
        """Nothing to do: token writes are published by the write notifier."""

    # -- tokens -------------------------------------------------------------------

    def revoke_token(self, entry: TokenEntry, orphan_children: bool = False) -> None:
        if orphan_children:
            self.tokens.revoke_orphan(entry)
        else:
            self.tokens.revoke_tree(entry)
        self.tokens_changed()

    def _token_revoked(self, entry: TokenEntry) -> None:
        self.expiration.revoke_by_token(entry)
        self.mounts.destroy_cubbyhole(entry.hash)
        self.wrapper.destroy(entry.hash)

    def _report_lost(self) -> None:
        try:
            self.coordinator.ha_lost()
        except StrongroomError:
            pass  # unreachable coordinator: its own lock watch will notice

    def acl_for(self, entry: TokenEntry) -> ACL:
        """The token's ACL; templated stanzas filled from its entity, if it has one."""
        names = tuple(sorted(entry.policies))
        entity_id = entry.entity_id
        if not entity_id:
            return self.policies.acl(names)
        return self.policies.acl(names, lambda: self.identity.template_info(entity_id))

    def has_sudo(self, entry: TokenEntry, path: str) -> bool:
        acl = self.acl_for(entry)
        return acl.allowed_operation(Operation.UPDATE, path, None).sudo

    # -- requests: the pipeline ---------------------------------------------------
    #
    # authenticate -> resolve the mount -> authorize -> audit the request -> handle ->
    # register the lease / the login -> wrap -> audit the response. Each stage is one
    # method; later subsystems plug in through ``self.audit`` (issue 12's broker) and
    # ``self.leases`` (issue 12's expiration manager), or by overriding a stage.

    def handle(self, req: Request) -> Response:
        if not req.request_id:
            req.request_id = str(uuid.uuid4())
        if self.sync().sealed:
            raise SealedError()
        self._authenticate(req)
        mount: MountEntry | None = None
        try:
            backend, rel, mount = self._route(req)
            unauthenticated = self._authorize(req, backend, rel)
        except StrongroomError as exc:
            audit_refusal(self.audit, req, mount, exc)
            raise
        self._audit_request(req, mount)
        try:
            # A use of a limited-use token is spent only once the request is audited:
            # a request no device recorded did nothing at all (fail closed).
            if not unauthenticated and req.token_entry is not None:
                self._consume_use(req.token_entry, req.path)
            resp = self._handle(req, backend, rel, mount)
            self._register_lease(req, resp, backend, mount)
            self._register_login(req, resp, mount, unauthenticated)
            resp = self._wrap(req, resp)
        except Exception as exc:
            audit_failure(self.audit, req, mount, exc)
            raise
        self._audit_response(req, mount, resp)
        return resp

    def _authenticate(self, req: Request) -> None:
        """Look the client token up (if one is given, even on unauthenticated paths)."""
        req.token_entry = self.tokens.lookup(req.token, self.now()) if req.token else None
        if req.path in WRAPPING_TOKEN_PATHS:
            validate_wrapping_token(self, req)

    def _route(self, req: Request) -> tuple[LogicalBackend, str, MountEntry | None]:
        """Resolve the mount that owns ``req.path`` (the router: longest prefix)."""
        try:
            return self._resolve(req.path)
        except NoRouteError:
            # Only root learns what is not mounted; everyone else is simply denied.
            entry = req.token_entry
            if entry is None:
                raise PermissionDeniedError() from None
            if "root" not in entry.policies:
                raise PermissionDeniedError(multierror("permission denied")) from None
            raise

    def _resolve(self, path: str) -> tuple[LogicalBackend, str, MountEntry | None]:
        match = self.router.match(path)
        if match is None:
            raise NoRouteError(no_route_message(path))
        entry, backend, rel = match
        # sys/ answers carry no mount_type (as before sys/ was a mount).
        return backend, rel, (None if entry.type == "system" else entry)

    def _authorize(self, req: Request, backend: LogicalBackend, rel: str) -> bool:
        """ACL, sudo (the backend's ``special_paths.sudo``), parameters and wrapping
        bounds; then spend one use of a limited-use token. Returns whether the path is
        unauthenticated (``special_paths.unauthenticated``: served without a token)."""
        special = backend.special_paths
        if special_match(special.unauthenticated, rel):
            return True
        entry = req.token_entry
        if entry is None:
            raise PermissionDeniedError()
        # Vault's CheckToken: a token bound to CIDR blocks is refused from elsewhere
        # (non-expiring root tokens are never bound).
        if entry.bound_cidrs and entry.ttl and not cidrs_allow(entry.bound_cidrs,
                                                               req.remote_addr):
            raise PermissionDeniedError()
        req.client_token_remaining_uses = max(entry.num_uses, 0)  # for the audit entry
        if req.operation is Operation.UPDATE and backend.existence(req, rel) is False:
            req.operation = Operation.CREATE
        if req.operation is not Operation.HELP:
            acl = self.acl_for(entry)
            # Policy-forced wrapping is part of the decision: out of bounds is a 403,
            # as in Vault.
            decision = acl.allowed_operation(
                req.operation, req.path, req.data,
                needs_sudo=special_match(special.sudo, rel), wrap_ttl=req.wrap_ttl or None)
            if not decision.allowed:
                raise PermissionDeniedError(multierror("permission denied"))
        return False

    def _audit_request(self, req: Request, mount: MountEntry | None) -> None:
        audit_request(self.audit, req, mount)

    def _handle(self, req: Request, backend: LogicalBackend, rel: str,
                mount: MountEntry | None) -> Response:
        entry = req.token_entry
        try:
            resp = backend.handle(req, rel)
        except FencedError:
            # Another node holds the lock now: stop acting as the active one. The
            # coordinator may itself be stalled, so it is told without waiting.
            threading.Thread(target=self._report_lost, daemon=True).start()
            raise StrongroomError("this node is no longer active; retry the request") from None
        except NoRouteError:
            if backend is self._system:
                raise NoRouteError(multierror("unsupported path")) from None
            raise NoRouteError(no_route_message(req.path)) from None
        finally:
            if entry is not None and entry.num_uses == -1:
                self.revoke_token(entry)
        resp = resp if resp is not None else Response()
        if mount is not None:
            resp.mount_type = mount.type
        return resp

    def _register_lease(self, req: Request, resp: Response, backend: LogicalBackend,
                        mount: MountEntry | None) -> None:
        if resp.secret is not None:
            register_lease(self, self.leases, req, resp, backend, mount)

    def _register_login(self, req: Request, resp: Response, mount: MountEntry | None,
                        unauthenticated: bool) -> None:
        if resp.auth is not None:
            # A login path: an auth method's unauthenticated path (Vault's LoginPath;
            # only auth mounts are routed under auth/).
            login = unauthenticated and mount is not None and req.path.startswith("auth/")
            register_login(self, self.leases, req, resp, mount, login)

    def _wrap(self, req: Request, resp: Response) -> Response:
        return self.wrapper.maybe_wrap(req, resp)

    def _audit_response(self, req: Request, mount: MountEntry | None,
                        resp: Response) -> None:
        audit_response(self.audit, req, mount, resp)

    def _consume_use(self, entry: TokenEntry, path: str = "") -> None:
        """Spend one of a limited-use token's uses; the last use revokes it afterwards."""
        if entry.num_uses <= 0:
            return
        with node_lock("token|" + entry.hash):
            # Re-read under the lock: another worker may have spent a use meanwhile.
            current = self.tokens.lookup_hash(entry.hash, self.now())
            if current is None:
                if path in WRAPPING_TOKEN_PATHS:
                    raise BadRequestError(INVALID_WRAPPING_TOKEN)  # another unwrap won
                raise PermissionDeniedError()
            entry.num_uses = current.num_uses - 1
            if entry.num_uses == 0:
                entry.num_uses = -1  # tainted: serve this request, then revoke
            self.tokens.save(entry)
        self.tokens_changed()

