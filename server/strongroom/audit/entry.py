"""Vault's audit entries: one request entry before a request is handled, one response
entry after, built once per request (``LogInput``) and rendered per device (its salt,
its ``hmac_accessor``/``log_raw``/``elide_list_responses``/``prefix``/``format``).

The shape follows OpenBao's ``audit/format.go`` (fields are omitted when empty, as
Go's ``omitempty`` does): ``{time, type, auth, request, response, error}``. What a
client could use to act is HMAC'd: the client token everywhere, accessors unless
``hmac_accessor=false``, every string of request and response data, the wrapping
token.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.audit.hashing import Hasher, elide_list_data, hash_structure
from strongroom.audit.jsonx import to_jsonx

ROOT_NAMESPACE = {"id": "root"}


@dataclass(frozen=True)
class FormatConfig:
    """A device's formatting options (common to every device type)."""

    raw: bool = False  # log_raw
    hmac_accessor: bool = True
    elide_list_responses: bool = False
    prefix: str = ""
    format: str = "json"  # or "jsonx"


@dataclass
class LogInput:
    """What one request gives every device: plain values, HMAC'd per device.

    ``auth`` and ``request`` are the entry's blocks as dicts; ``response`` is None for
    a request entry. ``list_op``: the request was a LIST (``elide_list_responses``).
    """

    kind: str  # "request" | "response"
    auth: dict[str, Any]
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    error: str = ""
    list_op: bool = False
    non_hmac_request_keys: tuple[str, ...] = ()
    non_hmac_response_keys: tuple[str, ...] = ()
    time_ns: int = field(default_factory=time.time_ns)


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def compact(block: dict[str, Any]) -> dict[str, Any]:
    """Go's ``omitempty`` on a struct: zero values ("", 0, false, nil, empty) are left out."""
    return {k: v for k, v in block.items() if v}


def _hash_auth(auth: dict[str, Any], fn: Hasher, cfg: FormatConfig) -> dict[str, Any]:
    out = dict(auth)
    if out.get("client_token"):
        out["client_token"] = fn(out["client_token"])
    if cfg.hmac_accessor and out.get("accessor"):
        out["accessor"] = fn(out["accessor"])
    return out


def _hash_request(request: dict[str, Any], fn: Hasher, cfg: FormatConfig,
                  ignored: tuple[str, ...]) -> dict[str, Any]:
    out = dict(request)
    if out.get("client_token"):
        out["client_token"] = fn(out["client_token"])
    if cfg.hmac_accessor and out.get("client_token_accessor"):
        out["client_token_accessor"] = fn(out["client_token_accessor"])
    if out.get("data") is not None:
        out["data"] = hash_structure(out["data"], fn, ignored)
    return out


def _hash_response(response: dict[str, Any], fn: Hasher, cfg: FormatConfig,
                   ignored: tuple[str, ...]) -> dict[str, Any]:
    out = dict(response)
    if out.get("auth"):
        out["auth"] = _hash_auth(out["auth"], fn, cfg)
    if out.get("data") is not None:
        out["data"] = hash_structure(out["data"], fn, ignored)
    wrap = out.get("wrap_info")
    if wrap:
        wrap = dict(wrap)
        wrap["token"] = fn(wrap.get("token") or "")
        if cfg.hmac_accessor:
            if wrap.get("accessor"):
                wrap["accessor"] = fn(wrap["accessor"])
            if wrap.get("wrapped_accessor"):
                wrap["wrapped_accessor"] = fn(wrap["wrapped_accessor"])
        out["wrap_info"] = wrap
    return out


def render(inp: LogInput, cfg: FormatConfig, hasher: Hasher) -> dict[str, Any]:
    """The entry one device writes for ``inp``."""
    # One entry carries the client token (and accessor) several times: HMAC'd once.
    memo: dict[str, str] = {}

    def hashed(value: str) -> str:
        out = memo.get(value)
        if out is None:
            out = memo[value] = hasher(value)
        return out

    fn: Hasher = hashed
    auth, request, response = inp.auth, inp.request, inp.response
    if response is not None and inp.list_op and cfg.elide_list_responses and isinstance(
            response.get("data"), dict):
        response = {**response, "data": elide_list_data(response["data"])}
    if not cfg.raw:
        auth = _hash_auth(auth, fn, cfg)
        request = _hash_request(request, fn, cfg, inp.non_hmac_request_keys)
        if response is not None:
            response = _hash_response(response, fn, cfg, inp.non_hmac_response_keys)
    entry: dict[str, Any] = {"time": rfc3339_nano(inp.time_ns), "type": inp.kind,
                             "auth": compact(auth), "request": compact(request)}
    if response is not None:
        # Nested structs are omitempty too (data, a map, is kept as it is).
        response = {k: compact(v) if k in ("auth", "secret", "wrap_info") and v else v
                    for k, v in response.items()}
        entry["response"] = compact(response)
    if inp.error:
        entry["error"] = inp.error
    return entry


def encode(entry: dict[str, Any], cfg: FormatConfig) -> bytes:
    """One line: the device's prefix, the entry, a newline (written with one write)."""
    if cfg.format == "jsonx":
        body = to_jsonx(entry)
    else:
        try:
            body = orjson.dumps(entry, default=str)
        except (orjson.JSONEncodeError, TypeError):
            # Deeper than orjson nests (accepted requests may be): the standard library.
            body = json.dumps(entry, default=str, separators=(",", ":")).encode()
    return cfg.prefix.encode() + body + b"\n"
