"""Server configuration in Vault's config syntax (HCL1, or JSON), parsed into frozen dataclasses.

Validation is strict: an unknown key or a bad value raises :class:`ConfigError` naming the
key by its stanza path (``listener.tcp.tls_min_version``), because a typo that is silently
ignored in a secrets server usually means a security setting that is silently not applied.

Several files (and directories of ``*.hcl``/``*.json`` files) merge into one configuration:
a later file overrides top-level values, ``listener`` stanzas accumulate, and a ``storage``,
``ha_storage`` or ``seal`` stanza may be defined in one file only. Errors name the file the
offending key came from.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import hcl

__all__ = [
    "SEAL_OPTIONS", "STORAGE_OPTIONS", "ConfigError", "FrozenMap", "ListenerConfig",
    "ConfigPath", "SealConfig", "ServerConfig", "StorageConfig", "dev_config", "load_config",
    "parse_bool", "parse_config", "parse_duration",
]

Registry = dict[str, tuple[frozenset[str], frozenset[str]]]  # type -> (allowed, required)

STORAGE_OPTIONS: Registry = {
    "inmem": (frozenset(), frozenset()),
    "file": (frozenset({"path"}), frozenset({"path"})),
    "consul": (frozenset({
        "address", "path", "token", "scheme", "tls_ca_file", "tls_cert_file", "tls_key_file",
        "consistency_mode", "max_parallel", "session_ttl", "lock_wait_time", "service",
        "service_tags", "disable_registration"}), frozenset()),
}
# Nothing is required for pkcs11: Vault lets lib, pin, slot, etc. come from VAULT_HSM_* env vars
# (seal/pkcs11_config.py resolves them and says what is missing). ``pin_file`` is Strongroom's
# own: a file holding the PIN. ``shamir`` exists only to be disabled (seal migration).
SEAL_OPTIONS: Registry = {
    "pkcs11": (frozenset({
        "lib", "slot", "token_label", "pin", "pin_file", "key_label", "hmac_key_label",
        "mechanism", "hmac_mechanism", "generate_key", "key_id", "hmac_key_id"}), frozenset()),
    "shamir": (frozenset(), frozenset()),
}
# Vault accepts `disabled` on every seal type (it marks the old seal during seal migration);
# `name` and `priority` are Vault 1.16's Seal HA fields.
_SEAL_COMMON = frozenset({"disabled", "name", "priority"})
_SEAL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_TOP_KEYS = frozenset({
    "storage", "backend", "ha_storage", "ha_backend", "listener", "seal", "api_addr",
    "cluster_addr", "cluster_name", "disable_mlock", "ui", "log_level", "log_format",
    "default_lease_ttl", "max_lease_ttl", "disable_cache", "pid_file", "workers", "telemetry",
    "enable_multiseal"})
_LISTENER_KEYS = frozenset({
    "address", "cluster_address", "tls_disable", "tls_cert_file", "tls_key_file",
    "tls_client_ca_file", "tls_require_and_verify_client_cert", "tls_min_version",
    "tls_max_version", "max_request_size",
    "http_read_header_timeout", "http_read_timeout", "http_write_timeout", "http_idle_timeout",
    "max_connections", "disable_unauthed_rekey_endpoints",
    "disable_unauthed_generate_root_endpoints"})
_TELEMETRY_IGNORED = frozenset({"prometheus_retention_time", "disable_hostname"})
_TLS_ORDER = {"tls12": 0, "tls13": 1}
_LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error")
# Vault's system default and max lease TTL (768h, 32 days) when the config sets none:
# the one definition; the core and the engines read the configured values.
DEFAULT_LEASE_TTL = 768 * 3600
_DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_T = TypeVar("_T")


class ConfigError(ValueError):
    """An invalid configuration; ``str()`` reads ``source: key: reason``.

    Attributes:
        reason: What is wrong, without location.
        key: Dotted stanza path of the offending key (``listener.tcp.address``), if any.
        source: The file (or label) the configuration came from, if known.
    """

    def __init__(self, reason: str, *, key: str | None = None, source: str | None = None) -> None:
        self.reason, self.key, self.source = reason, key, source
        super().__init__(": ".join(p for p in (source, key, reason) if p))


class FrozenMap(Mapping[str, str]):
    """Immutable, hashable str mapping (a MappingProxyType would make the configs unhashable)."""

    __slots__ = ("_items", "_index")

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self._items = tuple(sorted((data or {}).items()))
        self._index = dict(self._items)

    def __getitem__(self, key: str) -> str:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"FrozenMap({self._index!r})"


@dataclass(frozen=True)
class _TypedOptions:
    type: str
    options: Mapping[str, str] = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        # Direct construction with a plain dict must not leave a mutable door open.
        if not isinstance(self.options, FrozenMap):
            object.__setattr__(self, "options", FrozenMap(self.options))


@dataclass(frozen=True)
class StorageConfig(_TypedOptions):
    """A ``storage``/``ha_storage`` stanza: backend type plus its options as strings."""


@dataclass(frozen=True)
class SealConfig(_TypedOptions):
    """A ``seal`` stanza (absent means Shamir): seal type plus its options as strings."""

    @property
    def name(self) -> str:
        """Vault's Seal HA name: the ``name`` option, else the seal type."""
        return self.options.get("name") or self.type

    @property
    def priority(self) -> int:
        """Seal HA priority: 1 is tried first (validated by the parser)."""
        return int(self.options.get("priority", "1"))

    @property
    def disabled(self) -> bool:
        """The old seal of a seal migration (``disabled = "true"``)."""
        return parse_bool(self.options.get("disabled", "false"))

    def __repr__(self) -> str:
        # An inline ``pin`` must not reach a log or a traceback through a repr of the
        # configuration (ServerConfig's repr includes its seals).
        shown = {k: ("<redacted>" if k == "pin" else v) for k, v in self.options.items()}
        return f"SealConfig(type={self.type!r}, options={shown!r})"


