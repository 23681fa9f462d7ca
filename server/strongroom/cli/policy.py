"""``strongroom policy write|read|list|delete``: ACL policies (``sys/policies/acl``)."""

from __future__ import annotations

from pathlib import Path

from strongroom.cli.client import ApiError, ClientError
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.secret import output_data

_ACL = "sys/policies/acl"


def _name(ctx: Context) -> str:
    # Policy names are case-insensitive; Vault normalizes them to lower case.
    return ctx.args[0].strip().lower()


def run_write(ctx: Context) -> int:
    """Upload a policy from a file, or from stdin with ``-``."""
    ctx.expect_args(2, 2)
    given, name = ctx.args[0], _name(ctx)
    source = ctx.args[1].strip()
    if source == "-":
        rules = ctx.io.stdin.read()
    else:
        try:
            rules = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            ctx.err(f"Error opening policy file: open {source}: {reason}")
            return 2
    try:
        ctx.client().put(f"{_ACL}/{name}", {"policy": rules})
    except ClientError as exc:
        return ctx.fail("Error uploading policy", exc)
    if given != name:
        ctx.err(f'Policy name was converted from "{given}" to "{name}"')
    ctx.out(f"Success! Uploaded policy: {name}")
    return 0


def run_read(ctx: Context) -> int:
    """Print a policy's rules."""
    ctx.expect_args(1, 1)
    name = _name(ctx)
    try:
        resp = ctx.client().get(f"{_ACL}/{name}")
    except ApiError as exc:
        if exc.status != 404:
            return ctx.fail(f"Error reading policy named {name}", exc)
        resp = None
    except ClientError as exc:
        return ctx.fail(f"Error reading policy named {name}", exc)
    data = (resp or {}).get("data")
    if resp is not None and not isinstance(data, dict):
        ctx.err(f"Error reading policy named {name}: data from server response is empty")
        return 2
    rules = (data or {}).get("policy", "")
    if not rules:
        ctx.err(f"No policy named: {name}")
        return 2
    if ctx.output_format() == "table":
        ctx.out(str(rules).strip())
        return 0
    return output_data(ctx, {"policy": rules})


def run_list(ctx: Context) -> int:
    """List the names of all ACL policies."""
    ctx.expect_args(0, 0)
    try:
        resp = ctx.client().list(_ACL)
    except ClientError as exc:
        return ctx.fail("Error listing policies", exc)
    data = (resp or {}).get("data")
    if not isinstance(data, dict):
        ctx.err("Error listing policies: data from server response is empty")
        return 2
    keys = data.get("keys") or []
    if ctx.output_format() == "table":
        for key in keys:
            ctx.out(str(key))
        return 0
    return output_data(ctx, keys)


def run_delete(ctx: Context) -> int:
    """Delete a policy (succeeds if it does not exist)."""
    ctx.expect_args(1, 1)
    name = _name(ctx)
    try:
        ctx.client().delete(f"{_ACL}/{name}")
    except ClientError as exc:
        return ctx.fail(f"Error deleting {name}", exc)
    ctx.out(f"Success! Deleted policy: {name}")
    return 0


GROUPS: tuple[Group, ...] = (
    Group("policy", "Interact with policies", """
Usage: strongroom policy <subcommand> [options] [args]

  Manages ACL policies, which grant tokens their capabilities on paths.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("policy write", "Uploads a named policy from a file", """
Usage: strongroom policy write [options] NAME PATH

  Uploads the policy in the file at PATH ("-" reads stdin) under NAME,
  replacing any policy of that name.

      $ strongroom policy write my-policy /tmp/policy.hcl
      $ cat policy.hcl | strongroom policy write my-policy -
""", run_write, output=False),
    Command("policy read", "Prints the contents of a policy", """
Usage: strongroom policy read [options] NAME

  Prints the rules of the policy NAME.
""", run_read, field=False),
    Command("policy list", "Lists the installed policies", """
Usage: strongroom policy list [options]

  Lists the names of the ACL policies on the server.
""", run_list, field=False),
    Command("policy delete", "Deletes a policy by name", """
Usage: strongroom policy delete [options] NAME

  Deletes the policy NAME; tokens holding it lose its capabilities at once.
  The "default" and "root" policies cannot be deleted.
""", run_delete, output=False),
)
