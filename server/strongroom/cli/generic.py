"""``strongroom read|write|list|delete|unwrap``: raw access to any API path."""

from __future__ import annotations

from typing import Any

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kvdata import ArgsDataError, parse_args_data, string_lists
from strongroom.cli.kvpath import sanitize_path
from strongroom.cli.secret import (
    output_data,
    output_list,
    output_secret,
    print_secret_field,
    read_secret,
    shape,
    write_secret,
)


def _data(ctx: Context, prefix: str = "Failed to parse K=V data") -> dict[str, Any]:
    try:
        return parse_args_data(ctx.io.stdin, ctx.args[1:])
    except ArgsDataError as exc:
        raise UsageError(f"{prefix}: {exc}") from None


def print_result(ctx: Context, resp: JsonObject | None, done: str) -> int:
    """Print a write/delete answer: ``Success! <done>`` when empty, else the secret."""
    if resp is None:
        if ctx.output_format() == "table":
            ctx.out(f"Success! {done}")
        return 0
    if ctx.flags.string("field"):
        return print_secret_field(ctx, resp, ctx.flags.string("field"))
    return output_secret(ctx, resp)


def run_read(ctx: Context) -> int:
    """Read PATH; extra ``key=value`` arguments become query parameters."""
    if not ctx.args:
        raise UsageError("Not enough arguments (expected 1, got 0)")
    path = sanitize_path(ctx.args[0])
    params = string_lists(_data(ctx))
    try:
        resp = read_secret(ctx.client(), path, params or None)
    except ClientError as exc:
        return ctx.fail(f"Error reading {path}", exc)
    if resp is None:
        ctx.err(f"No value found at {path}")
        return 2
    if ctx.flags.string("field"):
        return print_secret_field(ctx, resp, ctx.flags.string("field"))
    return output_secret(ctx, resp)


def run_write(ctx: Context) -> int:
    """Write ``key=value`` data to PATH (``-force`` to send none)."""
    if not ctx.args:
        raise UsageError("Not enough arguments (expected 1, got 0)")
    if len(ctx.args) == 1 and not ctx.flags.boolean("force"):
        raise UsageError("Must supply data or use -force")
    path = sanitize_path(ctx.args[0])
    data = _data(ctx)
    try:
        resp = write_secret(ctx.client(), "PUT", path, data)
    except ClientError as exc:
        return ctx.fail(f"Error writing data to {path}", exc)
    return print_result(ctx, resp, f"Data written to: {path}")


def run_delete(ctx: Context) -> int:
    """Delete PATH; extra ``key=value`` arguments become query parameters."""
    if not ctx.args:
        raise UsageError("Not enough arguments (expected at least 1, got 0)")
    path = sanitize_path(ctx.args[0])
    params = string_lists(_data(ctx, "Failed to parse string list data"))
    try:
        resp = write_secret(ctx.client(), "DELETE", path, params=params or None)
    except ClientError as exc:
        return ctx.fail(f"Error deleting {path}", exc)
    return print_result(ctx, resp, f"Data deleted (if it existed) at: {path}")


def run_list(ctx: Context) -> int:
    """List the keys under PATH."""
    ctx.expect_args(1, 1)
    path = sanitize_path(ctx.args[0])
    try:
        resp = read_secret(ctx.client(), path, {"list": "true"})
    except ClientError as exc:
        return ctx.fail(f"Error listing {path}", exc)
    secret = shape(resp)
    wrap = secret.get("wrap_info")
    if resp is not None and wrap is not None and wrap["ttl"]:
        return output_secret(ctx, resp)
    keys = (secret["data"] or {}).get("keys")
    if ctx.output_format() != "table" and not isinstance(keys, list):
        output_data(ctx, {})
        return 2
    if resp is None:
        ctx.err(f"No value found at {path}")
        return 2
    if secret["data"] is None:
        return output_secret(ctx, resp)
    if not isinstance(keys, list):
        ctx.err(f"No entries found at {path}")
        return 2
    return output_list(ctx, resp, detailed=ctx.flags.boolean("detailed"))


def run_unwrap(ctx: Context) -> int:
    """Unwrap a response-wrapping token (the current token without TOKEN)."""
    if len(ctx.args) > 1:
        raise UsageError(f"Too many arguments (expected 0-1, got {len(ctx.args)})")
    token = ctx.args[0].strip() if ctx.args else ""
    client = ctx.client()
    body: JsonObject | None = None
    if token and not client.config.token:
        client = ctx.client_with_token(token)
    elif token and token != client.config.token:
        body = {"token": token}
    try:
        resp = write_secret(client, "PUT", "sys/wrapping/unwrap", body)
    except ClientError as exc:
        return ctx.fail("Error unwrapping", exc)
    if resp is None:
        if ctx.output_format() == "table":
            ctx.out("Successfully unwrapped. There was no data in the wrapped secret.")
        return 0
    if ctx.flags.string("field"):
        return print_secret_field(ctx, resp, ctx.flags.string("field"))
    if isinstance((shape(resp)["data"] or {}).get("keys"), list):
        return output_list(ctx, resp)
    return output_secret(ctx, resp)


def _list_flags(fs: FlagSet) -> None:
    fs.boolean("detailed", "Show the extra information (key_info) some endpoints return "
               "with their keys.")


def _write_flags(fs: FlagSet) -> None:
    fs.boolean("force", "Allow the write with no key=value pairs, for endpoints that take "
               "no data.", aliases=("f",))


COMMANDS: tuple[Command, ...] = (
    Command("read", "Read data and retrieves secrets", """
Usage: strongroom read [options] PATH [KEY=VALUE ...]

  Reads data from PATH. Extra key=value pairs are sent as query parameters.

      $ strongroom read secret/data/foo
      $ strongroom read -field=policy sys/policies/acl/default
""", run_read),
    Command("write", "Write data, configuration, and secrets", """
Usage: strongroom write [options] PATH [DATA K=V...]

  Writes data to PATH. DATA is key=value pairs, key=@file, key=- (stdin),
  or - for a JSON object on stdin.

      $ strongroom write cubbyhole/foo bar=baz
      $ echo '{"bar": "baz"}' | strongroom write cubbyhole/foo -
""", run_write, _write_flags),
    Command("delete", "Delete secrets and configuration", """
Usage: strongroom delete [options] PATH

  Deletes the data at PATH; what that means depends on the engine.
""", run_delete),
    Command("list", "List data or secrets", """
Usage: strongroom list [options] PATH

  Lists the keys under PATH; keys ending in "/" are folders.
""", run_list, _list_flags, field=False),
    Command("unwrap", "Unwrap a wrapped secret", """
Usage: strongroom unwrap [options] [TOKEN]

  Unwraps a response-wrapped secret. Without TOKEN the current token is
  treated as the wrapping token.
""", run_unwrap),
)
