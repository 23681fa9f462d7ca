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
