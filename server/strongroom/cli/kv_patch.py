"""``strongroom kv patch``: merge keys into the latest version of a KV v2 secret.

By default an HTTP ``PATCH`` (JSON merge patch) is sent; servers without it
(405) or policies without the ``patch`` capability (403) fall back to reading
the secret, merging locally and writing it back with check-and-set.
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.cli.client import ApiError, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kv import (
    MERGE_PATCH,
    mount_flag,
    parse_data,
    print_written,
    target,
)
from strongroom.cli.secret import read_secret, write_secret


def _read_then_write(ctx: Context, full: str, new: JsonObject) -> tuple[JsonObject | None, int]:
    try:
        current = read_secret(ctx.client(), full)
    except ClientError as exc:
        ctx.err(f"Error doing pre-read at {full}: {exc}")
        return None, 2
    if current is None or not current.get("data"):
        ctx.err(f"No value found at {full}")
        return None, 2
    meta, data = current["data"].get("metadata"), current["data"].get("data")
    for what, value in (("metadata", meta), ("data", data)):
        if value is None:
            ctx.err(f"No {what} found at {full}; patch only works on existing data")
            return None, 2
        if not isinstance(value, Mapping):
            ctx.err(f"{what.capitalize()} found at {full} is not the expected type "
                    "(JSON object)")
            return None, 2
    assert isinstance(meta, Mapping) and isinstance(data, Mapping)
    body = {"data": {**data, **new}, "options": {"cas": meta.get("version")}}
    try:
        return write_secret(ctx.client(), "PUT", full, body), 0
    except ClientError as exc:
        ctx.err(f"Error writing data to {full}: {exc}")
        return None, 2


def _merge_patch(ctx: Context, full: str, new: JsonObject,
                 fallback: bool) -> tuple[JsonObject | None, int]:
    options: JsonObject = {}
    if ctx.flags.integer("cas") > 0:
        options["cas"] = ctx.flags.integer("cas")
    try:
        resp = ctx.client().request("PATCH", full, json={"data": new, "options": options},
                                    content_type=MERGE_PATCH)
        return resp or None, 0
    except ApiError as exc:
        if fallback and exc.status == 405:
            return _read_then_write(ctx, full, new)
        if fallback and exc.status == 403:
            ctx.err(f"Data was written to {full} but we recommend that you add the "
                    '"patch" capability to your ACL policy in order to use HTTP PATCH '
                    "in the future.")
            return _read_then_write(ctx, full, new)
        ctx.err(f"Error writing data to {full}: {exc}")
        return None, 2
    except ClientError as exc:
        ctx.err(f"Error writing data to {full}: {exc}")
        return None, 2


def run_patch(ctx: Context) -> int:
    """Merge new keys into the latest version of a KV v2 secret."""
    remove = ctx.flags.strings("remove-data")
    if not ctx.args:
        raise UsageError("Not enough arguments (expected >1, got 0)")
    if len(ctx.args) == 1 and not remove:
        raise UsageError("Must supply data")
    new = parse_data(ctx, ctx.args[1:])
    kv = target(ctx, ctx.args[0])
    if kv is None:
        return 2
    if not kv.v2:
        ctx.err("K/V engine mount must be version 2 for patch support")
        return 2
    full = kv.api_path("data")
    new.update({key: None for key in remove})  # null deletes a key in a merge patch
    method = ctx.flags.string("method")
    if method == "rw":
        resp, code = _read_then_write(ctx, full, new)
    elif method in ("patch", ""):
        resp, code = _merge_patch(ctx, full, new, fallback=method == "")
    else:
        ctx.err(f"Unsupported method provided to -method flag: {method}")
        return 2
    if code or (resp is None and ctx.output_format() != "table"):
        return code
    return print_written(ctx, full, resp)


def _patch_flags(fs: FlagSet) -> None:
    fs.integer("cas", "Check-And-Set: if non-zero, the patch succeeds only if the key's "
               "current version matches.")
    fs.string("method", 'How to patch: "patch" sends an HTTP PATCH; "rw" reads, merges '
              "locally and writes back. By default PATCH is tried, falling back to rw.")
    mount_flag(fs)
    fs.strings("remove-data", "Key to remove from the data; may be repeated.")


COMMANDS: tuple[Command, ...] = (
    Command("kv patch", "Sets or updates data in the KV store without overwriting", """
Usage: strongroom kv patch [options] KEY [DATA]

  Merges DATA into the latest version of a KV v2 secret.

      $ strongroom kv patch -mount=secret foo bar=baz
      $ strongroom kv patch -remove-data=bar secret/foo
""", run_patch, _patch_flags),
)
