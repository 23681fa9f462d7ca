"""Talking to the directory (Vault's ``sdk/helper/ldaputil`` client), on ldap3.

Every call here blocks on the network: a login runs on a thread, never on a worker's
event loop (http/asgi.py runs ``auth/*/login*`` requests on its login pool), and every
connection has a connect timeout (``connection_timeout``, per URL) and a receive
timeout (``request_timeout``, per operation), so a dead server costs a bounded wait.

ldap3 is used with ``raise_exceptions=False``: a refused bind or search is a result
code, not an exception; socket and TLS failures are exceptions (``LDAPException``),
turned into :class:`LdapError` here so nothing above sees the library's types.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException

from .config import LdapConfig

# go-ldap's dereference constants by Vault's names (an unknown name: never, as Go's map).
_DEREF = {"never": ldap3.DEREF_NEVER, "finding": ldap3.DEREF_BASE,
          "searching": ldap3.DEREF_SEARCH, "always": ldap3.DEREF_ALWAYS}
TLS_VERSIONS = {"tls10": ssl.TLSVersion.TLSv1, "tls11": ssl.TLSVersion.TLSv1_1,
                "tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3}
_SUCCESS = 0
_PAGED_RESULTS = "1.2.840.113556.1.4.319"
_SIZE_LIMIT_EXCEEDED = 4


# Vault's answer to a wrong password, an unknown user and an ambiguous one alike.
BIND_FAILED = "ldap operation failed: failed to bind as user"


class LdapError(Exception):
    """A directory operation failed; the message is what the client is told."""


def go_multierror(errors: list[str]) -> str:
    """go-multierror's text, as Vault answers a failed dial of every URL."""
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "".join(f"\n\t* {e}" for e in errors) + "\n\n"


# -- escaping (RFC 4515 filters, RFC 4514 DN values) ------------------------------------

