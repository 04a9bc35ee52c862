"""Whether instances of a class can be called: what DF005 and DF012 need to know."""

from __future__ import annotations

from typing import Optional

from depfix.index import Class, External, ProjectIndex

NON_CALLABLE_CLASSES = frozenset(
    {
        "builtins.object",
        "builtins.Exception",
        "abc.ABC",
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


PLAIN_CLASS_DECORATORS = frozenset(
    {
        "dataclasses.dataclass",
        "functools.total_ordering",
        "typing.final",
        "typing_extensions.final",
        "typing.runtime_checkable",
        "typing_extensions.runtime_checkable",
    }
)
"""Class decorators that return the class with no `__call__` added."""
PLAIN_METACLASSES = frozenset({"abc.ABCMeta", "enum.EnumMeta", "enum.EnumType"})


def _plain(index: ProjectIndex, cls: Class) -> bool:
    """Whether calling the class gives an instance of it, with the methods its body defines.

    A `__new__`, a metaclass or a decorator may return something else, or add a `__call__`.
    """
    if "__new__" in cls.fact.methods:
        return False
    for decorator in cls.fact.decorators:
        resolved = index.resolve(decorator)
        if not (isinstance(resolved, External) and resolved.qname in PLAIN_CLASS_DECORATORS):
            return False
    if cls.fact.decorated and not cls.fact.decorators:  # facts from before decorators were kept
        return False
    if cls.fact.metaclass is not None:
        resolved = index.resolve(cls.fact.metaclass)
        return isinstance(resolved, External) and resolved.qname in PLAIN_METACLASSES
    return True


def class_is_callable(index: ProjectIndex, cls: Class) -> Optional[bool]:
    """Whether instances of the class can be called.

    True when a class in the hierarchy defines `__call__`; False when none does and every class is
    known (project classes that make plain instances, or known library classes); None otherwise.
    """
    hierarchy = [cls, *index.class_bases(cls)]
    if any(isinstance(c, Class) and "__call__" in c.fact.methods for c in hierarchy):
        return True
    for candidate in hierarchy:
        if isinstance(candidate, Class):
            if not _plain(index, candidate):
                return None
        elif not (isinstance(candidate, External) and candidate.qname in NON_CALLABLE_CLASSES):
            return None
    return False
