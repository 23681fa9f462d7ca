"""``strongroom secrets enable|disable|list|tune|move``: secrets engine mounts (``sys/mounts``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.cli import output
from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.durations import go_duration
from strongroom.cli.flags import FlagSet
from strongroom.cli.kvpath import ensure_trailing_slash, sanitize_path
from strongroom.cli.secret import sort_maps

#: Seconds between polls of a mount move's status.
MOVE_POLL_SECONDS = 1.0


def run_enable(ctx: Context) -> int:
    """Mount a secrets engine of TYPE at ``-path`` (default: the type's name)."""
    ctx.expect_args(1, 1)
    f = ctx.flags
    engine = ctx.args[0].strip()
    path = ensure_trailing_slash(f.string("path") or engine)
    options: dict[str, str] | None = f.mapping("options") or None
    if f.integer("version") > 0:
        options = {**(options or {}), "version": str(f.integer("version"))}
    body: JsonObject = {
        "type": engine,
        "description": f.string("description"),
        "config": {
            "options": None,
            "default_lease_ttl": go_duration(f.duration("default-lease-ttl")),
            "max_lease_ttl": go_duration(f.duration("max-lease-ttl")),
            "force_no_cache": f.boolean("force-no-cache"),
        },
        "local": f.boolean("local"),
        "seal_wrap": f.boolean("seal-wrap"),
        "external_entropy_access": f.boolean("external-entropy-access"),
        "options": options,
    }
    try:
        ctx.client().post(f"sys/mounts/{path}", body)
    except ClientError as exc:
        return ctx.fail("Error enabling", exc)
    ctx.out(f"Success! Enabled the {engine} secrets engine at: {path}")
    return 0


def run_disable(ctx: Context) -> int:
    """Unmount the secrets engine at PATH, revoking its leases and deleting its data."""
    ctx.expect_args(1, 1)
    path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
    try:
        ctx.client().delete(f"sys/mounts/{path}")
    except ClientError as exc:
        return ctx.fail(f"Error disabling secrets engine at {path}", exc)
    ctx.out(f"Success! Disabled the secrets engine (if it existed) at: {path}")
    return 0


def mount_output(mount: Mapping[str, Any]) -> JsonObject:
    """Reshape one ``sys/mounts`` entry into Go's ``api.MountOutput`` JSON."""
    config = mount.get("config") if isinstance(mount.get("config"), Mapping) else {}
    assert isinstance(config, Mapping)
    conf: JsonObject = {
        "default_lease_ttl": config.get("default_lease_ttl") or 0,
        "max_lease_ttl": config.get("max_lease_ttl") or 0,
        "force_no_cache": bool(config.get("force_no_cache")),
    }
    for key in ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
                "listing_visibility", "passthrough_request_headers",
                "allowed_response_headers", "token_type", "allowed_managed_keys",
                "user_lockout_config"):
        if config.get(key):
            conf[key] = config[key]
    options = mount.get("options")
    return {
        "uuid": mount.get("uuid") or "",
        "type": mount.get("type") or "",
        "description": mount.get("description") or "",
        "accessor": mount.get("accessor") or "",
        "config": conf,
        "options": sort_maps(options) if isinstance(options, Mapping) else None,
        "local": bool(mount.get("local")),
        "seal_wrap": bool(mount.get("seal_wrap")),
        "external_entropy_access": bool(mount.get("external_entropy_access")),
        "plugin_version": mount.get("plugin_version") or "",
        "running_plugin_version": mount.get("running_plugin_version") or "",
        "running_sha256": mount.get("running_sha256") or "",
        "deprecation_status": mount.get("deprecation_status") or "",
    }


def _ttl_cell(kind: str, ttl: Any) -> str:
    if kind in ("system", "cubbyhole"):
        return ""
    return str(ttl) if ttl else "system"


DETAILED_HEADER_TAIL = ["Replication", "Seal Wrap", "External Entropy Access", "Options",
                        "Description", "UUID", "Version", "Running Version",
                        "Running SHA256", "Deprecation Status"]


