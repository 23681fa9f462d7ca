# Strongroom Ansible collection: KV secrets lookup.
# SPDX-License-Identifier: MPL-2.0
# Ansible convention: DOCUMENTATION/EXAMPLES/RETURN come before the imports.
# ruff: noqa: E402
"""Lookup plugin ``strongroom.vault.kv``: read KV v1/v2 secrets over the Vault HTTP API."""

from __future__ import annotations

DOCUMENTATION = r"""
name: kv
author: Strongroom developers
version_added: "0.1.0"
short_description: Read secrets from a KV (v1 or v2) engine on Strongroom or Vault
description:
  - Reads one or more secrets from a key/value secrets engine of a server that speaks
    the HashiCorp Vault HTTP API (Strongroom, OpenBao, Vault).
  - Each term is a secret path including its mount, for example C(secret/app).
  - The KV engine version is detected per mount with C(GET /v1/sys/internal/ui/mounts/<path>),
    as the C(vault kv) CLI does, unless O(engine_version) is given.
  - Within one task, lookups share one C(requests.Session) per URL, TLS settings and
    authentication parameters. Across the tasks of a run (each task runs in a new forked
    worker), a login token is shared through the plugin's encrypted token cache (see the notes).
  - Connection errors and HTTP 5xx/429 answers are retried with exponential backoff;
    other 4xx answers fail at once.
  - With O(auth_method=approle) the lookup logs in with an AppRole (O(role_id) plus O(secret_id),
    or O(wrapped_secret_id), a response-wrapped SecretID it unwraps once) and reuses that login
    token for every lookup of the run.
options:
  _terms:
    description: Secret paths, each C(<mount>/<path>), for example C(secret/app).
    required: true
    type: list
    elements: str
  url:
    description:
      - Address of the server, for example C(https://vault.example.com:8200).
      - Set it per inventory (group or host variable C(ansible_strongroom_url)), in C(ansible.cfg)
        (section C([strongroom_vault]), key C(url)) or in the environment.
    type: str
    default: https://127.0.0.1:8200
    env:
      - name: STRONGROOM_ADDR
      - name: VAULT_ADDR
    ini:
      - section: strongroom_vault
        key: url
    vars:
      - name: ansible_strongroom_url
  token:
    description:
      - Token used when O(auth_method=token); the parent token that creates the run's child
        token when O(auth_method=child_token).
      - No C(ansible.cfg) key, on purpose, since a token does not belong in a clear-text
        configuration file (community.hashi_vault makes the same choice). Keep
        C(ansible_strongroom_token) in an ansible-vault encrypted variable file.
    type: str
    env:
      - name: STRONGROOM_TOKEN
      - name: VAULT_TOKEN
    vars:
      - name: ansible_strongroom_token
  auth_method:
    description:
      - How to authenticate.
      - C(token) sends O(token) with every request.
      - C(child_token) logs in once per C(ansible-playbook) run; with O(token) it creates a
        short-lived child token (C(POST /v1/auth/token/create), or C(/v1/auth/token/create/<role>)
        with O(child_token_role)) and uses that for every read of the run, in every task and
        every forked worker (see the notes on the token cache).
      - C(approle) logs in once per run at C(auth/<auth_mount_point>/login) with O(role_id) and
        O(secret_id), or with O(role_id) and O(wrapped_secret_id); the token is shared like the
        child token, renewed when it nears its expiry, and replaced by a new login when it can
        no longer be renewed or the server refuses it.
    type: str
    default: token
    choices: [token, child_token, approle]
    env:
      - name: STRONGROOM_AUTH_METHOD
    ini:
      - section: strongroom_vault
        key: auth_method
    vars:
      - name: ansible_strongroom_auth_method
  child_token_role:
    description: Token role to create the child token against (O(auth_method=child_token)).
    type: str
    ini:
      - section: strongroom_vault
        key: child_token_role
    vars:
      - name: ansible_strongroom_child_token_role
  child_token_ttl:
    description: TTL of the child token (O(auth_method=child_token)), a Vault duration.
    type: str
    default: 30m
    ini:
      - section: strongroom_vault
        key: child_token_ttl
    vars:
      - name: ansible_strongroom_child_token_ttl
  child_token_policies:
    description:
      - Policies of the child token (O(auth_method=child_token)); a subset of the parent's.
        The parent's policies when omitted.
    type: list
    elements: str
    vars:
      - name: ansible_strongroom_child_token_policies
  role_id:
    description: RoleID of the AppRole (O(auth_method=approle)). Not a secret on its own.
    type: str
    env:
      - name: STRONGROOM_ROLE_ID
    ini:
      - section: strongroom_vault
        key: role_id
    vars:
      - name: ansible_strongroom_role_id
  secret_id:
    description:
      - SecretID of the AppRole (O(auth_method=approle)). Omit it for a role with
        C(bind_secret_id=false), or give O(wrapped_secret_id) instead.
      - No C(ansible.cfg) key, for the same reason as O(token).
    type: str
    env:
      - name: STRONGROOM_SECRET_ID
    vars:
      - name: ansible_strongroom_secret_id
  wrapped_secret_id:
    description:
      - A response-wrapping token that wraps a SecretID (the answer of
        C(POST auth/<mount>/role/<role>/secret-id) asked with C(X-Vault-Wrap-TTL), as
        C(playbooks/issue-secret-id.yml) delivers it), used instead of O(secret_id).
      - The lookup first checks with C(sys/wrapping/lookup) that the token was created by
        C(auth/<auth_mount_point>/role/<role>/secret-id), then unwraps it (C(sys/wrapping/unwrap))
        once per run; the SecretID stays in memory and in the run's encrypted token cache only,
        for logging in again when the token expires.
      - A wrapping token can be unwrapped only once. If it was already unwrapped (by an earlier
        run, or by someone who intercepted it) or has expired, the lookup fails with an error
        that says so; issue a new one, and investigate when no run of yours used it.
    type: str
    env:
      - name: STRONGROOM_WRAPPED_SECRET_ID
    vars:
      - name: ansible_strongroom_wrapped_secret_id
  auth_mount_point:
    description: Mount path of the auth method for O(auth_method=approle).
    type: str
    default: approle
    env:
      - name: STRONGROOM_AUTH_MOUNT_POINT
    ini:
      - section: strongroom_vault
        key: auth_mount_point
    vars:
      - name: ansible_strongroom_auth_mount_point
  engine_version:
    description:
      - KV engine version of the mount. C(auto) asks the server.
      - With C(1) or C(2) the mount is O(mount_point) when given, otherwise the server is asked
        for the mount path (a mount may be more than one path segment, C(team/kv)).
    type: str
    default: auto
    choices: [auto, "1", "2"]
  mount_point:
    description:
      - Mount path of the KV engine, for example C(team/kv), when O(engine_version) is forced;
        the lookup then sends no mount query at all. Each term must start with it.
    type: str
  field:
    description: Return only this key of the secret's data instead of the whole dictionary.
    type: str
  version:
    description: Secret version to read (KV v2 only). Latest when omitted.
    type: int
  ca_cert:
    description: Path to a CA bundle (PEM) used to verify the server certificate.
    type: path
    env:
      - name: STRONGROOM_CACERT
      - name: VAULT_CACERT
    ini:
      - section: strongroom_vault
        key: ca_cert
    vars:
      - name: ansible_strongroom_ca_cert
  validate_certs:
    description: Whether to verify the server's TLS certificate.
    type: bool
    default: true
    vars:
      - name: ansible_strongroom_validate_certs
  timeout:
    description: Timeout in seconds for each HTTP request.
    type: float
    default: 30
  retries:
    description:
      - How many times to retry a request after a connection error or an HTTP 5xx/429 answer,
        with exponential backoff (0.5 s, 1 s, 2 s, ...). C(0) disables retrying.
    type: int
    default: 3
notes:
  - Uses the C(requests) library, and C(cryptography) (a dependency of ansible-core) for the
    token cache.
  - "Token cache: a login token (O(auth_method=child_token) or O(auth_method=approle)) is
    kept for the whole run in Ansible's per-run local temporary directory
    (C(DEFAULT_LOCAL_TMP), mode 0700, removed when the run ends), encrypted with AES-256-GCM
    under a key derived with scrypt from the URL, the TLS settings, the auth method and its
    credentials; the file name is derived the same way. Two servers or two auth
    configurations never share an entry, and the token is never written in clear nor logged.
    A cached token near the end of its TTL is renewed (C(auth/token/renew-self)) when it is
    renewable and the renewal buys more than a few seconds; otherwise, or when the server
    refuses it (a 403 answer while C(auth/token/lookup-self) fails too), the lookup logs in
    again, once, shared by the workers through a file lock."
  - Secrets (tokens, SecretIDs, the wrapping token) are never written to Ansible's output, even
    with C(-vvv); the lookup's result is, like any lookup's, unless the task has C(no_log).
"""

