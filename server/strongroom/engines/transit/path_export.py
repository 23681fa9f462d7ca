"""``export/<type>/<name>[/<version>]``: a key's versions, for exportable keys only.

Vault's ``path_export.go``: types encryption-key, signing-key, hmac-key (private
material: the key must be ``exportable``) and public-key (always allowed for
asymmetric keys); ``format`` "" (the type's default: base64 raw for AES/ChaCha/HMAC
and ed25519, PKCS#1 PEM for RSA, SEC 1 PEM for EC), ``raw``, ``der`` or ``pem``.
The encodings are byte for byte OpenBao's (``byok.export_*``), and so are the errors:
its 400s, and its plain-error 500s (a public key asked of a symmetric key, ``der``
asked of an AES key), as the rest of this engine answers them.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from . import NAME, byok
from .common import not_found
from .goencoding import atoi
from .keytypes import TransitInternalError
from .policy import KeyEntry

if TYPE_CHECKING:
    from . import TransitBackend

TYPE = NAME.replace("?P<name>", "?P<type>")  # Vault's GenericNameRegex("type")
_EXPORT_TYPES = ("encryption-key", "signing-key", "hmac-key", "public-key",
                 "certificate-chain")
_FORMATS = ("", "raw", "der", "pem")


def export_key(type_name: str, entry: KeyEntry, export_type: str, fmt: str) -> str:
    """One version's export string (OpenBao's getExportKey)."""
    if export_type == "hmac-key":
        src = entry.key if type_name == "hmac" else entry.hmac_key
        if fmt in ("der", "pem"):
            raise TransitInternalError(
                "unknown format for HMAC key; supported values are `` or `raw`")
        return base64.b64encode(bytes(src or b"")).decode()
    if export_type == "encryption-key":
        if type_name in byok.SYMMETRIC:
            if fmt in ("der", "pem"):
                # OpenBao's text says "HMAC key" here too.
                raise TransitInternalError(
                    "unknown format for HMAC key; supported values are `` or `raw`")
            return base64.b64encode(bytes(entry.key or b"")).decode()
        if type_name.startswith("rsa-"):
            return byok.export_rsa_private(entry.rsa_key, fmt)
    elif export_type == "signing-key":
        if type_name.startswith("ecdsa-"):
            return byok.export_ec_private(type_name, entry.ec_x, entry.ec_y, entry.ec_d, fmt)
        if type_name == "ed25519":
            if not entry.key:
                return ""
            return byok.export_ed25519_private(bytes(entry.key), fmt)
        if type_name.startswith("rsa-"):
            return byok.export_rsa_private(entry.rsa_key, fmt)
    elif export_type == "public-key":
        if type_name.startswith("ecdsa-"):
            return byok.export_ec_public(type_name, entry.ec_x, entry.ec_y, fmt)
        if type_name == "ed25519":
            return byok.export_ed25519_public(entry.public_key or "", fmt)
        if type_name.startswith("rsa-"):
            return byok.export_rsa_public(entry.rsa_public(), fmt)
    elif export_type == "certificate-chain":
        if not entry.certificate_chain:
            raise TransitInternalError(
                "selected key version does not have a certificate chain imported")
        return "\n".join(byok.pem_block(der, "CERTIFICATE").strip()
                         for der in entry.certificate_chain)
    raise TransitInternalError(f"unknown key type {type_name} for export type {export_type}")


def paths(b: TransitBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        export_type = m.group("type")
        name = m.group("name")
        version = m.group("version") or ""
        fmt = data.get("format") or ""
        if export_type not in _EXPORT_TYPES:
            raise BadRequestError(f"invalid export type: {export_type}")
        if fmt not in _FORMATS:
            raise BadRequestError(f"invalid format: {fmt}")
        p = b.keys.get(name)
        if p is None:
            return not_found()
        if not p.exportable and export_type not in ("public-key", "certificate-chain"):
            raise BadRequestError("private key material is not exportable")
        if p.soft_deleted:
            raise TransitInternalError("refusing to use soft-deleted key")
        type_name = p.type.api_name
        if export_type == "encryption-key" and not p.type.encryption_supported:
            raise BadRequestError("encryption not supported for the key")
        if export_type in ("signing-key", "certificate-chain") and not p.type.signing_supported:
            raise BadRequestError("signing not supported for the key" if export_type ==
                                  "signing-key" else "certificate chain not supported for "
                                  "keys that do not support signing")
        keys: dict[str, str] = {}
        if version == "":
            for ver, entry in sorted(p.keys.items()):
                keys[str(ver)] = export_key(type_name, entry, export_type, fmt)
        else:
            if version == "latest":
                wanted = p.latest_version
            else:
                try:
                    wanted = atoi(version.removeprefix("v"))
                except ValueError:
                    raise BadRequestError("invalid key version") from None
            if wanted < p.min_decryption_version:
                raise BadRequestError(
                    "version for export is below minimum decryption version")
            chosen = p.keys.get(wanted)
            if chosen is None:
                raise BadRequestError("version does not exist or cannot be found")
            keys[str(wanted)] = export_key(type_name, chosen, export_type, fmt)
        return Response(data={"name": p.name, "type": type_name, "keys": keys})

    fields = {"type": Field(FieldType.STRING), "name": Field(FieldType.STRING),
              "version": Field(FieldType.STRING), "format": Field(FieldType.STRING)}
    return [Path(rf"export/{TYPE}/{NAME}(?:/(?P<version>.+))?",
                 {Operation.READ: read}, fields)]
