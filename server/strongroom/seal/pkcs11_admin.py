"""HSM key administration for ``strongroom hsm``: generate the seal key, copy it into
another partition under wrap, lock it, report on it.

Copying never lets the plaintext key leave the HSMs: an RSA key pair is generated as
*session* objects inside the destination token (the private half sensitive and not
extractable, gone when the session closes), its public half is imported as a session
object into the source token, the AES key is wrapped there with CKM_RSA_PKCS_OAEP
(SHA-1: the one OAEP hash SoftHSM 2.6 implements) and unwrapped inside the destination
with the seal key's attributes. Then both copies encrypt/decrypt a random block for each
other (AES-GCM): the copy is proven to be the same key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass

from strongroom.seal import pkcs11_token as tok
from strongroom.seal.pkcs11_config import PartitionConfig
from strongroom.seal.pkcs11_token import PartitionError

_RSA_BITS = 3072
_OAEP = (Mechanism.SHA_1, MGF.SHA1, None)


class Refused(Exception):
    """The operation was refused (exit 2); ``str()`` is one line for the operator."""


@dataclass(frozen=True)
class KeyStatus:
    """What ``strongroom hsm status`` reports; never a secret."""

    token: str
    key_label: str
    present: bool
    usable: bool
    sensitive: bool | None = None
    extractable: bool | None = None
    never_extractable: bool | None = None
    problem: str = ""


@contextmanager
def _open(partition: PartitionConfig, rw: bool = True) -> Iterator[Any]:
    with tok.session(partition, rw=rw) as sess:
        yield sess


def generate(partition: PartitionConfig) -> None:
    """Create the seal key in the partition (KEY_TEMPLATE's attributes).

    Raises:
        Refused: the key exists already, or the token cannot be used.
    """
    try:
        with _open(partition) as sess:
            if tok.find_key(sess, partition) is not None:
                raise Refused(f"key {partition.key_label!r} already exists in token "
                              f"{partition.token}: nothing done")
            tok.generate_key(sess, partition)
    except PartitionError as exc:
        raise Refused(exc.reason) from None


def _attr(key: Any, name: Any) -> bool | None:
    try:
        return bool(key[name])
    except tok.PKCS11Error:
        return None


def status(partition: PartitionConfig) -> KeyStatus:
    """Whether the key is there and encrypts/decrypts, with its protection attributes."""
    token, label = partition.token, partition.key_label
    try:
        with _open(partition, rw=False) as sess:
            key = tok.find_key(sess, partition)
            if key is None:
                return KeyStatus(token, label, present=False, usable=False,
                                 problem=f"key {partition.key_label!r} not found")
            probe = os.urandom(32)
            iv, ciphertext = tok.encrypt(key, probe)
            usable = tok.decrypt(key, iv, ciphertext) == probe
            return KeyStatus(token, label, present=True, usable=usable,
                             sensitive=_attr(key, Attribute.SENSITIVE),
                             extractable=_attr(key, Attribute.EXTRACTABLE),
                             never_extractable=_attr(key, Attribute.NEVER_EXTRACTABLE))
    except PartitionError as exc:
        return KeyStatus(token, label, present=False, usable=False, problem=exc.reason)


def copy(source: PartitionConfig, dest: PartitionConfig, lock: bool = False) -> None:
    """Copy the seal key from ``source`` into ``dest`` under wrap (see the module's note);
    with ``lock`` the copy is created not extractable.

    Raises:
        Refused: the source key is missing or not extractable, the destination already
            holds a key with that label, or a token cannot be used.
    """
    if source.lib == dest.lib and source.token == dest.token:
        raise Refused("the source and destination are the same token")
    try:
        with ExitStack() as stack:
            src = stack.enter_context(_open(source))
            dst = stack.enter_context(_open(dest))
            key = tok.require_key(src, source)
            if _attr(key, Attribute.EXTRACTABLE) is False:
                raise Refused(f"key {source.key_label!r} in token {source.token} is not "
                              "extractable (locked): it cannot be copied")
            if tok.find_key(dst, dest) is not None:
                raise Refused(f"token {dest.token} already holds a key labelled "
                              f"{dest.key_label!r}: nothing done")
            copied = _transfer(src, dst, key, dest, lock)
            _prove_same(key, copied, source, dest)
    except PartitionError as exc:
        raise Refused(exc.reason) from None


def _transfer(src: Any, dst: Any, key: Any, dest: PartitionConfig, lock: bool) -> Any:
    # Session objects (TOKEN false): the transport pair never outlives this copy.
    public, private = dst.generate_keypair(
        KeyType.RSA, _RSA_BITS, store=False,
        public_template={Attribute.TOKEN: False, Attribute.WRAP: True,
                         Attribute.ENCRYPT: False, Attribute.VERIFY: False},
        private_template={Attribute.TOKEN: False, Attribute.SENSITIVE: True,
                          Attribute.EXTRACTABLE: False, Attribute.UNWRAP: True,
                          Attribute.DECRYPT: False, Attribute.SIGN: False})
    imported = src.create_object({
        Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
        Attribute.TOKEN: False, Attribute.WRAP: True,
        Attribute.MODULUS: public[Attribute.MODULUS],
        Attribute.PUBLIC_EXPONENT: public[Attribute.PUBLIC_EXPONENT]})
    wrapped = imported.wrap_key(key, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=_OAEP)
    template = dict(tok.KEY_TEMPLATE)
    template[Attribute.EXTRACTABLE] = not lock
    if dest.key_id is not None:
        template[Attribute.ID] = dest.key_id
    template[Attribute.LABEL] = dest.key_label
    template.pop(Attribute.TOKEN, None)
    return private.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                              label=dest.key_label, id=dest.key_id,
                              mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=_OAEP,
                              store=True, template=template)


def _prove_same(original: Any, copied: Any, source: PartitionConfig,
                dest: PartitionConfig) -> None:
    probe = os.urandom(32)
    for enc, dec in ((original, copied), (copied, original)):
        iv, ciphertext = tok.encrypt(enc, probe)
        try:
            back = tok.decrypt(dec, iv, ciphertext)
        except tok.PKCS11Error:
            back = bytearray()
        if back != probe:
            copied.destroy()
            raise Refused(f"the copy in token {dest.token} does not match the key in "
                          f"token {source.token}; it was removed")


def lock(partition: PartitionConfig) -> None:
    """Make the key not extractable (CKA_EXTRACTABLE false: one-way, by PKCS#11).

    Raises:
        Refused: the key is missing or the token cannot be used.
    """
    try:
        with _open(partition) as sess:
            key = tok.require_key(sess, partition)
            if _attr(key, Attribute.EXTRACTABLE) is False:
                raise Refused(f"key {partition.key_label!r} in token {partition.token} is "
                              "already not extractable: nothing done")
            key[Attribute.EXTRACTABLE] = False
    except PartitionError as exc:
        raise Refused(exc.reason) from None
