"""JSONx (IBM's XML rendering of JSON), Vault's ``format=jsonx`` for audit devices.

``{"a": 1}`` becomes ``<json:object><json:number name="a">1</json:number></json:object>``
inside an XML declaration, as Vault's jsonx writer produces; one line per entry.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>'
_NS = ' xmlns:json="http://www.ibm.com/xmlns/prod/2009/jsonx"'


def _element(value: Any, name: str | None, top: bool = False) -> str:
    attrs = (_NS if top else "") + (f" name={quoteattr(name)}" if name is not None else "")
    if value is None:
        return f"<json:null{attrs}/>"
    if isinstance(value, bool):
        return f"<json:boolean{attrs}>{'true' if value else 'false'}</json:boolean>"
    if isinstance(value, int | float):
        return f"<json:number{attrs}>{value}</json:number>"
    if isinstance(value, dict):
        inner = "".join(_element(v, str(k)) for k, v in sorted(value.items()))
        return f"<json:object{attrs}>{inner}</json:object>"
    if isinstance(value, list | tuple):
        inner = "".join(_element(v, None) for v in value)
        return f"<json:array{attrs}>{inner}</json:array>"
    return f"<json:string{attrs}>{escape(str(value))}</json:string>"


def to_jsonx(value: Any) -> bytes:
    return _HEADER + _element(value, None, top=True).encode()
