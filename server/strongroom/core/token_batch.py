"""Batch tokens: the token *is* its entry, encrypted; nothing is ever stored.

As in Vault, a batch token carries its policies, path, TTL and parent inside an
AES-256-GCM blob, so it costs no storage write to create and no read to use
(beyond its parent's liveness). It cannot be renewed, revoked on its own or used
to create tokens, and it has no accessor; it dies with its TTL or its parent.
The key is the token store's bytearray (token_salt.py); the AES-GCM context is
made per call, so none outlives the key's wipe on seal.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BATCH_TOKEN_PREFIX = "hvb."  # noqa: S105 - a public prefix, not a secret
BATCH_TYPE = "batch"
MAX_BATCH_TOKEN_LENGTH = 8192
_AAD = b"strongroom batch token v1"
_NONCE = 12
# Short keys keep the token small: it travels in every request header.
_FIELDS = {
    "p": "policies", "a": "path", "c": "creation_time", "t": "ttl", "d": "display_name",
    "m": "meta", "r": "role", "e": "entity_id", "h": "parent_hash",
}
# Sealed only when set (a token stays small), read as empty when absent (tokens made
# before they existed): the addresses allowed to use the token.
_OPTIONAL = {"b": ("bound_cidrs", list)}


def is_batch_token(token: str) -> bool:
    return token.startswith(BATCH_TOKEN_PREFIX)


def seal_batch(key: bytes | bytearray, entry: dict[str, Any]) -> str:
    """Encrypt the fields of ``entry`` that a batch token carries into a token string."""
    doc = {short: entry[name] for short, name in _FIELDS.items()}
    for short, (name, _empty) in _OPTIONAL.items():
        if entry.get(name):
            doc[short] = entry[name]
    plain = json.dumps(doc, separators=(",", ":")).encode()
    nonce = os.urandom(_NONCE)
    blob = nonce + AESGCM(key).encrypt(nonce, plain, _AAD)
    return BATCH_TOKEN_PREFIX + base64.urlsafe_b64encode(blob).decode().rstrip("=")


def open_batch(key: bytes | bytearray, token: str) -> dict[str, Any] | None:
    """The fields sealed in ``token``, or None when it is not one of ours (or tampered)."""
    if not is_batch_token(token) or len(token) > MAX_BATCH_TOKEN_LENGTH:
        return None
    text = token[len(BATCH_TOKEN_PREFIX):]
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(blob) <= _NONCE:
        return None
    try:
        plain = AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _AAD)
    except InvalidTag:
        return None
    doc = json.loads(plain)
    out = {name: doc[short] for short, name in _FIELDS.items()}
    for short, (name, empty) in _OPTIONAL.items():
        out[name] = doc.get(short) or empty()
    return out
