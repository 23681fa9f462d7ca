"""Every auth unit test starts with an empty login guard table (the process's own, no
lock directory): failure counts of one test never slow another's logins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.auth import login_guard
from strongroom.node import locks


@pytest.fixture(autouse=True)
def fresh_login_guard_tables() -> Iterator[None]:
    login_guard._tables.clear()
    yield
    login_guard._tables.clear()
    locks.configure(None)
