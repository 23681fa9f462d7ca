"""What the AppRole method keeps in its mount's storage view (barrier-encrypted), in
Vault's layout:

- ``salt``: the mount's random salt; role IDs and SecretID accessors are indexed
  under an HMAC of it, so the index keys say nothing about the values;
- ``role/<name>``: a role (its per-role ``hmac_key`` included);
- ``role_id/<HMAC(salt, role_id)>``: role ID -> role name;
- ``secret_id[_local]/<HMAC(k, role name)>/<HMAC(k, secret_id)>`` with ``k`` the role's
  ``hmac_key``: a SecretID's properties. The SecretID itself is never stored: a login
  recomputes the HMAC of what it is shown and looks that key up;
- ``accessor[_local]/<HMAC(salt, accessor)>``: accessor -> the SecretID's HMAC.

Read-modify-write sequences take ``node_lock``s (every worker of the node): a role's
(``approle-role:``), then a SecretID's (``approle-secret:``), never the other way round.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import uuid
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field

from strongroom.auth.tokenutil import TokenParams
from strongroom.barrier.secmem import wipe
from strongroom.barrier.view import StorageView
from strongroom.errors import StrongroomError, multierror
from strongroom.node.locks import node_lock
from strongroom.physical.base import Op

ROLE, ROLE_ID, SALT = "role/", "role_id/", "salt"
SECRET, SECRET_LOCAL = "secret_id/", "secret_id_local/"
ACCESSOR, ACCESSOR_LOCAL = "accessor/", "accessor_local/"
MAX_HMAC_INPUT = 4096  # Vault's maxHmacInputLength
# The stand-in role an unknown role ID is checked against (a name the API cannot
# create: role names start with a word character), stored outside role/.
ABSENT_ROLE = "-absent-"
ABSENT_KEY = "absent_role"


def go_quote(text: str) -> str:
    """Go's %q for the plain strings these messages carry."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def internal_error(message: str) -> StrongroomError:
    """Vault's plain ``error`` from a handler: a 500 in go-multierror's words."""
    return StrongroomError(multierror(message))


def create_hmac(key: str, value: str) -> str:
    """Vault's createHMAC: hex HMAC-SHA256 of ``value`` under the role's ``key``."""
    if not key:
        raise internal_error("invalid HMAC key")
    if len(value.encode()) > MAX_HMAC_INPUT:
        raise ValueError(f"value is longer than maximum of {MAX_HMAC_INPUT} bytes")
    return hmac.new(key.encode(), value.encode(), "sha256").hexdigest()


@dataclass
class Role:
    name: str  # lower-cased, as Vault stores roles created since 0.9
    role_id: str
    hmac_key: str
    bind_secret_id: bool = True
    secret_id_bound_cidrs: list[str] | None = None
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    policies: list[str] = field(default_factory=list)  # deprecated "policies"
    period: int = 0  # deprecated "period"
    token: TokenParams = field(default_factory=TokenParams)

    @property
    def secret_prefix(self) -> str:
        return SECRET_LOCAL if self.local_secret_ids else SECRET

    @property
    def accessor_prefix(self) -> str:
        return ACCESSOR_LOCAL if self.local_secret_ids else ACCESSOR

    def has_constraint(self) -> bool:
        """Vault's validateRoleConstraints: something must stand between a role ID and a
        token (a SecretID, or a CIDR binding)."""
        return bool(self.bind_secret_id or self.secret_id_bound_cidrs
                    or self.token.bound_cidrs)

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["token"] = self.token.to_json()
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Role:
        doc = json.loads(raw)
        doc["token"] = TokenParams.from_json(doc.get("token") or {})
        return cls(**doc)


@dataclass
class SecretEntry:
    accessor: str = ""
    num_uses: int = 0
    ttl: int = 0
    creation_time: float = 0.0
    expiration_time: float = 0.0  # 0: never
    last_updated_time: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)
    cidr_list: list[str] = field(default_factory=list)
    token_bound_cidrs: list[str] = field(default_factory=list)

    def expired(self, now: float) -> bool:
        return bool(self.expiration_time) and now > self.expiration_time

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SecretEntry:
        return cls(**json.loads(raw))


