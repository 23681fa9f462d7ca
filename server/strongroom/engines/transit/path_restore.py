"""``restore[/<name>]``: a key back from a backup (OpenBao's or ours), ``force`` to replace.

As Vault: the name is the URL's, else the backup's; an existing key is replaced only
with ``force``; the backup's archive (or, when it has none, the one already stored
under that name) and the policy marked ``restore_info`` (time, latest version) are
stored, then the archive is adjusted as any persist does (``handle_archiving``).

Unlike OpenBao, which stores whatever decodes (a key type 99, a version it does not
have), the backup is checked before anything is written: a known type, every version
from ``min_decryption_version`` to ``latest_version`` present, each with key material
of its type's shape (sizes, an ed25519 seed matching its public half, EC points on
their curve, RSA keys that load). The archive and the policy are then written in one
storage transaction, so a refused or failed restore leaves the key as it was. A name
with "/" is refused, from the URL or the backup: such a name could reach the mount's
wrapping key (``import/wrapping-key``). Failures are plain errors (500s) with
OpenBao's words where it has some, as OpenBao answers them all.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.core.request import Operation, Request
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import NAME, backup_codec, policy_json
from .cipher import ed25519_public
from .keystore import ARCHIVE_PREFIX, POLICY_PREFIX, handle_archiving
from .keytypes import EC_CURVES, HMAC_MAX_KEY_SIZE, HMAC_MIN_KEY_SIZE, TransitInternalError
from .policy import BackupInfo, KeyEntry, KeyType, Policy

if TYPE_CHECKING:
    from . import TransitBackend

_VALID_NAME = re.compile(NAME)  # the URL's rule for key names, for the backup's name
_AEAD_SIZES = {KeyType.AES128_GCM96: 16, KeyType.AES256_GCM96: 32,
               KeyType.CHACHA20_POLY1305: 32}


def _placeholder(entry: KeyEntry) -> bool:
    """An archive slot below ``min_available_version`` (Go's zero KeyEntry)."""
    return (entry.private_key_missing() and not entry.public_key and entry.ec_x is None
            and entry.rsa_public_key is None and not entry.hmac_key)


def _check_entry(kt: KeyType, version: int, e: KeyEntry) -> None:
    """Refuse key material that cannot be this type's (a tampered or truncated backup)."""
    def bad(why: str) -> TransitInternalError:
        return TransitInternalError(f"invalid backup: key version {version}: {why}")

    if kt in _AEAD_SIZES:
        if e.key is None or len(e.key) != _AEAD_SIZES[kt]:
            raise bad(f"a {kt.api_name} key must be {_AEAD_SIZES[kt]} bytes")
    elif kt is KeyType.HMAC:
        if e.key is None or not HMAC_MIN_KEY_SIZE <= len(e.key) <= HMAC_MAX_KEY_SIZE:
            raise bad("an hmac key must be between 32 and 512 bytes")
    elif kt is KeyType.ED25519:
        try:
            public = base64.b64decode(e.public_key, validate=True)
        except (binascii.Error, ValueError):
            raise bad("the public key is not base64") from None
        if e.key:
            if len(e.key) != 64 or ed25519_public(e.key[:32]) != e.key[32:]:
                raise bad("the ed25519 private key is not a seed and its public key")
            if public and public != e.key[32:]:
                raise bad("the public key does not match the private key")
        elif len(public) != 32:
            raise bad("an ed25519 version needs its key or its public key")
    elif kt.is_ecdsa:
        if e.ec_x is None or e.ec_y is None:
            raise bad("an ecdsa version needs its public point")
        curve = EC_CURVES[kt]()
        try:
            if e.ec_d is not None:
                ec.EllipticCurvePrivateNumbers(e.ec_d, ec.EllipticCurvePublicNumbers(
                    e.ec_x, e.ec_y, curve)).private_key()
            else:
                ec.EllipticCurvePublicNumbers(e.ec_x, e.ec_y, curve).public_key()
        except ValueError:
            raise bad("the ecdsa key is not a valid key on its curve") from None
    elif kt.is_rsa:
        # policy_json loaded (and so checked) the numbers; one of the two must be there.
        if e.rsa_public() is None:
            raise bad("an rsa version needs its key or its public key")
    if e.hmac_key is not None and kt is not KeyType.HMAC and len(e.hmac_key) != 32:
        raise bad("the version's hmac key must be 32 bytes")


def check_restorable(p: Policy, archive: list[KeyEntry]) -> list[KeyEntry] | None:
    """Validate ``p`` and its archive, adjusting them as a persist would (in memory).

    Returns what ``handle_archiving`` returns (the archive to store, or None)."""
    if not _VALID_NAME.fullmatch(p.name):
        raise TransitInternalError("invalid backup: the key's name is not a valid key name")
    try:
        stored = handle_archiving(p, list(archive))
    except TransitInternalError as exc:
        # OpenBao's wording for a persist that fails during a restore.
        raise TransitInternalError(
            f'failed to restore the policy "{p.name}": {exc.message}') from None
    except (KeyError, IndexError) as exc:  # a version the document claims but lacks
        raise TransitInternalError(
            f'failed to restore the policy "{p.name}": key version {exc} is missing'
        ) from None
    for version in range(p.min_decryption_version, p.latest_version + 1):
        if version not in p.keys:
            raise TransitInternalError(
                f"invalid backup: key version {version} is missing")
    for version, entry in p.keys.items():
        if not 1 <= version <= p.latest_version:
            raise TransitInternalError(f"invalid backup: key version {version} is out of range")
        _check_entry(p.type, version, entry)
    for i, entry in enumerate(stored if stored is not None else archive):
        if not _placeholder(entry):
            _check_entry(p.type, p.min_available_version + i, entry)
    return stored


def paths(b: TransitBackend) -> list[Path]:
    def write(req: Request, data: FieldData, m: re.Match[str]) -> None:
        blob = data.get("backup") or ""
        force = bool(data.get("force"))
        if blob == "":
            raise BadRequestError("'backup' must be supplied")
        name = m.group("name") or ""
        if "/" in name:
            raise TransitInternalError("key names cannot be paths")
        backup = backup_codec.decode(blob)
        if name:
            backup.policy["name"] = name
        name = backup.name if not name else name
        if "/" in name:
            raise TransitInternalError("key names cannot be paths")
        try:
            p = policy_json.policy_from_doc(backup.policy)
            archive = (None if backup.archive is None else
                       [policy_json.entry_from_doc(e) for e in backup.archive.get("keys")
                        or []])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransitInternalError(f"invalid backup: {exc}") from None
        p.restore_info = BackupInfo(time=b.now(), version=p.latest_version)
        with b.keys.locked(name):
            if b.keys.read(name) is not None and not force:
                raise TransitInternalError(f'key "{name}" already exists')
            if archive is None:
                archive = b.keys.archive(name)  # as Vault: the stored one stays
            adjusted = check_restorable(p, archive)
            to_store = adjusted if adjusted is not None else archive
            b.ctx.storage.transaction([
                ("put", ARCHIVE_PREFIX + name, policy_json.archive_dumps(to_store)),
                ("put", POLICY_PREFIX + name, policy_json.dumps(p))])
            b.keys.invalidate(POLICY_PREFIX + name)

    fields = {"backup": Field(FieldType.STRING), "name": Field(FieldType.STRING),
              "force": Field(FieldType.BOOL, default=False)}
    return [Path(r"restore(?:/(?P<name>.+))?", {Operation.UPDATE: write}, fields)]
