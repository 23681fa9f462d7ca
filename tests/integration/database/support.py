"""An in-process Strongroom node with the database engine mounted, for the engine tests
against real servers: a movable clock (periodic rotation) and a recording registrar
standing in for the expiration manager where a test drives revoke/renew itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import falcon.testing

from strongroom.config import dev_config
from strongroom.core.logical import Secret, SecretType
from strongroom.engines.database import DatabaseBackend
from strongroom.wsgi import build_node
from tests.support.nodes import DevNode


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingRegistrar:
    """Stands in for the expiration manager: keeps each lease's Secret."""

    def __init__(self) -> None:
        self.leases: dict[str, Secret] = {}

    def register(self, req: Any, mount: Any, secret: Secret) -> str:
        lease_id = f"{req.path}/{len(self.leases)}"
        self.leases[lease_id] = secret
        return lease_id

    def register_auth(self, *args: Any) -> None:
        return None


@dataclass
class EngineNode(DevNode):
    clock: Clock = field(default_factory=Clock)
    registrar: RecordingRegistrar | None = None

    def backend(self, path: str = "database") -> DatabaseBackend:
        backend = self.node.core.mounts.secrets.backend(path)
        assert isinstance(backend, DatabaseBackend)
        return backend

    def creds_type(self, path: str = "database") -> SecretType:
        kind = self.backend(path).secret_type("creds")
        assert kind is not None
        return kind

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.call(method, path, **kwargs)
        assert resp.status_code in (200, 204), (method, path, resp.status_code, resp.text)
        return resp.json if resp.status_code == 200 else None


def engine_node(registrar: bool = True) -> EngineNode:
    """A dev node (root token "root") with the database engine at database/."""
    clock = Clock()
    node = build_node(dev_config(), dev=True, clock=clock)
    result = node.coordinator.initialize(1, 1, "root")
    node.coordinator.unseal(result["keys"][0])
    d = EngineNode(node, falcon.testing.TestClient(node.app), result["root_token"], clock)
    if registrar:
        d.registrar = RecordingRegistrar()
        node.core.leases = d.registrar
    d.ok("POST", "sys/mounts/database", json={"type": "database"})
    return d


PG_CREATE = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
             "VALID UNTIL '{{expiration}}'; GRANT SELECT ON visible TO \"{{name}}\";")
MY_CREATE = ("CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; "
             "GRANT SELECT ON app.visible TO '{{name}}'@'%';")
