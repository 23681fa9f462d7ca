"""Declarative paths, fields and operations for engines and auth methods."""

from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.framework.paths import Handler, Path, PathBackend

__all__ = ["Field", "FieldData", "FieldType", "Handler", "Path", "PathBackend"]
