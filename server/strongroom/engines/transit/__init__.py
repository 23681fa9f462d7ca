"""The transit secrets engine (Vault's ``transit``): encryption as a service.

Key rings are Vault's keysutil Policies (policy.py), stored in keysutil's JSON
(policy_json.py) so that OpenBao backups restore here and the reverse, and cached
decoded per process (keystore.py). One module per path group, each exposing
``paths(backend)``; the order below is the routing order (first match wins).

Lifecycle: ``invalidate`` (a storage key changed in another process or node) drops the
cached ring; ``periodic`` (the owner process, active node) rotates keys whose
``auto_rotate_period`` has passed; ``cleanup`` forgets every cached key.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from types import ModuleType

from strongroom.core.mounts import MountContext
from strongroom.core.request import Request, Response
from strongroom.errors import StrongroomError, multierror
from strongroom.framework import Path, PathBackend

from .keystore import KeyStore
from .keytypes import TransitInternalError

log = logging.getLogger(__name__)

# framework.GenericNameRegex("name")
NAME = r"(?P<name>\w(?:[\w.@-]*\w)?)"

# Routing order; a module another helper has not written yet is skipped (its file
# appears with its paths() when it lands).
PATH_MODULES = (
    "path_keys", "path_config", "path_rotate", "path_trim",
    "path_encrypt", "path_decrypt", "path_rewrap", "path_datakey", "path_cache_config",
    "path_sign_verify", "path_hmac", "path_hash", "path_random",
    "path_export", "path_backup", "path_restore", "path_wrapping_key", "path_import",
)


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise  # a missing dependency inside the module is a real error
        return None


class TransitBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self.keys = KeyStore(ctx.storage, f"transit:{ctx.mount.uuid}")
        paths: list[Path] = []
        for name in PATH_MODULES:
            module = _module(name)
            if module is not None:
                paths.extend(module.paths(self))
        super().__init__(paths)

    def handle(self, req: Request, rel_path: str) -> Response | None:
        try:
            return super().handle(req, rel_path)
        except TransitInternalError as exc:
            raise StrongroomError(multierror(exc.message)) from None

    def now(self) -> datetime:
        return self.ctx.clock()

    def invalidate(self, key: str) -> None:
        self.keys.invalidate(key)

    def periodic(self) -> None:
        from .path_rotate import auto_rotate

        auto_rotate(self)

    def cleanup(self) -> None:
        self.keys.clear()


def transit_factory(ctx: MountContext) -> TransitBackend:
    return TransitBackend(ctx)


__all__ = ["NAME", "PATH_MODULES", "TransitBackend", "transit_factory"]
