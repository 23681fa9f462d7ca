"""Finding a KV mount and its version, and building KV v2 API paths, as ``vault kv`` does.

``vault kv`` asks ``GET sys/internal/ui/mounts/<path>`` which mount serves a
path (``data.path``) and which KV version it runs (``data.options.version``).
For v2 it inserts ``data/``, ``metadata/``, ``delete/`` ... after the mount,
so ``secret/foo`` becomes ``secret/data/foo``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.cli.client import ApiClient, ApiError, ClientError


def go_path_join(*parts: str) -> str:
    """Join path elements like Go's ``path.Join``: empty parts skipped, result cleaned."""
    joined = "/".join(p for p in parts if p)
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def sanitize_path(path: str) -> str:
    """Trim whitespace and leading/trailing slashes (Vault's ``sanitizePath``)."""
    return path.strip().strip("/").strip()


def ensure_trailing_slash(path: str) -> str:
    """Trim whitespace and end with one ``/`` (empty stays empty)."""
    path = path.strip()
    return path if not path or path.endswith("/") else path + "/"


def preflight(client: ApiClient, path: str) -> tuple[str, int]:
    """Return ``(mount path, KV version)`` for ``path``.

    A 404 means a server without the endpoint: version 1, mount unknown ("").

    Raises:
        ClientError: The check failed (e.g. 403 for a path under no mount).
    """
    try:
        resp = client.request("GET", f"sys/internal/ui/mounts/{path}", wrap=False)
    except ApiError as exc:
        if exc.status == 404:
            return "", 1
        raise
    if resp is None:
        raise ClientError("nil response from pre-flight request")
    data = resp.get("data") or {}
    raw_mount = data.get("path")
    mount = raw_mount if isinstance(raw_mount, str) else ""
    options = data.get("options")
    version = options.get("version") if isinstance(options, Mapping) else None
    return mount, 2 if version == "2" else 1


def add_prefix(path: str, mount: str, prefix: str) -> str:
    """Insert the v2 API ``prefix`` after the mount (Vault's ``addPrefixToKVPath``)."""
    if path in (mount, mount.removesuffix("/")):
        return go_path_join(mount, prefix)
    suffix = path.removeprefix(mount)
    while suffix == path:
        # The mount may include namespace parts the path leaves out.
        _, _, rest = mount.partition("/")
        if not rest:
            break
        mount = rest.removesuffix("/")
        suffix = suffix.removeprefix(mount)
    return go_path_join(mount, prefix, suffix)


@dataclass(frozen=True)
class KvTarget:
    """Where a ``kv`` command operates.

    Attributes:
        partial: The secret path; with ``-mount`` on v2 it includes the mount.
        mount: The mount path reported by the server, e.g. ``secret/``.
        v2: Whether the mount runs KV version 2.
        mount_flag: Whether ``-mount`` was used.
    """

    partial: str
    mount: str
    v2: bool
    mount_flag: bool

    def api_path(self, prefix: str) -> str:
        """The API path for a v2 ``prefix`` (``data``, ``metadata`` ...) or the v1 path."""
        if self.v2:
            return add_prefix(self.partial, self.mount, prefix)
        return go_path_join(self.mount, self.partial) if self.mount_flag else self.partial


def resolve(client: ApiClient, arg: str, mount_flag: str, *, sanitize: bool = True) -> KvTarget:
    """Resolve a ``kv`` argument (``secret/foo``, or ``foo`` with ``-mount=secret``).

    Args:
        client: API client for the version check.
        arg: The path argument.
        mount_flag: The ``-mount`` value, or "".
        sanitize: Strip slashes around ``arg`` (``kv get`` only drops one leading slash).

    Raises:
        ClientError: The version check failed.
    """
    partial = sanitize_path(arg) if sanitize else arg.removeprefix("/")
    if mount_flag:
        mount, version = preflight(client, sanitize_path(mount_flag))
        if version == 2:
            partial = go_path_join(mount, partial)
    else:
        mount, version = preflight(client, partial)
    return KvTarget(partial, mount, version == 2, bool(mount_flag))
