"""The LDAP auth method (Vault's ``builtin/credential/ldap``): people log in with their
directory password; directory groups (and local ``users/<u>`` entries) map to policies
through ``groups/<g>``.

One file per path group: ``path_config`` (config), ``path_groups`` (groups/ and users/),
``path_login`` (login/<username>, and renewal of its tokens); ``client`` talks to the
directory (ldap3), ``config`` holds the config entry.

Storage (the mount's own view): ``config``, ``group/<name>``, ``user/<name>``. Each
process caches the parsed config; a write elsewhere reaches it as
``invalidate("config")``.
"""

from __future__ import annotations

import threading

from strongroom.auth.login_guard import LoginGuard
from strongroom.core.logical import SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.framework import PathBackend

from .client import BIND_FAILED
from .config import LdapConfig

CONFIG_KEY = "config"


class LdapBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        from . import path_config, path_groups, path_login

        self.ctx = ctx
        # Refused while backing off with the same text as a wrong password.
        self.guard = LoginGuard(ctx, BIND_FAILED)
        self._lock = threading.Lock()
        self._config: LdapConfig | None = None
        self._config_loaded = False
        paths = [*path_config.paths(self), *path_groups.paths(self),
                 *path_login.paths(self)]
        super().__init__(paths, SpecialPaths(unauthenticated=("login/*",),
                                             seal_wrapped=("config",)))
        self.renew_login = path_login.renew_login_for(self)

    def stored_config(self) -> LdapConfig | None:
        """The written config, or None before the first write (cached per process)."""
        with self._lock:
            if not self._config_loaded:
                raw = self.ctx.storage.get(CONFIG_KEY)
                self._config = LdapConfig.from_json(raw) if raw is not None else None
                self._config_loaded = True
            return self._config

    def config(self) -> LdapConfig:
        """What logins use: the written config, else Vault's defaults (a fresh mount
        reads, and tries to log in, with ``url=ldap://127.0.0.1``)."""
        return self.stored_config() or LdapConfig()

    def put_config(self, cfg: LdapConfig) -> None:
        self.ctx.storage.put(CONFIG_KEY, cfg.to_json())
        with self._lock:
            self._config, self._config_loaded = cfg, True

    def invalidate(self, key: str) -> None:
        if key == CONFIG_KEY:
            with self._lock:
                self._config, self._config_loaded = None, False


def ldap_factory(ctx: MountContext) -> LdapBackend:
    return LdapBackend(ctx)
