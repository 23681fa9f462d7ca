"""JSON in answers: orjson when it can, the standard library when orjson cannot.

orjson refuses to encode more than 254 levels of nesting (and integers beyond 64
bits). The HTTP edge accepts documents up to Vault's ``max_json_depth`` (500
levels, http/edge.py), and whatever it accepted may come back in an answer a
few levels deeper (the response envelope, a KV v2 ``data.data``, a wrapped
response). Those rare documents are encoded by the standard library, which
writes the same compact text and recurses up to Python's recursion limit
(about 1000 levels), so everything accepted also encodes.

Code that must not spend a single-use resource (a wrapping token, a token's
last use) on an answer that cannot be written calls :func:`dumps` first.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from strongroom.errors import StrongroomError


class UnencodableError(StrongroomError):
    """The answer cannot be written as JSON (a 500: no client input gets here)."""

    status = 500


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON.

    Raises:
        UnencodableError: Neither encoder can write it (nested beyond Python's
            recursion limit, a non-finite float, a type JSON has no form for).
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass  # too deep or an integer beyond 64 bits: the slow path takes both
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode()  # a lone surrogate fails here (UnicodeEncodeError: ValueError)
    except (RecursionError, ValueError, TypeError):
        raise UnencodableError("internal error: the response cannot be encoded") from None
