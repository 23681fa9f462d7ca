"""``strongroom kv get|put|list``: the KV secrets engine, v1 and v2 alike.

Paths are given either as ``secret/foo`` or as ``-mount=secret foo``; the KV
version is detected per call (see :mod:`strongroom.cli.kvpath`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kvdata import ArgsDataError, parse_args_data
from strongroom.cli.kvpath import KvTarget, resolve
from strongroom.cli.secret import (
    output_data,
    output_list,
    output_secret,
    print_field,
    print_warnings,
    raw_field,
    read_secret,
    shape,
    write_secret,
)

MERGE_PATCH = "application/merge-patch+json"


def pad_equal_signs(header: str, total: int) -> str:
    """Centre ``header`` in ``=`` signs, Vault's ``padEqualSigns`` (``== Data ==``)."""
    signs = total - (len(header) + 2)
    if signs <= 0:
        signs = 4
    if signs % 2:
        signs += 1
    return f"{'=' * (signs // 2)} {header} {'=' * (signs // 2)}"


def header_for_map(header: str, data: Mapping[str, Any]) -> str:
    """Section heading sized to a key/value table of ``data``."""
    return pad_equal_signs(header, max((len(k) for k in data), default=0) + 4 + 5)


def output_path(ctx: Context, path: str, title: str) -> None:
    """Print the ``= Secret Path =`` block that opens v2 table output."""
    ctx.out(pad_equal_signs(title, len(path)))
    ctx.out(path)
    ctx.out()


def mount_flag(fs: FlagSet) -> None:
    """Declare ``-mount``, shared by every ``kv`` command."""
    fs.string("mount", "Path where the KV backend is mounted. If given, the next argument "
              "is the secret path within it; otherwise the argument combines mount and "
              "secret path (secret/foo), and /data/ is inserted for KV v2.")


def target(ctx: Context, arg: str, *, sanitize: bool = True) -> KvTarget | None:
    """Resolve the KV mount for ``arg``; on failure print the error and return ``None``."""
    try:
        return resolve(ctx.client(), arg, ctx.flags.string("mount"), sanitize=sanitize)
    except ClientError as exc:
        ctx.err(str(exc))
        return None


