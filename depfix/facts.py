"""The cheap per-file pass: what one module defines, imports, routes and injects.

It uses the standard library's `ast` (an order of magnitude faster than libcst) and returns small
picklable facts. Names are already mapped through the file's own imports and scopes; resolving them
across files is the index's job (`depfix.index`).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Union, cast

from depfix.import_order import Step, top_level_steps
from depfix.io import decode_source
from depfix.values import LAMBDA, LITERAL, UNKNOWN, Attr, Call, Lambda, Literal, Name, Value

BUILTIN_NAMES = frozenset(dir(builtins))
ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "options", "head", "trace", "api_route", "websocket"}
)
ROUTE_REGISTRATIONS = frozenset({"add_api_route", "add_api_websocket_route"})
MARKER_NAMES = frozenset({"Depends", "Security"})
TYPE_CHECKING_NAMES = frozenset(
    {"TYPE_CHECKING", "typing.TYPE_CHECKING", "typing_extensions.TYPE_CHECKING"}
)
ANNOTATED_NAMES = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
TYPE_ALIAS_TYPES = frozenset({"typing.TypeAliasType", "typing_extensions.TypeAliasType"})
_CONSTRAINED_NAMES = (
    "conint confloat constr conbytes conlist conset confrozenset condecimal condate"
)
CONSTRAINED_TYPES = frozenset(
    f"{module}.{name}"
    for module in ("pydantic", "pydantic.types")
    for name in _CONSTRAINED_NAMES.split()
)
"""pydantic's functions returning a constrained type (`Annotated[int, ...]` in pydantic 2)."""
DEPENDENCIES_KEYWORD = "dependencies"
GENERATOR_TYPES = frozenset(
    f"{module}.{name}"
    for module in ("typing", "collections.abc", "typing_extensions")
    for name in (
        "Generator",
        "Iterator",
        "AsyncGenerator",
        "AsyncIterator",
        "Iterable",
        "AsyncIterable",
    )
)

RUN_UNTIL_COMPLETE = "run_until_complete"
_TYPE_ALIAS_STATEMENT: Optional[type[ast.stmt]] = getattr(ast, "TypeAlias", None)  # Python 3.12
_SIMPLE_STATEMENTS = (
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Delete,
    ast.Global,
    ast.Nonlocal,
    ast.Import,
    ast.ImportFrom,
    ast.Raise,
    ast.Assert,
    ast.Return,
    *((_TYPE_ALIAS_STATEMENT,) if _TYPE_ALIAS_STATEMENT is not None else ()),
)
"""Statements libcst puts on a `SimpleStatementLine`."""

Position = tuple[int, int]
"""1-based line and 1-based character column."""


@dataclass(frozen=True, order=True)
class CallSite:
    """A direct call: where, how many arguments it passes by position, which by keyword.

    `star`: it passes `*args` or `**kwargs` (so it may pass any parameter, or none).
    """

    line: int
    column: int
    positional: int
    star: bool = False
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportFact:
    """`import target` or `from target import names`, with where it runs."""

    target: str
    names: tuple[str, ...]
    kind: str  # "eager", "local" (inside a function) or "type_checking"
    line: int
    star: bool = False


@dataclass(frozen=True)
class ParamFact:
    name: str
    kind: str  # "posonly", "normal", "vararg", "kwonly", "kwarg"
    annotation: Optional[Value]
    has_default: bool
    injected: bool  # has a Depends/Security default or an Annotated[..., Depends()] annotation
    default_call: Optional[Value] = None  # for a default `Query(...)`: what `Query` names
    annotated_metadata: tuple[MetadataFact, ...] = ()
    """With a call as the default only: the elements after the type of the `Annotated[...]` the
    annotation is (nested ones and string annotations followed, as `annotation` follows them), which
    the `annotation` value drops (DF017's gate)."""
    module_view: Optional[ParamFact] = None
    """With a call as the default, in a function nested in a class or function whose bindings change
    what the annotation or the default's callee name: the parameter as module-level names read it
    (what DF017 checks)."""


@dataclass(frozen=True)
class FunctionFact:
    module: str
    qualname: str
    line: int
    column: int
    end_line: int
    is_async: bool
    is_generator: bool
    decorators: tuple[Value, ...]
    returns: Optional[Value]
    provides: Optional[Value]
    """The exact type a dependency provides, when its return annotation names it simply:
    `-> Session`, `-> Iterator[Session]`, `-> AsyncGenerator[Session, None]`."""
    return_values: tuple[Value, ...]
    params: tuple[ParamFact, ...]
    class_qualname: Optional[str]
    returned_functions: tuple[str, ...] = ()
    """Qualnames of the undecorated functions defined in this one that it returns by name, when every
    `return` gives one of them (a factory: `def require_role(role): def check(...): ...; return check`)."""
    cleanup_after_yield: bool = False
    """A generator with one own `yield`, a top-level `yield` statement followed by top-level statements
    without an own `return`, one of them not a lone `<yielded name>.commit()` (DF002's shape; over-
    approximated: a `yield` sharing its line with other statements counts as a statement)."""
    yield_in_with: tuple[str, ...] = ()
    """For a generator with one own `yield`, none as a top-level statement: the dotted callees of its
    top-level `with <callee>(...) as <name>:` blocks whose body is that `yield` alone (DF002 with
    `yield-commit`: a transactional resource yielded inside `with`)."""
    yield_handler_without_raise: bool = False
    """A `try` whose body holds a `yield` statement, directly in this function (not in a nested
    function), has an `except` handler without an own `raise` (DF003's shape)."""
    returned_callee: Optional[str] = None
    """What the body's final `return` creates, as DF004 reads it: the callee as written (a dotted name)
    of the call it returns (`return SessionLocal()`, `return await make()`), or of the call the last
    top-level `x = ...`/`x: T = ...` before it assigns when it returns a name (`db = engine.connect()`).
    None when the body ends otherwise or that callee is no dotted name."""
    task_sources: tuple[str, ...] = ()
    """Names whose value may reach an argument of an `x.add_task(...)` call of this function's own
    body: the argument's root name (`db` for `db` and `db.execute`), and the names it was copied from
    by a plain `name = other` (or `= other.attr`) anywhere in the body, transitively (DF011)."""

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class ClassFact:
    module: str
    qualname: str
    line: int
    bases: tuple[Value, ...]
    methods: frozenset[str]
    decorated: bool = False
    decorators: tuple[Value, ...] = ()
    metaclass: Optional[Value] = None


