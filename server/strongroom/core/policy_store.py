"""Named ACL policies in storage, parsed once per worker and merged per token.

Names are what OpenBao accepts: trimmed and lower-cased, any characters but
control characters, '/' included (``team/app``), up to MAX_NAME characters. A
name made only of the characters names were once limited to is stored under
itself (so policies written before keep their keys); any other is stored under
``~`` + the SHA-256 of the name (no escaping to grow past a file backend's
name limit, no '/' to become a folder) and its listing reads the name back
from the entry.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from functools import lru_cache

from strongroom.barrier.view import StorageView
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend
from strongroom.policy.acl import ACL
from strongroom.policy.builtin import DEFAULT_POLICY_HCL, RESPONSE_WRAPPING_POLICY_HCL
from strongroom.policy.parse import Policy, parse_policy
from strongroom.policy.template import IdentityInfo

# OpenBao sets no bound; tokens name at most this many (core/token_create.py).
MAX_NAME = 128
_PLAIN = re.compile(r"[a-z0-9_.\-@]+")  # the names allowed before: all stored under themselves
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HASHED = "~"  # no plain name starts with it
# Built into the code, never stored: they cannot be changed through the API.
IMMUTABLE = ("root", "response-wrapping")


def validate_name(name: str) -> str:
    """The name as stored (trimmed, lower-cased, as Vault's policy store); 400 if unusable."""
    name = name.strip().lower()
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise BadRequestError(f"invalid policy name {name!r}")
    return name


def storage_key(name: str) -> str:
    """Where the (validated) policy ``name`` is kept below sys/policy/."""
    if _PLAIN.fullmatch(name) and name.strip("."):  # "." and ".." are no storage key
        return name
    return _HASHED + hashlib.sha256(name.encode()).hexdigest()


class PolicyStore:
    def __init__(self, barrier: Backend) -> None:
        self._storage = StorageView(barrier, "sys/policy/")
        self._lock = threading.Lock()
        self._cache: dict[str, Policy | None] = {}
        self._acls = lru_cache(maxsize=1024)(self._build_acl)
        # Templated policies: one ACL per (policies, entity), by the entity's values.
        self._identity_acls = lru_cache(maxsize=4096)(self._build_identity_acl)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._acls.cache_clear()
            self._identity_acls.cache_clear()

    def names(self) -> list[str]:
        found = {"root"}
        for key in self._storage.list(""):
            if not key.startswith(_HASHED):
                found.add(key)
                continue
            blob = self._storage.get(key)
            if blob is not None:
                found.add(json.loads(blob)["name"])
        return sorted(found)

    def raw(self, name: str) -> str | None:
        name = validate_name(name)
        if name == "root":
            return ""
        if name == "response-wrapping":
            return RESPONSE_WRAPPING_POLICY_HCL
        blob = self._storage.get(storage_key(name))
        return json.loads(blob)["policy"] if blob is not None else None

    def get(self, name: str) -> Policy | None:
        if name in self._cache:
            return self._cache[name]
        if name == "response-wrapping":
            policy: Policy | None = parse_policy(name, RESPONSE_WRAPPING_POLICY_HCL)
        else:
            try:
                text = self.raw(name)
            except BadRequestError:
                text = None  # a token may name what can be no policy: it grants nothing
            policy = parse_policy(name, text) if text else None
        with self._lock:
            self._cache[name] = policy
        return policy

    def put(self, name: str, text: str) -> None:
        name = validate_name(name)
        if name in IMMUTABLE:
            raise BadRequestError(f'cannot update "{name}" policy')
        parse_policy(name, text)  # reject what does not parse before storing anything
        self._storage.put(storage_key(name),
                          json.dumps({"name": name, "policy": text}).encode())

    def delete(self, name: str) -> None:
        name = validate_name(name)
        if name in (*IMMUTABLE, "default"):
            # Vault quotes the immutable names but not "default".
            quoted = name if name == "default" else f'"{name}"'
            raise BadRequestError(f"cannot delete {quoted} policy")
        self._storage.delete(storage_key(name))

    def ensure_default(self) -> None:
        if self._storage.get("default") is None:
            self._storage.put(
                "default", json.dumps({"name": "default", "policy": DEFAULT_POLICY_HCL}).encode()
            )

    def acl(self, policies: tuple[str, ...],
            identity: Callable[[], IdentityInfo | None] | None = None) -> ACL:
        """The merged ACL for a token's (sorted) policy names. ``identity`` gives the
        token's entity, asked for only when one of the policies is templated."""
        if identity is None or not any(
                p is not None and p.templated for p in (self.get(n) for n in policies)):
            return self._acls(policies)
        return self._identity_acls(policies, identity())

    def _build_identity_acl(self, names: tuple[str, ...], info: IdentityInfo | None) -> ACL:
        return ACL([p for p in (self.get(n) for n in names) if p is not None], identity=info)

    def _build_acl(self, names: tuple[str, ...]) -> ACL:
        if "root" in names:
            return ACL([Policy.root()])
        return ACL([p for p in (self.get(n) for n in names) if p is not None])