def escape_filter(value: str) -> str:
    """A value inside a search filter: go-ldap's EscapeFilter (every byte outside
    printable ASCII, and ``( ) * \\``, as ``\\xx``). Without it a username such as
    ``*`` or ``x)(uid=*`` would rewrite the filter."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if byte < 0x20 or byte > 0x7E or char in "()*\\":
            out.append(f"\\{byte:02x}")
        else:
            out.append(char)
    return "".join(out)


def escape_dn_value(value: str) -> str:
    """A username placed in a DN (Vault's EscapeLDAPValue, RFC 4514)."""
    data = value.encode("utf-8")
    out = []
    for i, byte in enumerate(data):
        char = chr(byte)
        if (i == 0 and char in " #") or (i == len(data) - 1 and char == " ") \
                or char in '"+,;<>\\':
            out.append("\\" + char)
        elif byte < 0x20 or byte > 0x7E:
            out.append(f"\\{byte:02x}")
        else:
            out.append(char)
    return "".join(out)


# -- templates ({{.Username}} in userfilter and groupfilter) -------------------------------

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_FIELD = re.compile(r"\.([A-Za-z_]\w*)")


def check_template(text: str) -> None:
    """Vault parses filters as Go templates when written; this build renders field
    references (``{{.UserDN}}``) only, so anything else is refused at write time."""
    rest = _ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise ValueError("template: queryTemplate: unclosed action")
    for action in _ACTION.findall(text):
        if not _FIELD.fullmatch(action):
            raise ValueError(f"template: queryTemplate: unsupported action {{{{{action}}}}}")


def render(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        field = _FIELD.fullmatch(match.group(1))
        if field is None or field.group(1) not in values:
            raise LdapError("LDAP search failed due to template parsing error: can't "
                            f"evaluate field {match.group(1).lstrip('.')}")
        return values[field.group(1)]
    return _ACTION.sub(one, text)


# -- TLS ---------------------------------------------------------------------------------

class _Tls(ldap3.Tls):  # type: ignore[misc]
    """ldap3's Tls with our own context: TLS versions bounded as configured, the
    server's name checked by OpenSSL (``check_hostname``, IP SANs included)."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=context.verify_mode)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_side=False, do_handshake_on_connect=do_handshake,
            server_hostname=self._host)


def tls_context(cfg: LdapConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = TLS_VERSIONS[cfg.tls_min_version]
    context.maximum_version = TLS_VERSIONS[cfg.tls_max_version]
    if cfg.insecure_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cfg.certificate:
        context.load_verify_locations(cadata=cfg.certificate)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cfg.client_tls_cert and cfg.client_tls_key:
        load_client_pair(context, cfg.client_tls_cert, cfg.client_tls_key)
    return context


def load_client_pair(context: ssl.SSLContext, cert: str, key: str) -> None:
    """OpenSSL reads a key pair from files only: an anonymous in-memory file
    (memfd) keeps the private key off every disk."""
    fd = os.memfd_create("strongroom-ldap-client", os.MFD_CLOEXEC)
    try:
        os.write(fd, (cert.strip() + "\n" + key.strip() + "\n").encode())
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


# -- connections -------------------------------------------------------------------------

def _open_one(cfg: LdapConfig, url: str) -> ldap3.Connection:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError as exc:
        raise LdapError(f"error parsing url {url!r}: {exc}") from None
    if parts.scheme == "ldap":
        use_ssl, port = False, port or 389
    elif parts.scheme == "ldaps":
        use_ssl, port = True, port or 636
    else:
        raise LdapError(f'invalid LDAP scheme in url "{parts.netloc}"')
    tls = _Tls(tls_context(cfg), host) if use_ssl or cfg.starttls else None
    server = ldap3.Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE,
                          connect_timeout=cfg.connection_timeout or None)
    conn = ldap3.Connection(server, auto_bind=ldap3.AUTO_BIND_NONE, raise_exceptions=False,
                            receive_timeout=cfg.request_timeout or None, read_only=True,
                            auto_referrals=False, check_names=False)
    try:
        conn.open(read_server_info=False)
        if cfg.starttls and not use_ssl:
            conn.start_tls(read_server_info=False)
    except BaseException:
        try:
            conn.unbind()
        except (LDAPException, OSError):
            pass  # the original failure is the one to report
        raise
    return conn


@contextmanager
def dial(cfg: LdapConfig) -> Iterator[ldap3.Connection]:
    """The first URL of ``cfg.url`` (comma-separated, in order) that connects (and
    completes StartTLS when asked), closed on exit."""
    errors: list[str] = []
    conn = None
    for url in cfg.url.split(","):
        try:
            conn = _open_one(cfg, url)
        except LdapError as exc:
            errors.append(str(exc))
            continue
        except (LDAPException, OSError, ssl.SSLError) as exc:
            errors.append(f'error connecting to host "{url}": {reason(exc)}')
            continue
        break
    if conn is None:
        raise LdapError(go_multierror(errors or ["no LDAP URL configured"]))
    try:
        yield conn
    finally:
        try:
            conn.unbind()
        except (LDAPException, OSError):
            pass  # closing a broken connection: nothing more to do


_WRAPPED = re.compile(r"""^\((['"])(.*)\1,\)$""", re.S)


def reason(exc: BaseException) -> str:
    """An exception's text without ldap3's tuple wrapping (``('("socket ...",)',)``)."""
    text = str(exc)
    while (match := _WRAPPED.match(text)) is not None:
        text = match.group(2).replace("\\'", "'")
    return text


def bind(conn: ldap3.Connection, dn: str, password: str) -> bool:
    """A simple bind; an empty password is never sent as an unauthenticated bind
    (RFC 4513 5.1.2: such a bind "succeeds" on some servers without any check)."""
    if not password:
        return False
    # Bytes go out as they are (ldap3 would SASLprep a str, and refuse some passwords
    # Vault sends unchanged, with a text of its own).
    conn.user, conn.password, conn.authentication = dn, password.encode("utf-8"), ldap3.SIMPLE
    return _bind(conn)


def anonymous_bind(conn: ldap3.Connection) -> bool:
    conn.user, conn.password, conn.authentication = None, None, ldap3.ANONYMOUS
    return _bind(conn)


def _bind(conn: ldap3.Connection) -> bool:
    try:
        return bool(conn.bind(read_server_info=False)) and \
            conn.result.get("result") == _SUCCESS
    except LDAPException as exc:
        raise LdapError(f"LDAP bind failed: {exc}") from None


def search(cfg: LdapConfig, conn: ldap3.Connection, base: str, filt: str,
           attributes: list[str], size_limit: int = 0, page_size: int = 0,
           ) -> list[tuple[str, dict[str, list[str]]]]:
    """(dn, {attribute (lower case): values}) of each entry found (subtree). With
    ``page_size``, the server's paged-results control (RFC 2696) fetches the entries a
    page at a time, past a server's size limit (Vault's ``max_page_size``)."""
    entries: list[tuple[str, dict[str, list[str]]]] = []
    cookie: bytes | None = None
    while True:
        try:
            conn.search(base, filt, search_scope=ldap3.SUBTREE,
                        attributes=attributes or [ldap3.NO_ATTRIBUTES],
                        size_limit=size_limit, auto_escape=False,
                        dereference_aliases=_DEREF.get(cfg.dereference_aliases,
                                                       ldap3.DEREF_NEVER),
                        paged_size=page_size or None, paged_cookie=cookie)
        except LDAPException as exc:
            raise LdapError(f"LDAP search failed: {exc}") from None
        code = conn.result.get("result")
        if code not in (_SUCCESS, _SIZE_LIMIT_EXCEEDED):
            raise LdapError(f"LDAP search failed: LDAP Result Code {code} "
                            f"\"{conn.result.get('description', '')}\": "
                            f"{conn.result.get('message', '')}")
        entries.extend(_entries(conn.response or []))
        cookie = _paged_cookie(conn.result) if page_size else None
        if not cookie:
            return entries


def _entries(response: list[dict[str, Any]]) -> list[tuple[str, dict[str, list[str]]]]:
    out = []
    for item in response:
        if item.get("type") != "searchResEntry":
            continue  # referrals are not followed
        raw = item.get("raw_attributes") or {}
        attrs = {str(k).lower(): [v.decode("utf-8", "replace") if isinstance(v, bytes)
                                  else str(v) for v in vals] for k, vals in raw.items()}
        out.append((str(item.get("dn", "")), attrs))
    return out


def _paged_cookie(result: dict[str, Any]) -> bytes | None:
    control = (result.get("controls") or {}).get(_PAGED_RESULTS) or {}
    cookie = (control.get("value") or {}).get("cookie")
    return cookie if isinstance(cookie, bytes) and cookie else None


def first_cn(dn: str, case_insensitive: bool) -> str:
    """The value of a DN's first ``cn`` (Vault's getCN); a value that is not a DN (a
    group's ``cn`` itself) is returned as it is."""
    try:
        rdns = ldap3.utils.dn.parse_dn(dn, escape=False, strip=True)
    except (LDAPException, ValueError, IndexError):
        return dn
    for attr, value, _sep in rdns:
        if attr == "CN" or (case_insensitive and attr.lower() == "cn"):
            return unescape_dn_value(str(value))
    return dn


_DN_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2}|.)")


def unescape_dn_value(value: str) -> str:
    """An RDN value as the directory means it (``a\\,b`` is ``a,b``; ``\\c3\\a9`` is é),
    as go-ldap's ParseDN gives it to Vault."""
    raw = bytearray()
    pos = 0
    for match in _DN_ESCAPE.finditer(value):
        raw += value[pos:match.start()].encode()
        escaped = match.group(1)
        raw += bytes.fromhex(escaped) if len(escaped) == 2 else escaped.encode()
        pos = match.end()
    raw += value[pos:].encode()
    return raw.decode("utf-8", "replace")
