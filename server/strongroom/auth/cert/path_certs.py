"""``certs/`` (LIST) and ``certs/<name>``: the trusted certificates and their constraints."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from strongroom.auth.tokenutil import TOKEN_FIELDS, parse_cidrs
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError
from strongroom.framework import FieldData, Path
from strongroom.framework.fields import Field, FieldType

from . import entry as store
from .entry import LIST_FIELDS, CertEntry
from .verify import allows_client_auth, is_ca, parse_pem_bundle

if TYPE_CHECKING:
    from . import CertBackend

# framework.GenericNameRegex("name"), with Go's ASCII \w.
NAME = r"(?P<name>[0-9A-Za-z_](?:[0-9A-Za-z_.-]*[0-9A-Za-z_])?)"

LIST_PAGE_FIELDS = {"after": Field(FieldType.STRING, default=""),
                    "limit": Field(FieldType.INT, default=0)}

CERT_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING),
    "certificate": Field(FieldType.STRING),
    "display_name": Field(FieldType.STRING),
    **{name: Field(FieldType.LIST) for name in LIST_FIELDS},
    # OCSP is not checked by Strongroom (no outbound requests from a login); the
    # fields are accepted so Vault's clients can send their defaults.
    "ocsp_enabled": Field(FieldType.BOOL), "ocsp_ca_certificates": Field(FieldType.STRING),
    "ocsp_servers_override": Field(FieldType.LIST), "ocsp_fail_open": Field(FieldType.BOOL),
    "ocsp_query_all_servers": Field(FieldType.BOOL),
    # Deprecated (Vault keeps them, mapped onto the token_* fields).
    "policies": Field(FieldType.LIST), "lease": Field(FieldType.INT),
    "ttl": Field(FieldType.DURATION), "max_ttl": Field(FieldType.DURATION),
    "period": Field(FieldType.DURATION), "bound_cidrs": Field(FieldType.LIST),
    **TOKEN_FIELDS,
}


def paths(backend: CertBackend) -> list[Path]:
    ops = CertPaths(backend)
    return [
        Path("certs/?", {Operation.LIST: ops.list_keys}, LIST_PAGE_FIELDS),
        Path(f"certs/{NAME}", {Operation.READ: ops.read, Operation.UPDATE: ops.write,
                               Operation.DELETE: ops.delete}, CERT_FIELDS),
    ]


def list_page(backend: CertBackend, prefix: str, data: FieldData) -> Response:
    limit = data.get("limit")
    keys = backend.ctx.storage.list_page(prefix, data.get("after"), limit if limit > 0 else 0)
    return Response(data={"keys": keys} if keys else {})


class CertPaths:
    def __init__(self, backend: CertBackend) -> None:
        self.backend = backend
        self.storage = backend.ctx.storage

    def list_keys(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return list_page(self.backend, store.PREFIX, data)

    def delete(self, req: Request, data: FieldData, m: re.Match[str]) -> None:
        key = store.PREFIX + data.get("name").lower()
        self.storage.delete(key)
        self.backend.invalidate(key)

    def read(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        cert = store.load(self.storage, data.get("name"))
        if cert is None:
            raise NotFoundError("")  # Vault: a read answering nothing is a bare 404
        out: dict[str, Any] = {
            "certificate": cert.certificate, "display_name": cert.display_name,
            **{name: getattr(cert, name) for name in LIST_FIELDS},
            "ocsp_ca_certificates": "", "ocsp_enabled": False, "ocsp_servers_override": None,
            "ocsp_fail_open": False, "ocsp_query_all_servers": False,
        }
        out.update(cert.token.to_data())
        for name in ("ttl", "max_ttl", "period"):
            if getattr(cert, name) > 0:
                out[name] = getattr(cert, name)
        if cert.policies:
            out["policies"] = out["token_policies"]
        if cert.bound_cidrs:
            out["bound_cidrs"] = out["token_bound_cidrs"]
        return Response(data=out)

    def write(self, req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        name = data.get("name").lower()
        cert = store.load(self.storage, name)
        create = cert is None
        if cert is None:
            cert = CertEntry(name=name)
        for field in ("certificate", "display_name", *LIST_FIELDS):
            if data.has(field):
                setattr(cert, field, data.get(field))
        if data.has("ocsp_enabled") and data.get("ocsp_enabled"):
            raise BadRequestError("OCSP checking is not supported by this server")
        cert.token.update_from(data, create)
        _upgrade_deprecated(cert, data)
        warnings = self._ttl_warnings(cert)
        if cert.token.max_ttl and cert.token.ttl > cert.token.max_ttl:
            raise BadRequestError("ttl should be shorter than max_ttl")
        if not cert.display_name:
            cert.display_name = name
        parsed = parse_pem_bundle(cert.certificate)
        if not parsed:
            raise BadRequestError("failed to parse certificate")
        if not is_ca(parsed[0]) and not allows_client_auth(parsed[0]):
            raise BadRequestError("nonCA certificates should have TLS client authentication "
                                  "set as an extended key usage")
        store.save(self.storage, cert)
        self.backend.invalidate(store.PREFIX + cert.name)
        return Response(warnings=warnings) if warnings else None

    def _ttl_warnings(self, cert: CertEntry) -> list[str]:
        ctx = self.backend.ctx
        default, maximum = ctx.default_lease_ttl, self.backend.max_lease_ttl()
        out = []
        if cert.token.ttl > default:
            out.append(f"Given ttl of {cert.token.ttl} seconds is greater than current "
                       f"mount/system default of {default} seconds")
        if cert.token.max_ttl > maximum:
            out.append(f"Given max_ttl of {cert.token.max_ttl} seconds is greater than "
                       f"current mount/system default of {maximum} seconds")
        if cert.token.period > maximum:
            out.append(f"Given period of {cert.token.period} seconds is greater than the "
                       f"backend's maximum TTL of {maximum} seconds")
        return out


def _upgrade_deprecated(cert: CertEntry, data: FieldData) -> None:
    """Vault's ``tokenutil.UpgradeValue``: a deprecated field given alone sets its token_*
    field too; the token_* field given clears the deprecated one (or sets it alike when
    both are given). ``lease`` is the oldest name of ``ttl``."""
    token = cert.token
    pairs: tuple[tuple[str, str], ...] = (
        ("policies", "policies"), ("ttl", "ttl"), ("max_ttl", "max_ttl"),
        ("period", "period"), ("bound_cidrs", "bound_cidrs"))
    for old, attr in pairs:
        new_given = data.has("token_" + attr)
        if not new_given:
            if data.has(old):
                value = data.get(old)
                if old == "bound_cidrs":
                    value = parse_cidrs(value, "bound_cidrs")
                setattr(cert, old, value)
                setattr(token, attr, value)
        elif data.has(old):
            setattr(cert, old, getattr(token, attr))
        else:
            setattr(cert, old, [] if isinstance(getattr(cert, old), list) else 0)
    if not data.has("token_ttl") and not data.has("ttl") and data.has("lease"):
        cert.ttl = token.ttl = data.get("lease")
