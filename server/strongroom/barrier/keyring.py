"""The keyring: every data-encryption key term the barrier has ever used.

Old terms stay so entries written before a rotation remain readable; the
active term encrypts new writes. The keyring itself is stored encrypted with
the root key, which never touches storage.

Keys are ``bytearray`` objects owned by exactly one keyring, and each keyring
owns the AES-GCM contexts built from them. :meth:`Keyring.wipe` zeroes the
keys and drops the contexts (OpenSSL cleanses a context's memory when it is
freed), and every barrier using that keyring is sealed from then on: a seal
takes effect in whichever thread wipes, without waiting for a request. The
stored form (JSON with base64 keys) is built and parsed here into bytearrays
the caller wipes; no ``str``/``bytes`` copy of a key is ever made (secmem.py).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier.counter import EncryptionCounter
from strongroom.barrier.secmem import (
    b64_length,
    b64decode_into,
    b64encode_at,
    random_key,
    wipe,
)

KEY_SIZE = 32  # AES-256
# The stored keyring names each term's key once; nothing else in it is called "key".
_KEY_FIELD = re.compile(rb'"key"\s*:\s*"([A-Za-z0-9+/=]*)"')


@dataclass(frozen=True)
class KeyTerm:
    """One data-encryption key and when it was installed."""

    term: int
    key: bytearray = field(repr=False)
    install_time: datetime

    def copy(self) -> KeyTerm:
        return KeyTerm(self.term, bytearray(self.key), self.install_time)


@dataclass(frozen=True, eq=False)
class Keyring:
    """A set of key terms; rotation returns a new keyring (with copies of the old keys)."""

    terms: tuple[KeyTerm, ...]
    active_term: int
    _aeads: dict[int, AESGCM] = field(default_factory=dict, repr=False)
    _wiped: list[bool] = field(default_factory=lambda: [False], repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The node-wide count of encryptions under the active term (barrier/counter.py),
    # shared by every copy of this keyring in every process of the node; None in a
    # keyring nobody encrypts with (tests, tools).
    counter: EncryptionCounter | None = field(default=None, repr=False)

    @classmethod
    def generate(cls, now: datetime, counter: EncryptionCounter | None = None) -> Keyring:
        """A fresh keyring with one random term (term 1)."""
        return cls(terms=(KeyTerm(1, random_key(KEY_SIZE), now),), active_term=1,
                   counter=counter)

    @property
    def wiped(self) -> bool:
        return self._wiped[0]

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

    def aead(self, number: int) -> AESGCM | None:
        """The AES-GCM context of term ``number``; None if unknown or wiped."""
        aead = self._aeads.get(number)
        if aead is not None:
            return aead
        with self._lock:
            if self._wiped[0]:
                return None
            term = self.term(number)
            if term is None:
                return None
            # AESGCM copies the key into its own OpenSSL context.
            return self._aeads.setdefault(number, AESGCM(term.key))

    def same_keys(self, other: Keyring) -> bool:
        """Whether ``other`` holds exactly these terms and keys, with the same active term."""
        if self.wiped or other.wiped or self.active_term != other.active_term:
            return False
        if len(self.terms) != len(other.terms):
            return False
        return all(a.term == b.term and hmac.compare_digest(a.key, b.key)
                   for a, b in zip(self.terms, other.terms, strict=True))

    def copy(self) -> Keyring:
        """An independent keyring with copies of the keys (the caller owns and wipes it)."""
        if self.wiped:
            raise ValueError("keyring was wiped")
        return Keyring(terms=tuple(t.copy() for t in self.terms), active_term=self.active_term,
                       counter=self.counter)

    def rotated(self, now: datetime) -> Keyring:
        """A new keyring with copies of these terms plus one more, which becomes active.

        It shares this keyring's counter; the rotating owner resets the count.
        """
        new = KeyTerm(self.active_term + 1, random_key(KEY_SIZE), now)
        return Keyring(terms=(*(t.copy() for t in self.terms), new), active_term=new.term,
                       counter=self.counter)

    def count_encryptions(self, n: int = 1) -> None:
        """Record ``n`` encryptions under the active term, node-wide."""
        if self.counter is not None and n > 0:
            self.counter.add(n)

    def encryptions(self) -> int:
        """Encryptions under the active term, node-wide and across restarts (key-status)."""
        return self.counter.total() if self.counter is not None else 0

    def wipe(self) -> None:
        """Zero every key and drop the AES-GCM contexts; the keyring is unusable after."""
        with self._lock:
            self._wiped[0] = True
            self._aeads.clear()
            for term in self.terms:
                wipe(term.key)

    def to_json(self) -> bytearray:
        """Serialise for the root-key-encrypted storage entry; the caller wipes the result.

        The layout is exactly ``json.dumps`` of the document, built by hand into a
        buffer allocated once, so that the base64 of each key exists only there.
        """
        parts: list[bytes | KeyTerm] = [
            b'{"active_term": ' + json.dumps(self.active_term).encode() + b', "terms": [']
        for i, t in enumerate(self.terms):
            parts.append((b", " if i else b"") + b'{"term": ' + json.dumps(t.term).encode()
                         + b', "key": "')
            parts.append(t)
            parts.append(b'", "install_time": ' + json.dumps(t.install_time.isoformat()).encode()
                         + b"}")
        parts.append(b"]}")
        out = bytearray(sum(b64_length(len(p.key)) if isinstance(p, KeyTerm) else len(p)
                            for p in parts))
        pos = 0
        for part in parts:
            if isinstance(part, KeyTerm):
                pos = b64encode_at(out, pos, part.key)
            else:
                out[pos:pos + len(part)] = part
                pos += len(part)
        return out

    @classmethod
    def from_json(cls, raw: bytearray, counter: EncryptionCounter | None = None) -> Keyring:
        """Parse the stored form. ``raw`` is scratch: its key fields are overwritten.

        Raises:
            ValueError: If it does not parse or is inconsistent.
        """
        keys: list[bytearray] = []
        try:
            for match in _KEY_FIELD.finditer(raw):
                start, end = match.span(1)
                keys.append(b64decode_into(memoryview(raw)[start:end]))
                # Masked before json sees the text, so its str copy holds no key.
                raw[start:end] = b"A" * (end - start)
            doc = json.loads(raw)
            if len(doc["terms"]) != len(keys):
                raise ValueError("keyring is inconsistent")
            terms = tuple(
                KeyTerm(term=int(t["term"]), key=key,
                        install_time=datetime.fromisoformat(t["install_time"]))
                for t, key in zip(doc["terms"], keys, strict=True)
            )
            ring = cls(terms=terms, active_term=int(doc["active_term"]), counter=counter)
            if ring.term(ring.active_term) is None or any(len(k) != KEY_SIZE for k in keys):
                raise ValueError("keyring is inconsistent")
        except BaseException:
            for key in keys:
                wipe(key)
            raise
        return ring
