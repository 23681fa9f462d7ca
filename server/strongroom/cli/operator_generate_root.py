"""``strongroom operator generate-root``: a new root token from a quorum of key holders.

Vault's flags and output (``vault operator generate-root``): ``-init`` (with
``-otp`` or ``-pgp-key``; with neither the server generates the OTP and shows it
once), ``-status``, ``-cancel``, ``-generate-otp``, ``-decode`` with ``-otp``, and
with none of those one key share (argument, ``-`` for stdin, or prompted) given
with ``-nonce``. The API is ``sys/generate-root/attempt|update``, which needs no
token: the key shares are the authorization.
"""

from __future__ import annotations

import getpass

from strongroom.cli import output
from strongroom.cli.client import ApiClient, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.output import Row
from strongroom.node.generate_root import OTP_LENGTH, decode_token, generate_otp
from strongroom.seal import pgp

ATTEMPT = "sys/generate-root/attempt"
UPDATE = "sys/generate-root/update"


def _flags(fs: FlagSet) -> None:
    fs.boolean("init", "Start a root token generation. This can only be done if there is "
               "not currently one in progress.")
    fs.boolean("cancel", "Reset the root token generation progress. This will discard any "
               "submitted unseal keys or configuration.")
    fs.boolean("status", "Print the status of the current attempt without providing an "
               "unseal key.")
    fs.string("decode", "The value to decode; setting this triggers a decode operation. If "
              'the value is "-" then read the encoded token from stdin.')
    fs.boolean("generate-otp", "Generate and print a high-entropy one-time-password (OTP) "
               'suitable for use with the "-init" flag.')
    fs.string("otp", 'OTP code to use with "-decode" or "-init".')
    fs.string("pgp-key", "Path to a file on disk containing a binary, base64-encoded or "
              "ASCII-armored public PGP key. When supplied, the generated root token will "
              "be encrypted and base64-encoded with the given public key. Keybase names "
              "are not supported.")
    fs.string("nonce", "Nonce value provided at initialization. The same nonce value must "
              "be provided with each unseal key.")


def _rows(status: JsonObject) -> list[Row]:
    rows: list[Row] = [
        ("Nonce", status.get("nonce", "")),
        ("Started", bool(status.get("started"))),
        ("Progress", f"{status.get('progress', 0)}/{status.get('required', 0)}"),
        ("Complete", bool(status.get("complete"))),
    ]
    if status.get("pgp_fingerprint"):
        rows.append(("PGP Fingerprint", status["pgp_fingerprint"]))
    if status.get("encoded_token"):
        rows.append(("Encoded Token", status["encoded_token"]))
    elif status.get("encoded_root_token"):
        rows.append(("Encoded Root Token", status["encoded_root_token"]))
    if status.get("otp"):
        rows.append(("OTP", status["otp"]))
    if status.get("otp_length"):
        rows.append(("OTP Length", status["otp_length"]))
    return rows


def _print_status(ctx: Context, status: JsonObject) -> int:
    if ctx.output_format() != "table" or ctx.flags.string("field"):
        return ctx.emit(status, what="root generation status")
    if status.get("otp"):
        ctx.err("A One-Time-Password has been generated for you and is shown in the OTP "
                "field. You will need this value to decode the resulting root token, so "
                "keep it safe.")
    ctx.out(output.table(_rows(status), header=None))
    return 0


def _status(client: ApiClient) -> JsonObject:
    return client.get(ATTEMPT) or {}


def _read_stdin(ctx: Context) -> str:
    return ctx.io.stdin.read()


def _generate_otp(ctx: Context) -> int:
    try:
        length = int(_status(ctx.client()).get("otp_length") or OTP_LENGTH)
    except ClientError as exc:
        return ctx.fail("Error getting root generation status", exc)
    otp = generate_otp(length)
    if ctx.output_format() == "table" and not ctx.flags.string("field"):
        output.write_raw(ctx.io.stdout, otp)
        return 0
    return ctx.emit({"otp": otp, "otp_length": len(otp)})


def _decode(ctx: Context) -> int:
    encoded = ctx.flags.string("decode")
    otp = ctx.flags.string("otp")
    if not otp:
        ctx.err("Missing otp: use -otp to supply it")
        return 1
    if encoded == "-":
        encoded = _read_stdin(ctx).strip()
        if not encoded:
            ctx.err('Missing encoded value. When using -decode="-" value must be passed '
                    "via stdin.")
            return 1
    try:
        _status(ctx.client())  # as Vault: the server must answer (its OTP length)
    except ClientError as exc:
        return ctx.fail("Error getting root generation status", exc)
    try:
        token = decode_token(encoded, otp)
    except ValueError as exc:
        ctx.err(f"Error decoding root token: {exc}")
        return 1
    if ctx.output_format() == "table" and not ctx.flags.string("field"):
        output.write_raw(ctx.io.stdout, token)
        return 0
    return ctx.emit({"token": token})


