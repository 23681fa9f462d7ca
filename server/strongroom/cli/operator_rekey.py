"""``strongroom operator rekey`` and ``operator rotate``, with vault/bao's flags and output.

``-format=json`` prints what ``bao operator rekey`` prints (the API client's structs,
e.g. ``verification_nonce`` always present in a status), so scripts written for
one work with the other. Key shares are read from the argument, from stdin with
``-``, or from a hidden prompt (or one piped line) together with the round's nonce.
"""

from __future__ import annotations

import getpass
import textwrap
from typing import Any

from strongroom.cli.client import ApiClient, ClientError, JsonObject
from strongroom.cli.command import Command, Context
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.operator import _pgp_key_files
from strongroom.cli.output import Row
from strongroom.cli.secret import output_secret

_PATHS = {"barrier": "sys/rekey", "recovery": "sys/rekey-recovery-key"}
_BACKUP = {"barrier": "sys/rekey/backup", "recovery": "sys/rekey/recovery-key-backup"}


def _wrap(text: str) -> str:
    return textwrap.fill(text, 78)


def _rekey_flags(fs: FlagSet) -> None:
    fs.boolean("init", "Initialize the rekeying operation. This can only be done if no "
               "rekeying operation is in progress. Customize the new number of key shares "
               "and key threshold using the -key-shares and -key-threshold flags.")
    fs.boolean("cancel", "Reset the rekeying progress. This will discard any submitted "
               "unseal keys, recovery keys, or configuration.")
    fs.boolean("status", "Print the status of the current attempt without providing an "
               "unseal or recovery key.")
    fs.integer("key-shares", "Number of key shares to split the generated root key into.",
               default=5, aliases=("n",))
    fs.integer("key-threshold", "Number of key shares required to reconstruct the root "
               "key. This must be less than or equal to -key-shares.", default=3,
               aliases=("t",))
    fs.string("nonce", "Nonce value provided at initialization. The same nonce value must "
              "be provided with each unseal or recovery key.")
    fs.string("target", "Target for rekeying. \"recovery\" only applies when an auto-seal "
              "(HSM) is configured.", default="barrier")
    fs.boolean("verify", "Indicates that the action (-status, -cancel, or providing a key "
               "share) will be affecting verification for the current rekey attempt.")
    fs.strings("pgp-keys", "Comma-separated list of paths to files on disk containing "
               "public PGP keys; the new key shares are encrypted to them, in order.")
    fs.boolean("backup", "Store a backup of the current PGP encrypted unseal or recovery "
               "keys in the server's storage. The encrypted values can be recovered in "
               "the event of failure or discarded after success. Only with -pgp-keys.")
    fs.boolean("backup-delete", "Delete any stored backup unseal or recovery keys.")
    fs.boolean("backup-retrieve", "Retrieve the backed-up unseal or recovery keys (needs "
               "a token).")


def _target(ctx: Context) -> str:
    target = ctx.flags.string("target").strip().lower()
    if target == "hsm":
        target = "recovery"
    if target not in _PATHS:
        raise UsageError(f"Unknown target: {ctx.flags.string('target')}")
    return target


def _status_doc(resp: JsonObject | None) -> JsonObject:
    """A rekey status as the api client's RotateStatusResponse prints it."""
    r = resp or {}
    doc: JsonObject = {}
    if r.get("complete"):
        doc["complete"] = True
    if r.get("keys"):
        doc["keys"], doc["keys_base64"] = r.get("keys"), r.get("keys_base64")
    doc.update(nonce=r.get("nonce", ""), started=bool(r.get("started")), t=r.get("t", 0),
               n=r.get("n", 0), progress=r.get("progress", 0),
               required=r.get("required", 0), pgp_fingerprints=r.get("pgp_fingerprints"),
               backup=bool(r.get("backup")),
               verification_required=bool(r.get("verification_required")),
               verification_nonce=r.get("verification_nonce", ""))
    return doc


def _verify_doc(resp: JsonObject | None) -> JsonObject:
    r = resp or {}
    return {"nonce": r.get("nonce", ""), "started": bool(r.get("started")),
            "t": r.get("t", 0), "n": r.get("n", 0), "progress": r.get("progress", 0)}


