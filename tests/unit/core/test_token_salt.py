"""The token salt and batch key are wiped on seal and never used once wiped (issue #9).

The memory scan of real processes is tests/integration/test_memory_after_seal.py;
these pin the lifecycle on an in-process node: what a seal wipes, that the node
works again after unseal, and that a wipe racing a use or a load fails closed.
"""

from __future__ import annotations

import falcon.testing
import pytest

from strongroom.config import dev_config
from strongroom.core.token_salt import SALT_KEY, SaltHolder
from strongroom.errors import SealedError
from strongroom.physical.inmem import InmemBackend
from strongroom.wsgi import build_node
from tests.support.nodes import DevNode


def node_and_share() -> tuple[DevNode, str]:
    node = build_node(dev_config(), dev=True)
    result = node.coordinator.initialize(1, 1, "root")
    node.coordinator.unseal(result["keys"][0])
    return DevNode(node, falcon.testing.TestClient(node.app), result["root_token"]), \
        result["keys"][0]


def batch_token(d: DevNode) -> str:
    resp = d.call("POST", "auth/token/create",
                  json={"type": "batch", "ttl": "1h", "policies": ["default"]})
    assert resp.status_code == 200, resp.text
    return str(resp.json["auth"]["client_token"])


def test_seal_wipes_salt_and_batch_key_then_unseal_reloads_them() -> None:
    d, share = node_and_share()
    batch = batch_token(d)
    assert d.call("GET", "auth/token/lookup-self", token=batch).status_code == 200
    held = d.node.core.tokens._secrets._current
    assert held is not None
    salt, batch_key = held._salt, held._batch_key
    assert any(salt) and any(batch_key)

    assert d.call("PUT", "sys/seal").status_code == 204
    assert held.wiped
    assert salt == bytearray(len(salt)) and batch_key == bytearray(len(batch_key))
    assert d.node.core.tokens._secrets._current is None
    with pytest.raises(SealedError):
        held.salted("hvs.anything")
    with pytest.raises(SealedError):
        held.open_batch(batch)

    # The salt lives (encrypted) in storage: after unseal the same tokens work again.
    d.node.coordinator.unseal(share)
    assert d.call("GET", "auth/token/lookup-self").status_code == 200
    assert d.call("GET", "auth/token/lookup-self", token=batch).status_code == 200


def test_forget_during_load_fails_closed() -> None:
    """A seal that lands while a worker reads the salt: the read is not cached or used."""
    storage = InmemBackend()
    storage.put(SALT_KEY, bytes(range(32)))
    holder = SaltHolder(storage)
    real_get = storage.get

    def get_then_seal(key: str) -> bytes | None:
        value = real_get(key)
        holder.forget()  # the seal watcher, in another thread, at the worst moment
        return value

    storage.get = get_then_seal  # type: ignore[method-assign]
    with pytest.raises(SealedError):
        holder.get()
    assert holder._current is None
    storage.get = real_get  # type: ignore[method-assign]
    assert holder.get().salted("x") == holder.get().salted("x")


def test_stored_salt_not_zeroed_when_storage_keeps_it() -> None:
    """The decrypted copy is zeroed only when nothing else holds it (a plain backend does)."""
    storage = InmemBackend()
    holder = SaltHolder(storage)
    first = holder.get().salted("hvs.token")  # creates and stores the salt
    for _ in range(2):
        holder.forget()
        assert holder.get().salted("hvs.token") == first
    assert storage.get(SALT_KEY) != bytes(32)
