"""Go-``flag``-style option parsing, so Strongroom accepts what ``vault`` accepts.

argparse is close but not close enough: it abbreviates long options, cannot
take ``-reset=false`` for a boolean, exits with status 2 on bad flags (Vault
exits 1), and keeps scanning for options after the first positional argument,
which would swallow secret values such as ``key=-1`` in later ``kv put``
commands. This module follows Go's rules instead:

* ``-name`` and ``--name`` are the same flag; a value is given as
  ``-name=value`` or ``-name value`` (booleans only take the ``=`` form).
* Parsing stops at the first positional argument or at ``--``.
* Flags declared ``trailing`` (the HTTP and output flags) are still picked out
  of the arguments after the first positional, as Vault does for ``-format``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from strongroom.cli.durations import parse_duration_flag

FlagKind = Literal["string", "int", "bool", "strings", "duration", "map"]
FlagValue = str | int | bool | list[str] | dict[str, str]

HELP_FLAGS = frozenset({"-h", "-help", "--help", "--h"})

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class UsageError(Exception):
    """The command line is malformed; the CLI prints the message and exits 1."""


class HelpRequested(Exception):  # noqa: N818 - a signal, not an error
    """``-h``/``-help`` was given; the CLI prints the command's help and exits 0."""


def parse_bool(text: str) -> bool:
    """Parse a boolean the way Go's ``strconv.ParseBool`` does.

    Args:
        text: The raw value, e.g. ``"true"``, ``"0"`` or ``"F"``.

    Returns:
        The parsed value.

    Raises:
        ValueError: ``text`` is not one of Go's accepted spellings.
    """
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r}")


@dataclass(frozen=True)
class Flag:
    """One declared flag.

    Attributes:
        name: Canonical name without dashes, e.g. ``"key-shares"``.
        kind: Value type; ``strings`` may be repeated and accumulates.
        default: Value when the flag is absent.
        usage: Help text (one paragraph, wrapped on output).
        aliases: Other accepted names, e.g. ``("n",)``.
        section: Help section heading the flag is listed under.
        trailing: Whether the flag may also follow positional arguments.
    """

    name: str
    kind: FlagKind
    default: FlagValue
    usage: str
    aliases: tuple[str, ...] = ()
    section: str = "Command Options"
    trailing: bool = False


@dataclass
class ParsedFlags:
    """Result of :meth:`FlagSet.parse`: typed flag values plus positional args."""

    args: list[str]
    values: dict[str, FlagValue]
    explicitly_set: set[str] = field(default_factory=set)

    def is_set(self, name: str) -> bool:
        """Return whether the flag appeared on the command line (vs. its default)."""
        return name in self.explicitly_set

    def string(self, name: str) -> str:
        """Return a ``string`` flag's value."""
        value = self.values[name]
        if not isinstance(value, str):
            raise TypeError(f"flag -{name} is not a string flag")
        return value

    def integer(self, name: str) -> int:
        """Return an ``int`` flag's value."""
        value = self.values[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"flag -{name} is not an int flag")
        return value

    def boolean(self, name: str) -> bool:
        """Return a ``bool`` flag's value."""
        value = self.values[name]
        if not isinstance(value, bool):
            raise TypeError(f"flag -{name} is not a bool flag")
        return value

    def strings(self, name: str) -> list[str]:
        """Return a repeatable ``strings`` flag's values in command-line order."""
        value = self.values[name]
        if not isinstance(value, list):
            raise TypeError(f"flag -{name} is not a repeatable string flag")
        return list(value)

    def duration(self, name: str) -> int:
        """Return a ``duration`` flag's value in nanoseconds."""
        return self.integer(name)

    def mapping(self, name: str) -> dict[str, str]:
        """Return a repeatable ``key=value`` (``map``) flag's pairs."""
        value = self.values[name]
        if not isinstance(value, dict):
            raise TypeError(f"flag -{name} is not a key=value flag")
        return dict(value)