def parse_data(ctx: Context, args: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments, raising a usage error in Vault's wording."""
    try:
        return parse_args_data(ctx.io.stdin, args)
    except ArgsDataError as exc:
        raise UsageError(f"Failed to parse K=V data: {exc}") from None


def print_written(ctx: Context, full: str, resp: JsonObject | None) -> int:
    """Print a KV v2 write result: metadata under a ``Secret Path`` heading."""
    if resp is None:
        if ctx.output_format() == "table":
            ctx.out(f"Success! Data written to: {full}")
        return 0
    secret = shape(resp)
    if ctx.flags.string("field"):
        return print_field(ctx, raw_field(secret, ctx.flags.string("field")), secret=secret)
    wrap = secret.get("wrap_info")
    if (wrap is not None and wrap["ttl"]) or ctx.output_format() != "table":
        return output_secret(ctx, resp)
    output_path(ctx, full, "Secret Path")
    metadata = secret["data"] or {}
    ctx.out(header_for_map("Metadata", metadata))
    return output_data(ctx, metadata)


def run_get(ctx: Context) -> int:
    """Read a secret (``-version`` for an older KV v2 version)."""
    ctx.expect_args(1, 1)
    kv = target(ctx, ctx.args[0], sanitize=False)
    if kv is None:
        return 2
    full = kv.api_path("data")
    version = ctx.flags.integer("version")
    params = {"version": str(version)} if kv.v2 and version > 0 else None
    try:
        resp = read_secret(ctx.client(), full, params)
    except ClientError as exc:
        return ctx.fail(f"Error reading {full}", exc)
    if resp is None:
        ctx.err(f"No value found at {full}")
        return 2
    secret = shape(resp)
    data = secret["data"]
    name = ctx.flags.string("field")
    if name:
        if not kv.v2:
            return print_field(ctx, raw_field(secret, name), secret=secret)
        inner = (data or {}).get("data")
        if inner is None:
            ctx.err(f"No data found at {full}")
            return 2
        if name == "data" and not (isinstance(inner, Mapping) and "data" in inner):
            return print_field(ctx, raw_field(secret, name), secret=secret)
        return print_field(ctx, inner.get(name) if isinstance(inner, Mapping) else None, "map")
    if secret.get("wrap_info") is not None or ctx.output_format() != "table":
        return output_secret(ctx, resp)
    print_warnings(ctx, secret)
    if kv.v2:
        output_path(ctx, full, "Secret Path")
    metadata = (data or {}).get("metadata")
    if isinstance(metadata, Mapping):
        ctx.out(header_for_map("Metadata", metadata))
        output_data(ctx, metadata)
        ctx.out()
    if kv.v2 and data is not None:
        data = data.get("data")
    if isinstance(data, Mapping):
        ctx.out(header_for_map("Data", data))
        output_data(ctx, data)
    return 0


def run_put(ctx: Context) -> int:
    """Write a secret, replacing any data already there."""
    if not ctx.args:
        raise UsageError("Not enough arguments (expected >1, got 0)")
    if len(ctx.args) == 1:
        raise UsageError("Must supply data")
    data = parse_data(ctx, ctx.args[1:])
    kv = target(ctx, ctx.args[0])
    if kv is None:
        return 2
    full = kv.api_path("data")
    body: JsonObject = data
    if kv.v2:
        options: JsonObject = {}
        if ctx.flags.integer("cas") > -1:
            options["cas"] = ctx.flags.integer("cas")
        body = {"data": data, "options": options}
    try:
        resp = write_secret(ctx.client(), "PUT", full, body)
    except ClientError as exc:
        return ctx.fail(f"Error writing data to {full}", exc)
    return print_written(ctx, full, resp)


def run_list(ctx: Context) -> int:
    """List the keys under a path."""
    args = ctx.args
    if not args and ctx.flags.string("mount"):
        args = [""]
    ctx.flags.args = args
    ctx.expect_args(1, 1)
    kv = target(ctx, args[0])
    if kv is None:
        return 2
    full = kv.api_path("metadata")
    try:
        resp = read_secret(ctx.client(), full, {"list": "true"})
    except ClientError as exc:
        return ctx.fail(f"Error listing {full}", exc)
    secret = shape(resp)
    if resp is not None and secret.get("wrap_info") is not None and secret["wrap_info"]["ttl"]:
        return output_secret(ctx, resp)
    keys = (secret["data"] or {}).get("keys")
    if ctx.output_format() != "table" and not isinstance(keys, list):
        output_data(ctx, {})
        return 2
    if resp is None or secret["data"] is None:
        ctx.err(f"No value found at {full}")
        return 2
    if not isinstance(keys, list):
        ctx.err(f"No entries found at {full}")
        return 2
    return output_list(ctx, resp)


def _get_flags(fs: FlagSet) -> None:
    fs.integer("version", "If passed, the value at the version number will be returned.")
    mount_flag(fs)


def _put_flags(fs: FlagSet) -> None:
    fs.integer("cas", "Check-And-Set: with 0 the write succeeds only if the key does not "
               "exist; with a version, only if it is the key's current version. Ignored "
               "when not given.", default=-1)
    mount_flag(fs)


GROUPS: tuple[Group, ...] = (
    Group("kv", "Interact with the KV secrets engine", """
Usage: strongroom kv <subcommand> [options] [args]

  Reads and writes the key/value secrets engine, version 1 or 2, hiding the
  differences between them: "kv get secret/foo" reads secret/data/foo on a
  KV v2 mount. The path can also be split as "-mount=secret foo".
"""),
    Group("kv metadata", "Interact with KV v2 metadata", """
Usage: strongroom kv metadata <subcommand> [options] KEY

  Reads and manages the metadata of KV v2 secrets: versions, custom
  metadata and per-key settings.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("kv get", "Retrieves data from the KV store", """
Usage: strongroom kv get [options] KEY

  Reads the value at KEY; an error if nothing is there.

      $ strongroom kv get -mount=secret foo
      $ strongroom kv get -version=1 secret/foo
""", run_get, _get_flags),
    Command("kv put", "Sets or updates data in the KV store", """
Usage: strongroom kv put [options] KEY [DATA]

  Writes DATA (key=value pairs, key=@file, key=- for stdin, or - for a JSON
  object on stdin) to KEY, replacing what was there.

      $ strongroom kv put -mount=secret foo bar=baz
      $ strongroom kv put -cas=1 secret/foo bar=baz
""", run_put, _put_flags),
    Command("kv list", "List data or secrets", """
Usage: strongroom kv list [options] PATH

  Lists the keys under PATH; keys ending in "/" are folders.

      $ strongroom kv list secret/my-app/
""", run_list, mount_flag, field=False),
)
