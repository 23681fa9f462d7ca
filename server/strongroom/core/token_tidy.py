"""``auth/token/tidy``: remove what expired or dangles, in the owner's background.

Vault's handleTidy: the request only starts the work (202, or a warning when a tidy
is already under way) and the server log tells how it went. Here the request writes
a marker (``work/tidy``) that the node's owner picks up on the active node
(``TokenStore.background``, a job of node/background.py): no worker thread is
held, and a request made before a failover is carried out by the next active node.
A tidy cut short (a crash mid-way) is not resumed, as in Vault: ask again (every
step is idempotent). "Already in progress" means asked for and not yet started.

What it removes, as Vault's tidy does:
* tokens whose TTL ran out (revoked with their trees and leases: ``on_revoke``);
* tokens whose parent is gone (a deletion interrupted part-way, or a child created
  while its parent was being revoked);
* accessor index entries naming no token, and parent index entries naming no child.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.core.token_index import ACCESSOR_PREFIX, parse_index
from strongroom.physical.base import Backend

if TYPE_CHECKING:
    from strongroom.core.tokens import TokenEntry

log = logging.getLogger(__name__)

TIDY_MARKER = "work/tidy"
TIDY_STARTED = ("Tidy operation successfully started. Any information from the operation "
                "will be printed to Strongroom's server logs.")
TIDY_RUNNING = "Tidy operation already in progress."


@dataclass
class TidyCounts:
    expired: int = 0
    invalid_parent: int = 0
    dangling_accessors: int = 0
    dangling_children: int = 0


def request_tidy(storage: Backend, now: float) -> bool:
    """Ask the owner to tidy; False if a tidy is already asked for or running."""
    if storage.get(TIDY_MARKER) is not None:
        return False
    storage.put(TIDY_MARKER, str(now).encode())
    return True


def tidy(storage: Backend, read: Callable[[str], TokenEntry | None],
         revoke_tree: Callable[[TokenEntry], None], now: float) -> TidyCounts:
    """One pass over the whole token store (a maintenance operation: it reads it all)."""
    counts = TidyCounts()
    log.info("event=token_tidy_started")
    for token_hash in storage.list("id/"):
        entry = read(token_hash)
        if entry is None:
            continue  # revoked meanwhile, with a tree revoked earlier in this pass
        if entry.expire_at and entry.expire_at <= now:
            revoke_tree(entry)
            counts.expired += 1
        elif entry.parent_hash and read(entry.parent_hash) is None:
            revoke_tree(entry)
            counts.invalid_parent += 1
    for salted in storage.list(ACCESSOR_PREFIX):
        raw = storage.get(ACCESSOR_PREFIX + salted)
        if raw is None:
            continue
        token_hash, _accessor = parse_index(raw, lambda _h: "")
        if storage.get("id/" + token_hash) is None:
            storage.delete(ACCESSOR_PREFIX + salted)
            counts.dangling_accessors += 1
    for parent_dir in storage.list("parent/"):
        for child in storage.list("parent/" + parent_dir):
            if child.endswith("/"):
                continue
            if storage.get("id/" + child) is None:
                storage.delete(f"parent/{parent_dir}{child}")
                counts.dangling_children += 1
    log.info("event=token_tidy_finished expired=%d invalid_parent=%d dangling_accessors=%d "
             "dangling_children=%d", counts.expired, counts.invalid_parent,
             counts.dangling_accessors, counts.dangling_children)
    return counts
