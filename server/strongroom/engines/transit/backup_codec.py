"""The transit backup blob: base64 of keysutil's ``KeyData`` JSON, as OpenBao writes it.

``{"policy": <the key's policy document>, "archived_keys": {"keys": [...]}}``
followed by a newline (Go's ``json.Encoder``), standard base64 with padding. The
policy document is the stored one (``policy_json``'s exact keysutil JSON), spliced in
as bytes so nothing is re-encoded on the way out; the archive is the stored
``archive/<name>`` document. Decoding is strict: anything but a JSON object with a
``policy`` object is refused before any storage is touched, with a plain error (a
500, OpenBao's status for every restore failure; Go's words for bad base64).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .goencoding import Base64Error, b64decode
from .keytypes import TransitInternalError

EMPTY_ARCHIVE = b'{"keys":[]}'


def encode(policy_doc: bytes, archive_doc: bytes | None) -> str:
    """The backup string for a stored policy document and its archive document."""
    blob = (b'{"policy":' + policy_doc.strip() + b',"archived_keys":'
            + (archive_doc.strip() if archive_doc else EMPTY_ARCHIVE) + b"}\n")
    return base64.b64encode(blob).decode()


@dataclass
class Backup:
    name: str
    policy: dict[str, Any]  # the keysutil policy JSON object, big ints kept exact
    archive: dict[str, Any] | None  # {"keys": [...]} or None when the backup has none

    def policy_doc(self) -> bytes:
        return json.dumps(self.policy, separators=(",", ":")).encode()

    def archive_doc(self) -> bytes | None:
        if self.archive is None:
            return None
        return json.dumps(self.archive, separators=(",", ":")).encode()


def decode(backup_b64: str) -> Backup:
    """Parse a backup string; refused (TransitInternalError) when it is not one."""
    try:
        raw = b64decode(backup_b64)
    except Base64Error as exc:
        raise TransitInternalError(str(exc)) from None
    try:
        # The stdlib parser keeps big integers (RSA moduli, EC points) exact.
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TransitInternalError(_go_json_error(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransitInternalError(f"invalid backup: {exc}") from None
    if not isinstance(doc, dict):
        raise TransitInternalError("invalid backup: not a JSON object")
    policy = doc.get("policy")
    if not isinstance(policy, dict):
        raise TransitInternalError("invalid backup: no policy in the backup")
    archive = doc.get("archived_keys")
    if archive is not None and not (isinstance(archive, dict)
                                    and isinstance(archive.get("keys", []), list)):
        raise TransitInternalError("invalid backup: archived_keys is not a key archive")
    name = policy.get("name")
    if not isinstance(name, str):
        raise TransitInternalError("invalid backup: the policy has no name")
    return Backup(name=name, policy=policy, archive=archive)


def _go_json_error(exc: json.JSONDecodeError) -> str:
    """encoding/json's text for the two mistakes a non-JSON blob makes first."""
    pos, doc = exc.pos, exc.doc
    char = doc[pos] if pos < len(doc) else ""
    if exc.msg == "Expecting value" and not char:
        return "unexpected end of JSON input"
    if char.isprintable() and char not in "'\\" and len(char) == 1:
        if exc.msg == "Expecting value":
            return f"invalid character '{char}' looking for beginning of value"
        if exc.msg.startswith("Expecting property name"):
            return f"invalid character '{char}' looking for beginning of object key string"
    return f"invalid backup: {exc}"
