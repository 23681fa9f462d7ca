"""A gunicorn worker serving the ASGI app with uvicorn, on the h11 parser.

httptools (uvicorn's fast C parser) rejects methods it does not know, and
Vault clients such as hvac send ``LIST``; h11 accepts any method token.
"""

from __future__ import annotations

from uvicorn.workers import UvicornWorker


class StrongroomUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "auto", "http": "h11", "lifespan": "off"}  # noqa: RUF012
