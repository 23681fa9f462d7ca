"""``login``: a TLS client certificate in, a token out (Vault's cert ``pathLogin``), and
the renewal of the tokens it issued (``pathLoginRenew``)."""

from __future__ import annotations

import base64
import datetime
import hmac
import re
from typing import TYPE_CHECKING

from cryptography import x509

from strongroom.auth.tokenutil import cidrs_allow
from strongroom.core.logical import Alias, Auth
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, PermissionDeniedError, StrongroomError
from strongroom.framework import FieldData, Path
from strongroom.framework.fields import Field, FieldType

from . import entry as store
from .path_config import load_config
from .verify import (
    INVALID,
    NO_CERT,
    Trusted,
    common_name,
    extension_strings,
    match,
)

if TYPE_CHECKING:
    from . import CertBackend

LOGIN_FIELDS = {"name": Field(FieldType.STRING, default="")}


def paths(backend: CertBackend) -> list[Path]:
    return [Path("login", {Operation.UPDATE: CertLogin(backend).login}, LOGIN_FIELDS)]


def _client_cert(req: Request) -> x509.Certificate:
    if not req.client_cert_der:
        raise BadRequestError(NO_CERT)
    try:
        cert = x509.load_der_x509_certificate(req.client_cert_der)
        _ = cert.extensions  # parsed lazily: fail here, not halfway through a check
    except ValueError:
        # OpenSSL took it in the handshake; Go's TLS stack (Vault) would not have.
        raise BadRequestError(INVALID) from None
    return cert


def _key_id(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes:
    try:
        value = cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return b""
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier or b""
    return b""


def _hex(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


class CertLogin:
    def __init__(self, backend: CertBackend) -> None:
        self.backend = backend
        self.storage = backend.ctx.storage

    def _trusted(self, name: str) -> list[Trusted]:
        roles = self.backend.roles()
        if not name:
            return roles
        name = name.lower()
        return [role for role in roles if role.entry.name == name]

    def verify(self, leaf: x509.Certificate, name: str) -> Trusted | str:
        now = self.backend.ctx.clock().astimezone(datetime.UTC)
        return match(leaf, self._trusted(name), self.backend.revoked(), now)

    def login(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        # No failed-login backoff here (auth/login_guard.py), as Vault's lockout spares
        # cert too: nothing is guessed. The handshake proved the client holds the key of
        # a certificate the listener's CA file vouches for; a refusal below is a role's
        # constraint or a CRL, and backing off would only let one client behind a shared
        # address lock out the others.
        leaf = _client_cert(req)
        der = req.client_cert_der or b""
        matched = self.verify(leaf, data.get("name"))
        if isinstance(matched, str):
            raise BadRequestError(matched)
        entry = matched.entry
        if not cidrs_allow(entry.token.bound_cidrs, req.remote_addr):
            raise PermissionDeniedError()
        skid = _key_id(leaf, x509.SubjectKeyIdentifier)
        akid = _key_id(leaf, x509.AuthorityKeyIdentifier)
        metadata = {
            "cert_name": entry.name,
            "common_name": common_name(leaf),
            "serial_number": str(leaf.serial_number),
            "subject_key_id": _hex(skid),
            "authority_key_id": _hex(akid),
        }
        if entry.allowed_metadata_extensions:
            values = extension_strings(leaf)
            for oid in entry.allowed_metadata_extensions:
                if oid in values:
                    metadata[oid.replace(".", "-")] = values[oid]
        config = load_config(self.storage)
        auth = Auth(
            display_name=entry.display_name,
            metadata=metadata,
            internal={"certificate": base64.b64encode(der).decode(),
                      "subject_key_id": base64.b64encode(skid).decode(),
                      "authority_key_id": base64.b64encode(akid).decode()},
            alias=Alias(common_name(leaf),
                        dict(metadata) if config.enable_identity_alias_metadata else {}),
        )
        entry.token.apply(auth, req.remote_addr)
        return Response(auth=auth)

    def renew(self, req: Request, auth: Auth) -> Auth | None:
        """Vault's ``pathLoginRenew``: the role still there (None: not renewed) with
        the same policies and, unless ``disable_binding``, the same certificate
        presented again. Vault's errors: a refused certificate is a 400, the rest 500s
        (``StrongroomError``; the core words them "failed to renew entry: ...")."""
        name = auth.metadata.get("cert_name", "")
        entry = store.load(self.storage, name) if name else None
        if entry is None:
            return None
        if _policies(entry.token.policies) != _policies(auth.policies):
            raise StrongroomError("policies have changed, not renewing")
        if not load_config(self.storage).disable_binding:
            original = auth.internal.get("certificate")
            if not isinstance(original, str):
                raise StrongroomError("cannot validate renewal for cert auth for "
                                      "non-stored client certificate")
            leaf = _client_cert(req)
            matched = self.verify(leaf, name)
            if isinstance(matched, str):
                raise BadRequestError(matched)
            if not hmac.compare_digest(base64.b64decode(original), req.client_cert_der or b""):
                # Vault appends both certificates' bytes; they are not echoed here.
                raise StrongroomError("client identity during renewal not matching client "
                                      "identity used during login")
        auth.ttl = entry.token.ttl
        auth.max_ttl = entry.token.max_ttl
        auth.period = entry.token.period
        return auth


def _policies(policies: list[str]) -> set[str]:
    # policyutil.EquivalentPolicies: "default" is implied.
    return {p for p in policies if p != "default"}
