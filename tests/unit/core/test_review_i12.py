"""Findings of the issue-12 attacker review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest

from strongroom.engines.database.plugins import DatabaseError, build


@pytest.mark.parametrize("url", [
    "postgresql://root:pa%zzss@127.0.0.1:1/db",
    "host=127.0.0.1 port=1 user=root password=pa%zzss bogus=1",
])
def test_a_password_in_connection_url_never_reaches_an_error(url: str) -> None:
    """libpq quotes a URI part it cannot decode ('invalid percent-encoded token:
    "<password>"'): the password written into connection_url (not the ``password``
    field) was not among the secrets an error is cleaned of, so the root password went
    to the client (any creds reader of a role on that config) and in clear to the
    audit log's ``error``."""
    plugin = build("postgresql-database-plugin", {"connection_url": url})
    try:
        with pytest.raises(DatabaseError) as caught:
            plugin.verify()
    finally:
        plugin.close()
    assert "pa%zzss" not in caught.value.message, caught.value.message
    assert "zzss" not in caught.value.message


def test_a_lease_that_fails_to_register_with_any_error_revokes_the_credential(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """register_lease undid the backend's secret only for a StrongroomError: any other
    failure of the registration (a bug, a storage client's own exception) left the
    database user live with no lease that would ever revoke it."""
    from tests.support.leased_engine import leased_engine
    from tests.support.nodes import dev_node

    with leased_engine() as ledger:
        d = dev_node()
        assert d.call("POST", "sys/mounts/db", json={"type": "leasetest"}).status_code == 204

        def broken(*args: object, **kwargs: object) -> str:
            raise RuntimeError("storage client blew up")

        monkeypatch.setattr(d.node.core.expiration, "register", broken)
        resp = d.call("GET", "db/creds/app")
        assert resp.status_code == 500
        assert ledger.users == set(), "a credential with no lease is still live"


def test_a_token_whose_lease_fails_to_register_with_any_error_is_revoked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for a token's own lease (register_auth caught StrongroomError only)."""
    from tests.support.nodes import dev_node

    d = dev_node()
    before = d.call("LIST", "auth/token/accessors").json["data"]["keys"]

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("storage client blew up")

    monkeypatch.setattr(d.node.core.expiration.store, "put", broken)
    resp = d.call("POST", "auth/token/create", json={"policies": ["default"]})
    assert resp.status_code == 500
    monkeypatch.undo()
    after = d.call("LIST", "auth/token/accessors").json["data"]["keys"]
    assert sorted(after) == sorted(before), "a token with no lease is still live"


@pytest.mark.parametrize("op", ["revoke", "renew"])
def test_a_lease_id_in_the_body_cannot_redirect_a_url_scoped_grant(op: str) -> None:
    """The ACL decides on the URL (sys/leases/revoke/<lease id>); the handler took the
    body's lease_id first, so a token allowed to revoke (renew) only its own role's
    leases by URL revoked (renewed) any lease by naming it in the body. A body id that
    differs from the URL's is refused."""
    from tests.support.leased_engine import leased_engine
    from tests.support.nodes import dev_node

    with leased_engine() as ledger:
        d = dev_node()
        assert d.call("POST", "sys/mounts/db", json={"type": "leasetest"}).status_code == 204
        policy = f'path "sys/leases/{op}/db/creds/mine/*" {{ capabilities = ["update"] }}'
        assert d.call("PUT", "sys/policies/acl/mine",
                      json={"policy": policy}).status_code == 204
        token = d.call("POST", "auth/token/create",
                       json={"policies": ["mine"]}).json["auth"]["client_token"]
        mine = d.call("GET", "db/creds/mine", params={"ttl": "1h"}).json
        theirs = d.call("GET", "db/creds/admin", params={"ttl": "1h"}).json
        # Directly: denied.
        direct = d.call("PUT", f"sys/leases/{op}/" + theirs["lease_id"], token=token)
        assert direct.status_code == 403
        # Through the body of an allowed URL: refused too.
        resp = d.call("PUT", f"sys/leases/{op}/" + mine["lease_id"], token=token,
                      json={"lease_id": theirs["lease_id"]})
        assert resp.status_code == 400, resp.text
        assert theirs["data"]["username"] not in ledger.revoked
        assert theirs["data"]["username"] not in ledger.renewed
        # The URL alone, and the same id in both, still work.
        ok = d.call("PUT", f"sys/leases/{op}/" + mine["lease_id"], token=token,
                    json={"lease_id": mine["lease_id"]})
        assert ok.status_code in (200, 204), ok.text


def test_a_prefix_in_the_body_cannot_widen_a_url_scoped_revoke_prefix() -> None:
    """Pinned (held before the review): the URL's prefix wins over a body ``prefix``."""
    from tests.support.leased_engine import leased_engine
    from tests.support.nodes import dev_node

    with leased_engine() as ledger:
        d = dev_node()
        assert d.call("POST", "sys/mounts/db", json={"type": "leasetest"}).status_code == 204
        policy = ('path "sys/leases/revoke-prefix/db/creds/mine*" '
                  '{ capabilities = ["update", "sudo"] }')
        assert d.call("PUT", "sys/policies/acl/mine",
                      json={"policy": policy}).status_code == 204
        token = d.call("POST", "auth/token/create",
                       json={"policies": ["mine"]}).json["auth"]["client_token"]
        theirs = d.call("GET", "db/creds/admin").json
        resp = d.call("PUT", "sys/leases/revoke-prefix/db/creds/mine", token=token,
                      json={"prefix": "db/"})
        assert resp.status_code == 204, resp.text
        assert theirs["data"]["username"] not in ledger.revoked


@pytest.mark.parametrize(("plugin", "url", "shown"), [
    ("mysql-database-plugin", "root:S3cretRootPw@tcp(127.0.0.1:1)/",
     "root:xxxxx@tcp(127.0.0.1:1)/"),
    ("postgresql-database-plugin", "host=127.0.0.1 port=1 user=root password=S3cretRootPw",
     "host=127.0.0.1 port=1 user=root password=xxxxx"),
    ("postgresql-database-plugin", "postgresql://root:S3cretRootPw@127.0.0.1:1/db",
     "postgresql://root:xxxxx@127.0.0.1:1/db"),
])
def test_database_config_read_never_shows_a_password_in_connection_url(
        plugin: str, url: str, shown: str) -> None:
    """Only a URI's userinfo password was masked on READ database/config/<name>; Go's
    MySQL DSN (``user:password@tcp(...)/``, the form the mysql plugin takes) and libpq's
    keyword form showed the root password to anyone who may read the config."""
    from tests.support.nodes import dev_node

    d = dev_node()
    assert d.call("POST", "sys/mounts/database", json={"type": "database"}).status_code == 204
    resp = d.call("PUT", "database/config/db", json={
        "plugin_name": plugin, "connection_url": url, "verify_connection": False,
        "allowed_roles": ["*"]})
    assert resp.status_code in (200, 204), resp.text
    read = d.call("GET", "database/config/db")
    assert read.status_code == 200, read.text
    assert "S3cretRootPw" not in read.text
    assert read.json["data"]["connection_details"]["connection_url"] == shown


def test_a_secret_obtained_by_a_token_revoked_in_flight_does_not_outlive_it() -> None:
    """A token's last use (num_uses) is revoked when the handler returns, before the
    lease stage registers the secret under it; a token revoked by another request while
    this one was in flight likewise: its revocation had listed its leases before this
    lease was written. The lease was then indexed under a dead token and the database
    user lived to its full TTL (Vault revokes a secret with the token that obtained
    it). Now the lease is revoked (lazily, as Vault's RevokeByToken) at registration."""
    from tests.support.leased_engine import leased_engine
    from tests.support.nodes import dev_node

    with leased_engine():
        d = dev_node()
        assert d.call("POST", "sys/mounts/db", json={"type": "leasetest"}).status_code == 204
        policy = 'path "db/creds/*" { capabilities = ["read"] }'
        assert d.call("PUT", "sys/policies/acl/creds",
                      json={"policy": policy}).status_code == 204
        token = d.call("POST", "auth/token/create", json={
            "policies": ["creds"], "num_uses": 1}).json["auth"]["client_token"]
        resp = d.call("GET", "db/creds/app", token=token, params={"ttl": "1h"})
        assert resp.status_code == 200, resp.text
        assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 403
        entry = d.node.core.expiration.store.get(resp.json["lease_id"])
        assert entry is not None
        assert entry.expire_time <= d.node.core.now(), "outlives the token that obtained it"


def test_a_generated_username_fits_the_databases_byte_limit() -> None:
    """``truncate`` cut characters, Go's cuts bytes: a role name of multibyte
    characters (the route's ``\\w`` is Unicode in Python, ASCII in Go) made the default
    PostgreSQL username longer than 63 bytes. PostgreSQL truncates such an identifier
    with only a NOTICE, so CREATE ROLE made a shorter name than the lease kept: the
    revocation's DROP ROLE named a role that does not exist (the default revocation
    skips it silently) and the credential stayed live after its lease was revoked."""
    from strongroom.engines.database.plugins import build as build_plugin

    pg = build_plugin("postgresql-database-plugin",
                      {"connection_url": "postgresql://u:p@127.0.0.1:1/db"})
    my = build_plugin("mysql-database-plugin", {"connection_url": "u:p@tcp(127.0.0.1:1)/"})
    try:
        name = pg.generate_username("数据库读写角色用", "token-abcdefgh")
        assert len(name.encode()) <= 63, (name, len(name.encode()))
        name = my.generate_username("数据库读写角色用户", "token-abcdefgh")
        assert len(name.encode()) <= 32 * 4  # MySQL counts characters (32)
        assert len(name) <= 32
    finally:
        pg.close()
        my.close()


def test_a_username_postgresql_would_shorten_is_refused() -> None:
    """Any template (not only truncate's old count) making a name over PostgreSQL's 63
    bytes is refused before CREATE ROLE, instead of a user its revocation misses."""
    from strongroom.engines.database.plugins import build as build_plugin

    pg = build_plugin("postgresql-database-plugin", {
        "connection_url": "postgresql://u:p@127.0.0.1:1/db",
        "username_template": "{{ .RoleName }}-{{ random 70 }}"})
    try:
        with pytest.raises(DatabaseError, match="longer than 63 bytes"):
            pg.generate_username("app", "token")
    finally:
        pg.close()


_DEADLOCK_DEMO = r'''
import itertools, threading, time
from strongroom.node import locks

def stripe(name):
    with locks.node_lock(name):
        return sorted(locks._held.stripes)[0]

# A token's lease (held while its tree is revoked) and a database config (held while a
# secret lease is revoked) on one stripe; two secret leases on another.
db = "database:mount-uuid:pg"
token_lease = next((f"lease|auth/token/create/{i}" for i in range(20000)
                    if stripe(f"lease|auth/token/create/{i}") == stripe(db)), None)
if token_lease is None:
    print("ok")  # no name of another kind shares the database lock's stripe
    raise SystemExit(0)
s1 = stripe("lease|db/creds/app/0")
other = next(f"lease|db/creds/app/{i}" for i in itertools.count(1)
             if stripe(f"lease|db/creds/app/{i}") == s1)
barrier = threading.Barrier(2)

def runner():  # expire(token lease) -> revoke_by_token -> revoke_lazy(secret lease)
    with locks.node_lock(token_lease):
        barrier.wait()
        time.sleep(0.2)
        with locks.node_lock("lease|db/creds/app/0"):
            pass

def worker():  # revoke(secret lease) -> the database engine's serialized(config)
    with locks.node_lock(other):
        barrier.wait()
        time.sleep(0.2)
        with locks.node_lock(db):
            pass

threads = [threading.Thread(target=f, daemon=True) for f in (runner, worker)]
for t in threads:
    t.start()
for t in threads:
    t.join(5)
print("deadlock" if any(t.is_alive() for t in threads) else "ok")
'''


def test_nested_node_locks_of_different_kinds_cannot_deadlock_through_a_shared_stripe() -> None:
    """node_lock hashes every name onto one pool of 256 stripes; locks are nested in a
    fixed order of kinds (token -> a token's lease -> a secret's lease -> database), but
    two names of different kinds sharing a stripe reverse that order: the expiry runner
    holding a token's lease and wanting a secret's lease, a worker holding another
    secret's lease (same stripe) and wanting the database config's lock (same stripe as
    the token's lease) wait on each other for ever (flock across processes: the node's
    workers hang on those stripes). Each kind now has stripes of its own."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _DEADLOCK_DEMO], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


def test_an_async_revoke_prefix_of_token_leases_revokes_the_tokens() -> None:
    """revoke-prefix (or revoke) with sync=false marks the lease expired now and leaves
    it to the expiry runner; for a token's lease the runner took the token's own
    (future) expiry back instead of revoking it: 202, and the tokens lived on (Vault's
    LazyRevoke revokes them)."""
    from strongroom.core.lease_expiry import ExpiryRunner
    from tests.support.nodes import dev_node

    d = dev_node()
    assert d.call("POST", "auth/token/roles/r", json={}).status_code == 204
    made = d.call("POST", "auth/token/create/r", json={"ttl": "1h"}).json["auth"]["client_token"]
    other = d.call("POST", "auth/token/create/r", json={"ttl": "1h"}).json["auth"]
    runner = ExpiryRunner()
    runner.tick(d.node.core)
    resp = d.call("PUT", "sys/leases/revoke-prefix/auth/token/create/r", json={"sync": False})
    assert resp.status_code == 202
    d.node.core.sync()
    runner.tick(d.node.core, now=d.node.core.now() + 1)
    assert d.call("GET", "auth/token/lookup-self", token=made).status_code == 403
    assert d.call("GET", "auth/token/lookup-self",
                  token=other["client_token"]).status_code == 403
    assert d.call("GET", "auth/token/lookup-self").status_code == 200  # root: not under it