@dataclass(frozen=True)
class ListenerConfig:
    """A ``listener "tcp"`` stanza."""

    type: str = "tcp"
    address: str = "127.0.0.1:8200"
    cluster_address: str | None = None
    tls_disable: bool = False
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Client certificates (cert auth): with a CA file the listener asks for one and
    # verifies it against that file; requiring one refuses a handshake without it.
    tls_client_ca_file: str | None = None
    tls_require_and_verify_client_cert: bool = False
    tls_min_version: str = "tls12"
    tls_max_version: str | None = None
    max_request_size: int = _DEFAULT_MAX_REQUEST_SIZE
    # Vault's listener timeouts, in seconds, with Vault's defaults (0: no limit).
    http_read_header_timeout: int = 10
    http_read_timeout: int = 30
    http_write_timeout: int = 0
    http_idle_timeout: int = 300
    # Strongroom's own bound on open client connections per node (Vault has none):
    # past it a new connection is closed at once, so no client can exhaust descriptors.
    max_connections: int = 4096
    # OpenBao's listener switches: true turns the unauthenticated sys/rekey*/init|update|
    # verify (resp. sys/generate-root/attempt|update) endpoints off on this listener, since
    # anyone who reaches them can cancel a round in progress. Vault has no switch and
    # serves them, so false (Vault's behaviour) is the default; OpenBao 2.5+ defaults true.
    disable_unauthed_rekey_endpoints: bool = False
    disable_unauthed_generate_root_endpoints: bool = False

    @property
    def host(self) -> str:
        """Host part of ``address``, IPv6 brackets removed."""
        return _split_host_port(self.address, "address")[0]

    @property
    def port(self) -> int:
        """Port part of ``address``."""
        return _split_host_port(self.address, "address")[1]


