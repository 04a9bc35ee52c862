"""DF012 non-callable-dependency: `Depends(obj)` where `obj` is an instance that cannot be called.

`Depends` needs something FastAPI can call on every request: a function, a class, or an instance of a
class with `__call__`. An instance of a class without `__call__`, bound to a name or made inline
(`Depends(Pager(10))`), makes FastAPI fail at startup (where the route is declared) with
`TypeError: <... object> is not a callable object`.

Before:

    class CsvExporter:
        def export(self, rows): ...

    csv_exporter = CsvExporter()

    @router.get("/export")
    def export(exporter: CsvExporter = Depends(csv_exporter)): ...

Fixed by hand (depfix offers no fix: the intent differs from case to case).

After:

    def get_exporter() -> CsvExporter:
        return csv_exporter

    @router.get("/export")
    def export(exporter: CsvExporter = Depends(get_exporter)): ...

Reported when the argument resolves (through the index, across files) to an instance of a project class
whose hierarchy defines no `__call__` and has only known bases, or of a known non-callable library class
(a SQLAlchemy session, an HTTP client, a pydantic model), also when the instance is made in the call
itself (`Depends(Pager(10))`, `Security(...)` alike; a dataclass is no exception). Callable instances
(`Depends(RateLimiter(times=5))`, `__call__` defined or inherited), classes and functions are fine;
instances of classes with an unknown base, a `__new__`, a metaclass or a decorator that may add a
`__call__` are not reported. A function's result (`Depends(get_db())`) is DF005's.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._callables import NON_CALLABLE_CLASSES, class_is_callable
from depfix.facts import FileFacts
from depfix.index import Class, DependencyRef, External, Instance, ProjectIndex
from depfix.rules import FileRule, register


def _non_callable_name(index: ProjectIndex, ref: DependencyRef) -> Optional[str]:
    """The class of the non-callable instance a reference injects (what DF012 reports), else None."""
    if ref.fact.target is None or ref.fact.in_string:
        return None
    target = ref.target
    if ref.fact.target_is_call:  # `Depends(Pager(10))`: the argument is an instance made here
        if not isinstance(target, (Class, External)):
            return None  # a function's result: DF005's question
        target = Instance(target)
    if not isinstance(target, Instance):
        return None
    if isinstance(target.of, Class):
        if class_is_callable(index, target.of) is not False:
            return None
        return target.of.fact.qualname
    if isinstance(target.of, External) and target.of.qname in NON_CALLABLE_CLASSES:
        return target.of.qname.rsplit(".", 1)[-1]
    return None


@register
class NonCallableDependency(FileRule):
    CODE = "DF012"
    NAME = "non-callable-dependency"
    SUMMARY = "`Depends(obj)` where `obj` is an instance of a class without `__call__`"
    FIX = "none"
    NEEDLES = (b"Depends", b"Security")
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_Call`: a verified reference of the file injects a non-callable instance."""
        return any(
            _non_callable_name(index, ref) is not None
            for ref in index.dependency_refs_in(facts.path)
        )

    def visit_Call(self, node: cst.Call) -> None:
        span = self.span(node)
        ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
        if ref is None:
            return
        name = _non_callable_name(self.index, ref)
        if name is None:
            return
        inline = ref.fact.target_is_call
        article = "an" if name[:1].lower() in "aeiou" else "a"
        if inline:
            self.report(
                node,
                f"{ref.kind.capitalize()} receives {article} `{name}` instance made here, which has no "
                "`__call__`: FastAPI fails at startup with `TypeError: ... is not a callable object`",
                reason=(
                    f"pass a function that returns the instance, or give `{name}` a `__call__`; "
                    f"`{ref.kind.capitalize()}({name})` would build one per request from request "
                    "parameters"
                ),
            )
            return
        self.report(
            node,
            f"{ref.kind.capitalize()} receives {article} `{name}` instance, which has no `__call__`: FastAPI "
            "fails at startup",
            reason="pass a function or a class; which one depends on what the instance is for",
        )
