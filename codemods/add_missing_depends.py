"""DF001 missing-depends: a parameter FastAPI cannot read from a request, written without `Depends()`.

A route or dependency parameter typed with something only a dependency can provide (a `Session`, a
dependency class) but declared without `Depends()` is taken for a query or body parameter: FastAPI fails
at startup (`Invalid args for response field`) or answers 422 "field required".

Before:

    @router.get("/items")
    def list_items(db: Session):
        ...

After:

    @router.get("/items")
    def list_items(db: Annotated[Session, Depends(get_db)]):
        ...

Providers are collected across the project: dependencies whose return annotation gives the type
(looking through `Iterator`/`Generator`/`AsyncIterator`/`AsyncGenerator`), providers already injected
for the type elsewhere (`x: Session = Depends(get_db)`, `Annotated[Session, Depends(get_db)]`), existing
aliases (`SessionDep`, preferred in the fix) and dependency classes (a class already used as
`Depends(C)`, or a plain class with an `__init__`, which becomes `Annotated[C, Depends()]`). The fix is
made when exactly one provider qualifies; the provider is imported from its module when needed (never
where the import would touch an import cycle). Several candidates, or none for a type that can never
come from a request (sessions, connections, HTTP and Redis clients), give a diagnostic naming them.

Never touched: what FastAPI injects itself (`Request`, `Response`, `WebSocket`, `HTTPConnection`,
`BackgroundTasks`, `SecurityScopes`, `UploadFile`), pydantic models and other classes FastAPI reads
as bodies, scalar and standard-library types, parameters with a default, and functions FastAPI does
not call (services and CRUD helpers take bare `Session` parameters by design).

Fix safety: safe; unsafe when the provider has to be imported from a module the file does not import
yet (the import order changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst

from codemods._resources import CLIENT_CLASSES, SESSION_CLASSES
from codemods._signatures import (
    annotated_name,
    annotated_subscript,
    annotated_unsupported,
    plan_signature,
)
from depfix.facts import FileFacts, FunctionFact, ParamFact
from depfix.imports import relative_source, uses_relative_imports
from depfix.index import Class, External, Function, ProjectIndex, Resolved, qualified_name
from depfix.rules import SAFE, UNSAFE, FileRule, register
from depfix.values import Value

NEVER_FROM_REQUEST = frozenset(
    {
        *SESSION_CLASSES,
        *CLIENT_CLASSES,
        "sqlalchemy.engine.Connection",
        "sqlalchemy.ext.asyncio.AsyncConnection",
        "redis.Redis",
        "redis.client.Redis",
        "redis.asyncio.Redis",
        "redis.asyncio.client.Redis",
    }
)
NOT_DEPENDENCIES = (
    "builtins.",
    "fastapi.",
    "starlette.",
    "pydantic.",
    "typing.",
    "datetime.",
    "uuid.",
    "decimal.",
    "enum.",
    "pathlib.",
    "collections.",
)
BODY_BASES = frozenset(
    {
        "pydantic.BaseModel",
        "pydantic.main.BaseModel",
        "sqlmodel.SQLModel",
        "enum.Enum",
        "builtins.dict",
        "typing.TypedDict",
    }
)


@dataclass(frozen=True, order=True)
class Provider:
    """A way to inject a type: a function or class to pass to `Depends`, or an existing alias."""

    module: str
    name: str
    kind: str  # "function", "class" (`Depends()`), or "alias"

    def describe(self) -> str:
        return f"{self.module}.{self.name}" + (" (alias)" if self.kind == "alias" else "")


def _injectable(function: FunctionFact) -> bool:
    """Whether FastAPI could call the function with nothing the request cannot give."""
    return all(
        p.injected or p.has_default or p.kind in ("vararg", "kwarg") for p in function.params
    )


def providers(index: ProjectIndex) -> dict[str, set[Provider]]:
    """Type (qualified name) -> the providers that inject it somewhere in the project (cached)."""
    cached = index.memo.get("DF001")
    if isinstance(cached, dict):
        return cached
    found: dict[str, set[Provider]] = {}
    for ref in index.dependency_refs:
        fact = ref.fact
        if fact.annotation is None or fact.target_is_call or fact.in_string or fact.options:
            continue
        type_name = qualified_name(index.resolve(fact.annotation))
        target = ref.target
        if (
            type_name is None
            or not isinstance(target, (Function, Class))
            or "." in target.fact.qualname
        ):
            continue
        if fact.context == "alias" and fact.alias_name and fact.annotated_size == 2:
            found.setdefault(type_name, set()).add(Provider(ref.module, fact.alias_name, "alias"))
        elif fact.context in ("default", "annotated"):
            same = isinstance(target, Class) and qualified_name(target) == type_name
            kind = "class" if same else "function"
            found.setdefault(type_name, set()).add(
                Provider(target.fact.module, target.fact.qualname, kind)
            )
    for facts in index.files.values():
        for function in facts.functions.values():
            if (
                function.provides is None
                or function.class_qualname
                or "<locals>" in function.qualname
            ):
                continue
            if index.fastapi_role((function.module, function.qualname)) != "dependency" and not (
                function.is_generator and not function.decorators and _injectable(function)
            ):
                continue
            type_name = qualified_name(index.resolve(function.provides))
            if type_name is not None:
                found.setdefault(type_name, set()).add(
                    Provider(function.module, function.qualname, "function")
                )
    index.memo["DF001"] = found
    return found


def unwired_params(function: FunctionFact) -> list[ParamFact]:
    """The parameters DF001 looks at: named ones (not `*args`/`**kwargs`), annotated, with neither
    a default nor a marker, and not a method's first one (`self`, `cls`)."""
    named = [p for p in function.params if p.kind not in ("vararg", "kwarg")]
    if function.class_qualname:
        named = named[1:]
    return [p for p in named if not (p.injected or p.has_default) and p.annotation is not None]


