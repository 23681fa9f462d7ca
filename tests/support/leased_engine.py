"""A test-only leased secrets engine, mounted through the registry like a real one.

``creds/<role>`` hands out a made-up user (its lease keeps the username in
``internal``); ``revoke`` records it, or fails while ``failures`` says so (to drive the
expiration manager's retries); ``renew`` returns the role's TTL. Used until the
database engine exists; its own break-glass test runs on real database users.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from strongroom import registry
from strongroom.core.logical import Secret, SecretType
from strongroom.core.mounts import MountContext
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Path, PathBackend

ENGINE_TYPE = "leasetest"


@dataclass
class Ledger:
    """What every instance of the engine did (one per mount, shared by the test)."""

    users: set[str] = field(default_factory=set)  # live
    revoked: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    failures: int = 0  # the next revocations that fail
    counter: itertools.count[int] = field(default_factory=itertools.count)


class LeasedEngine(PathBackend):
    def __init__(self, ctx: MountContext, ledger: Ledger) -> None:
        self._ledger = ledger
        super().__init__(
            [Path("creds/(?P<role>[^/]+)", {Operation.READ: self._creds},
                  {"ttl": Field(FieldType.DURATION, 0), "max_ttl": Field(FieldType.DURATION, 0)})],
            secret_types=[SecretType("creds", revoke=self._revoke, renew=self._renew)],
        )

    def _creds(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        user = f"{m.group('role')}-{next(self._ledger.counter)}"
        self._ledger.users.add(user)
        ttl, max_ttl = int(data.get("ttl")), int(data.get("max_ttl"))
        return Response(secret=Secret("creds", {"username": user, "password": "pw-" + user},
                                      internal={"username": user}, ttl=ttl, max_ttl=max_ttl))

    def _revoke(self, secret: Secret) -> None:
        if self._ledger.failures > 0:
            self._ledger.failures -= 1
            raise StrongroomError("the test database is unreachable")
        user = secret.internal["username"]
        self._ledger.users.discard(user)
        self._ledger.revoked.append(user)

    def _renew(self, secret: Secret, increment: int) -> Secret:
        self._ledger.renewed.append(secret.internal["username"])
        return Secret(secret.type, {}, internal=secret.internal, ttl=secret.ttl,
                      renewable=True)


@contextmanager
def leased_engine() -> Iterator[Ledger]:
    """Make ``leasetest`` mountable (``sys/mounts/<p> {"type": "leasetest"}``)."""
    ledger = Ledger()
    registry.SECRETS_ENGINES[ENGINE_TYPE] = lambda ctx: LeasedEngine(ctx, ledger)
    try:
        yield ledger
    finally:
        registry.SECRETS_ENGINES.pop(ENGINE_TYPE, None)
