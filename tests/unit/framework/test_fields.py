"""framework/fields.py: typed request fields with Vault's (Go's weak) coercion rules."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType


@pytest.mark.parametrize(("ftype", "given", "expected"), [
    (FieldType.STRING, "text", "text"),
    (FieldType.STRING, 5, "5"),
    (FieldType.STRING, True, "true"),
    (FieldType.INT, 7, 7),
    (FieldType.INT, "0x10", 16),  # Go's ParseInt(s, 0, 64)
    (FieldType.INT, "", 0),
    (FieldType.INT, True, 1),
    (FieldType.BOOL, True, True),
    (FieldType.BOOL, "yes", True),
    (FieldType.BOOL, "0", False),
    (FieldType.BOOL, "", False),
    (FieldType.DURATION, 90, 90),
    (FieldType.DURATION, "1h30m", 5400),
    (FieldType.DURATION, "2d", 172800),
    (FieldType.SIGNED_DURATION, "-5s", -5),
    (FieldType.MAP, {"a": 1}, {"a": 1}),
    (FieldType.LIST, "a, b,,c", ["a", "b", "c"]),  # Vault splits comma strings
    (FieldType.LIST, [1, "x"], ["1", "x"]),
    (FieldType.ANY, {"x": [1]}, {"x": [1]}),
])
def test_values_are_coerced_to_the_field_type(ftype: FieldType, given: Any,
                                              expected: Any) -> None:
    data = FieldData({"f": Field(ftype)}, {"f": given})
    assert data.get("f") == expected
    assert data.has("f")


@pytest.mark.parametrize(("ftype", "given", "message"), [
    (FieldType.INT, "ten", "error converting input for field \"f\": '' cannot parse value "
                           "as 'int': strconv.ParseInt: invalid syntax"),
    (FieldType.INT, 1.5, "error converting input for field \"f\": '' cannot parse value "
                         "as 'int': strconv.ParseInt: invalid syntax"),
    (FieldType.INT, 2**63, "error converting input for field \"f\": '' cannot parse value "
                           "as 'int': strconv.ParseInt: value out of range"),
    (FieldType.DURATION, "-5s", "error converting input for field \"f\": cannot provide "
                                "negative value '-5'"),
    (FieldType.DURATION, "soon", 'error converting input for field "f": time: invalid '
                                 'duration "soon"'),
    (FieldType.BOOL, "maybe", "error converting input for field 'f': expected bool"),
    (FieldType.MAP, [1], "error converting input for field 'f': expected map"),
    (FieldType.LIST, {"a": 1}, "error converting input for field 'f': expected list"),
    (FieldType.STRING, {"a": 1}, "error converting input for field 'f': expected string"),
])
def test_values_that_do_not_convert_are_a_400_naming_the_field(
        ftype: FieldType, given: Any, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        FieldData({"f": Field(ftype)}, {"f": given})
    assert caught.value.status == 400
    assert caught.value.message == message


def test_absent_and_null_fields_take_their_default_and_are_not_had() -> None:
    schema = {"a": Field(FieldType.INT, 3), "b": Field(FieldType.STRING)}
    data = FieldData(schema, {"b": None})
    assert (data.get("a"), data.get("b")) == (3, None)
    assert not data.has("a") and not data.has("b")


def test_a_missing_required_field_is_a_400() -> None:
    with pytest.raises(BadRequestError, match="missing required field 'name'"):
        FieldData({"name": Field(required=True)}, {})
    assert FieldData({"name": Field(required=True)}, {"name": "x"}).get("name") == "x"


def test_unknown_keys_are_reported_sorted_and_not_used() -> None:
    data = FieldData({"known": Field()}, {"zeta": 1, "known": "k", "alpha": 2})
    assert data.unknown == ["alpha", "zeta"]
    assert data.get("known") == "k"
    with pytest.raises(KeyError):
        data.get("zeta")  # only declared fields can be read
    assert data.raw["zeta"] == 1  # the raw input stays available (e.g. KV's free-form data)
