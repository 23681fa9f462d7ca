"""The node's seals, from its configuration.

``build_seals(config)`` returns the current seal (the enabled ``seal "pkcs11"`` stanzas as
one Seal HA seal, their partitions by priority; Shamir when none is enabled) and the
disabled one a seal migration moves away from (``disabled = "true"``), or None.

Nothing here touches an HSM: the PKCS#11 libraries load on first use, in the owner
process (seal/pkcs11_token.py). Building reads the PIN (environment or ``pin_file``),
so it happens before the owner forks, and :func:`build_seals` then removes the PIN
variables from the environment (``scrub``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from strongroom.config import ServerConfig
from strongroom.seal.base import Seal
from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import resolve_all, scrub_environment
from strongroom.seal.shamir_seal import ShamirSeal

__all__ = ["build_seals"]


def build_seals(config: ServerConfig, env: Mapping[str, str] | None = None, *,
                scrub: bool = False) -> tuple[Seal, Seal | None]:
    """(current seal, disabled seal or None) for ``config``.

    Args:
        config: The server configuration (its ``seals``).
        env: Where the ``VAULT_HSM_*`` variables come from (default: ``os.environ``).
        scrub: Remove the PIN variables from ``os.environ`` once read (the server does,
            before forking its workers).

    Raises:
        ConfigError: a pkcs11 stanza misses a value (lib, slot or token_label,
            key_label, PIN) or has a bad one; the message never holds the PIN.
    """
    enabled, disabled = resolve_all(config, os.environ if env is None else env)
    if scrub:
        scrub_environment()
    current: Seal = Pkcs11Seal(enabled) if enabled else ShamirSeal()
    old: Seal | None = None
    if disabled:
        old = Pkcs11Seal(disabled)
    elif any(s.disabled and s.type == "shamir" for s in config.seals):
        old = ShamirSeal()
    return current, old
