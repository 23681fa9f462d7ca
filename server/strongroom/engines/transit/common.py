"""Helpers shared by the transit path modules: the key's read shape, context decoding."""

from __future__ import annotations

import base64
from typing import Any

from strongroom.core.request import Response
from strongroom.errors import BadRequestError

from .cipher import public_pem
from .goencoding import Base64Error, b64decode
from .keytypes import EC_CURVE_NAMES, KDF_HKDF_SHA256, KDF_HMAC_SHA256_COUNTER, KeyType
from .policy import Policy, TransitInternalError
from .policy_json import format_time


def not_found() -> Response:
    """Vault's bare 404: ``{"errors": []}``."""
    return Response(status=404, raw=True, data={"errors": []})


def decode_context(text: str) -> bytes | None:
    """A request's base64 ``context`` (None when empty), refused as Vault refuses it."""
    if not text:
        return None
    try:
        return b64decode(text)
    except Base64Error:
        raise BadRequestError("failed to base64-decode context") from None


def format_policy(p: Policy, context: bytes | None = None) -> dict[str, Any]:
    """The data of ``keys/<name>`` (Vault's ``formatKeyPolicy``)."""
    kt = p.type
    data: dict[str, Any] = {
        "name": p.name,
        "type": kt.api_name,
        "derived": p.derived,
        "deletion_allowed": p.deletion_allowed,
        "min_available_version": p.min_available_version,
        "min_decryption_version": p.min_decryption_version,
        "min_encryption_version": p.min_encryption_version,
        "latest_version": p.latest_version,
        "exportable": p.exportable,
        "allow_plaintext_backup": p.allow_plaintext_backup,
        "supports_encryption": kt.encryption_supported,
        "supports_decryption": kt.decryption_supported,
        "supports_signing": kt.signing_supported,
        "supports_derivation": kt.derivation_supported,
        "auto_rotate_period": p.auto_rotate_period,
        "imported_key": p.imported,
        "soft_deleted": p.soft_deleted,
    }
    if p.key_size:
        data["key_size"] = p.key_size
    if p.imported:
        data["imported_key_allow_rotation"] = p.allow_imported_key_rotation
    for label, info in (("backup_info", p.backup_info), ("restore_info", p.restore_info)):
        if info is not None:
            data[label] = {"time": format_time(info.time, info.time_nanos),
                           "version": info.version}
    if p.derived:
        if p.kdf == KDF_HMAC_SHA256_COUNTER:
            data["kdf"] = "hmac-sha256-counter"
            data["kdf_mode"] = "hmac-sha256-counter"
        elif p.kdf == KDF_HKDF_SHA256:
            data["kdf"] = "hkdf_sha256"
        data["convergent_encryption"] = p.convergent_encryption
        if p.convergent_encryption:
            data["convergent_encryption_version"] = p.convergent_version
    if kt.symmetric:
        data["keys"] = {str(v): e.creation_time for v, e in sorted(p.keys.items())}
    elif kt.asymmetric:
        data["keys"] = {str(v): _asym_version(p, v, context) for v in sorted(p.keys)}
    return data


def _asym_version(p: Policy, version: int, context: bytes | None) -> dict[str, Any]:
    entry = p.keys[version]
    kt = p.type
    public = entry.public_key
    chain = ""
    if entry.certificate_chain:
        chain = "\n".join(_cert_pem(der) for der in entry.certificate_chain)
    if kt is KeyType.ED25519:
        name = "ed25519"
        if p.derived:
            public = ""
            if context:
                derived = p.get_key(context, version, 32)
                public = base64.b64encode(derived[32:]).decode()
    elif kt.is_rsa:
        name = kt.api_name
        rsa_public = entry.rsa_public()
        if rsa_public is None:
            raise TransitInternalError(
                "requested to encode an RSA public key with no RSA key present")
        public = public_pem(rsa_public)
    else:
        name = EC_CURVE_NAMES[kt]
    created = entry.time
    return {"name": name, "public_key": public, "certificate_chain": chain,
            "creation_time": format_time(created, entry.time_nanos)}


def _cert_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----"