EXAMPLES = r"""
- name: Whole secret as a dictionary (KV version detected automatically)
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app') }}"

- name: One field, explicit server and token
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app', field='password',
             url='https://strongroom.example.com:8200', token=my_token) }}"

- name: An older version of a KV v2 secret
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app', version=1) }}"

- name: Per inventory (group_vars/all.yml), then plain lookups
  # ansible_strongroom_url: https://strongroom.example.com:8200
  # ansible_strongroom_ca_cert: /etc/ssl/strongroom-ca.pem
  # ansible_strongroom_auth_method: child_token   # one login per run, shared by all tasks
  # ansible_strongroom_token: "{{ vault_operator_token }}"   # from an ansible-vault file
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app', field='password') }}"

- name: A KV v2 mount two segments deep, version forced (no mount query)
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'team/kv/app', engine_version='2',
             mount_point='team/kv') }}"

- name: AppRole login (one login for the whole run), the SecretID from an ansible-vault file
  # group_vars/app.yml:
  #   ansible_strongroom_auth_method: approle
  #   ansible_strongroom_role_id: 3f1c...        # auth/approle/role/app/role-id
  #   ansible_strongroom_secret_id: "{{ vault_app_secret_id }}"   # ansible-vault encrypted
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app', field='password') }}"

- name: AppRole with a wrapped SecretID that playbooks/issue-secret-id.yml put on the host
  block:
    - name: Fetch the wrapped SecretID and the RoleID from the host
      ansible.builtin.slurp:
        src: "/etc/strongroom/approle/{{ item }}"
      loop: [app.wrapped-secret-id, app.role-id]
      register: approle_files
      no_log: true
    - name: Read a secret (the SecretID is unwrapped once, on the first lookup of the run)
      ansible.builtin.debug:
        msg: "{{ lookup('strongroom.vault.kv', 'secret/app', field='user', auth_method='approle',
                 role_id=approle_files.results[1].content | b64decode | trim,
                 wrapped_secret_id=approle_files.results[0].content | b64decode | trim) }}"

- name: AppRole mounted elsewhere
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'secret/app', auth_method='approle',
             auth_mount_point='machines', role_id=my_role_id, secret_id=my_secret_id) }}"

- name: A KV v1 mount, verifying TLS with a private CA, retrying up to 5 times
  ansible.builtin.debug:
    msg: "{{ lookup('strongroom.vault.kv', 'kv1/db', engine_version='1',
             ca_cert='/etc/ssl/strongroom-ca.pem', retries=5) }}"
"""

