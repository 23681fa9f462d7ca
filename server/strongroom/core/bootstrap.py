"""What a freshly initialized node contains: the root token and the default mounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from strongroom.barrier.view import StorageView
from strongroom.core.mounts import MountEntry, save_mount_table
from strongroom.core.policy_store import PolicyStore
from strongroom.core.tokens import TokenStore, root_token_entry
from strongroom.physical.base import Backend

TOKEN_STORE_PREFIX = "sys/token/"  # noqa: S105 - a storage prefix, not a secret


def default_mounts(dev: bool) -> list[MountEntry]:
    mounts = [
        MountEntry(
            path="cubbyhole/", type="cubbyhole", description="per-token private secret storage"
        ),
    ]
    if dev:
        mounts.append(
            MountEntry(
                path="secret/",
                type="kv",
                description="key/value secret storage",
                options={"version": "2"},
            )
        )
    return mounts


def make_bootstrapper(
    clock: Callable[[], datetime], dev: bool = False
) -> Callable[[Backend, str | None], str]:
    """A bootstrap callback for LocalCoordinator.initialize."""

    def bootstrap(barrier: Backend, root_token_id: str | None) -> str:
        save_mount_table(barrier, default_mounts(dev))
        PolicyStore(barrier).ensure_default()
        tokens = TokenStore(StorageView(barrier, TOKEN_STORE_PREFIX))
        try:
            return tokens.create(root_token_entry(clock()), token_id=root_token_id)
        finally:
            tokens.forget()  # the salt it made: the master keeps no copy (issue #9)

    return bootstrap


def make_root_token_maker(clock: Callable[[], datetime]) -> Callable[[Backend], str]:
    """Creates a root token as ``sys/init`` does (generate-root's new token)."""

    def make(barrier: Backend) -> str:
        tokens = TokenStore(StorageView(barrier, TOKEN_STORE_PREFIX))
        try:
            return tokens.create(root_token_entry(clock()))
        finally:
            tokens.forget()

    return make