def needs_dependency(index: ProjectIndex, resolved: Resolved, type_name: str) -> bool:
    """Whether a parameter of this type can only come from a dependency (not from the request)."""
    if isinstance(resolved, External):
        return type_name in NEVER_FROM_REQUEST or not type_name.startswith(NOT_DEPENDENCIES)
    if isinstance(resolved, Class):
        if resolved.fact.decorated:  # dataclasses and the like are read as bodies
            return False
        return not any(
            isinstance(base, External)
            and (base.qname in BODY_BASES or base.qname.startswith("pydantic"))
            for base in index.class_bases(resolved)
        ) and all(isinstance(base, (Class, External)) for base in index.class_bases(resolved))
    return False


def plain_class(cls: Class) -> bool:
    """A class FastAPI can build per request: no bases, an `__init__`."""
    return not cls.fact.bases and "__init__" in cls.fact.methods and "." not in cls.fact.qualname


def injection_candidates(
    index: ProjectIndex, annotation: Value
) -> Optional[tuple[str, list[Provider]]]:
    """For a parameter without `Depends()` annotated `annotation`: the type's qualified name and
    the providers that could inject it, when DF001 reports the parameter (an empty list: a type
    that never comes from a request, with no provider); None when it leaves the parameter alone."""
    resolved = index.resolve(annotation)
    type_name = qualified_name(resolved)
    if type_name is None or not needs_dependency(index, resolved, type_name):
        return None
    candidates = sorted(providers(index).get(type_name, set()))
    if isinstance(resolved, Class) and not candidates and plain_class(resolved):
        candidates = [Provider(resolved.fact.module, resolved.fact.qualname, "class")]
    if not candidates and type_name not in NEVER_FROM_REQUEST:
        return None
    return type_name, candidates


