"""``strongroom login``: authenticate and store the token in ``~/.vault-token``.

As ``vault login``: ``-method=token`` (the default) checks the given token with
``auth/token/lookup-self`` (never wrapped); ``userpass``, ``ldap`` and ``cert``
log in as vault's CLI handlers do (same K=V arguments, password prompt,
``VAULT_LDAP_PASSWORD``, TLS client certificate), and ``approle`` (which vault's
CLI lacks) posts ``role_id``/``secret_id``. The token is written, mode 0600, to
the file every other command falls back on when no ``*_TOKEN`` variable is set.
A password or secret_id is only ever sent to the server, never printed.
"""

from __future__ import annotations

import getpass
import os
import termios
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.cli.client import TOKEN_ENV, TOKEN_FILE_NAME, ApiClient, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.kvdata import ArgsDataError, parse_args_data
from strongroom.cli.kvpath import ensure_trailing_slash, sanitize_path
from strongroom.cli.secret import output_secret, print_secret_field

# Vault's wording, wrapped at 80 columns as vault's wrapAtLength does.
_SUCCESS = textwrap.fill(
    "Success! You are now authenticated. The token information displayed below is "
    "already stored in the token helper. You do NOT need to run \"strongroom login\" "
    "again. Future Strongroom requests will automatically use this token.", 80) + "\n"


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


class LoginInputError(Exception):
    """A method's input is missing or unusable (vault: "Error authenticating: ...", exit 2)."""


def _read_password(ctx: Context, what: str, refusal: str) -> str:
    """Prompt for a password on the terminal, echo off (vault's ``pwd.Read`` of stdin).

    Like vault, only a terminal is read: piped input is refused (``password=-`` reads
    stdin explicitly). Echo goes off before the prompt shows, so that nothing typed
    after the prompt is ever echoed.
    """
    if ctx.flags.boolean("non-interactive"):
        raise LoginInputError(refusal)
    try:
        fd = ctx.io.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0 or not os.isatty(fd):
        ctx.io.stderr.write(f"{what} (will be hidden): ")
        ctx.io.stderr.write("\n")
        raise LoginInputError(f"file descriptor {max(fd, 0)} is not a terminal")
    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] &= ~termios.ECHO  # lflags: no echo; canonical mode keeps line editing
    termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        ctx.io.stderr.write(f"{what} (will be hidden): ")
        ctx.io.stderr.flush()
        chunks: list[bytes] = []
        while True:  # os.read: no Python-level buffer keeps the secret around
            byte = os.read(fd, 1)
            if not byte or byte in (b"\n", b"\r"):
                break
            chunks.append(byte)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, old)
        ctx.io.stderr.write("\n")
        ctx.io.stderr.flush()


