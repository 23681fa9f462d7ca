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
  - Authenticated sessions are cached at module level for the life of the Ansible process,
    keyed by the URL, TLS settings and authentication parameters, so many lookups in one run
    reuse one C(requests.Session) (and one login, for login-based auth methods).
    Worker processes forked by Ansible inherit the cache as it was at fork time.
  - Connection errors and HTTP 5xx/429 answers are retried with exponential backoff;
    other 4xx answers fail at once.
options:
  _terms:
    description: Secret paths, each C(<mount>/<path>), for example C(secret/app).
    required: true
    type: list
    elements: str
  url:
    description: Address of the server, for example C(https://vault.example.com:8200).
    type: str
    default: http://127.0.0.1:8200
    env:
      - name: STRONGROOM_ADDR
      - name: VAULT_ADDR
  token:
    description: Token used when O(auth_method=token).
    type: str
    env:
      - name: STRONGROOM_TOKEN
      - name: VAULT_TOKEN
  auth_method:
    description:
      - How to authenticate. Only C(token) is implemented; further methods (approle,
        userpass) plug into the same registry of auth classes.
    type: str
    default: token
    choices: [token]
  engine_version:
    description:
      - KV engine version of the mount. C(auto) asks the server.
    type: str
    default: auto
    choices: [auto, "1", "2"]
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
  validate_certs:
    description: Whether to verify the server's TLS certificate.
    type: bool
    default: true
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
  - Uses only the C(requests) library.
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

import threading
import time
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


# --- authentication -------------------------------------------------------------------------

class AuthMethod:
    """Base class: authenticate a session once. Subclasses register themselves by ``name``."""

    name: ClassVar[str] = ""
    #: option names that identify the credentials (they become part of the session cache key)
    params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def cache_key(self) -> tuple[Any, ...]:
        return (self.name,) + tuple(self.options.get(p) for p in self.params)

    def authenticate(self, client: VaultClient) -> None:
        raise NotImplementedError


AUTH_METHODS: dict[str, type[AuthMethod]] = {}


def register_auth(cls: type[AuthMethod]) -> type[AuthMethod]:
    AUTH_METHODS[cls.name] = cls
    return cls


@register_auth
class TokenAuth(AuthMethod):
    name = "token"
    params = ("token",)

    def authenticate(self, client: VaultClient) -> None:
        token = self.options.get("token")
        if not token:
            raise AnsibleError(
                "strongroom.vault.kv: no token given (set the 'token' option, "
                "STRONGROOM_TOKEN or VAULT_TOKEN)")
        client.session.headers["X-Vault-Token"] = token


# --- HTTP client ----------------------------------------------------------------------------

class VaultClient:
    """A requests.Session bound to one server and one identity, with retrying requests."""

    def __init__(self, url: str, verify: bool | str, auth: AuthMethod) -> None:
        self.url = url.rstrip("/")
        self.verify = verify
        self.session = requests.Session()
        self.session.verify = verify
        self.auth = auth
        self.mount_versions: dict[str, tuple[str, str]] = {}
        auth.authenticate(self)

    def request(self, method: str, path: str, *, timeout: float, retries: int,
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


# Module-level session cache: (url, verify, auth cache key) -> VaultClient.
# It lives as long as the Python process, so every lookup in one ansible run that targets the
# same server with the same credentials reuses one authenticated requests.Session.
_CLIENTS: dict[tuple[Any, ...], VaultClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_client(url: str, verify: bool | str, auth: AuthMethod) -> VaultClient:
    key = (url.rstrip("/"), verify, auth.cache_key())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = VaultClient(url, verify, auth)
            _CLIENTS[key] = client
        return client


def clear_cache() -> None:
    """Drop all cached sessions (for tests)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.session.close()
        _CLIENTS.clear()


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
            "url", "token", "auth_method", "engine_version", "field", "version", "ca_cert",
            "validate_certs", "timeout", "retries")}

        method = opts["auth_method"]
        if method not in AUTH_METHODS:
            raise AnsibleError(f"strongroom.vault.kv: unsupported auth_method {method!r} "
                               f"(supported: {', '.join(sorted(AUTH_METHODS))})")
        verify: bool | str = bool(opts["validate_certs"])
        if verify and opts["ca_cert"]:
            verify = opts["ca_cert"]
        client = get_client(opts["url"], verify, AUTH_METHODS[method](opts))
        return [self._read(client, str(term), opts) for term in terms]

    def _mount_of(self, client: VaultClient, path: str, opts: dict[str, Any]) -> tuple[str, str]:
        """(mount path with trailing slash, KV version '1'/'2') for a secret path."""
        forced = opts["engine_version"]
        if forced in ("1", "2"):
            mount, _, _ = path.partition("/")
            return mount + "/", forced
        for mount, found in client.mount_versions.items():
            if path.startswith(mount):
                return mount, found[1]
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
        client.mount_versions[mount] = (mount, version)
        return mount, version

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
