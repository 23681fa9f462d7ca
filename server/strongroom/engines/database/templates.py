"""Username templates: the subset of Go's text/template that Vault's database plugins
accept (OpenBao ``sdk/helper/template``), evaluated without any Go.

A template is text with actions ``{{ pipeline }}`` (``{{-``/``-}}`` trim the spaces
around). A pipeline is commands joined by ``|``, the value of each passed as the last
argument of the next; a command is a function with arguments, a field (``.RoleName``,
``.DisplayName``), a string or number literal, or a parenthesized pipeline. Functions:
``printf`` (Go's verbs %s %d %v %q %x %%) and the SDK's ``random``, ``truncate``,
``truncate_sha256``, ``uppercase``, ``lowercase``, ``replace``, ``sha256``, ``base64``,
``decode_base64``, ``hex``, ``decode_hex``, ``unix_time``, ``unix_time_millis``,
``timestamp``, ``uuid``, ``glob``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.framework.globmatch import glob_match

_BASE62 = string.ascii_uppercase + string.ascii_lowercase + string.digits
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)'
                    r"|(?P<field>\.[A-Za-z_]\w*)|(?P<ident>[A-Za-z_]\w*)|(?P<op>[|()]))")


class TemplateError(ValueError):
    """A template that does not parse or cannot be applied; ``str()`` is the reason."""


def _random(length: int) -> str:
    if length <= 0:
        raise TemplateError(f"length must be > 0 but was {length}")
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _truncate(max_len: int, text: str) -> str:
    """Go's ``str[:maxLen]``: a length in bytes (a database's identifier limit is in
    bytes: PostgreSQL silently shortens a longer name, so a user would be created
    under another name than the one its lease revokes). A character cut in two is
    dropped whole."""
    if max_len <= 0:
        raise TemplateError(f"max length must be > 0 but was {max_len}")
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_len:
        return text
    return raw[:max_len].decode("utf-8", "ignore")


def _truncate_sha256(max_len: int, text: str) -> str:
    if max_len <= 8:
        raise TemplateError(f"max length must be > 8 but was {max_len}")
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_len:
        return text
    cut = max_len - 8  # bytes, as Go's
    return (raw[:cut].decode("utf-8", "ignore")
            + hashlib.sha256(raw[cut:]).hexdigest()[:8])


def _decode_base64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TemplateError(str(exc)) from None


def _decode_hex(text: str) -> str:
    try:
        return bytes.fromhex(text).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise TemplateError(str(exc)) from None


# Go reference-time layout elements -> strftime.
_LAYOUT = [("2006", "%Y"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("04", "%M"),
           ("05", "%S"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("-0700", "%z")]


def _timestamp(layout: str) -> str:
    fmt = layout.replace("%", "%%")
    for go, py in _LAYOUT:
        fmt = fmt.replace(go, py)
    return time.strftime(fmt, time.gmtime())


def _printf(fmt: str, *args: Any) -> str:
    values = list(args)

    def verb(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        if not values:
            return f"%!{m.group(1)}(MISSING)"
        value = values.pop(0)
        if m.group(1) == "q":
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if m.group(1) == "x":
            return value.encode().hex() if isinstance(value, str) else format(value, "x")
        if m.group(1) == "d" and not isinstance(value, int):
            return f"%!d(string={value})"
        return str(value)

    return re.sub(r"%([sdvqx%])", verb, fmt)


FUNCS: Mapping[str, Callable[..., Any]] = {
    "printf": _printf,
    "random": _random,
    "truncate": _truncate,
    "truncate_sha256": _truncate_sha256,
    "uppercase": str.upper,
    "lowercase": str.lower,
    "replace": lambda find, repl, text: text.replace(find, repl),
    "sha256": lambda text: hashlib.sha256(text.encode()).hexdigest(),
    "base64": lambda text: base64.b64encode(text.encode()).decode(),
    "decode_base64": _decode_base64,
    "hex": lambda text: text.encode().hex(),
    "decode_hex": _decode_hex,
    "unix_time": lambda: str(int(time.time())),
    "unix_time_millis": lambda: str(int(time.time() * 1000)),
    "timestamp": _timestamp,
    "uuid": lambda: str(uuid.uuid4()),
    "glob": lambda pattern, value: glob_match(pattern, value),
}
_FIELDS = {".RoleName": "role_name", ".DisplayName": "display_name"}


@dataclass(frozen=True)
class _Node:
    kind: str  # "call", "field", "lit", "pipe"
    value: Any
    args: tuple[Any, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"unexpected {text[pos:].strip()[:20]!r} in command")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.pos = tokens, 0

    def pipeline(self, closing: bool) -> _Node:
        commands = [self.command()]
        while self.pos < len(self.tokens) and self.tokens[self.pos] == ("op", "|"):
            self.pos += 1
            commands.append(self.command())
        if closing:
            if self.pos >= len(self.tokens) or self.tokens[self.pos] != ("op", ")"):
                raise TemplateError("unclosed left paren")
            self.pos += 1
        return _Node("pipe", tuple(commands))

    def command(self) -> list[_Node]:
        operands: list[_Node] = []
        while self.pos < len(self.tokens):
            kind, text = self.tokens[self.pos]
            if kind == "op" and text in "|)":
                break
            self.pos += 1
            if kind == "op":  # "("
                operands.append(self.pipeline(closing=True))
            elif kind == "str":
                operands.append(_Node("lit", bytes(text[1:-1], "utf-8").decode(
                    "unicode_escape")))
            elif kind == "raw":
                operands.append(_Node("lit", text[1:-1]))
            elif kind == "num":
                operands.append(_Node("lit", int(text)))
            elif kind == "field":
                if text not in _FIELDS:
                    raise TemplateError(f"can't evaluate field {text[1:]} in type "
                                        "dbplugin.UsernameMetadata")
                operands.append(_Node("field", _FIELDS[text]))
            elif text in FUNCS:
                operands.append(_Node("call", text))
            else:
                raise TemplateError(f'function "{text}" not defined')
        if not operands:
            raise TemplateError("missing value for command")
        return operands


def _eval_pipe(node: _Node, data: Mapping[str, str]) -> Any:
    value: Any = None
    for i, command in enumerate(node.value):
        head, args = command[0], [_eval(a, data) for a in command[1:]]
        if i > 0:
            args.append(value)
        if head.kind == "call":
            try:
                value = FUNCS[head.value](*args)
            except TypeError:
                raise TemplateError(f"wrong number of args for {head.value}") from None
        elif args:
            raise TemplateError("can't give argument to non-function")
        else:
            value = _eval(head, data)
    return value


def _eval(node: _Node, data: Mapping[str, str]) -> Any:
    if node.kind == "lit":
        return node.value
    if node.kind == "field":
        return data.get(node.value, "")
    if node.kind == "call":
        return FUNCS[node.value]()
    return _eval_pipe(node, data)


class UsernameTemplate:
    """A parsed template; ``generate`` applies it (each call draws new random parts)."""

    def __init__(self, source: str) -> None:
        if not source:
            raise TemplateError("missing template")
        self._parts: list[str | _Node] = []
        pos = 0
        try:
            for m in _ACTION.finditer(source):
                text = source[pos:m.start()]
                if m.group(1):
                    text = text.rstrip()
                self._parts.append(text)
                self._parts.append(_Parser(_tokens(m.group(2))).pipeline(closing=False))
                pos = m.end()
                if m.group(3):
                    while pos < len(source) and source[pos].isspace():
                        pos += 1
            self._parts.append(source[pos:])
        except TemplateError as exc:
            raise TemplateError(f"unable to parse template: template: template:1: {exc}") from None
        if "{{" in "".join(p for p in self._parts if isinstance(p, str)):
            raise TemplateError("unable to parse template: template: template:1: unclosed action")

    def generate(self, role_name: str = "", display_name: str = "") -> str:
        data = {"role_name": role_name, "display_name": display_name}
        out = []
        try:
            for part in self._parts:
                out.append(part if isinstance(part, str) else str(_eval_pipe(part, data)))
        except TemplateError as exc:
            raise TemplateError(f"unable to apply template: {exc}") from None
        return "".join(out)
