"""Shared by the export/backup/import unit tests: a dev node with transit mounted."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.support.nodes import DevNode, dev_node
from tests.support.transit_byok import wrap_for_import


def transit_node() -> DevNode:
    d = dev_node()
    resp = d.call("POST", "sys/mounts/transit", json={"type": "transit"})
    assert resp.status_code == 204, resp.text
    return d


def ok(d: DevNode, method: str, path: str, body: Any = None) -> Any:
    resp = d.call(method, path, json=body)
    assert resp.status_code in (200, 204), (method, path, resp.status_code, resp.text)
    return resp.json["data"] if resp.status_code == 200 else None


def error(d: DevNode, method: str, path: str, body: Any = None,
          status: int = 400) -> str:
    """The single error text of a failed request (asserting its status)."""
    resp = d.call(method, path, json=body)
    assert resp.status_code == status, (method, path, resp.status_code, resp.text)
    errors = resp.json["errors"]
    assert len(errors) == 1, errors
    return str(errors[0])


def internal(d: DevNode, method: str, path: str, body: Any = None) -> str:
    """The text of a plain error (OpenBao's 500), go-multierror's wrapping checked and
    taken off."""
    text = error(d, method, path, body, status=500)
    match = re.fullmatch(r"1 error occurred:\n\t\* (.*)\n\n", text, flags=re.S)
    assert match is not None, text
    return match.group(1)


def wrapping_pem(d: DevNode) -> str:
    return str(ok(d, "GET", "transit/wrapping_key")["public_key"])


def import_key(d: DevNode, name: str, key_type: str, material: bytes, **options: Any) -> None:
    ok(d, "POST", f"transit/keys/{name}/import",
       {"ciphertext": wrap_for_import(wrapping_pem(d), material), "type": key_type, **options})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
