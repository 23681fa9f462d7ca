"""The audit device base: options, the per-device salt, formatting, and the lifecycle
hooks of a mounted backend (devices live in the mount table's ``audit`` table).

A device renders an entry with its own salt and options and hands the line to
``write``; the subclass (file, syslog, socket) delivers it with one system call, so
lines of concurrent requests and workers never interleave. ``write`` raises on any
failure: the broker counts which devices recorded a request and refuses it when none
did (fail closed).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.audit.entry import FormatConfig, LogInput, encode, render
from strongroom.audit.hashing import identified_hmac
from strongroom.core.logical import SecretType, SpecialPaths
from strongroom.errors import BadRequestError, NoRouteError
from strongroom.node.locks import node_lock

if TYPE_CHECKING:
    from strongroom.core.mounts import MountContext
    from strongroom.core.request import Request, Response

log = logging.getLogger(__name__)
SALT_KEY = "salt"  # in the device's view, audit/<uuid>/salt (Vault's location)
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, with its error text."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequestError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def format_config(options: dict[str, str]) -> FormatConfig:
    """The options every device type shares (Vault's names and defaults)."""
    fmt = options.get("format", "json")
    if fmt not in ("json", "jsonx"):
        raise BadRequestError(f'unknown format type "{fmt}"')
    return FormatConfig(
        raw=parse_bool(options["log_raw"]) if "log_raw" in options else False,
        hmac_accessor=(parse_bool(options["hmac_accessor"])
                       if "hmac_accessor" in options else True),
        elide_list_responses=(parse_bool(options["elide_list_responses"])
                              if "elide_list_responses" in options else False),
        prefix=options.get("prefix", ""),
        format=fmt)


def test_probe() -> LogInput:
    """What a device writes when it is enabled, to show it can (Vault's test probe)."""
    return LogInput(kind="request", auth={"token_type": "default"}, request={
        "id": str(uuid.uuid4()), "operation": "update", "namespace": {"id": "root"},
        "path": "sys/audit/test"})


class AuditDevice:
    """One enabled audit device. Subclasses implement ``write`` (and ``close``)."""

    def __init__(self, ctx: MountContext) -> None:
        self._ctx = ctx
        self.options: dict[str, str] = dict(ctx.mount.options or {})
        self.config = format_config(self.options)
        self._salt: bytes | None = None
        self._salt_lock = threading.Lock()

    # -- what a device does --------------------------------------------------------

    def write(self, line: bytes) -> None:
        """Deliver one line, whole, or raise."""
        raise NotImplementedError

    def close(self) -> None:
        """Release files and sockets (the next write opens them again)."""

    def reload(self) -> None:
        """Reopen what was opened (SIGHUP: the file may have been rotated)."""
        self.close()

    def test(self) -> None:
        """Write the test probe (on enable): raise BadRequestError if it cannot."""
        if self.options.get("skip_test") == "true":
            return
        try:
            self.write(encode(render(test_probe(), self.config, self.hash), self.config))
        except OSError as exc:
            raise BadRequestError(f"audit backend failed test message: {describe(exc)}"
                                  ) from None

    def log(self, inp: LogInput) -> bool:
        """Render and write one entry; False (and a log line) if it was not recorded."""
        try:
            self.write(encode(render(inp, self.config, self.hash), self.config))
            return True
        except Exception as exc:  # noqa: BLE001 - any failure is "not recorded"
            # The device and the error kind only: the entry itself holds secrets' HMACs.
            log.error("event=audit_device_failed path=%s type=%s error=%s",
                      self._ctx.mount.path, self._ctx.mount.type, describe(exc))
            return False

    # -- the salt ------------------------------------------------------------------

    def salt(self) -> bytes:
        """This device's HMAC key: read from its view, made once if missing."""
        cached = self._salt
        if cached is not None:
            return cached
        with self._salt_lock:
            if self._salt is None:
                self._salt = self._load_salt()
            return self._salt

    def _load_salt(self) -> bytes:
        storage = self._ctx.storage
        raw = storage.get(SALT_KEY)
        if raw is None:
            # Every worker may get here at once: one makes it, the others read it.
            with node_lock("audit-salt|" + self._ctx.mount.uuid):
                raw = storage.get(SALT_KEY)
                if raw is None:
                    raw = str(uuid.uuid4()).encode()
                    storage.put(SALT_KEY, raw)
        return raw

    def hash(self, value: str) -> str:
        return identified_hmac(self.salt(), value)

    # -- a mounted backend's hooks (core/logical.py) ----------------------------------

    @property
    def special_paths(self) -> SpecialPaths:
        return SpecialPaths()

    def handle(self, req: Request, rel_path: str) -> Response | None:
        raise NoRouteError("audit devices are not routed")

    def existence(self, req: Request, rel_path: str) -> bool | None:
        return None

    def secret_type(self, name: str) -> SecretType | None:
        return None

    def initialize(self) -> None:
        """Nothing to create: the salt is made on enable (or first use)."""

    def invalidate(self, key: str) -> None:
        if key == SALT_KEY:
            self._salt = None

    def periodic(self) -> None:
        """Nothing periodic."""

    def cleanup(self) -> None:
        self.close()


class BrokenDevice(AuditDevice):
    """A stored device whose options this build refuses: it records nothing (fail
    closed) and says why when enabled."""

    def __init__(self, ctx: MountContext, reason: str) -> None:
        self._ctx = ctx
        self.options = dict(ctx.mount.options or {})
        self.config = FormatConfig()
        self._salt = None
        self._salt_lock = threading.Lock()
        self.reason = reason

    def write(self, line: bytes) -> None:
        raise OSError(self.reason)

    def test(self) -> None:
        raise BadRequestError(self.reason)


def describe(exc: BaseException) -> str:
    """An error's text without a traceback (an OSError's strerror and file name)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror.lower()
        return f"{exc.filename}: {text}" if exc.filename else text
    return str(exc) or type(exc).__name__


def lenient(cls: Any) -> Any:
    """A registry factory for ``cls``: a stored entry with bad options becomes a
    BrokenDevice (the table still loads; requests fail closed) instead of raising."""

    def factory(ctx: MountContext) -> AuditDevice:
        try:
            device: AuditDevice = cls(ctx)
        except BadRequestError as exc:
            return BrokenDevice(ctx, exc.message)
        return device

    return factory


class ConnectedDevice(AuditDevice):
    """A device that writes through one connection (syslog, socket), held under a lock
    and dropped on failure so the next write reconnects."""

    def __init__(self, ctx: MountContext) -> None:
        super().__init__(ctx)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _close_locked(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        with self._lock:
            self._close_locked()
