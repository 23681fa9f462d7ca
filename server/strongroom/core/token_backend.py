"""The ``auth/token/`` endpoints available so far (lookup-self)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.core.request import Operation, Request, Response
from strongroom.core.tokens import token_lookup_data
from strongroom.errors import PermissionDeniedError
from strongroom.framework import FieldData, Path, PathBackend

if TYPE_CHECKING:
    from strongroom.core.core import Core


class TokenBackend(PathBackend):
    def __init__(self, core: Core) -> None:
        self._core = core
        super().__init__([Path("lookup-self", {Operation.READ: self._lookup_self})])

    def _lookup_self(self, req: Request, data: FieldData, m: re.Match[str]) -> Response:
        entry = self._core.tokens.lookup(req.token or "")
        if entry is None or req.token is None:
            raise PermissionDeniedError()
        return Response(data=token_lookup_data(entry, req.token))
