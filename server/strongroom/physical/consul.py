"""Consul storage: the production and HA backend, as Vault's ``storage "consul"``.

Every key lives under ``path`` (default ``vault/``) in Consul's KV store, values
as raw bytes. LIST uses Consul's ``?keys&separator=/`` which already answers
with Vault's semantics (leaves as-is, folders with a trailing '/').

Options (all strings, as parsed from the config): ``address`` (host:port,
default 127.0.0.1:8500), ``scheme`` (http|https), ``tls_ca_file``,
``tls_cert_file`` + ``tls_key_file`` (client certificate), ``token`` (falls
back to ``$CONSUL_HTTP_TOKEN``), ``path``, ``consistency_mode`` (default|strong)
and ``max_parallel`` (concurrent requests, default 128). The HA options
(``session_ttl``, ``lock_wait_time``, ``service*``, ``disable_registration``)
are read by the HA code, not here.

For HA, writes can be fenced: ``put_fenced``/``delete_fenced``/``transaction``
run as one Consul transaction that starts with a ``check-session`` of the lock
key, so a node that lost the lock cannot overwrite its successor's data.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import consul
import requests
from consul.exceptions import ACLPermissionDenied, ConsulException
from requests.adapters import HTTPAdapter

from strongroom.errors import FencedError, InvalidKeyError, StorageError
from strongroom.physical.base import validate_key, validate_prefix
from strongroom.physical.consul_ha import ConsulSessions, check_session_id

__all__ = ["MAX_TXN_OPS", "ConsulBackend", "FencedError", "TxnOp"]

MAX_TXN_OPS = 64  # Consul 1.8 refuses larger transactions (413), and chunks would not be atomic
DEFAULT_ADDRESS = "127.0.0.1:8500"
DEFAULT_PATH = "vault/"
DEFAULT_MAX_PARALLEL = 128
_CONSISTENCY = {"default": "default", "strong": "consistent"}
_STATUS = re.compile(r"\A(\d{3})\b")

_T = TypeVar("_T")
TxnOp = tuple[str, str, bytes | None]
"""``("put", key, value)`` or ``("delete", key, None)``."""



class ConsulBackend(ConsulSessions):
    """A :class:`~strongroom.physical.base.Backend` over Consul's KV store."""

    def __init__(self, options: Mapping[str, str]) -> None:
        """Configure the client; no request is made until the first operation.

        Args:
            options: The ``storage "consul"`` stanza's options.

        Raises:
            ValueError: If an option is invalid.
        """
        scheme = options.get("scheme", "http")
        if scheme not in ("http", "https"):
            raise ValueError("consul scheme must be 'http' or 'https'")
        host, port = _split_address(options.get("address") or DEFAULT_ADDRESS)
        self._path = _normalise_path(options.get("path", DEFAULT_PATH))
        consistency = options.get("consistency_mode", "default")
        if consistency not in _CONSISTENCY:
            raise ValueError("consul consistency_mode must be 'default' or 'strong'")
        try:
            max_parallel = int(options.get("max_parallel", DEFAULT_MAX_PARALLEL))
        except ValueError:
            raise ValueError("consul max_parallel must be an integer") from None
        if max_parallel < 1:
            raise ValueError("consul max_parallel must be at least 1")
        cert_file, key_file = options.get("tls_cert_file"), options.get("tls_key_file")
        if bool(cert_file) != bool(key_file):
            raise ValueError("consul tls_cert_file and tls_key_file go together")
        # Vault's order: the configured token, else the environment's.
        token = options.get("token") or os.environ.get("CONSUL_HTTP_TOKEN") or None
        self._client: Any = consul.Consul(
            host=host, port=port, token=token, scheme=scheme,
            consistency=_CONSISTENCY[consistency],
            verify=options.get("tls_ca_file") or True,
            cert=(cert_file, key_file) if cert_file else None,
        )
        # py-consul lets $CONSUL_HTTP_TOKEN override token=, and txn.put() sends no
        # token at all: pin ours on the client and on every request of its session.
        self._client.token = token
        session: requests.Session = self._client.http.session
        if token:
            session.headers["X-Consul-Token"] = token
        adapter = HTTPAdapter(pool_maxsize=max_parallel)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._slots = threading.BoundedSemaphore(max_parallel)
        self.address = f"{scheme}://{host}:{port}"

    @property
    def client(self) -> Any:
        """The configured py-consul client (HA reuses it for checks and sessions)."""
        return self._client

    def absolute(self, key: str) -> str:
        """The Consul key under this backend's path for ``key``."""
        return self._path + key

    def get(self, key: str) -> bytes | None:
        """Read an entry; None if there is none. Raises StorageError if Consul fails."""
        full = self._full(key)
        _, item = self._call("get", repr(key), lambda: self._client.kv.get(full))
        if item is None:
            return None
        value = item.get("Value")
        return b"" if value is None else bytes(value)  # Consul answers null for b""

    def put(self, key: str, value: bytes) -> None:
        """Write an entry. Raises StorageError if Consul fails or refuses (ACL, size)."""
        full = self._full(key)
        data = bytes(value)
        if self._call("put", repr(key), lambda: self._client.kv.put(full, data)) is not True:
            raise StorageError(f"storage put of {key!r} failed: consul did not apply it")

    def delete(self, key: str) -> None:
        """Remove an entry; removing a missing entry is not an error."""
        full = self._full(key)
        self._call("delete", repr(key), lambda: self._client.kv.delete(full))

    def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix``: leaves as-is, folders with a trailing '/'."""
        validate_prefix(prefix)
        full = self._path + prefix
        _check_encodable(full)
        _, keys = self._call("list", repr(prefix), lambda: self._client.kv.get(
            full, keys=True, separator="/"))
        children = {
            name for name in (k[len(full):] for k in keys or () if k.startswith(full))
            # A foreign "folder marker" key equal to the prefix comes back as ''.
            if name not in ("", "/")
        }
        return sorted(children)

    def put_fenced(self, key: str, value: bytes, lock_key: str, session_id: str) -> None:
        """Write ``key`` only if ``session_id`` still holds the lock ``lock_key``.

        Raises:
            FencedError: If the session does not hold the lock; nothing is written.
            StorageError: If Consul fails or refuses.
        """
        self.transaction([("put", key, value)], lock_key, session_id)

    def delete_fenced(self, key: str, lock_key: str, session_id: str) -> None:
        """Delete ``key`` only if ``session_id`` still holds ``lock_key`` (else FencedError)."""
        self.transaction([("delete", key, None)], lock_key, session_id)

    def transaction(self, ops: Sequence[TxnOp], lock_key: str | None = None,
                    session_id: str | None = None) -> None:
        """Apply puts and deletes atomically: all of them or, on any error, none.

        Args:
            ops: ``("put", key, value)`` and ``("delete", key, None)`` tuples,
                applied in order.
            lock_key: With ``session_id``, fence the transaction on that lock.
            session_id: The session that must hold ``lock_key``.

        Raises:
            FencedError: If ``session_id`` does not hold ``lock_key``.
            StorageError: If there are more than 64 operations (63 when fenced),
                or Consul fails or refuses.
            ValueError: If an operation is malformed.
        """
        if (lock_key is None) != (session_id is None):
            raise ValueError("lock_key and session_id go together")
        payload: list[dict[str, dict[str, str]]] = []
        names: list[str] = []
        if lock_key is not None and session_id is not None:
            check_session_id(session_id)
            payload.append({"KV": {"Verb": "check-session", "Key": self._full(lock_key),
                                   "Session": session_id}})
            names.append(lock_key)
        for verb, key, value in ops:
            full = self._full(key)
            if verb == "put" and value is not None:
                encoded = base64.b64encode(bytes(value)).decode("ascii")
                payload.append({"KV": {"Verb": "set", "Key": full, "Value": encoded}})
            elif verb == "delete" and value is None:
                payload.append({"KV": {"Verb": "delete", "Key": full}})
            else:
                raise ValueError(f"bad transaction operation {verb!r} on {key!r}")
            names.append(key)
        if len(payload) > MAX_TXN_OPS:
            raise StorageError(f"storage transaction of {len(ops)} operations is too large: "
                               f"consul applies at most {MAX_TXN_OPS} atomically"
                               + (" including the lock check" if lock_key else ""))
        if not ops:
            return
        body = json.dumps(payload)
        what = repr(ops[0][1]) if len(ops) == 1 else f"{len(ops)} keys"
        self._call("transaction", what, lambda: (
            self._client.http.put(lambda r: _txn_result(r, names, lock_key), "/v1/txn",
                                  data=body, headers=self._client.prepare_headers())))

    def _full(self, key: str) -> str:
        validate_key(key)
        full = self._path + key
        _check_encodable(full)
        return full

    def _call(self, operation: str, what: str, fn: Callable[[], _T], bounded: bool = True) -> _T:
        """Run one Consul request, translating its failures into StorageError.

        Messages name the operation and ``what`` (the quoted key, or a session),
        never a value: Consul's own error text is left out, only its status
        code is kept.
        """
        try:
            if not bounded:
                return fn()
            with self._slots:
                return fn()
        except ACLPermissionDenied:
            message = f"permission denied: consul ACL refused storage {operation} of {what}"
        except ConsulException as exc:
            status = _STATUS.match(str(exc))
            reason = f"consul answered {status.group(1)}" if status else "bad reply from consul"
            if "invalid session" in str(exc):  # acquire/release with a dead session
                reason = "the session is not valid (expired or destroyed)"
            message = f"storage {operation} of {what} failed: {reason}"
        except requests.exceptions.SSLError:
            message = f"storage {operation} of {what} failed: TLS with consul failed"
        except requests.Timeout:
            message = f"storage {operation} of {what} failed: consul timed out"
        except requests.RequestException:
            message = f"storage {operation} of {what} failed: cannot reach consul"
        raise StorageError(message) from None


def _txn_result(response: Any, names: list[str], lock_key: str | None) -> None:
    """The callback for a raw ``/v1/txn`` reply: 200 applied, 409 rolled back."""
    if response.code == 200:
        return
    if response.code == 403:
        raise ACLPermissionDenied("")
    if response.code != 409:
        raise ConsulException(f"{response.code}")
    try:
        errors = json.loads(response.body).get("Errors") or []
        failed = {int(e["OpIndex"]): str(e.get("What", "")) for e in errors}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ConsulException("409") from None
    if lock_key is not None and 0 in failed:
        target = repr(names[1]) if len(names) == 2 else f"{len(names) - 1} keys"
        raise FencedError(f"storage write of {target} fenced: "
                          f"the session does not hold lock {lock_key!r}")
    keys = ", ".join(repr(names[i]) for i in sorted(failed) if 0 <= i < len(names)) or "it"
    # An ACL denial inside a transaction is a 409 whose error says so, not a 403.
    if any(what.lower() == "permission denied" for what in failed.values()):
        raise StorageError(f"permission denied: consul ACL refused the transaction on {keys}")
    raise StorageError(f"storage transaction rolled back: consul refused {keys}")


def _split_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 8500); an URL's scheme is ignored."""
    _, _, address = address.rpartition("://")
    address = address.rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":") or (host.startswith("[") != host.endswith("]")):
        host, port = address, "8500"  # no port (maybe a bare IPv6 address)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"consul address {address!r} is not host:port")
    return host, int(port)


def _normalise_path(path: str) -> str:
    """Strip a leading '/', add the trailing one; '' means the KV root."""
    path = path.lstrip("/")
    if path and not path.endswith("/"):
        path += "/"
    try:
        validate_prefix(path)
    except InvalidKeyError:
        raise ValueError(f"consul path {path!r} is not a valid KV prefix") from None
    return path


def _check_encodable(full: str) -> None:
    try:
        full.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError("storage key is not valid UTF-8") from None
