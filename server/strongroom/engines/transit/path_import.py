"""BYOK: ``keys/<name>/import`` and ``keys/<name>/import_version``.

OpenBao's ``path_import.go`` and keysutil's ``ImportPublicOrPrivate``: the
``ciphertext`` is unwrapped with the mount's wrapping key (``byok.unwrap``) into the
raw key (AES, ChaCha20, HMAC) or a PKCS#8 private key (ECDSA, ed25519, RSA); without
a ciphertext, an asymmetric key may be imported from its PEM ``public_key`` alone (and
its private half later, with ``import_version`` and ``version``). An imported key is
marked ``Imported``; it rotates only with ``allow_rotation``; a derived one keeps kdf
0 (the HMAC-SHA256 counter KDF), as OpenBao leaves it. Convergent encryption cannot
be imported. Every version gets a fresh random HMAC key (an HMAC-type key's is the
key itself). Errors are OpenBao's, status and words: 400 for an unknown type or hash
function, plain errors (500s) for the rest, as the rest of this engine answers them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from strongroom.barrier.secmem import random_key, wipe
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import NAME, byok
from .goencoding import Base64Error, b64decode
from .keytypes import TransitInternalError
from .path_wrapping_key import wrapping_private_key
from .policy import KeyEntry, KeyType, Policy

if TYPE_CHECKING:
    from . import TransitBackend


def _material(b: TransitBackend, data: FieldData, type_name: str,
              private: bool) -> bytearray:
    """The key to import: unwrapped from ``ciphertext`` or the PEM ``public_key``."""
    if not private:
        if not KeyType(byok.TYPE_NUMBERS[type_name]).import_public_key_supported:
            raise TransitInternalError("provided type does not support public_key import")
        return bytearray((data.get("public_key") or "").encode())
    algo = byok.oaep_hash(data.get("hash_function") or "SHA256")
    try:
        ciphertext = b64decode(data.get("ciphertext") or "")
    except Base64Error as exc:
        raise TransitInternalError(str(exc)) from None
    return byok.unwrap(ciphertext, wrapping_private_key(b), algo)


def _fill_entry(entry: KeyEntry, type_name: str, material: bytearray, private: bool) -> None:
    parsed = byok.parse_asymmetric(type_name, bytes(material), private)
    if parsed.key:
        entry.key = parsed.key
    if parsed.ec_d is not None:
        entry.ec_d = parsed.ec_d
    entry.ec_x, entry.ec_y = parsed.ec_x, parsed.ec_y
    if parsed.rsa_key is not None:
        entry.rsa_key = parsed.rsa_key
    entry.rsa_public_key = parsed.rsa_public_key
    entry.public_key = parsed.public_key


def import_version(p: Policy, type_name: str, material: bytearray, private: bool,
                   now: datetime) -> None:
    """keysutil's ImportPublicOrPrivate, in memory: a new latest version (or the
    private half of a latest version imported public-only)."""
    if p.latest_version > 0 and private:
        latest = p.keys.get(p.latest_version)
        if latest is not None and latest.private_key_missing():
            try:
                import_private_for_version(p, type_name, p.latest_version, material)
                return
            except TransitInternalError:
                pass  # not that key's private half: import it as a new version
    entry = KeyEntry(time=now, creation_time=int(now.timestamp()))
    if type_name != "hmac":
        hmac_key = random_key(32)
        entry.hmac_key = bytes(hmac_key)
        wipe(hmac_key)
    if type_name == "ed25519" and p.derived and not private:
        raise TransitInternalError(
            "unable to import only public key for derived Ed25519 key: imported key should "
            "not be an Ed25519 key pair but is instead an HKDF key")
    size = len(material)
    if (type_name in byok.SYMMETRIC and size != byok.SYMMETRIC[type_name]) or (
            type_name == "hmac" and not byok.HMAC_MIN <= size <= byok.HMAC_MAX):
        raise TransitInternalError(
            f"invalid key size {size} bytes for key type {type_name}")
    if type_name in byok.SYMMETRIC or type_name == "hmac":
        entry.key = bytes(material)
        if type_name == "hmac":
            p.key_size = size
            entry.hmac_key = entry.key
    else:
        _fill_entry(entry, type_name, material, private)
    p.latest_version += 1
    p.keys[p.latest_version] = entry
    if p.min_decryption_version == 0:
        p.min_decryption_version = 1


def import_private_for_version(p: Policy, type_name: str, version: int,
                               material: bytearray) -> None:
    """keysutil's ImportPrivateKeyForVersion: the private half of a public-only version."""
    entry = p.keys.get(version)
    if entry is None:
        raise TransitInternalError("no such key version")
    parsed = byok.parse_asymmetric(type_name, bytes(material), True)
    if type_name.startswith("rsa-"):
        stored = getattr(entry, "rsa_public_key", None)
        assert parsed.rsa_public_key is not None
        same = stored is not None and stored.public_numbers() == \
            parsed.rsa_public_key.public_numbers()
    else:
        same = parsed.public_key.strip() == (entry.public_key or "").strip()
    if not same:
        raise TransitInternalError("cannot import key, key pair does not match")
    _fill_entry(entry, type_name, material, True)


