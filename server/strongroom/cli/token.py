"""``strongroom token create|lookup|renew|revoke|capabilities`` (``auth/token/...``)."""

from __future__ import annotations

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.durations import go_duration, truncate_seconds
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.secret import output_data, output_secret, print_secret_field


def _print(ctx: Context, resp: JsonObject | None) -> int:
    if "field" in ctx.flags.values and ctx.flags.string("field"):
        return print_secret_field(ctx, resp, ctx.flags.string("field"))
    return output_secret(ctx, resp)


def create_body(ctx: Context) -> JsonObject:
    """The ``auth/token/create`` body the flags describe (Vault's ``TokenCreateRequest``)."""
    f = ctx.flags
    renewable = f.boolean("renewable") and f.string("type") != "batch"
    optional: JsonObject = {
        "id": f.string("id"),
        "policies": f.strings("policy"),
        "meta": f.mapping("metadata"),
        "ttl": go_duration(f.duration("ttl")),
        "explicit_max_ttl": go_duration(f.duration("explicit-max-ttl")),
        "period": go_duration(f.duration("period")),
        "no_parent": f.boolean("orphan"),
        "no_default_policy": f.boolean("no-default-policy"),
    }
    # Go's omitempty drops these when empty/false; the rest are always sent.
    body = {k: v for k, v in optional.items() if v}
    body.update({
        "display_name": f.string("display-name"),
        "num_uses": f.integer("use-limit"),
        "renewable": renewable,
        "type": f.string("type"),
        "entity_alias": f.string("entity-alias"),
    })
    return body


def run_create(ctx: Context) -> int:
    """Create a child token (or an orphan, or one from a role)."""
    ctx.expect_args(0, 0)
    role = ctx.flags.string("role")
    path = f"auth/token/create/{role}" if role else "auth/token/create"
    try:
        resp = ctx.client().post(path, create_body(ctx))
    except ClientError as exc:
        return ctx.fail("Error creating token", exc)
    return _print(ctx, resp)


def run_lookup(ctx: Context) -> int:
    """Show a token's properties: the caller's own, another token's, or by accessor."""
    accessor = ctx.flags.boolean("accessor")
    got = len(ctx.args)
    if accessor and got != 1:
        word = "Not enough" if got < 1 else "Too many"
        raise UsageError(f"{word} arguments with -accessor (expected 1, got {got})")
    if got > 1:
        raise UsageError(f"Too many arguments (expected 0-1, got {got})")
    token = ctx.args[0].strip() if ctx.args else ""
    client = ctx.client()
    try:
        if not token:
            resp = client.get("auth/token/lookup-self")
        elif accessor:
            resp = client.post("auth/token/lookup-accessor", {"accessor": token})
        else:
            resp = client.post("auth/token/lookup", {"token": token})
    except ClientError as exc:
        return ctx.fail("Error looking up token", exc)
    return _print(ctx, resp)


def run_renew(ctx: Context) -> int:
    """Renew a token's lease, optionally asking for ``-increment``."""
    if len(ctx.args) > 1:
        raise UsageError(f"Too many arguments (expected 1, got {len(ctx.args)})")
    token = ctx.args[0].strip() if ctx.args else ""
    increment = truncate_seconds(ctx.flags.duration("increment"))
    client = ctx.client()
    try:
        if not token:
            resp = client.put("auth/token/renew-self", {"increment": increment})
        elif ctx.flags.boolean("accessor"):
            resp = client.put("auth/token/renew-accessor",
                              {"accessor": token, "increment": increment})
        else:
            resp = client.put("auth/token/renew", {"token": token, "increment": increment})
    except ClientError as exc:
        return ctx.fail("Error renewing token", exc)
    return output_secret(ctx, resp)


def run_revoke(ctx: Context) -> int:
    """Revoke a token and its children (or only the token with ``-mode=orphan``)."""
    f, got = ctx.flags, len(ctx.args)
    mode, self_, accessor = f.string("mode"), f.boolean("self"), f.boolean("accessor")
    if mode not in ("", "orphan", "path"):
        raise UsageError(f"Invalid mode: {mode}")
    if self_ and got:
        raise UsageError(f"Too many arguments with -self (expected 0, got {got})")
    if not self_ and got > 1:
        raise UsageError(f"Too many arguments (expected 1 or -self, got {got})")
    if not self_ and got < 1:
        raise UsageError(f"Not enough arguments (expected 1 or -self, got {got})")
    if self_ and accessor:
        raise UsageError("Cannot use -self with -accessor!")
    if self_ and mode:
        raise UsageError("Cannot use -self with -mode!")
    if accessor and mode:
        raise UsageError(f"Cannot use -accessor with -mode={mode}!")
    token = ctx.args[0].strip() if ctx.args else ""
    client = ctx.client()
    try:
        if self_:
            client.put("auth/token/revoke-self")
        elif accessor:
            client.put("auth/token/revoke-accessor", {"accessor": token})
        elif mode == "orphan":
            client.put("auth/token/revoke-orphan", {"token": token})
        elif mode == "path":
            client.put(f"sys/leases/revoke-prefix/{token}")
        else:
            client.put("auth/token/revoke", {"token": token})
    except ClientError as exc:
        return ctx.fail("Error revoking token", exc)
    ctx.out("Success! Revoked token (if it existed)")
    return 0


