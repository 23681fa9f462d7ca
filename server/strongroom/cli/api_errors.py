"""Errors raised by :mod:`strongroom.cli.client` (re-exported there).

:class:`ApiError` prints in the layout of Vault's ``ResponseError``, which
people grep for in scripts.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


class ClientError(Exception):
    """Anything that kept a request from producing a usable answer."""


class ConfigError(ClientError):
    """The address, TLS settings or environment are unusable."""


class ConnectError(ClientError):
    """The server could not be reached, or the TLS handshake failed."""


class ApiError(ClientError):
    """The server answered with a non-2xx status.

    Attributes:
        status: HTTP status code.
        errors: The server's ``errors`` list, or the raw body when it had none.
        method: HTTP method of the failed request.
        url: Full URL of the failed request.
        raw: Whether ``errors`` holds a raw body rather than API error strings.
        body: The decoded JSON object of the answer, when it was one (a 404
            from a KV v2 read of a deleted version still carries data).
    """

    def __init__(
        self, status: int, errors: list[str], *, method: str = "", url: str = "",
        raw: bool = False, body: JsonObject | None = None,
    ) -> None:
        self.status = status
        self.errors = list(errors)
        self.method = method
        self.url = url
        self.raw = raw
        self.body = body
        super().__init__(str(self))

    def __str__(self) -> str:
        # Same layout as Vault's ResponseError, which people grep for in scripts.
        lines = ["Error making API request.", ""]
        if self.url:
            lines.append(f"URL: {self.method} {self.url}")
        kind = "Raw Message" if self.raw else "Errors"
        lines += [f"Code: {self.status}. {kind}:", ""]
        if self.raw:
            lines.extend(self.errors)
        else:
            lines.extend(f"* {e}" for e in self.errors)
        return "\n".join(lines).rstrip("\n")