def detailed_rows(mounts: Mapping[str, JsonObject],
                  fifth: Callable[[JsonObject], Any]) -> list[list[Any]]:
    """The ``-detailed`` rows vault prints for secrets and auth mounts alike, but for the
    column after the TTLs (``fifth``: Force No Cache, or Token Type)."""
    return [[p, m["type"], m["accessor"],
             _ttl_cell(m["type"], m["config"]["default_lease_ttl"]),
             _ttl_cell(m["type"], m["config"]["max_lease_ttl"]),
             fifth(m), "local" if m["local"] else "replicated",
             m["seal_wrap"], m["external_entropy_access"], m["options"] or {},
             m["description"], m["uuid"], m["plugin_version"], m["running_plugin_version"],
             m["running_sha256"], m["deprecation_status"]] for p, m in mounts.items()]


def list_rows(mounts: Mapping[str, JsonObject],
              detailed: bool) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the ``secrets list`` table (``-detailed`` adds columns)."""
    if not detailed:
        return (["Path", "Type", "Accessor", "Description"],
                [[p, m["type"], m["accessor"], m["description"]] for p, m in mounts.items()])
    header = ["Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Force No Cache",
              *DETAILED_HEADER_TAIL]
    return header, detailed_rows(mounts, lambda m: m["config"]["force_no_cache"])


RowsFunction = Callable[[Mapping[str, JsonObject], bool], tuple[list[str], list[list[Any]]]]


def print_mounts(ctx: Context, api_path: str, error: str, rows: RowsFunction) -> int:
    """``secrets list`` and ``auth list``: read ``api_path`` and print its mounts as vault
    does (Go's struct field order for json/yaml, a table otherwise)."""
    ctx.expect_args(0, 0)
    try:
        resp = ctx.client().get(api_path)
    except ClientError as exc:
        return ctx.fail(error, exc)
    data = (resp or {}).get("data")
    if not isinstance(data, Mapping):
        ctx.err(f"{error}: data from server response is empty")
        return 2
    mounts = {path: mount_output(data[path]) for path in sorted(data)
              if isinstance(data[path], Mapping)}
    fmt = ctx.output_format()
    if fmt != "table":
        ctx.out(output.render(mounts, fmt))  # struct field order, as Go prints it
        return 0
    header, table = rows(mounts, ctx.flags.boolean("detailed"))
    ctx.out(output.columns(header, table))
    return 0


def run_list(ctx: Context) -> int:
    """List the mounted secrets engines."""
    return print_mounts(ctx, "sys/mounts", "Error listing secrets engines", list_rows)


def ttl_to_api(ns: int) -> str:
    """vault's ttlToAPI: unset sends "", a negative duration "system" (the default)."""
    return "" if ns == 0 else "system" if ns < 0 else go_duration(ns)


def run_tune(ctx: Context) -> int:
    """Change the TTLs or description of the secrets engine at PATH."""
    ctx.expect_args(1, 1)
    f = ctx.flags
    options: dict[str, str] | None = f.mapping("options") or None
    if f.integer("version") > 0:
        options = {**(options or {}), "version": str(f.integer("version"))}
    path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
    body: JsonObject = {"options": options,
                        "default_lease_ttl": ttl_to_api(f.duration("default-lease-ttl")),
                        "max_lease_ttl": ttl_to_api(f.duration("max-lease-ttl")),
                        "force_no_cache": False}
    if f.is_set("description"):
        body["description"] = f.string("description")
    try:
        ctx.client().post(f"sys/mounts/{path}tune", body)
    except ClientError as exc:
        return ctx.fail(f"Error tuning secrets engine {path}", exc)
    ctx.out(f"Success! Tuned the secrets engine at: {path}")
    return 0


def run_move(ctx: Context) -> int:
    """Move a secrets engine to a new path, waiting for the migration to finish."""
    return move_mount(ctx, "secrets engine")


def move_mount(ctx: Context, kind: str) -> int:
    """``secrets move`` and ``auth move`` (``kind``: "secrets engine", "auth method"):
    sys/remount with the paths as given, then its status polled to a final state."""
    ctx.expect_args(2, 2)
    source, dest = (ensure_trailing_slash(a) for a in ctx.args)
    client = ctx.client()
    try:
        resp = client.post("sys/remount", {"from": source, "to": dest})
    except ClientError as exc:
        return ctx.fail(f"Error moving {kind} {source} to {dest}", exc)
    migration = str(((resp or {}).get("data") or {}).get("migration_id", ""))
    what = f"{kind} {source} to {dest}, with migration ID {migration}"
    ctx.out(f"Started moving {what}")
    while True:
        try:
            status = client.get(f"sys/remount/status/{migration}")
        except ClientError as exc:
            return ctx.fail(f"Error checking migration status of {kind} {source} "
                            f"to {dest}", exc)
        info = ((status or {}).get("data") or {}).get("migration_info") or {}
        state = info.get("status") if isinstance(info, Mapping) else None
        if state == "success":
            ctx.out(f"Success! Finished moving {what}")
            return 0
        if state == "failure":
            ctx.err(f"Failure! Error encountered moving {what}")
            return 0
        ctx.out(f"Waiting for terminal status in migration of {what}")
        time.sleep(MOVE_POLL_SECONDS)


def _ttl_flags(fs: FlagSet) -> None:
    fs.duration("default-lease-ttl", "Default lease TTL for this engine; the server's "
                "default when unset.")
    fs.duration("max-lease-ttl", "Maximum lease TTL for this engine; the server's "
                "default when unset.")
    fs.string("description", "Human-friendly description of this engine.")
    fs.mapping("options", "Mount option as key=value; may be repeated.")
    fs.integer("version", "Version of the engine to run (e.g. 2 for KV v2).")


def _enable_flags(fs: FlagSet) -> None:
    _ttl_flags(fs)
    fs.string("path", "Where to mount the engine; defaults to its type.")
    fs.boolean("force-no-cache", "Disable caching for this engine.")
    fs.boolean("local", "Mark the engine as local-only (not replicated).")
    fs.boolean("seal-wrap", "Enable seal wrapping of critical values.")
    fs.boolean("external-entropy-access", "Give the engine access to external entropy.")


def _list_flags(fs: FlagSet) -> None:
    fs.boolean("detailed", "Print detailed information such as TTLs and replication "
               "status about each secrets engine.")


GROUPS: tuple[Group, ...] = (
    Group("secrets", "Interact with secrets engines", """
Usage: strongroom secrets <subcommand> [options] [args]

  Enables, disables, tunes, moves and lists secrets engines.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("secrets enable", "Enable a secrets engine", """
Usage: strongroom secrets enable [options] TYPE

  Mounts a secrets engine of TYPE, by default at TYPE/.

      $ strongroom secrets enable -path=kv2 -version=2 kv
""", run_enable, _enable_flags, output=False),
    Command("secrets disable", "Disable a secrets engine", """
Usage: strongroom secrets disable [options] PATH

  Unmounts the engine at PATH; its leases are revoked and its data deleted.
""", run_disable, output=False),
    Command("secrets list", "List enabled secrets engines", """
Usage: strongroom secrets list [options]

  Lists the mounted secrets engines.
""", run_list, _list_flags, field=False),
    Command("secrets tune", "Tune a secrets engine configuration", """
Usage: strongroom secrets tune [options] PATH

  Changes the configuration of the engine at PATH.

      $ strongroom secrets tune -default-lease-ttl=1h kv/
""", run_tune, _ttl_flags, output=False),
    Command("secrets move", "Move a secrets engine to a new path", """
Usage: strongroom secrets move [options] SOURCE DESTINATION

  Moves the engine mounted at SOURCE to DESTINATION. Leases of the old
  mount are revoked.
""", run_move, output=False),
)
