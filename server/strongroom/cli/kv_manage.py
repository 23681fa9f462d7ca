"""``strongroom kv delete|undelete|destroy`` and ``kv metadata get|put|patch|delete``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.durations import go_duration
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kv import MERGE_PATCH, header_for_map, mount_flag, output_path, target
from strongroom.cli.secret import (
    output_data,
    output_secret,
    print_secret_field,
    read_secret,
    shape,
    write_secret,
)


def parse_versions(values: list[str]) -> list[str]:
    """Split ``-versions`` values on commas (``-versions=1,2 -versions=3``)."""
    out: list[str] = []
    for value in values:
        value = value.strip()
        if value:
            out += [v.strip() for v in value.split(",")]
    return out


def _report_write(ctx: Context, full: str, resp: JsonObject | None, *,
                  deleted: bool = False) -> int:
    if resp is None:
        if ctx.output_format() == "table":
            done = "Data deleted (if it existed) at" if deleted else "Data written to"
            ctx.out(f"Success! {done}: {full}")
        return 0
    if "field" in ctx.flags.values and ctx.flags.string("field"):
        return print_secret_field(ctx, resp, ctx.flags.string("field"))
    return output_secret(ctx, resp)


def run_delete(ctx: Context) -> int:
    """Soft-delete the latest version (or ``-versions``) of a secret; v1 deletes for good."""
    ctx.expect_args(1, 1)
    kv = target(ctx, ctx.args[0])
    if kv is None:
        return 2
    versions = parse_versions(ctx.flags.strings("versions"))
    full = kv.api_path("data")
    try:
        if kv.v2 and versions:
            resp = write_secret(ctx.client(), "PUT", kv.api_path("delete"),
                                {"versions": versions})
        else:
            resp = write_secret(ctx.client(), "DELETE", full)
    except ClientError as exc:
        return ctx.fail(f"Error deleting {full}", exc)
    return _report_write(ctx, full, resp, deleted=True)


def _versions_action(ctx: Context, prefix: str, verb: str) -> int:
    ctx.expect_args(1, 1)
    versions = parse_versions(ctx.flags.strings("versions"))
    if not versions:
        raise UsageError(f'No versions provided, use the "-versions" flag to specify the '
                         f"version to {verb}.")
    kv = target(ctx, ctx.args[0])
    if kv is None:
        return 2
    if not kv.v2:
        raise UsageError(f"{verb.capitalize()} not supported on KV Version 1")
    full = kv.api_path(prefix)
    try:
        resp = write_secret(ctx.client(), "PUT", full, {"versions": versions})
    except ClientError as exc:
        return ctx.fail(f"Error writing data to {full}", exc)
    return _report_write(ctx, full, resp)


def run_undelete(ctx: Context) -> int:
    """Restore soft-deleted versions of a KV v2 secret."""
    return _versions_action(ctx, "undelete", "undelete")


def run_destroy(ctx: Context) -> int:
    """Permanently destroy versions of a KV v2 secret."""
    return _versions_action(ctx, "destroy", "destroy")


def _metadata_path(ctx: Context) -> str | None:
    """Resolve the v2 metadata path of the argument, or ``None`` after printing why not."""
    ctx.expect_args(1, 1)
    kv = target(ctx, ctx.args[0])
    if kv is None:
        return None
    if not kv.v2:
        raise UsageError("Metadata not supported on KV Version 1")
    return kv.api_path("metadata")


def run_metadata_get(ctx: Context) -> int:
    """Show a secret's metadata and the state of each version."""
    full = _metadata_path(ctx)
    if full is None:
        return 2
    try:
        resp = read_secret(ctx.client(), full)
    except ClientError as exc:
        return ctx.fail(f"Error reading {full}", exc)
    if resp is None:
        ctx.err(f"No value found at {full}")
        return 2
    secret = shape(resp)
    if secret.get("wrap_info") is not None or ctx.output_format() != "table":
        return output_secret(ctx, resp)
    data: dict[str, Any] = dict(secret["data"] or {})
    versions = data.pop("versions", None)
    if not isinstance(versions, Mapping):
        ctx.err(f"No value found at {full}")
        output_secret(ctx, resp)
        return 2
    output_path(ctx, full, "Metadata Path")
    ctx.out(header_for_map("Metadata", data))
    output_secret(ctx, {**resp, "data": data})
    try:
        numbers = sorted(int(v) for v in versions)
    except ValueError:
        ctx.err("Error parsing version")
        return 2
    for number in numbers:
        info = versions[str(number)]
        info = info if isinstance(info, Mapping) else {}
        ctx.out("\n" + header_for_map(f"Version {number}", info))
        output_data(ctx, info)
    return 0


def _metadata_body(ctx: Context) -> JsonObject:
    f = ctx.flags
    body: JsonObject = {}
    if f.integer("max-versions") >= 0:
        body["max_versions"] = f.integer("max-versions")
    if f.is_set("cas-required"):
        body["cas_required"] = f.boolean("cas-required")
    if f.duration("delete-version-after") >= 0:
        body["delete_version_after"] = go_duration(f.duration("delete-version-after"))
    return body


