"""A strict HCL1/JSON document reader that keeps every item, in order.

pyhcl folds repeated keys into one dict, so of two ``path "a" { ... }`` blocks
only the last survives; a ``deny`` in the first would be silently lost. Vault's
parser keeps each block and merges them by its ACL rules, so policies need a
reader that preserves items. This one covers the HCL1 subset a policy can use:
comments, quoted or bare keys, labelled blocks, strings (Go escapes), heredocs,
numbers, booleans, lists and objects. Like Vault's ``hcl.Parse``, a document
whose first non-blank character is ``{`` is read as JSON instead.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any, TypeAlias

Value: TypeAlias = "str | int | float | bool | tuple[Value, ...] | Obj"

# Objects and lists nest at most this deep. A real policy needs four levels (path,
# rule, allowed_parameters, list); the recursive reader below would otherwise hit
# Python's recursion limit (a 500) on a few hundred levels. Vault's parser has no
# such limit but refuses deep documents anyway: no policy key nests that deep.
MAX_NESTING = 64


class HCLSyntaxError(ValueError):
    """The document is not valid HCL1 or JSON; the message names the line."""


@dataclass(frozen=True, slots=True)
class Item:
    """One ``key [label ...] = value`` or ``key [label ...] { ... }`` entry."""

    keys: tuple[str, ...]
    value: Value
    line: int


@dataclass(frozen=True, slots=True)
class Obj:
    """An object body: its items in source order, repeats kept."""

    items: tuple[Item, ...]


_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t\r\f\v]+)"
    r"|(?P<nl>\n)"
    r"|(?P<comment>(?:\#|//)[^\n]*)"
    r"|(?P<mcomment>/\*.*?\*/)"
    r"|(?P<heredoc><<(?P<dash>-?)(?P<marker>[^\W\d][\w-]*)\r?\n)"
    r"|(?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))"
    r"|(?P<ident>[^\W\d][\w.\-]*)"
    r'|(?P<string>")'
    r"|(?P<punct>[{}\[\]=,])",
    re.DOTALL,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE_RE = re.compile(
    r'\\(?:([abfnrtv\\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))'
)
# A token is (kind, value, line); kind is "str", "num", "bool", "ident", a punctuation
# character, or "eof".
_Token = tuple[str, Any, int]


def read_document(text: str) -> Obj:
    """Parse a policy document (HCL1, or JSON when it starts with ``{``).

    Raises:
        HCLSyntaxError: The text is malformed.
    """
    if text.lstrip().startswith("{"):
        return _read_json(text)
    return _Parser(_lex(text)).document()


def _read_json(text: str) -> Obj:
    # object_pairs_hook keeps repeated keys, as HCL's own JSON parser does.
    try:
        doc = json.loads(text, object_pairs_hook=_Pairs)
    except ValueError as exc:
        raise HCLSyntaxError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep(1) from None
    value = _from_json(doc, 0)
    if not isinstance(value, Obj):
        raise HCLSyntaxError("JSON policy must be an object")
    return value


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's (key, value) pairs, told apart from a JSON array."""


def _too_deep(line: int) -> HCLSyntaxError:
    return HCLSyntaxError(f"line {line}: nested deeper than {MAX_NESTING} levels")


def _from_json(node: Any, depth: int) -> Value:
    if isinstance(node, _Pairs | list) and depth >= MAX_NESTING:
        raise _too_deep(1)
    if isinstance(node, _Pairs):
        return Obj(tuple(Item((key,), _from_json(value, depth + 1), 0) for key, value in node))
    if isinstance(node, list):
        return tuple(_from_json(value, depth + 1) for value in node)
    if node is None:
        raise HCLSyntaxError("null is not a valid policy value")
    if isinstance(node, str | int | float | bool):
        return node
    raise HCLSyntaxError(f"unsupported JSON value {node!r}")  # pragma: no cover


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            if text.startswith("/*", pos):
                raise HCLSyntaxError(f"line {line}: comment not terminated")
            raise HCLSyntaxError(f"line {line}: illegal character {text[pos]!r}")
        kind, lexeme = match.lastgroup, match.group()
        if kind == "string":
            value, pos = _scan_string(text, pos + 1, line)
            tokens.append(("str", value, line))
            continue
        if kind == "heredoc":
            value, end = _scan_heredoc(text, match, line)
            tokens.append(("str", value, line))
            line += text.count("\n", pos, end)
            pos = end
            continue
        if kind == "number":
            tokens.append(("num", _number(lexeme, line), line))
        elif kind == "ident":
            is_bool = lexeme in ("true", "false")
            tokens.append(("bool", lexeme == "true", line) if is_bool else ("ident", lexeme, line))
        elif kind == "punct":
            tokens.append((lexeme, lexeme, line))
        line += lexeme.count("\n")
        pos = match.end()
    tokens.append(("eof", None, line))
    return tokens


def _scan_string(text: str, pos: int, line: int) -> tuple[str, int]:
    start, depth = pos, 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "\n" and depth == 0:
            break
        if text.startswith("${", pos):
            depth, pos = depth + 1, pos + 2
            continue
        if char == "}" and depth:
            depth -= 1
        elif char == '"' and depth == 0:
            return _unescape(text[start:pos], line), pos + 1
        pos += 1
    raise HCLSyntaxError(f"line {line}: string literal not terminated")


def _unescape(raw: str, line: int) -> str:
    def replace(match: re.Match[str]) -> str:
        simple, hex2, hex4, hex8, octal = match.groups()
        if simple:
            return _ESCAPES.get(simple, simple)
        return chr(int(hex2 or hex4 or hex8 or octal, 8 if octal else 16))

    decoded = _ESCAPE_RE.sub(replace, raw)
    # Any backslash left over began an escape Go's strconv.Unquote would reject.
    if "\\" in _ESCAPE_RE.sub("", raw):
        raise HCLSyntaxError(f"line {line}: invalid escape sequence in string {raw!r}")
    return decoded


def _scan_heredoc(text: str, match: re.Match[str], line: int) -> tuple[str, int]:
    marker, indented = match.group("marker"), bool(match.group("dash"))
    lines: list[str] = []
    pos = match.end()
    while pos <= len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        current = text[pos:end].rstrip("\r")
        if (current.strip() if indented else current) == marker:
            body = "".join(f"{entry}\n" for entry in lines)
            return (textwrap.dedent(body) if indented else body), end
        lines.append(current)
        pos = end + 1
    raise HCLSyntaxError(f"line {line}: heredoc <<{marker} not terminated")


def _number(lexeme: str, line: int) -> int | float:
    digits = lexeme.lstrip("-")
    if digits[:2].lower() == "0x":
        return int(lexeme, 16)
    if any(c in digits for c in ".eE"):
        return float(lexeme)
    if len(digits) > 1 and digits.startswith("0"):
        # HCL1 reads a leading zero as octal, like Go's ParseInt(s, 0, 0).
        try:
            return int(lexeme, 8)
        except ValueError:
            raise HCLSyntaxError(f"line {line}: invalid number {lexeme!r}") from None
    return int(lexeme)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._pos = 0
        self._depth = 0  # objects and lists open around the current token

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        self._pos += 1
        return token

    def _fail(self, token: _Token, expected: str) -> HCLSyntaxError:
        shown = "end of input" if token[0] == "eof" else repr(token[1])
        return HCLSyntaxError(f"line {token[2]}: expected {expected}, got {shown}")

    def document(self) -> Obj:
        obj = self._items(closing="eof")
        self._next()
        return obj

    def _items(self, closing: str) -> Obj:
        items: list[Item] = []
        while self._peek()[0] != closing:
            items.append(self._item())
            if self._peek()[0] == ",":
                self._next()
        return Obj(tuple(items))

    def _item(self) -> Item:
        keys: list[str] = []
        line = self._peek()[2]
        while self._peek()[0] in ("ident", "str"):
            keys.append(str(self._next()[1]))
        if not keys:
            raise self._fail(self._peek(), "a key")
        token = self._peek()
        if token[0] == "=" and len(keys) == 1:
            self._next()
            return Item(tuple(keys), self._value(), line)
        if token[0] == "{":
            return Item(tuple(keys), self._value(), line)
        raise self._fail(token, "'{'" if len(keys) > 1 else "'=' or '{'")

    def _value(self) -> Value:
        token = self._next()
        kind = token[0]
        if kind in ("str", "num", "bool"):
            return token[1]  # type: ignore[no-any-return]
        if kind not in ("{", "["):
            raise self._fail(token, "a value")
        if self._depth >= MAX_NESTING:
            raise _too_deep(token[2])
        self._depth += 1
        if kind == "{":
            value: Value = self._items(closing="}")
            self._next()
        else:
            value = self._list()
        self._depth -= 1
        return value

    def _list(self) -> tuple[Value, ...]:
        values: list[Value] = []
        while self._peek()[0] != "]":
            values.append(self._value())
            if self._peek()[0] == ",":
                self._next()
            elif self._peek()[0] != "]":
                raise self._fail(self._peek(), "',' or ']'")
        self._next()
        return tuple(values)
