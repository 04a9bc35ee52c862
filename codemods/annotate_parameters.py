"""DF006 non-annotated-parameter: FastAPI markers written as defaults instead of in `Annotated`.

Since FastAPI 0.95 the recommended form puts `Depends`, `Security`, `Query`, `Path`, `Header`, `Cookie`,
`Body`, `Form` and `File` inside `Annotated[...]`. The old form makes the marker the parameter's default,
so calling the function directly passes a `Depends` object instead of a value, the type and the marker
drift apart, and signatures cannot be shared as aliases.

Before:

    @router.get("/items")
    def list_items(
        q: str = Query(None, max_length=50),
        db: Session = Depends(get_db),
        user=Depends(get_current_user),
    ):
        ...

After:

    @router.get("/items")
    def list_items(
        q: Annotated[str, Query(max_length=50)] = None,
        *,
        db: Annotated[Session, Depends(get_db)],
        user: Annotated[User, Depends(get_current_user)],
    ):
        ...

Only parameters of functions FastAPI calls are rewritten: routes (on apps, routers, router subclasses,
routers built in factories) and dependencies (functions, class `__init__`, instance `__call__`, the
inner function a factory returns to `Depends(require_role("admin"))`).
`Depends(...)` and `Security(...)` move into `Annotated` whole. For the other markers the first positional
or `default=` argument becomes the parameter's default (`...` means required), `default_factory` and
every other argument stay in the marker, including `**kwargs`; comments and line breaks inside the call
are kept. An unannotated dependency parameter takes its type from the provider's return annotation
(looking through `Iterator`/`Generator`/`AsyncIterator`/`AsyncGenerator`), importing it when needed.

Each signature is planned as one edit. A parameter that loses its default after an optional positional
one would not compile, so `*` is inserted before it (FastAPI passes every argument by keyword) unless
the project calls the function with that many positional arguments. The inserted `*,` line takes no
comment: a comment trailing the parameter before it stays there, comment lines move below it. A
parameter that cannot lose its default (a direct call leaves it out or passes it by position where
`*` would have to go) keeps it and is reported; the rest of the signature is still converted, so
`skip: Annotated[int, Query()] = 0` next to an unchanged `db: Session = Depends(get_db)`.
`Annotated` is taken from an existing import when there is one, else imported from `typing`
(`typing_extensions` for Python 3.8), in isort's position.

With `Query`, `Path`, `Header`, `Cookie`, `Body`, `Form` or `File` as the default, FastAPI ignores
what an `Annotated` annotation carries besides its type; in `Annotated[QueryStr, Query()]` Python
flattens the alias and FastAPI applies all of it. So the annotation is followed (through aliases,
`typing_extensions`, type alias statements, string annotations, across files) and the fix is graded
by what it finds: metadata such as `StringConstraints`, `Field` or pydantic's `PositiveInt` makes it
unsafe, the reason naming what FastAPI will start applying (DF017 reports the metadata as ignored);
literals and `Doc(...)` change nothing; a name depfix cannot follow (a third-party module, pydantic's
`PositiveInt` or `conint(...)` when the project's FastAPI does not require pydantic 2) makes it
unsafe too. For `Depends(f)`/`Security(f)` the annotation's metadata is never applied, either way.

Fix safety: safe; unsafe when a type must be imported from a module of the project (a new import can
close an import cycle) and when FastAPI would start applying metadata, as above. Reported without fix,
with the reason: a marker call the rule does not fully understand (`*args`, several positional
arguments, a comment on the moved default), an unannotated parameter whose type is unknown, an
`Annotated` name that is taken, an annotation (or alias) that already holds a FastAPI marker, a type
alias statement FastAPI unwraps for `Depends()`, a parameter that cannot lose its default, a marker
naming a local of an enclosing function or class when FastAPI evaluates the annotation as a string
(`from __future__ import annotations`), in the module's globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst
from libcst.metadata import BuiltinScope, GlobalScope, Scope, ScopeProvider

from codemods._annotated_metadata import (
    MARKER_MODULES,
    MARKER_NEEDLES,
    annotation_metadata,
    describe,
)
from codemods._signatures import (
    AnnotatedName,
    annotated_name,
    annotated_subscript,
    annotated_unsupported,
    out_of_order,
    plan_signature,
)
from depfix.config import Settings
from depfix.facts import ANNOTATED_NAMES, FileFacts, FunctionFact, ParamFact
from depfix.index import Class, External, Function, ProjectIndex, Resolved, qualified_name
from depfix.rules import SAFE, UNSAFE, FileRule, has_comment, register, source_of

DEPENDENCY_MARKERS = frozenset(f"{m}.{n}" for m in MARKER_MODULES for n in ("Depends", "Security"))
VALUE_MARKERS = frozenset(
    f"{m}.{n}"
    for m in MARKER_MODULES
    for n in ("Query", "Path", "Header", "Cookie", "Body", "Form", "File")
)
_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


@dataclass
class Conversion:
    """The plan for one parameter: its new node, or why it cannot be converted."""

    original: cst.Param
    marker: str
    new: Optional[cst.Param] = None
    reason: str = ""
    imports: tuple[tuple[str, str], ...] = ()
    unsafe_reason: str = ""


@dataclass
class _TypeText:
    text: str
    imports: tuple[tuple[str, str], ...] = ()
    unsafe_reason: str = ""


def _positional_args(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None and arg.star == ""]


def _without(call: cst.Call, removed: cst.Arg) -> cst.Call:
    """The call without one argument, keeping the separators (and their comments) of the others."""
    args = list(call.args)
    position = args.index(removed)
    del args[position]
    comma = removed.comma
    if position == 0:
        if (
            isinstance(comma, cst.Comma)
            and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)
            and args
            and not has_comment(call.whitespace_before_args)
        ):
            # what followed the removed argument now follows the opening parenthesis
            return call.with_changes(args=args, whitespace_before_args=comma.whitespace_after)
        return call.with_changes(args=args)
    if position == len(args) or (isinstance(comma, cst.Comma) and has_comment(comma)):
        args[position - 1] = args[position - 1].with_changes(comma=comma)
    return call.with_changes(args=args)


def _has_dependency(call: cst.Call) -> bool:
    """Whether a `Depends`/`Security` call names its dependency (else FastAPI uses the annotation)."""
    return any(
        (arg.keyword is None and arg.star == "")
        or (arg.keyword is not None and arg.keyword.value == "dependency")
        for arg in call.args
    )


def _is_ellipsis(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Ellipsis)


class _LoadedNames(cst.CSTVisitor):
    """The names an expression reads: not attribute names after a dot, not keyword names."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.nodes: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.names.append(node.value)
        self.nodes.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False