def run_metadata_put(ctx: Context) -> int:
    """Create or replace a secret's metadata settings."""
    full = _metadata_path(ctx)
    if full is None:
        return 2
    body = _metadata_body(ctx)
    custom = ctx.flags.mapping("custom-metadata")
    if custom:
        body["custom_metadata"] = custom
    try:
        resp = write_secret(ctx.client(), "PUT", full, body)
    except ClientError as exc:
        return ctx.fail(f"Error writing data to {full}", exc)
    return _report_write(ctx, full, resp)


def run_metadata_patch(ctx: Context) -> int:
    """Change some of a secret's metadata settings, leaving the others alone."""
    full = _metadata_path(ctx)
    if full is None:
        return 2
    body = _metadata_body(ctx)
    custom: dict[str, Any] = dict(ctx.flags.mapping("custom-metadata"))
    custom.update({key: None for key in ctx.flags.strings("remove-custom-metadata")})
    body["custom_metadata"] = custom
    try:
        resp = ctx.client().request("PATCH", full, json=body, content_type=MERGE_PATCH)
    except ClientError as exc:
        return ctx.fail(f"Error writing data to {full}", exc)
    return _report_write(ctx, full, resp or None)


def run_metadata_delete(ctx: Context) -> int:
    """Delete a secret's metadata and every version of it."""
    full = _metadata_path(ctx)
    if full is None:
        return 2
    try:
        resp = write_secret(ctx.client(), "DELETE", full)
    except ClientError as exc:
        return ctx.fail(f"Error deleting {full}", exc)
    return _report_write(ctx, full, resp, deleted=True)


def _versions_flags(fs: FlagSet) -> None:
    mount_flag(fs)
    fs.strings("versions", "Versions to act on, comma-separated or repeated.")


def _metadata_flags(fs: FlagSet, patch: bool = False) -> None:
    fs.integer("max-versions", "Number of versions to keep; the mount's setting when unset.",
               default=-1)
    fs.boolean("cas-required", "Require the cas parameter on every write to this key.")
    fs.duration("delete-version-after", "Delete each version this long after it is written, "
                'e.g. "30s" or "3h25m19s"; the mount\'s setting when unset.', default=-1)
    fs.mapping("custom-metadata", "Arbitrary key=value metadata describing the secret; "
               "may be repeated.")
    mount_flag(fs)
    if patch:
        fs.strings("remove-custom-metadata", "Custom metadata key to remove; may be repeated.")


def _metadata_patch_flags(fs: FlagSet) -> None:
    _metadata_flags(fs, patch=True)


COMMANDS: tuple[Command, ...] = (
    Command("kv delete", "Deletes versions in the KV store", """
Usage: strongroom kv delete [options] PATH

  Deletes the latest version of a KV v2 secret (recoverable with "kv undelete"),
  or the versions given with -versions. On KV v1 the data is removed for good.

      $ strongroom kv delete -mount=secret foo
      $ strongroom kv delete -versions=1,2 secret/foo
""", run_delete, _versions_flags),
    Command("kv undelete", "Undeletes versions in the KV store", """
Usage: strongroom kv undelete [options] KEY

  Restores soft-deleted versions of a KV v2 secret.

      $ strongroom kv undelete -versions=3 secret/foo
""", run_undelete, _versions_flags, field=False),
    Command("kv destroy", "Permanently removes one or more versions in the KV store", """
Usage: strongroom kv destroy [options] KEY

  Permanently removes versions of a KV v2 secret; they cannot be undeleted.

      $ strongroom kv destroy -versions=1 secret/foo
""", run_destroy, _versions_flags, field=False),
    Command("kv metadata get", "Retrieves key metadata from the KV store", """
Usage: strongroom kv metadata get [options] KEY

  Shows the metadata of a KV v2 secret and the state of each version.
""", run_metadata_get, mount_flag, field=False),
    Command("kv metadata put", "Sets or updates key settings in the KV store", """
Usage: strongroom kv metadata put [options] KEY

  Creates or updates the metadata of a KV v2 secret.

      $ strongroom kv metadata put -max-versions=5 -custom-metadata=team=ops secret/foo
""", run_metadata_put, _metadata_flags, field=False),
    Command("kv metadata patch", "Patches key settings in the KV store", """
Usage: strongroom kv metadata patch [options] KEY

  Changes only the given metadata settings of a KV v2 secret.

      $ strongroom kv metadata patch -remove-custom-metadata=team secret/foo
""", run_metadata_patch, _metadata_patch_flags, field=False),
    Command("kv metadata delete", "Deletes all versions and metadata for a key", """
Usage: strongroom kv metadata delete [options] PATH

  Deletes a KV v2 secret entirely: every version and its metadata.
""", run_metadata_delete, mount_flag, output=False),
)
