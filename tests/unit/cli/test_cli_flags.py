"""Go-style flag parsing: the spellings `vault` accepts must mean the same here."""

from __future__ import annotations

import pytest

from strongroom.cli.flags import FlagSet, HelpRequested, UsageError, parse_bool


def make() -> FlagSet:
    fs = FlagSet()
    fs.string("format", "output format", default="table", trailing=True)
    fs.string("address", "server address", trailing=True)
    fs.integer("key-shares", "shares", default=5, aliases=("n",))
    fs.integer("key-threshold", "threshold", default=3, aliases=("t",))
    fs.boolean("reset", "reset progress")
    fs.strings("header", "extra header")
    return fs


def test_defaults_when_nothing_given() -> None:
    p = make().parse([])
    assert p.string("format") == "table"
    assert p.integer("key-shares") == 5
    assert p.boolean("reset") is False
    assert p.strings("header") == []
    assert p.args == []
    assert not p.is_set("format")


@pytest.mark.parametrize("argv", [
    ["-format=json"], ["--format=json"], ["-format", "json"], ["--format", "json"],
])
def test_single_and_double_dash_with_or_without_equals(argv: list[str]) -> None:
    p = make().parse(argv)
    assert p.string("format") == "json"
    assert p.is_set("format")


def test_aliases_set_the_canonical_flag() -> None:
    p = make().parse(["-n", "3", "-t=2"])
    assert (p.integer("key-shares"), p.integer("key-threshold")) == (3, 2)


@pytest.mark.parametrize(("argv", "expected"), [
    (["-reset"], True), (["-reset=true"], True), (["-reset=false"], False),
    (["-reset=0"], False), (["-reset=T"], True), (["--reset"], True),
])
def test_boolean_forms(argv: list[str], expected: bool) -> None:
    assert make().parse(argv).boolean("reset") is expected


def test_boolean_does_not_consume_the_next_argument() -> None:
    p = make().parse(["-reset", "false"])
    assert p.boolean("reset") is True
    assert p.args == ["false"]


def test_parsing_stops_at_first_positional() -> None:
    p = make().parse(["-n=2", "KEY", "-reset", "x=-1"])
    assert p.integer("key-shares") == 2
    assert p.boolean("reset") is False
    assert p.args == ["KEY", "-reset", "x=-1"]


def test_trailing_flags_are_still_recognised_after_positionals() -> None:
    p = make().parse(["KEY", "-format=json", "-address", "http://x:1"])
    assert p.args == ["KEY"]
    assert p.string("format") == "json"
    assert p.string("address") == "http://x:1"


def test_double_dash_ends_flags_even_for_trailing_ones() -> None:
    p = make().parse(["-reset", "--", "-format=json", "-n"])
    assert p.boolean("reset") is True
    assert p.args == ["-format=json", "-n"]
    assert p.string("format") == "table"


def test_single_dash_is_a_positional() -> None:
    assert make().parse(["-", "-reset"]).args == ["-", "-reset"]


def test_repeatable_flag_accumulates() -> None:
    p = make().parse(["-header=a=1", "-header", "b=2"])
    assert p.strings("header") == ["a=1", "b=2"]


def test_values_may_start_with_a_dash() -> None:
    assert make().parse(["-address", "-weird"]).string("address") == "-weird"


@pytest.mark.parametrize(("argv", "message"), [
    (["-bogus"], "flag provided but not defined: -bogus"),
    (["--bogus=1"], "flag provided but not defined: -bogus"),
    (["-format"], "flag needs an argument: -format"),
    (["-key-shares=x"], 'invalid value "x" for flag -key-shares'),
    (["-n=x"], 'invalid value "x" for flag -n'),
    (["-reset=maybe"], 'invalid value "maybe" for flag -reset'),
    (["---format=json"], "bad flag syntax: ---format=json"),
    (["-=x"], "bad flag syntax: -=x"),
])
def test_usage_errors_use_go_wording(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        make().parse(argv)
    assert str(info.value).startswith(message)


def test_int_accepts_go_base_prefixes() -> None:
    assert make().parse(["-n=0x10"]).integer("key-shares") == 16


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_flags_request_help(flag: str) -> None:
    with pytest.raises(HelpRequested):
        make().parse(["-n=2", flag])


def test_help_after_positional_is_just_an_argument() -> None:
    assert make().parse(["KEY", "-h"]).args == ["KEY", "-h"]


def test_duplicate_declaration_is_rejected() -> None:
    fs = make()
    with pytest.raises(ValueError, match="declared twice"):
        fs.boolean("n", "clash with alias")


def test_typed_getters_reject_the_wrong_kind() -> None:
    p = make().parse([])
    with pytest.raises(TypeError):
        p.integer("format")
    with pytest.raises(TypeError):
        p.boolean("key-shares")


def test_help_lists_sections_flags_and_aliases() -> None:
    fs = FlagSet()
    fs.string("address", "Where the server is.", section="HTTP Options")
    fs.integer("key-shares", "How many shares.", aliases=("n",))
    fs.boolean("status", "Only report status.")
    text = fs.help()
    assert text.index("HTTP Options:") < text.index("Command Options:")
    assert "  -address=<string>\n      Where the server is." in text
    assert "  -key-shares=<int>" in text
    assert 'aliased as "-n"' in text
    assert "  -status\n" in text


@pytest.mark.parametrize(("text", "value"), [("1", True), ("TRUE", True), ("f", False),
                                             ("False", False)])
def test_parse_bool_matches_go(text: str, value: bool) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["yes", "no", "", "tRuE"])
def test_parse_bool_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bool(text)
