"""The Shamir seal: the root key is split into shares the operator keeps; nothing is stored.

One share (``secret_shares = 1``) is the root key itself, as in Vault. The split
and combine arithmetic is seal/shamir.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.errors import BadRequestError
from strongroom.seal import shamir
from strongroom.seal.base import Protected, SealConfig, SealedRootKey, SealHealth

SHAMIR = "shamir"


def validate_shares(shares: int, threshold: int) -> None:
    """Vault's rules, with Vault's messages, for secret_shares/secret_threshold."""
    prefix = "invalid seal configuration: "
    if shares < 1:
        raise BadRequestError(prefix + "shares must be at least one")
    if threshold < 1:
        raise BadRequestError(prefix + "threshold must be at least one")
    if shares > 1 and threshold == 1:
        raise BadRequestError(prefix + "threshold must be greater than one for multiple shares")
    if shares > 255:
        raise BadRequestError(prefix + "shares must be less than 256")
    if threshold > shares:
        raise BadRequestError(prefix + "threshold cannot be larger than shares")


class ShamirSeal:
    """Implements seal/base.py's ``Seal`` with Shamir's secret sharing."""

    @property
    def type(self) -> str:
        return SHAMIR

    @property
    def auto_unseal(self) -> bool:
        return False

    def validate_config(self, config: SealConfig) -> None:
        validate_shares(config.secret_shares, config.secret_threshold)

    def protect(self, root_key: bytearray, config: SealConfig) -> Protected:
        if config.secret_shares == 1:
            return Protected(shares=[bytearray(root_key)])
        return Protected(shares=shamir.split(root_key, config.secret_shares,
                                             config.secret_threshold))

    def recover(self, shares: Sequence[bytearray], stored: SealedRootKey | None,
                config: SealConfig) -> bytearray:
        if not shares:
            raise BadRequestError("failed to compute root key: no shares")
        if config.secret_threshold == 1:
            return bytearray(shares[0])
        try:
            return shamir.combine(shares)
        except ValueError as exc:
            raise BadRequestError(f"failed to compute root key: {exc}") from None

    def health(self) -> SealHealth:
        return SealHealth()
