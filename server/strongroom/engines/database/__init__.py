"""The database secrets engine (Vault's ``database``): dynamic credentials on real
PostgreSQL and MySQL/MariaDB servers, static roles with rotation, root rotation.

One file per path group: ``path_config`` (config/, reset/, rotate-root/),
``path_roles`` (roles/, static-roles/), ``path_creds`` (creds/, static-creds/ and the
``creds`` secret type the expiration manager revokes and renews through), and
``path_rotate`` (rotate-role/ and the periodic rotation of static roles).

Each process (workers serve requests; the node's owner revokes expired leases and
runs ``periodic``) keeps one plugin instance, with its connection pool, per config
it has used. A config written or deleted in another process reaches this one as
``invalidate("config/<name>")``: the instance is closed and rebuilt on next use.
``cleanup()`` (mount disabled, moved, sealed) closes every pool.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from strongroom.core.logical import SecretType
from strongroom.core.mounts import MountContext
from strongroom.errors import BadRequestError
from strongroom.framework import PathBackend
from strongroom.node.locks import node_lock

from .plugins import DatabaseError, Plugin, build
from .store import CONFIG, DatabaseConfig, Store

log = logging.getLogger(__name__)
SECRET_CREDS = "creds"  # noqa: S105 - a secret type name
# Vault gives the database user 5 s more than the lease, so the lease expires first.
EXPIRY_GRACE = 5
NAME = r"(?P<name>\w(?:[\w.-]*\w)?)"  # framework.GenericNameRegex("name")


# Characters that end or escape a quoted SQL literal or identifier.
_UNSAFE_IN_SQL = frozenset("'\"\\")

class DatabaseBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        from . import path_config, path_creds, path_roles, path_rotate

        self.ctx = ctx
        self.store = Store(ctx.storage)
        self._plugins: dict[str, Plugin] = {}
        self._lock = threading.Lock()
        self._closed = False  # cleaned up: no new pool may be opened
        paths = [*path_config.paths(self), *path_roles.paths(self),
                 *path_creds.paths(self), *path_rotate.paths(self)]
        creds = SecretType(SECRET_CREDS, revoke=lambda s: path_creds.revoke(self, s),
                           renew=lambda s, inc: path_creds.renew(self, s, inc))
        super().__init__(paths, secret_types=[creds])

    # -- time and passwords --------------------------------------------------------

    def now(self) -> datetime:
        return self.ctx.clock()

    def expiration(self, ttl: int) -> str:
        """The database-side expiry of a credential living ``ttl`` seconds from now."""
        when = self.now().astimezone(UTC) + timedelta(seconds=ttl + EXPIRY_GRACE)
        return when.strftime("%Y-%m-%d %H:%M:%S%z")

    def mount_ttls(self) -> tuple[int, int]:
        """The mount's tuned default and max lease TTL, else the system's."""
        cfg = self.ctx.mount.config or {}
        maximum = cfg.get("max_lease_ttl")
        return self.ctx.default_lease_ttl, (maximum if isinstance(maximum, int) and maximum > 0
                                            else self.ctx.system_max_lease_ttl)

    def generate_password(self, config: DatabaseConfig) -> str:
        generate = self.ctx.generate_password
        if generate is None:
            raise BadRequestError("no password generator")
        try:
            password = generate(config.password_policy)
        except BadRequestError:
            raise
        except Exception as exc:  # noqa: BLE001 - a policy problem is the caller's
            raise BadRequestError(f"failed to generate password: {exc}") from None
        # ``{{password}}`` goes into SQL as plain text (DDL takes no parameters): a quote
        # or backslash from a password policy would end the literal, and whoever may
        # write sys/policies/password could run SQL as the root user. Vault lets it
        # through; this refuses it.
        if _UNSAFE_IN_SQL.intersection(password):
            raise BadRequestError(
                f"password policy {config.password_policy!r} generated a password with a "
                "character that cannot be placed in SQL statements (' \" \\)")
        return password

    # -- plugin instances (connection pools) -----------------------------------------

    def config(self, name: str) -> DatabaseConfig:
        config = self.store.config(name)
        if config is None:
            raise DatabaseError(f'failed to find entry for connection with name: "{name}"')
        return config

    def plugin(self, name: str) -> Plugin:
        """This process's plugin for config ``name``, built from storage on first use."""
        with self._lock:
            plugin = self._plugins.get(name)
        if plugin is not None:
            return plugin
        config = self.config(name)
        if config.pending_root_password:
            from .path_config import recover_root

            with self.serialized(name):
                config = self.config(name)
                if config.pending_root_password:
                    config = recover_root(self, name, config)
        fresh = build(config.plugin_name, config.connection_details)
        with self._lock:
            closed = self._closed
            plugin = fresh if closed else self._plugins.setdefault(name, fresh)
        if closed or plugin is not fresh:
            fresh.close()
        if closed:
            # A request still running as the mount goes must not leave a pool behind.
            raise DatabaseError("the database mount is being removed")
        return plugin

    def replace_plugin(self, name: str, plugin: Plugin | None) -> None:
        """Install ``plugin`` for ``name`` (None: forget it); the old one is closed."""
        with self._lock:
            old = self._plugins.pop(name, None)
            if plugin is not None:
                self._plugins[name] = plugin
        if old is not None and old is not plugin:
            old.close()

    def serialized(self, name: str) -> AbstractContextManager[None]:
        """One change at a time on config ``name`` across the node's processes (Vault's
        per-plugin mutex): concurrent GRANTs on one table fail in PostgreSQL with
        "tuple concurrently updated", and Vault's single process never runs two."""
        return node_lock(f"database:{self.ctx.mount.uuid}:{name}")

    # -- lifecycle --------------------------------------------------------------------

    def invalidate(self, key: str) -> None:
        if key.startswith(CONFIG):
            self.replace_plugin(key[len(CONFIG):], None)

    def periodic(self) -> None:
        from .path_rotate import rotate_due

        rotate_due(self)

    def cleanup(self) -> None:
        with self._lock:
            self._closed = True
            plugins, self._plugins = list(self._plugins.values()), {}
        for plugin in plugins:
            plugin.close()


def database_factory(ctx: MountContext) -> DatabaseBackend:
    return DatabaseBackend(ctx)


__all__ = ["DatabaseBackend", "database_factory"]
