"""``batch_input`` of string maps (sign, verify, hmac), decoded as OpenBao does.

OpenBao decodes each item into a Go ``map[string]string`` with mapstructure: a
JSON number keeps its literal text, ``null`` becomes "" (an item ``null`` is an
empty map), while booleans, lists and objects fail the whole request. OpenBao
answers that failure with a 500; here it is a 400 with the same words (issue 14
asks clear 400s for bad input). An item's missing key and its empty value differ
("missing input" vs an empty input), hence maps and not a typed record.
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.errors import BadRequestError


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (str, int, float)):
        return "string"  # a JSON number is a json.Number, a string kind, in Vault
    if isinstance(value, dict):
        return "map"
    return "slice" if isinstance(value, list) else "invalid"


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return "bool" if isinstance(value, bool) else "string"


def _number_text(value: int | float) -> str:
    # The JSON literal Go kept; Python parsed it, json.dumps writes it back.
    return json.dumps(value)


def parse(raw: Any, item_type: str) -> list[dict[str, str]] | None:
    """The items of ``batch_input`` (None when absent) or a BadRequestError.

    ``item_type`` is the Go type OpenBao names in its error text
    (``transit.batchRequestSignItem``...).
    """
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequestError("failed to parse batch input: '' source data must be an array "
                              f"or slice, got {_go_kind(raw)}")
    items: list[dict[str, str]] = []
    for index, element in enumerate(raw):
        if element is None:
            items.append({})
            continue
        if not isinstance(element, dict):
            raise _decode_error(f"'[{index}]' expected type '{item_type}', got unconvertible "
                                f"type '{_go_type(element)}'")
        item: dict[str, str] = {}
        for key, value in element.items():
            if value is None:
                item[key] = ""
            elif isinstance(value, str):
                item[key] = value
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                item[key] = _number_text(value)
            else:
                raise _decode_error(f"'[{index}][{key}]' expected type 'string', got "
                                    f"unconvertible type '{_go_type(value)}'")
        items.append(item)
    if not items:
        raise BadRequestError("missing batch input to process")
    return items


def _decode_error(detail: str) -> BadRequestError:
    return BadRequestError("failed to parse batch input: decoding failed due to the following "
                           f"error(s):\n\n{detail}")
