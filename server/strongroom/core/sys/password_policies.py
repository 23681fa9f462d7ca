"""Password policies: ``sys/policies/password/<name>`` (+ ``/generate``), and the
generator engines use (Vault's ``SystemView.GeneratePasswordFromPolicy``).

A policy is HCL (or base64 of it) as Vault has it::

    length = 20
    rule "charset" {
      charset   = "abcdefghijklmnopqrstuvwxyz"
      min-chars = 1
    }

A password is drawn from the union of every rule's charset, then kept only if it has
at least ``min-chars`` characters of each rule's charset (Vault's StringGenerator).
Policies live in the barrier at ``sys/password_policy/<name>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.barrier.view import StorageView
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError, NotFoundError, StrongroomError, multierror
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.physical.base import Backend
from strongroom.policy._hcl import HCLSyntaxError, Item, Obj, read_document

if TYPE_CHECKING:
    from strongroom.core.core import Core

PREFIX = "sys/password_policy/"
MIN_LENGTH, MAX_LENGTH = 4, 100
# Each draw passes with probability >= prod(...) of the rules; a policy whose rules
# can be met passes long before this (Vault retries until its request times out).
MAX_ATTEMPTS = 10_000


@dataclass(frozen=True)
class CharsetRule:
    charset: str
    min_chars: int

    def passes(self, candidate: str) -> bool:
        return sum(1 for c in candidate if c in self.charset) >= self.min_chars


@dataclass(frozen=True)
class PasswordPolicy:
    length: int
    rules: tuple[CharsetRule, ...]

    @property
    def charset(self) -> str:
        # Deduplicated, in first-seen order (Vault's getChars).
        return "".join(dict.fromkeys("".join(r.charset for r in self.rules)))

    def generate(self) -> str:
        charset = self.charset
        for _ in range(MAX_ATTEMPTS):
            candidate = "".join(secrets.choice(charset) for _ in range(self.length))
            if all(rule.passes(candidate) for rule in self.rules):
                return candidate
        raise StrongroomError("timed out generating string")


# Vault's default for database credentials (random.DefaultStringGenerator): 20
# characters with at least one lower, upper, digit and dash.
DEFAULT_POLICY = PasswordPolicy(20, (
    CharsetRule(string.ascii_lowercase, 1), CharsetRule(string.ascii_uppercase, 1),
    CharsetRule(string.digits, 1), CharsetRule("-", 1)))


def _rule(item: Item) -> CharsetRule:
    if len(item.keys) != 2 or item.keys[1] != "charset" or not isinstance(item.value, Obj):
        kind = item.keys[1] if len(item.keys) > 1 else ""
        raise ValueError(_multi([f"unable to parse rules: unrecognized rule type {kind}"]))
    charset, min_chars = "", 0
    for field in item.value.items:
        key = field.keys[0]
        if key == "charset" and isinstance(field.value, str):
            charset = field.value
        elif key == "min-chars" and isinstance(field.value, int) and not isinstance(
                field.value, bool):
            min_chars = field.value
        else:
            raise ValueError(_multi([f"unable to parse rules: unable to parse rule charset: "
                                     f"unexpected field {key!r}"]))
    if not charset:
        raise ValueError(_multi(["unable to parse rules: unable to parse rule charset: "
                                 "no charset specified"]))
    if any(c not in string.printable or c in "\t\n\r\x0b\x0c" for c in charset):
        raise ValueError(_multi(["non-printable character in charset"]))
    return CharsetRule(charset, min_chars)


def parse_policy(text: str) -> PasswordPolicy:
    """Parse and validate a policy (Vault's ParsePolicy + validateConfig).

    Raises:
        ValueError: With Vault's reason.
    """
    try:
        doc = read_document(text)
    except HCLSyntaxError as exc:
        raise ValueError(_multi([f"unable to decode: {exc}"])) from None
    length, rules = 0, []
    for item in doc.items:
        if item.keys == ("length",) and isinstance(item.value, int) and not isinstance(
                item.value, bool):
            length = item.value
        elif item.keys[0] == "rule":
            rules.append(_rule(item))
        # Other keys are ignored, as Vault's mapstructure decoding does.
    policy = PasswordPolicy(length, tuple(rules))
    problems = []
    minimum = sum(r.min_chars for r in rules)
    if length <= 0:
        problems.append("length must be > 0")
    elif length < minimum:
        problems.append(f"specified rules require at least {minimum} characters but "
                        f"{length} is specified")
    if not policy.charset:
        problems.append("no charset specified")
    if problems:
        raise ValueError(_multi(problems))
    return policy


def _multi(problems: list[str]) -> str:
    """go-multierror's text, which Vault's answers here carry."""
    head = "1 error occurred" if len(problems) == 1 else f"{len(problems)} errors occurred"
    return head + ":\n" + "".join(f"\t* {p}\n" for p in problems) + "\n"


class PasswordPolicies:
    """The stored policies, and generation from one of them by name."""

    def __init__(self, barrier: Backend) -> None:
        self._storage = StorageView(barrier, PREFIX)

    def raw(self, name: str) -> str | None:
        stored = self._storage.get(_key(name))
        return None if stored is None else str(json.loads(stored)["policy"])

    def put(self, name: str, text: str) -> None:
        self._storage.put(_key(name), json.dumps({"policy": text}).encode())

    def delete(self, name: str) -> None:
        self._storage.delete(_key(name))

    def names(self) -> list[str]:
        return sorted(self._storage.list(""))

    def generate(self, name: str) -> str:
        """A password from policy ``name``; ``""`` is Vault's default generator.

        Raises:
            StrongroomError: The policy does not exist or cannot generate.
        """
        if not name:
            return DEFAULT_POLICY.generate()
        text = self.raw(name)
        if text is None:
            raise StrongroomError(f"password policy {name!r} does not exist")
        try:
            return parse_policy(text).generate()
        except ValueError:
            raise StrongroomError("stored password policy configuration failed to parse") from None


def _key(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise BadRequestError("missing policy name" if not name else "invalid policy name")
    return name


def _decode(text: str) -> str:
    # Vault accepts the HCL itself or its base64 (StdEncoding); a valid decode wins.
    if re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) and len(text) % 4 == 0:
        try:
            return base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return text
    return text


def password_policy_paths(core: Core) -> list[Path]:
    """The sys/ paths, mounted by core/system.py."""
    store = PasswordPolicies(core.barrier)
    fields = {"name": Field(FieldType.STRING), "policy": Field(FieldType.STRING)}

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        name = str(data.get("name"))
        raw = str(data.get("policy") or "")
        if not raw:
            raise BadRequestError(multierror("missing policy"))
        text = _decode(raw)
        try:
            policy = parse_policy(text)
        except ValueError as exc:
            raise BadRequestError(multierror(f"invalid password policy: {exc}")) from None
        if not MIN_LENGTH <= policy.length <= MAX_LENGTH:
            raise BadRequestError(multierror(
                f"passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters"))
        store.put(name, text)
        return None

    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        text = store.raw(str(data.get("name")))
        if text is None:
            raise NotFoundError(multierror("policy does not exist"))
        return _response({"policy": text})

    def delete(req: Request, data: FieldData, m: re.Match[str]) -> None:
        store.delete(str(data.get("name")))

    def listing(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        return _response({"keys": store.names()})

    def generate(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        name = str(data.get("name"))
        text = store.raw(name)
        if text is None:
            raise NotFoundError(multierror("policy does not exist"))
        try:
            policy = parse_policy(text)
        except ValueError:
            raise StrongroomError(multierror(
                "stored password policy configuration failed to parse")) from None
        return _response({"password": policy.generate()})

    name = "(?P<name>[^/]+)"
    return [
        Path("policies/password/?", {Operation.LIST: listing}),
        Path(f"policies/password/{name}/generate", {Operation.READ: generate}, fields),
        Path(f"policies/password/{name}", {Operation.UPDATE: write, Operation.READ: read,
                                           Operation.DELETE: delete}, fields),
    ]


def _response(data: dict[str, object]) -> Response:
    return Response(data=data)


PasswordGenerator = Callable[[str], str]
