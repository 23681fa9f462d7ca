"""What this build can mount, by type: adding a secrets engine, an auth method or an
audit device is its own package plus one line here; no core file changes.

Each value is a factory taking the mount's ``MountContext`` (its own storage view,
its mount entry, a clock) and returning a backend that implements
``strongroom.core.logical.LogicalBackend``. The built-in mounts (``sys/``,
``cubbyhole/``, ``identity/``, ``auth/token/``) are the core's own and not listed here:
they cannot be enabled or disabled.
"""

from __future__ import annotations

from strongroom.audit import FileDevice, SocketDevice, lenient, syslog_factory
from strongroom.auth.approle import approle_factory
from strongroom.auth.cert import cert_factory
from strongroom.auth.ldap import ldap_factory
from strongroom.auth.userpass import userpass_factory
from strongroom.core.mounts import EngineFactory
from strongroom.engines.database import database_factory
from strongroom.engines.kv import kv_factory
from strongroom.engines.transit import transit_factory
from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.shamir_seal import ShamirSeal

# `vault secrets enable -path=x kv` and `sys/mounts/x {"type": "kv"}`.
SECRETS_ENGINES: dict[str, EngineFactory] = {
    "kv": kv_factory,
    "generic": kv_factory,  # Vault's mount alias: a kv backend, the type stays "generic"
    "database": database_factory,
    "transit": transit_factory,
}

# `sys/auth/x {"type": ...}`; served at auth/x/ (issue 15 adds approle, userpass, ...).
AUTH_METHODS: dict[str, EngineFactory] = {
    "approle": approle_factory,
    "userpass": userpass_factory,
    "ldap": ldap_factory,
    "cert": cert_factory,
}

# `sys/audit/x {"type": ...}`: devices the audit broker writes every request to.
AUDIT_DEVICES: dict[str, EngineFactory] = {
    "file": lenient(FileDevice),
    "syslog": syslog_factory(),
    "socket": lenient(SocketDevice),
}

# `seal "<type>"` stanzas: their options are config.py's SEAL_OPTIONS, seal/factory.py builds
# them (several enabled pkcs11 stanzas make one Seal HA seal); "shamir" only as the
# disabled seal of a migration (no stanza means Shamir).
SEALS: dict[str, type] = {
    "shamir": ShamirSeal,
    "pkcs11": Pkcs11Seal,
}
