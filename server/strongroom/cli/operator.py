"""``strongroom operator init|unseal|seal``: bring a server up and take it down."""

from __future__ import annotations

import getpass

from strongroom.cli.client import ClientError, JsonObject
from strongroom.cli.command import Command, Context, Group
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.status import print_seal_status
from strongroom.seal import pgp


def _init_flags(fs: FlagSet) -> None:
    fs.integer("key-shares", "Number of unseal key shares to split the root key into "
               "(5 when not given; not allowed with an auto-seal).",
               default=0, aliases=("n",))
    fs.integer("key-threshold", "Number of unseal key shares required to reconstruct "
               "the root key. Must be less than or equal to -key-shares (3 when not "
               "given; not allowed with an auto-seal).",
               default=0, aliases=("t",))
    fs.integer("recovery-shares", "Number of recovery key shares to split the recovery "
               "key into (auto-seal only).", default=5)
    fs.integer("recovery-threshold", "Number of recovery key shares required to "
               "reconstruct the recovery key (auto-seal only).", default=3)
    fs.strings("recovery-pgp-keys", "Like -pgp-keys, for the recovery key shares "
               "(auto-seal only).")
    fs.boolean("status", "Print whether the server is initialized and exit: code 0 if "
               "it is, 2 if it is not, 1 on error. Needs no token.")
    fs.strings("pgp-keys", "Comma-separated list of paths to files holding public PGP "
               "keys (binary, base64 or ASCII-armored), one per key share in order. The "
               "unseal keys are then returned encrypted to these keys and base64-encoded. "
               "The number of entries must match -key-shares. Keybase names "
               "(keybase:USER) are not supported.")
    fs.string("root-token-pgp-key", "Path to a file holding a public PGP key (binary, "
              "base64 or ASCII-armored). The initial root token is then returned "
              "encrypted to this key and base64-encoded.")


def init_output(resp: JsonObject, shares: int, threshold: int, recovery_shares: int = 0,
                recovery_threshold: int = 0) -> JsonObject:
    """Reshape a ``sys/init`` answer into what ``vault operator init -format=json`` prints.

    The API calls the keys ``keys``/``keys_base64``; the CLI renames them and
    adds the share counts, with ``null`` for absent recovery keys.
    """
    recovery = resp.get("recovery_keys_base64") or None
    if not resp.get("keys"):
        shares = threshold = 1  # the seal stores the one key (vault prints the same)
    return {
        "unseal_keys_b64": resp.get("keys_base64"),
        "unseal_keys_hex": resp.get("keys"),
        "unseal_shares": shares,
        "unseal_threshold": threshold,
        "recovery_keys_b64": recovery,
        "recovery_keys_hex": resp.get("recovery_keys") or None,
        "recovery_keys_shares": recovery_shares,
        "recovery_keys_threshold": recovery_threshold,
        "root_token": resp.get("root_token", ""),
    }


def init_text(out: JsonObject) -> str:
    """Human-readable ``operator init`` output (the only place a token is printed)."""
    lines = [f"Unseal Key {i}: {k}" for i, k in enumerate(out["unseal_keys_b64"] or [], 1)]
    lines += [f"Recovery Key {i}: {k}"
              for i, k in enumerate(out["recovery_keys_b64"] or [], 1)]
    lines += ["", f"Initial Root Token: {out['root_token']}", ""]
    shares, threshold = out["unseal_shares"], out["unseal_threshold"]
    if out["unseal_keys_b64"]:
        lines += [
            f"Vault initialized with {shares} key shares and a key threshold of {threshold}.",
            "Keep the key shares above safe and give them to separate people. Whenever",
            "the server is sealed, restarted or stopped, at least "
            f"{threshold} of these keys must",
            "be supplied to unseal it before it can serve requests again.",
            "",
            "The server does not keep the generated root key. If fewer than "
            f"{threshold} keys",
            "survive, the root key cannot be rebuilt and the data stays sealed forever.",
        ]
    else:
        lines += ["Success! Vault is initialized"]
    if out["recovery_keys_b64"]:
        lines += ["", f"Recovery key initialized with {out['recovery_keys_shares']} key shares "
                  f"and a key threshold of {out['recovery_keys_threshold']}.",
                  "The recovery keys above cannot unseal the server, but rekey and",
                  "generate-root require them. Store them as carefully as unseal keys."]
    return "\n".join(lines)


