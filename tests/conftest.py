"""Fixtures shared across the test directories."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gpg import GnuPG, GpgKey, gnupg_home, share_holders


@pytest.fixture(scope="module")
def gpg() -> Iterator[GnuPG]:
    """A throwaway GnuPG home (real gpg) for the module."""
    with gnupg_home() as home:
        yield home


@pytest.fixture(scope="module")
def holders(gpg: GnuPG) -> list[GpgKey]:
    """Three unseal-key holders with different key types, then the root token's holder."""
    return share_holders(gpg)
