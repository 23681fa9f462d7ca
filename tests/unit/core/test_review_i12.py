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
