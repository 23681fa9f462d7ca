"""Real SoftHSM tokens for tests: a private token directory and ``SOFTHSM2_CONF`` per test.

Never the system token directory. ``requires()`` skips locally when SoftHSM is absent
and fails under ``CI=true`` (tests/support/requires.py). A token is "deleted" by moving
its directory away (as an operator losing a partition would), and can be restored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import requires

LIB_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so",
                  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")
HINT = "apt-get install softhsm2 opensc (scripts/test.sh does)"
USER_PIN = "4711-user"
SO_PIN = "0815-so"


def requires_softhsm() -> tuple[str, str]:
    """(the SoftHSM PKCS#11 library, softhsm2-util); skip locally / fail under CI."""
    util = requires.binary("softhsm2-util", HINT)
    requires.module("pkcs11", "pip install python-pkcs11")
    for lib in LIB_CANDIDATES:
        if os.path.exists(lib):
            return lib, util
    requires.missing("libsofthsm2.so", HINT)


@dataclass
class SoftHsm:
    """A token directory with its own configuration file."""

    root: Path
    lib: str
    util: str
    labels: list[str] = field(default_factory=list)
    dirs: dict[str, str] = field(default_factory=dict)  # label -> token directory name

    @property
    def conf(self) -> Path:
        return self.root / "softhsm2.conf"

    @property
    def tokendir(self) -> Path:
        return self.root / "tokens"

    @property
    def env(self) -> dict[str, str]:
        """What a child process needs to see these tokens."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label: str, pin: str = USER_PIN, so_pin: str = SO_PIN) -> None:
        before = {entry.name for entry in self.tokendir.iterdir()}
        subprocess.run([self.util, "--init-token", "--free", "--label", label,
                        "--pin", pin, "--so-pin", so_pin],
                       env={**os.environ, **self.env}, check=True, capture_output=True)
        (made,) = {entry.name for entry in self.tokendir.iterdir()} - before
        self.dirs[label] = made
        self.labels.append(label)

    def token_dir(self, label: str) -> Path:
        """The directory holding ``label``'s objects (SoftHSM names it by a UUID, seen
        appearing when the token was made)."""
        return self.tokendir / self.dirs[label]

    def delete_token(self, label: str) -> Path:
        """Move the token away (it is gone for SoftHSM); returns where it went."""
        source = self.token_dir(label)
        target = self.root / "removed" / source.name
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(source), str(target))
        return target

    def restore_token(self, moved: Path) -> None:
        shutil.move(str(moved), str(self.tokendir / moved.name))


def make_softhsm(root: Path) -> SoftHsm:
    lib, util = requires_softhsm()
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokens").mkdir()
    (root / "softhsm2.conf").write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
    return SoftHsm(root, lib, util)


def private_softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """SoftHSM tokens private to this test, visible to this process too: the PKCS#11
    library (loaded once per process) re-initializes so it reads this configuration.
    A test module makes it a fixture: ``softhsm = pytest.fixture(private_softhsm)``."""
    from strongroom.seal import pkcs11_token

    hsm = make_softhsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    pkcs11_token.reload(hsm.lib)
    yield hsm
    pkcs11_token.reload(hsm.lib)