def _str_config(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    return "" if value is None else str(value)


def _login_userpass(ctx: Context, client: ApiClient, config: dict[str, Any]) -> JsonObject | None:
    username = _str_config(config, "username")
    if not username:
        raise LoginInputError("'username' must be specified")
    password = _str_config(config, "password")
    if not password:
        password = _read_password(ctx, "Password",
                                  "'password' must be specified and refusing to pull from stdin")
    mount = _str_config(config, "mount") or "userpass"
    return client.put(f"auth/{mount}/login/{username}", {"password": password})


def _login_ldap(ctx: Context, client: ApiClient, config: dict[str, Any]) -> JsonObject | None:
    username = _str_config(config, "username") if "username" in config else (
        ctx.env.get("LOGNAME") or ctx.env.get("USER") or "")
    if not username:
        raise LoginInputError("'username' not supplied and neither 'LOGNAME' nor 'USER' env "
                              "vars set")
    if "password" in config:
        password = _str_config(config, "password")
    else:
        password = next((ctx.env[n] for n in _LDAP_PASSWORD_ENV if ctx.env.get(n)), "")
        if not password:
            password = _read_password(ctx, "Password",
                                      "'password' not supplied and refusing to pull from stdin")
    mount = _str_config(config, "mount") or "ldap"
    return client.put(f"auth/{mount}/login/{username}", {"password": password})


def _login_cert(ctx: Context, client: ApiClient, config: dict[str, Any]) -> JsonObject | None:
    # The certificate is the TLS client certificate (-client-cert/-client-key or
    # VAULT_CLIENT_CERT/VAULT_CLIENT_KEY); `name` picks one trusted certificate role.
    mount = _str_config(config, "mount") or "cert"
    return client.put(f"auth/{mount}/login", {"name": _str_config(config, "name")})


def _login_approle(ctx: Context, client: ApiClient, config: dict[str, Any]) -> JsonObject | None:
    # Not in vault's CLI (which has no approle handler): role_id=... secret_id=...
    # (secret_id=- reads it from stdin; omitted for a role with bind_secret_id=false).
    role_id = _str_config(config, "role_id")
    if not role_id:
        raise LoginInputError("'role_id' must be specified")
    body: JsonObject = {"role_id": role_id}
    if _str_config(config, "secret_id"):
        body["secret_id"] = _str_config(config, "secret_id")
    mount = _str_config(config, "mount") or "approle"
    return client.put(f"auth/{mount}/login", body)


Handler = Callable[[Context, ApiClient, dict[str, Any]], JsonObject | None]
HANDLERS: dict[str, Handler] = {
    "userpass": _login_userpass,
    "ldap": _login_ldap,
    "cert": _login_cert,
    "approle": _login_approle,
}
#: ``strongroom auth help TYPE``: how to log in with each method this CLI handles.
METHOD_HELP: dict[str, str] = {
    "token": """
Usage: strongroom login TOKEN

  Verifies TOKEN (a lookup of itself) and stores it for later commands. "-"
  reads it from stdin; without it, it is prompted for with echo off.

      $ strongroom login s.abcd1234
""",
    "userpass": """
Usage: strongroom login -method=userpass [-path=MOUNT] username=NAME [password=PW]

  Logs in with a username and password (auth/MOUNT/login/NAME). Without
  password=, it is prompted for with echo off; password=- reads it from stdin.

  Configuration:
    username=<string>   The user's name (required).
    password=<string>   The user's password.
    mount=<string>      The mount path (default: userpass).

      $ strongroom login -method=userpass username=alice
""",
    "ldap": """
Usage: strongroom login -method=ldap [-path=MOUNT] [username=NAME] [password=PW]

  Logs in against the directory the ldap method is configured with. The user
  name defaults to $LOGNAME or $USER; the password is taken from
  STRONGROOM_LDAP_PASSWORD (or VAULT_LDAP_PASSWORD), else prompted for.

  Configuration:
    username=<string>   The directory user name.
    password=<string>   The user's directory password.
    mount=<string>      The mount path (default: ldap).

      $ strongroom login -method=ldap username=alice
""",
    "cert": """
Usage: strongroom login -method=cert -client-cert=CERT -client-key=KEY [name=ROLE]

  Logs in with the TLS client certificate the connection presents
  (-client-cert/-client-key, or STRONGROOM_CLIENT_CERT/VAULT_CLIENT_CERT and
  their KEY variables). With name=, only that certificate role is tried.

  Configuration:
    name=<string>       A certificate role of the mount.
    mount=<string>      The mount path (default: cert).

      $ strongroom login -method=cert -client-cert=app.pem -client-key=app.key
""",
    "approle": """
Usage: strongroom login -method=approle [-path=MOUNT] role_id=ID [secret_id=SID]

  Logs in with a role ID and, unless the role does not bind one, a SecretID
  (secret_id=- reads it from stdin, keeping it out of the shell history).

  Configuration:
    role_id=<string>    The role's RoleID (required).
    secret_id=<string>  A SecretID of the role.
    mount=<string>      The mount path (default: approle).

      $ strongroom login -method=approle role_id=... secret_id=-
""",
}
_LDAP_PASSWORD_ENV = ("STRONGROOM_LDAP_PASSWORD", "VAULT_LDAP_PASSWORD", "BAO_LDAP_PASSWORD")


def _method_login(ctx: Context, method: str, path: str,
                  unwrap: bool) -> tuple[JsonObject | None, int]:
    """Run a method's login; (answer, 0) or (None, exit code) after printing the error."""
    try:
        config = parse_args_data(ctx.io.stdin, list(ctx.args))
    except ArgsDataError as exc:
        ctx.err(f"Error parsing configuration: {exc}")
        return None, 1
    if not config.get("mount") and path:
        config["mount"] = path
    # A token from the environment or ~/.vault-token has nothing to do with a login.
    client = ctx.client_with_token(None)
    try:
        resp = HANDLERS[method](ctx, client, config)
    except LoginInputError as exc:
        ctx.err(f"Error authenticating: {exc}")
        return None, 2
    except ClientError as exc:
        return None, ctx.fail("Error authenticating", exc)
    if not resp:
        ctx.err("Error authenticating: empty response from credential provider")
        return None, 2
    # A wrapped login (-wrap-ttl): unwrap it unless only the wrapping token is wanted.
    while not resp.get("auth") and isinstance(resp.get("wrap_info"), dict):
        info = resp["wrap_info"]
        if not info.get("wrapped_accessor"):
            ctx.err("Error extracting token: wrapped response does not contain a token")
            return None, 2
        if not unwrap:
            return resp, 0
        try:
            unwrapped = ctx.client_with_token(str(info.get("token", ""))).request(
                "PUT", "sys/wrapping/unwrap", json={}, wrap=False)
        except ClientError as exc:
            return None, ctx.fail("Error extracting token", exc)
        if not unwrapped:
            ctx.err("Vault returned an empty secret")
            return None, 2
        resp = unwrapped
    if not resp.get("auth"):
        ctx.err("Vault returned a secret, but the secret has no authentication information "
                "attached. This should never happen and is likely a bug.")
        return None, 2
    return resp, 0


def _token_login(ctx: Context) -> tuple[JsonObject | None, int]:
    token, lookup = _token_argument(ctx)
    resp: JsonObject = {"auth": {"client_token": token}}
    if lookup:
        try:
            found = ctx.client_with_token(token).request(
                "GET", "auth/token/lookup-self", wrap=False)
        except ClientError as exc:
            return None, ctx.fail("Error authenticating: error looking up token", exc)
        if not found:
            ctx.err("Error authenticating: empty response from lookup-self")
            return None, 2
        resp = auth_from_lookup(token, found)
    return resp, 0


def run_login(ctx: Context) -> int:
    """Authenticate (token, userpass, ldap, cert, approle) and store the token."""
    f = ctx.flags
    method = sanitize_path(f.string("method")) or "token"
    path = f.string("path") or ensure_trailing_slash(method)
    no_store, no_print = f.boolean("no-store"), f.boolean("no-print")
    field = f.string("field")
    token_only = f.boolean("token-only")
    if token_only:
        no_store, field = True, "token"
    if no_store and no_print:
        raise UsageError("-no-store and -no-print cannot be used together")
    if method != "token" and method not in HANDLERS:
        ctx.err(f'Unknown auth method: {method}. Use "strongroom auth list" to see the '
                "complete list of auth methods. Additionally, some auth methods are only "
                "available via the HTTP API.")
        return 1
    if method == "token":
        resp, code = _token_login(ctx)
    else:
        resp, code = _method_login(ctx, method, path, unwrap=not no_store)
    if resp is None:
        return code
    if not resp.get("auth"):  # still wrapped: -no-store or -token-only
        if token_only:
            return print_secret_field(ctx, resp, "wrapping_token")
        return output_secret(ctx, resp)
    token = str(resp["auth"].get("client_token") or "")
    if not no_store:
        try:
            store_token(ctx, token)
        except OSError as exc:
            ctx.err(f"Error storing token: {exc}")
            ctx.err("Authentication was successful, but the token was not persisted. The "
                    "resulting token is shown below for your records.\n")
            output_secret(ctx, resp)
            return 2
        for name in TOKEN_ENV:
            if ctx.env.get(name):
                ctx.err(f"WARNING! The {name} environment variable is set! The value of "
                        "this variable will take precedence; if this is unwanted please "
                        f"unset {name} or update its value accordingly.\n")
                break
    elif not token_only:
        ctx.err(textwrap.fill("The token was not stored in token helper. Set the VAULT_TOKEN "
                              "environment variable or pass the token below with each "
                              "request to Strongroom.", 80) + "\n")
    if no_print:
        return 0
    if field:
        return print_secret_field(ctx, resp, field)
    if ctx.output_format() == "table":
        ctx.out(_SUCCESS)
    return output_secret(ctx, resp)


def _login_flags(fs: FlagSet) -> None:
    fs.string("method", "Type of authentication to use: token (the default), userpass, "
              "ldap, cert or approle. Method-specific K=V arguments follow the flags.",
              default="token")
    fs.string("path", "Mount path of the auth method, when it is not enabled at its "
              "type's name (e.g. -method=userpass -path=people).")
    fs.boolean("no-store", "Do not store the token in ~/.vault-token.")
    fs.boolean("no-print", "Do not print the token information after logging in.")
    fs.boolean("token-only", "Print only the token, and do not store it. Implies "
               "-no-store and -field=token.")
    fs.boolean("non-interactive", "Never prompt for a password; fail when one is needed.")


COMMANDS: tuple[Command, ...] = (
    Command("login", "Authenticate locally", """
Usage: strongroom login [options] [AUTH K=V...]

  Authenticates with an auth method and stores the resulting token in
  ~/.vault-token, where later commands find it when no
  STRONGROOM_TOKEN/VAULT_TOKEN variable is set.

  With the default method, token, the argument is a token to verify ("-"
  reads it from stdin; without it, it is prompted for):

      $ strongroom login s.abcd1234
      $ strongroom login -token-only -

  Other methods take K=V arguments (K=- reads a value from stdin):

      $ strongroom login -method=userpass username=alice      # password prompted
      $ strongroom login -method=ldap -path=corp username=bob password=-
      $ strongroom login -method=cert -client-cert=me.pem -client-key=me.key name=web
      $ strongroom login -method=approle role_id=... secret_id=-

  userpass and ldap prompt for a missing password (ldap also reads
  VAULT_LDAP_PASSWORD and defaults the username to $LOGNAME or $USER); cert
  presents the TLS client certificate (-client-cert/-client-key or
  VAULT_CLIENT_CERT/VAULT_CLIENT_KEY); approle (not in vault's CLI) takes
  role_id and secret_id.
""", run_login, _login_flags),
)
