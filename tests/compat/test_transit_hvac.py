"""hvac's transit calls against OpenBao and Strongroom dev servers, side by side.

The client most Python applications use: each call's outcome (hvac's return shape, or
the exception class and its errors) must be the same on both servers, and what one
call produced must work in the next (encrypt, rewrap, decrypt; data keys).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest

from tests.support import requires
from tests.support.servers import bao_dev_server, strongroom_dev_server

IGNORED = {"mount_type", "request_id"}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items()) if k not in IGNORED}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, hvac.Client]]:
    requires.bao()
    with strongroom_dev_server(tmp_path_factory.mktemp("sr")) as ours, \
            bao_dev_server(tmp_path_factory.mktemp("bao")) as theirs:
        pair = {"openbao": hvac.Client(theirs.url, token="root"),
                "strongroom": hvac.Client(ours.url, token="root")}
        for client in pair.values():
            client.sys.enable_secrets_engine("transit")
        yield pair


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except hvac.exceptions.VaultError as exc:
        return type(exc).__name__, shape(exc.errors) if "request_id" in str(
            exc.errors) else exc.errors
    if hasattr(result, "status_code"):  # a requests.Response: 204
        return result.status_code
    return shape(result)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_hvac_transit_scenario(clients: dict[str, hvac.Client]) -> None:
    def scenario(c: hvac.Client) -> list[Any]:
        t = c.secrets.transit
        seen = [outcome(lambda: t.create_key("app")),
                outcome(lambda: t.create_key("ed", key_type="ed25519")),
                outcome(lambda: t.read_key("app")),
                outcome(lambda: t.list_keys()),
                outcome(lambda: t.update_key_configuration("app", deletion_allowed=True)),
                outcome(lambda: t.rotate_key("app"))]
        ct = t.encrypt_data("app", plaintext=b64("hello"))["data"]["ciphertext"]
        old = t.encrypt_data("app", plaintext=b64("old"), key_version=1)["data"]["ciphertext"]
        rewrapped = t.rewrap_data("app", ciphertext=old)["data"]["ciphertext"]
        seen += [ct[:9], old[:9], rewrapped[:9],
                 t.decrypt_data("app", ciphertext=ct)["data"]["plaintext"],
                 t.decrypt_data("app", ciphertext=rewrapped)["data"]["plaintext"]]
        seen.append(outcome(lambda: t.encrypt_data(
            "app", batch_input=[{"plaintext": b64("a")}, {"plaintext": b64("b")}])))
        seen.append(outcome(lambda: t.encrypt_data(  # a failed item: 400, hvac raises
            "app", batch_input=[{"plaintext": b64("a")}, {"plaintext": "!"}])))
        key = t.generate_data_key("app", key_type="plaintext")["data"]
        seen.append(t.decrypt_data("app", ciphertext=key["ciphertext"])["data"]["plaintext"]
                    == key["plaintext"])
        seen += [outcome(lambda: t.encrypt_data("app", plaintext="!!")),
                 outcome(lambda: t.decrypt_data("app", ciphertext="vault:v9:AAAA")),
                 outcome(lambda: t.decrypt_data("nope", ciphertext=ct)),
                 outcome(lambda: t.create_key("bad", key_type="nope")),
                 outcome(lambda: t.update_key_configuration(
                     "app", min_decryption_version=2, min_encryption_version=2)),
                 outcome(lambda: t.trim_key("app", min_version=2)),
                 outcome(lambda: t.decrypt_data("app", ciphertext=old)),
                 outcome(lambda: t.read_key("app")),
                 outcome(lambda: t.delete_key("app")),
                 outcome(lambda: t.read_key("app"))]
        return seen
    seen = {kind: scenario(client) for kind, client in clients.items()}
    for i, (ours, theirs) in enumerate(zip(seen["strongroom"], seen["openbao"], strict=True)):
        assert ours == theirs, (i, ours, theirs)
