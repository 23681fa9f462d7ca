"""``strongroom auth enable|disable|list|tune|move|help``: auth method mounts (``sys/auth``).

The flags, request bodies, messages and outputs are those of ``vault auth ...``
(OpenBao's ``bao auth ...``): the same Go ``api.MountInput``/``MountConfigInput``
bodies, optional config keys sent only when their flag is given, and
``auth list`` printing Go's ``api.AuthMount`` map for json/yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.durations import go_duration
from strongroom.cli.flags import FlagSet
from strongroom.cli.kvpath import ensure_trailing_slash, sanitize_path
from strongroom.cli.login import METHOD_HELP
from strongroom.cli.secrets import (
    DETAILED_HEADER_TAIL,
    detailed_rows,
    move_mount,
    print_mounts,
    ttl_to_api,
)

#: Optional config keys, each sent only when its flag was given (vault's ``f.Visit``).
_LIST_FLAGS = {
    "audit-non-hmac-request-keys": "audit_non_hmac_request_keys",
    "audit-non-hmac-response-keys": "audit_non_hmac_response_keys",
    "passthrough-request-headers": "passthrough_request_headers",
    "allowed-response-headers": "allowed_response_headers",
}
_STRING_FLAGS = {"listing-visibility": "listing_visibility", "token-type": "token_type",
                 "plugin-version": "plugin_version"}


def _options(ctx: Context) -> dict[str, str] | None:
    options: dict[str, str] | None = ctx.flags.mapping("options") or None
    if ctx.flags.integer("version") > 0:
        options = {**(options or {}), "version": str(ctx.flags.integer("version"))}
    return options


def _visited(ctx: Context, config: JsonObject) -> JsonObject:
    """Add the optional config keys whose flags were given."""
    f = ctx.flags
    for flag, key in _LIST_FLAGS.items():
        if f.is_set(flag):
            config[key] = f.strings(flag)
    for flag, key in _STRING_FLAGS.items():
        if f.is_set(flag):
            config[key] = f.string(flag)
    return config


def run_enable(ctx: Context) -> int:
    """Enable an auth method of TYPE at ``-path`` (default: the type's name)."""
    ctx.expect_args(1, 1)
    f = ctx.flags
    kind = ctx.args[0].strip()
    if kind == "plugin":
        kind = f.string("plugin-name")
    path = ensure_trailing_slash(f.string("path") or kind)
    config = _visited(ctx, {
        "options": None,
        "default_lease_ttl": go_duration(f.duration("default-lease-ttl")),
        "max_lease_ttl": go_duration(f.duration("max-lease-ttl")),
        "force_no_cache": False,
    })
    body: JsonObject = {
        "type": kind, "description": f.string("description"), "config": config,
        "local": f.boolean("local"), "seal_wrap": f.boolean("seal-wrap"),
        "external_entropy_access": f.boolean("external-entropy-access"),
        "options": _options(ctx),
    }
    try:
        ctx.client().post(f"sys/auth/{path}", body)
    except ClientError as exc:
        return ctx.fail(f"Error enabling {kind} auth", exc)
    thing = f"{kind} auth method"
    if f.string("plugin-version"):
        thing += " version " + f.string("plugin-version")
    ctx.out(f"Success! Enabled {thing} at: {path}")
    return 0


def run_disable(ctx: Context) -> int:
    """Disable the auth method at PATH, revoking the tokens it issued."""
    ctx.expect_args(1, 1)
    path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
    try:
        ctx.client().delete(f"sys/auth/{path}")
    except ClientError as exc:
        return ctx.fail(f"Error disabling auth method at {path}", exc)
    ctx.out(f"Success! Disabled the auth method (if it existed) at: {path}")
    return 0


def list_rows(mounts: Mapping[str, JsonObject],
              detailed: bool) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the ``auth list`` table (``-detailed`` adds columns)."""
    if not detailed:
        return (["Path", "Type", "Accessor", "Description", "Version"],
                [[p, m["type"], m["accessor"], m["description"], m["plugin_version"]]
                 for p, m in mounts.items()])
    header = ["Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Token Type",
              *DETAILED_HEADER_TAIL]
    return header, detailed_rows(mounts, lambda m: m["config"].get("token_type", ""))


def run_list(ctx: Context) -> int:
    """List the enabled auth methods."""
    return print_mounts(ctx, "sys/auth", "Error listing enabled authentications", list_rows)


def run_tune(ctx: Context) -> int:
    """Change the configuration of the auth method at PATH."""
    ctx.expect_args(1, 1)
    f = ctx.flags
    body = _visited(ctx, {
        "options": _options(ctx),
        "default_lease_ttl": ttl_to_api(f.duration("default-lease-ttl")),
        "max_lease_ttl": ttl_to_api(f.duration("max-lease-ttl")),
        "force_no_cache": False,
    })
    if f.is_set("description"):
        body["description"] = f.string("description")
    path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
    try:
        ctx.client().post(f"sys/mounts/auth/{path}tune", body)
    except ClientError as exc:
        return ctx.fail(f"Error tuning auth method {path}", exc)
    ctx.out(f"Success! Tuned the auth method at: {path}")
    return 0


def _common_flags(fs: FlagSet) -> None:
    fs.string("description", "Human-friendly description for the purpose of this auth method.")
    fs.duration("default-lease-ttl", "The default lease TTL for this auth method; the "
                "server's default when unset.")
    fs.duration("max-lease-ttl", "The maximum lease TTL for this auth method; the "
                "server's default when unset.")
    fs.strings("audit-non-hmac-request-keys", "Key that will not be HMAC'd by audit "
               "devices in the request data object; may be repeated.")
    fs.strings("audit-non-hmac-response-keys", "Key that will not be HMAC'd by audit "
               "devices in the response data object; may be repeated.")
    fs.string("listing-visibility", "Determines the visibility of the mount in the "
              "UI-specific listing endpoint (\"unauth\" or \"hidden\").")
    fs.strings("passthrough-request-headers", "Request header value that will be sent to "
               "the plugin; may be repeated.")
    fs.strings("allowed-response-headers", "Response header value that plugins will be "
               "allowed to set; may be repeated.")
    fs.mapping("options", "Key-value pair provided as key=value for the mount options; "
               "may be repeated.")
    fs.string("token-type", "Sets a forced token type for the mount (\"service\", "
              "\"batch\", \"default-service\", \"default-batch\").")
    fs.integer("version", "Select the version of the auth method to run. Not supported by "
               "all auth methods.")
    fs.string("plugin-version", "Select the semantic version of the plugin to enable.")


def _enable_flags(fs: FlagSet) -> None:
    _common_flags(fs)
    fs.string("path", "Place where the auth method will be accessible, at /auth/<path>; "
              "defaults to the type of the auth method.")
    fs.string("plugin-name", "Name of the auth method plugin (with TYPE \"plugin\").")
    fs.boolean("local", "Mark the auth method as local-only (not replicated).")
    fs.boolean("seal-wrap", "Enable seal wrapping of critical values.")
    fs.boolean("external-entropy-access", "Enable the auth method to access the external "
               "entropy source.")


def _list_flags(fs: FlagSet) -> None:
    fs.boolean("detailed", "Print detailed information such as configuration and "
               "replication status about each auth method.")


def run_move(ctx: Context) -> int:
    """Move an auth method (paths as given: ``auth/approle auth/machines``)."""
    return move_mount(ctx, "auth method")


def run_help(ctx: Context) -> int:
    """The login help of an auth method TYPE, or of the type enabled at PATH."""
    ctx.expect_args(1, 1)
    method = ctx.args[0].strip()
    if method not in METHOD_HELP:
        try:
            auths = (ctx.client().get("sys/auth") or {}).get("data") or {}
        except ClientError as exc:
            return ctx.fail("Error listing auth methods", exc)
        path = ensure_trailing_slash(sanitize_path(ctx.args[0]))
        mount = auths.get(path)
        if not isinstance(mount, Mapping):
            ctx.err(f'No auth method available on the server at "{path}"')
            return 1
        if str(mount.get("type")) not in METHOD_HELP:
            ctx.err(f'No method-specific CLI handler available for auth method "{method}"')
            return 2
        method = str(mount["type"])
    ctx.out(METHOD_HELP[method].strip())
    return 0


GROUPS: tuple[Group, ...] = (
    Group("auth", "Interact with auth methods", """
Usage: strongroom auth <subcommand> [options] [args]

  Enables, disables, tunes and lists auth methods. To authenticate, see
  "strongroom login".

      $ strongroom auth enable userpass
      $ strongroom auth list -detailed
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("auth enable", "Enables a new auth method", """
Usage: strongroom auth enable [options] TYPE

  Enables a new auth method of TYPE (approle, userpass, cert, ldap), by default
  at auth/TYPE/.

      $ strongroom auth enable -path=people -description="staff" userpass
""", run_enable, _enable_flags, output=False),
    Command("auth disable", "Disables an auth method", """
Usage: strongroom auth disable [options] PATH

  Disables the auth method at PATH. Every token it issued is revoked.
""", run_disable, output=False),
    Command("auth list", "Lists enabled auth methods", """
Usage: strongroom auth list [options]

  Lists the enabled auth methods.
""", run_list, _list_flags, field=False),
    Command("auth tune", "Tunes an auth method configuration", """
Usage: strongroom auth tune [options] PATH

  Tunes the configuration of the auth method at PATH (TTLs, description,
  listing visibility, token type...).

      $ strongroom auth tune -default-lease-ttl=72h -token-type=service userpass/
""", run_tune, _common_flags, output=False),
    Command("auth move", "Move an auth method to a new path", """
Usage: strongroom auth move [options] SOURCE DESTINATION

  Moves the auth method mounted at SOURCE to DESTINATION, keeping its
  configuration. Every token and lease it issued at its old path is revoked.

      $ strongroom auth move auth/approle/ auth/machines/
""", run_move, output=False),
    Command("auth help", "Prints usage for an auth method", """
Usage: strongroom auth help [options] TYPE | PATH

  Prints how to log in with an auth method: of TYPE (userpass, ldap, cert,
  approle, token), or of the type enabled at PATH.

      $ strongroom auth help userpass
      $ strongroom auth help people/
""", run_help, output=False),
)
