"""Seal stanzas: Vault 1.16's Seal HA syntax, migration's disabled seal, VAULT_HSM_*
variables, pin_file, and clear errors for bad configurations (never quoting a PIN)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.config import ConfigError, parse_config
from strongroom.seal.factory import build_seals
from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import resolve_all, scrub_environment
from strongroom.seal.shamir_seal import ShamirSeal

BASE = 'storage "inmem" {}\nlistener "tcp" { address = "127.0.0.1:8200" tls_disable = true }\n'
LIB = "/usr/lib/softhsm/libsofthsm2.so"


def pkcs11(name: str = "", priority: str = "", extra: str = "") -> str:
    fields = [f'lib = "{LIB}"', 'token_label = "t-' + (name or "x") + '"',
              'key_label = "k"', 'pin = "1234"']
    if name:
        fields.append(f'name = "{name}"')
    if priority:
        fields.append(f'priority = "{priority}"')
    return 'seal "pkcs11" {\n  ' + "\n  ".join(fields) + f"\n  {extra}\n}}\n"


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + text)
    return err.value


def test_seal_ha_orders_by_priority_and_keeps_the_disabled_seal_last() -> None:
    cfg = parse_config(BASE + "enable_multiseal = true\n" + pkcs11("b", "2") + pkcs11("a", "1")
                       + 'seal "shamir" { disabled = "true" }\n')
    assert [(s.name, s.priority, s.disabled) for s in cfg.seals] == [
        ("a", 1, False), ("b", 2, False), ("shamir", 1, True)]
    assert cfg.seal is not None and cfg.seal.name == "a" and cfg.enable_multiseal
    current, old = build_seals(cfg, {})
    assert isinstance(current, Pkcs11Seal) and isinstance(old, ShamirSeal)
    assert [p.name for p in current.partitions] == ["a", "b"]
    assert [p.seal_key_id for p in current.partitions] == ["t-a/k", "t-b/k"]


def test_no_seal_is_shamir_and_a_disabled_pkcs11_is_the_old_seal() -> None:
    assert build_seals(parse_config(BASE), {})[1] is None
    assert isinstance(build_seals(parse_config(BASE), {})[0], ShamirSeal)
    cfg = parse_config(BASE + pkcs11(extra='disabled = "true"'))
    current, old = build_seals(cfg, {})
    assert isinstance(current, ShamirSeal) and isinstance(old, Pkcs11Seal)


@pytest.mark.parametrize(("text", "key", "words"), [
    (pkcs11("a", "1") + pkcs11("b", "2"), "seal", "enable_multiseal = true"),
    ("enable_multiseal = true\n" + pkcs11("a", "1") + pkcs11("a", "2"), "seal",
     "two seals are named 'a'"),
    ("enable_multiseal = true\n" + pkcs11("", "1").replace('"t-x"', '"t1"') + pkcs11("", "2"),
     "seal", "two seals are named 'pkcs11'"),
    ("enable_multiseal = true\n" + pkcs11("a", "1") + pkcs11("b"), "seal.pkcs11",
     "priority is required"),
    ("enable_multiseal = true\n" + pkcs11("a", "1") + pkcs11("b", "1"), "seal",
     "same priority"),
    (pkcs11("a", "0"), "seal.pkcs11.priority", "positive integer"),
    (pkcs11("a", "first"), "seal.pkcs11.priority", "positive integer"),
    (pkcs11("a b"), "seal.pkcs11.name", "letters, digits"),
    ('seal "shamir" {}\n', "seal.shamir", 'disabled = "true"'),
    (pkcs11(extra='disabled = "true"') + 'seal "shamir" { disabled = "true" }\n', "seal",
     "only one seal may be disabled"),
    ('seal "awskms" {}\n', "seal", "unsupported type"),
    (pkcs11(extra='pinfile = "/x"'), "seal.pkcs11.pinfile", "unknown option"),
])
def test_bad_seal_stanzas_are_refused_clearly(text: str, key: str, words: str) -> None:
    err = error(text)
    assert err.key == key and words in err.reason, str(err)


@pytest.mark.parametrize(("body", "words"), [
    ('token_label = "t"\nkey_label = "k"\npin = "x"', "lib is required"),
    (f'lib = "{LIB}"\nkey_label = "k"\npin = "x"', "slot or token_label is required"),
    (f'lib = "{LIB}"\ntoken_label = "t"\npin = "x"', "key_label is required"),
    (f'lib = "{LIB}"\ntoken_label = "t"\nkey_label = "k"', "a PIN is required: set "
     "VAULT_HSM_PIN or pin_file"),
    (f'lib = "{LIB}"\nslot = "zero"\nkey_label = "k"\npin = "x"', "slot must be a decimal"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin = "x"\nkey_id = "0xZZ"',
     "key_id must be hexadecimal"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin = "x"\nmechanism = "0x0001"',
     "CKM_RSA_PKCS is not supported"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin = "x"\nmechanism = "fast"',
     "not a CKM name or number"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin = "x"\ngenerate_key = "yes"',
     "generate_key must be true or false"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin = "x"\npin_file = "/p"',
     "pin and pin_file are exclusive"),
    (f'lib = "{LIB}"\nslot = 0\nkey_label = "k"\npin_file = "/nonexistent/pin"',
     "cannot read pin_file /nonexistent/pin"),
])
def test_incomplete_pkcs11_stanzas_fail_when_the_seal_is_built(body: str, words: str) -> None:
    cfg = parse_config(BASE + 'seal "pkcs11" {\n' + body + "\n}\n")
    with pytest.raises(ConfigError) as err:
        build_seals(cfg, {})
    assert words in str(err.value) and err.value.key == "seal.pkcs11"


def test_two_partitions_on_one_token_and_key_are_refused() -> None:
    same = pkcs11("a", "1") + pkcs11("b", "2").replace('"t-b"', '"t-a"')
    with pytest.raises(ConfigError, match="same token and key"):
        build_seals(parse_config(BASE + "enable_multiseal = true\n" + same), {})


def test_environment_takes_precedence_with_the_seal_ha_suffix() -> None:
    bare = ('seal "pkcs11" {\n name = "hsm-a"\n priority = "1"\n}\n'
            'seal "pkcs11" {\n name = "hsm-b"\n priority = "2"\n key_label = "file-k"\n}\n')
    cfg = parse_config(BASE + "enable_multiseal = true\n" + bare)
    env = {"VAULT_HSM_LIB_hsm-a": "/a.so", "VAULT_HSM_TOKEN_LABEL_hsm-a": "ta",
           "VAULT_HSM_KEY_LABEL_hsm-a": "ka", "VAULT_HSM_PIN_hsm-a": "pa",
           # The upper-case form (shell- and systemd-friendly) works too.
           "VAULT_HSM_LIB_HSM_B": "/b.so", "VAULT_HSM_SLOT_HSM_B": "7",
           "VAULT_HSM_KEY_LABEL_HSM_B": "env-k", "VAULT_HSM_PIN_HSM_B": "pb",
           "VAULT_HSM_GENERATE_KEY_HSM_B": "true", "VAULT_HSM_MECHANISM_HSM_B": "0x1087",
           # Unsuffixed variables do not apply to Seal HA seals.
           "VAULT_HSM_PIN": "shared"}
    enabled, disabled = resolve_all(cfg, env)
    a, b = enabled
    assert (a.lib, a.token_label, a.key_label, a.pin) == ("/a.so", "ta", "ka", "pa")
    assert (b.lib, b.slot, b.key_label, b.pin, b.generate_key) == ("/b.so", 7, "env-k", "pb",
                                                                   True)
    assert disabled == []


def test_single_seal_reads_unsuffixed_variables(tmp_path: Path) -> None:
    cfg = parse_config(BASE + 'seal "pkcs11" {\n key_label = "k"\n pin = "inline"\n}\n')
    (p,), _ = resolve_all(cfg, {"VAULT_HSM_LIB": "/l.so", "VAULT_HSM_SLOT": "3",
                                "VAULT_HSM_PIN": "from-env"})
    assert (p.lib, p.slot, p.pin, p.token) == ("/l.so", 3, "from-env", "slot 3")


def test_pin_file_is_read_and_must_not_be_world_readable(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\n")
    pin_file.chmod(0o640)
    text = f'seal "pkcs11" {{\n lib = "{LIB}"\n slot = 0\n key_label = "k"\n'
    cfg = parse_config(BASE + text + f' pin_file = "{pin_file}"\n}}\n')
    (p,), _ = resolve_all(cfg, {})
    assert p.pin == "s3cret-pin" and "s3cret" not in repr(p)
    pin_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by every user") as err:
        resolve_all(cfg, {})
    assert "s3cret" not in str(err.value)
    pin_file.write_text("")
    pin_file.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        resolve_all(cfg, {})


def test_scrub_removes_every_pin_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"VAULT_HSM_PIN": "1", "VAULT_HSM_PIN_hsm-a": "2", "VAULT_HSM_LIB": "/l.so"}
    scrub_environment(env)
    assert env == {"VAULT_HSM_LIB": "/l.so"}
    monkeypatch.setenv("VAULT_HSM_PIN_X", "3")
    scrub_environment()
    assert "VAULT_HSM_PIN_X" not in os.environ


def test_every_configurable_seal_type_is_registered() -> None:
    from strongroom import registry
    from strongroom.config import SEAL_OPTIONS

    assert set(registry.SEALS) == set(SEAL_OPTIONS)
