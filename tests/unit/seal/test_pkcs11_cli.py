"""``strongroom hsm generate-key|copy-key|lock-key|status`` on real SoftHSM tokens, run as
the operator runs them (a child process; PINs from the environment or a file).

The copy is proven the way it matters: the root key wrapped by token 1's key only is
opened by token 2 once token 1 is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import PartitionConfig
from tests.support.servers import strongroom_env
from tests.support.softhsm import SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)

PIN_1 = "11-first-token-pin"
PIN_2 = "22-second-token-pin"
ROOT = bytearray(os.urandom(32))


def hsm(softhsm: SoftHsm, *args: str, pin: str | None = PIN_1) -> subprocess.CompletedProcess[str]:
    env = {**strongroom_env(), **softhsm.env, "VAULT_HSM_LIB": softhsm.lib,
           "VAULT_HSM_KEY_LABEL": "strongroom-root"}
    env.pop("VAULT_HSM_PIN", None)
    if pin is not None:
        env["VAULT_HSM_PIN"] = pin
    return subprocess.run([sys.executable, "-m", "strongroom.cli.main", "hsm", *args],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def partition(softhsm: SoftHsm, label: str, pin: str, priority: int = 1) -> PartitionConfig:
    return PartitionConfig(name=label, priority=priority, lib=softhsm.lib, token_label=label,
                           key_label="strongroom-root", pin=pin)


@pytest.fixture
def tokens(softhsm: SoftHsm, tmp_path: Path) -> Path:
    softhsm.init_token("tok-1", pin=PIN_1)
    softhsm.init_token("tok-2", pin=PIN_2)
    pin_file = tmp_path / "pin-2"
    pin_file.write_text(PIN_2 + "\n")
    pin_file.chmod(0o600)
    return pin_file


def test_generate_copy_then_token_1_deleted_token_2_unseals(
        softhsm: SoftHsm, tokens: Path) -> None:
    made = hsm(softhsm, "generate-key", "-token-label=tok-1")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == ("Success! Generated AES-256 key 'strongroom-root' in "
                                   "token tok-1")
    again = hsm(softhsm, "generate-key", "-token-label=tok-1")
    assert (again.returncode, again.stderr.strip()) == (
        2, "Error: key 'strongroom-root' already exists in token tok-1: nothing done")

    # The root key wrapped by token 1's key alone (the node's state before the copy).
    stored = Pkcs11Seal([partition(softhsm, "tok-1", PIN_1)]).wrap(ROOT)
    assert [w.key_id for w in stored.wrapped] == ["tok-1/strongroom-root"]

    copied = hsm(softhsm, "copy-key", "-token-label=tok-1", "-to-token-label=tok-2",
                 f"-to-pin-file={tokens}")
    assert copied.returncode == 0, copied.stderr
    assert "under wrap" in copied.stdout
    twice = hsm(softhsm, "copy-key", "-token-label=tok-1", "-to-token-label=tok-2",
                f"-to-pin-file={tokens}")
    assert twice.returncode == 2 and "already holds" in twice.stderr

    status = hsm(softhsm, "status", "-token-label=tok-2", f"-pin-file={tokens}",
                 "-format=json", pin=None)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["present"], report["usable"], report["sensitive"]) == (True, True, True)

    softhsm.delete_token("tok-1")
    seal = Pkcs11Seal([partition(softhsm, "tok-1", PIN_1),
                       partition(softhsm, "tok-2", PIN_2, 2)])
    assert seal.unwrap(stored) == ROOT
    assert [b.healthy for b in seal.health().backends] == [False, True]
    for run in (made, again, copied, twice, status):
        assert PIN_1 not in run.stdout + run.stderr and PIN_2 not in run.stdout + run.stderr


def test_lock_key_makes_it_uncopyable(softhsm: SoftHsm, tokens: Path) -> None:
    assert hsm(softhsm, "generate-key", "-token-label=tok-1").returncode == 0
    locked = hsm(softhsm, "lock-key", "-token-label=tok-1")
    assert locked.returncode == 0, locked.stderr
    report = json.loads(hsm(softhsm, "status", "-token-label=tok-1", "-format=json").stdout)
    assert (report["usable"], report["extractable"]) == (True, False)
    refused = hsm(softhsm, "copy-key", "-token-label=tok-1", "-to-token-label=tok-2",
                  f"-to-pin-file={tokens}")
    assert refused.returncode == 2
    assert "is not extractable (locked): it cannot be copied" in refused.stderr
    assert hsm(softhsm, "lock-key", "-token-label=tok-1").returncode == 2


@pytest.mark.parametrize(("args", "pin", "code", "words"), [
    (["status", "-token-label=nope"], PIN_1, 2, "token nope not found"),
    (["status", "-token-label=tok-1"], "000000", 2, "the PIN was refused"),
    (["status", "-token-label=tok-1"], PIN_1, 2, "key 'strongroom-root' not found"),
    (["generate-key", "-token-label=tok-1"], None, 1, "a PIN is required"),
    (["generate-key"], PIN_1, 1, "slot or token_label is required"),
    (["copy-key", "-token-label=tok-1"], PIN_1, 1, "-to-token-label or -to-slot is required"),
    (["copy-key", "-token-label=tok-1", "-to-token-label=tok-1"], PIN_1, 2,
     "the source and destination are the same token"),
    (["generate-key", "-token-label=tok-1", "-pin-file=/nonexistent"], PIN_1, 1,
     "cannot read -pin-file /nonexistent"),
])
def test_refusals_and_usage_errors_are_one_clear_line(
        softhsm: SoftHsm, tokens: Path, args: list[str], pin: str | None, code: int,
        words: str) -> None:
    run = hsm(softhsm, *args, pin=pin)
    assert run.returncode == code, (run.stdout, run.stderr)
    assert words in run.stdout + run.stderr
    assert "000000" not in run.stdout + run.stderr and PIN_1 not in run.stdout + run.stderr