def _status_rows(doc: JsonObject, verify: bool) -> list[Row]:
    if verify:
        return [("Started", doc["started"]), ("New Shares", doc["n"]),
                ("New Threshold", doc["t"]), ("Verification Nonce", doc["nonce"]),
                ("Verification Progress", f"{doc['progress']}/{doc['t']}")]
    rows: list[Row] = [("Nonce", doc["nonce"]), ("Started", doc["started"])]
    if doc["started"]:
        progress = f"{doc['progress']}/{doc['required']}"
        if doc["progress"] == doc["required"]:
            progress += " (verification in progress)"
        rows.append(("Progress", progress))
        if doc["n"]:
            rows.append(("New Shares", doc["n"]))
        if doc["t"]:
            rows.append(("New Threshold", doc["t"]))
        rows.append(("Verification Required", doc["verification_required"]))
        if doc["verification_nonce"]:
            rows.append(("Verification Nonce", doc["verification_nonce"]))
    if doc["pgp_fingerprints"]:
        rows += [("PGP Fingerprints", "[" + " ".join(doc["pgp_fingerprints"]) + "]"),
                 ("Backup", doc["backup"])]
    return rows


def _print_status(ctx: Context, client: ApiClient, target: str, verify: bool) -> int:
    path = _PATHS[target] + ("/verify" if verify else "/init")
    try:
        resp = client.get(path)
    except ClientError as exc:
        return ctx.fail("Error reading rekey status", exc)
    doc = _verify_doc(resp) if verify else _status_doc(resp)
    return ctx.emit(doc, _status_rows(doc, verify), what="rekey status")


def _init(ctx: Context, client: ApiClient, target: str) -> int:
    body: JsonObject = {"secret_shares": ctx.flags.integer("key-shares"),
                        "secret_threshold": ctx.flags.integer("key-threshold"),
                        "backup": ctx.flags.boolean("backup"),
                        "require_verification": ctx.flags.boolean("verify")}
    given = ctx.flags.strings("pgp-keys")
    if given:
        body["pgp_keys"] = _pgp_key_files("pgp-keys", given[-1])
    try:
        resp = client.put(_PATHS[target] + "/init", body)
    except ClientError as exc:
        return ctx.fail("Error initializing rekey", exc)
    doc = _status_doc(resp)
    if ctx.output_format() == "table":
        what = "recovery" if target == "recovery" else "unseal"
        if doc["t"] == 0 and doc["n"] == 0:
            ctx.out("")
            ctx.out("Rotating barrier root key using recovery shares.")
            ctx.out("")
        elif not given:
            ctx.err(_wrap(f"WARNING! If you lose the keys after they are returned, there is "
                          "no recovery. Consider canceling this operation and "
                          "re-initializing with the -pgp-keys flag to protect the returned "
                          f"{what} keys along with -backup to allow recovery of the "
                          "encrypted keys in case of emergency. You can delete the stored "
                          "keys later using the -backup-delete flag."))
            ctx.out("")
        elif not body["backup"]:
            ctx.err(_wrap(f"WARNING! You are using PGP keys for encryption of resulting "
                          f"{what} keys, but you did not enable the option to backup the "
                          "keys to the server's storage. If you lose the encrypted keys "
                          "after they are returned, you will not be able to recover them. "
                          "Consider canceling this operation and re-running with -backup."))
            ctx.out("")
    return ctx.emit(doc, _status_rows(doc, False), what="rekey status")


def _cancel(ctx: Context, client: ApiClient, target: str) -> int:
    path = _PATHS[target] + ("/verify" if ctx.flags.boolean("verify") else "/init")
    try:
        client.delete(path)
    except ClientError as exc:
        return ctx.fail("Error canceling rekey", exc)
    ctx.out("Success! Canceled rekeying (if it was started)")
    return 0


def _read_key(ctx: Context, what: str, nonce: str) -> str:
    stdin = ctx.io.stdin
    if stdin.isatty():
        ctx.err(f"Rekey operation nonce: {nonce}")
        return getpass.getpass(f"{what} Key (will be hidden): ", stream=ctx.io.stderr)
    return stdin.readline()


