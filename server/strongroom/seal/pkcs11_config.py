"""What one PKCS#11 partition is: a ``seal "pkcs11"`` stanza resolved with the environment.

Vault's rule: an environment variable (``VAULT_HSM_LIB``, ``VAULT_HSM_PIN``, ...) takes
precedence over the stanza's option. With Seal HA (``enable_multiseal = true``) each seal
reads its own variables, suffixed with ``_`` and the seal's name (``VAULT_HSM_PIN_hsm-a``;
the name upper-cased with ``-``/``.`` as ``_`` is accepted too, ``VAULT_HSM_PIN_HSM_A``,
since shells and systemd EnvironmentFiles want plain identifiers).

The PIN comes from the environment, the ``pin`` option, or Strongroom's ``pin_file``
option (a file holding only the PIN, not readable by others). It is kept out of every
``repr`` and message; :func:`scrub_environment` removes the PIN variables from this
process's environment once read, so the gunicorn workers forked later do not inherit them.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from strongroom.config import ConfigError, SealConfig, ServerConfig, parse_bool

ENV_PREFIX = "VAULT_HSM_"
# Option -> Vault's environment variable (without the Seal HA suffix).
ENV_VARS = {
    "lib": "VAULT_HSM_LIB",
    "slot": "VAULT_HSM_SLOT",
    "token_label": "VAULT_HSM_TOKEN_LABEL",
    "pin": "VAULT_HSM_PIN",
    "key_label": "VAULT_HSM_KEY_LABEL",
    "key_id": "VAULT_HSM_KEY_ID",
    "hmac_key_label": "VAULT_HSM_HMAC_KEY_LABEL",
    "hmac_key_id": "VAULT_HSM_HMAC_KEY_ID",
    "mechanism": "VAULT_HSM_MECHANISM",
    "hmac_mechanism": "VAULT_HSM_HMAC_MECHANISM",
    "generate_key": "VAULT_HSM_GENERATE_KEY",
}
CKM_AES_GCM = 0x1087
# Names Vault/OpenBao accept for the one mechanism Strongroom implements (an AEAD: no
# separate HMAC key is needed, so hmac_* options are accepted and not used).
_MECHANISM_NAMES = {"CKM_AES_GCM": CKM_AES_GCM, "AES_GCM": CKM_AES_GCM}
_KNOWN_UNSUPPORTED = {0x0001: "CKM_RSA_PKCS", 0x0009: "CKM_RSA_PKCS_OAEP",
                      0x1085: "CKM_AES_CBC_PAD", 0x1082: "CKM_AES_CBC"}
_HEX_ID_RE = re.compile(r"^(0x)?[0-9a-fA-F]+$")


@dataclass(frozen=True)
class PartitionConfig:
    """One HSM partition (token) holding the seal's AES key."""

    name: str
    priority: int
    lib: str
    key_label: str
    slot: int | None = None
    token_label: str | None = None
    key_id: bytes | None = None
    mechanism: int = CKM_AES_GCM
    generate_key: bool = False
    pin: str = field(default="", repr=False, compare=False)

    @property
    def token(self) -> str:
        """How the token is named in key ids and messages (its label, else its slot)."""
        return self.token_label if self.token_label is not None else f"slot {self.slot}"

    @property
    def seal_key_id(self) -> str:
        """Which HSM key a stored wrap belongs to (``WrappedRootKey.key_id``)."""
        return f"{self.token}/{self.key_label}"


def parse_mechanism(text: str, where: str) -> int:
    """Vault's ``mechanism``: a name, or a decimal or ``0x`` hexadecimal CKM number."""
    value = text.strip()
    number = _MECHANISM_NAMES.get(value.upper())
    if number is None:
        try:
            number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise ConfigError(f"mechanism {text!r} is not a CKM name or number "
                              "(use CKM_AES_GCM or 0x1087)", key=where) from None
    if number != CKM_AES_GCM:
        name = _KNOWN_UNSUPPORTED.get(number, f"0x{number:x}")
        raise ConfigError(f"mechanism {name} is not supported: Strongroom encrypts with "
                          "CKM_AES_GCM (0x1087) only", key=where)
    return number


def _suffixes(name: str) -> list[str]:
    plain = "_" + name
    upper = "_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    return [plain] if plain == upper else [plain, upper]


def _lookup(stanza: SealConfig, option: str, env: Mapping[str, str],
            multiseal: bool) -> str | None:
    """The option's value: the environment first (Vault's precedence), then the stanza."""
    var = ENV_VARS.get(option)
    if var is not None:
        for suffix in _suffixes(stanza.name) if multiseal else [""]:
            value = env.get(var + suffix)
            if value:
                return value
    value = stanza.options.get(option)
    return value if value else None


def _read_pin_file(path: str, where: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot read pin_file {path}: {exc.strerror}", key=where) from None
    try:
        info = os.fstat(fd)
        if info.st_mode & stat.S_IROTH:
            raise ConfigError(f"pin_file {path} is readable by every user: chmod o-r it",
                              key=where)
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        pin = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"pin_file {path} is not UTF-8 text", key=where) from None
    if not pin:
        raise ConfigError(f"pin_file {path} is empty", key=where)
    return pin