@dataclass(frozen=True)
class RouteFact:
    """A function registered on something that may be a FastAPI app or router."""

    owner: Value
    method: str
    endpoint: Value
    line: int
    column: int
    definition_line: int = 0
    """For a route decorator, the line of the `def` it decorates (that definition is the endpoint,
    even when a later `def` rebinds its name); 0 for `add_api_route(...)` and other calls."""


@dataclass(frozen=True)
class DependencyRefFact:
    """A `Depends(...)`/`Security(...)` call: where it is, what it injects, in which context."""

    marker: Name
    line: int
    column: int
    end_line: int
    end_column: int
    target: Optional[Value]  # None for `Depends()`
    target_is_call: bool  # `Depends(f())`: the dependency is the result of a call
    call_has_args: bool
    context: str  # "default", "annotated", "alias", "dependencies", "other"
    function: Optional[str]  # qualname of the function whose parameter it is
    parameter: Optional[str]
    annotation: Optional[Value]  # the parameter's type, for `Depends()` without argument
    in_string: bool = False
    annotated_size: int = 0  # elements of the enclosing `Annotated[...]`, 0 when not in one
    simple_type: bool = False  # that Annotated's type is a plain name: `Session`, `models.User`
    alias_name: Optional[str] = None  # `SessionDep = Annotated[Session, Depends(get_db)]`
    options: str = ""  # the marker's other arguments, normalised: "use_cache=False"
    options_source: str = ""  # the same as written in the file


@dataclass(frozen=True)
class OverrideFact:
    """`app.dependency_overrides[key] = value`."""

    key: Value
    value: Value
    line: int


@dataclass(frozen=True)
class MetadataFact:
    """An element after the type in `Annotated[T, ...]`: its code, and what it calls or names."""

    text: str
    value: Optional[Value]  # the callee of a call, the value of a name; None for a literal


@dataclass(frozen=True)
class TypeAliasFact:
    """A module-level name bound to a type expression: `QueryStr = Annotated[str, ...]`.

    kind: "annotated" (`Annotated[base, *metadata]`, nested `Annotated` flattened as Python does),
    "subscript" (`base[...]` of another origin), "union" (`X | Y`, `None`), "name" (a type alias
    statement naming `base`) or "constrained" (`conint(gt=0)`: `base` is the function, the call is
    the one metadata element). `statement`: `type X = ...` or `TypeAliasType(...)`, which FastAPI
    unwraps when it is a parameter's whole annotation, while `Annotated[X, ...]` keeps it whole.
    """

    line: int
    kind: str
    base: Optional[Value]
    """annotated: the type when it is a name (perhaps an alias itself); subscript: the origin."""
    metadata: tuple[MetadataFact, ...] = ()
    statement: bool = False


@dataclass
class FileFacts:
    path: str
    module: str
    is_package: bool
    imports: list[ImportFact] = field(default_factory=list)
    bindings: dict[str, Value] = field(default_factory=dict)
    rebound: set[str] = field(default_factory=set)
    star_imports: list[str] = field(default_factory=list)
    functions: dict[str, FunctionFact] = field(default_factory=dict)
    shadowed_functions: list[FunctionFact] = field(default_factory=list)
    """Earlier definitions of a qualname that a later `def` rebinds (`functions` holds the last one,
    what the name refers to): a route decorator still registers them (two routes named alike)."""
    classes: dict[str, ClassFact] = field(default_factory=dict)
    routes: list[RouteFact] = field(default_factory=list)
    dependency_refs: list[DependencyRefFact] = field(default_factory=list)
    overrides: list[OverrideFact] = field(default_factory=list)
    calls: dict[str, list[CallSite]] = field(default_factory=dict)
    all_names: Optional[tuple[str, ...]] = None
    type_aliases: dict[str, TypeAliasFact] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    """What the top level does when the module runs, in order (`depfix.import_order`)."""
    def_lines: tuple[int, ...] = ()
    """The line of every `def` and `async def` of the file, in source order (`FileRule.def_line`)."""
    single_argument_calls: list[tuple[str, str]] = field(default_factory=list)
    """Calls passing one positional argument and nothing else, in a function's own scope (not in a
    nested `def`'s body, a class or a lambda, but in a nested `def`'s decorators and defaults), as
    (function qualname, callee as written), for DF009: a dotted
    callee whose first name the module binds (`asyncio.run`, `run`: resolve it at module level, as
    `FileRule.resolve_expression` does, whatever the function binds), and any callee
    `<expression>.run_until_complete` (written `.run_until_complete` when the expression is no
    dotted name)."""

    def every_function(self) -> tuple[FunctionFact, ...]:
        """`functions` and the earlier definitions they rebind (`shadowed_functions`)."""
        return (*self.functions.values(), *self.shadowed_functions)


def parse_source(path: str, data: bytes) -> tuple[str, ast.Module]:
    """A file's text and `ast` tree (`SourceError`, `SyntaxError` and `ValueError` propagate).

    Syntax newer than the running Python is read through `depfix.lowering`: the text returned is
    then the lowered one, whose lines and columns are the file's.
    """
    text = decode_source(Path(path), data)
    try:
        return text, ast.parse(text, filename=path)
    except SyntaxError as error:
        original = error
    if "nested" in str(original.msg) or "too many" in str(original.msg):
        raise original  # too deep for this Python: libcst's native parser may crash on it
    from depfix.lowering import lower  # imports libcst: only for a file this Python cannot parse

    lowered = lower(text)
    if lowered is None:
        raise original
    try:
        return lowered, ast.parse(lowered, filename=path)
    except SyntaxError:
        raise original from None


def fingerprint(facts: FileFacts) -> str:
    """A digest of everything a file's facts hold, positions included, stable across processes.

    Reprs are stable (facts hold tuples, and dicts in source order) except for the two sets, sorted here.
    """
    classes = [(replace(c, methods=frozenset()), sorted(c.methods)) for c in facts.classes.values()]
    text = repr((replace(facts, rebound=set(), classes={}), sorted(facts.rebound), classes))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=20).hexdigest()


def resolve_relative(module: str, is_package: bool, level: int, target: Optional[str]) -> str:
    """The absolute module named by `from <level dots><target> import ...` inside `module`."""
    if level == 0:
        return target or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if target:
        parts.append(target)
    return ".".join(parts)


class _Scope:
    def __init__(self, kind: str, qualname: str) -> None:
        self.kind = kind  # "module", "class", "function"
        self.qualname = qualname
        self.bindings: dict[str, Value] = {}
        self.yields = False  # for a function: a `yield` in its own body
        self.returns: list[Value] = []  # for a function: what its own `return`s give
        self.returned_names: list[Optional[str]] = []  # for a function: a name each `return` gives
        self.local_defs: set[str] = set()  # names bound by an undecorated `def` in this function
        self.rebound: set[str] = set()  # names of this function bound more than once
        self.swallows = False  # for a function: a handler without `raise` around a `yield` (DF003)
        self.task_roots: set[str] = set()  # for a function: root names of `add_task` arguments
        self.copies: list[tuple[str, str]] = []  # for a function: `name = other(.attr)`, in order


