"""Username templates as OpenBao's sdk/helper/template evaluates them."""

from __future__ import annotations

import hashlib
import re

import pytest

from strongroom.engines.database.plugins import MySQLPlugin, PostgresPlugin
from strongroom.engines.database.templates import TemplateError, UsernameTemplate


def test_the_plugins_default_templates() -> None:
    pg = UsernameTemplate(PostgresPlugin.default_template).generate("readonly-role", "token")
    assert re.fullmatch(r"v-token-readonly-[A-Za-z0-9]{20}-\d{10}", pg)
    my = UsernameTemplate(MySQLPlugin.default_template).generate("a-very-long-role", "token")
    assert len(my) == 32 and my.startswith("v-token-a-very-lon-")


@pytest.mark.parametrize(("source", "expected"), [
    ("{{.RoleName}}", "role"),
    ("x-{{ .DisplayName | uppercase }}-y", "x-TOKEN-y"),
    ('{{ printf "%s_%s" .RoleName .DisplayName | truncate 6 }}', "role_t"),
    ('{{ replace "o" "0" .RoleName }}', "r0le"),
    ("{{ .RoleName | sha256 | truncate 8 }}", hashlib.sha256(b"role").hexdigest()[:8]),
    ('{{ truncate_sha256 10 "abcdefghijklmnop" }}',
     "ab" + hashlib.sha256(b"cdefghijklmnop").hexdigest()[:8]),
    ('{{- "a" }} {{ "b" -}} c', "a bc"),
    ('{{ base64 "hi" }}/{{ hex "hi" }}/{{ decode_hex "6869" }}', "aGk=/6869/hi"),
])
def test_functions(source: str, expected: str) -> None:
    assert UsernameTemplate(source).generate("role", "token") == expected


def test_random_and_time_functions_vary() -> None:
    t = UsernameTemplate("{{random 12}}-{{unix_time}}-{{uuid}}")
    a, b = t.generate(), t.generate()
    assert a != b and re.fullmatch(r"[A-Za-z0-9]{12}-\d+-[0-9a-f-]{36}", a)


@pytest.mark.parametrize(("source", "reason"), [
    ("{{ nope }}", 'function "nope" not defined'),
    ("{{ .Foo }}", "can't evaluate field Foo"),
    ('{{ printf "%s" (random 5 }}', "unclosed left paren"),
    ("{{ .RoleName ", "unclosed action"),
    ("", "missing template"),
])
def test_parse_errors(source: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(reason)):
        UsernameTemplate(source)


def test_apply_errors() -> None:
    with pytest.raises(TemplateError, match="unable to apply template: max length must be > 0"):
        UsernameTemplate("{{ truncate 0 .RoleName }}").generate("r")
