"""The keyring: every data-encryption key term the barrier has ever used.

Old terms stay so entries written before a rotation remain readable; the
active term encrypts new writes. The keyring itself is stored encrypted with
the root key, which never touches storage.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import datetime

KEY_SIZE = 32  # AES-256


@dataclass(frozen=True)
class KeyTerm:
    """One data-encryption key and when it was installed."""

    term: int
    key: bytes = field(repr=False)
    install_time: datetime


@dataclass(frozen=True)
class Keyring:
    """An immutable set of key terms; rotation returns a new keyring."""

    terms: tuple[KeyTerm, ...]
    active_term: int

    @classmethod
    def generate(cls, now: datetime) -> Keyring:
        """A fresh keyring with one random term (term 1)."""
        return cls(terms=(KeyTerm(1, os.urandom(KEY_SIZE), now),), active_term=1)

    def term(self, number: int) -> KeyTerm | None:
        for term in self.terms:
            if term.term == number:
                return term
        return None

    @property
    def active(self) -> KeyTerm:
        term = self.term(self.active_term)
        assert term is not None, "keyring invariant: active term exists"
        return term

    def rotated(self, now: datetime) -> Keyring:
        """A copy with one more term, which becomes active."""
        new = KeyTerm(self.active_term + 1, os.urandom(KEY_SIZE), now)
        return Keyring(terms=(*self.terms, new), active_term=new.term)

    def to_json(self) -> bytes:
        """Serialise for the root-key-encrypted storage entry (never stored in clear)."""
        return json.dumps(
            {
                "active_term": self.active_term,
                "terms": [
                    {
                        "term": t.term,
                        "key": base64.b64encode(t.key).decode(),
                        "install_time": t.install_time.isoformat(),
                    }
                    for t in self.terms
                ],
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Keyring:
        doc = json.loads(raw)
        terms = tuple(
            KeyTerm(
                term=int(t["term"]),
                key=base64.b64decode(t["key"]),
                install_time=datetime.fromisoformat(t["install_time"]),
            )
            for t in doc["terms"]
        )
        ring = cls(terms=terms, active_term=int(doc["active_term"]))
        if ring.term(ring.active_term) is None or any(len(t.key) != KEY_SIZE for t in terms):
            raise ValueError("keyring is inconsistent")
        return ring
