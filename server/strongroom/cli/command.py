"""What a CLI command is, and the per-invocation context it runs with.

A command module (``status.py``, ``operator.py``, later ``kv.py`` ...) exports
``COMMANDS: tuple[Command, ...]`` and, if it introduces a command group such as
``operator``, ``GROUPS: tuple[Group, ...]``; ``main.py`` lists the module once
in its registry. Commands never touch ``sys.std*`` or ``os.environ`` directly:
they go through :class:`Context`, which is what makes them unit-testable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from strongroom.cli import output
from strongroom.cli.client import ApiClient, ClientConfig, ClientError
from strongroom.cli.durations import go_duration
from strongroom.cli.flags import FlagSet, ParsedFlags, UsageError

HTTP_SECTION = "HTTP Options"
OUTPUT_SECTION = "Output Options"


@dataclass(frozen=True)
class Command:
    """One runnable command.

    Attributes:
        name: Space-separated path, e.g. ``"operator init"``.
        synopsis: One-line summary shown in group listings.
        help: Help text starting with the ``Usage:`` line; flag help is appended.
        run: Executes the command; returns the process exit code.
        flags: Declares the command's own flags.
        http: Add the shared connection flags (``-address`` ...).
        output: Add the shared output flags (``-format``, ``-field``).
        passthrough: Hand all arguments to ``run`` unparsed (``ctx.args``).
        field: With ``output``, whether ``-field`` is offered too (vault's
            list-style commands take ``-format`` only).
    """

    name: str
    synopsis: str
    help: str
    run: Callable[[Context], int]
    flags: Callable[[FlagSet], None] | None = None
    http: bool = True
    output: bool = True
    passthrough: bool = False
    field: bool = True

    def flag_set(self) -> FlagSet:
        """Build the full flag set: shared sections first, then the command's own."""
        fs = FlagSet()
        if self.http:
            add_http_flags(fs)
        if self.output:
            add_output_flags(fs, field=self.field)
        if self.flags is not None:
            self.flags(fs)
        return fs

    def full_help(self) -> str:
        """Return the help text followed by the flag reference."""
        flag_help = self.flag_set().help()
        return self.help.strip() + ("\n\n" + flag_help if flag_help else "")


@dataclass(frozen=True)
class Group:
    """A command group such as ``operator``: help only, no behaviour of its own."""

    name: str
    synopsis: str
    help: str


def add_http_flags(fs: FlagSet) -> None:
    """Declare the connection flags every API command accepts."""
    kw: dict[str, Any] = {"section": HTTP_SECTION, "trailing": True}
    fs.string("address", "Address of the server. The default is https://127.0.0.1:8200. "
              "This can also be set with STRONGROOM_ADDR, VAULT_ADDR or BAO_ADDR.", **kw)
    fs.string("ca-cert", "Path to a PEM-encoded CA certificate used to verify the "
              "server's TLS certificate. This can also be set with STRONGROOM_CACERT, "
              "VAULT_CACERT or BAO_CACERT.", **kw)
    fs.string("client-cert", "Path to a PEM-encoded certificate presented to the server "
              "for TLS client authentication (the cert auth method); -client-key is then "
              "required. This can also be set with STRONGROOM_CLIENT_CERT, VAULT_CLIENT_CERT "
              "or BAO_CLIENT_CERT.", **kw)
    fs.string("client-key", "Path to the PEM-encoded private key of -client-cert. This can "
              "also be set with STRONGROOM_CLIENT_KEY, VAULT_CLIENT_KEY or BAO_CLIENT_KEY.",
              **kw)
    fs.boolean("tls-skip-verify", "Disable verification of TLS certificates. Strongly "
               "discouraged. This can also be set with STRONGROOM_SKIP_VERIFY, "
               "VAULT_SKIP_VERIFY or BAO_SKIP_VERIFY.", **kw)
    fs.duration("wrap-ttl", "Wraps the response in a cubbyhole token with the requested "
                "TTL; the response can be fetched with the unwrap command. This can also "
                "be set with STRONGROOM_WRAP_TTL, VAULT_WRAP_TTL or BAO_WRAP_TTL.", **kw)


def add_output_flags(fs: FlagSet, field: bool = True) -> None:
    """Declare ``-format`` and, unless ``field`` is false, ``-field``."""
    kw: dict[str, Any] = {"section": OUTPUT_SECTION, "trailing": True}
    if field:
        fs.string("field", "Print only the field with the given name, without a trailing "
                  "newline. Takes precedence over -format.", **kw)
    fs.string("format", 'Print the output in the given format: "table", "json" or '
              '"yaml" (yaml needs PyYAML). The default is table. This can also be set '
              "with STRONGROOM_FORMAT or VAULT_FORMAT.", **kw)


