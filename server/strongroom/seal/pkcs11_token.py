"""PKCS#11 plumbing over python-pkcs11: libraries, tokens, sessions, the seal's AES key.

A library (``lib``) is loaded once per process and path (dlopen plus C_Initialize;
loading it twice would fail with CKR_CRYPTOKI_ALREADY_INITIALIZED) and shared by every
partition that names it. Every use holds the library's lock, and a session lives for one
operation only, so :func:`reload` (C_Finalize + C_Initialize, which SoftHSM needs to see
a token directory that came back, and which a network HSM's client needs after an
outage) never pulls a session from under a user.

Only the owner process calls this (never a forked worker: PKCS#11 state does not survive
fork). Failures become :class:`PartitionError` with a message naming the token and the
PKCS#11 condition, never the PIN.
"""

from __future__ import annotations

import ctypes
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams

from strongroom.seal.pkcs11_config import CKM_AES_GCM, PartitionConfig

__all__ = ["CKM_AES_GCM", "GCM_IV_BYTES", "KEY_TEMPLATE", "PIN_FAILURES", "PKCS11Error",
           "PartitionError", "decrypt", "describe", "encrypt", "find_key", "generate_key",
           "library", "reload", "require_key", "session"]
PKCS11Error = p11e.PKCS11Error

GCM_IV_BYTES = 12

# The attributes of a key Strongroom generates (generate_key, `strongroom hsm
# generate-key`). SENSITIVE: its value never leaves the token in clear. EXTRACTABLE: it
# may leave only wrapped under another key, so `strongroom hsm copy-key` can put the
# same key into another partition or another node's token without the plaintext
# leaving the HSMs; `strongroom hsm lock-key` clears it afterwards (one-way, by the
# PKCS#11 rules). No WRAP/UNWRAP/SIGN: the key only encrypts and decrypts.
KEY_TEMPLATE: dict[Any, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: True,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}

# PKCS#11 conditions, in words (the exception's class is the CKR_ code).
_REASONS: dict[type[BaseException], str] = {
    p11e.PinIncorrect: "the PIN was refused (CKR_PIN_INCORRECT)",
    p11e.PinLocked: "the token's PIN is locked (CKR_PIN_LOCKED)",
    p11e.PinExpired: "the PIN has expired (CKR_PIN_EXPIRED)",
    p11e.PinLenRange: "the PIN has the wrong length (CKR_PIN_LEN_RANGE)",
    p11e.TokenNotPresent: "the token is not present (CKR_TOKEN_NOT_PRESENT)",
    p11e.TokenNotRecognised: "the token is not recognised (CKR_TOKEN_NOT_RECOGNIZED)",
    p11e.DeviceRemoved: "the device was removed (CKR_DEVICE_REMOVED)",
    p11e.DeviceError: "the device failed (CKR_DEVICE_ERROR)",
    p11e.SlotIDInvalid: "no such slot (CKR_SLOT_ID_INVALID)",
    p11e.EncryptedDataInvalid: "the stored root key does not decrypt with this key",
    p11e.MechanismInvalid: "the token does not support CKM_AES_GCM",
    p11e.FunctionNotSupported: "the token does not support this operation",
}
# Conditions that a retry with the same PIN can only make worse (a real HSM locks the
# PIN after a few failures): the partition is not retried until the process restarts.
PIN_FAILURES = (p11e.PinIncorrect, p11e.PinLocked, p11e.PinExpired, p11e.PinLenRange)


