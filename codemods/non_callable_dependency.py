"""DF012 non-callable-dependency: `Depends(obj)` where `obj` is an instance that cannot be called.

`Depends` needs something FastAPI can call on every request: a function, a class, or an instance of a
class with `__call__`. An instance of a class without `__call__` makes FastAPI fail at startup with
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
(a SQLAlchemy session, an HTTP client). Callable instances, classes and functions are fine; instances
of classes with unknown bases are not reported.
"""

from __future__ import annotations

import libcst as cst

from codemods._callables import NON_CALLABLE_CLASSES, class_is_callable
from depfix.facts import FileFacts
from depfix.index import Class, External, Instance, ProjectIndex
from depfix.rules import FileRule, register


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
        return bool(facts.dependency_refs)

    def visit_Call(self, node: cst.Call) -> None:
        span = self.span(node)
        ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
        if ref is None or ref.fact.target_is_call or ref.fact.target is None or ref.fact.in_string:
            return
        target = ref.target
        if not isinstance(target, Instance):
            return
        if isinstance(target.of, Class):
            if class_is_callable(self.index, target.of) is not False:
                return
            name = target.of.fact.qualname
        elif isinstance(target.of, External) and target.of.qname in NON_CALLABLE_CLASSES:
            name = target.of.qname.rsplit(".", 1)[-1]
        else:
            return
        self.report(
            node,
            f"{ref.kind.capitalize()} receives a `{name}` instance, which has no `__call__`: FastAPI "
            "fails at startup",
            reason="pass a function or a class; which one depends on what the instance is for",
        )
