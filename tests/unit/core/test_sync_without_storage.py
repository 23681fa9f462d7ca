"""A change of HA status alone reaches a worker without a storage read.

A node cut off from Consul steps down (its watchdog) and publishes its new status;
if applying that status reread the mount table (or the seal config), every request,
sys/health included, waited on the storage the node could not reach.
"""

from __future__ import annotations

from strongroom.config import dev_config
from strongroom.node.shared import Slot
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import build_node


class CountingBackend(InmemBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)


def test_a_status_change_is_applied_without_reading_storage() -> None:
    physical = CountingBackend()
    node = build_node(dev_config(), physical=physical)
    keys = node.coordinator.initialize(1, 1)["keys_base64"]
    node.coordinator.unseal(keys[0])
    assert node.core.sync().sealed is False
    before = physical.reads
    node.core.counters.bump(Slot.SEAL)  # what publishing a new HA status does
    snap = node.core.sync()
    assert snap.sealed is False and snap.initialized is True
    assert physical.reads == before
    # A real seal still takes effect.
    node.coordinator.seal()
    assert node.core.sync().sealed is True
