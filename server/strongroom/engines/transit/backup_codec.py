"""The transit backup blob: base64 of keysutil's ``KeyData`` JSON, as OpenBao writes it.

``{"policy": <the key's policy document>, "archived_keys": {"keys": [...]}}``
followed by a newline (Go's ``json.Encoder``), standard base64 with padding. The
policy document is the stored one (``policy_json``'s exact keysutil JSON), spliced in
as bytes so nothing is re-encoded on the way out; the archive is the stored
``archive/<name>`` document. Decoding is strict: anything but a JSON object with a
``policy`` object is refused with a 400 before any storage is touched.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from strongroom.errors import BadRequestError

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
    """Parse a backup string; a 400 with Go's kind of message when it is not one."""
    try:
        raw = base64.b64decode(backup_b64.encode(), validate=True)
    except (binascii.Error, ValueError):
        # Go's base64 names the first bad byte; "at input byte N" is its wording.
        raise BadRequestError(
            f"illegal base64 data at input byte {_first_bad_b64(backup_b64)}") from None
    try:
        # The stdlib parser keeps big integers (RSA moduli, EC points) exact.
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"invalid backup: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequestError("invalid backup: not a JSON object")
    policy = doc.get("policy")
    if not isinstance(policy, dict):
        raise BadRequestError("invalid backup: no policy in the backup")
    archive = doc.get("archived_keys")
    if archive is not None and not (isinstance(archive, dict)
                                    and isinstance(archive.get("keys", []), list)):
        raise BadRequestError("invalid backup: archived_keys is not a key archive")
    name = policy.get("name")
    if not isinstance(name, str):
        raise BadRequestError("invalid backup: the policy has no name")
    return Backup(name=name, policy=policy, archive=archive)


def _first_bad_b64(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch not in alphabet and ch != "=":
            return i
    # Only the length or the padding is wrong: Go reports the end of the input.
    return len(text) - len(text) % 4 if len(text) % 4 else max(len(text) - 1, 0)
