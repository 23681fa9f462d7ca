"""``random[/<source>][/<bytes>]``: random bytes, hex or base64 (OpenBao's rules).

Every source (platform, seal, all) reads the OS CSPRNG: Strongroom's seals add no
entropy source, and "seal" says so in a warning, as OpenBao without entropy
augmentation does. The URL's segments are read as OpenBao reads them (one segment
is a source if it names one, else a byte count), so ACLs on either keep working.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import Field, FieldData, FieldType, Path

from .goencoding import atoi, go_quote

if TYPE_CHECKING:
    from . import TransitBackend

MAX_BYTES = 128 * 1024  # OpenBao's random.APIMaxBytes
_SOURCES = ("", "platform", "seal", "all")
_SEAL_WARNING = "no seal/entropy augmentation available, using platform entropy source"
_SOURCE = r"(?P<source>[0-9A-Za-z_](?:[0-9A-Za-z_.-]*[0-9A-Za-z_])?)"


def paths(b: TransitBackend) -> list[Path]:
    fields = {
        "urlbytes": Field(FieldType.STRING),
        "bytes": Field(FieldType.INT, default=32),
        "format": Field(FieldType.STRING, default="base64"),
        "source": Field(FieldType.STRING, default="platform"),
    }
    return [Path(rf"random(?:/{_SOURCE})?(?:/(?P<urlbytes>.+))?",
                 {Operation.UPDATE: random_write}, fields, help="Generate random bytes")]


def _url_count(text: str) -> int:
    try:
        return atoi(text)
    except ValueError as exc:
        raise BadRequestError(f"error parsing url-set byte count: {exc}") from None


def random_write(req: Request, data: FieldData, m: re.Match[str]) -> Response:
    # The URL's segments win over the body's "source" (a body field never redirects
    # what the ACL allowed on the URL).
    url_source, url_bytes = m.group("source") or "", m.group("urlbytes") or ""
    source = "platform"
    if not url_source:
        count = int(data.get("bytes"))
    elif not url_bytes and url_source in _SOURCES:
        source, count = url_source, int(data.get("bytes"))
    elif not url_bytes:
        count = _url_count(url_source)
    else:
        source, count = url_source, _url_count(url_bytes)
    fmt = str(data.get("format"))
    if count < 1:
        raise BadRequestError("'bytes' cannot be less than 1")
    if count > MAX_BYTES:
        raise BadRequestError(f"'bytes' should be less than {MAX_BYTES}")
    if fmt not in ("hex", "base64"):
        raise BadRequestError(
            f'unsupported encoding format {go_quote(fmt)}; must be "hex" or "base64"')
    if source not in _SOURCES:
        raise BadRequestError(f'unsupported entropy source {go_quote(source)}; must be '
                              '"platform" or "seal", or "all"')
    raw = secrets.token_bytes(count)
    text = raw.hex() if fmt == "hex" else base64.b64encode(raw).decode()
    warnings = [_SEAL_WARNING] if source == "seal" else []
    return Response(data={"random_bytes": text}, warnings=warnings)
