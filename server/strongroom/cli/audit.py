"""``strongroom audit enable|disable|list``: audit devices (``sys/audit``), as ``bao audit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.cli import output
from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kvdata import ArgsDataError, parse_args_data
from strongroom.cli.kvpath import ensure_trailing_slash, sanitize_path


def run_enable(ctx: Context) -> int:
    """Enable an audit device of TYPE at ``-path`` (default: the type's name)."""
    f = ctx.flags
    if not ctx.args:
        ctx.err("Error enabling audit device: audit type missing. Valid types include "
                "'file', 'socket' and 'syslog'.")
        return 1
    kind = ctx.args[0].strip()
    path = ensure_trailing_slash(f.string("path") or kind)
    try:
        data = parse_args_data(ctx.io.stdin, ctx.args[1:])
    except ArgsDataError as exc:
        raise UsageError(f"Failed to parse K=V data: {exc}") from None
    # Options are strings on the wire (Vault's map[string]string).
    options = {k: v if isinstance(v, str) else output.go_value(v) for k, v in data.items()}
    body: JsonObject = {"type": kind, "description": f.string("description"),
                        "options": options, "local": f.boolean("local")}
    try:
        ctx.client().put(f"sys/audit/{path}", body)
    except ClientError as exc:
        return ctx.fail("Error enabling audit device", exc)
    ctx.out(f"Success! Enabled the {kind} audit device at: {path}")
    return 0


def run_disable(ctx: Context) -> int:
    """Disable the audit device at PATH."""
    ctx.expect_args(1, 1)
    path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
    try:
        ctx.client().delete(f"sys/audit/{path}")
    except ClientError as exc:
        return ctx.fail("Error disabling audit device", exc)
    ctx.out(f"Success! Disabled audit device (if it was enabled) at: {path}")
    return 0


def audit_output(device: Mapping[str, Any]) -> JsonObject:
    """One ``sys/audit`` entry as Go's ``api.Audit`` prints it (its field order)."""
    options = device.get("options")
    return {
        "type": device.get("type") or "",
        "description": device.get("description") or "",
        "options": dict(sorted(options.items())) if isinstance(options, Mapping) else None,
        "local": bool(device.get("local")),
        "path": device.get("path") or "",
    }


def run_list(ctx: Context) -> int:
    """List the enabled audit devices."""
    ctx.expect_args(0, 0)
    try:
        resp = ctx.client().get("sys/audit")
    except ClientError as exc:
        return ctx.fail("Error listing audits", exc)
    data = (resp or {}).get("data")
    data = data if isinstance(data, Mapping) else {}
    devices = {path: audit_output(data[path]) for path in sorted(data)
               if isinstance(data[path], Mapping)}
    fmt = ctx.output_format()
    if fmt != "table":
        ctx.out(output.render(devices, fmt))
        return 0
    if not devices:
        ctx.out("No audit devices are enabled.")
        return 2
    if ctx.flags.boolean("detailed"):
        header = ["Path", "Type", "Description", "Replication", "Options"]
        rows = [[path, d["type"], d["description"], "local" if d["local"] else "replicated",
                 " ".join(f"{k}={v}" for k, v in (d["options"] or {}).items())]
                for path, d in devices.items()]
    else:
        header = ["Path", "Type", "Description"]
        rows = [[d["path"], d["type"], d["description"]] for d in devices.values()]
    ctx.out(output.columns(header, rows))
    return 0


def _enable_flags(fs: FlagSet) -> None:
    fs.string("description", "Human-friendly description for the purpose of this audit "
              "device.")
    fs.string("path", "Place where the audit device will be accessible. This must be "
              "unique across all audit devices. This defaults to the \"type\" of the audit "
              "device.")
    fs.boolean("local", "Mark the audit device as a local-only device. Local devices are "
               "not replicated or removed by replication.")


def _list_flags(fs: FlagSet) -> None:
    fs.boolean("detailed", "Print detailed information such as options and replication "
               "status about each audit device.")


GROUPS: tuple[Group, ...] = (
    Group("audit", "Interact with audit devices", """
Usage: strongroom audit <subcommand> [options] [args]

  Enables, disables and lists audit devices. Every request and every answer is
  written to every enabled device, its secrets HMAC'd; if no device can record a
  request, the request is refused.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("audit enable", "Enables an audit device", """
Usage: strongroom audit enable [options] TYPE [CONFIG K=V...]

  Enables an audit device of TYPE (file, syslog, socket) at -path, by default
  at TYPE/; K=V pairs are the device's options.

      $ strongroom audit enable file file_path=/var/log/strongroom/audit.log
""", run_enable, _enable_flags, output=False),
    Command("audit disable", "Disables an audit device", """
Usage: strongroom audit disable [options] PATH

  Disables the audit device at PATH. The request that disables it is still
  recorded by it.
""", run_disable, output=False),
    Command("audit list", "Lists enabled audit devices", """
Usage: strongroom audit list [options]

  Lists the enabled audit devices (-detailed adds their options).
""", run_list, _list_flags, field=False),
)
