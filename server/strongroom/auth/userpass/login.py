"""userpass login (``login/<u>``) and the renewal of the tokens it issued (Vault's
path_login.go).

Existence is never revealed: an unknown user, a user without a password hash, a
wrong password and a login from outside the user's bound CIDRs all answer the same
400 "invalid username or password", after the same bcrypt work (a dummy hash of the
same cost stands in for a missing one) and the same login-guard steps. OpenBao
differs in two places, on purpose here: it answers a correct password from outside
the bound CIDRs with 403 "permission denied" (which confirms the password), and it
skips the hash check for a user without a hash.
"""

from __future__ import annotations

import re
import threading

import bcrypt

from strongroom.auth.login_guard import LoginGuard
from strongroom.auth.tokenutil import cidrs_allow
from strongroom.core.logical import Alias, Auth, SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.core.token_roles import sanitize_policies
from strongroom.errors import StrongroomError
from strongroom.framework import Field, FieldData, Path

from .users import BCRYPT_MAX, HASH_COST, USERNAME, UserStore

FAILED = "invalid username or password"
_dummy: dict[str, bytes] = {}
_dummy_lock = threading.Lock()


def _dummy_hash() -> bytes:
    """A hash of the cost real ones have, made once per process."""
    with _dummy_lock:
        if "hash" not in _dummy:
            _dummy["hash"] = bcrypt.hashpw(b"dummy", bcrypt.gensalt(HASH_COST))
        return _dummy["hash"]


def _verify(password: str, stored: str | None) -> bool:
    """bcrypt against ``stored``, or the same work against the dummy hash (False)."""
    secret = password.encode()
    target = stored.encode() if stored else _dummy_hash()
    if len(secret) > BCRYPT_MAX:
        # Never a valid password (Go's bcrypt refuses them); the same work all the same.
        bcrypt.checkpw(secret[:BCRYPT_MAX], target)
        return False
    try:
        return bcrypt.checkpw(secret, target) and stored is not None
    except ValueError:
        bcrypt.checkpw(secret, _dummy_hash())  # a corrupt stored hash: fail, same work
        return False


def equivalent_policies(a: list[str], b: list[str]) -> bool:
    """Vault's policyutil.EquivalentPolicies: the same set, ``default`` aside."""
    return ({p for p in sanitize_policies(a, False) if p != "default"}
            == {p for p in sanitize_policies(b, False) if p != "default"})


class LoginPaths:
    special_paths = SpecialPaths(unauthenticated=("login/*",))

    def __init__(self, ctx: MountContext, users: UserStore) -> None:
        self._users = users
        self.guard = LoginGuard(ctx, message=FAILED)

    def paths(self) -> list[Path]:
        return [Path(f"login/{USERNAME}", {Operation.UPDATE: self._login},
                     fields={"username": Field(), "password": Field()})]

    def _login(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        username = m.group("username").lower()
        password = str(data.get("password") or "")
        if not password:
            raise StrongroomError("missing password")  # Vault: a 500 with this text
        self.guard.before(req, username)
        user = self._users.get(username)
        stored = user.password_hash if user is not None and user.password_hash else None
        if not _verify(password, stored) or user is None:
            self.guard.failure(req, username)
        if not cidrs_allow(user.token.bound_cidrs, req.remote_addr):
            self.guard.failure(req, username)
        self.guard.success(req, username)
        auth = Auth(metadata={"username": username}, display_name=username,
                    alias=Alias(name=username))
        user.token.apply(auth, req.remote_addr)
        return Response(auth=auth)

    def renew_login(self, req: Request, auth: Auth) -> Auth | None:
        """Vault's pathLoginRenew: the user's current TTLs, while its policies are
        the token's; None (not renewed) once the user is gone."""
        username = auth.metadata.get("username", "")
        user = self._users.get(username) if username else None
        if user is None:
            return None
        if not equivalent_policies(user.token.policies, auth.policies):
            raise StrongroomError("policies have changed, not renewing")
        auth.period = user.token.period
        auth.ttl = user.token.ttl
        auth.max_ttl = user.token.max_ttl
        return auth