class Store:
    """The method's storage, with its salt cached in this process (dropped on
    ``invalidate("salt")`` and wiped on ``cleanup``)."""

    def __init__(self, storage: StorageView, mount_uuid: str) -> None:
        self.storage = storage
        self._uuid = mount_uuid
        self._salt: bytearray | None = None
        self._salt_lock = threading.Lock()

    # -- locks ----------------------------------------------------------------------

    def role_lock(self, name: str) -> AbstractContextManager[None]:
        return node_lock(f"approle-role:{self._uuid}:{name.lower()}")

    def secret_lock(self, secret_hmac: str) -> AbstractContextManager[None]:
        return node_lock(f"approle-secret:{self._uuid}:{secret_hmac}")

    # -- the salt -------------------------------------------------------------------

    def _salt_bytes(self) -> bytearray:
        with self._salt_lock:
            if self._salt is not None:
                return self._salt
        raw = self.storage.get(SALT)
        if raw is None:
            # A kind of its own (the last, unnamed one): taken inside a role's or a
            # SecretID's lock, and holding none.
            with node_lock(f"approle-salt|{self._uuid}"):
                raw = self.storage.get(SALT)
                if raw is None:
                    raw = secrets.token_hex(32).encode()
                    self.storage.put(SALT, raw)
        salt = bytearray(bytes.fromhex(raw.decode()))
        with self._salt_lock:
            if self._salt is None:
                self._salt = salt
            return self._salt

    def salted(self, value: str) -> str:
        """The index key of a role ID or an accessor."""
        return hmac.new(bytes(self._salt_bytes()), value.encode(), "sha256").hexdigest()

    def forget_salt(self) -> None:
        with self._salt_lock:
            salt, self._salt = self._salt, None
        wipe(salt)

    # -- roles ----------------------------------------------------------------------

    def role(self, name: str) -> Role | None:
        raw = self.storage.get(ROLE + name.lower())
        return Role.from_json(raw) if raw is not None else None

    def role_names(self, after: str = "", limit: int = 0) -> list[str]:
        return self.storage.list_page(ROLE, after, limit)

    def role_name_for(self, role_id: str) -> str | None:
        raw = self.storage.get(ROLE_ID + self.salted(role_id))
        if raw is None:
            return None
        name = json.loads(raw).get("name")
        return name if isinstance(name, str) else None

    def put_role(self, role: Role, previous_role_id: str) -> None:
        """Store ``role`` and its role ID index (caller holds the role's lock)."""
        if not role.has_constraint():
            raise internal_error("at least one constraint should be enabled on the role")
        owner = self.role_name_for(role.role_id)
        if owner is not None and owner != role.name:
            raise internal_error("role_id already in use")
        ops: list[Op] = []
        if previous_role_id and previous_role_id != role.role_id:
            ops.append(("delete", ROLE_ID + self.salted(previous_role_id), None))
        ops.append(("put", ROLE + role.name, role.to_json()))
        if previous_role_id != role.role_id or owner is None:
            ops.append(("put", ROLE_ID + self.salted(role.role_id),
                        json.dumps({"name": role.name}).encode()))
        self.storage.transaction(ops)

    def delete_role(self, role: Role) -> None:
        """Every SecretID of the role, its role ID index, then the role."""
        for secret_hmac in self.storage.list(self._secrets_dir(role)):
            with self.secret_lock(secret_hmac):
                entry = self.secret(role, secret_hmac)
                ops: list[Op] = []
                if entry is not None and entry.accessor:
                    ops.append(("delete", role.accessor_prefix + self.salted(entry.accessor),
                                None))
                ops.append(("delete", self._secrets_dir(role) + secret_hmac, None))
                self.storage.transaction(ops)
        self.storage.transaction([("delete", ROLE_ID + self.salted(role.role_id), None),
                                  ("delete", ROLE + role.name, None)])

    # -- SecretIDs ------------------------------------------------------------------

    def _secrets_dir(self, role: Role) -> str:
        return f"{role.secret_prefix}{create_hmac(role.hmac_key, role.name)}/"

    def secret_hmac(self, role: Role, secret_id: str) -> str:
        return create_hmac(role.hmac_key, secret_id)

    def secret(self, role: Role, secret_hmac: str) -> SecretEntry | None:
        raw = self.storage.get(self._secrets_dir(role) + secret_hmac)
        return SecretEntry.from_json(raw) if raw is not None else None

    def secret_hmacs(self, role: Role, after: str = "", limit: int = 0) -> list[str]:
        return self.storage.list_page(self._secrets_dir(role), after, limit)

    def accessor_target(self, role: Role, accessor: str) -> str | None:
        """The HMAC of the SecretID ``accessor`` names, if the accessor exists."""
        raw = self.storage.get(role.accessor_prefix + self.salted(accessor))
        if raw is None:
            return None
        target = json.loads(raw).get("secret_id_hmac")
        return target if isinstance(target, str) else None

    def register_secret(self, role: Role, secret_hmac: str, entry: SecretEntry) -> bool:
        """Store a new SecretID and its accessor (False: that SecretID exists)."""
        with self.secret_lock(secret_hmac):
            if self.secret(role, secret_hmac) is not None:
                return False
            entry.accessor = str(uuid.uuid4())
            index = json.dumps({"secret_id_hmac": secret_hmac}).encode()
            # The accessor first: a SecretID without one is refused and removed.
            self.storage.transaction([
                ("put", role.accessor_prefix + self.salted(entry.accessor), index),
                ("put", self._secrets_dir(role) + secret_hmac, entry.to_json())])
            return True

    def put_secret(self, role: Role, secret_hmac: str, entry: SecretEntry) -> None:
        self.storage.put(self._secrets_dir(role) + secret_hmac, entry.to_json())

    def delete_secret(self, role: Role, secret_hmac: str, accessor: str) -> None:
        """The accessor and the SecretID (caller holds the SecretID's lock)."""
        ops: list[Op] = []
        if accessor:
            ops.append(("delete", role.accessor_prefix + self.salted(accessor), None))
        ops.append(("delete", self._secrets_dir(role) + secret_hmac, None))
        self.storage.transaction(ops)

    def absent_role(self) -> Role:
        """A role no login can match; an unknown role ID goes through a wrong SecretID's
        steps on it. It is read from storage and decoded like a real role (a key outside
        ``role/``, so never listed), its ``hmac_key`` random: no SecretID is ever stored
        under it."""
        raw = self.storage.get(ABSENT_KEY)
        if raw is None:
            with node_lock(f"approle-salt|{self._uuid}"):
                raw = self.storage.get(ABSENT_KEY)
                if raw is None:
                    raw = Role(name=ABSENT_ROLE, role_id="",
                               hmac_key=secrets.token_hex(32)).to_json()
                    self.storage.put(ABSENT_KEY, raw)
        return Role.from_json(raw)
