"""``config``: the directory to talk to, how to find users and their groups, and the
token fields every login's token gets."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strongroom.auth.tokenutil import TOKEN_FIELDS
from strongroom.core.request import Operation, Request, Response
from strongroom.errors import BadRequestError
from strongroom.framework import FieldData, Path

from .config import CONFIG_FIELDS, ConfigError, LdapConfig

if TYPE_CHECKING:
    from . import LdapBackend

USER_FILTER_WARNING = ("userfilter configured does not consider userattr and may result in "
                       "colliding entity aliases on logins")


def _warnings(cfg: LdapConfig) -> list[str]:
    if not cfg.userfilter or "{{.UserAttr}}" in cfg.userfilter \
            or cfg.userattr in cfg.userfilter:
        return []
    return [USER_FILTER_WARNING]


def paths(b: LdapBackend) -> list[Path]:
    def read(req: Request, data: FieldData, m: re.Match[str]) -> Response:
        cfg = b.config()
        return Response(data=cfg.to_data(), warnings=_warnings(cfg))

    def write(req: Request, data: FieldData, m: re.Match[str]) -> Response | None:
        stored = b.stored_config()
        cfg = LdapConfig.from_json(stored.to_json()) if stored else LdapConfig()
        try:
            cfg.update_from(data, create=False)
        except ConfigError as exc:
            raise BadRequestError(str(exc)) from None
        cfg.token.update_from(data, create=stored is None)
        b.put_config(cfg)
        warnings = _warnings(cfg)
        return Response(warnings=warnings) if warnings else None

    return [Path("config", {Operation.READ: read, Operation.UPDATE: write},
                 fields={**CONFIG_FIELDS, **TOKEN_FIELDS},
                 help="Configure the LDAP server to connect to, along with its options.")]
