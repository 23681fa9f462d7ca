"""keysutil's JSON for a Policy and its archive, exactly as OpenBao's Go code writes it.

Go's encodings: ``[]byte`` as base64 (``null`` when nil), ``time.Time`` as RFC 3339
with up to nine fractional digits (trailing zeros dropped), ``*big.Int`` as a bare JSON
number, ``*rsa.PrivateKey`` as its exported fields (``N, E, D, Primes, Precomputed``),
``time.Duration`` as nanoseconds, map keys as strings in sorted order. Go's decoder
matches field names case-insensitively; ``loads`` does too.

Big integers are why this uses the standard ``json`` module (orjson stops at 64 bits).
Only policy loads go through here: the keystore decodes a document once per change,
never per request.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from .keytypes import ZERO_TIME, KeyType
from .policy import BackupInfo, KeyEntry, Policy

_NS = 10**9
_TIME = re.compile(
    r"(?P<date>\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})")
_POLICY_FIELDS = (
    "name", "key", "key_size", "keys", "derived", "kdf", "convergent_encryption",
    "exportable", "min_decryption_version", "min_encryption_version", "latest_version",
    "archive_version", "archive_min_version", "min_available_version", "deletion_allowed",
    "convergent_version", "type", "backup_info", "restore_info", "allow_plaintext_backup",
    "version_template", "storage_prefix", "auto_rotate_period", "Imported",
    "AllowImportedKeyRotation", "soft_deleted")


# -- scalars ---------------------------------------------------------------------------

def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def _unb64(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(value, validate=True)


def format_time(when: datetime, nanos: int = 0) -> str:
    """Go's ``time.Time.MarshalJSON`` (RFC 3339, nanoseconds, trailing zeros dropped)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset() or timedelta(0)
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.year < 1000:
        base = f"{when.year:04d}" + base[base.index("-"):]
    frac_ns = when.microsecond * 1000 + nanos
    frac = f".{frac_ns:09d}".rstrip("0") if frac_ns else ""
    if not offset:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return base + frac + zone