@register
class AnnotateParameters(FileRule):
    CODE = "DF006"
    NAME = "non-annotated-parameter"
    SUMMARY = (
        "`x: T = Depends(f)` and `q: str = Query(None)`: markers as defaults instead of `Annotated`"
    )
    FIX = SAFE
    NEEDLES = MARKER_NEEDLES
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        """Mirrors `visit_FunctionDef` and `convert`: a parameter of a route or dependency whose
        default is a call of `Depends`, `Query`... (resolved through the index)."""
        for function in facts.every_function():
            calls = [
                param.default_call for param in function.params if param.default_call is not None
            ]
            if not calls or index.fastapi_role((function.module, function.qualname)) is None:
                continue
            for call in calls:
                resolved = index.resolve(call)
                if isinstance(resolved, External) and (
                    resolved.qname in DEPENDENCY_MARKERS or resolved.qname in VALUE_MARKERS
                ):
                    return True
        return False

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self.module: Optional[cst.Module] = None
        self._annotated: Optional[AnnotatedName] = None
        self._scopes: Optional[Mapping[cst.CSTNode, Optional[Scope]]] = None

    def visit_Module(self, node: cst.Module) -> None:
        self.module = node

    # ---- the Annotated name ------------------------------------------------------------------
    def annotated(self) -> AnnotatedName:
        if self._annotated is None:
            assert self.module is not None
            self._annotated = annotated_name(self.module, self.context.facts, self.context.settings)
        return self._annotated

    # ---- types for unannotated parameters ----------------------------------------------------
    def type_for(self, call: cst.Call) -> Union[_TypeText, str]:
        """The type an unannotated `Depends(provider)` parameter receives, or why it is unknown."""
        span = self.span(call)
        ref = self.index.dependency_ref_at(self.context.path, span.line, span.column)
        if ref is None or ref.fact.target_is_call:
            return "the parameter has no annotation and its provider is not a known function"
        if isinstance(ref.target, Class):  # `Depends(CommonQueryParams)` provides an instance of it
            resolved: Resolved = ref.target
        elif isinstance(ref.target, Function):
            provides = ref.target.fact.provides
            if provides is None:
                name = ref.target.fact.qualname
                return (
                    f"the parameter has no annotation and `{name}` declares no simple return type"
                )
            resolved = self.index.resolve(provides)
        else:
            return "the parameter has no annotation and its provider is not a known function"
        facts = self.context.facts
        local = self.index.local_name(facts, resolved)
        if local is not None:
            return _TypeText(local)
        if isinstance(resolved, External):
            source, _, name = resolved.qname.rpartition(".")
            if source == "builtins":
                return (
                    _TypeText(name) if name not in facts.bindings else f"`{name}` is shadowed here"
                )
            unsafe = ""
        elif isinstance(resolved, Class) and "." not in resolved.fact.qualname:
            source, name = resolved.fact.module, resolved.fact.qualname
            already = source in self.index.closure(facts.module)
            risk = None if already else self.index.new_import_risk(facts.module, source)
            if risk:
                return f"the provider's type `{name}` would need a new import: {risk}"
            unsafe = (
                "" if already else f"adds an import from `{source}`, which changes the import order"
            )
        else:
            return "the parameter has no annotation and its provider's return type cannot be named here"
        if name in facts.bindings or not source:
            return f"the provider's type `{name}` cannot be imported here: the name is taken"
        return _TypeText(name, ((source, name),), unsafe)

    # ---- names a string annotation cannot see -------------------------------------------------
    def postponed(self) -> bool:
        """Whether the module has `from __future__ import annotations` (every annotation a string)."""
        return any(
            fact.target == "__future__" and "annotations" in fact.names
            for fact in self.context.facts.imports
        )

    def local_names(self, param: cst.Param, marker_call: cst.Call) -> list[str]:
        """Names of the new annotation bound in an enclosing function or class (not at module level).

        FastAPI evaluates a string annotation in the module's globals: such names are not there.
        Names are looked up where the default is evaluated (the scope that also sees annotations).
        """
        if self._scopes is None:
            assert self.module is not None
            wrapper = cst.MetadataWrapper(self.module, unsafe_skip_copy=True)
            self._scopes = wrapper.resolve(ScopeProvider)
        collector = _LoadedNames()
        marker_call.visit(collector)
        anchor = next((self._scopes.get(node) for node in collector.nodes), None)
        annotation = param.annotation.annotation if param.annotation is not None else None
        if isinstance(annotation, cst.SimpleString):
            text = annotation.evaluated_value
            try:
                annotation = cst.parse_expression(text) if isinstance(text, str) else None
            except cst.ParserSyntaxError:
                annotation = None
        if annotation is not None:
            annotation.visit(collector)
        if anchor is None:
            return []
        found: list[str] = []
        for name in collector.names:
            if name not in found and any(
                not isinstance(assignment.scope, (GlobalScope, BuiltinScope))
                for assignment in anchor[name]
            ):
                found.append(name)
        return found

    def string_evaluation_problem(
        self, param: cst.Param, marker_call: cst.Call, function: Optional[FunctionFact]
    ) -> str:
        """Why moving the marker into the annotation changes what it names, or ""."""
        if function is None or not ("<locals>" in function.qualname or function.class_qualname):
            return ""
        annotation = param.annotation.annotation if param.annotation is not None else None
        if isinstance(annotation, (cst.SimpleString, cst.ConcatenatedString)):
            why = "the annotation is a string"
        elif self.postponed():
            why = "`from __future__ import annotations` makes the annotation a string"
        else:
            return ""
        names = self.local_names(param, marker_call)
        if not names:
            return ""
        listed = ", ".join(f"`{name}`" for name in names)
        verb = "is" if len(names) == 1 else "are"
        return (
            f"{why}, which FastAPI evaluates in the module's globals, where {listed} (bound in an "
            f"enclosing function or class) {verb} not defined"
        )

    # ---- one parameter -----------------------------------------------------------------------
    def convert(
        self, param: cst.Param, fact: ParamFact, function: Optional[FunctionFact] = None
    ) -> Optional[Conversion]:
        call = param.default
        if not isinstance(call, cst.Call) or fact.default_call is None:
            return None
        resolved = self.index.resolve(fact.default_call)
        if not isinstance(resolved, External):
            return None
        marker = resolved.qname
        if marker not in DEPENDENCY_MARKERS and marker not in VALUE_MARKERS:
            return None
        short = marker.rsplit(".", 1)[-1]
        conversion = Conversion(param, short)
        annotated = self.annotated()
        if annotated.expression is None:
            conversion.reason = annotated.reason
            return conversion
        conversion.imports = annotated.imports
        new_default: Optional[cst.BaseExpression] = None
        marker_call = call
        if marker in VALUE_MARKERS:
            if any(arg.star == "*" for arg in call.args):
                conversion.reason = f"`{short}(*...)` passes positional arguments it does not name"
                return conversion
            positional = _positional_args(call)
            keywords = {arg.keyword.value: arg for arg in call.args if arg.keyword is not None}
            if len(positional) > 1:
                conversion.reason = f"`{short}(...)` has more than one positional argument"
                return conversion
            default_arg = positional[0] if positional else keywords.get("default")
            if default_arg is not None:
                if has_comment(default_arg.value) or has_comment(default_arg.whitespace_after_arg):
                    conversion.reason = "a comment inside the default would be lost"
                    return conversion
                marker_call = _without(call, default_arg)
                if not _is_ellipsis(default_arg.value):
                    new_default = default_arg.value
        problem = self.string_evaluation_problem(param, marker_call, function)
        if problem:
            conversion.reason = problem
            return conversion
        annotation = param.annotation
        if annotation is None:
            if marker in VALUE_MARKERS:
                conversion.reason = "the parameter has no type annotation to put in `Annotated`"
                return conversion
            found = self.type_for(call)
            if isinstance(found, str):
                conversion.reason = found
                return conversion
            conversion.imports += found.imports
            conversion.unsafe_reason = found.unsafe_reason
            type_node: cst.BaseExpression = cst.parse_expression(found.text)
            new_annotation = cst.Annotation(
                annotation=annotated_subscript(annotated.expression, type_node, marker_call)
            )
        elif isinstance(annotation.annotation, (cst.SimpleString, cst.ConcatenatedString)):
            text = self.string_annotation(annotation.annotation, annotated.expression, marker_call)
            if text is None:
                conversion.reason = "the string annotation cannot hold this marker call"
                return conversion
            new_annotation = annotation.with_changes(annotation=cst.parse_expression(text))
        else:
            existing = self.existing_annotated(annotation.annotation)
            if existing is not None:
                if any(self.is_marker_element(element) for element in existing.slice[1:]):
                    conversion.reason = "its `Annotated` already holds a FastAPI marker"
                    return conversion
                elements = list(existing.slice)
                elements[-1] = elements[-1].with_changes(comma=_COMMA)
                elements.append(cst.SubscriptElement(slice=cst.Index(value=marker_call)))
                new_annotation = annotation.with_changes(
                    annotation=existing.with_changes(slice=elements)
                )
            else:
                new_annotation = annotation.with_changes(
                    annotation=annotated_subscript(
                        annotated.expression, annotation.annotation, marker_call
                    )
                )
        if annotation is not None:
            problem, unsafe = self.metadata_effect(short, call, annotation.annotation)
            if problem:
                conversion.reason = problem
                return conversion
            if unsafe:
                conversion.unsafe_reason = unsafe
        if new_default is None:
            conversion.new = param.with_changes(
                annotation=new_annotation, default=None, equal=cst.MaybeSentinel.DEFAULT
            )
        else:
            conversion.new = param.with_changes(annotation=new_annotation, default=new_default)
        return conversion

    def metadata_effect(
        self, marker: str, call: cst.Call, annotation: cst.BaseExpression
    ) -> tuple[str, str]:
        """Why the conversion is impossible, or else why it is unsafe, from what the annotation carries.

        With the marker as the default FastAPI reads only the type of an `Annotated` annotation; in
        `Annotated[T, marker]` it applies everything `T` carries (see `codemods._annotated_metadata`).
        """
        found = annotation_metadata(self, annotation)
        if found.markers:
            item = found.markers[-1]
            if not item.alias:
                return "its `Annotated` already holds a FastAPI marker", ""
            return f"its alias `{item.alias}` already holds a FastAPI marker, `{item.text}`", ""
        if marker in ("Depends", "Security"):
            if _has_dependency(call):  # a dependency's value is never validated against its type
                return "", ""
            if found.statement:
                return (
                    f"`{found.statement}` is a type alias statement: FastAPI unwraps it for "
                    f"`{marker}()` today, inside `Annotated` `{marker}()` would get the alias itself, "
                    "which cannot be called"
                ), ""
            if found.unknown:
                return "", (
                    f"`{marker}()` calls what its annotation names, and depfix cannot tell whether "
                    "that is a type alias statement, which `Annotated` would not unwrap: "
                    f"{found.unknown}"
                )
            return "", ""
        if found.applied:
            return "", (
                f"inside `Annotated` FastAPI starts applying {describe(found.applied)}, which it "
                f"ignores while `{marker}(...)` is the default: validation and the OpenAPI schema "
                "change (DF017)"
            )
        if found.unknown:
            return "", (
                "depfix cannot tell whether the annotation carries metadata that FastAPI ignores "
                f"today and would apply inside `Annotated`: {found.unknown}"
            )
        if found.statement:
            return "", (
                f"`{found.statement}` is a type alias statement: FastAPI unwraps it today, inside "
                "`Annotated` pydantic keeps it and the OpenAPI schema refers to it by name"
            )
        return "", ""

    def string_annotation(
        self,
        node: Union[cst.SimpleString, cst.ConcatenatedString],
        annotated: cst.BaseExpression,
        marker_call: cst.Call,
    ) -> Optional[str]:
        if not isinstance(node, cst.SimpleString) or node.prefix or len(node.quote) != 1:
            return None
        inner = node.evaluated_value
        if not isinstance(inner, str):
            return None
        call_text = source_of(marker_call)
        if any(character in call_text for character in (node.quote, "\\", "\n", "#")):
            return None
        return f"{node.quote}{source_of(annotated)}[{inner}, {call_text}]{node.quote}"

    def existing_annotated(self, node: cst.BaseExpression) -> Optional[cst.Subscript]:
        """The annotation when it already is `Annotated[T, ...]`."""
        if not isinstance(node, cst.Subscript) or len(node.slice) < 2:
            return None
        return (
            node if qualified_name(self.resolve_expression(node.value)) in ANNOTATED_NAMES else None
        )

    def is_marker_element(self, element: cst.SubscriptElement) -> bool:
        value = element.slice.value if isinstance(element.slice, cst.Index) else None
        if not isinstance(value, cst.Call):
            return False
        return (
            qualified_name(self.resolve_expression(value.func))
            in DEPENDENCY_MARKERS | VALUE_MARKERS
        )

    # ---- one signature -----------------------------------------------------------------------
    @classmethod
    def inactive(cls, settings: Settings) -> Optional[str]:
        return annotated_unsupported(settings)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if annotated_unsupported(self.context.settings):
            return
        function = self.index.function_at(self.context.path, self.def_line(node))
        if function is None:
            return
        if self.index.fastapi_role((function.module, function.qualname)) is None:
            return
        by_name = {param.name: param for param in function.params}
        params = node.params
        conversions: dict[int, Conversion] = {}
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            fact = by_name.get(param.name.value)
            if fact is None:
                continue
            conversion = self.convert(param, fact, function)
            if conversion is not None:
                conversions[id(param)] = conversion
        if not conversions:
            return
        convertible = {key: c for key, c in conversions.items() if c.new is not None}
        safe = {key: c for key, c in convertible.items() if not c.unsafe_reason}
        # Safe conversions form one edit; unsafe ones a larger edit that also contains them, which
        # only applies with --unsafe (on the next pass, once the safe edit is in). A parameter that
        # cannot be converted in a plan is left as it is and the rest of its signature converted.
        plans = {"safe": self.plan_signature(params, safe, function)}
        if len(safe) < len(convertible):
            plans["unsafe"] = self.plan_signature(params, convertible, function)
        for key, conversion in conversions.items():
            message = (
                f"parameter `{conversion.original.name.value}` uses `{conversion.marker}(...)` as its "
                "default; declare it with `Annotated`"
            )
            grade = "unsafe" if conversion.unsafe_reason else "safe"
            new_params, left_out = plans[grade]
            if conversion.new is None or key in left_out or new_params is None:
                reason = conversion.reason or left_out.get(key, "")
                self.report(conversion.original, message, reason=reason)
                continue
            included = safe if grade == "safe" else convertible
            self.report(
                conversion.original,
                message,
                target=params,
                replacement=new_params,
                safety=UNSAFE if grade == "unsafe" else SAFE,
                reason=conversion.unsafe_reason,
                imports=tuple(
                    sorted({i for k, c in included.items() if k not in left_out for i in c.imports})
                ),
            )

    def plan_signature(
        self, params: cst.Parameters, chosen: dict[int, Conversion], function: FunctionFact
    ) -> tuple[Optional[cst.Parameters], dict[int, str]]:
        """The new parameter list for as many of `chosen` as can be converted, and why not the others.

        A parameter that would lose its default is left as it is when a direct call of the function
        leaves it out (the call would fail), and when it would have to follow an optional positional
        parameter where `*` cannot go; each one left as it is keeps its default, so the parameters
        after it are planned again.
        """
        left_out: dict[int, str] = {}
        for key, conversion in chosen.items():
            if conversion.new is not None and conversion.new.default is None:
                problem = self.left_out_by_caller(conversion.original, function)
                if problem:
                    left_out[key] = problem
        while True:
            replaced = {
                key: c.new for key, c in chosen.items() if c.new is not None and key not in left_out
            }
            if not replaced:
                return None, left_out
            new_params, problem = plan_signature(self.index, params, replaced, function)
            if new_params is not None:
                return new_params, left_out
            blocking = out_of_order(params, replaced)
            if blocking is None or blocking not in replaced:  # not an order problem of ours
                return None, {**{key: problem for key in replaced}, **left_out}
            left_out[blocking] = problem

    def left_out_by_caller(self, param: cst.Param, function: FunctionFact) -> str:
        """Why a parameter must keep its default: a direct call that may not pass it, or ""."""
        name = param.name.value
        positional = [p.name for p in function.params if p.kind in ("posonly", "normal")]
        position = positional.index(name) if name in positional else None
        offset = 1 if function.class_qualname else 0
        for path, site in self.index.direct_calls((function.module, function.qualname)):
            if site.star:
                return (
                    f"`{name}` would lose its default, and {path}:{site.line} calls "
                    f"`{function.name}` with `*`/`**` arguments that may leave it out"
                )
            by_position = position is not None and position < site.positional + offset
            if not by_position and name not in site.keywords:
                return (
                    f"`{name}` would lose its default, and {path}:{site.line} calls "
                    f"`{function.name}` without it"
                )
        return ""
