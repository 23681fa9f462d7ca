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
import re
from datetime import datetime
from types import ModuleType

from strongroom.core.mounts import MountContext
from strongroom.core.request import Request, Response
from strongroom.errors import NoRouteError, StrongroomError, multierror, no_route_message
from strongroom.framework import FieldData, Path, PathBackend

from .keystore import KeyStore
from .keytypes import TransitInternalError

log = logging.getLogger(__name__)

# framework.GenericNameRegex("name"): Go's \w is ASCII ([0-9A-Za-z_]; Python's is
# Unicode, which let look-alike names in), and the name has no '@' (that is
# GenericNameWithAtRegex, which transit does not use).
WORD = "[0-9A-Za-z_]"
NAME = rf"(?P<name>{WORD}(?:[{WORD[1:-1]}.-]*{WORD})?)"

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


def _first_segment(pattern: str) -> str | None:
    """The literal first segment every path ``pattern`` matches starts with, or None."""
    match = _LEADING.match(pattern)
    if match is None:
        return None
    rest = pattern[match.end():]
    if rest == "" or rest.startswith(("/", "(/", "(?:/")):
        return match.group()
    return None


_LEADING = re.compile(r"[A-Za-z0-9_-]+")


class TransitBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self.keys = KeyStore(ctx.storage, f"transit:{ctx.mount.uuid}")
        self.auto_rotate_after = 0.0  # time.monotonic() of the next auto-rotation scan
        paths: list[Path] = []
        for name in PATH_MODULES:
            module = _module(name)
            if module is not None:
                paths.extend(module.paths(self))
        super().__init__(paths)
        # Routing by first segment: an encrypt tries one regex, not every path before it.
        # Paths without a literal first segment are tried everywhere, in their order.
        anywhere = [(i, p) for i, p in enumerate(paths) if _first_segment(p.pattern) is None]
        self._routes: dict[str, list[Path]] = {}
        for seg in {s for p in paths if (s := _first_segment(p.pattern)) is not None}:
            chosen = [(i, p) for i, p in enumerate(paths) if _first_segment(p.pattern) == seg]
            self._routes[seg] = [p for _, p in sorted(chosen + anywhere, key=lambda t: t[0])]
        self._anywhere = [p for _, p in anywhere]

    def _find(self, rel_path: str) -> tuple[Path, re.Match[str]]:
        for path in self._routes.get(rel_path.split("/", 1)[0], self._anywhere):
            match = path.regex.match(rel_path)
            if match is not None:
                return path, match
        raise NoRouteError(no_route_message(rel_path))

    def key_exists(self, req: Request, data: FieldData, m: re.Match[str]) -> bool:
        """The existence check of paths that may create the key named in the URL."""
        return self.keys.get(m.group("name")) is not None

    def existence(self, req: Request, rel_path: str) -> bool | None:
        # key_exists needs only the URL: skip decoding the body's fields twice.
        try:
            path, match = self._find(rel_path)
        except NoRouteError:
            return None
        if path.existence == self.key_exists:
            return self.keys.get(match.group("name")) is not None
        return super().existence(req, rel_path)

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
