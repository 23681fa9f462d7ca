"""sys/internal/ui/mounts[/<path>]: which mounts a caller may learn about.

Both endpoints are unauthenticated in Vault (``bao kv`` asks the second before
every command, to learn the mount and its KV version), so they decide for
themselves what a caller sees, as Vault's ``pathInternalUIMountsRead`` and
``pathInternalUIMountRead`` do:

* no token: only mounts tuned ``listing_visibility = "unauth"``, and of those
  only type, description and options (no path-derived ids, uuid or accessor);
* a token: those, plus every mount the token has any capability under
  (:meth:`strongroom.policy.acl.ACL.has_mount_access`), in full;
* a token that is not valid: 403, never the anonymous answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.core.request import Operation, Request, Response
from strongroom.core.sys.auth import auth_view
from strongroom.core.sys.mounts import mount_view
from strongroom.errors import PermissionDeniedError
from strongroom.framework import FieldData, Path

if TYPE_CHECKING:
    from strongroom.core.core import Core
    from strongroom.policy.acl import ACL

UNAUTH = "unauth"


def _preflight_denied(path: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        "preflight capability check returned 403, please ensure client's policies grant "
        f'access to path "{path}"')


def _caller_acl(core: Core, req: Request) -> ACL | None:
    """The caller's ACL; None without a token. A token given but not valid is refused."""
    if not req.token:
        return None
    if req.token_entry is None:
        raise PermissionDeniedError()
    return core.acl_for(req.token_entry)


def _secret_mounts(core: Core) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every secrets mount (sys/ and identity/ included): path -> (config, full view)."""
    return {e.path: (e.config or {}, mount_view(e, core)) for e in core.mounts.secrets.entries()}


def _auth_mounts(core: Core) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {e.path: (e.config or {}, auth_view(e, core)) for e in core.mounts.auth.entries()}


def _anonymous_view(view: dict[str, Any]) -> dict[str, Any]:
    return {"type": view["type"], "description": view["description"],
            "options": view["options"]}


def _listing(acl: ACL | None, mounts: dict[str, tuple[dict[str, Any], dict[str, Any]]],
             prefix: str) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for path, (config, view) in mounts.items():
        if acl is None:
            if config.get("listing_visibility") == UNAUTH:
                shown[path] = _anonymous_view(view)
        elif config.get("listing_visibility") == UNAUTH or acl.has_mount_access(prefix + path):
            shown[path] = view
    return shown


def ui_mount_paths(core: Core) -> list[Path]:
    def list_mounts(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        acl = _caller_acl(core, req)
        return Response(data={"secret": _listing(acl, _secret_mounts(core), ""),
                              "auth": _listing(acl, _auth_mounts(core), "auth/")})

    def read_mount(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        # The token is judged first: without a valid one, unknown and known mounts
        # get the same answer, so the endpoint cannot be used to probe for mounts.
        acl = _caller_acl(core, req)
        if acl is None:
            raise PermissionDeniedError()
        path = m.group("path")
        path = (path if path.endswith("/") else path + "/").removeprefix("/")
        found = _find_mount(core, path)
        if found is None:
            raise _preflight_denied(path)
        access_path, view = found
        if not acl.has_mount_access(access_path):
            raise _preflight_denied(path)
        return Response(data=view)

    return [
        Path("internal/ui/mounts", {Operation.READ: list_mounts}),
        Path("internal/ui/mounts/(?P<path>.+)", {Operation.READ: read_mount}),
    ]


def _find_mount(core: Core, path: str) -> tuple[str, dict[str, Any]] | None:
    """The mount serving ``path``: (its path for the ACL walk, its view with ``path``)."""
    if path.startswith("auth/"):
        auth = core.mounts.auth.match(path[len("auth/"):])
        if auth is None:
            return None
        # Vault reports an auth mount's path without the auth/ table prefix.
        return "auth/" + auth.path, {**auth_view(auth, core), "path": auth.path}
    entry = core.mounts.secrets.match(path)
    if entry is None:
        return None
    return entry.path, {**mount_view(entry, core), "path": entry.path}
