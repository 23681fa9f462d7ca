"""Path patterns bound to per-operation handlers, and the backend that routes them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strongroom.core.request import Operation, Request, Response
from strongroom.errors import NoRouteError, UnsupportedOperationError, no_route_message
from strongroom.framework.fields import Field, FieldData

Handler = Callable[[Request, FieldData, "re.Match[str]"], Response | None]


@dataclass(frozen=True)
class Path:
    """One endpoint: an anchored regex over the mount-relative path."""

    pattern: str
    operations: Mapping[Operation, Handler]
    fields: Mapping[str, Field] = field(default_factory=dict)
    help: str = ""
    # Vault reports unrecognised parameters as a warning instead of failing.
    warn_unknown: bool = True

    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(f"^{self.pattern}$"))

    def match(self, path: str) -> re.Match[str] | None:
        return self.regex.match(path)


class PathBackend:
    """Dispatches a mount-relative request to the first matching Path."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def handle(self, req: Request, rel_path: str) -> Response | None:
        for path in self.paths:
            match = path.match(rel_path)
            if match is None:
                continue
            handler = path.operations.get(req.operation)
            if handler is None:
                if req.operation is Operation.CREATE and Operation.UPDATE in path.operations:
                    handler = path.operations[Operation.UPDATE]
                else:
                    raise UnsupportedOperationError("unsupported operation")
            data = FieldData(path.fields, {**match.groupdict(), **req.data})
            resp = handler(req, data, match)
            if resp is not None and path.warn_unknown and data.unknown:
                resp.warnings.append(
                    "Endpoint ignored these unrecognized parameters: " + str(data.unknown)
                )
            return resp
        raise NoRouteError(no_route_message(rel_path))
