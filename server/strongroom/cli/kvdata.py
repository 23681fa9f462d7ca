"""``key=value`` argument parsing shared by ``write``, ``kv put``, ``kv patch`` and ``login``.

Follows Vault's kv-builder rules:

* ``key=value`` sets a string; repeating a key collects its values in a list;
* ``key=@file`` reads the value from a file, ``key=\\@x`` is the literal ``@x``;
* ``key=-`` reads the value from stdin (raw text, once);
* ``-`` alone reads a JSON object from stdin and merges it in;
* ``@file.json`` alone merges a JSON object from a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO


class ArgsDataError(ValueError):
    """An argument could not be parsed; the message is Vault's wording."""


def _os_reason(exc: OSError, name: str) -> str:
    reason = (exc.strerror or str(exc)).lower()
    return f"open {name}: {reason}"


class DataBuilder:
    """Accumulates ``key=value`` arguments into a request body."""

    def __init__(self, stdin: TextIO) -> None:
        self.stdin = stdin
        self.stdin_used = False
        self.result: dict[str, Any] = {}

    def add_all(self, args: Iterable[str]) -> dict[str, Any]:
        """Add every argument and return the resulting object.

        Raises:
            ArgsDataError: A malformed pair, unreadable file or bad JSON.
        """
        for raw in args:
            try:
                self.add(raw)
            except ArgsDataError as exc:
                raise ArgsDataError(f'invalid key/value pair "{raw}": {exc}') from None
        return self.result

    def _read_stdin(self) -> str:
        if self.stdin_used:
            raise ArgsDataError("stdin already consumed")
        self.stdin_used = True
        return self.stdin.read()

    def _merge_json(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ArgsDataError(str(exc)) from None
        if not isinstance(obj, dict):
            raise ArgsDataError(
                f"json: cannot unmarshal {type(obj).__name__} into Go value of type "
                "map[string]interface {}")
        self.result.update(obj)

    def add(self, raw: str) -> None:
        """Add one argument (see the module docstring for the forms)."""
        if raw == "":
            return
        if raw == "-":
            self._merge_json(self._read_stdin())
            return
        if raw.startswith("@"):
            try:
                text = Path(raw[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ArgsDataError(_os_reason(exc, raw[1:])) from None
            self._merge_json(text)
            return
        key, sep, value = raw.partition("=")
        if not sep:
            raise ArgsDataError("format must be key=value")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ArgsDataError(f"error reading file: {_os_reason(exc, value[1:])}") from None
        elif value.startswith("\\@"):
            value = value[1:]
        elif value == "-":
            value = self._read_stdin()
        if key in self.result:
            existing = self.result[key]
            self.result[key] = [*(existing if isinstance(existing, list) else [existing]), value]
        else:
            self.result[key] = value


def parse_args_data(stdin: TextIO, args: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments into an object (Vault's ``parseArgsData``).

    Raises:
        ArgsDataError: With Vault's message, to print after "Failed to parse K=V data: ".
    """
    return DataBuilder(stdin).add_all(args)


def string_lists(data: dict[str, Any]) -> dict[str, list[str]]:
    """Coerce parsed data to string lists, for query parameters (``read PATH k=v``)."""
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        out[key] = [v if isinstance(v, str) else json.dumps(v) for v in items]
    return out
