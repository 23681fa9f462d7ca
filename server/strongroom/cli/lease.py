"""``strongroom lease renew|revoke|lookup`` (``sys/leases/...``), as ``bao lease``."""

from __future__ import annotations

import textwrap

from strongroom.cli.client import ClientError
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.durations import truncate_seconds
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.secret import output_secret

FORCE_WARNING = ("Warning! Force-removing leases can cause Strongroom to become out of "
                 "sync with secret engines!")


def _one_id(ctx: Context, usage: str) -> str:
    got = len(ctx.args)
    if got == 0:
        raise UsageError("Missing ID!")
    if got > 1:
        raise UsageError(f"Too many arguments ({usage}, got {got})")
    return ctx.args[0].strip()


def run_renew(ctx: Context) -> int:
    """Renew a lease, optionally asking for ``-increment``."""
    lease_id = _one_id(ctx, "expected 1-2")
    increment = truncate_seconds(ctx.flags.duration("increment"))
    try:
        resp = ctx.client().put("sys/leases/renew",
                                {"increment": increment, "lease_id": lease_id})
    except ClientError as exc:
        return ctx.fail(f"Error renewing {lease_id}", exc)
    return output_secret(ctx, resp)


def run_lookup(ctx: Context) -> int:
    """Show a lease's issue and expiry times, TTL and renewability."""
    lease_id = _one_id(ctx, "expected 1")
    try:
        resp = ctx.client().put("sys/leases/lookup", {"lease_id": lease_id})
    except ClientError as exc:
        return ctx.fail(f"error looking up lease id {lease_id}", exc)
    return output_secret(ctx, resp)


def run_revoke(ctx: Context) -> int:
    """Revoke a lease, or every lease under a prefix (``-prefix``, ``-force``)."""
    got = len(ctx.args)
    if got != 1:
        word = "Not enough" if got < 1 else "Too many"
        raise UsageError(f"{word} arguments (expected 1, got {got})")
    f = ctx.flags
    force, prefix, sync = f.boolean("force"), f.boolean("prefix"), f.boolean("sync")
    if force and not prefix:
        raise UsageError("Specifying -force requires also specifying -prefix")
    lease_id = ctx.args[0].strip()
    client = ctx.client()
    if force:
        ctx.err(textwrap.fill(FORCE_WARNING, 80))  # bao wraps its warnings at 80 columns
    path = ("sys/leases/revoke-force/" if force else
            "sys/leases/revoke-prefix/" if prefix else "sys/leases/revoke/") + lease_id
    try:
        client.put(path, None if force else {"sync": sync})
    except ClientError as exc:
        what = ("Error force revoking leases with prefix" if force else
                "Error revoking leases with prefix" if prefix else "Error revoking lease")
        return ctx.fail(f"{what} {lease_id}", exc)
    if force:
        ctx.out(f"Success! Force revoked any leases with prefix: {lease_id}")
    elif sync and prefix:
        ctx.out(f"Success! Revoked any leases with prefix: {lease_id}")
    elif sync:
        ctx.out(f"Success! Revoked lease: {lease_id}")
    else:
        ctx.out("All revocation operations queued successfully!")
    return 0


def _renew_flags(fs: FlagSet) -> None:
    fs.duration("increment", "Request a specific increment in seconds. Strongroom is not "
                "required to honor this request.", aliases=("i",))


def _revoke_flags(fs: FlagSet) -> None:
    fs.boolean("force", "Delete the lease from Strongroom even if the secret engine "
               "revocation fails. This is meant for recovery situations where the secret "
               "in the target secret engine was manually removed. If this flag is "
               "specified, -prefix is also required.", aliases=("f",))
    fs.boolean("prefix", "Treat the ID as a prefix instead of an exact lease ID. This can "
               "revoke multiple leases simultaneously.")
    fs.boolean("sync", "Force a synchronous operation; on failure it is up to the client "
               "to retry.")


GROUPS: tuple[Group, ...] = (
    Group("lease", "Interact with leases", """
Usage: strongroom lease <subcommand> [options] [args]

  Interacts with leases: secrets with a lifetime (dynamic credentials, tokens).
  Renew a lease, look it up, or revoke it (or everything under a prefix).

      $ strongroom lease renew database/creds/readonly/2f6a614c...
      $ strongroom lease revoke -prefix -sync database/creds/readonly
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("lease renew", "Renews the lease of a secret", """
Usage: strongroom lease renew [options] ID

  Renews the lease on a secret, extending the time it can be used before the
  server revokes it. -increment asks for a particular lifetime; the server may
  grant less (the mount's and the role's maximum TTL still apply).

      $ strongroom lease renew -increment=1h database/creds/readonly/2f6a614c...
""", run_renew, _renew_flags),
    Command("lease lookup", "Lookup the lease of a secret", """
Usage: strongroom lease lookup [options] ID

  Shows the issue time, expire time, TTL and renewability of a lease.

      $ strongroom lease lookup database/creds/readonly/2f6a614c...
""", run_lookup),
    Command("lease revoke", "Revokes leases and secrets", """
Usage: strongroom lease revoke [options] ID

  Revokes secrets by their lease ID. With -prefix, revokes every lease under
  the ID taken as a path prefix (break-glass: everything a role or a mount
  issued). Without -sync the revocation is queued (the server answers 202).

      $ strongroom lease revoke -prefix -sync database/creds/readonly
""", run_revoke, _revoke_flags, output=False),
)