def _pgp_key_files(flag: str, value: str) -> list[str]:
    """Read the comma-separated key files of ``-pgp-keys``/``-root-token-pgp-key``.

    Raises:
        UsageError: In Go's flag wording, as vault reports a bad key file.
    """
    keys = []
    for entry in value.split(","):
        entry = entry.strip()
        try:
            if entry.startswith(pgp.KEYBASE_PREFIX):
                raise ValueError("keybase keys are not supported (strongroom does not "
                                 "contact keybase.io); save the public key to a file "
                                 "and pass its path")
            keys.append(pgp.read_key_file(entry))
        except ValueError as exc:
            raise UsageError(f'invalid value "{value}" for flag -{flag}: {exc}') from None
    return keys


def _pgp_init_fields(ctx: Context) -> dict[str, object]:
    """The ``pgp_keys``/``recovery_pgp_keys``/``root_token_pgp_key`` request fields from
    the flags, if given."""
    fields: dict[str, object] = {}
    for flag, field in (("pgp-keys", "pgp_keys"), ("recovery-pgp-keys", "recovery_pgp_keys")):
        given = ctx.flags.strings(flag)
        if len(given) > 1:
            raise UsageError(f'invalid value "{given[1]}" for flag -{flag}: '
                             "can only be specified once")
        if given:
            fields[field] = _pgp_key_files(flag, given[0])
    root_key = ctx.flags.string("root-token-pgp-key")
    if root_key:
        keys = _pgp_key_files("root-token-pgp-key", root_key)
        if len(keys) != 1:
            raise UsageError(f'invalid value "{root_key}" for flag -root-token-pgp-key: '
                             "can only specify one pgp key")
        fields["root_token_pgp_key"] = keys[0]
    return fields


def run_init(ctx: Context) -> int:
    """Initialize the server, or report initialization status with ``-status``."""
    ctx.expect_args(0, 0)
    fmt = ctx.output_format()
    # Key files are read first, as vault reads them while parsing its flags.
    pgp_fields = _pgp_init_fields(ctx)
    if ctx.flags.boolean("status"):
        try:
            initialized = ctx.client().init_status()
        except ClientError as exc:
            # 2 means "not initialized" for -status, so errors use 1.
            return ctx.fail("Error checking init status", exc, code=1)
        ctx.out("Vault is initialized" if initialized else "Vault is not initialized")
        return 0 if initialized else 2
    shares = ctx.flags.integer("key-shares")
    threshold = ctx.flags.integer("key-threshold")
    recovery_shares = ctx.flags.integer("recovery-shares")
    recovery_threshold = ctx.flags.integer("recovery-threshold")
    client = ctx.client()
    try:
        recovery_seal = bool(client.seal_status().get("recovery_seal"))
    except ClientError:
        recovery_seal = False  # sys/init itself then says what is wrong
    if recovery_seal:
        pgp_fields.update(recovery_shares=recovery_shares,
                          recovery_threshold=recovery_threshold)
    else:
        # As vault: unseal key defaults for a Shamir seal, recovery flags ignored.
        shares, threshold = shares or 5, threshold or 3
        recovery_shares = recovery_threshold = 0
    try:
        resp = client.init(shares, threshold, **pgp_fields)
    except ClientError as exc:
        return ctx.fail("Error initializing", exc)
    out = init_output(resp, shares, threshold, recovery_shares, recovery_threshold)
    if fmt == "table" and not ctx.flags.string("field"):
        ctx.out(init_text(out))
        return 0
    return ctx.emit(out, what="init output")


def _read_key(ctx: Context) -> str:
    """Get the unseal key from a hidden prompt, or one line of piped stdin.

    Unlike vault, a non-TTY stdin is accepted, so scripts can pipe a key in
    without exposing it in the process list.
    """
    stdin = ctx.io.stdin
    if stdin.isatty():
        return getpass.getpass("Unseal Key (will be hidden): ", stream=ctx.io.stderr)
    return stdin.readline()