def _provide(ctx: Context, client: ApiClient, target: str) -> int:
    verify = ctx.flags.boolean("verify")
    base = _PATHS[target] + ("/verify" if verify else "")
    what = "Recovery" if target == "recovery" else "Unseal"
    try:
        status = client.get(base if verify else base + "/init") or {}
    except ClientError as exc:
        return ctx.fail("Error getting rekey status", exc)
    if not status.get("started"):
        ctx.err(_wrap('No rekey is in progress. Start a rekey process by running '
                      '"strongroom operator rekey -init".'))
        return 1
    nonce = ctx.flags.string("nonce")
    key = ctx.args[0] if ctx.args else ""
    if key == "-":
        key = ctx.io.stdin.read()
    elif not key:
        try:
            key = _read_key(ctx, what, str(status.get("nonce", "")))
        except (EOFError, KeyboardInterrupt):
            ctx.err("user canceled")
            return 1
        nonce = str(status.get("nonce", ""))
    key = key.strip()
    if not nonce:
        ctx.err("Missing nonce value: specify it via the -nonce flag")
        return 1
    try:
        resp = client.put(base if verify else base + "/update", {"key": key, "nonce": nonce})
    except ClientError as exc:
        return ctx.fail("Error posting unseal key", exc)
    if not (resp or {}).get("complete"):
        return _print_status(ctx, client, target, verify)
    if verify:
        ctx.out(_wrap("Rekey verification successful. The rekey operation is complete and "
                      "the new keys are now active."))
        return 0
    return _print_new_keys(ctx, client, target, status, resp or {})


def _print_new_keys(ctx: Context, client: ApiClient, target: str, status: JsonObject,
                    resp: JsonObject) -> int:
    doc: JsonObject = {"nonce": resp.get("nonce", ""), "complete": True,
                       "keys": resp.get("keys") or [],
                       "keys_base64": resp.get("keys_base64") or [],
                       "pgp_fingerprints": resp.get("pgp_fingerprints"),
                       "backup": bool(resp.get("backup")),
                       "verification_required": bool(resp.get("verification_required"))}
    if resp.get("verification_nonce"):
        doc["verification_nonce"] = resp["verification_nonce"]
    if ctx.output_format() != "table":
        return ctx.emit(doc, what="rekey result")
    ctx.out("")
    fps = doc["pgp_fingerprints"] or []
    for i, key in enumerate(doc["keys_base64"] or doc["keys"], 1):
        ctx.out(f"Key {i} fingerprint: {fps[i - 1]}; value: {key}" if fps
                else f"Key {i}: {key}")
    if not doc["keys"]:
        ctx.out("")
        ctx.out("Barrier root key rotated using recovery keys.")
        return 0
    ctx.out("")
    ctx.out(f"Operation nonce: {doc['nonce']}")
    n, t = status.get("n", 0), status.get("t", 0)
    if fps and doc["backup"]:
        entry = "core/recovery-keys-backup" if target == "recovery" else "core/unseal-keys-backup"
        flag = " -target=recovery" if target == "recovery" else ""
        ctx.out("")
        ctx.out(_wrap(f'The encrypted keys are backed up to "{entry}" in the storage '
                      'backend. Remove them at any time with "strongroom operator rekey '
                      f'-backup-delete{flag}". They are not removed automatically.'))
    ctx.out("")
    if status.get("verification_required"):
        ctx.out(_wrap(f"New keys were made, split into {n} key shares and a key threshold "
                      f"of {t}. They are not active until verification is complete: "
                      "provide them with -verify. Until then the current keys stay valid."))
        ctx.out("")
        return _print_status(ctx, client, target, True)
    kind = "recovery" if target == "recovery" else "unseal"
    ctx.out(_wrap(f"Keys rekeyed to {n} {kind} key shares and a key threshold of {t}. "
                  "Please securely distribute the key shares printed above."))
    return 0


def _backup(ctx: Context, client: ApiClient, target: str, delete: bool) -> int:
    try:
        if delete:
            client.delete(_BACKUP[target])
        else:
            resp = client.get(_BACKUP[target]) or {}
    except ClientError as exc:
        verb = "deleting" if delete else "retrieving"
        return ctx.fail(f"Error {verb} rekey backed up keys", exc)
    if delete:
        ctx.out("Success! Deleted backed up keys (if they existed)")
        return 0
    data: Any = resp.get("data") or {}
    return output_secret(ctx, {"data": {"nonce": data.get("nonce", ""),
                                        "keys": data.get("keys"),
                                        "keys_base64": data.get("keys_base64")}})


