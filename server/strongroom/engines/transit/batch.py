"""``batch_input`` as Vault's transit decodes it, and the batch response's status.

Vault decodes each item by hand (``decodeBatchRequestItems``): a field of the wrong
JSON type fails the whole request with a 500 listing every problem; a bad value
(wrong base64, a version that does not exist) fails only its item. With any failed
item the status is 400 (500 when only internal errors), or the caller's
``partial_failure_response_code`` when some items succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.core.request import Response
from strongroom.errors import BadRequestError, StrongroomError

from .policy import TransitInternalError

# OpenBao refuses bodies of more than 1,000 JSON strings (max_request_json_strings), so
# its batches end near 500 items. Strongroom's HTTP layer takes arrays of up to 10,000
# elements (http/edge.py); the same bound here covers callers that skip the HTTP layer.
MAX_BATCH_ITEMS = 10_000


@dataclass
class Item:
    context: str = ""
    plaintext: str = ""
    ciphertext: str = ""
    key_version: int = 0
    associated_data: str = ""
    reference: str = ""
    decoded_context: bytes | None = None


def go_type(value: Any) -> str:
    """Go's ``%T`` of a JSON value decoded with UseNumber."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "json.Number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def _number_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def decode_items(raw: Any, *, require_plaintext: bool = False,
                 require_ciphertext: bool = False) -> list[Item]:
    """The items of ``batch_input``; a malformed one fails the request (500, Vault's)."""
    if not isinstance(raw, list):
        raise _parse_error(f"source data must be an array or slice, got {go_type(raw)}")
    if len(raw) > MAX_BATCH_ITEMS:
        raise BadRequestError(f"batch_input has {len(raw)} items; the limit is "
                              f"{MAX_BATCH_ITEMS}")
    items: list[Item] = []
    errs: list[str] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise _parse_error(f"[{i}] expected a map, got '{go_type(entry)}'")
        item = Item()
        for name in ("context", "ciphertext", "associated_data", "reference"):
            if name in entry and entry[name] is not None:
                if isinstance(entry[name], str):
                    setattr(item, name, entry[name])
                else:
                    errs.append(f"'[{i}].{name}' expected type 'string', got unconvertible "
                                f"type '{go_type(entry[name])}'")
            elif name == "ciphertext" and name not in entry and require_ciphertext:
                errs.append(f"'[{i}].ciphertext' missing ciphertext to decrypt")
        if "plaintext" in entry:
            if isinstance(entry["plaintext"], str):
                item.plaintext = entry["plaintext"]
            else:
                errs.append(f"'[{i}].plaintext' expected type 'string', got unconvertible "
                            f"type '{go_type(entry['plaintext'])}'")
        elif require_plaintext:
            errs.append(f"'[{i}].plaintext' missing plaintext to encrypt")
        version = entry.get("key_version")
        if version is not None:
            if isinstance(version, int) and not isinstance(version, bool):
                item.key_version = version
            elif isinstance(version, float):
                errs.append(f"error decoding json.Number into [{i}].key_version: "
                            f'strconv.ParseInt: parsing "{_number_text(version)}": '
                            "invalid syntax")
            else:
                errs.append(f"'[{i}].key_version' expected type 'int', got unconvertible "
                            f"type '{go_type(version)}'")
        items.append(item)
    if errs:
        raise _parse_error("\n".join(errs))
    return items


def _parse_error(message: str) -> TransitInternalError:
    return TransitInternalError(f"failed to parse batch input: {message}")


def is_internal(exc: StrongroomError) -> bool:
    return exc.status >= 500


def respond(resp: Response, partial_code: int | None, successes: bool, user_errors: bool,
            internal_errors: bool) -> Response:
    """Vault's ``batchRequestResponse``: the status a batch with failures gets."""
    if not (user_errors or internal_errors):
        return resp
    code = 400 if user_errors else 500
    if partial_code is not None and successes:
        if 1 <= partial_code <= 599:
            code = partial_code
        else:
            resp.warnings.append("invalid HTTP response code override from "
                                 f"partial_failure_response_code, reverting to {code}")
    resp.status = code
    return resp