class PartitionError(Exception):
    """A partition could not be used; ``str()`` is safe to log and to return."""

    def __init__(self, reason: str, *, pin_refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pin_refused = pin_refused


def describe(exc: BaseException) -> str:
    """What went wrong, from a python-pkcs11 exception (its text is never a secret, but
    it is often empty: the class is what says it)."""
    for kind, text in _REASONS.items():
        if isinstance(exc, kind):
            return text
    name = type(exc).__name__
    return f"PKCS#11 error {name}" + (f": {exc}" if str(exc) else "")


class _Library:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.lib: Any = None

    def get(self) -> Any:
        if self.lib is None:
            try:
                self.lib = pkcs11.lib(self.path)
            except (p11e.PKCS11Error, OSError) as exc:
                detail = str(exc).replace(self.path, "").strip(" :") or type(exc).__name__
                raise PartitionError(f"cannot load the PKCS#11 library {self.path} "
                                     f"({detail})") from None
        return self.lib

    def reload(self) -> None:
        if self.lib is not None:
            try:
                self.lib.reinitialize()
            except p11e.PKCS11Error:
                self.lib = None  # loaded again on next use


_LIBRARIES: dict[str, _Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def library(path: str) -> _Library:
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            _LIBRARIES[path] = _Library(path)
        return _LIBRARIES[path]


def reload(path: str) -> None:
    """Re-initialize the library (see the module's note); a no-op if never loaded."""
    handle = library(path)
    with handle.lock:
        try:
            handle.reload()
        finally:
            clear_openssl_errors()


def _token(lib: Any, cfg: PartitionConfig) -> Any:
    # Not lib.get_token(): one slot whose token vanished (GeneralError from
    # C_GetTokenInfo) must not hide the others.
    try:
        slots = lib.get_slots(token_present=True)
    except p11e.PKCS11Error as exc:
        raise PartitionError(f"cannot list slots: {describe(exc)}") from None
    for slot in slots:
        if cfg.slot is not None and slot.slot_id != cfg.slot:
            continue
        try:
            token = slot.get_token()
        except p11e.PKCS11Error:
            continue
        if cfg.token_label is None or token.label == cfg.token_label:
            return token
    raise PartitionError(f"token {cfg.token} not found")


def _libssl_handle() -> Any:
    try:
        return ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        return None


_SSL_LIB = _libssl_handle()


def clear_openssl_errors() -> None:
    """Empty this thread's OpenSSL error queue.

    SoftHSM runs on the process's libcrypto and leaves errors queued (e.g. ``ENGINE:
    NO_SUCH_ENGINE`` when it looks for the gost engine at C_Initialize). Python's ssl
    module reads that queue after its own calls: the next TLS request of the same thread
    (the Consul storage write right after a wrap at init) failed with that stale error.
    """
    if _SSL_LIB is not None:
        try:
            _SSL_LIB.ERR_clear_error()
        except AttributeError:
            pass


@contextmanager
def session(cfg: PartitionConfig, rw: bool = False) -> Iterator[Any]:
    """A logged-in session on the partition's token, for one operation."""
    handle = library(cfg.lib)
    with handle.lock:
        try:
            with _session(handle, cfg, rw) as opened:
                yield opened
        finally:
            clear_openssl_errors()


@contextmanager
def _session(handle: _Library, cfg: PartitionConfig, rw: bool) -> Iterator[Any]:
    token = _token(handle.get(), cfg)
    try:
        opened = token.open(rw=rw, user_pin=cfg.pin)
    except p11e.PKCS11Error as exc:
        raise PartitionError(f"cannot log in to token {cfg.token}: {describe(exc)}",
                             pin_refused=isinstance(exc, PIN_FAILURES)) from None
    try:
        yield opened
    except p11e.PKCS11Error as exc:
        raise PartitionError(f"token {cfg.token}: {describe(exc)}") from None
    finally:
        try:
            opened.close()
        except p11e.PKCS11Error:
            pass  # the token went away mid-operation; the error above says so


def find_key(sess: Any, cfg: PartitionConfig) -> Any | None:
    """The partition's AES key (by label, and id when configured), or None."""
    attrs: dict[Any, Any] = {Attribute.CLASS: ObjectClass.SECRET_KEY,
                             Attribute.KEY_TYPE: KeyType.AES, Attribute.LABEL: cfg.key_label}
    if cfg.key_id is not None:
        attrs[Attribute.ID] = cfg.key_id
    found = list(sess.get_objects(attrs))
    if len(found) > 1:
        raise PartitionError(f"token {cfg.token} holds {len(found)} AES keys labelled "
                             f"{cfg.key_label!r}: set key_id to choose one")
    return found[0] if found else None


def require_key(sess: Any, cfg: PartitionConfig) -> Any:
    key = find_key(sess, cfg)
    if key is None:
        raise PartitionError(f"key {cfg.key_label!r} not found in token {cfg.token}")
    return key


def generate_key(sess: Any, cfg: PartitionConfig) -> Any:
    """A new AES-256 key inside the token (see KEY_TEMPLATE)."""
    template = dict(KEY_TEMPLATE)
    if cfg.key_id is not None:
        template[Attribute.ID] = cfg.key_id
    return sess.generate_key(KeyType.AES, 256, label=cfg.key_label, store=True,
                             template=template)


def encrypt(key: Any, plaintext: bytes | bytearray) -> tuple[bytes, bytes]:
    """AES-GCM inside the token: (iv, ciphertext with its 16-byte tag)."""
    iv = os.urandom(GCM_IV_BYTES)
    data = key.encrypt(bytes(plaintext), mechanism=Mechanism.AES_GCM,
                       mechanism_param=GCMParams(iv))
    return iv, bytes(data)


def decrypt(key: Any, iv: bytes, ciphertext: bytes) -> bytearray:
    """AES-GCM decryption inside the token, as a bytearray the caller wipes. (The binding
    returns an immutable ``bytes`` first, which cannot be wiped; it is dropped at once.)"""
    return bytearray(key.decrypt(ciphertext, mechanism=Mechanism.AES_GCM,
                                 mechanism_param=GCMParams(iv)))