@dataclass
class Streams:
    """The standard streams a command reads and writes."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO

    @classmethod
    def system(cls) -> Streams:
        """Return the process's real standard streams."""
        return cls(sys.stdin, sys.stdout, sys.stderr)


@dataclass
class Context:
    """Everything a command needs for one run.

    Attributes:
        command: The command being run.
        flags: Parsed flags; positional arguments are ``flags.args``.
        env: Environment variables (``os.environ`` outside tests).
        io: Standard streams.
    """

    command: Command
    flags: ParsedFlags
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    io: Streams = field(default_factory=Streams.system)
    _client: ApiClient | None = field(default=None, repr=False)
    _extra: list[ApiClient] = field(default_factory=list, repr=False)

    @property
    def args(self) -> list[str]:
        """Positional arguments."""
        return self.flags.args

    def expect_args(self, minimum: int, maximum: int) -> None:
        """Check the positional argument count, Vault's wording on failure.

        Raises:
            UsageError: Too few or too many arguments.
        """
        got = len(self.args)
        if got > maximum:
            raise UsageError(f"Too many arguments (expected {maximum}, got {got})")
        if got < minimum:
            raise UsageError(f"Not enough arguments (expected {minimum}, got {got})")

    def client_config(self) -> ClientConfig:
        """Resolve the connection settings from flags and environment."""
        f = self.flags
        wrap_ns = f.duration("wrap-ttl") if f.is_set("wrap-ttl") else 0
        return ClientConfig.resolve(
            self.env,
            address=f.string("address") or None,
            ca_cert=f.string("ca-cert") or None,
            skip_verify=f.boolean("tls-skip-verify") if f.is_set("tls-skip-verify") else None,
            wrap_ttl=go_duration(wrap_ns) if wrap_ns > 0 else None,
            client_cert=f.string("client-cert") or None,
            client_key=f.string("client-key") or None,
        )

    def client(self) -> ApiClient:
        """Return the API client configured from flags and environment (created once)."""
        if self._client is None:
            self._client = ApiClient(self.client_config())
        return self._client

    def client_with_token(self, token: str | None) -> ApiClient:
        """Return a new client like :meth:`client` but authenticating with ``token``.

        ``None`` or ``""`` sends no token at all (``login`` verifies only the
        token it was given, never one from the environment).
        """
        client = ApiClient(replace(self.client_config(), token=token or None))
        self._extra.append(client)
        return client

    def close(self) -> None:
        """Release the clients, if any were created."""
        for client in [self._client, *self._extra]:
            if client is not None:
                client.close()
        self._client = None
        self._extra.clear()

    def output_format(self) -> str:
        """Return the validated output format (flag, then environment, then table)."""
        flag = self.flags.string("format") if self.flags.is_set("format") else None
        return output.resolve_format(flag, self.env)

    def out(self, text: str = "") -> None:
        """Print a line to stdout."""
        print(text, file=self.io.stdout)

    def err(self, text: str) -> None:
        """Print a line to stderr."""
        print(text, file=self.io.stderr)

    def fail(self, prefix: str, exc: ClientError, code: int = 2) -> int:
        """Report a failed API call Vault-style and return ``code``.

        Args:
            prefix: What was attempted, e.g. ``"Error unsealing"``.
            exc: The client error; its text carries the server's messages.
            code: Exit code; 2 is Vault's code for remote errors.
        """
        self.err(f"{prefix}: {exc}")
        return code

    def emit(self, data: Any, rows: list[output.Row] | None = None,
             what: str = "secret") -> int:
        """Print a result honouring ``-field`` and ``-format``.

        Args:
            data: Structured result (printed as-is for json/yaml).
            rows: Table rows; defaults to the sorted keys of ``data``.
            what: Noun for the "field not present" error.

        Returns:
            0, or 1 when ``-field`` names an absent field.
        """
        fmt = self.output_format()
        name = self.flags.string("field") if "field" in self.flags.values else ""
        if name:
            text = output.field_text(data, name, fmt) if isinstance(data, Mapping) else None
            if text is None:
                self.err(f'Field "{name}" not present in {what}')
                return 1
            output.write_raw(self.io.stdout, text)
            return 0
        self.out(output.render(data, fmt, rows))
        return 0