def _init(ctx: Context) -> int:
    otp = ctx.flags.string("otp")
    key_file = ctx.flags.string("pgp-key")
    if otp and key_file:
        ctx.err("Error initializing: cannot specify both -otp and -pgp-key")
        return 1
    pgp_key = ""
    if key_file:
        try:
            if key_file.startswith(pgp.KEYBASE_PREFIX):
                raise ValueError("keybase keys are not supported")
            pgp_key = pgp.read_key_file(key_file)
        except ValueError as exc:
            raise UsageError(f'invalid value "{key_file}" for flag -pgp-key: {exc}') from None
    try:
        status = ctx.client().put(ATTEMPT, {"otp": otp, "pgp_key": pgp_key}) or {}
    except ClientError as exc:
        return ctx.fail("Error initializing root generation", exc)
    return _print_status(ctx, status)


def _cancel(ctx: Context) -> int:
    try:
        ctx.client().delete(ATTEMPT)
    except ClientError as exc:
        return ctx.fail("Error canceling root token generation", exc)
    ctx.out("Success! Root token generation canceled (if it was started)")
    return 0


def _provide(ctx: Context) -> int:
    client = ctx.client()
    try:
        status = _status(client)
    except ClientError as exc:
        return ctx.fail("Error getting root generation status", exc)
    if not status.get("started"):
        ctx.err('No root generation is in progress. Start a root generation by running '
                '"strongroom operator generate-root -init".')
        ctx.err("If starting root generation using the OTP method and generating your own "
                f"OTP, the length of the OTP string needs to be {status.get('otp_length')} "
                "characters in length.")
        return 1
    key = ctx.args[0].strip() if ctx.args else ""
    nonce = ctx.flags.string("nonce")
    if key == "-":
        key = _read_stdin(ctx)
    elif not key:
        # Prompted: the nonce is the attempt's, shown so the holder can check it.
        nonce = str(status.get("nonce", ""))
        ctx.err(f"Operation nonce: {nonce}")
        try:
            key = (getpass.getpass("Unseal Key (will be hidden): ", stream=ctx.io.stderr)
                   if ctx.io.stdin.isatty() else ctx.io.stdin.readline())
        except (EOFError, KeyboardInterrupt):
            ctx.err("user canceled")
            return 1
    key = key.strip()
    if not nonce:
        ctx.err("Missing nonce value: specify it via the -nonce flag")
        return 1
    try:
        status = client.put(UPDATE, {"key": key, "nonce": nonce}) or {}
    except ClientError as exc:
        return ctx.fail("Error posting unseal key", exc)
    return _print_status(ctx, status)


def run_generate_root(ctx: Context) -> int:
    """Dispatch on the mode flags, in Vault's order of precedence."""
    ctx.expect_args(0, 1)
    if ctx.flags.boolean("generate-otp"):
        return _generate_otp(ctx)
    if ctx.flags.string("decode"):
        return _decode(ctx)
    if ctx.flags.boolean("cancel"):
        return _cancel(ctx)
    if ctx.flags.boolean("init"):
        return _init(ctx)
    if ctx.flags.boolean("status"):
        try:
            return _print_status(ctx, _status(ctx.client()))
        except ClientError as exc:
            return ctx.fail("Error getting root generation status", exc)
    return _provide(ctx)


_HELP = """
Usage: strongroom operator generate-root [options] [KEY]

  Generates a new root token by combining a quorum of share holders: unseal
  key holders on a Shamir-sealed server, recovery key holders on an
  auto-unsealed one. One of the following protects the new token:

    - A one-time-password (OTP). Start with "-init" alone and the server
      generates one and shows it once; or generate your own with
      "-generate-otp" and pass it with "-init -otp=...". The token is returned
      XOR'ed with the OTP; "-decode" with "-otp" turns it back into the token.

    - A file holding a PGP public key in "-pgp-key". The token is returned
      encrypted to this key and base64-encoded.

  A key share may be given as the argument; "-" reads it from stdin; without
  an argument it is prompted for (hidden) on a terminal, or read as one line
  of piped stdin. The nonce shown by "-init" goes with every share.

  Start a root token generation with a server-generated OTP:

      $ strongroom operator generate-root -init

  Give one key share:

      $ strongroom operator generate-root -nonce=NONCE -

  Decode the final token:

      $ strongroom operator generate-root -decode=ENCODED -otp=OTP
"""

COMMANDS: tuple[Command, ...] = (
    Command("operator generate-root", "Generates a new root token", _HELP,
            run_generate_root, _flags),
)
