"""Real GnuPG keyholders for the PGP-init tests: generate keys, export, decrypt.

Every keyring lives in its own short-lived GNUPGHOME. Its path is kept short
on purpose: gpg-agent puts its socket there, and a pytest tmp_path can exceed
the 108-byte limit of a Unix socket path.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import requires

# gpg --batch --generate-key parameters per key type (RFC 4880 v4 keys, no passphrase).
KEY_TYPES = {
    "rsa": "Key-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\n",
    "cv25519": ("Key-Type: EDDSA\nKey-Curve: ed25519\n"
                "Subkey-Type: ECDH\nSubkey-Curve: cv25519\n"),
    "nistp256": ("Key-Type: ECDSA\nKey-Curve: nistp256\n"
                 "Subkey-Type: ECDH\nSubkey-Curve: nistp256\n"),
}


@dataclass(frozen=True)
class GpgKey:
    email: str
    fingerprint: str
    public: bytes  # binary, as `gpg --export` writes it

    @property
    def b64(self) -> str:
        """What the sys/init API takes: base64 of the binary public key."""
        return base64.b64encode(self.public).decode()


class GnuPG:
    """One GnuPG home directory, driven through the real ``gpg`` binary."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def run(self, *args: str, stdin: bytes = b"") -> bytes:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        proc = subprocess.run(
            ["gpg", "--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback",
             "--passphrase", "", *args],
            input=stdin, capture_output=True, env=env, timeout=120, check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout

    def generate(self, name: str, key_type: str = "cv25519") -> GpgKey:
        email = f"{name}@strongroom.test"
        params = (KEY_TYPES[key_type] + f"Name-Real: {name}\nName-Email: {email}\n"
                  "Expire-Date: 0\n%no-protection\n%commit\n")
        self.run("--generate-key", stdin=params.encode())
        listing = self.run("--with-colons", "--list-keys", email).decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines()
                           if line.startswith("fpr:"))
        return GpgKey(email, fingerprint, self.run("--export", fingerprint))

    def export_armored(self, key: GpgKey) -> bytes:
        return self.run("--armor", "--export", key.fingerprint)

    def decrypt(self, message: bytes) -> str:
        """``gpg --decrypt`` of a binary OpenPGP message, as text."""
        return self.run("--decrypt", stdin=message).decode()

    def decrypt_b64(self, message_b64: str) -> str:
        """The documented recipe: ``echo KEY | base64 -d | gpg -dq``."""
        return self.decrypt(base64.b64decode(message_b64))


@contextmanager
def gnupg_home() -> Iterator[GnuPG]:
    """A fresh keyring; its gpg-agent is stopped and the directory removed on exit."""
    if shutil.which("gpg") is None:
        requires.missing("gpg", "Debian package gnupg")
    home = Path(tempfile.mkdtemp(prefix="sr-gpg-", dir="/tmp"))
    home.chmod(0o700)
    try:
        yield GnuPG(home)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={
            **os.environ, "GNUPGHOME": str(home)}, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def share_holders(gpg: GnuPG) -> list[GpgKey]:
    """Three unseal-key holders with different key types, then the root token's holder."""
    return [gpg.generate("alice", "rsa"), gpg.generate("bob", "cv25519"),
            gpg.generate("carol", "nistp256"), gpg.generate("ops", "cv25519")]
