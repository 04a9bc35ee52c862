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
the project calls the function with that many positional arguments; then the site is reported instead.
`Annotated` is taken from an existing import when there is one, else imported from `typing`
(`typing_extensions` for Python 3.8), in isort's position.

Fix safety: safe; unsafe when a type must be imported from a module of the project (a new import can
close an import cycle). Reported without fix, with the reason: a marker call the rule does not fully
understand (`*args`, several positional arguments, a comment on the moved default), an unannotated
parameter whose type is unknown, an `Annotated` name that is taken, a signature that cannot be reordered,
a marker naming a local of an enclosing function or class when FastAPI evaluates the annotation as a
string (`from __future__ import annotations`), in the module's globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst
from libcst.metadata import BuiltinScope, GlobalScope, Scope, ScopeProvider

from codemods._signatures import (
    AnnotatedName,
    annotated_name,
    annotated_subscript,
    annotated_unsupported,
    plan_signature,
)
from depfix.config import Settings
from depfix.facts import FileFacts, FunctionFact, ParamFact
from depfix.index import Class, External, Function, ProjectIndex, Resolved, qualified_name
from depfix.rules import SAFE, UNSAFE, FileRule, has_comment, register, source_of

MARKER_MODULES = ("fastapi", "fastapi.params", "fastapi.param_functions")
DEPENDENCY_MARKERS = frozenset(f"{m}.{n}" for m in MARKER_MODULES for n in ("Depends", "Security"))
VALUE_MARKERS = frozenset(
    f"{m}.{n}"
    for m in MARKER_MODULES
    for n in ("Query", "Path", "Header", "Cookie", "Body", "Form", "File")
)
ANNOTATED_NAMES = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
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
    NEEDLES = (
        b"Depends",
        b"Security",
        b"Query",
        b"Path",
        b"Header",
        b"Cookie",
        b"Body",
        b"Form",
        b"File",
    )
    FASTAPI_ONLY = True

    @classmethod
    def wants(cls, facts: FileFacts, index: ProjectIndex) -> bool:
        return any(
            param.default_call is not None
            for function in facts.functions.values()
            for param in function.params
        )

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
        if new_default is None:
            conversion.new = param.with_changes(
                annotation=new_annotation, default=None, equal=cst.MaybeSentinel.DEFAULT
            )
        else:
            conversion.new = param.with_changes(annotation=new_annotation, default=new_default)
        return conversion

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
        function = self.index.function_at(self.context.path, self.span(node).line)
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
        # only applies with --unsafe (on the next pass, once the safe edit is in).
        plans = {"safe": self.plan_signature(params, safe, function)}
        if len(safe) < len(convertible):
            plans["unsafe"] = self.plan_signature(params, convertible, function)
        for conversion in conversions.values():
            message = (
                f"parameter `{conversion.original.name.value}` uses `{conversion.marker}(...)` as its "
                "default; declare it with `Annotated`"
            )
            grade = "unsafe" if conversion.unsafe_reason else "safe"
            new_params, order_problem = plans[grade] if conversion.new is not None else (None, "")
            if new_params is None:
                self.report(conversion.original, message, reason=conversion.reason or order_problem)
                continue
            included = safe if grade == "safe" else convertible
            self.report(
                conversion.original,
                message,
                target=params,
                replacement=new_params,
                safety=UNSAFE if grade == "unsafe" else SAFE,
                reason=conversion.unsafe_reason,
                imports=tuple(sorted({i for c in included.values() for i in c.imports})),
            )

    def plan_signature(
        self, params: cst.Parameters, done: dict[int, Conversion], function: FunctionFact
    ) -> tuple[Optional[cst.Parameters], str]:
        """The new parameter list, with `*` inserted where order demands it, or why not."""
        replaced = {key: c.new for key, c in done.items() if c.new is not None}
        return plan_signature(self.index, params, replaced, function)