@register
class AddMissingDepends(FileRule):
    CODE = "DF001"
    NAME = "missing-depends"
    SUMMARY = "a parameter only a dependency can provide, declared without `Depends()`"
    FIX = SAFE
    NEEDLES = (b"fastapi",)
    FASTAPI_ONLY = True
    INDEX_NEEDLES = (b"yield",)  # any generator with a typed yield is a known provider

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef` and `site`: a route or dependency with a parameter left
        without `Depends()` whose type needs a dependency (see `injection_candidates`)."""
        for function in facts.every_function():
            params = unwired_params(function)
            if not params or index.fastapi_role((function.module, function.qualname)) is None:
                continue
            if any(
                p.annotation is not None and injection_candidates(index, p.annotation) is not None
                for p in params
            ):
                return True
        return False

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self.module: Optional[cst.Module] = None

    def visit_Module(self, node: cst.Module) -> None:
        self.module = node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.index.function_at(self.context.path, self.def_line(node))
        if (
            function is None
            or self.index.fastapi_role((function.module, function.qualname)) is None
        ):
            return
        by_name = {param.name: param for param in unwired_params(function)}
        params = node.params
        plans: list[
            tuple[cst.Param, str, Union[tuple[cst.Param, tuple[tuple[str, str], ...], str], str]]
        ] = []
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            fact = by_name.get(param.name.value)
            if fact is None or param.annotation is None:
                continue
            found = self.site(param, fact)
            if found is not None:
                plans.append((param, *found))
        if not plans:
            return
        replaced = {id(param): plan[0] for param, _, plan in plans if not isinstance(plan, str)}
        new_params, problem = plan_signature(self.index, params, replaced, function)
        imports = tuple(
            sorted({i for _, _, plan in plans if not isinstance(plan, str) for i in plan[1]})
        )
        unsafe = sorted({plan[2] for _, _, plan in plans if not isinstance(plan, str) and plan[2]})
        for param, message, plan in plans:
            if isinstance(plan, str) or new_params is None:
                self.report(param, message, reason=plan if isinstance(plan, str) else problem)
                continue
            self.report(
                param,
                message,
                target=params,
                replacement=new_params,
                safety=UNSAFE if unsafe else SAFE,
                reason="; ".join(unsafe),
                imports=imports,
            )

    def site(
        self, param: cst.Param, fact: ParamFact
    ) -> Optional[tuple[str, Union[tuple[cst.Param, tuple[tuple[str, str], ...], str], str]]]:
        """The message and the plan (new parameter, imports, unsafe reason) or the reason not to fix."""
        assert param.annotation is not None
        if fact.annotation is None or not isinstance(
            param.annotation.annotation, (cst.Name, cst.Attribute)
        ):
            return None
        wanted = injection_candidates(self.index, fact.annotation)
        if wanted is None:
            return None
        type_name, candidates = wanted
        short = type_name.rsplit(".", 1)[-1]
        message = (
            f"parameter `{param.name.value}: {short}` has no `Depends()`: FastAPI takes it for a request "
            "parameter (422, or a failure at startup)"
        )
        if not candidates:  # a type that never comes from a request
            return message, f"no dependency in the project provides `{short}`"
        aliases = [c for c in candidates if c.kind == "alias"]
        chosen = aliases if len(aliases) == 1 else [c for c in candidates if c.kind != "alias"]
        if len(chosen) != 1:
            names = ", ".join(c.describe() for c in candidates)
            return message, f"several providers could inject it: {names}"
        provider = chosen[0]
        message += f"; inject it with `{provider.name}`"
        return message, self.plan(param, provider)

    def local_name(
        self, module: str, name: str
    ) -> tuple[Optional[str], tuple[tuple[str, str], ...], str]:
        """How this file names `module.name`: a local name, the imports it needs, an unsafe reason."""
        facts = self.context.facts
        local = self.index.local_name(facts, self.index.resolve_qualified(f"{module}.{name}"))
        if local is not None:
            return local, (), ""
        if module == facts.module:
            return (
                (name, (), "")
                if name in facts.bindings or name in facts.functions or name in facts.classes
                else (None, (), "")
            )
        if name in facts.bindings:
            return None, (), ""
        source = module
        if (
            module in self.index.modules
            and self.module is not None
            and uses_relative_imports(self.module)
        ):
            source = relative_source(facts.module, facts.is_package, module) or module
        if module not in self.index.modules or module in self.index.closure(facts.module):
            return name, ((source, name),), ""
        risk = self.index.new_import_risk(facts.module, module)
        if risk:
            return None, (), risk
        return (
            name,
            ((module, name),),
            f"adds an import from `{module}`, which changes the import order",
        )

    def plan(
        self, param: cst.Param, provider: Provider
    ) -> Union[tuple[cst.Param, tuple[tuple[str, str], ...], str], str]:
        assert param.annotation is not None and self.module is not None
        local, imports, unsafe = self.local_name(provider.module, provider.name)
        if local is None:
            return unsafe or f"`{provider.name}` cannot be named in this module"
        old_fastapi = annotated_unsupported(self.context.settings)
        if provider.kind == "alias" and not old_fastapi:
            new_annotation = param.annotation.with_changes(annotation=cst.Name(local))
            return param.with_changes(annotation=new_annotation), imports, unsafe
        depends, depends_imports, _ = self.local_name("fastapi", "Depends")
        if depends is None:
            return "the name `Depends` is bound to something else in this module"
        argument = [] if provider.kind == "class" else [cst.Arg(value=cst.parse_expression(local))]
        marker = cst.Call(func=cst.parse_expression(depends), args=argument)
        if provider.kind == "class":
            imports = ()
        if old_fastapi:  # the default form, which FastAPI releases before 0.95 understand
            default = param.with_changes(default=marker, equal=cst.AssignEqual())
            return default, (*imports, *depends_imports), unsafe
        annotated = annotated_name(self.module, self.context.facts, self.context.settings)
        if annotated.expression is None:
            return annotated.reason
        new = param.with_changes(
            annotation=param.annotation.with_changes(
                annotation=annotated_subscript(
                    annotated.expression, param.annotation.annotation, marker
                )
            )
        )
        return new, (*imports, *annotated.imports, *depends_imports), unsafe