class FlagSet:
    """A set of declared flags that parses argument lists and renders help."""

    def __init__(self) -> None:
        self._flags: list[Flag] = []
        self._by_name: dict[str, Flag] = {}

    def add(self, flag: Flag) -> None:
        """Declare a flag.

        Raises:
            ValueError: The name or an alias is already taken (a programming error).
        """
        for name in (flag.name, *flag.aliases):
            if name in self._by_name:
                raise ValueError(f"flag -{name} declared twice")
            self._by_name[name] = flag
        self._flags.append(flag)

    def string(
        self, name: str, usage: str, *, default: str = "", aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare a string flag (keyword arguments as in :class:`Flag`)."""
        self.add(Flag(name, "string", default, usage, aliases, section, trailing))

    def integer(
        self, name: str, usage: str, *, default: int = 0, aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare an integer flag (keyword arguments as in :class:`Flag`)."""
        self.add(Flag(name, "int", default, usage, aliases, section, trailing))

    def boolean(
        self, name: str, usage: str, *, default: bool = False, aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare a boolean flag (keyword arguments as in :class:`Flag`)."""
        self.add(Flag(name, "bool", default, usage, aliases, section, trailing))

    def strings(
        self, name: str, usage: str, *, aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare a repeatable string flag (keyword arguments as in :class:`Flag`)."""
        self.add(Flag(name, "strings", [], usage, aliases, section, trailing))

    def duration(
        self, name: str, usage: str, *, default: int = 0, aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare a duration flag, stored as nanoseconds (``90``, ``5m``, ``1h30m``, ``2d``)."""
        self.add(Flag(name, "duration", default, usage, aliases, section, trailing))

    def mapping(
        self, name: str, usage: str, *, aliases: tuple[str, ...] = (),
        section: str = "Command Options", trailing: bool = False,
    ) -> None:
        """Declare a repeatable ``key=value`` flag collected into a dict."""
        self.add(Flag(name, "map", {}, usage, aliases, section, trailing))

    def parse(self, argv: Sequence[str]) -> ParsedFlags:
        """Parse ``argv`` with Go ``flag`` semantics.

        Args:
            argv: Arguments after the command name.

        Returns:
            The flag values and the remaining positional arguments.

        Raises:
            HelpRequested: ``-h``/``-help`` appeared among the flags.
            UsageError: An unknown flag, a missing value or a malformed value.
        """
        result = ParsedFlags(args=[], values={})
        for flag in self._flags:
            default = flag.default
            if isinstance(default, list | dict):
                default = default.copy()
            result.values[flag.name] = default

        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                result.args.extend(argv[i + 1 :])
                return result
            if not arg.startswith("-") or arg == "-":
                break
            i = self._consume(argv, i, result, trailing_only=False)

        # Past the first positional only trailing-capable flags are recognised;
        # everything else, including unknown "-x" tokens, stays positional.
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                result.args.extend(argv[i + 1 :])
                break
            known = self._lookup(arg)
            if known is not None and known.trailing:
                i = self._consume(argv, i, result, trailing_only=True)
            else:
                result.args.append(arg)
                i += 1
        return result

    def _lookup(self, arg: str) -> Flag | None:
        if not arg.startswith("-") or arg.startswith("---"):
            return None
        name = arg.lstrip("-").split("=", 1)[0]
        return self._by_name.get(name)

    def _consume(
        self, argv: Sequence[str], i: int, result: ParsedFlags, *, trailing_only: bool
    ) -> int:
        arg = argv[i]
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith(("-", "=")):
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        flag = self._by_name.get(name)
        if flag is None:
            if arg in HELP_FLAGS and not trailing_only:
                raise HelpRequested()
            raise UsageError(f"flag provided but not defined: -{name}")
        i += 1
        if flag.kind == "bool":
            if not has_value:
                value = "true"
        elif not has_value:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        result.values[flag.name] = self._convert(flag, name, value, result.values[flag.name])
        result.explicitly_set.add(flag.name)
        return i

    @staticmethod
    def _convert(flag: Flag, given_name: str, value: str, current: FlagValue) -> FlagValue:
        try:
            if flag.kind == "bool":
                return parse_bool(value)
            if flag.kind == "int":
                # Base 0 accepts 0x/0o/0b prefixes, matching Go's ParseInt(s, 0, 64).
                return int(value, 0)
        except ValueError:
            raise UsageError(
                f'invalid value "{value}" for flag -{given_name}: parse error'
            ) from None
        if flag.kind == "duration":
            try:
                return parse_duration_flag(value)
            except ValueError as exc:
                raise UsageError(
                    f'invalid value "{value}" for flag -{given_name}: {exc}') from None
        if flag.kind == "map":
            key, sep, item = value.partition("=")
            if not sep:
                raise UsageError(f'invalid value "{value}" for flag -{given_name}: '
                                 f'missing = in KV pair: "{value}"')
            assert isinstance(current, dict)
            return {**current, key: item}
        if flag.kind == "strings":
            assert isinstance(current, list)
            return [*current, value]
        return value

    def help(self) -> str:
        """Render the flag reference, grouped by section, Vault style."""
        sections: dict[str, list[Flag]] = {}
        for flag in self._flags:
            sections.setdefault(flag.section, []).append(flag)
        blocks: list[str] = []
        for title, flags in sections.items():
            lines = [f"{title}:", ""]
            for flag in sorted(flags, key=lambda f: f.name):
                placeholder = {"bool": "", "int": "=<int>", "string": "=<string>",
                               "duration": "=<duration>", "map": "=<key=value>"}.get(
                    flag.kind, "=<string>"
                )
                lines.append(f"  -{flag.name}{placeholder}")
                text = flag.usage
                if flag.aliases:
                    names = ", ".join(f'"-{a}"' for a in flag.aliases)
                    text += f" This is aliased as {names}."
                lines.extend(textwrap.wrap(text, 72, initial_indent=" " * 6,
                                           subsequent_indent=" " * 6))
                lines.append("")
            blocks.append("\n".join(lines).rstrip())
        return "\n\n".join(blocks)
