"""``crls/`` (LIST) and ``crls/<name>``: revocation lists checked at every login.

As Vault, a CRL is kept as the set of serial numbers it revokes (its signature and
expiry are not checked: the operator vouches for it by writing it); a login whose
chain holds a revoked serial does not match. Fetching a CRL from a ``url`` (Vault's
distribution-point refresh) is not supported: a login never makes outbound requests.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from cryptography import x509

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import FieldData, Path
from strongroom.framework.fields import Field, FieldType

from .path_certs import LIST_PAGE_FIELDS, NAME, list_page

if TYPE_CHECKING:
    from . import CertBackend

PREFIX = "crls/"

CRL_FIELDS = {"name": Field(FieldType.STRING), "crl": Field(FieldType.STRING),
              "url": Field(FieldType.STRING)}


def paths(backend: CertBackend) -> list[Path]:
    ops = CrlPaths(backend)
    return [
        Path("crls/?", {Operation.LIST: ops.list_keys}, LIST_PAGE_FIELDS),
        Path(f"crls/{NAME}", {Operation.READ: ops.read, Operation.UPDATE: ops.write,
                              Operation.DELETE: ops.delete}, CRL_FIELDS),
    ]


def parse_crl(text: str) -> x509.CertificateRevocationList:
    """PEM or DER (base64-free DER can only arrive as a JSON string: latin-1 bytes)."""
    raw = text.encode("latin-1", "replace")
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_crl(raw.strip())
        return x509.load_der_x509_crl(raw)
    except ValueError as exc:
        raise BadRequestError(f"failed to parse CRL: {exc}") from None


class CrlPaths:
    def __init__(self, backend: CertBackend) -> None:
        self.backend = backend
        self.storage = backend.ctx.storage

    def list_keys(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return list_page(self.backend, PREFIX, data)

    def read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = data.get("name").lower()
        serials = self.backend.crls().get(name)
        if serials is None:
            raise BadRequestError(f"no such CRL {name}")
        out: dict[str, object] = {}
        if serials:
            out["serials"] = {serial: {} for serial in sorted(serials)}
        return Response(data=out)

    def delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = data.get("name").lower()
        if name not in self.backend.crls():
            raise BadRequestError(f"no such CRL {name}")
        self.storage.delete(PREFIX + name)
        self.backend.invalidate(PREFIX + name)

    def write(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        name = data.get("name").lower()
        if data.get("crl"):
            crl = parse_crl(data.get("crl"))
            serials: dict[str, dict[str, str]] = {
                str(revoked.serial_number): {} for revoked in crl}
            doc: dict[str, object] = {"cdp": None, "serials": serials}
            self.storage.put(PREFIX + name, json.dumps(doc, separators=(",", ":")).encode())
            self.backend.invalidate(PREFIX + name)
            return
        if data.has("url"):
            if not data.get("url"):
                raise BadRequestError("empty CRL url")
            raise BadRequestError("fetching a CRL from a url is not supported; "
                                  "write it with 'crl'")
        raise BadRequestError("one of 'crl' or 'url' must be provided")
