"""Printing API responses ("secrets") the way the vault CLI does.

Vault's CLI decodes every answer into its Go ``api.Secret`` struct and prints
that, so ``-format=json`` shows a fixed set of keys in struct order (unknown
keys dropped, absent ones as zero values) with map keys sorted, and the table
layout adds ``lease_*``, ``token_*`` and ``wrapping_*`` rows around the data.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any

from strongroom.cli import output
from strongroom.cli.client import ApiClient, ApiError, JsonObject
from strongroom.cli.command import Context
from strongroom.cli.output import Row

_WRAP_WIDTH = 78


def sort_maps(value: Any) -> Any:
    """Return ``value`` with every nested object's keys sorted, as Go's JSON encoder does."""
    if isinstance(value, Mapping):
        return {k: sort_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_maps(v) for v in value]
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def shape_auth(auth: Mapping[str, Any]) -> JsonObject:
    """Reshape an ``auth`` block into Go's ``api.SecretAuth`` JSON."""
    return {
        "client_token": _str(auth.get("client_token")),
        "accessor": _str(auth.get("accessor")),
        "policies": auth.get("policies"),
        "token_policies": auth.get("token_policies"),
        "identity_policies": auth.get("identity_policies"),
        "metadata": sort_maps(auth.get("metadata")) or None,
        "orphan": bool(auth.get("orphan")),
        "entity_id": _str(auth.get("entity_id")),
        "lease_duration": _int(auth.get("lease_duration")),
        "renewable": bool(auth.get("renewable")),
        "mfa_requirement": auth.get("mfa_requirement"),
    }


def shape_wrap(info: Mapping[str, Any]) -> JsonObject:
    """Reshape a ``wrap_info`` block into Go's ``api.SecretWrapInfo`` JSON."""
    return {
        "token": _str(info.get("token")),
        "accessor": _str(info.get("accessor")),
        "ttl": _int(info.get("ttl")),
        "creation_time": _str(info.get("creation_time")) or "0001-01-01T00:00:00Z",
        "creation_path": _str(info.get("creation_path")),
        "wrapped_accessor": _str(info.get("wrapped_accessor")),
    }


def shape(resp: Mapping[str, Any] | None) -> JsonObject:
    """Reshape a raw API answer into what ``vault ... -format=json`` prints."""
    resp = resp or {}
    data = resp.get("data")
    out: JsonObject = {
        "request_id": _str(resp.get("request_id")),
        "lease_id": _str(resp.get("lease_id")),
        "lease_duration": _int(resp.get("lease_duration")),
        "renewable": bool(resp.get("renewable")),
        "data": sort_maps(data) if isinstance(data, Mapping) else None,
        "warnings": resp.get("warnings") or None,
    }
    if isinstance(resp.get("auth"), Mapping):
        out["auth"] = shape_auth(resp["auth"])
    if isinstance(resp.get("wrap_info"), Mapping):
        out["wrap_info"] = shape_wrap(resp["wrap_info"])
    if resp.get("mount_type"):
        out["mount_type"] = resp["mount_type"]
    return out


def go_time_string(rfc3339: str) -> str:
    """Render an RFC 3339 timestamp as Go's ``Time.String``.

    Example: ``2026-01-02T15:04:05.5Z`` -> ``2026-01-02 15:04:05.5 +0000 UTC``.
    """
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if match is None:
        return rfc3339
    day, clock, frac, zone = match.groups()
    frac = (frac or "").rstrip("0")
    text = f"{day} {clock}" + (f".{frac}" if frac else "")
    if zone == "Z":
        return text + " +0000 UTC"
    return f"{text} {zone.replace(':', '')} {zone.replace(':', '')}"


