"""Typed errors raised by the core; ``http/errors.py`` maps each to a status code.

Library errors (OS, consul, pkcs11, cryptography) are translated at the boundary
into one of these, so nothing above the storage and crypto layers sees them.
"""

from __future__ import annotations


class StrongroomError(Exception):
    """Base of every error the core raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(StrongroomError):
    status = 400


class LoginFailedError(BadRequestError):
    """A login refused for its credentials (Vault's ``logical.ErrorResponse``: a 400),
    or while its client or principal is backing off (auth/login_guard.py): the same
    status and text either way. ``delay`` (seconds) is how long the http layer waits,
    asynchronously, before answering: a failed login is slowed without holding a
    worker's event loop or thread."""

    def __init__(self, message: str, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay


class InvalidCredentialsError(StrongroomError):
    """Vault's ``logical.ErrInvalidCredentials`` returned as an error (not an error
    response): a 400 whose text is the error's, wrapped on the way out as errors are
    (an LDAP token's renewal: "failed to renew entry: invalid credentials")."""

    status = 400

    def __init__(self, message: str = "invalid credentials") -> None:
        super().__init__(message)


class InvalidKeyError(BadRequestError):
    """A storage key that is malformed or would escape its namespace."""


class PermissionDeniedError(StrongroomError):
    status = 403

    def __init__(self, message: str = "permission denied") -> None:
        super().__init__(message)


class NotFoundError(StrongroomError):
    status = 404


class NoRouteError(NotFoundError):
    """Nothing serves this path; the core re-raises it naming the full path."""


class UnsupportedOperationError(StrongroomError):
    status = 405


class RequestTooLargeError(StrongroomError):
    status = 413


class UnsupportedMediaTypeError(StrongroomError):
    status = 415


class NotInitializedError(StrongroomError):
    status = 501

    def __init__(self, message: str = "Vault is not initialized") -> None:
        super().__init__(message)


class SealedError(StrongroomError):
    status = 503

    def __init__(self, message: str = "Vault is sealed") -> None:
        super().__init__(message)


class StorageError(StrongroomError):
    """The storage backend failed; the message names the entry, never its value."""

    status = 500


class FencedError(StorageError):
    """A write was refused because this node's session no longer holds the HA lock."""


class CorruptEntryError(StorageError):
    """An entry exists but cannot be read back intact (truncated, bit-flipped, forged)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"storage entry {key!r} is corrupt: {reason}")
        self.key = key


def multierror(message: str) -> str:
    """Vault wraps some errors in go-multierror's text; clients show it verbatim."""
    return f"1 error occurred:\n\t* {message}\n\n"


def no_route_message(path: str) -> str:
    """Vault's wording (Go %q quoting) for a path nothing is mounted at."""
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"no handler for route {quoted}. route entry not found."
