"""The AppRole auth method (Vault's ``approle``): machines log in with a role ID and a
SecretID and get a token carrying the role's ``token_*`` parameters.

One file per path group: ``path_role`` (roles and their role IDs),
``path_role_fields`` (a role's one-field endpoints), ``path_secret_id``
(SecretIDs: generated, custom, lookup, destroy, accessors), ``path_login`` (login
and the renewal of its tokens), ``tidy`` (``tidy/secret-id`` and the periodic pass);
``store`` is the storage layout and its locks.

Nothing is cached per process but the mount's salt (dropped on ``invalidate``), so a
change made by one worker is seen by the next request on any other.
"""

from __future__ import annotations

import re

from strongroom.auth.login_guard import LoginGuard
from strongroom.core.logical import Auth, SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.framework import FieldData, Path, PathBackend

from .path_login import INVALID
from .store import ACCESSOR_LOCAL, SALT, SECRET_LOCAL, Store
from .tidy import Tidier

__all__ = ["AppRoleBackend", "approle_factory"]


class AppRoleBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        from . import path_login, path_role, path_role_fields, path_secret_id

        self.ctx = ctx
        self.store = Store(ctx.storage, ctx.mount.uuid)
        # Refusals while backing off read as a wrong role ID or SecretID does.
        self.guard = LoginGuard(ctx, INVALID)
        self.tidier = Tidier(self.store, ctx.clock)

        def tidy(req: Request, data: FieldData, m: re.Match[str]) -> Response:
            return self.tidier.request()

        super().__init__(
            [*path_login.paths(self), *path_secret_id.paths(self), *path_role.paths(self),
             *path_role_fields.paths(self), Path("tidy/secret-id", {Operation.UPDATE: tidy})],
            special_paths=SpecialPaths(unauthenticated=("login",),
                                       local=(SECRET_LOCAL + "*", ACCESSOR_LOCAL + "*")))

    def renew_login(self, req: Request, auth: Auth) -> Auth:
        from .path_login import renew_login

        return renew_login(self, req, auth)

    def invalidate(self, key: str) -> None:
        if key == SALT:
            self.store.forget_salt()

    def periodic(self) -> None:
        # Vault's PeriodicFunc: expired SecretIDs are removed within a minute or so.
        self.tidier.periodic()

    def cleanup(self) -> None:
        self.store.forget_salt()


def approle_factory(ctx: MountContext) -> AppRoleBackend:
    return AppRoleBackend(ctx)