def run_rekey(ctx: Context) -> int:
    """Generate new unseal (or recovery) keys from a quorum of the current ones."""
    ctx.expect_args(0, 1)
    target = _target(ctx)
    client = ctx.client()
    flags = ctx.flags
    if flags.boolean("backup-delete"):
        return _backup(ctx, client, target, delete=True)
    if flags.boolean("backup-retrieve"):
        return _backup(ctx, client, target, delete=False)
    if flags.boolean("cancel"):
        return _cancel(ctx, client, target)
    if flags.boolean("init"):
        return _init(ctx, client, target)
    if flags.boolean("status"):
        return _print_status(ctx, client, target, flags.boolean("verify"))
    return _provide(ctx, client, target)


def _rotate_flags(fs: FlagSet) -> None:
    fs.boolean("root-key", "Rotate the root key (sys/rotate/root) instead of adding a "
               "term to the keyring: a new root key, stored wrapped by the auto-seal; the "
               "data keys and the recovery keys stay. Needs sudo.")


def run_rotate(ctx: Context) -> int:
    """Add a keyring term (``sys/rotate``) or, with -root-key, rotate the root key."""
    ctx.expect_args(0, 0)
    client = ctx.client()
    root = ctx.flags.boolean("root-key")
    try:
        client.put("sys/rotate/root" if root else "sys/rotate")
    except ClientError as exc:
        return ctx.fail("Error rotating root key" if root else "Error rotating key", exc)
    try:
        status = client.get("sys/key-status") or {}
    except ClientError as exc:
        return ctx.fail("Error reading key status", exc)
    doc = {"term": status.get("term", 0), "install_time": status.get("install_time", ""),
           "encryptions": status.get("encryptions", 0)}
    if ctx.output_format() == "table":
        ctx.out("Success! Rotated root key" if root else "Success! Rotated key")
        ctx.out("")
    return ctx.emit(doc, [("Key Term", doc["term"]), ("Install Time", doc["install_time"]),
                          ("Encryption Count", doc["encryptions"])], what="key status")


_REKEY_HELP = """
Usage: strongroom operator rekey [options] [KEY]

  Generates a new set of unseal keys (or, with -target=recovery, recovery keys).
  This can change the number of key shares and the threshold. It is zero
  downtime, but the server must be unsealed and a quorum of the current keys
  must be provided. On an auto-sealed server, rekeying the barrier with the
  recovery keys makes a new root key, stored by the seal, and returns no shares.

  Start a rekey, enter the current keys (each key holder runs the second line):

      $ strongroom operator rekey -init -key-shares=5 -key-threshold=3
      $ strongroom operator rekey

  With verification, the new keys take effect only once entered again:

      $ strongroom operator rekey -init -verify
      $ strongroom operator rekey -verify -nonce=NONCE NEW_KEY

  Encrypt the new keys to PGP keys and keep a backup (read it with a token):

      $ strongroom operator rekey -init -key-shares=2 -key-threshold=2 \\
          -pgp-keys=alice.gpg,bob.gpg -backup
      $ strongroom operator rekey -backup-retrieve
      $ strongroom operator rekey -backup-delete
"""

_ROTATE_HELP = """
Usage: strongroom operator rotate [options]

  Rotates the encryption key that protects data in the storage backend: a
  new term is added to the keyring; older terms still decrypt older data.
  With -root-key, the root key that protects the keyring is rotated instead
  (sys/rotate/root; auto-seal: stored wrapped by the seal). Online, per
  cluster. Requires a token with sudo on sys/rotate (or sys/rotate/root).

      $ strongroom operator rotate
      $ strongroom operator rotate -root-key
"""

COMMANDS: tuple[Command, ...] = (
    Command("operator rekey", "Generates new unseal keys", _REKEY_HELP, run_rekey,
            _rekey_flags),
    Command("operator rotate", "Rotates the underlying encryption key", _ROTATE_HELP,
            run_rotate, _rotate_flags),
)
