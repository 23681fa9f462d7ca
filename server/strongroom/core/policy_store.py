"""Named ACL policies in storage, parsed once per worker and merged per token."""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache

from strongroom.barrier.view import StorageView
from strongroom.errors import BadRequestError
from strongroom.physical.base import Backend
from strongroom.policy.acl import ACL
from strongroom.policy.builtin import DEFAULT_POLICY_HCL, RESPONSE_WRAPPING_POLICY_HCL
from strongroom.policy.parse import Policy, parse_policy

_NAME = re.compile(r"^[a-z0-9_.\-@]{1,128}$")
# Built into the code, never stored: they cannot be changed through the API.
IMMUTABLE = ("root", "response-wrapping")


def validate_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise BadRequestError(f"invalid policy name {name!r}")
    return name


class PolicyStore:
    def __init__(self, barrier: Backend) -> None:
        self._storage = StorageView(barrier, "sys/policy/")
        self._lock = threading.Lock()
        self._cache: dict[str, Policy | None] = {}
        self._acls = lru_cache(maxsize=1024)(self._build_acl)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._acls.cache_clear()

    def names(self) -> list[str]:
        return sorted({*self._storage.list(""), "root"})

    def raw(self, name: str) -> str | None:
        name = validate_name(name)
        if name == "root":
            return ""
        blob = self._storage.get(name)
        return json.loads(blob)["policy"] if blob is not None else None

    def get(self, name: str) -> Policy | None:
        if name in self._cache:
            return self._cache[name]
        if name == "response-wrapping":
            policy: Policy | None = parse_policy(name, RESPONSE_WRAPPING_POLICY_HCL)
        else:
            text = self.raw(name)
            policy = parse_policy(name, text) if text else None
        with self._lock:
            self._cache[name] = policy
        return policy

    def put(self, name: str, text: str) -> None:
        name = validate_name(name)
        if name in IMMUTABLE:
            raise BadRequestError(f'cannot update "{name}" policy')
        parse_policy(name, text)  # reject what does not parse before storing anything
        self._storage.put(name, json.dumps({"name": name, "policy": text}).encode())

    def delete(self, name: str) -> None:
        name = validate_name(name)
        if name in (*IMMUTABLE, "default"):
            # Vault quotes the immutable names but not "default".
            quoted = name if name == "default" else f'"{name}"'
            raise BadRequestError(f"cannot delete {quoted} policy")
        self._storage.delete(name)

    def ensure_default(self) -> None:
        if self._storage.get("default") is None:
            self._storage.put(
                "default", json.dumps({"name": "default", "policy": DEFAULT_POLICY_HCL}).encode()
            )

    def acl(self, policies: tuple[str, ...]) -> ACL:
        """The merged ACL for a token's (sorted) policy names."""
        return self._acls(policies)

    def _build_acl(self, names: tuple[str, ...]) -> ACL:
        if "root" in names:
            return ACL([Policy.root()])
        return ACL([p for p in (self.get(n) for n in names) if p is not None])
