"""Entry point of the ``strongroom`` command: finds the command and runs it.

Exit codes follow ``vault``: 0 success, 1 local/usage error, 2 API or
connection error (``status`` and ``operator init -status`` use 2 for
"sealed"/"not initialized" instead), 127 unknown command.

To add a command group, write a module exporting ``COMMANDS`` (and ``GROUPS``
if it introduces a group name) and add one line to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from strongroom import BUILD_DATE, __version__
from strongroom.cli.client import ClientError
from strongroom.cli.command import Command, Context, Group, Streams
from strongroom.cli.flags import HELP_FLAGS, HelpRequested, ParsedFlags, UsageError

#: Modules providing commands; one line per module.
COMMAND_MODULES: tuple[str, ...] = (
    "strongroom.cli.status",
    "strongroom.cli.operator",
    "strongroom.cli.operator_rekey",
    "strongroom.cli.operator_generate_root",
    "strongroom.cli.generic",
    "strongroom.cli.login",
    "strongroom.cli.auth",
    "strongroom.cli.kv",
    "strongroom.cli.kv_patch",
    "strongroom.cli.kv_manage",
    "strongroom.cli.policy",
    "strongroom.cli.token",
    "strongroom.cli.secrets",
    "strongroom.cli.audit",
    "strongroom.cli.lease",
    "strongroom.cli.hsm",
)

#: Listed under "Common commands" in the top-level help, when registered.
COMMON_COMMANDS = ("read", "write", "delete", "list", "login", "server", "status")

EXIT_USAGE = 1
EXIT_UNKNOWN_COMMAND = 127
_VERSION_FLAGS = frozenset({"-v", "-version", "--version"})
_SERVER_MODULE = "strongroom.cli.server_cmd"


@dataclass
class Registry:
    """All known commands and groups, keyed by their space-separated path."""

    commands: dict[str, Command] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

    def add(self, commands: Iterable[Command], groups: Iterable[Group] = ()) -> None:
        """Register commands and groups.

        Raises:
            ValueError: A name is registered twice (a programming error).
        """
        for cmd in commands:
            if cmd.name in self.commands:
                raise ValueError(f"command {cmd.name!r} registered twice")
            self.commands[cmd.name] = cmd
        for group in groups:
            self.groups[group.name] = group

    def prefixes(self) -> set[str]:
        """Every command path and every leading part of one (``operator`` ...)."""
        out: set[str] = set(self.groups)
        for name in self.commands:
            words = name.split()
            out.update(" ".join(words[:i]) for i in range(1, len(words) + 1))
        return out

    def children(self, prefix: str) -> dict[str, str]:
        """Map the next word under ``prefix`` ("" for top level) to its synopsis."""
        depth = len(prefix.split()) if prefix else 0
        out: dict[str, str] = {}
        for path in sorted(self.prefixes()):
            words = path.split()
            if len(words) == depth + 1 and " ".join(words[:depth]) == prefix:
                node = self.commands.get(path) or self.groups.get(path)
                out[words[-1]] = node.synopsis if node else ""
        return out


def version_command() -> Command:
    """The built-in ``version`` command."""

    def run(ctx: Context) -> int:
        ctx.expect_args(0, 0)
        ctx.out(version_string())
        return 0

    return Command("version", "Prints the Strongroom version",
                   "Usage: strongroom version\n\n  Prints the version of this CLI.",
                   run, http=False, output=False)


def version_string() -> str:
    """Return e.g. ``Strongroom v0.1.0, built 2026-11-28T00:00:00Z``."""
    return f"Strongroom v{__version__}, built {BUILD_DATE}"


def load_registry(modules: Sequence[str] = COMMAND_MODULES) -> Registry:
    """Import the command modules and collect their commands and groups."""
    registry = Registry()
    registry.add([version_command(), server_command()])
    for name in modules:
        module = importlib.import_module(name)
        registry.add(getattr(module, "COMMANDS", ()), getattr(module, "GROUPS", ()))
    return registry


def _listing(entries: Mapping[str, str], indent: str = "    ") -> list[str]:
    width = max((len(k) for k in entries), default=0)
    return [f"{indent}{k.ljust(width)}    {v}".rstrip() for k, v in entries.items()]


def top_help(registry: Registry) -> str:
    """Return the top-level usage text."""
    top = registry.children("")
    common = {k: v for k, v in top.items() if k in COMMON_COMMANDS}
    other = {k: v for k, v in top.items() if k not in COMMON_COMMANDS}
    lines = ["Usage: strongroom <command> [args]", "", "Common commands:", *_listing(common)]
    if other:
        lines += ["", "Other commands:", *_listing(other)]
    return "\n".join(lines)


def group_help(registry: Registry, name: str) -> str:
    """Return a group's help text followed by its subcommands."""
    group = registry.groups.get(name)
    text = group.help.strip() if group and group.help else (
        f"Usage: strongroom {name} <subcommand> [options] [args]")
    return "\n".join([text, "", "Subcommands:", *_listing(registry.children(name))])