def secret_rows(secret: JsonObject) -> list[Row]:
    """Table rows for a shaped secret, as Vault's ``OutputSecret`` lays them out."""
    rows: list[Row] = []
    if secret["lease_duration"] > 0:
        if secret["lease_id"]:
            rows += [("lease_id", secret["lease_id"]),
                     ("lease_duration", output.human_duration(secret["lease_duration"])),
                     ("lease_renewable", secret["renewable"])]
        else:
            rows.append(("refresh_interval", output.human_duration(secret["lease_duration"])))
    auth = secret.get("auth")
    if auth is not None:
        duration = auth["lease_duration"]
        rows += [
            ("token", auth["client_token"]),
            ("token_accessor", auth["accessor"]),
            ("token_duration", output.human_duration(duration) if duration else "∞"),
            ("token_renewable", auth["renewable"]),
            ("token_policies", output.go_quoted_list(auth["token_policies"])),
            ("identity_policies", output.go_quoted_list(auth["identity_policies"])),
            ("policies", output.go_quoted_list(auth["policies"])),
        ]
        rows += [(f"token_meta_{k}", v) for k, v in (auth["metadata"] or {}).items()]
    info = secret.get("wrap_info")
    if info is not None:
        rows += [
            ("wrapping_token:", info["token"]),
            ("wrapping_accessor:", info["accessor"]),
            ("wrapping_token_ttl:", output.human_duration(info["ttl"])),
            ("wrapping_token_creation_time:", go_time_string(info["creation_time"])),
            ("wrapping_token_creation_path:", info["creation_path"]),
        ]
        if info["wrapped_accessor"]:
            rows.append(("wrapped_accessor:", info["wrapped_accessor"]))
    if secret["data"]:
        rows += output.map_rows(secret["data"])
    return rows


def raw_field(secret: JsonObject, name: str) -> Any:
    """The value ``-field=name`` selects from a shaped secret (Vault's ``RawField``)."""
    data = secret["data"] or {}
    auth, info = secret.get("auth"), secret.get("wrap_info")
    if auth is not None:
        key = {"token": "client_token", "token_accessor": "accessor",
               "token_duration": "lease_duration", "token_renewable": "renewable",
               "token_policies": "token_policies", "identity_policies": "identity_policies",
               "policies": "policies"}.get(name)
        return auth[key] if key else data.get(name)
    if info is not None:
        key = {"wrapping_token": "token", "wrapping_accessor": "accessor",
               "wrapping_token_ttl": "ttl", "wrapping_token_creation_time": "creation_time",
               "wrapping_token_creation_path": "creation_path",
               "wrapped_accessor": "wrapped_accessor"}.get(name)
        return info[key] if key else data.get(name)
    top = {"lease_duration": "lease_duration", "lease_id": "lease_id",
           "request_id": "request_id", "renewable": "renewable",
           "refresh_interval": "lease_duration"}.get(name)
    if top:
        return secret[top]
    if name == "data":
        return data.get("data", secret["data"])
    return data.get(name)


def print_field(ctx: Context, value: Any, what: str = "secret",
                secret: JsonObject | None = None) -> int:
    """Print one ``-field`` value raw; 1 with Vault's message when it is absent.

    The warnings of ``secret``, if given, go to stderr first in table mode.
    """
    name = ctx.flags.string("field")
    if secret is not None and ctx.output_format() == "table":
        print_warnings(ctx, secret)
    if value is None:
        ctx.err(f'Field "{name}" not present in {what}')
        return 1
    output.write_raw(ctx.io.stdout, output.format_field(value, ctx.output_format()))
    return 0


def print_secret_field(ctx: Context, resp: Mapping[str, Any] | None, name: str) -> int:
    """Print field ``name`` of an API answer (``-field``), warnings first in table mode."""
    secret = shape(resp)
    return print_field(ctx, raw_field(secret, name), secret=secret)