class _Extractor(ast.NodeVisitor):
    def __init__(self, facts: FileFacts, text: str) -> None:
        self.facts = facts
        self.text = text
        self.lines = text.splitlines()
        self.segment_lines: Optional[list[str]] = None  # as `ast.get_source_segment` splits
        original = getattr(text, "original", None)  # a `depfix.lowering.Lowered` text's
        self.original_lines = original.splitlines() if isinstance(original, str) else None
        self.scopes: list[_Scope] = [_Scope("module", "")]
        self.type_checking_depth = 0
        self.conditional_depth = 0
        self.marker_args: set[int] = set()
        self.string_annotation = False

    # ---- traversal: `ast.NodeVisitor`'s, without its per-node lookups ----------------------
    def visit(self, node: ast.AST) -> Any:
        method = _DISPATCH.get(type(node))
        if method is None:
            method = _DISPATCH[type(node)] = _dispatch(type(node))
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        fields = _CHILD_FIELDS.get(type(node))
        for name in fields if fields is not None else _child_fields(type(node)):
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    # ---- positions and names --------------------------------------------------------------
    def column(self, line: int, byte_offset: int) -> int:
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            if not text.isascii():
                return len(text.encode("utf-8")[:byte_offset].decode("utf-8", "ignore")) + 1
        return byte_offset + 1

    def start(self, node: ast.expr | ast.stmt) -> Position:
        return node.lineno, self.column(node.lineno, node.col_offset)

    def end(self, node: ast.expr | ast.stmt) -> Position:
        line = node.end_lineno or node.lineno
        return line, self.column(line, node.end_col_offset or 0)

    def qualname(self, name: str) -> str:
        scope = self.scopes[-1]
        if scope.kind == "module":
            return name
        if scope.kind == "class":
            return f"{scope.qualname}.{name}"
        return f"{scope.qualname}.<locals>.{name}"

    def lookup(self, name: str) -> Value:
        innermost = self.scopes[-1]
        for scope in reversed(self.scopes):
            if scope.kind == "class" and scope is not innermost:
                continue
            if name in scope.bindings:
                return scope.bindings[name]
        if name in BUILTIN_NAMES:
            return Name(f"builtins.{name}")
        # a global the module binds later: function bodies run after the whole module has
        return Name(f"{self.facts.module}.{name}")

    def value(self, node: Optional[ast.expr]) -> Value:
        if node is None:
            return UNKNOWN
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value)
            if isinstance(base, Name):
                return Name(f"{base.qname}.{node.attr}")
            return Attr(base, node.attr)
        if isinstance(node, ast.Call):
            return Call(self.value(node.func))
        if isinstance(node, ast.Lambda):
            return LAMBDA
        if isinstance(node, (ast.Constant, ast.JoinedStr, ast.Dict, ast.List, ast.Set, ast.Tuple)):
            return LITERAL
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp)):
            return LITERAL
        return UNKNOWN

    def annotation(self, node: Optional[ast.expr]) -> Optional[Value]:
        """The type an annotation names, looking through `Annotated[T, ...]` and string annotations."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parsed = _parse_string_expression(node.value)
            return self.annotation(parsed) if parsed is not None else UNKNOWN
        if isinstance(node, ast.Subscript):
            base = self.value(node.value)
            if isinstance(base, Name) and base.qname in ANNOTATED_NAMES:
                inner = node.slice
                if isinstance(inner, ast.Tuple) and inner.elts:
                    return self.annotation(inner.elts[0])
            return base  # a generic alias is named by its origin: `dict[str, int]` -> dict
        if isinstance(node, ast.Constant) and node.value is None:
            return Name("builtins.None")
        return self.value(node)

    def annotated_metadata(
        self, node: ast.expr, in_string: bool = False
    ) -> tuple[MetadataFact, ...]:
        """The metadata of the `Annotated[...]`s `annotation` looks through, in source order."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parsed = _parse_string_expression(node.value)
            return self.annotated_metadata(parsed, True) if parsed is not None else ()
        if not isinstance(node, ast.Subscript):
            return ()
        base = self.value(node.value)
        if not (isinstance(base, Name) and base.qname in ANNOTATED_NAMES):
            return ()
        inner = node.slice
        if not (isinstance(inner, ast.Tuple) and inner.elts):
            return ()
        extra = tuple(self.metadata_fact(element, in_string) for element in inner.elts[1:])
        return self.annotated_metadata(inner.elts[0], in_string) + extra

    def module_view(
        self, name: str, kind: str, annotation: ast.expr, default: ast.Call
    ) -> ParamFact:
        """A parameter with a call as its default, its names looked up in the module's scope only."""
        scopes, self.scopes = self.scopes, self.scopes[:1]
        try:
            return ParamFact(
                name,
                kind,
                self.annotation(annotation),
                True,
                False,
                self.value(default.func),
                self.annotated_metadata(annotation),
            )
        finally:
            self.scopes = scopes

    def segment(self, node: Union[ast.expr, ast.keyword]) -> Optional[str]:
        """`ast.get_source_segment(text, node)`, without splitting the whole text at every call
        (which made reading a large module with many markers quadratic)."""
        if self.segment_lines is None:
            self.segment_lines = _LINE.findall(self.text)
        end_line, end_column = node.end_lineno, node.end_col_offset
        if end_line is None or end_column is None:
            return None
        lines = self.segment_lines
        line, column = node.lineno - 1, node.col_offset
        if end_line - 1 == line:
            return lines[line].encode()[column:end_column].decode()
        first = lines[line].encode()[column:].decode()
        last = lines[end_line - 1].encode()[:end_column].decode()
        return "".join([first, *lines[line + 1 : end_line - 1], last])

    def options_source(self, node: ast.Call) -> str:
        """A marker call's arguments other than the dependency, as the file writes them."""
        parts = []
        children: list[Union[ast.expr, ast.keyword]] = [*node.args[1:]]
        children += [k for k in node.keywords if k.arg != "dependency"]
        for child in children:
            segment = self.segment(child)
            if segment is None or "\n" in segment or "#" in segment:
                return _options(node)
            parts.append(segment)
        return ", ".join(parts)

    def original_options(self, node: ast.Call) -> Optional[str]:
        """In a lowered text, a marker's other arguments as the file writes them, when the lowering
        changed them (a t-string, an f-string of Python 3.12): `_options` would read the lowered code."""
        if self.original_lines is None:
            return None
        children: list[Union[ast.expr, ast.keyword]] = [*node.args[1:]]
        children += [k for k in node.keywords if k.arg != "dependency"]
        if not children:
            return None
        first, last = children[0], children[-1]
        line, column = first.lineno, self.column(first.lineno, first.col_offset)
        end_line = last.end_lineno or last.lineno
        end_column = self.column(end_line, last.end_col_offset or 0)
        lowered = self.lines[line - 1 : end_line]
        original = self.original_lines[line - 1 : end_line]
        lowered[-1], original[-1] = lowered[-1][: end_column - 1], original[-1][: end_column - 1]
        lowered[0], original[0] = lowered[0][column - 1 :], original[0][column - 1 :]
        return None if lowered == original else "\n".join(original)

    def provided_type(self, node: Optional[ast.expr], is_generator: bool) -> Optional[Value]:
        """The simple type a return annotation names, looking through a generator's wrapper."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = _parse_string_expression(node.value)
        if isinstance(node, ast.Subscript):
            if not is_generator:
                return None
            origin = self.value(node.value)
            if not (isinstance(origin, Name) and origin.qname in GENERATOR_TYPES):
                return None
            node = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
        if isinstance(node, (ast.Name, ast.Attribute)):
            value = self.value(node)
            return value if isinstance(value, Name) else None
        return None

    def bind(self, name: str, value: Value, is_import: bool = False) -> None:
        """Bind `name` in the current scope.

        A module-level name is looked up through the index (`module.name`), so that a later
        rebinding or another file's view of it agree; an import is an alias and is looked up as
        what it imports, so that `from fastapi import Depends as D` is recognised without the index.
        """
        scope = self.scopes[-1]
        if scope.kind == "module":
            if name in scope.bindings or self.conditional_depth:
                self.facts.rebound.add(name)
            self.facts.bindings[name] = value
            scope.bindings[name] = value if is_import else Name(f"{self.facts.module}.{name}")
        else:
            if name in scope.bindings:
                scope.rebound.add(name)
            scope.bindings[name] = value

    def record_call(self, node: ast.Call) -> None:
        func = self.value(node.func)
        if isinstance(func, Name) and not func.qname.startswith("builtins."):
            line, column = self.start(node)
            star = any(isinstance(arg, ast.Starred) for arg in node.args)
            star = star or any(keyword.arg is None for keyword in node.keywords)
            keywords = tuple(keyword.arg for keyword in node.keywords if keyword.arg is not None)
            site = CallSite(line, column, len(node.args), star, keywords)
            self.facts.calls.setdefault(func.qname, []).append(site)

    def record_single_argument_call(self, node: ast.Call) -> None:
        """See `FileFacts.single_argument_calls` (filtered by the module's names at the end)."""
        scope = self.scopes[-1]
        if (
            scope.kind != "function"
            or len(node.args) != 1
            or node.keywords
            or isinstance(node.args[0], ast.Starred)
        ):
            return
        callee = ast_dotted(node.func)
        if callee is None:
            if not (isinstance(node.func, ast.Attribute) and node.func.attr == RUN_UNTIL_COMPLETE):
                return
            callee = f".{RUN_UNTIL_COMPLETE}"
        self.facts.single_argument_calls.append((scope.qualname, callee))

    # ---- imports ----------------------------------------------------------------------------
    def import_kind(self) -> str:
        if self.type_checking_depth:
            return "type_checking"
        if any(scope.kind == "function" for scope in self.scopes):
            return "local"
        return "eager"

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.facts.imports.append(ImportFact(alias.name, (), self.import_kind(), node.lineno))
            if alias.asname:
                self.bind(alias.asname, Name(alias.name), is_import=True)
            else:
                top = alias.name.split(".")[0]
                self.bind(top, Name(top), is_import=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = resolve_relative(self.facts.module, self.facts.is_package, node.level, node.module)
        names = tuple(alias.name for alias in node.names)
        star = names == ("*",)
        self.facts.imports.append(ImportFact(target, names, self.import_kind(), node.lineno, star))
        if star:
            if self.scopes[-1].kind == "module":
                self.facts.star_imports.append(target)
            return
        for alias in node.names:
            imported = Name(f"{target}.{alias.name}" if target else alias.name)
            self.bind(alias.asname or alias.name, imported, is_import=True)

    # ---- definitions ------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.function(node, is_async=False)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.function(node, is_async=True)

    def function(self, node: Union[ast.FunctionDef, ast.AsyncFunctionDef], is_async: bool) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        qualname = self.qualname(node.name)
        enclosing = self.scopes[-1]
        class_qualname = enclosing.qualname if enclosing.kind == "class" else None
        params = self.parameters(node, qualname)
        decorators = tuple(
            self.value(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        )
        for decorator in node.decorator_list:
            self.route_decorator(decorator, qualname, node)
        returns = self.annotation(node.returns)
        if node.returns is not None:
            self.visit(node.returns)
        self.bind(node.name, Name(f"{self.facts.module}.{qualname}"))
        if enclosing.kind == "function" and not node.decorator_list:
            enclosing.local_defs.add(node.name)
        scope = _Scope("function", qualname)
        for param in params:
            scope.bindings[param.name] = Call(param.annotation) if param.annotation else UNKNOWN
        self.scopes.append(scope)
        for statement in node.body:
            self.visit(statement)
        is_generator = scope.yields
        return_values = tuple(scope.returns)
        returned_functions: tuple[str, ...] = ()
        if not (is_async or is_generator) and all(
            name in scope.local_defs and name not in scope.rebound for name in scope.returned_names
        ):
            returned = {f"{qualname}.<locals>.{name}" for name in scope.returned_names if name}
            returned_functions = tuple(sorted(returned))
        task_sources = _task_sources(scope) if scope.task_roots else ()
        self.scopes.pop()
        cleanup_after_yield, yield_in_with = (
            self.yield_shape(node.body) if is_generator else (False, ())
        )
        shadowed = self.facts.functions.get(qualname)
        if shadowed is not None:
            self.facts.shadowed_functions.append(shadowed)
        self.facts.functions[qualname] = FunctionFact(
            module=self.facts.module,
            qualname=qualname,
            line=node.lineno,
            column=self.column(node.lineno, node.col_offset),
            end_line=node.end_lineno or node.lineno,
            is_async=is_async,
            is_generator=is_generator,
            decorators=decorators,
            returns=returns,
            provides=self.provided_type(node.returns, is_generator),
            return_values=return_values,
            params=params,
            class_qualname=class_qualname,
            returned_functions=returned_functions,
            cleanup_after_yield=cleanup_after_yield,
            yield_in_with=yield_in_with,
            yield_handler_without_raise=scope.swallows,
            returned_callee=_returned_callee(node.body),
            task_sources=task_sources,
        )

    def yield_shape(self, body: list[ast.stmt]) -> tuple[bool, tuple[str, ...]]:
        """`FunctionFact.cleanup_after_yield` and `yield_in_with` of a generator's body."""
        if len(_own_nodes(body, (ast.Yield, ast.YieldFrom))) != 1:
            return False, ()
        position = next((i for i, s in enumerate(body) if _is_yield_statement(s)), None)
        if position is None:
            callees = []
            for statement in body:
                if not (
                    isinstance(statement, (ast.With, ast.AsyncWith))
                    and len(statement.items) == 1
                    and isinstance(statement.items[0].optional_vars, ast.Name)
                    and len(statement.body) == 1
                    and _is_yield_statement(statement.body[0])
                ):
                    continue
                call = statement.items[0].context_expr
                call = call.value if isinstance(call, ast.Await) else call
                callee = ast_dotted(call.func) if isinstance(call, ast.Call) else None
                if callee is not None:
                    callees.append(callee)
            return False, tuple(callees)
        after = body[position + 1 :]
        if not after or _own_nodes(after, (ast.Return,)):
            return False, ()
        yielded = cast(ast.Expr, body[position]).value
        name = (
            yielded.value.id
            if isinstance(yielded, ast.Yield) and isinstance(yielded.value, ast.Name)
            else None
        )
        return any(
            not self.lone_commit(body, position + 1 + i, name) for i in range(len(after))
        ), ()

    def lone_commit(self, body: list[ast.stmt], position: int, name: Optional[str]) -> bool:
        """Whether `body[position]` is `name.commit(...)` (or awaited) alone on its line."""
        statement = body[position]
        if name is None or not isinstance(statement, ast.Expr):
            return False
        call = statement.value.value if isinstance(statement.value, ast.Await) else statement.value
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "commit"
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == name
        ):
            return False
        line, end_line = statement.lineno, statement.end_lineno or statement.lineno
        if not (0 < line <= end_line <= len(self.lines)):
            return False
        first = self.lines[line - 1].encode("utf-8")
        before, start = first[: statement.col_offset], first[statement.col_offset :]
        if not start.startswith((name.encode("utf-8"), b"await")):
            return False  # the text's lines are not `ast`'s (a form feed): say it is not lone
        rest = self.lines[end_line - 1].encode("utf-8")[statement.end_col_offset or 0 :].strip()
        previous = self.lines[line - 2].rstrip() if line > 1 else ""
        return (
            not before.strip()
            and (not rest or rest.startswith(b"#"))
            and not previous.endswith("\\")
            and (position == 0 or (body[position - 1].end_lineno or 0) < line)
        )

    def return_value(self, node: ast.Return) -> Value:
        if node.value is None:
            return LITERAL
        value = self.value(node.value)
        if isinstance(node.value, ast.Name) and isinstance(value, Name):
            local = self.scopes[-1].qualname + ".<locals>."
            if value.qname.startswith(f"{self.facts.module}.{local}"):
                return LAMBDA
        return value

    def parameters(
        self, node: Union[ast.FunctionDef, ast.AsyncFunctionDef], qualname: str
    ) -> tuple[ParamFact, ...]:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[Optional[ast.expr]] = [None] * (len(positional) - len(args.defaults))
        defaults += list(args.defaults)
        entries: list[tuple[ast.arg, str, Optional[ast.expr]]] = []
        for index, arg in enumerate(positional):
            kind = "posonly" if index < len(args.posonlyargs) else "normal"
            entries.append((arg, kind, defaults[index]))
        if args.vararg:
            entries.append((args.vararg, "vararg", None))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            entries.append((arg, "kwonly", default))
        if args.kwarg:
            entries.append((args.kwarg, "kwarg", None))
        params = []
        for arg, kind, default in entries:
            annotation = self.annotation(arg.annotation)
            injected = False
            if arg.annotation is not None:
                injected = self.visit_annotation(arg.annotation, qualname, arg.arg, annotation)
            if default is not None:
                injected = self.visit_default(default, qualname, arg.arg, annotation) or injected
            default_call = self.value(default.func) if isinstance(default, ast.Call) else None
            metadata: tuple[MetadataFact, ...] = ()
            module_view = None
            if isinstance(default, ast.Call) and arg.annotation is not None:
                metadata = self.annotated_metadata(arg.annotation)
                if len(self.scopes) > 1:
                    module_view = self.module_view(arg.arg, kind, arg.annotation, default)
                    if (module_view.annotation, module_view.default_call) == (
                        annotation,
                        default_call,
                    ) and module_view.annotated_metadata == metadata:
                        module_view = None
            params.append(
                ParamFact(
                    arg.arg,
                    kind,
                    annotation,
                    default is not None,
                    injected,
                    default_call,
                    metadata,
                    module_view,
                )
            )
        return tuple(params)

    def visit_annotation(
        self, node: ast.expr, function: str, parameter: str, annotation: Optional[Value]
    ) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parsed = _parse_string_expression(node.value)
            if parsed is None:
                return False
            before = len(self.facts.dependency_refs)
            previous, self.string_annotation = self.string_annotation, True
            ast.copy_location(parsed, node)
            for child in ast.walk(parsed):
                ast.copy_location(child, node)
            self.visit_annotation(parsed, function, parameter, annotation)
            self.string_annotation = previous
            return len(self.facts.dependency_refs) > before
        if isinstance(node, ast.Subscript):
            base = self.value(node.value)
            if (
                isinstance(base, Name)
                and base.qname in ANNOTATED_NAMES
                and isinstance(node.slice, ast.Tuple)
            ):
                return self.annotated_markers(node.slice, "annotated", function, parameter, None)
        self.visit(node)
        return False

    def annotated_markers(
        self,
        elements: ast.Tuple,
        context: str,
        function: Optional[str],
        parameter: Optional[str],
        alias_name: Optional[str],
    ) -> bool:
        """Record the markers inside `Annotated[T, ...]`; True when there is one."""
        found = False
        first = elements.elts[0]
        self.visit(first)
        for extra in elements.elts[1:]:
            if isinstance(extra, ast.Call) and self.marker(extra) is not None:
                self.dependency_ref(
                    extra,
                    context,
                    function,
                    parameter,
                    self.annotation(first),
                    annotated_size=len(elements.elts),
                    simple_type=isinstance(first, (ast.Name, ast.Attribute)),
                    alias_name=alias_name,
                )
                found = True
            else:
                self.visit(extra)
        return found

    def annotated_alias(self, node: ast.Assign) -> bool:
        """`Name = Annotated[T, Depends(...)]` at module level: record it as an alias."""
        value = node.value
        if not (
            self.scopes[-1].kind == "module"
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(value, ast.Subscript)
            and isinstance(value.slice, ast.Tuple)
            and len(value.slice.elts) >= 2
        ):
            return False
        base = self.value(value.value)
        if not (isinstance(base, Name) and base.qname in ANNOTATED_NAMES):
            return False
        self.visit(value.value)
        return self.annotated_markers(value.slice, "alias", None, None, node.targets[0].id)

    def visit_default(
        self, node: ast.expr, function: str, parameter: str, annotation: Optional[Value]
    ) -> bool:
        if isinstance(node, ast.Call) and self.marker(node) is not None:
            self.dependency_ref(node, "default", function, parameter, annotation)
            return True
        self.visit(node)
        return False

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        for base in node.bases:
            self.visit(base)
        for keyword in node.keywords:
            self.visit(keyword.value)
        qualname = self.qualname(node.name)
        bases = tuple(self.value(base) for base in node.bases)
        self.bind(node.name, Name(f"{self.facts.module}.{qualname}"))
        self.scopes.append(_Scope("class", qualname))
        for statement in node.body:
            self.visit(statement)
        body = self.scopes.pop()
        methods = frozenset(
            statement.name
            for statement in node.body
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        # `__call__ = handler` makes instances callable as surely as a `def` does
        methods |= {name for name in ("__call__", "__new__") if name in body.bindings}
        metaclass = next((k.value for k in node.keywords if k.arg == "metaclass"), None)
        self.facts.classes[qualname] = ClassFact(
            self.facts.module,
            qualname,
            node.lineno,
            bases,
            methods,
            bool(node.decorator_list),
            tuple(
                self.value(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
            ),
            self.value(metaclass) if metaclass is not None else None,
        )

    def visit_Return(self, node: ast.Return) -> None:
        scope = self.scopes[-1]
        if scope.kind == "function":
            scope.returns.append(self.return_value(node))
            scope.returned_names.append(node.value.id if isinstance(node.value, ast.Name) else None)
        self.generic_visit(node)

    def visit_Yield(self, node: Union[ast.Yield, ast.YieldFrom]) -> None:
        self.scopes[-1].yields = True
        self.generic_visit(node)

    visit_YieldFrom = visit_Yield

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.scopes.append(_Scope("function", self.qualname("<lambda>")))
        self.generic_visit(node)
        self.scopes.pop()

    # ---- statements -------------------------------------------------------------------------
    def type_alias(
        self, node: ast.expr, line: int, statement: bool = False
    ) -> Optional[TypeAliasFact]:
        """What a module-level type alias's value is, as far as `Annotated` goes (see TypeAliasFact)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parsed = _parse_string_expression(node.value)
            return self.type_alias(parsed, line, statement) if parsed is not None else None
        if isinstance(node, ast.Call):
            func = self.value(node.func)
            if len(node.args) >= 2 and isinstance(func, Name) and func.qname in TYPE_ALIAS_TYPES:
                return self.type_alias(node.args[1], line, statement=True)
            if isinstance(func, Name) and func.qname in CONSTRAINED_TYPES:
                call = self.metadata_fact(node)
                return TypeAliasFact(line, "constrained", func, (call,), statement)
            return None
        if isinstance(node, ast.Subscript):
            origin = self.value(node.value)
            elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if not (isinstance(origin, Name) and origin.qname in ANNOTATED_NAMES):
                return TypeAliasFact(line, "subscript", origin, (), statement)
            if len(elements) < 2:
                return None
            metadata = tuple(self.metadata_fact(element) for element in elements[1:])
            nested = (
                self.type_alias(elements[0], line)
                if isinstance(elements[0], ast.Subscript)
                else None
            )
            if nested is not None and nested.kind == "annotated":  # Annotated[Annotated[T, a], b]
                return TypeAliasFact(
                    line, "annotated", nested.base, nested.metadata + metadata, statement
                )
            first = elements[0]
            base = self.value(first) if isinstance(first, (ast.Name, ast.Attribute)) else None
            return TypeAliasFact(line, "annotated", base, metadata, statement)
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)) or (
            isinstance(node, ast.Constant) and node.value is None
        ):
            return TypeAliasFact(line, "union", None, (), statement)
        if statement and isinstance(node, (ast.Name, ast.Attribute)):
            return TypeAliasFact(line, "name", self.value(node), (), statement)
        return None

    def metadata_fact(self, node: ast.expr, in_string: bool = False) -> MetadataFact:
        text = None if in_string else self.segment(node)
        if text is None or "\n" in text or "#" in text:
            text = ast.unparse(node)
        try:
            ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        else:
            return MetadataFact(text, None)  # a literal: `"a note"`, `None`, `(1, 2)`
        callee = node.func if isinstance(node, ast.Call) else node
        return MetadataFact(text, self.value(callee))

    def record_type_alias(
        self, name: str, node: ast.expr, line: int, statement: bool = False
    ) -> None:
        if self.scopes[-1].kind != "module":
            return
        fact = self.type_alias(node, line, statement)
        if fact is not None:
            self.facts.type_aliases[name] = fact
        else:
            self.facts.type_aliases.pop(name, None)

    def visit_Assign(self, node: ast.Assign) -> None:
        lowered = self.lowered_type_alias(node)
        if lowered is not None:  # as `visit_TypeAlias` reads the statement on a newer Python
            name, aliased = lowered
            self.visit(aliased)
            self.assign_target(node.targets[0], UNKNOWN)
            self.record_type_alias(name, aliased, node.lineno, statement=True)
            return
        if not self.annotated_alias(node):
            self.visit(node.value)
        value = self.value(node.value)
        for target in node.targets:
            self.assign_target(target, value)
        scope = self.scopes[-1]
        if scope.kind == "function" and len(node.targets) == 1:
            source = _root_name(node.value)
            if source is not None and isinstance(node.targets[0], ast.Name):
                scope.copies.append((node.targets[0].id, source))
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.record_type_alias(node.targets[0].id, node.value, node.lineno)
        if (
            self.scopes[-1].kind == "module"
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "__all__"
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            self.facts.all_names = tuple(
                element.value
                for element in node.value.elts
                if isinstance(element, ast.Constant) and isinstance(element.value, str)
            )

    def assign_target(self, target: ast.expr, value: Value) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value)
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.assign_target(element, UNKNOWN)
            return
        if (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Attribute)
            and target.value.attr == "dependency_overrides"
        ):
            self.facts.overrides.append(
                OverrideFact(self.value(target.slice), value, target.lineno)
            )
        self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        if isinstance(node.target, ast.Name):
            if node.value is not None:
                self.bind(node.target.id, self.value(node.value))
                self.record_type_alias(node.target.id, node.value, node.lineno)
            elif self.scopes[-1].kind == "function":
                self.bind(node.target.id, Call(self.value(node.annotation)))
        else:
            self.visit(node.target)

    def visit_TypeAlias(self, node: Any) -> None:
        """`type X = V` (Python 3.12): `X` is a `TypeAliasType`, neither V nor what V names.

        Read as `depfix.lowering` reads it on older Pythons (`(X)= -V`, see `visit_Assign`). FastAPI
        unwraps such an alias only since 0.128.2, and only as a whole annotation: it is recorded as a
        type alias statement (what DF006 and DF017 ask of it), never as an `Annotated` alias that rules
        may reuse.
        """
        self.visit(node.value)
        self.assign_target(node.name, UNKNOWN)
        if isinstance(node.name, ast.Name):
            self.record_type_alias(node.name.id, node.value, node.lineno, statement=True)

    def lowered_type_alias(self, node: ast.Assign) -> Optional[tuple[str, ast.expr]]:
        """The name and value of a `type X = V` that `depfix.lowering` wrote as `(X)= -V`."""
        lines = getattr(self.text, "type_alias_lines", None)
        if not lines or node.lineno not in lines or len(node.targets) != 1:
            return None
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and isinstance(value, ast.UnaryOp)):
            return None
        return (target.id, value.operand) if isinstance(value.op, ast.USub) else None

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        test = self.value(node.test)
        type_checking = isinstance(test, Name) and test.qname in TYPE_CHECKING_NAMES
        self.type_checking_depth += type_checking
        self.conditional_depth += 1
        for statement in node.body:
            self.visit(statement)
        self.type_checking_depth -= type_checking
        for statement in node.orelse:
            self.visit(statement)
        self.conditional_depth -= 1

    def visit_Match(self, node: Any) -> None:
        """`match` (Python 3.10): each case runs or not, like the branches of an `if` (and as
        `depfix.lowering` reads it on Python 3.9)."""
        self.conditional_depth += 1
        self.generic_visit(node)
        self.conditional_depth -= 1

    def visit_Try(self, node: ast.Try) -> None:
        if (
            isinstance(node, ast.Try)
            and any(_is_yield_statement(s) for s in node.body)
            and any(not _own_nodes(h.body, (ast.Raise,)) for h in node.handlers)
        ):
            function = next((s for s in reversed(self.scopes) if s.kind != "class"), None)
            if function is not None:
                function.swallows = True
        self.conditional_depth += 1
        self.generic_visit(node)
        self.conditional_depth -= 1

    visit_TryStar = visit_Try

    def visit_For(self, node: Union[ast.For, ast.AsyncFor, ast.While]) -> None:
        self.conditional_depth += 1
        self.generic_visit(node)
        self.conditional_depth -= 1

    visit_AsyncFor = visit_For
    visit_While = visit_For

    def visit_With(self, node: Union[ast.With, ast.AsyncWith]) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.assign_target(item.optional_vars, UNKNOWN)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in ROUTE_REGISTRATIONS
        ):
            endpoint = call.args[1] if len(call.args) > 1 else _keyword(call, "endpoint")
            if endpoint is not None:
                line, column = self.start(call)
                self.facts.routes.append(
                    RouteFact(
                        self.value(call.func.value),
                        call.func.attr,
                        self.value(endpoint),
                        line,
                        column,
                    )
                )
        self.generic_visit(node)

    # ---- expressions ------------------------------------------------------------------------
    def marker(self, node: ast.Call) -> Optional[Name]:
        func = self.value(node.func)
        if isinstance(func, Name) and func.qname.rsplit(".", 1)[-1] in MARKER_NAMES:
            return func
        return None

    def visit_Call(self, node: ast.Call) -> None:
        if self.marker(node) is not None:
            if id(node) not in self.marker_args:
                self.dependency_ref(node, "other", None, None, None)
            return
        self.record_call(node)
        self.record_single_argument_call(node)
        self.route_call(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "add_task":
            self.task_call(node)
        dependencies = _keyword(node, DEPENDENCIES_KEYWORD)
        if isinstance(dependencies, (ast.List, ast.Tuple)):
            for element in dependencies.elts:
                if isinstance(element, ast.Call) and self.marker(element) is not None:
                    self.marker_args.add(id(element))
                    self.dependency_ref(element, "dependencies", None, None, None)
        self.generic_visit(node)

    def dependency_ref(
        self,
        node: ast.Call,
        context: str,
        function: Optional[str],
        parameter: Optional[str],
        annotation: Optional[Value],
        annotated_size: int = 0,
        simple_type: bool = False,
        alias_name: Optional[str] = None,
    ) -> None:
        if id(node) in self.marker_args and context != "dependencies":
            return
        self.marker_args.add(id(node))
        marker = self.marker(node)
        assert marker is not None
        target_node = node.args[0] if node.args else _keyword(node, "dependency")
        if context == "other" and self.scopes[-1].kind == "module":
            context = "alias"
        target_is_call = isinstance(target_node, ast.Call)
        target: Optional[Value] = None
        if target_node is not None:
            target = self.value(
                target_node.func if isinstance(target_node, ast.Call) else target_node
            )
        line, column = self.start(node)
        end_line, end_column = self.end(node)
        original_options = self.original_options(node)
        self.facts.dependency_refs.append(
            DependencyRefFact(
                marker=marker,
                line=line,
                column=column,
                end_line=end_line,
                end_column=end_column,
                target=target,
                target_is_call=target_is_call,
                call_has_args=isinstance(target_node, ast.Call)
                and bool(target_node.args or target_node.keywords),
                context=context,
                function=function,
                parameter=parameter,
                annotation=annotation,
                in_string=self.string_annotation,
                annotated_size=annotated_size,
                simple_type=simple_type,
                alias_name=alias_name,
                options=original_options or _options(node),
                options_source=original_options or self.options_source(node),
            )
        )
        if isinstance(target_node, ast.Call):
            self.record_single_argument_call(target_node)
            for child in (*target_node.args, *(k.value for k in target_node.keywords)):
                self.visit(child)
        for keyword in node.keywords:
            if keyword.arg != "dependency":
                self.visit(keyword.value)
        for extra in node.args[1:]:
            self.visit(extra)

    def task_call(self, node: ast.Call) -> None:
        """`x.add_task(...)` in a function's own body: record its arguments' root names."""
        scope = self.scopes[-1]
        if scope.kind != "function":
            return
        for arg in (*node.args, *(keyword.value for keyword in node.keywords)):
            root = _root_name(arg.value if isinstance(arg, ast.Starred) else arg)
            if root is not None:
                scope.task_roots.add(root)

    def route_call(self, node: ast.Call) -> None:
        """`app.get("/x")(handler)`: a route decorator applied by hand."""
        decorator = node.func
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr in ROUTE_METHODS
            and len(node.args) == 1
            and not node.keywords
        ):
            line, column = self.start(node)
            owner = self.value(decorator.func.value)
            endpoint = self.value(node.args[0])
            self.facts.routes.append(RouteFact(owner, decorator.func.attr, endpoint, line, column))

    def route_decorator(
        self, decorator: ast.expr, qualname: str, node: Union[ast.FunctionDef, ast.AsyncFunctionDef]
    ) -> None:
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            return
        method = decorator.func.attr
        if method not in ROUTE_METHODS:
            return
        line, column = self.start(decorator)
        self.facts.routes.append(
            RouteFact(
                self.value(decorator.func.value),
                method,
                Name(f"{self.facts.module}.{qualname}"),
                line,
                column,
                node.lineno,
            )
        )


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
"""A line and its end, as `ast.get_source_segment` splits a text (at CR, LF, CRLF; not at a form feed)."""


def ast_dotted(node: ast.expr) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None (as `depfix.imports.dotted` reads libcst)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = ast_dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _returned_callee(body: list[ast.stmt]) -> Optional[str]:
    """See `FunctionFact.returned_callee`.

    The final `return` is the last one at the top of the body followed only by simple statements
    (libcst's last line may hold `return x; ...`); the assignments read are those before it.
    """
    position = len(body) - 1
    while position >= 0 and not isinstance(body[position], ast.Return):
        if not isinstance(body[position], _SIMPLE_STATEMENTS):
            return None
        position -= 1
    if position < 0:
        return None
    returned = cast(ast.Return, body[position]).value
    if isinstance(returned, ast.Name):
        name, returned = returned.id, None
        for statement in body[:position]:
            if (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and statement.targets[0].id == name
            ) or (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and statement.target.id == name
            ):
                returned = statement.value
    if isinstance(returned, ast.Await):
        returned = returned.value
    return ast_dotted(returned.func) if isinstance(returned, ast.Call) else None


def _options(node: ast.Call) -> str:
    """A marker call's arguments other than the dependency, normalised for comparison."""
    parts = [ast.unparse(arg) for arg in node.args[1:]]
    for keyword in node.keywords:
        if keyword.arg == "dependency":
            continue
        value = ast.unparse(keyword.value)
        parts.append(f"{keyword.arg}={value}" if keyword.arg else f"**{value}")
    return ", ".join(parts)


def _root_name(node: ast.expr) -> Optional[str]:
    """`db` for `db` and for an attribute of it such as `db.execute`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def _task_sources(scope: _Scope) -> tuple[str, ...]:
    """The `add_task` argument roots of a function and every name they may be copies of."""
    found = set(scope.task_roots)
    grew = True
    while grew:
        grew = False
        for target, source in scope.copies:
            if target in found and source not in found:
                found.add(source)
                grew = True
    return tuple(sorted(found))


def _keyword(node: ast.Call, name: str) -> Optional[ast.expr]:
    for keyword in node.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


_DISPATCH: dict[type[ast.AST], Callable[[_Extractor, Any], Any]] = {}
_CHILD_FIELDS: dict[type[ast.AST], tuple[str, ...]] = {}


def _dispatch(node_type: type[ast.AST]) -> Callable[[_Extractor, Any], Any]:
    """The `visit_<Type>` method of the extractor for a node type, else its generic visit.

    `ast.NodeVisitor.visit_Constant` only looks for the legacy `visit_Num`-style methods, which the
    extractor does not define: a constant holds no node to visit.
    """
    method = getattr(_Extractor, f"visit_{node_type.__name__}", None)
    if method is None or method is ast.NodeVisitor.visit_Constant:
        return _Extractor.generic_visit
    return cast(Callable[[_Extractor, Any], Any], method)


def _child_fields(node_type: type[ast.AST]) -> tuple[str, ...]:
    """The fields that can hold nodes: all but `ctx` (a `Load`/`Store`/`Del` marker, never visited)."""
    fields = _CHILD_FIELDS[node_type] = tuple(f for f in node_type._fields if f != "ctx")
    return fields


_NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _own_nodes(nodes: list[ast.stmt], kinds: tuple[type[ast.AST], ...]) -> list[ast.AST]:
    """Nodes of `kinds` in `nodes`, not looking into nested functions, classes and lambdas."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [node for node in nodes if not isinstance(node, _NEW_SCOPES)]
    while stack:
        node = stack.pop()
        if isinstance(node, kinds):
            found.append(node)
        stack.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, _NEW_SCOPES)
        )
    return found


def _is_yield_statement(statement: ast.stmt) -> bool:
    """`yield x` (or `yield from x`) as a statement."""
    return isinstance(statement, ast.Expr) and isinstance(
        statement.value, (ast.Yield, ast.YieldFrom)
    )


def _parse_string_expression(text: str) -> Optional[ast.expr]:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None


def extract_facts(
    path: str, module: str, is_package: bool, tree: ast.Module, text: str
) -> FileFacts:
    """Everything the index needs from one parsed module."""
    facts = FileFacts(path=path, module=module, is_package=is_package)
    _Extractor(facts, text).visit(tree)
    facts.def_lines = tuple(_def_lines(tree.body))
    module_names = facts.bindings.keys() | facts.functions.keys() | facts.classes.keys()
    facts.single_argument_calls = [
        (function, callee)
        for function, callee in facts.single_argument_calls
        if callee.endswith(f".{RUN_UNTIL_COMPLETE}") or callee.split(".")[0] in module_names
    ]
    facts.steps = top_level_steps(
        tree,
        lambda level, target: resolve_relative(module, is_package, level, target),
        getattr(text, "type_alias_lines", frozenset()),
    )
    return facts


_STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def _def_lines(statements: list[Any]) -> Iterator[int]:
    """The `def` lines in a statement list and the lists nested in it, in source order.

    Functions are statements, so they are only in statement lists, whose fields hold them in source
    order (a decorated function's line is its `def`'s, as libcst positions the node).
    """
    for statement in statements:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield statement.lineno
        for name in _STATEMENT_LISTS:
            nested = getattr(statement, name, None)
            if nested:
                yield from _def_lines(nested)


def is_literal(value: Value) -> bool:
    return isinstance(value, Literal)


def is_lambda(value: Value) -> bool:
    return isinstance(value, Lambda)