def resolve(stanza: SealConfig, env: Mapping[str, str],
            multiseal: bool = False) -> PartitionConfig:
    """One ``seal "pkcs11"`` stanza with its environment, checked.

    Raises:
        ConfigError: a required value is missing or malformed (never quoting the PIN).
    """
    where = f"seal.pkcs11 ({stanza.name})" if multiseal else "seal.pkcs11"

    def get(option: str) -> str | None:
        return _lookup(stanza, option, env, multiseal)

    lib = get("lib")
    if lib is None:
        raise ConfigError("lib is required: the PKCS#11 library's path (or "
                          f"{_env_name('VAULT_HSM_LIB', stanza, multiseal)})", key=where)
    slot_text, token_label = get("slot"), get("token_label")
    if slot_text is None and token_label is None:
        raise ConfigError("slot or token_label is required", key=where)
    slot = None
    if slot_text is not None:
        if not slot_text.strip().isdigit():
            raise ConfigError(f"slot must be a decimal slot number, got {slot_text!r}",
                              key=where)
        slot = int(slot_text)
    key_label = get("key_label")
    if key_label is None:
        raise ConfigError("key_label is required: the label of the HSM's AES key", key=where)
    key_id = None
    if (key_id_text := get("key_id")) is not None:
        if not _HEX_ID_RE.match(key_id_text) or len(key_id_text.removeprefix("0x")) % 2:
            raise ConfigError(f"key_id must be hexadecimal bytes (e.g. 0x3031), got "
                              f"{key_id_text!r}", key=where)
        key_id = bytes.fromhex(key_id_text.removeprefix("0x"))
    mechanism = CKM_AES_GCM
    if (mechanism_text := get("mechanism")) is not None:
        mechanism = parse_mechanism(mechanism_text, where)
    generate = get("generate_key")
    try:
        generate_key = parse_bool(generate) if generate is not None else False
    except ConfigError:
        raise ConfigError(f"generate_key must be true or false, got {generate!r}",
                          key=where) from None
    pin = _pin(stanza, env, multiseal, where)
    return PartitionConfig(name=stanza.name, priority=stanza.priority, lib=lib, slot=slot,
                           token_label=token_label, key_label=key_label, key_id=key_id,
                           mechanism=mechanism, generate_key=generate_key, pin=pin)


def _env_name(var: str, stanza: SealConfig, multiseal: bool) -> str:
    return var + (_suffixes(stanza.name)[0] if multiseal else "")


def _pin(stanza: SealConfig, env: Mapping[str, str], multiseal: bool, where: str) -> str:
    from_env = _lookup(SealConfig(stanza.type, {"name": stanza.name}), "pin", env, multiseal)
    if from_env is not None:
        return from_env
    inline, pin_file = stanza.options.get("pin"), stanza.options.get("pin_file")
    if inline and pin_file:
        raise ConfigError("pin and pin_file are exclusive: set one", key=where)
    if pin_file:
        return _read_pin_file(pin_file, where)
    if inline:
        return inline
    raise ConfigError("a PIN is required: set "
                      f"{_env_name('VAULT_HSM_PIN', stanza, multiseal)} or pin_file",
                      key=where)


def resolve_all(config: ServerConfig, env: Mapping[str, str]) -> tuple[
        list[PartitionConfig], list[PartitionConfig]]:
    """The enabled pkcs11 partitions (by priority) and the disabled one(s)."""
    enabled: list[PartitionConfig] = []
    disabled: list[PartitionConfig] = []
    for stanza in config.seals:
        if stanza.type != "pkcs11":
            continue
        partition = resolve(stanza, env, config.enable_multiseal)
        (disabled if stanza.disabled else enabled).append(partition)
    for group in (enabled, disabled):
        ids = [p.seal_key_id for p in group]
        for key_id in ids:
            if ids.count(key_id) > 1:
                raise ConfigError(f"two seals use the same token and key ({key_id}): each "
                                  "partition must be a different token", key="seal")
    return enabled, disabled


def scrub_environment(environ: MutableMapping[str, str] | None = None,
                      names: Sequence[str] = ()) -> None:
    """Remove the PIN variables (``VAULT_HSM_PIN`` and its Seal HA forms) from the
    environment: read once, they must not reach forked workers or child processes.

    Deleting from ``os.environ`` only unlinks them (children exec'd later do not get
    them); the process's original environment block, which ``/proc/PID/environ`` shows
    and forked workers copy, still holds the text, so it is zeroed in place too."""
    target = os.environ if environ is None else environ
    removed = []
    for key in list(target):
        if key == "VAULT_HSM_PIN" or key.startswith("VAULT_HSM_PIN_") or key in names:
            removed.append(key)
            del target[key]
    if environ is None and removed:
        _zero_initial_environment(removed)


def _zero_initial_environment(keys: Sequence[str]) -> None:
    """Zero ``KEY=value`` entries in this process's initial environment block (Linux:
    the memory between /proc/self/stat's env_start and env_end). Best effort."""
    try:
        import ctypes

        with open("/proc/self/stat", "rb") as stat_file:
            fields = stat_file.read().rsplit(b")", 1)[1].split()
        # Fields 50 and 51 of proc(5) (env_start, env_end); the split starts at field 3.
        env_start, env_end = int(fields[47]), int(fields[48])
        with open("/proc/self/environ", "rb") as env_file:
            block = env_file.read()
        if len(block) > env_end - env_start:
            return
        offset = 0
        for entry in block.split(b"\0"):
            name = entry.partition(b"=")[0].decode("utf-8", "replace")
            if name in keys:
                ctypes.memset(env_start + offset, 0, len(entry))
            offset += len(entry) + 1
    except (OSError, ValueError, IndexError, AttributeError):
        return