def run_unseal(ctx: Context) -> int:
    """Submit one unseal key share (or ``-reset``), then print the seal status."""
    ctx.expect_args(0, 1)
    client = ctx.client()
    try:
        if ctx.flags.boolean("reset"):
            status = client.unseal_reset()
        else:
            key = ctx.args[0] if ctx.args else _read_key(ctx)
            key = key.strip()
            if not key:
                ctx.err("Error unsealing: no unseal key was provided")
                return 1
            status = client.unseal(key, migrate=ctx.flags.boolean("migrate"))
    except ClientError as exc:
        prefix = "Error resetting unseal process" if ctx.flags.boolean("reset") else (
            "Error unsealing")
        return ctx.fail(prefix, exc)
    except (EOFError, KeyboardInterrupt):
        ctx.err("Error unsealing: no unseal key was provided")
        return 1
    return print_seal_status(ctx, status)


def _unseal_flags(fs: FlagSet) -> None:
    fs.boolean("reset", "Discard the unseal key shares submitted so far and start over.")
    fs.boolean("migrate", "Indicate that this share is provided with the intent that it is "
               "part of a seal migration process: a share of the old seal's keys (the "
               "unseal keys when leaving Shamir, the recovery keys when leaving an "
               "auto-seal).")


def run_seal(ctx: Context) -> int:
    """Seal the server; needs a token with ``update`` on ``sys/seal``."""
    ctx.expect_args(0, 0)
    try:
        ctx.client().seal()
    except ClientError as exc:
        return ctx.fail("Error sealing", exc)
    ctx.out("Success! Vault is sealed.")
    return 0


_GROUP_HELP = """
Usage: strongroom operator <subcommand> [options] [args]

  Subcommands for operators: initializing a new server, unsealing it after
  each start, and sealing it in an emergency. Most users never need these.
"""

_INIT_HELP = """
Usage: strongroom operator init [options]

  Initializes a new server: the storage backend is prepared, a root key is
  generated and split into unseal key shares with Shamir's secret sharing,
  and an initial root token is created. This works only once per storage
  backend; the keys and token are shown only this one time.

  Initialize with the defaults (5 shares, threshold 3):

      $ strongroom operator init

  Check whether the server is initialized:

      $ strongroom operator init -status

  Encrypt each unseal key to one holder's PGP key, and the root token to
  another's (files from `gpg --export KEYID > NAME.gpg`):

      $ strongroom operator init -key-shares=3 -key-threshold=2 \
          -pgp-keys="alice.gpg,bob.gpg,carol.gpg" -root-token-pgp-key=ops.gpg

  A holder recovers an unseal key with `echo KEY | base64 -d | gpg -dq`.

  With an auto-seal (seal "pkcs11"), the seal keeps the root key and the
  server unseals itself; recovery key shares are made instead, which rekey
  and generate-root require:

      $ strongroom operator init -recovery-shares=5 -recovery-threshold=3
"""

_UNSEAL_HELP = """
Usage: strongroom operator unseal [options] [KEY]

  Provides one unseal key share. Once the threshold number of distinct shares
  has been provided the server unseals. Without KEY, the key is prompted for
  with hidden input on a terminal, or read as one line from piped stdin.

      $ strongroom operator unseal
      $ strongroom operator unseal -reset

  During a seal migration (the old seal stanza marked disabled = "true"),
  give the old seal's key shares with -migrate:

      $ strongroom operator unseal -migrate
"""

_SEAL_HELP = """
Usage: strongroom operator seal [options]

  Seals the server: the root key is discarded from memory and every request
  fails until the server is unsealed again. Requires a token allowed to
  update sys/seal.
"""

GROUPS: tuple[Group, ...] = (
    Group("operator", "Perform operator-specific tasks", _GROUP_HELP),
)

COMMANDS: tuple[Command, ...] = (
    Command("operator init", "Initializes a server", _INIT_HELP, run_init, _init_flags),
    Command("operator unseal", "Unseals the server", _UNSEAL_HELP, run_unseal, _unseal_flags),
    Command("operator seal", "Seals the server", _SEAL_HELP, run_seal, output=False),
)
