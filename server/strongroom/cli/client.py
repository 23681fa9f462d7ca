"""A small client for the Vault-compatible HTTP API, used by every CLI command.

Configuration follows the ``vault`` CLI so existing shells keep working:
``STRONGROOM_*`` variables win over ``VAULT_*``, which win over OpenBao's
``BAO_*``; command-line flags win over all of them. The token is never part
of a ``repr``, log line or error message.
"""

from __future__ import annotations

import json as _json
import os
import posixpath
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from urllib3.exceptions import InsecureRequestWarning

from strongroom import __version__
from strongroom.cli.api_errors import ApiError as ApiError
from strongroom.cli.api_errors import ClientError as ClientError
from strongroom.cli.api_errors import ConfigError as ConfigError
from strongroom.cli.api_errors import ConnectError as ConnectError
from strongroom.cli.api_errors import JsonObject as JsonObject
from strongroom.cli.flags import parse_bool

DEFAULT_ADDRESS = "https://127.0.0.1:8200"
TOKEN_FILE_NAME = ".vault-token"  # noqa: S105 - a file name, not a secret
# Vault's API client default; unseal and init are quick, but a server behind
# a slow storage backend may legitimately take a while to answer.
DEFAULT_TIMEOUT_SECONDS = 60.0

ADDRESS_ENV = ("STRONGROOM_ADDR", "VAULT_ADDR", "BAO_ADDR")
TOKEN_ENV = ("STRONGROOM_TOKEN", "VAULT_TOKEN", "BAO_TOKEN")
CACERT_ENV = ("STRONGROOM_CACERT", "VAULT_CACERT", "BAO_CACERT")
SKIP_VERIFY_ENV = ("STRONGROOM_SKIP_VERIFY", "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY")
WRAP_TTL_ENV = ("STRONGROOM_WRAP_TTL", "VAULT_WRAP_TTL", "BAO_WRAP_TTL")
CLIENT_CERT_ENV = ("STRONGROOM_CLIENT_CERT", "VAULT_CLIENT_CERT", "BAO_CLIENT_CERT")
CLIENT_KEY_ENV = ("STRONGROOM_CLIENT_KEY", "VAULT_CLIENT_KEY", "BAO_CLIENT_KEY")
#: Vault's client wraps sys/wrapping/wrap writes for this long unless told otherwise.
DEFAULT_WRAP_TTL = "5m"

def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    # An empty variable counts as unset, as in Vault, so `VAULT_ADDR= cmd` works.
    for name in names:
        value = env.get(name, "")
        if value:
            return value
    return None


@dataclass(frozen=True)
class ClientConfig:
    """Resolved connection settings.

    Attributes:
        address: Server base URL, e.g. ``http://127.0.0.1:8200``.
        token: Client token sent as ``X-Vault-Token``; never shown in ``repr``.
        ca_cert: PEM bundle used to verify the server, or ``None`` for system CAs.
        skip_verify: Disable TLS verification entirely.
        timeout: Per-request timeout in seconds.
        wrap_ttl: Ask the server to wrap every response for this long (a Go
            duration string sent as ``X-Vault-Wrap-TTL``), or ``None``.
        client_cert: PEM certificate presented to the server (TLS client
            authentication, e.g. for the cert auth method), or ``None``.
        client_key: PEM private key of ``client_cert``.
    """

    address: str = DEFAULT_ADDRESS
    token: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    skip_verify: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    wrap_ttl: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def resolve(
        cls, env: Mapping[str, str] | None = None, *, address: str | None = None,
        ca_cert: str | None = None, skip_verify: bool | None = None,
        token: str | None = None, token_file: Path | None = None,
        wrap_ttl: str | None = None, client_cert: str | None = None,
        client_key: str | None = None,
    ) -> ClientConfig:
        """Combine explicit settings (flags) with the environment.

        Args:
            env: Environment to read; defaults to ``os.environ``.
            address: ``-address`` flag value, overriding the environment.
            ca_cert: ``-ca-cert`` flag value.
            skip_verify: ``-tls-skip-verify`` flag value, if the flag was given.
            token: Explicit token, overriding the environment and token file.
            token_file: Token file to fall back on; defaults to ``~/.vault-token``.
            wrap_ttl: ``-wrap-ttl`` flag value, overriding ``*_WRAP_TTL``.
            client_cert: ``-client-cert`` flag value, overriding ``*_CLIENT_CERT``.
            client_key: ``-client-key`` flag value, overriding ``*_CLIENT_KEY``.

        Returns:
            The resolved configuration.

        Raises:
            ConfigError: A ``*_SKIP_VERIFY`` variable is not a boolean.
        """
        env = os.environ if env is None else env
        if skip_verify is None:
            raw = _first_env(env, SKIP_VERIFY_ENV)
            try:
                skip_verify = parse_bool(raw) if raw is not None else False
            except ValueError:
                raise ConfigError(f"could not parse skip-verify setting {raw!r}") from None
        if token is None:
            token = _first_env(env, TOKEN_ENV)
        if token is None:
            if token_file is None:
                home = env.get("HOME") or os.path.expanduser("~")
                token_file = Path(home) / TOKEN_FILE_NAME
            token = read_token_file(token_file)
        return cls(
            address=address or _first_env(env, ADDRESS_ENV) or DEFAULT_ADDRESS,
            token=token,
            ca_cert=ca_cert or _first_env(env, CACERT_ENV),
            skip_verify=skip_verify,
            wrap_ttl=wrap_ttl or _first_env(env, WRAP_TTL_ENV),
            client_cert=client_cert or _first_env(env, CLIENT_CERT_ENV),
            client_key=client_key or _first_env(env, CLIENT_KEY_ENV),
        )