RETURN = r"""
_raw:
  description:
    - For each term, the secret's data as a dictionary, or the value of O(field) when given.
  type: list
  elements: raw
"""

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

try:
    import requests
except ImportError:  # pragma: no cover - reported when the lookup runs
    requests = None

display = Display()

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
#: a cached token this close to its expiry is treated as expired
EXPIRY_MARGIN = 10.0


# --- run-wide token cache ---------------------------------------------------------------------

class TokenCache:
    """Login tokens shared by every forked worker of one ansible run, encrypted at rest.

    Ansible forks a worker per task, so a module-level dict lives for one task only. The
    entries live in a directory under Ansible's per-run local temporary directory
    (``DEFAULT_LOCAL_TMP``: created mode 0700 by the controller process, removed at its exit;
    the workers inherit its path). Each entry is AES-256-GCM encrypted under a key derived with
    scrypt from the identity (URL, TLS settings, auth method, credentials), salted with the
    run's directory; the file name comes from the same derivation. Reading an entry needs the
    credentials that could log in anyway, and two identities never meet in one entry.
    """

    _derived: ClassVar[dict[bytes, tuple[bytes, str]]] = {}

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @classmethod
    def for_run(cls) -> TokenCache:
        from ansible import constants as C  # noqa: N812 - Ansible's own spelling

        directory = os.path.join(C.DEFAULT_LOCAL_TMP, "strongroom-vault-tokens")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return cls(directory)

    def _derive(self, identity: tuple[Any, ...]) -> tuple[bytes, str]:
        material = json.dumps(identity, default=str).encode()
        memo = hashlib.sha256(self.directory.encode() + b"\0" + material).digest()
        found = self._derived.get(memo)
        if found is None:
            out = hashlib.scrypt(material, salt=self.directory.encode(), n=2 ** 14, r=8, p=1,
                                 maxmem=64 * 1024 * 1024, dklen=48)
            found = (out[:32], out[32:].hex())
            self._derived[memo] = found
        return found

    @contextlib.contextmanager
    def locked(self, identity: tuple[Any, ...]) -> Iterator[CacheEntry]:
        """The entry of ``identity``, held under an exclusive lock shared by the workers."""
        key, name = self._derive(identity)
        fd = os.open(os.path.join(self.directory, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield CacheEntry(os.path.join(self.directory, name), key, name)
        finally:
            os.close(fd)


class CacheEntry:
    """One encrypted token file (use only inside ``TokenCache.locked``).

    A record is ``{"token", "expires" (epoch seconds, 0: never), "renewable", "state"}``;
    ``state`` is what a method needs to log in again (the unwrapped SecretID of a wrapped one).
    """

    def __init__(self, path: str, key: bytes, name: str) -> None:
        self.path, self._key, self._aad = path, key, name.encode()

    def load(self) -> dict[str, Any] | None:
        """The whole record, expired or not; None when absent or unreadable."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            with open(self.path, "rb") as fh:
                blob = fh.read()
            record = json.loads(AESGCM(self._key).decrypt(blob[:12], blob[12:], self._aad))
        except (OSError, ValueError, InvalidTag):
            return None
        return record if isinstance(record, dict) and record.get("token") else None

    def get(self) -> str | None:
        """The cached token, or None when absent, unreadable or (nearly) expired."""
        record = self.load()
        if record is None or expiring(record):
            return None
        return str(record["token"])

    def put(self, token: str, lease_duration: int, renewable: bool = False,
            state: dict[str, Any] | None = None) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        expires = time.time() + lease_duration if lease_duration > 0 else 0
        record = {"token": token, "expires": expires, "renewable": renewable,
                  "state": state or {}}
        nonce = os.urandom(12)
        blob = nonce + AESGCM(self._key).encrypt(nonce, json.dumps(record).encode(), self._aad)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path))  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def expiring(record: dict[str, Any]) -> bool:
    """Whether a cached token is expired or within EXPIRY_MARGIN of it."""
    expires = float(record.get("expires") or 0)
    return bool(expires) and time.time() > expires - EXPIRY_MARGIN


# --- authentication -------------------------------------------------------------------------

class AuthMethod:
    """Base class: authenticate a session once. Subclasses register themselves by ``name``."""

    name: ClassVar[str] = ""
    #: option names that identify the credentials (they become part of the session cache key)
    params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def cache_key(self) -> tuple[Any, ...]:
        values = (self.options.get(p) for p in self.params)
        return (self.name,) + tuple(tuple(v) if isinstance(v, list) else v for v in values)

    def authenticate(self, client: VaultClient) -> None:
        raise NotImplementedError

    #: whether ``refresh`` can replace a token the server refuses (login-based methods)
    refreshable: ClassVar[bool] = False

    def refresh(self, client: VaultClient) -> bool:
        """Replace a token the server refused; True when a new one is in place."""
        return False


AUTH_METHODS: dict[str, type[AuthMethod]] = {}


def register_auth(cls: type[AuthMethod]) -> type[AuthMethod]:
    AUTH_METHODS[cls.name] = cls
    return cls


def _need_token(options: dict[str, Any]) -> str:
    token = options.get("token")
    if not token:
        raise AnsibleError(
            "strongroom.vault.kv: no token given (set the 'token' option, the "
            "ansible_strongroom_token variable, STRONGROOM_TOKEN or VAULT_TOKEN)")
    return str(token)


@register_auth
class TokenAuth(AuthMethod):
    name = "token"
    params = ("token",)

    def authenticate(self, client: VaultClient) -> None:
        client.session.headers["X-Vault-Token"] = _need_token(self.options)


class Login:
    """What a login gives: the token, its TTL (0: none), whether it renews, the method's state."""

    def __init__(self, token: str, lease: int, renewable: bool = False,
                 state: dict[str, Any] | None = None) -> None:
        self.token, self.lease, self.renewable, self.state = token, lease, renewable, state


class LoginAuth(AuthMethod):
    """An auth method that logs in for a token; the token is shared run-wide (TokenCache)."""

    refreshable = True

    def login(self, client: VaultClient) -> Login:
        """Log in and return the new token."""
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        """Take back the state a login of this run stored with its token (see ``Login``)."""

    def _identity(self, client: VaultClient) -> tuple[Any, ...]:
        return (client.url, client.verify) + self.cache_key()

    def _login(self, client: VaultClient, entry: CacheEntry) -> str:
        got = self.login(client)
        entry.put(got.token, got.lease, got.renewable, got.state)
        return got.token

    def _renew(self, client: VaultClient, entry: CacheEntry, record: dict[str, Any]) -> str | None:
        """Renew a renewable token near its expiry; None when it cannot be (log in again)."""
        if not record.get("renewable") or time.time() >= float(record["expires"]):
            return None
        resp = client.request("POST", "auth/token/renew-self", json={},
                              headers={"X-Vault-Token": record["token"]},
                              timeout=client.timeout, retries=client.retries,
                              what="auth/token/renew-self", auth_retry=False)
        auth = (resp.json().get("auth") or {}) if resp.status_code == 200 else {}
        lease = int(auth.get("lease_duration") or 0)
        # Refused, or capped by its maximum TTL to a few seconds: a new login is worth more.
        if lease < 2 * EXPIRY_MARGIN:
            display.vvv(f"strongroom.vault.kv: {self.name}: token not renewable any more")
            return None
        display.vvv(f"strongroom.vault.kv: {self.name}: token renewed (ttl {lease}s)")
        entry.put(str(record["token"]), lease, bool(auth.get("renewable")), record.get("state"))
        return str(record["token"])

    def authenticate(self, client: VaultClient) -> None:
        with TokenCache.for_run().locked(self._identity(client)) as entry:
            record = entry.load()
            token = None
            if record is not None:
                self.restore(record.get("state") or {})
                if not expiring(record):
                    token = str(record["token"])
                    display.vvv(f"strongroom.vault.kv: {self.name}: token from the run's cache")
                else:
                    token = self._renew(client, entry, record)
            if token is None:
                token = self._login(client, entry)
        client.session.headers["X-Vault-Token"] = token

    def refresh(self, client: VaultClient) -> bool:
        refused = client.session.headers.get("X-Vault-Token")
        with TokenCache.for_run().locked(self._identity(client)) as entry:
            record = entry.load()
            if record is not None:
                self.restore(record.get("state") or {})
            token = entry.get()
            if token is None or token == refused:  # no other worker has replaced it yet
                display.vvv(f"strongroom.vault.kv: {self.name}: cached token refused, "
                            "logging in again")
                token = self._login(client, entry)
        client.session.headers["X-Vault-Token"] = token
        return True


@register_auth
class ChildTokenAuth(LoginAuth):
    """Create a short-lived child token of ``token`` once per run (auth/token/create[/role])."""

    name = "child_token"
    params = ("token", "child_token_role", "child_token_ttl", "child_token_policies")

    def login(self, client: VaultClient) -> tuple[str, int]:
        parent = _need_token(self.options)
        role = self.options.get("child_token_role")
        body: dict[str, Any] = {"ttl": self.options.get("child_token_ttl") or "30m",
                                "display_name": "ansible-strongroom-vault"}
        if self.options.get("child_token_policies"):
            body["policies"] = list(self.options["child_token_policies"])
        path = f"auth/token/create/{role}" if role else "auth/token/create"
        resp = client.request("POST", path, json=body, headers={"X-Vault-Token": parent},
                              timeout=client.timeout, retries=client.retries, what=path,
                              auth_retry=False)
        if resp.status_code != 200:
            raise AnsibleError(f"strongroom.vault.kv: child_token login ({path}) failed: "
                               f"HTTP {resp.status_code} {_errors(resp)}")
        auth = resp.json().get("auth") or {}
        if not auth.get("client_token"):
            raise AnsibleError(f"strongroom.vault.kv: child_token login ({path}) returned no token")
        display.vvv(f"strongroom.vault.kv: child_token: logged in ({path}, "
                    f"ttl {auth.get('lease_duration')}s)")
        return Login(str(auth["client_token"]), int(auth.get("lease_duration") or 0),
                     bool(auth.get("renewable")))


@register_auth
class AppRoleAuth(LoginAuth):
    """AppRole login (auth/<mount>/login) with a SecretID or a response-wrapped SecretID."""

    name = "approle"
    params = ("auth_mount_point", "role_id", "secret_id", "wrapped_secret_id")

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._unwrapped: str | None = None  # the SecretID a wrapped one held, once unwrapped

    @property
    def mount(self) -> str:
        return str(self.options.get("auth_mount_point") or "approle").strip("/")

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("secret_id") and self._unwrapped is None:
            self._unwrapped = str(state["secret_id"])

    def _secret_id(self, client: VaultClient) -> tuple[str | None, dict[str, Any] | None]:
        """(SecretID or None for bind_secret_id=false, state to keep with the token)."""
        wrapped = self.options.get("wrapped_secret_id")
        if self.options.get("secret_id") and wrapped:
            raise AnsibleError("strongroom.vault.kv: give secret_id or wrapped_secret_id, "
                               "not both")
        if not wrapped:
            return (str(self.options["secret_id"]) if self.options.get("secret_id") else None,
                    None)
        if self._unwrapped is None:
            self._unwrapped = self._unwrap(client, str(wrapped).strip())
        return self._unwrapped, {"secret_id": self._unwrapped}

    def _wrapping_call(self, client: VaultClient, path: str, wrapped: str) -> requests.Response:
        # The wrapping token authenticates the call itself; never a token of the session.
        return client.request("POST", path, json={}, headers={"X-Vault-Token": wrapped},
                              timeout=client.timeout, retries=client.retries, what=path,
                              auth_retry=False)

    def _unwrap(self, client: VaultClient, wrapped: str) -> str:
        gone = ("strongroom.vault.kv: the wrapped secret_id cannot be unwrapped: it was "
                "already unwrapped, has expired, or is not a wrapping token ({}). A wrapped "
                "SecretID can be unwrapped only once: issue a new one (playbooks/"
                "issue-secret-id.yml), and if no run of yours used this one, treat it as "
                "intercepted (look up its accessor in the audit log)")
        look = self._wrapping_call(client, "sys/wrapping/lookup", wrapped)
        if look.status_code != 200:
            raise AnsibleError(gone.format(f"HTTP {look.status_code} {_errors(look)}"))
        # Only a SecretID of a role of this mount is acceptable: a wrapping token of anything
        # else handed over in its place means the delivery was tampered with.
        created = str((look.json().get("data") or {}).get("creation_path") or "")
        parts = created.strip("/").split("/")
        expected = f"auth/{self.mount}/role/<role>/secret-id"
        if not (created.startswith(f"auth/{self.mount}/role/") and parts[-1] == "secret-id"
                and len(parts) == len(expected.split("/"))):
            raise AnsibleError(f"strongroom.vault.kv: the wrapped secret_id was created at "
                               f"{created or 'an unknown path'}, not at {expected}: refusing "
                               "to unwrap it (was it swapped in transit?)")
        resp = self._wrapping_call(client, "sys/wrapping/unwrap", wrapped)
        if resp.status_code != 200:
            raise AnsibleError(gone.format(f"HTTP {resp.status_code} {_errors(resp)}"))
        secret_id = (resp.json().get("data") or {}).get("secret_id")
        if not secret_id:
            raise AnsibleError("strongroom.vault.kv: the unwrapped response holds no secret_id")
        display.vvv(f"strongroom.vault.kv: approle: unwrapped the SecretID ({created})")
        return str(secret_id)

    def login(self, client: VaultClient) -> Login:
        role_id = self.options.get("role_id")
        if not role_id:
            raise AnsibleError(
                "strongroom.vault.kv: auth_method=approle needs role_id (the role_id option, "
                "ansible_strongroom_role_id or STRONGROOM_ROLE_ID)")
        secret_id, state = self._secret_id(client)
        body = {"role_id": str(role_id)}
        if secret_id is not None:
            body["secret_id"] = secret_id
        path = f"auth/{self.mount}/login"
        # No token on a login: a stale one of the session has nothing to do there.
        resp = client.request("POST", path, json=body, headers={"X-Vault-Token": None},
                              timeout=client.timeout, retries=client.retries, what=path,
                              auth_retry=False)
        if resp.status_code != 200:
            raise AnsibleError(f"strongroom.vault.kv: approle login ({path}) failed: "
                               f"HTTP {resp.status_code} {_errors(resp)}")
        auth = resp.json().get("auth") or {}
        if not auth.get("client_token"):
            raise AnsibleError(f"strongroom.vault.kv: approle login ({path}) returned no token")
        display.vvv(f"strongroom.vault.kv: approle: logged in ({path}, "
                    f"ttl {auth.get('lease_duration')}s)")
        return Login(str(auth["client_token"]), int(auth.get("lease_duration") or 0),
                     bool(auth.get("renewable")), state)


# --- HTTP client ----------------------------------------------------------------------------

class VaultClient:
    """A requests.Session bound to one server and one identity, with retrying requests."""

    def __init__(self, url: str, verify: bool | str, auth: AuthMethod, *,
                 timeout: float = 30, retries: int = 3) -> None:
        self.url = url.rstrip("/")
        self.verify = verify
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()
        self.session.verify = verify
        self.auth = auth
        self.mount_versions: dict[str, str] = {}
        auth.authenticate(self)

    def request(self, method: str, path: str, *, timeout: float, retries: int,
                what: str, auth_retry: bool = True, **kwargs: Any) -> requests.Response:
        """Send a request (see ``_send``); a token the server refuses is replaced once."""
        resp = self._send(method, path, timeout=timeout, retries=retries, what=what, **kwargs)
        if resp.status_code != 403 or not auth_retry or not self.auth.refreshable:
            return resp
        # 403 is both "policy denies this" and "no such token": only lookup-self tells them apart.
        check = self._send("GET", "auth/token/lookup-self", timeout=timeout, retries=retries,
                           what=what)
        if check.status_code == 200 or not self.auth.refresh(self):
            return resp
        return self._send(method, path, timeout=timeout, retries=retries, what=what, **kwargs)

    def _send(self, method: str, path: str, *, timeout: float, retries: int,
              what: str, **kwargs: Any) -> requests.Response:
        """Send a request; retry connection errors and 5xx/429 with exponential backoff."""
        url = f"{self.url}/v1/{path.lstrip('/')}"
        attempt = 0
        while True:
            try:
                # verify per request: requests lets $REQUESTS_CA_BUNDLE override Session.verify.
                resp = self.session.request(method, url, timeout=timeout, verify=self.verify,
                                            **kwargs)
            except requests.exceptions.SSLError as exc:
                raise AnsibleError(f"TLS error talking to {self.url} while reading {what}: {exc}") \
                    from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt >= retries:
                    raise AnsibleError(
                        f"cannot reach {self.url} while reading {what} "
                        f"(gave up after {attempt + 1} attempts): {exc}") from exc
                reason = f"connection error: {exc.__class__.__name__}"
            else:
                if resp.status_code not in RETRY_STATUSES or attempt >= retries:
                    return resp
                reason = f"HTTP {resp.status_code}"
            delay = BACKOFF_BASE * (2 ** attempt)
            attempt += 1
            display.vvv(f"strongroom.vault.kv: {reason} for {what}; retry {attempt}/{retries} "
                        f"in {delay:.1f}s")
            time.sleep(delay)


# Module-level session cache: (url, verify, auth cache key) -> VaultClient, for the lookups of
# one worker process (one task); TokenCache carries login tokens across tasks.
_CLIENTS: dict[tuple[Any, ...], VaultClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_client(url: str, verify: bool | str, auth: AuthMethod, *, timeout: float = 30,
               retries: int = 3) -> VaultClient:
    key = (url.rstrip("/"), verify, auth.cache_key())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = VaultClient(url, verify, auth, timeout=timeout, retries=retries)
            _CLIENTS[key] = client
        return client


def clear_cache() -> None:
    """Drop all cached sessions of this process (for tests)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.session.close()
        _CLIENTS.clear()


def match_mount(mounts: dict[str, str], path: str) -> tuple[str, str] | None:
    """The longest known mount (with trailing slash) that ``path`` lies under, and its version."""
    best = None
    for mount in mounts:
        if path.startswith(mount) and (best is None or len(mount) > len(best)):
            best = mount
    return None if best is None else (best, mounts[best])


def _errors(resp: requests.Response) -> str:
    try:
        errs = resp.json().get("errors") or []
    except ValueError:
        errs = []
    return "; ".join(str(e) for e in errs) or resp.reason or ""


# --- lookup ---------------------------------------------------------------------------------

class LookupModule(LookupBase):

    def run(self, terms: list[str], variables: dict[str, Any] | None = None,
            **kwargs: Any) -> list[Any]:
        if requests is None:
            raise AnsibleError("strongroom.vault.kv requires the 'requests' Python library")
        self.set_options(var_options=variables, direct=kwargs)
        opts = {name: self.get_option(name) for name in (
            "url", "token", "auth_method", "engine_version", "mount_point", "field", "version",
            "ca_cert", "validate_certs", "timeout", "retries", "child_token_role",
            "child_token_ttl", "child_token_policies", "role_id", "secret_id",
            "wrapped_secret_id", "auth_mount_point")}

        method = opts["auth_method"]
        if method not in AUTH_METHODS:
            raise AnsibleError(f"strongroom.vault.kv: unsupported auth_method {method!r} "
                               f"(supported: {', '.join(sorted(AUTH_METHODS))})")
        verify: bool | str = bool(opts["validate_certs"])
        if verify and opts["ca_cert"]:
            if not os.path.isfile(opts["ca_cert"]):
                raise AnsibleError(f"strongroom.vault.kv: ca_cert {opts['ca_cert']} is not a file")
            verify = opts["ca_cert"]
        client = get_client(opts["url"], verify, AUTH_METHODS[method](opts),
                            timeout=opts["timeout"], retries=opts["retries"])
        return [self._read(client, str(term), opts) for term in terms]

    def _mount_of(self, client: VaultClient, path: str, opts: dict[str, Any]) -> tuple[str, str]:
        """(mount path with trailing slash, KV version '1'/'2') for a secret path."""
        forced = opts["engine_version"]
        if forced in ("1", "2") and opts["mount_point"]:
            mount = opts["mount_point"].strip("/") + "/"
            if not path.startswith(mount):
                raise AnsibleError(f"{path} is not under mount_point {mount}")
            return mount, forced
        found = match_mount(client.mount_versions, path)
        if found is not None:
            return found[0], forced if forced in ("1", "2") else found[1]
        resp = client.request("GET", f"sys/internal/ui/mounts/{path}", timeout=opts["timeout"],
                              retries=opts["retries"], what=path)
        if resp.status_code == 403:
            raise AnsibleError(f"permission denied reading {path}: {_errors(resp)}")
        if resp.status_code == 404:
            raise AnsibleError(f"no secret at {path} (no secrets engine mounted there)")
        if resp.status_code != 200:
            raise AnsibleError(f"error looking up the mount of {path}: "
                               f"HTTP {resp.status_code} {_errors(resp)}")
        data = resp.json().get("data") or {}
        mount = data.get("path") or path.partition("/")[0] + "/"
        if not mount.endswith("/"):
            mount += "/"
        version = str((data.get("options") or {}).get("version") or "1")
        client.mount_versions[mount] = version
        return mount, forced if forced in ("1", "2") else version

    def _read(self, client: VaultClient, path: str, opts: dict[str, Any]) -> Any:
        path = path.strip("/")
        mount, kv_version = self._mount_of(client, path, opts)
        rest = path[len(mount):]
        params: dict[str, Any] = {}
        if kv_version == "2":
            api_path = f"{mount}data/{rest}"
            if opts["version"] is not None:
                params["version"] = opts["version"]
        else:
            if opts["version"] is not None:
                raise AnsibleError(f"'version' applies only to KV v2, but {path} is KV v1")
            api_path = f"{mount}{rest}"

        resp = client.request("GET", api_path, params=params, timeout=opts["timeout"],
                              retries=opts["retries"], what=path)
        if resp.status_code == 403:
            raise AnsibleError(f"permission denied reading {path}: {_errors(resp)}")
        if resp.status_code == 404:
            where = f"{path} (version {opts['version']})" if opts["version"] is not None else path
            raise AnsibleError(f"no secret at {where}")
        if resp.status_code != 200:
            raise AnsibleError(f"error reading {path}: HTTP {resp.status_code} {_errors(resp)}")

        data = resp.json().get("data") or {}
        if kv_version == "2":
            data = data.get("data")
            if data is None:  # deleted or destroyed version
                raise AnsibleError(f"no secret at {path} (version deleted or destroyed)")

        field = opts["field"]
        if field is None:
            return data
        if field not in data:
            raise AnsibleError(f"field {field!r} not found in secret {path} "
                               f"(fields: {', '.join(sorted(data)) or 'none'})")
        return data[field]
