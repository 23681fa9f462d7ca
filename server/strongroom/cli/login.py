"""``strongroom login``: verify a token and store it in ``~/.vault-token``.

Only the token auth method exists: the token is checked with
``auth/token/lookup-self`` (never wrapped) and written, mode 0600, to the
file every other command falls back on when no ``*_TOKEN`` variable is set.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from strongroom.cli.client import TOKEN_ENV, TOKEN_FILE_NAME, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kvdata import ArgsDataError, parse_args_data
from strongroom.cli.secret import output_secret, print_secret_field

_SUCCESS = ("Success! You are now authenticated. The token information displayed below\n"
            "is already stored in the token helper. You do NOT need to run \"strongroom\n"
            "login\" again. Future requests will automatically use this token.\n")


def _strings(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None


def auth_from_lookup(token: str, lookup: JsonObject) -> JsonObject:
    """Build the answer ``vault login`` shows from a ``lookup-self`` answer."""
    data = lookup.get("data") or {}
    token_policies = _strings(data.get("policies"))
    identity = _strings(data.get("identity_policies"))
    meta = data.get("metadata", data.get("meta"))
    ttl = data.get("ttl")
    return {"auth": {
        "client_token": data.get("id") or token,
        "accessor": data.get("accessor") or "",
        "policies": (token_policies or []) + (identity or []) or None,
        "token_policies": token_policies,
        "identity_policies": identity,
        "metadata": meta if isinstance(meta, dict) and meta else None,
        "lease_duration": ttl if isinstance(ttl, int) else 0,
        "renewable": bool(data.get("renewable")),
    }}


def _token_argument(ctx: Context) -> tuple[str, bool]:
    """Return the token (from the argument, ``-`` for stdin, or a prompt) and ``lookup``."""
    args = list(ctx.args)
    if args and "=" not in args[0]:
        args[0] = "token=" + args[0]
    try:
        config = parse_args_data(ctx.io.stdin, args)
    except ArgsDataError as exc:
        raise UsageError(f"Error parsing configuration: {exc}") from None
    token = str(config.get("token", ""))
    lookup = str(config.get("lookup", "true")).lower() not in ("false", "0", "f")
    if not token:
        if not ctx.io.stdin.isatty():
            raise UsageError("Error authenticating: no token was given and stdin is not a "
                             'terminal; pass "-" as the argument to read the token from stdin')
        token = getpass.getpass("Token (will be hidden): ", stream=ctx.io.stderr)
    token = token.strip()
    if not token:
        raise UsageError("Error authenticating: a token must be passed to auth, please view "
                         "the help for more information")
    return token, lookup


def store_token(ctx: Context, token: str) -> Path:
    """Write ``token`` to ``$HOME/.vault-token`` with mode 0600."""
    home = ctx.env.get("HOME") or os.path.expanduser("~")
    path = Path(home) / TOKEN_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.chmod(path, 0o600)
    return path


def run_login(ctx: Context) -> int:
    """Authenticate with a token and store it for later commands."""
    f = ctx.flags
    method = f.string("method").strip("/") or "token"
    if method != "token":
        ctx.err(f'Unknown auth method: {method}. Only the "token" method is supported.')
        return 1
    no_store, no_print = f.boolean("no-store"), f.boolean("no-print")
    field = f.string("field")
    if f.boolean("token-only"):
        no_store, field = True, "token"
    if no_store and no_print:
        raise UsageError("-no-store and -no-print cannot be used together")
    token, lookup = _token_argument(ctx)
    resp: JsonObject = {"auth": {"client_token": token}}
    if lookup:
        try:
            found = ctx.client_with_token(token).request(
                "GET", "auth/token/lookup-self", wrap=False)
        except ClientError as exc:
            return ctx.fail("Error authenticating: error looking up token", exc)
        if not found:
            ctx.err("Error authenticating: empty response from lookup-self")
            return 2
        resp = auth_from_lookup(token, found)
    if not no_store:
        try:
            store_token(ctx, token)
        except OSError as exc:
            ctx.err(f"Error storing token: {exc}")
            output_secret(ctx, resp)
            return 2
        for name in TOKEN_ENV:
            if ctx.env.get(name):
                ctx.err(f"WARNING! The {name} environment variable is set! The value of "
                        "this variable will take precedence; if this is unwanted please "
                        f"unset {name} or update its value accordingly.\n")
                break
    elif not f.boolean("token-only"):
        ctx.err("The token was not stored in token helper. Set the VAULT_TOKEN environment\n"
                "variable or pass the token below with each request.\n")
    if no_print:
        return 0
    if field:
        return print_secret_field(ctx, resp, field)
    if ctx.output_format() == "table":
        ctx.out(_SUCCESS)
    return output_secret(ctx, resp)


def _login_flags(fs: FlagSet) -> None:
    fs.string("method", 'Auth method to use; only "token" is supported.', default="token")
    fs.string("path", "Mount path of the auth method (unused for tokens).")
    fs.boolean("no-store", "Do not store the token in ~/.vault-token.")
    fs.boolean("no-print", "Do not print the token information after logging in.")
    fs.boolean("token-only", "Print only the token, and do not store it. Implies "
               "-no-store and -field=token.")


COMMANDS: tuple[Command, ...] = (
    Command("login", "Authenticate locally", """
Usage: strongroom login [options] [TOKEN]

  Verifies TOKEN and stores it in ~/.vault-token, where later commands find
  it when no STRONGROOM_TOKEN/VAULT_TOKEN variable is set. Pass "-" to read
  the token from stdin; without TOKEN it is prompted for.

      $ strongroom login s.abcd1234
      $ strongroom login -token-only -
""", run_login, _login_flags),
)
