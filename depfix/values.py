"""Symbolic values: what an expression refers to, as far as one file can tell.

The per-file pass turns expressions into these small, picklable values; the project index resolves them
across files. `Name("app.db.get_db")` is a global qualified name (imports already applied), `Call(v)` is
the result of calling `v`, `Attr(v, "x")` an attribute of a value that is not a plain name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Name:
    """A qualified name: a module, or a name reached from one (`fastapi.Depends`, `app.db.get_db`)."""

    qname: str


@dataclass(frozen=True)
class Call:
    """What calling `func` returns (an instance, for a class)."""

    func: Value


@dataclass(frozen=True)
class Attr:
    """An attribute of a value that has no qualified name (`FastAPI().router`)."""

    base: Value
    attr: str


@dataclass(frozen=True)
class Literal:
    """A literal or display (`"x"`, `{}`, `[1]`, an f-string): never callable."""


@dataclass(frozen=True)
class Lambda:
    """A lambda, or a function defined locally and returned by name: callable."""


@dataclass(frozen=True)
class Unknown:
    """Anything else."""


Value = Union[Name, Call, Attr, Literal, Lambda, Unknown]

UNKNOWN = Unknown()
LITERAL = Literal()
LAMBDA = Lambda()