def read_token_file(path: Path) -> str | None:
    """Return the token stored at ``path`` (as ``vault login`` leaves it), if any.

    A missing or unreadable file just means "no token": commands that need one
    get a clear 403 from the server instead of a local crash.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def _transport_reason(exc: BaseException) -> str:
    """Dig the useful part ("Connection refused") out of requests' nested errors."""
    if isinstance(exc, requests.Timeout):
        return "request timed out"
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if not isinstance(err, requests.RequestException) and isinstance(err, OSError):
            if err.strerror:
                return err.strerror
            if err.args and isinstance(err.args[-1], str):
                return err.args[-1]
        nested = [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))
    return str(exc)


class ApiClient:
    """Thin wrapper over ``requests.Session`` for ``/v1/...`` endpoints.

    Every method returns the parsed JSON object (``None`` for an empty 2xx
    body) and raises :class:`ApiError` for non-2xx answers and
    :class:`ConnectError` when the server cannot be reached.
    """

    def __init__(self, config: ClientConfig, session: requests.Session | None = None) -> None:
        if not config.address.startswith(("http://", "https://")):
            raise ConfigError(
                f'invalid address "{config.address}": must start with http:// or https://'
            )
        self.config = config
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"strongroom-cli/{__version__}"
        # Vault's own client sends this on every call; servers use it as an
        # anti-SSRF marker, so a compatible client must send it too.
        self.session.headers["X-Vault-Request"] = "true"
        if config.token:
            self.session.headers["X-Vault-Token"] = config.token
        self.session.verify = False if config.skip_verify else (config.ca_cert or True)
        if config.client_cert:
            # As vault: the key is required with the certificate (a combined PEM file
            # given as both works too).
            if not config.client_key:
                raise ConfigError("a client certificate needs its private key "
                                  "(-client-key or VAULT_CLIENT_KEY)")
            self.session.cert = (config.client_cert, config.client_key)
        # Vault's client follows one redirect (standby -> active node); a chain
        # of them is a misconfiguration, and each hop would carry the token.
        self.session.max_redirects = 1

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def url(self, path: str) -> str:
        """Return the full URL for an API path such as ``sys/seal-status``.

        The path is cleaned like Go's ``path.Join`` in Vault's client: doubled
        and trailing slashes go, so ``sys/mounts/kv/`` is sent as ``sys/mounts/kv``.
        """
        return f"{self.config.address.rstrip('/')}{posixpath.normpath('/v1/' + path)}"

    def wrap_ttl_for(self, method: str, path: str) -> str | None:
        """The wrap TTL to request for a call, as Vault's client chooses it."""
        if self.config.wrap_ttl:
            return self.config.wrap_ttl
        if method in ("PUT", "POST") and path.strip("/") == "sys/wrapping/wrap":
            return DEFAULT_WRAP_TTL
        return None

    def request(
        self, method: str, path: str, *, json: JsonObject | None = None,
        params: Mapping[str, str | list[str]] | None = None,
        content_type: str | None = None, wrap: bool = True,
    ) -> JsonObject | None:
        """Send one request and decode the answer.

        Args:
            method: HTTP method, e.g. ``"GET"`` or ``"PUT"``.
            path: API path relative to ``/v1/``.
            json: Request body, sent as JSON.
            params: Query parameters.
            content_type: Send the JSON body with this Content-Type instead
                (``application/merge-patch+json`` for KV patch).
            wrap: Whether the configured response wrapping applies; internal
                look-ups such as the KV version check are never wrapped.

        Returns:
            The decoded JSON object, or ``None`` when the body is empty.

        Raises:
            ApiError: Non-2xx status.
            ConnectError: Transport or TLS failure.
            ClientError: A 2xx answer that is not a JSON object.
        """
        url = self.url(path)
        headers: dict[str, str] = {}
        wrap_ttl = self.wrap_ttl_for(method, path) if wrap else None
        if wrap_ttl:
            headers["X-Vault-Wrap-TTL"] = wrap_ttl
        body: bytes | None = None
        if content_type is not None:
            headers["Content-Type"] = content_type
            body = _json.dumps(json if json is not None else {}).encode()
            json = None
        try:
            with warnings.catch_warnings():
                # -tls-skip-verify is an explicit user choice; don't nag on stderr.
                warnings.simplefilter("ignore", InsecureRequestWarning)
                # verify is passed per request because requests lets
                # REQUESTS_CA_BUNDLE override the session's value, which would
                # silently undo -ca-cert and -tls-skip-verify.
                resp = self.session.request(
                    method, url, json=json, data=body, params=params, headers=headers,
                    timeout=self.config.timeout, verify=self.session.verify,
                )
        except requests.RequestException as exc:
            raise ConnectError(f'{method} "{url}": {_transport_reason(exc)}') from None
        if not 200 <= resp.status_code < 300:
            raise self._api_error(resp, method)
        if not resp.content.strip():
            return None
        try:
            body = resp.json()
        except ValueError:
            raise ClientError(f'{method} "{url}": response is not JSON') from None
        if not isinstance(body, dict):
            raise ClientError(f'{method} "{url}": response is not a JSON object')
        return body

    @staticmethod
    def _api_error(resp: requests.Response, method: str) -> ApiError:
        try:
            body = resp.json()
        except ValueError:
            body = None
        obj = body if isinstance(body, dict) else None
        if obj is not None and isinstance(obj.get("errors"), list):
            errors = [str(e) for e in obj["errors"]]
            return ApiError(resp.status_code, errors, method=method, url=resp.url, body=obj)
        # Like Vault's client, anything that is not an error object (an empty
        # body included) is reported as the raw message.
        return ApiError(resp.status_code, [resp.text.strip()], method=method,
                        url=resp.url, raw=True, body=obj)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonObject | None:
        """``GET`` an API path."""
        return self.request("GET", path, params=params)

    def put(self, path: str, data: JsonObject | None = None) -> JsonObject | None:
        """``PUT`` a JSON body to an API path."""
        return self.request("PUT", path, json=data)

    def post(self, path: str, data: JsonObject | None = None) -> JsonObject | None:
        """``POST`` a JSON body to an API path."""
        return self.request("POST", path, json=data)

    def delete(self, path: str) -> JsonObject | None:
        """``DELETE`` an API path."""
        return self.request("DELETE", path)

    def list(self, path: str) -> JsonObject | None:
        """List keys under a path (``GET ?list=true``, as the vault CLI sends it)."""
        return self.request("GET", path, params={"list": "true"})

    # --- sys/ endpoints used by `status` and `operator` -------------------------

    def seal_status(self) -> JsonObject:
        """Return ``GET sys/seal-status``."""
        return self.get("sys/seal-status") or {}

    def leader(self) -> JsonObject:
        """Return ``GET sys/leader``."""
        return self.get("sys/leader") or {}

    def init_status(self) -> bool:
        """Return whether the server is initialized (``GET sys/init``)."""
        return bool((self.get("sys/init") or {}).get("initialized"))

    def init(self, secret_shares: int, secret_threshold: int, **extra: Any) -> JsonObject:
        """Initialize the server (``PUT sys/init``); the answer holds keys and root token."""
        body: JsonObject = {"secret_shares": secret_shares,
                            "secret_threshold": secret_threshold, **extra}
        return self.put("sys/init", body) or {}

    def unseal(self, key: str, migrate: bool = False) -> JsonObject:
        """Submit one unseal key share (of the old seal's keys with ``migrate``); returns
        the new seal status."""
        body: JsonObject = {"key": key, "migrate": True} if migrate else {"key": key}
        return self.put("sys/unseal", body) or {}

    def unseal_reset(self) -> JsonObject:
        """Discard the unseal shares submitted so far; returns the seal status."""
        return self.put("sys/unseal", {"reset": True}) or {}

    def seal(self) -> None:
        """Seal the server (``PUT sys/seal``; needs a token allowed to do so)."""
        self.put("sys/seal")