def server_command() -> Command:
    """The built-in ``server`` command: every argument goes to ``server_cmd.run``."""

    def run(ctx: Context) -> int:
        # Imported lazily: the server pulls in falcon/gunicorn, which client
        # commands should not pay for, and the module may be absent in a build.
        try:
            server_cmd = importlib.import_module(_SERVER_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != _SERVER_MODULE:
                raise
            ctx.err("Error: the server command is not available in this build")
            return EXIT_USAGE
        code: int = server_cmd.run(list(ctx.args))
        return code

    return Command("server", "Start a Strongroom server",
                   "Usage: strongroom server [options]", run,
                   http=False, output=False, passthrough=True)


def run(argv: Sequence[str], env: Mapping[str, str] | None = None,
        io: Streams | None = None, registry: Registry | None = None) -> int:
    """Run one CLI invocation with injectable environment and streams (for tests).

    Args:
        argv: Arguments after the program name.
        env: Environment; defaults to ``os.environ``.
        io: Standard streams; defaults to the process's.
        registry: Commands to dispatch to; defaults to :func:`load_registry`.

    Returns:
        The process exit code.
    """
    args = list(argv)
    io = io or Streams.system()
    registry = registry or load_registry()
    if not args:
        print(top_help(registry), file=io.stderr)
        return EXIT_UNKNOWN_COMMAND
    if args[0] in HELP_FLAGS:
        print(top_help(registry), file=io.stdout)
        return 0
    if args[0] in _VERSION_FLAGS:
        args = ["version"]
    if args[0].startswith("-"):
        print("Invalid flags before the subcommand. If these flags are for\n"
              "the subcommand, please put them after the subcommand.\n\n"
              + top_help(registry), file=io.stderr)
        return EXIT_USAGE

    prefixes = registry.prefixes()
    depth = 0
    while depth < len(args) and " ".join(args[: depth + 1]) in prefixes:
        depth += 1
    name, rest = " ".join(args[:depth]), args[depth:]
    if not name:
        print(top_help(registry), file=io.stderr)
        return EXIT_UNKNOWN_COMMAND
    command = registry.commands.get(name)
    if command is None:
        asked = bool(rest) and rest[0] in HELP_FLAGS
        print(group_help(registry, name), file=io.stdout if asked else io.stderr)
        return 0 if asked else EXIT_USAGE
    return run_command(command, rest, dict(os.environ) if env is None else env, io)


def run_command(command: Command, args: Sequence[str], env: Mapping[str, str],
                io: Streams) -> int:
    """Parse ``args`` for ``command`` and run it, mapping errors to exit codes."""
    try:
        # Pass-through commands (server) parse their own arguments, -h included.
        flags = (ParsedFlags(args=list(args), values={}) if command.passthrough
                 else command.flag_set().parse(args))
    except HelpRequested:
        print(command.full_help(), file=io.stdout)
        return 0
    except UsageError as exc:
        print(exc, file=io.stderr)
        return EXIT_USAGE
    ctx = Context(command, flags, env, io)
    try:
        if command.output:
            ctx.output_format()  # reject a bad -format before contacting the server
        return command.run(ctx)
    except UsageError as exc:
        ctx.err(str(exc))
        return EXIT_USAGE
    except ClientError as exc:
        # Commands report their own API failures; this is the safety net.
        ctx.err(f"Error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point.

    Args:
        argv: Arguments after the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.
    """
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; stop quietly instead of dumping a
        # traceback, and point stdout at devnull so the exit-time flush succeeds.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
