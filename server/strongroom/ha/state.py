"""What a node knows about leadership, as published to its workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LEADER_PREFIX = "core/leader/"
CLUSTER_TLS_PATH = "core/cluster/tls"


@dataclass(frozen=True)
class HAStatus:
    enabled: bool = False
    active: bool = False
    node_id: str = ""
    leader_id: str = ""
    leader_api_addr: str = ""
    leader_cluster_addr: str = ""
    active_since: str = "0001-01-01T00:00:00Z"
    session: str = ""  # the active node's lock session: its writes are fenced on it

    @property
    def standby(self) -> bool:
        return self.enabled and not self.active

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, doc: dict[str, Any] | None) -> HAStatus:
        return cls(**doc) if doc else cls()
