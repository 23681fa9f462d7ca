"""``strongroom hsm generate-key|copy-key|lock-key|status``: the pkcs11 seal's AES key.

Local commands (no server): they talk to the PKCS#11 library directly, as the seal
does. PINs never come from argv: ``VAULT_HSM_PIN`` or ``-pin-file`` for the token,
``-to-pin-file`` for copy-key's destination (default: the source's PIN). The library,
token and key label default to ``VAULT_HSM_LIB``, ``VAULT_HSM_TOKEN_LABEL`` /
``VAULT_HSM_SLOT`` and ``VAULT_HSM_KEY_LABEL``. Exit 0 on success, 2 when refused (the
key exists, is missing, a token cannot be used), 1 on a usage error; one line each.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from strongroom.cli.command import Command, Context, Group
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.config import ConfigError, SealConfig
from strongroom.seal import pkcs11_admin
from strongroom.seal.pkcs11_config import PartitionConfig, resolve

EXIT_REFUSED = 2


def _token_flags(fs: FlagSet) -> None:
    fs.string("lib", "Path to the PKCS#11 library (default: VAULT_HSM_LIB).")
    fs.string("token-label", "Label of the token (default: VAULT_HSM_TOKEN_LABEL).")
    fs.string("slot", "Slot number, instead of -token-label (default: VAULT_HSM_SLOT).")
    fs.string("key-label", "Label of the seal's AES key (default: VAULT_HSM_KEY_LABEL).")
    fs.string("key-id", "Hexadecimal CKA_ID of the key (default: VAULT_HSM_KEY_ID).")
    fs.string("pin-file", "File holding the token's user PIN (default: VAULT_HSM_PIN).")


def _copy_flags(fs: FlagSet) -> None:
    _token_flags(fs)
    fs.string("to-lib", "PKCS#11 library of the destination (default: -lib).")
    fs.string("to-token-label", "Label of the destination token.")
    fs.string("to-slot", "Slot of the destination token, instead of -to-token-label.")
    fs.string("to-pin-file", "File holding the destination's user PIN (default: the "
              "source's PIN).")
    fs.boolean("lock", "Create the copy not extractable (it can then never be copied "
               "again; see lock-key).")


def _partition(ctx: Context, prefix: str = "", pin_from: PartitionConfig | None = None
               ) -> PartitionConfig:
    """The flags (with ``prefix``: the destination's) resolved like a seal stanza."""
    f = ctx.flags
    options: dict[str, str] = {}
    names = {"lib": "lib", "token-label": "token_label", "slot": "slot"}
    if not prefix:
        names.update({"key-label": "key_label", "key-id": "key_id", "pin-file": "pin_file"})
    for flag, option in names.items():
        if f.string(prefix + flag):
            options[option] = f.string(prefix + flag)
    env = dict(ctx.env)
    if prefix:
        # The destination: only its own flags, else the source's lib; never the source's
        # token variables.
        options.setdefault("lib", f.string("lib") or env.get("VAULT_HSM_LIB", ""))
        options["key_label"] = f.string("key-label") or env.get("VAULT_HSM_KEY_LABEL", "")
        if f.string("key-id") or env.get("VAULT_HSM_KEY_ID"):
            options["key_id"] = f.string("key-id") or env.get("VAULT_HSM_KEY_ID", "")
        if f.string("to-pin-file"):
            options["pin_file"] = f.string("to-pin-file")
        elif pin_from is not None:
            options["pin"] = pin_from.pin
        env = {}
    elif "pin_file" in options:
        env.pop("VAULT_HSM_PIN", None)
    stanza = SealConfig("pkcs11", {k: v for k, v in options.items() if v})
    try:
        return resolve(stanza, env)
    except ConfigError as exc:
        where = "destination: " if prefix else ""
        raise UsageError(where + exc.reason.replace("pin_file", "-pin-file")) from None


def _refused(ctx: Context, exc: Exception) -> int:
    ctx.err(f"Error: {exc}")
    return EXIT_REFUSED


def run_generate(ctx: Context) -> int:
    ctx.expect_args(0, 0)
    partition = _partition(ctx)
    return _admin(ctx, lambda: pkcs11_admin.generate(partition),
                  f"Success! Generated AES-256 key {partition.key_label!r} in token "
                  f"{partition.token}")


def run_copy(ctx: Context) -> int:
    ctx.expect_args(0, 0)
    source = _partition(ctx)
    if not (ctx.flags.string("to-token-label") or ctx.flags.string("to-slot")):
        raise UsageError("-to-token-label or -to-slot is required")
    dest = _partition(ctx, "to-", pin_from=source)
    lock = ctx.flags.boolean("lock")
    return _admin(ctx, lambda: pkcs11_admin.copy(source, dest, lock=lock),
                  f"Success! Copied key {source.key_label!r} from token {source.token} to "
                  f"token {dest.token} under wrap")


def run_lock(ctx: Context) -> int:
    ctx.expect_args(0, 0)
    partition = _partition(ctx)
    return _admin(ctx, lambda: pkcs11_admin.lock(partition),
                  f"Success! Key {partition.key_label!r} in token {partition.token} is no "
                  "longer extractable")


def _admin(ctx: Context, action: Callable[[], None], success: str) -> int:
    """Run one key operation: its success line, or the refusal's (exit 2)."""
    try:
        action()
    except pkcs11_admin.Refused as exc:
        return _refused(ctx, exc)
    ctx.out(success)
    return 0


def run_status(ctx: Context) -> int:
    ctx.expect_args(0, 0)
    partition = _partition(ctx)
    report = pkcs11_admin.status(partition)
    if ctx.output_format() == "json":
        ctx.out(json.dumps(report.__dict__, indent=2))
    else:
        rows = [("Token", report.token), ("Key Label", report.key_label),
                ("Present", report.present), ("Usable", report.usable),
                ("Sensitive", report.sensitive), ("Extractable", report.extractable),
                ("Never Extractable", report.never_extractable)]
        if report.problem:
            rows.append(("Problem", report.problem))
        width = max(len(name) for name, _ in rows)
        ctx.out(f"{'Key':<{width}}    Value")
        ctx.out(f"{'---':<{width}}    -----")
        for name, value in rows:
            shown = "n/a" if value is None else str(value).lower() if isinstance(
                value, bool) else value
            ctx.out(f"{name:<{width}}    {shown}")
    return 0 if report.usable else EXIT_REFUSED


GROUPS: tuple[Group, ...] = (
    Group("hsm", "Manage the pkcs11 seal's key in HSM partitions", """
Usage: strongroom hsm <subcommand> [options]

  Generates, copies (under wrap: the key never leaves the HSMs in clear), locks and
  checks the AES-256 key the pkcs11 seal encrypts the root key with. Local commands:
  they load the PKCS#11 library themselves. PINs come from VAULT_HSM_PIN or
  -pin-file, never from the command line.
"""),
)

COMMANDS: tuple[Command, ...] = (
    Command("hsm generate-key", "Generates the seal key in a token", """
Usage: strongroom hsm generate-key -lib=PATH -token-label=LABEL -key-label=LABEL

  Generates an AES-256 key inside the token: sensitive (never readable in clear),
  extractable only under wrap (so copy-key can put it into another partition), for
  encryption and decryption only. Refused (exit 2) if the label exists already.
""", run_generate, _token_flags, http=False, output=False),
    Command("hsm copy-key", "Copies the seal key into another token under wrap", """
Usage: strongroom hsm copy-key -lib=PATH -token-label=FROM -to-token-label=TO
       -key-label=LABEL [-to-pin-file=FILE] [-lock]

  Copies the key into the destination token: a transport RSA key pair is generated
  inside the destination (session objects only), the key is wrapped with RSA-OAEP in
  the source and unwrapped in the destination, then both copies are checked to be
  the same key. Refused (exit 2) if the destination holds the label already.
""", run_copy, _copy_flags, http=False, output=False),
    Command("hsm lock-key", "Makes the seal key not extractable", """
Usage: strongroom hsm lock-key -lib=PATH -token-label=LABEL -key-label=LABEL

  Clears CKA_EXTRACTABLE on the key: it can no longer leave the token even wrapped
  (and can no longer be copied). One-way.
""", run_lock, _token_flags, http=False, output=False),
    Command("hsm status", "Reports on the seal key in a token", """
Usage: strongroom hsm status -lib=PATH -token-label=LABEL -key-label=LABEL

  Whether the key is present and encrypts/decrypts (AES-GCM round trip), with its
  protection attributes. Exit 0 when usable, 2 otherwise.
""", run_status, _token_flags, http=False, output=True, field=False),
)