def run_capabilities(ctx: Context) -> int:
    """Print a token's capabilities on a path (the caller's own without TOKEN)."""
    got = len(ctx.args)
    if got == 0:
        raise UsageError("Not enough arguments (expected 1-2, got 0)")
    if got > 2:
        raise UsageError(f"Too many arguments (expected 1-2, got {got})")
    client = ctx.client()
    own = client.config.token or ""
    token, path = (ctx.args[0], ctx.args[1]) if got == 2 else (own, ctx.args[0])
    # Vault's client sends the deprecated single "path" and uses the -self
    # endpoint whenever the token is its own.
    endpoint = "sys/capabilities-self" if token == own else "sys/capabilities"
    try:
        resp = client.post(endpoint, {"token": token, "path": path})
    except ClientError as exc:
        return ctx.fail("Error listing capabilities", exc)
    data = (resp or {}).get("data")
    if not isinstance(data, dict):
        ctx.err("Error listing capabilities: data from server response is empty")
        return 2
    caps = data.get(path) or data.get("capabilities")
    if not isinstance(caps, list):
        ctx.err("No capabilities found")
        return 1
    if ctx.output_format() == "table":
        ctx.out(", ".join(sorted(str(c) for c in caps)))
        return 0
    return output_data(ctx, caps)


def _create_flags(fs: FlagSet) -> None:
    fs.string("id", "Value for the token; auto-generated by default. Requires sudo.")
    fs.string("display-name", "Name to associate with this token, e.g. for audit logs.")
    fs.duration("ttl", 'Initial TTL of the token, e.g. "30s" or "5m".')
    fs.duration("explicit-max-ttl", "Hard limit on the token's lifetime; renewals cannot "
                "extend past it.")
    fs.duration("period", "Make a periodic token: every renewal resets its TTL to this "
                "period. Requires sudo.")
    fs.boolean("renewable", "Allow the token to be renewed up to its maximum TTL.",
               default=True)
    fs.boolean("orphan", "Create the token with no parent, so revoking the parent does "
               "not revoke it. Requires sudo.")
    fs.boolean("no-default-policy", 'Do not attach the "default" policy.')
    fs.integer("use-limit", "Number of uses after which the token is revoked; 0 means "
               "unlimited.", aliases=("num-uses",))
    fs.string("role", "Create the token against this token role "
              '("auth/token/create/<role>").')
    fs.string("type", 'Type of token to create: "service" or "batch".', default="service")
    fs.mapping("metadata", "Arbitrary key=value metadata for the token; may be repeated.")
    fs.strings("policy", "Policy to attach to the token; may be repeated.")
    fs.string("entity-alias", "Entity alias to associate with, together with -role.")


def _lookup_flags(fs: FlagSet) -> None:
    fs.boolean("accessor", "Treat the argument as a token accessor instead of a token.")


def _renew_flags(fs: FlagSet) -> None:
    _lookup_flags(fs)
    fs.duration("increment", "Requested renewal increment, e.g. \"1h\"; the server may "
                "grant less.", aliases=("i",))


def _revoke_flags(fs: FlagSet) -> None:
    _lookup_flags(fs)
    fs.boolean("self", "Revoke the token used to authenticate this request.")
    fs.string("mode", 'What to revoke: by default the token and its children; "orphan" '
              'only the token; "path" every token created under the path prefix.')


GROUPS: tuple[Group, ...] = (
    Group("token", "Interact with tokens", """
Usage: strongroom token <subcommand> [options] [args]

  Creates, inspects, renews and revokes tokens.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("token create", "Create a new token", """
Usage: strongroom token create [options]

  Creates a token as a child of the current one. Without -policy it inherits
  the current token's policies.

      $ strongroom token create -policy=my-policy -ttl=1h
""", run_create, _create_flags),
    Command("token lookup", "Display information about a token", """
Usage: strongroom token lookup [options] [TOKEN | ACCESSOR]

  Shows the properties of TOKEN, or of the current token without one.
""", run_lookup, _lookup_flags),
    Command("token renew", "Renew a token lease", """
Usage: strongroom token renew [options] [TOKEN]

  Renews the lease of TOKEN, or of the current token without one.
""", run_renew, _renew_flags, field=False),
    Command("token revoke", "Revoke a token and its children", """
Usage: strongroom token revoke [options] [TOKEN | ACCESSOR]

  Revokes TOKEN and, unless -mode=orphan, every token created from it.
""", run_revoke, _revoke_flags, output=False),
    Command("token capabilities", "Print capabilities of a token on a path", """
Usage: strongroom token capabilities [options] [TOKEN] PATH

  Prints the capabilities TOKEN (the current token without one) has on PATH.
""", run_capabilities, field=False),
)
