"""Output formatting: Vault's table layout, Go value rendering, formats and -field."""

from __future__ import annotations

import io
import json

import pytest

from strongroom.cli import output
from strongroom.cli.flags import UsageError
from tests.support import requires

# `bao status` output for a sealed server, captured from OpenBao 2.7.
BAO_SEALED_TABLE = """\
Key                Value
---                -----
Seal Type          shamir
Initialized        true
Sealed             true
Total Shares       3
Threshold          2
Unseal Progress    0/2
Unseal Nonce       n/a
Version            2.7.2"""


def test_table_matches_vault_layout_exactly() -> None:
    rows = [("Seal Type", "shamir"), ("Initialized", True), ("Sealed", True),
            ("Total Shares", 3), ("Threshold", 2), ("Unseal Progress", "0/2"),
            ("Unseal Nonce", ""), ("Version", "2.7.2")]
    assert output.table(rows) == BAO_SEALED_TABLE


def test_table_without_header_and_without_rows() -> None:
    text = output.table([("a", 1), ("long-key", "x")], header=None)
    assert text == "a           1\nlong-key    x"
    assert output.table([], header=None) == ""


@pytest.mark.parametrize(("value", "text"), [
    (None, "<nil>"), (True, "true"), (False, "false"), (3, "3"), (3.0, "3"), (2.5, "2.5"),
    ("s", "s"), ([1, "a", True], "[1 a true]"), ({"b": 1, "a": [2]}, "map[a:[2] b:1]"),
    ([], "[]"),
])
def test_go_value(value: object, text: str) -> None:
    assert output.go_value(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (5, "5s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3660, "1h1m"),
    (3661, "1h1m1s"), (2764800, "768h"), ("2764800", "768h"), ("768h", "768h"),
    (-90, "-1m30s"),
])
def test_human_duration(seconds: object, text: str) -> None:
    assert output.human_duration(seconds) == text


def test_map_rows_sort_keys_and_humanize_ttls() -> None:
    rows = output.map_rows({"token_ttl": 3600, "b": 1, "a": "x", "period": 60})
    assert rows == [("a", "x"), ("b", 1), ("period", "1m"), ("token_ttl", "1h")]


def test_render_json_is_two_space_indented_and_keeps_order() -> None:
    text = output.render({"z": 1, "a": [True, None]}, "json")
    assert text == '{\n  "z": 1,\n  "a": [\n    true,\n    null\n  ]\n}'


def test_render_yaml_sorted_block_style() -> None:
    if not output.yaml_available():
        requires.missing("Python package yaml", "pip install pyyaml")
    assert output.render({"b": 1, "a": [1, 2]}, "yaml") == "a:\n- 1\n- 2\nb: 1"


def test_render_table_defaults_to_sorted_map_rows() -> None:
    text = output.render({"b": 2, "a": 1}, "table")
    assert text == "Key    Value\n---    -----\na      1\nb      2"


@pytest.mark.parametrize(("flag", "env", "expected"), [
    (None, {}, "table"),
    ("json", {"VAULT_FORMAT": "table"}, "json"),
    (None, {"VAULT_FORMAT": "json"}, "json"),
    (None, {"BAO_FORMAT": "json", "VAULT_FORMAT": "table"}, "table"),
    (None, {"STRONGROOM_FORMAT": "json", "VAULT_FORMAT": "table"}, "json"),
    (None, {"VAULT_FORMAT": ""}, "table"),
    ("JSON", {}, "json"),
])
def test_resolve_format_precedence(flag: str | None, env: dict[str, str],
                                   expected: str) -> None:
    assert output.resolve_format(flag, env) == expected


def test_resolve_format_rejects_unknown() -> None:
    with pytest.raises(UsageError, match="Invalid output format: xml"):
        output.resolve_format("xml", {})
    with pytest.raises(UsageError, match="Invalid output format: raw"):
        output.resolve_format(None, {"VAULT_FORMAT": "raw"})


def test_yaml_rejected_without_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "yaml_available", lambda: False)
    with pytest.raises(UsageError, match="PyYAML"):
        output.resolve_format("yaml", {})


def test_field_text() -> None:
    data = {"s": "v", "n": 3, "b": False, "l": [1, 2], "none": None}
    assert output.field_text(data, "s", "table") == "v"
    assert output.field_text(data, "n", "table") == "3"
    assert output.field_text(data, "b", "table") == "false"
    assert output.field_text(data, "l", "table") == "[1 2]"
    assert json.loads(output.field_text(data, "l", "json") or "") == [1, 2]
    assert output.field_text(data, "s", "json") == '"v"'  # encoded, as vault does
    assert output.field_text(data, "missing", "table") is None
    assert output.field_text(data, "none", "table") is None


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_write_raw_adds_newline_only_on_a_terminal() -> None:
    pipe, tty = io.StringIO(), _Tty()
    output.write_raw(pipe, "value")
    output.write_raw(tty, "value")
    assert pipe.getvalue() == "value"
    assert tty.getvalue() == "value\n"
