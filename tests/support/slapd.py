"""A private OpenLDAP server (Debian's ``slapd``) for the LDAP auth method's tests.

Each test module starts its own: a temporary directory with a generated ``slapd.conf``
(mdb backend, Debian's schema files), a test directory loaded offline with
``slapadd``, TLS material from tests/support/tls.py, and two listeners on free ports:
``ldap://`` (StartTLS offered) and ``ldaps://``. Ready once a real bind as the
directory's administrator succeeds, not after a sleep. slapd missing: the module skips
locally and fails under ``CI=true`` (tests/support/requires.py).

The directory (``dc=example,dc=org``):

- ``ou=people``: alice, bob, carol (inetOrgPerson, ``uid`` = name, a ``cn`` of
  "<Name> Test", password ``<name>-pw``); alice has a ``userPrincipalName``
  (alice@example.org) through a small auxiliary class defined here; two entries share
  ``uid=twin`` (an ambiguous search);
- ``ou=groups``: ``cn=admins`` (groupOfNames, member alice), ``cn=devs`` (posixGroup,
  memberUid alice and bob) — the two shapes of Vault's default ``groupfilter``;
- ``cn=vault,ou=services``: the service account for search-then-bind (``binddn``),
  password ``vault-pw``.

Anonymous clients may search (``discoverdn`` without a service account) but read no
password; every user may bind.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import requires
from tests.support.servers import free_port
from tests.support.tls import write_self_signed

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PW = "admin-pw"
SERVICE_DN = f"cn=vault,ou=services,{BASE}"
SERVICE_PW = "vault-pw"
USERS = ("alice", "bob", "carol")
SCHEMA = Path("/etc/ldap/schema")
HINT = "apt-get install slapd ldap-utils (scripts/test.sh installs them)"
_SBIN = ("/usr/sbin", "/sbin")


def password(user: str) -> str:
    return f"{user}-pw"


def user_dn(user: str) -> str:
    return f"uid={user},{PEOPLE}"


@dataclass
class Slapd:
    ldap_url: str   # ldap://127.0.0.1:<port> (StartTLS offered)
    ldaps_url: str  # ldaps://127.0.0.1:<port>
    ca_pem: str     # the server's self-signed certificate (its own CA)
    workdir: Path
    proc: subprocess.Popen[bytes]


def _binary(name: str) -> str:
    for directory in _SBIN:
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return requires.binary(name, HINT)


def _ssha(secret: str) -> str:
    """{SSHA}: how a directory stores passwords (slappasswd's default scheme)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(secret.encode() + salt).digest()  # noqa: S324 - LDAP's scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


_CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
# Active Directory's userPrincipalName, for upndomain logins.
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'strongroomUpn' SUP top AUXILIARY
  MAY userPrincipalName )
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem
database mdb
maxsize 67108864
suffix "{base}"
rootdn "{admin}"
rootpw {admin_pw}
directory {dir}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
"""


def _ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject"
        f"\ncn: vault\nuserPassword: {_ssha(SERVICE_PW)}\n",
    ]
    for user in USERS:
        extra = ("objectClass: strongroomUpn\nuserPrincipalName: alice@example.org\n"
                 if user == "alice" else "")
        entries.append(
            f"dn: {user_dn(user)}\nobjectClass: inetOrgPerson\n{extra}uid: {user}\n"
            f"cn: {user.capitalize()} Test\nsn: Test\nmail: {user}@example.org\n"
            f"userPassword: {_ssha(password(user))}\n")
    for n in (1, 2):
        entries.append(
            f"dn: cn=twin{n},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin{n}\n"
            f"sn: Twin\nuserPassword: {_ssha(password('twin'))}\n")
    entries.append(
        f"dn: cn=admins,{GROUPS}\nobjectClass: groupOfNames\ncn: admins\n"
        f"member: {user_dn('alice')}\n")
    entries.append(
        f"dn: cn=devs,{GROUPS}\nobjectClass: posixGroup\ncn: devs\ngidNumber: 5000\n"
        "memberUid: alice\nmemberUid: bob\n")
    return "\n".join(entries)


def _ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """A real bind as the administrator, retried until it succeeds."""
    import ldap3

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"slapd exited with {proc.returncode}")
        try:
            conn = ldap3.Connection(ldap3.Server(url, connect_timeout=1, get_info=ldap3.NONE),
                                    ADMIN_DN, ADMIN_PW,
                                    receive_timeout=2)
            if conn.bind():
                conn.unbind()
                return
            last = str(conn.result)
        except Exception as exc:  # not listening yet
            last = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"slapd at {url} refused binds for {timeout}s: {last}")


@contextmanager
def running_slapd(workdir: Path, timeout: float = 20) -> Iterator[Slapd]:
    slapd, slapadd = _binary("slapd"), _binary("slapadd")
    if not (SCHEMA / "inetorgperson.schema").exists():
        requires.missing("slapd's schema files", HINT)
    requires.module("ldap3", "pip install ldap3")
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    write_self_signed(workdir)
    conf = workdir / "slapd.conf"
    conf.write_text(_CONFIG.format(schema=SCHEMA, dir=workdir, base=BASE, admin=ADMIN_DN,
                                   admin_pw=ADMIN_PW))
    (workdir / "data.ldif").write_text(_ldif())
    subprocess.run([slapadd, "-f", str(conf), "-l", str(workdir / "data.ldif")],
                   check=True, capture_output=True)
    ldap_port, ldaps_port = free_port(), free_port()
    ldap_url, ldaps_url = f"ldap://127.0.0.1:{ldap_port}", f"ldaps://127.0.0.1:{ldaps_port}"
    log = open(workdir / "slapd.log", "wb")  # noqa: SIM115 - closed on exit
    # -d: stay in the foreground (a child this test can stop), logging to stderr.
    proc = subprocess.Popen([slapd, "-f", str(conf), "-h", f"{ldap_url}/ {ldaps_url}/",
                             "-d", "stats"], stdout=log, stderr=subprocess.STDOUT)
    try:
        _ready(ldap_url, proc, timeout)
        yield Slapd(ldap_url, ldaps_url, (workdir / "cert.pem").read_text(), workdir, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def have_slapd() -> bool:
    return any(os.access(Path(d) / "slapd", os.X_OK) for d in _SBIN) or bool(
        shutil.which("slapd"))