@dataclass(frozen=True)
class ServerConfig:
    """The whole server configuration."""

    storage: StorageConfig
    ha_storage: StorageConfig | None = None
    listeners: tuple[ListenerConfig, ...] = ()
    # The enabled seal of highest priority, else the disabled one (None: Shamir).
    seal: SealConfig | None = None
    # Every seal stanza: the enabled ones by priority, then the disabled one (if any).
    seals: tuple[SealConfig, ...] = ()
    enable_multiseal: bool = False
    api_addr: str | None = None
    cluster_addr: str | None = None
    cluster_name: str | None = None
    disable_mlock: bool = False
    ui: bool = False
    log_level: str = "info"
    log_format: str = "standard"
    default_lease_ttl: int = DEFAULT_LEASE_TTL
    max_lease_ttl: int = DEFAULT_LEASE_TTL
    disable_cache: bool = False
    pid_file: str | None = None
    workers: int = 1


def _fail(key: str | None, reason: str) -> NoReturn:
    raise ConfigError(reason, key=key)


def parse_bool(value: object) -> bool:
    """Parse a boolean the way Vault's config does.

    Args:
        value: ``True``/``False``, ``1``/``0``, or ``"true"``/``"false"``/``"1"``/``"0"``.

    Returns:
        The boolean.

    Raises:
        ConfigError: For anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    _fail(None, f"must be a boolean (true or false), got {value!r}")


def parse_duration(value: object, bounded: bool = True) -> int:
    """Parse a Vault duration into whole seconds.

    Args:
        value: Integer seconds (int or digit string), or units ``s``/``m``/``h``/``d``,
            optionally combined and fractional (``"768h"``, ``"1h30m"``, ``"1.5h"``).
        bounded: Refuse durations longer than Go's ``time.Duration`` holds (callers
            that word that refusal themselves pass False).

    Returns:
        The duration in seconds (>= 0).

    Raises:
        ConfigError: For negatives, fractions of a second, or anything unparseable.
    """
    # bool is an int subclass; `ttl = true` is a mistake, not one second.
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            _fail(None, f"duration must not be negative, got {value}")
        return _bounded_duration(value, value) if bounded else value
    if not isinstance(value, str):
        _fail(None, f"must be a duration like '768h' or integer seconds, got {value!r}")
    text = value.strip()
    if text.isdigit():
        return _bounded_duration(int(text), value) if bounded else int(text)
    if not _DURATION_RE.fullmatch(text):
        _fail(None, f"invalid duration {value!r} (use e.g. '30s', '10m', '768h', '1h30m')")
    # Fraction, not float, so "0.1h" is exactly 360s rather than 359.99999.
    parts = _DURATION_PART_RE.findall(text)
    total = sum((Fraction(num) * _DURATION_UNITS[unit] for num, unit in parts), Fraction(0))
    if total.denominator != 1:
        _fail(None, f"duration {value!r} is not a whole number of seconds")
    return _bounded_duration(int(total), value) if bounded else int(total)


# Go's time.Duration (Vault's) is int64 nanoseconds: nothing longer exists for Vault.
MAX_DURATION_SECONDS = (2**63 - 1) // 10**9


def _bounded_duration(seconds: int, value: object) -> int:
    if seconds > MAX_DURATION_SECONDS:
        _fail(None, f"duration {value!r} is longer than the longest allowed "
              f"({MAX_DURATION_SECONDS}s, 2562047h47m16s)")
    return seconds


def _keyed(key: str, parse: Callable[[object], _T], value: object) -> _T:
    # The public parsers don't know where a value came from; attach its stanza path here.
    try:
        return parse(value)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key=key) from None


class _Body:
    """One stanza's key/value body plus its dotted path, with typed getters."""

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self.data, self.path = data, path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def check(self, allowed: frozenset[str], what: str) -> None:
        for name in self.data:
            if name not in allowed:
                hint = difflib.get_close_matches(name, sorted(allowed), n=1)
                _fail(self.key(name), f"unknown {what}" + (f" (did you mean {hint[0]!r}?)"
                                                          if hint else ""))

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if isinstance(value, list):  # how pyhcl reports a repeated key
            _fail(self.key(name), "must be a single string (is the key repeated?)")
        if value is not None and not isinstance(value, str):
            _fail(self.key(name), f"must be a string, got {value!r}")
        return value or None  # "" is Vault's zero value, i.e. unset

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(self.key(name), f"must be an integer, got {value!r}")
        if value < minimum:
            _fail(self.key(name), f"must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str) -> bool:
        return _keyed(self.key(name), parse_bool, self.data.get(name, False))

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).strip().lower()
        if value not in choices:
            _fail(self.key(name), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            ok = parts.scheme in schemes and bool(parts.hostname) and parts.port != 0
        except ValueError:  # urlsplit/.port raise on a malformed port or IPv6 literal
            ok = False
        if not ok:
            _fail(self.key(name), f"must be a {' or '.join(s + '://' for s in schemes)} URL, "
                  f"got {value!r}")
        return value


def _split_host_port(address: str, key: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        _fail(key, f"must be host:port (use 0.0.0.0 for all interfaces), got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            _fail(key, f"invalid IPv6 address {host!r}")
    elif ":" in host:
        _fail(key, f"IPv6 addresses must be bracketed, e.g. [::1]:8200, got {address!r}")
    if not host or any(c.isspace() or c in "[]/" for c in host):
        _fail(key, f"invalid host in {address!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        _fail(key, f"invalid port {port!r} (must be 1-65535)")
    return host, int(port)


def _stanzas(value: Any, name: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Flatten both stanza shapes: one dict keyed by type, or a list of them (repeats)."""
    if isinstance(value, list):
        return [item for entry in value for item in _stanzas(entry, name)]
    usage = f'must be a block like {name} "<type>" {{ ... }}'
    if not isinstance(value, dict) or not value:
        _fail(name, usage)
    out: list[tuple[str, Mapping[str, Any]]] = []
    for typ, body in value.items():
        for item in body if isinstance(body, list) else [body]:
            if not isinstance(item, dict):
                _fail(f"{name}.{typ}", usage)
            out.append((typ, item))
    return out


def _typed(raw: Mapping[str, Any], name: str, registry: Registry,
           common: frozenset[str] = frozenset()) -> tuple[str, FrozenMap] | None:
    """Validate a single registry-typed stanza (storage, ha_storage, seal)."""
    if name not in raw:
        return None
    stanzas = _stanzas(raw[name], name)
    if len(stanzas) > 1:
        _fail(name, f"only one {name} block is allowed")
    typ, data = stanzas[0]
    if typ not in registry:
        _fail(name, f"unsupported type {typ!r} (supported: {', '.join(sorted(registry))})")
    allowed, required = registry[typ]
    body = _Body(data, f"{name}.{typ}")
    body.check(allowed | common, f"option for {name} type {typ!r}")
    options: dict[str, str] = {}
    for key, value in data.items():
        # Normalise like Vault (bools as true/false); nested values have no string form.
        if isinstance(value, bool):
            options[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            options[key] = str(value)
        else:
            _fail(body.key(key), "must be a single string, number or boolean")
    for key in sorted(required):
        if not options.get(key):
            _fail(body.key(key), "is required")
    if "disabled" in common:
        body.flag("disabled")
    return typ, FrozenMap(options)


def _seals(raw: Mapping[str, Any], multiseal: bool) -> tuple[SealConfig, ...]:
    """Every ``seal`` stanza, checked with Vault 1.16's Seal HA rules (enabled seals by
    priority, then the disabled one): several enabled seals need ``enable_multiseal``,
    names are unique (required when two seals share a type), a priority is a positive
    integer, unique among the enabled seals, and at most one seal is disabled."""
    if "seal" not in raw:
        return ()
    seals: list[SealConfig] = []
    for typ, data in _stanzas(raw["seal"], "seal"):
        one = _typed({"seal": {typ: data}}, "seal", SEAL_OPTIONS, _SEAL_COMMON)
        assert one is not None
        seal = SealConfig(*one)
        path = f"seal.{typ}"
        if "priority" in seal.options:
            text = seal.options["priority"]
            if not text.isdigit() or int(text) < 1:
                _fail(f"{path}.priority", f"must be a positive integer, got {text!r}")
        if "name" in seal.options and not _SEAL_NAME_RE.match(seal.name):
            _fail(f"{path}.name", "must be 1-64 letters, digits, '_', '.' or '-' "
                  f"(it suffixes environment variable names), got {seal.name!r}")
        if typ == "shamir" and not seal.disabled:
            _fail(path, 'a shamir seal stanza is only for seal migration and must have '
                  'disabled = "true" (no seal stanza at all means Shamir)')
        seals.append(seal)
    names = [s.name for s in seals]
    for name in names:
        if names.count(name) > 1:
            _fail("seal", f"two seals are named {name!r}: names must be unique (set name = "
                  '"..." on each seal when two have the same type)')
    enabled = [s for s in seals if not s.disabled]
    disabled = [s for s in seals if s.disabled]
    if len(disabled) > 1:
        _fail("seal", "only one seal may be disabled (the seal being migrated from)")
    if len(enabled) > 1:
        if not multiseal:
            _fail("seal", f"{len(enabled)} enabled seals need enable_multiseal = true "
                  "(Seal HA); otherwise disable all but one")
        for seal in enabled:
            if "priority" not in seal.options:
                _fail(f"seal.{seal.type}", f"seal {seal.name!r}: priority is required when "
                      "several seals are enabled")
        priorities = [s.priority for s in enabled]
        if len(set(priorities)) != len(priorities):
            _fail("seal", "two enabled seals have the same priority")
        if any(s.type == "shamir" for s in enabled):
            _fail("seal", "Shamir cannot be part of a Seal HA configuration")
    return tuple(sorted(enabled, key=lambda s: s.priority)) + tuple(disabled)


def _tls_version(body: _Body, name: str) -> str | None:
    value = body.text(name)
    if value is not None and value.strip().lower() in ("tls10", "tls11"):
        _fail(body.key(name), f"{value} is not supported: TLS 1.2 is the minimum "
              "(use tls12 or tls13)")
    return None if value is None else body.choice(name, tuple(_TLS_ORDER), "")


_LISTENER_TIMEOUTS = {
    "http_read_header_timeout": ListenerConfig.http_read_header_timeout,
    "http_read_timeout": ListenerConfig.http_read_timeout,
    "http_write_timeout": ListenerConfig.http_write_timeout,
    "http_idle_timeout": ListenerConfig.http_idle_timeout,
}


def _listener(typ: str, data: Mapping[str, Any], path: str) -> ListenerConfig:
    if typ != "tcp":
        _fail(path, f"unsupported listener type {typ!r} (only tcp)")
    body = _Body(data, path)
    body.check(_LISTENER_KEYS, "listener option")
    address = body.text("address") or ListenerConfig.address
    _split_host_port(address, body.key("address"))
    if (cluster_address := body.text("cluster_address")) is not None:
        _split_host_port(cluster_address, body.key("cluster_address"))
    tls_disable = body.flag("tls_disable")
    for name in ("tls_cert_file", "tls_key_file"):
        if not tls_disable and body.text(name) is None:
            _fail(body.key(name), "is required unless tls_disable is true")
    min_version = _tls_version(body, "tls_min_version") or "tls12"
    max_version = _tls_version(body, "tls_max_version")
    if max_version is not None and _TLS_ORDER[max_version] < _TLS_ORDER[min_version]:
        _fail(body.key("tls_max_version"), f"must not be lower than tls_min_version "
              f"({min_version})")
    return ListenerConfig(
        type=typ, address=address, cluster_address=cluster_address, tls_disable=tls_disable,
        tls_cert_file=body.text("tls_cert_file"), tls_key_file=body.text("tls_key_file"),
        tls_client_ca_file=body.text("tls_client_ca_file"),
        tls_require_and_verify_client_cert=body.flag("tls_require_and_verify_client_cert"),
        tls_min_version=min_version, tls_max_version=max_version,
        max_request_size=body.integer("max_request_size", _DEFAULT_MAX_REQUEST_SIZE, 1),
        max_connections=body.integer("max_connections", ListenerConfig.max_connections, 1),
        disable_unauthed_rekey_endpoints=body.flag("disable_unauthed_rekey_endpoints"),
        disable_unauthed_generate_root_endpoints=body.flag(
            "disable_unauthed_generate_root_endpoints"),
        **{name: _keyed(body.key(name), parse_duration, data.get(name, default))
           for name, default in _LISTENER_TIMEOUTS.items()},
    )


def _normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check the top-level keys and rename the old stanza names (backend -> storage)."""
    raw = dict(data)
    _Body(data).check(_TOP_KEYS, "key")
    for name, alias in (("storage", "backend"), ("ha_storage", "ha_backend")):
        if alias in raw and name in raw:
            _fail(alias, f"cannot be combined with {name} ({alias} is the old name for {name})")
        if alias in raw:
            raw[name] = raw.pop(alias)
    return raw


def _build(data: Mapping[str, Any], dev: bool) -> ServerConfig:
    raw = _normalized(data)
    top = _Body(raw)
    storage = _typed(raw, "storage", STORAGE_OPTIONS)
    if storage is None:
        _fail("storage", 'is required, e.g. storage "file" { path = "/var/lib/strongroom" }')
    ha = _typed(raw, "ha_storage", STORAGE_OPTIONS)
    seals = _seals(raw, top.flag("enable_multiseal"))

    stanzas = _stanzas(raw["listener"], "listener") if "listener" in raw else []
    many = len(stanzas) > 1  # index the path only when it's needed to tell listeners apart
    listeners = tuple(_listener(typ, body, f"listener.{typ}[{i}]" if many else f"listener.{typ}")
                      for i, (typ, body) in enumerate(stanzas))
    if not listeners and not dev:
        _fail("listener", 'at least one is required, e.g. listener "tcp" { address = ... }')

    if "telemetry" in raw:
        if not isinstance(raw["telemetry"], dict):
            _fail("telemetry", "must be a single block: telemetry { ... }")
        # Accepted only so stock Vault configs load; these two are validated, then ignored.
        telemetry = _Body(raw["telemetry"], "telemetry")
        telemetry.check(_TELEMETRY_IGNORED, "telemetry option (Strongroom has no telemetry; "
                        "only prometheus_retention_time and disable_hostname are accepted)")
        _keyed(telemetry.key("prometheus_retention_time"), parse_duration,
               telemetry.data.get("prometheus_retention_time", 0))
        telemetry.flag("disable_hostname")

    ttl = {name: _keyed(name, parse_duration, raw.get(name, DEFAULT_LEASE_TTL))
           for name in ("default_lease_ttl", "max_lease_ttl")}
    for name, seconds in ttl.items():
        if seconds <= 0:
            _fail(name, "must be greater than zero")
    if ttl["default_lease_ttl"] > ttl["max_lease_ttl"]:
        _fail("default_lease_ttl", f"({ttl['default_lease_ttl']}s) must not exceed "
              f"max_lease_ttl ({ttl['max_lease_ttl']}s)")

    # inmem data (and an inmem HA lock) lives in one process's memory, so a second worker
    # would get its own empty store: default to 1 and refuse more.
    inmem = [n for n, s in (("storage", storage), ("ha_storage", ha)) if s and s[0] == "inmem"]
    workers = top.integer("workers", 1 if inmem else (os.cpu_count() or 1), 1)
    if inmem and workers > 1:
        _fail("workers", f"must be 1 with inmem {inmem[0]}: inmem storage is per-process, "
              f"so {workers} workers would each see a separate, empty store")

    return ServerConfig(
        storage=StorageConfig(*storage), ha_storage=StorageConfig(*ha) if ha else None,
        listeners=listeners, seal=seals[0] if seals else None, seals=seals,
        enable_multiseal=top.flag("enable_multiseal"),
        api_addr=top.url("api_addr", ("http", "https")),
        cluster_addr=top.url("cluster_addr", ("https",)),  # cluster traffic is always TLS
        cluster_name=top.text("cluster_name"),
        disable_mlock=top.flag("disable_mlock"), ui=top.flag("ui"),
        # One spelling downstream: Vault treats "warning" as "warn".
        log_level=top.choice("log_level", _LOG_LEVELS, "info").replace("warning", "warn"),
        log_format=top.choice("log_format", ("standard", "json"), "standard"),
        default_lease_ttl=ttl["default_lease_ttl"], max_lease_ttl=ttl["max_lease_ttl"],
        disable_cache=top.flag("disable_cache"), pid_file=top.text("pid_file"),
        workers=workers,
    )


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last duplicate silently; a repeated key is almost always a mistake.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            _fail(key, "duplicate key in JSON object")
        out[key] = value
    return out


def _parse_hcl(text: str) -> Any:
    # pyhcl merges repeated top-level blocks key by key, so two `listener "tcp"` stanzas
    # would silently become one. Its nested-object rule (repeats become a list) is what we
    # need, so the top level is flattened with that rule instead.
    parser = hcl.parser.HclParser()
    flat = hcl.parser.HclParser.objectlist_flat
    parser.objectlist_flat = lambda items, _replace: flat(parser, items, False)
    return parser.parse(text)


def _build_from(raw: Mapping[str, Any], source: str, dev: bool) -> ServerConfig:
    try:
        return _build(raw, dev)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key=exc.key, source=source) from None


def _parse_text(text: str, fmt: str, source: str) -> dict[str, Any]:
    if fmt not in ("hcl", "json"):
        raise ConfigError(f"unknown config format {fmt!r} (expected hcl or json)", source=source)
    as_json = fmt == "json" or text.lstrip().startswith("{")
    try:
        raw = json.loads(text, object_pairs_hook=_json_pairs) if as_json else _parse_hcl(text)
    except ConfigError as exc:  # a duplicate JSON key
        raise ConfigError(exc.reason, key=exc.key, source=source) from None
    # pyhcl evaluates arithmetic while parsing, so garbage can raise more than ValueError.
    except (ValueError, ArithmeticError, LookupError, TypeError) as exc:
        syntax = "JSON" if as_json else "HCL"
        raise ConfigError(f"{syntax} syntax error: {exc}", source=source) from None
    if not isinstance(raw, dict):
        raise ConfigError("top level must be an object", source=source)
    return raw


def parse_config(text: str, *, fmt: str = "hcl", source: str = "<config>",
                 dev: bool = False) -> ServerConfig:
    """Parse and validate a Vault-style server configuration.

    Args:
        text: The configuration text.
        fmt: ``"hcl"`` or ``"json"``; text starting with ``{`` is always read as JSON.
        source: Where the text came from; prefixed to every error message.
        dev: Dev mode: allows a configuration without any listener.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: On a syntax error, unknown key or invalid value.
    """
    return _build_from(_parse_text(text, fmt, source), source, dev)


ConfigPath = str | os.PathLike[str]
_CONFIG_SUFFIXES = (".hcl", ".json")
# Stanzas that configure one thing for the whole node: a second definition in another file
# is a conflict to report, not an override to apply silently.
_SINGLE_STANZAS = ("storage", "ha_storage", "seal")
_LISTENER_INDEX_RE = re.compile(r"^(listener\.[^.\[]+)\[(\d+)\]")


def _config_files(paths: Iterable[ConfigPath]) -> list[str]:
    """Expand directories to their ``*.hcl``/``*.json`` files (sorted, not recursive)."""
    files: list[str] = []
    seen: set[Path] = set()
    for entry in paths:
        name = os.fspath(entry)
        if os.path.isdir(name):
            try:
                found = sorted(
                    os.path.join(name, child.name) for child in os.scandir(name)
                    if child.name.lower().endswith(_CONFIG_SUFFIXES) and child.is_file())
            except OSError as exc:
                raise ConfigError(f"cannot read config directory: {exc.strerror or exc}",
                                  source=name) from None
        else:
            found = [name]
        for file in found:
            # `-config=dir -config=dir/x.hcl` must not load x.hcl twice (its listeners would
            # be doubled, its storage stanza a conflict with itself).
            resolved = Path(file).resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append(file)
    return files


def _read(name: str) -> dict[str, Any]:
    try:
        text = Path(name).read_text(encoding="utf-8-sig")  # -sig: tolerate a leading BOM
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", source=name) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file is not valid UTF-8: {exc.reason}", source=name) from None
    return _parse_text(text, "json" if name.lower().endswith(".json") else "hcl", name)


class _Merged:
    """Several files' raw configs merged into one, remembering where each key came from."""

    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        self.raw: dict[str, Any] = {}
        self.origin: dict[str, str] = {}  # top-level key -> file that set it last
        # One entry per listener stanza, in merged order: (file, index in that file, count
        # in that file), so an error can use the path loading that file alone would give.
        self.listeners: list[tuple[str, int, int]] = []

    def add(self, source: str, data: Mapping[str, Any]) -> None:
        try:
            raw = _normalized(data)
            stanzas = _stanzas(raw.pop("listener"), "listener") if "listener" in raw else []
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=exc.key, source=source) from None
        for name in _SINGLE_STANZAS:
            if name in raw and name in self.origin:
                raise ConfigError(f"already defined in {self.origin[name]}; a {name} block may "
                                  "appear in one config file only", key=name, source=source)
        if stanzas:
            merged = _stanzas(self.raw.get("listener", []), "listener")
            self.raw["listener"] = [{typ: body} for typ, body in merged + stanzas]
            self.listeners += [(source, i, len(stanzas)) for i in range(len(stanzas))]
        self.raw.update(raw)  # later files override top-level values
        self.origin.update(dict.fromkeys(raw, source))

    def locate(self, exc: ConfigError) -> ConfigError:
        """Re-address an error from the merged config to the file its key came from."""
        key, source = exc.key, ", ".join(self.sources)
        if key is not None and (match := _LISTENER_INDEX_RE.match(key)):
            source, index, count = self.listeners[int(match[2])]
            local = match[1] + (f"[{index}]" if count > 1 else "")
            key = local + key[match.end():]
        elif key is not None and key.startswith("listener.") and self.listeners:
            source = self.listeners[0][0]  # a single listener: no index in its path
        elif key is not None and key.split(".")[0] in self.origin:
            source = self.origin[key.split(".")[0]]
        return ConfigError(exc.reason, key=key, source=source)


def load_config(path: ConfigPath | Iterable[ConfigPath], *, dev: bool = False) -> ServerConfig:
    """Read, merge and validate configuration files, like ``vault server -config=...``.

    A directory stands for its ``*.hcl`` and ``*.json`` files, sorted by name (not recursive).
    The files merge in order: a later file overrides top-level values (``api_addr``,
    ``workers``, ``telemetry``, ...), ``listener`` stanzas accumulate, and defining
    ``storage``, ``ha_storage`` or ``seal`` in two files is an error naming both.

    Args:
        path: A file or directory, or several of them in order. A file is read as JSON if
            its name ends in ``.json``, otherwise as HCL.
        dev: Dev mode: allows a configuration without any listener.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: If a file can't be read, the merge conflicts, or the content is
            invalid; names the file.
    """
    entries = [path] if isinstance(path, str | os.PathLike) else list(path)
    files = _config_files(entries)
    if not files:
        where = ", ".join(os.fspath(e) for e in entries) or "<none given>"
        raise ConfigError("no configuration files (*.hcl or *.json) found", source=where)
    merged = _Merged(files)
    for name in files:
        merged.add(name, _read(name))
    try:
        return _build(merged.raw, dev)
    except ConfigError as exc:
        raise merged.locate(exc) from None


def dev_config(listen_address: str = "127.0.0.1:8200") -> ServerConfig:
    """Build the dev-mode configuration: inmem storage, one plain-HTTP listener, one worker.

    Args:
        listen_address: ``host:port`` for the listener.

    Returns:
        The configuration.

    Raises:
        ConfigError: If ``listen_address`` is not a valid ``host:port``.
    """
    # Built through the validator so a bad address fails exactly as it would in a file.
    raw = {"storage": {"inmem": {}}, "workers": 1,
           "listener": {"tcp": {"address": listen_address, "tls_disable": True}}}
    return _build_from(raw, "<dev>", dev=True)
