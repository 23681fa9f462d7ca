"""The TLS certificate auth method (Vault's ``cert``): a client logs in with the
certificate it presented in the TLS handshake.

The listener asks for (and verifies against its ``tls_client_ca_file``) a client
certificate; the http layer hands its DER to ``Request.client_cert_der``. Roles
(``certs/<name>``) hold trusted CA or leaf certificates with name constraints and the
token_* parameters; ``crls/<name>`` revoke serial numbers; ``config``; ``login``.
Storage keys are Vault's (``cert/<name>``, ``crls/<name>``, ``config``).

Per-process caches, dropped by ``invalidate`` when a key under them changes (in any
worker or node; the writer drops its own at once): the revoked serials of every CRL
(``crls/``) and the roles with their parsed certificates (``cert/``), so a login reads
and parses nothing but the client's certificate.
"""

from __future__ import annotations

import json
import threading

from strongroom.core.logical import Auth, SpecialPaths
from strongroom.core.mounts import MountContext
from strongroom.core.request import Request, Response
from strongroom.errors import NoRouteError, NotFoundError, multierror
from strongroom.framework import Path, PathBackend

from . import entry, path_certs, path_config, path_crls, path_login
from .verify import Trusted, parse_pem_bundle


class CertBackend(PathBackend):
    def __init__(self, ctx: MountContext) -> None:
        self.ctx = ctx
        self._crls: dict[str, frozenset[str]] | None = None
        self._roles: list[Trusted] | None = None
        self._lock = threading.Lock()
        self._login = path_login.CertLogin(self)
        paths: list[Path] = [*path_config.paths(self), *path_login.paths(self),
                             *path_certs.paths(self), *path_crls.paths(self)]
        super().__init__(paths, special_paths=SpecialPaths(unauthenticated=("login",)))

    def max_lease_ttl(self) -> int:
        """Vault's ``System().MaxLeaseTTL()``: the mount's tuned value, else the system's."""
        tuned = (self.ctx.mount.config or {}).get("max_lease_ttl")
        return tuned if isinstance(tuned, int) and tuned > 0 else self.ctx.system_max_lease_ttl

    def crls(self) -> dict[str, frozenset[str]]:
        """Every CRL's revoked serial numbers (decimal), by name; loaded once per process."""
        crls = self._crls
        if crls is not None:
            return crls
        with self._lock:
            if self._crls is None:
                loaded: dict[str, frozenset[str]] = {}
                storage = self.ctx.storage
                for name in storage.list(path_crls.PREFIX):
                    raw = storage.get(path_crls.PREFIX + name)
                    if raw is not None:
                        loaded[name] = frozenset(json.loads(raw).get("serials") or {})
                self._crls = loaded
            return self._crls

    def roles(self) -> list[Trusted]:
        """Every role whose ``certificate`` holds a certificate, in name order (Vault's
        order of matching), parsed once per process."""
        roles = self._roles
        if roles is not None:
            return roles
        with self._lock:
            if self._roles is None:
                loaded = []
                for name in entry.names(self.ctx.storage):
                    role = entry.load(self.ctx.storage, name)
                    certs = parse_pem_bundle(role.certificate) if role is not None else []
                    if role is not None and certs:
                        loaded.append(Trusted(role, certs))
                self._roles = loaded
            return self._roles

    def revoked(self) -> set[str]:
        out: set[str] = set()
        for serials in self.crls().values():
            out |= serials
        return out

    def invalidate(self, key: str) -> None:
        if key.startswith(path_crls.PREFIX):
            with self._lock:
                self._crls = None
        elif key.startswith(entry.PREFIX):
            with self._lock:
                self._roles = None

    def cleanup(self) -> None:
        self._crls = None
        self._roles = None

    def handle(self, req: Request, rel_path: str) -> Response | None:
        try:
            return super().handle(req, rel_path)
        except NoRouteError:
            # Vault's framework: a path no pattern matches is logical.ErrUnsupportedPath.
            raise NotFoundError(multierror("unsupported path")) from None

    def renew_login(self, req: Request, auth: Auth) -> Auth | None:
        return self._login.renew(req, auth)


def cert_factory(ctx: MountContext) -> CertBackend:
    return CertBackend(ctx)