def print_warnings(ctx: Context, secret: JsonObject) -> None:
    """Print the server's warnings on stderr, as Vault's table output does."""
    for i, warning in enumerate(secret.get("warnings") or []):
        if i == 0:
            ctx.err("WARNING! The following warnings were returned from Vault:\n")
        wrapped = textwrap.wrap(f"* {warning}", _WRAP_WIDTH - 2) or [""]
        ctx.err("\n".join("  " + line for line in wrapped))
        ctx.err("")


def output_secret(ctx: Context, resp: Mapping[str, Any] | None) -> int:
    """Print a whole API answer in the chosen format (Vault's ``OutputSecret``)."""
    secret = shape(resp)
    fmt = ctx.output_format()
    if fmt != "table":
        ctx.out(output.render(secret, fmt))
        return 0
    print_warnings(ctx, secret)
    rows = secret_rows(secret)
    if rows:
        ctx.out(output.table(rows))
    return 0


def output_data(ctx: Context, data: Any) -> int:
    """Print plain data (a map, list or string) in the chosen format (``OutputData``)."""
    fmt = ctx.output_format()
    if fmt != "table":
        ctx.out(output.render(sort_maps(data), fmt))
    elif isinstance(data, Mapping):
        if data:
            ctx.out(output.table(output.map_rows(data)))
    elif isinstance(data, list):
        if data:
            ctx.out(output.columns(["Keys"], [[k] for k in sorted(map(str, data))]))
    else:
        ctx.out(str(data))
    return 0


def output_list(ctx: Context, resp: Mapping[str, Any], detailed: bool = False) -> int:
    """Print a LIST answer: its keys as a one-column table, or the key list as JSON.

    With ``detailed`` (``list -detailed``) JSON shows the whole answer and the
    table gains a column per ``key_info`` field.
    """
    secret = shape(resp)
    data = secret["data"] or {}
    keys = data.get("keys")
    keys = keys if isinstance(keys, list) else []
    fmt = ctx.output_format()
    if fmt != "table":
        ctx.out(output.render(secret if detailed else keys, fmt))
        return 0
    print_warnings(ctx, secret)
    info = data.get("key_info") if detailed else None
    names = sorted(map(str, keys))
    if not isinstance(info, Mapping) or not info:
        return output_data(ctx, names)
    headers = sorted({h for k in names if isinstance(info.get(k), Mapping) for h in info[k]})
    rows: list[list[Any]] = []
    for key in names:
        fields = info.get(key) if isinstance(info.get(key), Mapping) else {}
        assert isinstance(fields, Mapping)
        rows.append([key] + [
            (output.human_duration(fields[h]) if output.looks_like_duration(h) else fields[h])
            if h in fields else "n/a" for h in headers])
    if names:
        ctx.out(output.columns(["Keys", *headers], rows))
    return 0


def read_secret(client: ApiClient, path: str, params: Mapping[str, Any] | None = None,
                *, method: str = "GET") -> JsonObject | None:
    """Read like Vault's ``Logical().Read``: a 404 means "no value" (``None``).

    A 404 that still carries data or warnings (a deleted KV v2 version) is
    returned as the secret, as Vault's client does.

    Raises:
        ClientError: Any other failure.
    """
    try:
        return client.request(method, path, params=params) or None
    except ApiError as exc:
        if exc.status != 404:
            raise
        body = exc.body or {}
        if body.get("data") or body.get("warnings"):
            return body
        return None


def write_secret(client: ApiClient, method: str, path: str, data: JsonObject | None = None,
                 params: Mapping[str, Any] | None = None) -> JsonObject | None:
    """Write like Vault's ``Logical().Write``: a bare 404 without data means no answer.

    Raises:
        ClientError: Any failure; a 404 with data or warnings is returned instead.
    """
    try:
        return client.request(method, path, json=data, params=params) or None
    except ApiError as exc:
        body = exc.body or {}
        if exc.status == 404 and (body.get("data") or body.get("warnings")):
            return body
        if exc.status == 404 and exc.body is None and not "".join(exc.errors):
            return None  # an empty 404 body is "nothing there", not an error
        raise
