"""Whether instances of a class can be called: what DF005 and DF012 need to know."""

from __future__ import annotations

from typing import Optional

from depfix.index import Class, External, ProjectIndex

NON_CALLABLE_CLASSES = frozenset(
    {
        "builtins.object",
        "builtins.Exception",
        "pydantic.BaseModel",
        "pydantic.main.BaseModel",
        "pydantic.BaseSettings",
        "pydantic_settings.BaseSettings",
        "sqlalchemy.orm.Session",
        "sqlalchemy.orm.session.Session",
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlmodel.Session",
        "sqlalchemy.engine.Connection",
        "httpx.Client",
        "httpx.AsyncClient",
        "typing.NamedTuple",
        "enum.Enum",
    }
)


def class_is_callable(index: ProjectIndex, cls: Class) -> Optional[bool]:
    """False when no class in the hierarchy defines `__call__`; None when a base is unknown."""
    if "__call__" in cls.fact.methods:
        return True
    for base in index.class_bases(cls):
        if isinstance(base, Class):
            if "__call__" in base.fact.methods:
                return True
        elif not (isinstance(base, External) and base.qname in NON_CALLABLE_CLASSES):
            return None
    return False