def parse_time(text: Any) -> tuple[datetime, int]:
    """(datetime to the microsecond, the remaining nanoseconds)."""
    if not isinstance(text, str):
        raise ValueError("expected an RFC 3339 time")
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"bad time {text!r}")
    frac = (match.group("frac") or "").ljust(9, "0")
    tz_text = match.group("tz")
    if tz_text == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if tz_text[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(tz_text[1:3]), minutes=int(tz_text[4:6])))
    when = datetime.strptime(match.group("date"), "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int(frac[:6]), tzinfo=tz)
    return when, int(frac[6:])


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _bigint(value: Any) -> int | None:
    return None if value is None else _int(value)


def _folded(doc: Any) -> dict[str, Any]:
    """Go's decoder: exact names first, then case-insensitive ones."""
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    out = {k.lower(): v for k, v in doc.items()}
    out.update({k: v for k, v in doc.items() if k.lower() == k})
    return out


# -- RSA -----------------------------------------------------------------------------

def _rsa_doc(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    nums = key.private_numbers()
    pub = nums.public_numbers
    return {"N": pub.n, "E": pub.e, "D": nums.d, "Primes": [nums.p, nums.q],
            "Precomputed": {"Dp": nums.dmp1, "Dq": nums.dmq1, "Qinv": nums.iqmp,
                            "CRTValues": []}}


def _rsa_key(doc: Any) -> rsa.RSAPrivateKey | None:
    if doc is None:
        return None
    d = _folded(doc)
    primes = d.get("primes") or []
    if len(primes) != 2:
        raise ValueError("only two-prime RSA keys are supported")
    p, q = (_int(x) for x in primes)
    n, e, priv = _int(d.get("n")), _int(d.get("e")), _int(d.get("d"))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=priv, dmp1=rsa.rsa_crt_dmp1(priv, p), dmq1=rsa.rsa_crt_dmq1(priv, q),
        iqmp=rsa.rsa_crt_iqmp(p, q), public_numbers=rsa.RSAPublicNumbers(e, n))
    return numbers.private_key()


def _rsa_public(doc: Any) -> rsa.RSAPublicKey | None:
    if doc is None:
        return None
    d = _folded(doc)
    return rsa.RSAPublicNumbers(_int(d.get("e")), _int(d.get("n"))).public_key()


def _rsa_public_doc(key: rsa.RSAPublicKey | None) -> dict[str, int] | None:
    if key is None:
        return None
    nums = key.public_numbers()
    return {"N": nums.n, "E": nums.e}


# -- key entries -----------------------------------------------------------------------

def entry_doc(entry: KeyEntry) -> dict[str, Any]:
    return {
        "key": _b64(entry.key),
        "hmac_key": _b64(entry.hmac_key),
        "time": format_time(entry.time, entry.time_nanos),
        "ec_x": entry.ec_x,
        "ec_y": entry.ec_y,
        "ec_d": entry.ec_d,
        "rsa_key": None if entry.rsa_key is None else _rsa_doc(entry.rsa_key),
        "rsa_public_key": _rsa_public_doc(entry.rsa_public_key),
        "public_key": entry.public_key,
        "convergent_version": entry.convergent_version,
        "creation_time": entry.creation_time,
        "certificate_chain": (None if entry.certificate_chain is None
                              else [_b64(c) for c in entry.certificate_chain]),
        "external_key_ref": entry.external_key_ref,
    }


def entry_from_doc(doc: Any) -> KeyEntry:
    d = _folded(doc)
    when, nanos = parse_time(d["time"]) if d.get("time") is not None else (ZERO_TIME, 0)
    chain = d.get("certificate_chain")
    rsa_key = _rsa_key(d.get("rsa_key"))
    # LoadPolicy's "migration" that fills rsa_public_key from rsa_key assigns to a copy
    # of the map's entry in Go (a no-op): OpenBao keeps null there, and so does this
    # (KeyEntry.rsa_public() derives the public key when it is needed).
    rsa_public = _rsa_public(d.get("rsa_public_key"))
    return KeyEntry(
        key=_unb64(d.get("key")), hmac_key=_unb64(d.get("hmac_key")), time=when,
        time_nanos=nanos, ec_x=_bigint(d.get("ec_x")), ec_y=_bigint(d.get("ec_y")),
        ec_d=_bigint(d.get("ec_d")), rsa_key=rsa_key, rsa_public_key=rsa_public,
        public_key=str(d.get("public_key") or ""),
        convergent_version=_int(d.get("convergent_version")),
        creation_time=_int(d.get("creation_time")),
        certificate_chain=None if chain is None else [_unb64(c) or b"" for c in chain],
        external_key_ref=str(d.get("external_key_ref") or ""))


# -- policies ----------------------------------------------------------------------------

def _info_doc(info: BackupInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"time": format_time(info.time, info.time_nanos), "version": info.version}


def _info(doc: Any) -> BackupInfo | None:
    if doc is None:
        return None
    d = _folded(doc)
    when, nanos = parse_time(d.get("time"))
    return BackupInfo(time=when, version=_int(d.get("version")), time_nanos=nanos)


def policy_doc(policy: Policy) -> dict[str, Any]:
    """The policy as keysutil's ``json.Marshal(p)`` orders it."""
    doc: dict[str, Any] = {"name": policy.name}
    if policy.key_size:
        doc["key_size"] = policy.key_size
    doc["keys"] = {str(v): entry_doc(policy.keys[v])
                   for v in sorted(policy.keys, key=str)}
    doc.update({
        "derived": policy.derived,
        "kdf": policy.kdf,
        "convergent_encryption": policy.convergent_encryption,
        "exportable": policy.exportable,
        "min_decryption_version": policy.min_decryption_version,
        "min_encryption_version": policy.min_encryption_version,
        "latest_version": policy.latest_version,
        "archive_version": policy.archive_version,
        "archive_min_version": policy.archive_min_version,
        "min_available_version": policy.min_available_version,
        "deletion_allowed": policy.deletion_allowed,
        "convergent_version": policy.convergent_version,
        "type": int(policy.type),
        "backup_info": _info_doc(policy.backup_info),
        "restore_info": _info_doc(policy.restore_info),
        "allow_plaintext_backup": policy.allow_plaintext_backup,
        "version_template": policy.version_template,
        "storage_prefix": policy.storage_prefix,
        "auto_rotate_period": policy.auto_rotate_period * _NS,
        "Imported": policy.imported,
        "AllowImportedKeyRotation": policy.allow_imported_key_rotation,
        "soft_deleted": policy.soft_deleted,
    })
    doc.update(policy.extra)
    return doc


def policy_from_doc(doc: Any) -> Policy:
    d = _folded(doc)
    try:
        key_type = KeyType(_int(d.get("type")))
    except ValueError:
        raise ValueError(f"unsupported key type {d.get('type')!r}") from None
    keys_doc = d.get("keys") or {}
    if not isinstance(keys_doc, dict):
        raise ValueError("keys must be an object")
    keys = {}
    for version, entry in keys_doc.items():
        keys[int(version)] = entry_from_doc(entry)
    known = {f.lower() for f in _POLICY_FIELDS}
    extra = {k: v for k, v in doc.items() if k.lower() not in known}
    policy = Policy(
        name=str(d.get("name") or ""), type=key_type, keys=keys,
        derived=bool(d.get("derived")), kdf=_int(d.get("kdf")),
        convergent_encryption=bool(d.get("convergent_encryption")),
        convergent_version=_int(d.get("convergent_version")),
        exportable=bool(d.get("exportable")),
        min_decryption_version=_int(d.get("min_decryption_version")),
        min_encryption_version=_int(d.get("min_encryption_version")),
        latest_version=_int(d.get("latest_version")),
        archive_version=_int(d.get("archive_version")),
        archive_min_version=_int(d.get("archive_min_version")),
        min_available_version=_int(d.get("min_available_version")),
        deletion_allowed=bool(d.get("deletion_allowed")),
        backup_info=_info(d.get("backup_info")), restore_info=_info(d.get("restore_info")),
        allow_plaintext_backup=bool(d.get("allow_plaintext_backup")),
        version_template=str(d.get("version_template") or ""),
        storage_prefix=str(d.get("storage_prefix") or ""),
        auto_rotate_period=_int(d.get("auto_rotate_period")) // _NS,
        imported=bool(d.get("imported")),
        allow_imported_key_rotation=bool(d.get("allowimportedkeyrotation")),
        soft_deleted=bool(d.get("soft_deleted")), key_size=_int(d.get("key_size")),
        extra=extra)
    legacy = _unb64(d.get("key"))
    if legacy:
        # Before key rings: one key, which becomes version 1 (MigrateKeyToKeysMap).
        now = datetime.now(UTC)
        policy.keys = {1: KeyEntry(key=legacy, time=now, creation_time=int(now.timestamp()))}
    return policy


def _dump(doc: Any) -> bytes:
    # Go escapes <, > and & in strings; json.dumps does not, and neither is needed
    # for reading. Compact separators as Go's encoder writes.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(policy: Policy) -> bytes:
    return _dump(policy_doc(policy))


def loads(raw: bytes) -> Policy:
    return policy_from_doc(json.loads(raw))


def archive_dumps(entries: list[KeyEntry]) -> bytes:
    """``archivedKeys``: ``{"keys": [...]}``, index i = version ``archive_min_version + i``."""
    return _dump({"keys": [entry_doc(e) for e in entries]})


def archive_loads(raw: bytes | None) -> list[KeyEntry]:
    if raw is None:
        return []
    doc = _folded(json.loads(raw))
    return [entry_from_doc(e) for e in doc.get("keys") or []]
