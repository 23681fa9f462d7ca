"""Persisting the node's encryption count, and rotating the barrier key past Vault's limit.

Facts from OpenBao (``internal/vault/barrier/keyring.go``, ``aes_gcm.go``, ``core.go``):
the active key term is rotated automatically once its encryptions exceed
``AbsoluteOperationMaximum`` = 3,865,470,566 (10% short of NIST's 2^32 limit for
AES-GCM with random nonces), checked every ``AutoRotateCheckInterval`` (5 minutes);
the count is persisted with the active key, counting the persisting write itself;
a key with no persisted count installed more than a year ago is rotated too (it
predates counting); after a rotation the count starts again at 0 for the new term.

Here the count of the active term is checkpointed into an entry of its own beside
the keyring, written through the barrier by the owner only (a standby never writes):
``{"term": T, "encryptions": N}``. A count stored for an older term is a count for a
key no longer in use: the active term's count is then 0.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.barrier.counter import EncryptionCounter

log = logging.getLogger(__name__)

ENCRYPTIONS_PATH = "core/keyring-encryptions"
ABSOLUTE_OPERATION_MAXIMUM = 3_865_470_566
# How often the owner's background work should call LocalCoordinator.checkpoint_encryptions.
CHECK_INTERVAL = 300.0
LEGACY_ROTATE_AGE = timedelta(days=365)
REASON_MAX_OPERATIONS = "reached max operations"
REASON_LEGACY = "legacy key with no encryption count older than a year"


class StaleKeyringError(Exception):
    """Storage holds a count for a newer term than this node's keyring (another node
    rotated): this node must not write its count over it."""


def stored_count(barrier: AESGCMBarrier, term: int) -> int | None:
    """The checkpointed count of ``term``; None when none was stored for it.

    Raises:
        StaleKeyringError: the stored count is for a newer term.
    """
    raw = barrier.get(ENCRYPTIONS_PATH)
    if raw is None:
        return None
    doc = json.loads(raw)
    stored_term = int(doc["term"])
    if stored_term > term:
        raise StaleKeyringError(f"stored term {stored_term} is newer than {term}")
    return int(doc["encryptions"]) if stored_term == term else None


def load(barrier: AESGCMBarrier, counter: EncryptionCounter) -> None:
    """At unseal: the count continues from the checkpoint of the active term."""
    try:
        count = stored_count(barrier, barrier.keyring.active_term)
    except StaleKeyringError:
        count = None
    counter.reset(count or 0)


def checkpoint(barrier: AESGCMBarrier, counter: EncryptionCounter, max_operations: int,
               now: datetime) -> str | None:
    """Persist the count of the active term, unless the key must be rotated first.

    Returns:
        Why the active key must be rotated now (the caller rotates), or None.
    """
    ring = barrier.keyring
    try:
        stored = stored_count(barrier, ring.active_term)
    except StaleKeyringError:
        log.warning("event=encryption_checkpoint_skipped reason=stale_keyring")
        return None
    _, unaccounted = counter.read()
    total = (stored or 0) + unaccounted
    if total > max_operations:
        return REASON_MAX_OPERATIONS
    if stored is None and now - ring.active.install_time > LEGACY_ROTATE_AGE:
        return REASON_LEGACY
    if unaccounted == 0:
        counter.settle(total, 0)  # nothing to write (no activity); refresh a standby's base
        return None
    # The write below is an encryption too: counted in what it stores, and it adds
    # one to ``unaccounted`` that ``settle`` takes back out.
    persisted = total + 1
    barrier.put(ENCRYPTIONS_PATH,
                json.dumps({"term": ring.active_term, "encryptions": persisted}).encode())
    counter.settle(persisted, unaccounted + 1)
    return None
