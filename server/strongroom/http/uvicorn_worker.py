"""A gunicorn worker serving the ASGI app with uvicorn, on the h11 parser.

httptools (uvicorn's fast C parser) rejects methods it does not know, and
Vault clients such as hvac send ``LIST``; h11 accepts any method token.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn.workers import UvicornWorker


class StrongroomUvicornWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "h11", "lifespan": "off"}