def _check_version_updatable(p: Policy, type_name: str, version: int, private: bool) -> None:
    """keysutil's KeyVersionCanBeUpdated."""
    entry = p.keys.get(version)
    if entry is None:
        raise TransitInternalError("no such key version")
    if not p.type.import_public_key_supported:
        raise TransitInternalError("provided type does not support importing key versions")
    missing = entry.private_key_missing()
    if missing and not private:
        raise TransitInternalError(
            "cannot add a public key to a key version that already has a public key set")
    if not missing:
        raise TransitInternalError("private key imported, key version cannot be updated")


def paths(b: TransitBackend) -> list[Path]:
    def do_import(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        name = m.group("name")
        allow_rotation = bool(data.get("allow_rotation"))
        auto_rotate = int(data.get("auto_rotate_period") or 0)
        if req.data and "convergent_encryption" in req.data:
            raise TransitInternalError(
                "import cannot be used on keys with convergent encryption enabled")
        if auto_rotate > 0 and not allow_rotation:
            raise TransitInternalError(
                "allow_rotation must be set to true if auto-rotation is enabled")
        private = bool(req.data) and "ciphertext" in req.data
        type_name = (data.get("type") or "aes256-gcm96").lower()
        key_type = KeyType.from_name(type_name)
        if key_type is None:
            raise BadRequestError(f"unknown key type: {data.get('type')}")
        if b.keys.get(name) is not None:
            raise TransitInternalError(
                "the import path cannot be used with an existing key; use import-version "
                "to rotate an existing imported key")
        material = _material(b, data, type_name, private)
        try:
            p = Policy(name=name, type=key_type,
                       derived=bool(data.get("derived")),
                       exportable=bool(data.get("exportable")),
                       allow_plaintext_backup=bool(data.get("allow_plaintext_backup")),
                       auto_rotate_period=auto_rotate,
                       allow_imported_key_rotation=allow_rotation, imported=True)
            import_version(p, type_name, material, private, b.now())
        except TransitInternalError as exc:
            # OpenBao's lock manager prefixes what the import itself refuses.
            raise TransitInternalError(f"error importing key: {exc.message}") from None
        finally:
            wipe(material)
        _, created = b.keys.create(name, lambda: p)
        if not created:  # made by another request since the check above
            raise TransitInternalError(
                "the import path cannot be used with an existing key; use import-version "
                "to rotate an existing imported key")
        return None

    def do_import_version(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        name = m.group("name")
        private = bool(req.data) and "ciphertext" in req.data
        current = b.keys.get(name)
        if current is None:
            raise TransitInternalError(f"no key found with name {name}; to import a new key, "
                                       "use the import/ endpoint")
        if not current.imported:
            raise TransitInternalError(
                "the import_version endpoint can only be used with an imported key")
        if current.convergent_encryption:
            raise TransitInternalError(
                "import_version cannot be used on keys with convergent encryption enabled")
        type_name = current.type.api_name
        material = _material(b, data, type_name, private)
        version = data.get("version") if data.has("version") else None
        now = b.now()

        def apply(p: Policy) -> None:
            if version is not None:
                _check_version_updatable(p, type_name, int(version), private)
                import_private_for_version(p, type_name, int(version), material)
            else:
                import_version(p, type_name, material, private, now)

        try:
            if b.keys.update(name, apply) is None:
                raise TransitInternalError(f"no key found with name {name}; to import a new "
                                           "key, use the import/ endpoint")
        finally:
            wipe(material)
        return None

    common = {"name": Field(FieldType.STRING), "ciphertext": Field(FieldType.STRING),
              "public_key": Field(FieldType.STRING),
              "hash_function": Field(FieldType.STRING, default="SHA256")}
    fields = {**common, "type": Field(FieldType.STRING, default="aes256-gcm96"),
              "allow_rotation": Field(FieldType.BOOL), "derived": Field(FieldType.BOOL),
              "exportable": Field(FieldType.BOOL),
              "allow_plaintext_backup": Field(FieldType.BOOL),
              "context": Field(FieldType.STRING),
              "auto_rotate_period": Field(FieldType.DURATION, default=0)}
    return [
        Path(rf"keys/{NAME}/import", {Operation.UPDATE: do_import}, fields),
        Path(rf"keys/{NAME}/import_version", {Operation.UPDATE: do_import_version},
             {**common, "version": Field(FieldType.INT)}),
    ]
