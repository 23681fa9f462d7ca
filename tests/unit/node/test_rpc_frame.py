"""Coordinator frames: secrets are spliced in by hand, and the JSON still round-trips.

json.dumps leaves a quoted copy of every string it encodes in freed memory; the
frame builder keeps plain strings (shares, tokens) out of it (issue #9; the
process-memory proof is tests/integration/test_memory_after_seal.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.node import wire as rpc  # the frame builder moved to node/wire.py

DOCS: list[dict[str, Any]] = [
    {"ok": True, "result": {"keys": ["ab" * 33, "c"], "keys_base64": ["q+/=" * 11],
                            "root_token": "hvs.x", "n": None, "t": 3, "f": 1.5,
                            "odd": 'é"\\x\u0001', "nested": [1, [2, "zz"], {"k": "v v"}],
                            "empty": "", "quote": 'a"b'}},
    {"op": "seal", "args": {}},
    {"op": "unseal", "args": {"key": "  00ff  ", "reset": False}},
    {},
]


@pytest.mark.parametrize("doc", DOCS)
def test_frame_round_trips(doc: dict[str, Any]) -> None:
    frame = rpc._frame(doc, bytearray(b"KEYS"))
    size = rpc._LEN.unpack_from(frame)[0]
    assert json.loads(bytes(frame[rpc._LEN.size:rpc._LEN.size + size])) == doc
    assert frame[rpc._LEN.size + size:] == b"KEYS"


def test_plain_strings_never_reach_json(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = json.dumps

    def spy(obj: Any, **kwargs: Any) -> str:
        text = real(obj, **kwargs)
        seen.append(text)
        return text

    monkeypatch.setattr(rpc.json, "dumps", spy)
    rpc._frame({"ok": True, "result": {"keys": ["ab" * 33], "root_token": "hvs.secret"}},
               bytearray())
    assert seen and not any("abab" in t or "hvs.secret" in t for t in seen)
