"""Which files can matter to a run, decided from their bytes before anything is parsed.

A file whose bytes match none of these patterns defines no route, no `Depends`/`Security` marker and no
dependency override, and imports nothing from FastAPI or Starlette itself. The index still loads such a
file when a file that matters needs it (an import, a call of a dependency, a re-exported FastAPI name):
see `depfix.engine`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ROUTE_METHODS = rb"(?:get|post|put|patch|delete|options|head|trace|api_route|websocket)"
_MATTERS = re.compile(
    rb"fastapi|starlette|Depends|Security|dependency_overrides|add_api_route|add_api_websocket_route"
    rb"|@[^\n]*\." + ROUTE_METHODS + rb"\b"
)
_ROUTE_CALL = re.compile(rb"\." + ROUTE_METHODS + rb"\s*\(")
_CURRIED = re.compile(rb"\)\s*\(")


def matters(data: bytes, extra: Sequence[bytes] = ()) -> bool:
    """Whether a file can hold a route, a dependency marker or an override, or contains `extra`."""
    if _MATTERS.search(data) is not None or any(needle in data for needle in extra):
        return True
    # `app.get("/x")(handler)`: a route decorator applied by hand
    return _ROUTE_CALL.search(data) is not None and _CURRIED.search(data) is not None


IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def mentions(data: bytes, word: bytes) -> bool:
    """Whether `data` holds `word`: as a whole identifier when it is one, else anywhere."""
    if IDENTIFIER.fullmatch(word):
        return word in IDENTIFIER.findall(data)
    return word in data
