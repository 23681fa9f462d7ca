"""Path patterns bound to per-operation handlers, and the backend that routes them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from strongroom.core.logical import SecretType, SpecialPaths
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import NoRouteError, UnsupportedOperationError, no_route_message
from strongroom.framework.fields import Field, FieldData

_NO_SPECIAL_PATHS = SpecialPaths()

Handler = Callable[[Request, FieldData, "re.Match[str]"], Response | None]
ExistenceCheck = Callable[[Request, FieldData, "re.Match[str]"], bool]


@dataclass(frozen=True)
class Path:
    """One endpoint: an anchored regex over the mount-relative path."""

    pattern: str
    operations: Mapping[Operation, Handler]
    fields: Mapping[str, Field] = field(default_factory=dict)
    help: str = ""
    # Decides create vs update for a write, which policies distinguish (Vault's
    # ExistenceCheck). Without one, every write is an update.
    existence: ExistenceCheck | None = None
    # Vault reports unrecognised parameters as a warning instead of failing.
    warn_unknown: bool = True
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(f"^{self.pattern}$"))

    def match(self, path: str) -> re.Match[str] | None:
        return self.regex.match(path)


def field_data(path: Path, req: Request, match: re.Match[str]) -> FieldData:
    """The request's fields, values captured from the URL winning over the body's.

    The ACL decided on the URL: a body field of the same name must not redirect the
    request elsewhere (``{"name": "other"}`` sent to ``policies/acl/allowed``). As in
    Vault's framework, every named group counts, "" when it did not take part.
    """
    captures = match.groupdict("")
    if not req.data:
        return FieldData(path.fields, captures)
    return FieldData(path.fields, {**req.data, **captures})


class PathBackend:
    """Dispatches a mount-relative request to the first matching Path.

    Implements core/logical.py's ``LogicalBackend``: the lifecycle hooks do nothing
    here; a backend with state to set up, cache or close overrides them.
    """

    def __init__(
        self,
        paths: list[Path],
        special_paths: SpecialPaths = _NO_SPECIAL_PATHS,
        secret_types: Sequence[SecretType] = (),
    ) -> None:
        self.paths = paths
        self._special_paths = special_paths
        self._secret_types = {t.name: t for t in secret_types}

    @property
    def special_paths(self) -> SpecialPaths:
        return self._special_paths

    def secret_type(self, name: str) -> SecretType | None:
        return self._secret_types.get(name)

    def initialize(self) -> None:
        """Active node only: create what the backend needs in storage."""

    def invalidate(self, key: str) -> None:
        """``key`` (relative to the mount's storage view) changed elsewhere."""

    def periodic(self) -> None:
        """Background work, run on the active node by the node's owner process."""

    def cleanup(self) -> None:
        """The mount is going away: release connections and pools."""

    def _find(self, rel_path: str) -> tuple[Path, re.Match[str]]:
        for path in self.paths:
            match = path.match(rel_path)
            if match is not None:
                return path, match
        raise NoRouteError(no_route_message(rel_path))

    def existence(self, req: Request, rel_path: str) -> bool | None:
        """Whether the target of a write exists; None when the path does not say."""
        try:
            path, match = self._find(rel_path)
        except NoRouteError:
            return None
        if path.existence is None:
            return None
        return path.existence(req, field_data(path, req, match), match)

    def handle(self, req: Request, rel_path: str) -> Response | None:
        path, match = self._find(rel_path)
        handler = path.operations.get(req.operation)
        if handler is None:
            if req.operation is Operation.CREATE and Operation.UPDATE in path.operations:
                handler = path.operations[Operation.UPDATE]
            else:
                raise UnsupportedOperationError("unsupported operation")
        data = field_data(path, req, match)
        resp = handler(req, data, match)
        # Path segments captured by the pattern are never "unrecognized parameters".
        unknown = [name for name in data.unknown if name not in match.groupdict()]
        if resp is not None and path.warn_unknown and unknown:
            resp.warnings.append(
                "Endpoint ignored these unrecognized parameters: [" + " ".join(unknown) + "]")
        # Vault says so when a body field lost to the URL's value of the same name.
        replaced = [name for name in match.groupdict()
                    if req.data and req.data.get(name) is not None]
        if resp is not None and replaced:
            resp.warnings.append("Endpoint replaced the value of these parameters with the "
                                 "values captured from the endpoint's path: ["
                                 + " ".join(replaced) + "]")
        return resp
