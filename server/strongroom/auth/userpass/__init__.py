"""The userpass auth method (Vault's ``builtin/credential/userpass``): users with a
bcrypt password hash and the common ``token_*`` parameters.

Paths: ``users/`` (LIST), ``users/<u>`` (CRUD), ``users/<u>/password``,
``users/<u>/policies`` (users.py); ``login/<u>`` and the login token's renewal
(login.py). Users are stored under ``user/<lowercased name>`` in the mount's view.
"""

from __future__ import annotations

from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import NoRouteError, NotFoundError, multierror
from strongroom.framework import PathBackend

from .login import LoginPaths
from .users import UserStore, user_paths


class UserpassBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self.users = UserStore(ctx.storage)
        self.login = LoginPaths(ctx, self.users)
        super().__init__(user_paths(self.users) + self.login.paths(),
                         special_paths=self.login.special_paths)
        # The optional AuthRenew hook the token store calls (core/token_renew.py).
        self.renew_login = self.login.renew_login

    def handle(self, req: Request, rel_path: str) -> Response | None:
        if req.operation is Operation.LIST and not rel_path.endswith("/"):
            rel_path += "/"  # Vault's router lists a path with a trailing slash
        try:
            return super().handle(req, rel_path)
        except NoRouteError:
            # A mounted method's unknown path: Vault's framework says "unsupported path".
            raise NotFoundError(multierror("unsupported path")) from None


def userpass_factory(ctx: MountContext) -> UserpassBackend:
    return UserpassBackend(ctx)


__all__ = ["UserpassBackend", "userpass_factory"]
