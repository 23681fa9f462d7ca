"""The database plugins by name (Vault's catalog of built-in database plugins)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .plugin_base import (
    MYSQL,
    POSTGRES,
    ConnectError,
    DatabaseError,
    Plugin,
    redact_url,
    url_has_password,
)
from .plugin_mysql import MySQLPlugin
from .plugin_postgres import PostgresPlugin

PLUGINS = (POSTGRES, MYSQL)
__all__ = ["ConnectError", "DatabaseError", "MySQLPlugin", "Plugin", "PostgresPlugin",
           "build", "redact_url", "url_has_password"]


def build(plugin_name: str, details: Mapping[str, Any]) -> Plugin:
    """A plugin instance for a config; unknown names are Vault's catalog error."""
    if plugin_name == POSTGRES:
        return PostgresPlugin(details)
    if plugin_name == MYSQL:
        return MySQLPlugin(details)
    raise DatabaseError(f"no plugin found for {plugin_name!r}")
