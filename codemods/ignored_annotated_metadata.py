"""DF017 ignored-annotated-metadata: `Annotated` metadata FastAPI ignores next to a marker default.

With `Query`, `Path`, `Header`, `Cookie`, `Body`, `Form` or `File` written as the default, FastAPI
validates a parameter against the type inside an `Annotated` annotation only: the constraints and
validators next to it (`StringConstraints`, `Field`, `annotated_types.MinLen`, pydantic's
`PositiveInt`) are silently dropped. The endpoint accepts what the alias says it rejects, and the
OpenAPI schema does not show the constraint. A FastAPI marker inside the annotation next to a marker
default is worse: FastAPI refuses it at startup, or, for a `Depends` in the annotation and a value
marker as the default, uses the `Depends` and ignores the default.

Before:

    QueryStr = Annotated[str, StringConstraints(pattern=r"^[a-z]+$", min_length=1)]

    @router.get("/search")
    def search(q: QueryStr = Query(None, alias="q")):
        ...

Fixed by hand (depfix offers no fix: applying the constraint changes which requests are answered).

After:

    @router.get("/search")
    def search(q: Annotated[QueryStr, Query(alias="q")] = None):
        ...

The annotation is followed through module-level aliases (`X = Annotated[...]`, `X = OtherAlias`,
nested `Annotated`, `TypeAliasType` and `type X = ...`), `typing` and `typing_extensions`, string
annotations and imports, across files. Literals and `Doc(...)` count as no metadata; metadata inside
another type (`Optional[QueryStr]`) is applied either way and is not reported, nor is metadata on a
`Depends`/`Security` parameter (FastAPI never validates a dependency's value). pydantic's
`PositiveInt`-style names and `conint(...)`-style calls count only where the project's FastAPI
requires pydantic 2 (0.126 or later; in pydantic 1 they are classes, always applied). A name depfix
cannot follow (a third-party module, a name bound to another call) is not reported; DF006 then
grades its fix unsafe instead of guessing.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from codemods._annotated_metadata import (
    DEPENDENCY_MARKERS,
    MARKER_NEEDLES,
    MARKERS,
    annotation_metadata,
    describe,
    fact_metadata,
    module_level_names,
)
from codemods._signatures import annotated_unsupported
from depfix.config import Settings
from depfix.facts import FileFacts, ParamFact
from depfix.index import ProjectIndex, qualified_name
from depfix.rules import FileRule, register


def _may_report(index: ProjectIndex, facts: FileFacts, param: ParamFact) -> bool:
    """Whether `check` may report on a parameter with a call as its default, from the facts.

    `check` reads module-level names, also in a function nested in a class or function whose
    bindings the facts followed (`ParamFact.module_view`).
    """
    param = param.module_view or param
    markers = {
        MARKERS.get(qualified_name(index.resolve(name)) or "")
        for name in module_level_names(facts, param.default_call)
    }
    markers.discard(None)
    if not markers:
        return False
    found = fact_metadata(index, facts, param)
    if found is None or found.markers:
        return True
    return bool(found.applied) and not markers <= DEPENDENCY_MARKERS


@register
class IgnoredAnnotatedMetadata(FileRule):
    CODE = "DF017"
    NAME = "ignored-annotated-metadata"
    SUMMARY = (
        "`q: QueryStr = Query(None)`: with a marker as the default FastAPI ignores `Annotated` "
        "metadata"
    )
    FIX = "none"
    NEEDLES = MARKER_NEEDLES
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef` and `check`: a route or dependency has an annotated parameter
        with a marker default whose annotation carries what `check` reports."""
        for function in facts.every_function():
            params = [
                param
                for param in function.params
                if param.default_call is not None and param.annotation is not None
            ]
            if not params or index.fastapi_role((function.module, function.qualname)) is None:
                continue
            if any(_may_report(index, facts, param) for param in params):
                return True
        return False

    @classmethod
    def inactive(cls, settings: Settings) -> Optional[str]:
        return annotated_unsupported(settings)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if annotated_unsupported(self.context.settings):
            return
        function = self.index.function_at(self.context.path, self.def_line(node))
        if (
            function is None
            or self.index.fastapi_role((function.module, function.qualname)) is None
        ):
            return
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            marker = self.marker(param)
            if marker is None or param.annotation is None:
                continue
            self.check(param, marker, param.annotation.annotation)

    def marker(self, param: cst.Param) -> Optional[str]:
        call = param.default
        if not isinstance(call, cst.Call):
            return None
        return MARKERS.get(qualified_name(self.resolve_expression(call.func)) or "")

    def check(self, param: cst.Param, marker: str, annotation: cst.BaseExpression) -> None:
        found = annotation_metadata(self, annotation)
        name = param.name.value
        if found.markers:
            inner = found.markers[-1]
            where = f"`{inner.alias}` holds" if inner.alias else "its annotation holds"
            if inner.marker in DEPENDENCY_MARKERS and marker not in DEPENDENCY_MARKERS:
                self.report(
                    param,
                    f"FastAPI ignores the `{marker}(...)` default of parameter `{name}`: {where} "
                    f"`{inner.text}`, which decides its value",
                    reason="keep one of the two; which one is meant is for you to say",
                )
                return
            self.report(
                param,
                f"FastAPI fails at startup on parameter `{name}`: {where} `{inner.text}` and "
                f"its default is `{marker}(...)` as well",
                reason="keep one of the two; which one is meant is for you to say",
            )
            return
        if marker in DEPENDENCY_MARKERS or not found.applied:
            return
        self.report(
            param,
            f"FastAPI ignores {describe(found.applied)} on parameter `{name}`: with "
            f"`{marker}(...)` as its default only the type inside `Annotated` is validated",
            reason=(
                "applying it changes which requests are accepted or the OpenAPI schema; "
                "declare the parameter with `Annotated` to apply it (DF006's unsafe fix), or "
                "drop the metadata"
            ),
        )
