"""What an `Annotated` annotation carries besides its type, across aliases and files (DF006, DF017).

With a marker as the default (`q: QueryStr = Query(None)`) FastAPI reads only the type of an
`Annotated` annotation: its other elements (`StringConstraints`, `Field`, `annotated_types.MinLen`,
a validator) are ignored. In `Annotated[QueryStr, Query()]` Python flattens the alias and FastAPI
merges every element into the parameter, so validation and the OpenAPI schema change. A FastAPI
marker in the annotation next to a marker default makes FastAPI fail at startup, except a `Depends`
in the annotation next to a value marker (`Query`, `Body`...): then the `Depends` decides and the
default is ignored.

The annotation is followed through module-level aliases (`X = Annotated[...]`, `X = OtherAlias`,
`TypeAliasType`/`type X = ...`, which FastAPI unwraps only when it is the whole annotation), string
annotations and imports, across files through the index. A name the index cannot follow (a
third-party module, a name bound to a call) is "unknown": whether it is an `Annotated` alias cannot
be told.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import Optional, Union, cast

import libcst as cst

from depfix.facts import (
    ANNOTATED_NAMES,
    CONSTRAINED_TYPES,
    FileFacts,
    MetadataFact,
    ParamFact,
    TypeAliasFact,
)
from depfix.imports import STDLIB, dotted
from depfix.index import (
    ALWAYS_EXTERNAL,
    Class,
    External,
    Instance,
    ProjectIndex,
    Resolved,
    qualified_name,
)
from depfix.rules import FileRule, source_of
from depfix.values import Call, Name, Value

MARKER_MODULES = ("fastapi", "fastapi.params", "fastapi.param_functions")
MARKER_NAMES = ("Depends", "Security", "Query", "Path", "Header", "Cookie", "Body", "Form", "File")
MARKERS = {f"{module}.{name}": name for module in MARKER_MODULES for name in MARKER_NAMES}
MARKER_NEEDLES = tuple(name.encode() for name in MARKER_NAMES)
"""What a file must contain for a rule about marker parameters to look at it (`FileRule.NEEDLES`)."""
DEPENDENCY_MARKERS = frozenset({"Depends", "Security"})
INERT = frozenset({"typing.Doc", "typing_extensions.Doc", "annotated_doc.Doc"})
"""Metadata neither FastAPI nor pydantic acts on (besides literals)."""
PLAIN_PACKAGES = frozenset({"typing_extensions", "fastapi", "starlette"})
"""Packages (besides the standard library) whose public names are no `Annotated` aliases."""
UNREADABLE = ANNOTATED_NAMES | {"typing.TypeAliasType", "typing_extensions.TypeAliasType"}
PYDANTIC_ALIASES = {
    **{name: "Strict(strict=True)" for name in ("StrictBool", "StrictBytes", "StrictFloat")},
    "StrictInt": "Strict(strict=True)",
    "StrictStr": "Strict(strict=True)",
    "PositiveInt": "Gt(gt=0)",
    "PositiveFloat": "Gt(gt=0)",
    "NegativeInt": "Lt(lt=0)",
    "NegativeFloat": "Lt(lt=0)",
    "NonNegativeInt": "Ge(ge=0)",
    "NonNegativeFloat": "Ge(ge=0)",
    "NonPositiveInt": "Le(le=0)",
    "NonPositiveFloat": "Le(le=0)",
    "FiniteFloat": "AllowInfNan(allow_inf_nan=False)",
    "FilePath": "PathType(path_type='file')",
    "DirectoryPath": "PathType(path_type='dir')",
    "NewPath": "PathType(path_type='new')",
    "SocketPath": "PathType(path_type='socket')",
    "Base64Bytes": "EncodedBytes(encoder=Base64Encoder)",
    "Base64Str": "EncodedStr(encoder=Base64Encoder)",
    "Base64UrlBytes": "EncodedBytes(encoder=Base64UrlEncoder)",
    "Base64UrlStr": "EncodedStr(encoder=Base64UrlEncoder)",
    **{f"UUID{n}": f"UuidVersion(uuid_version={n})" for n in (1, 3, 4, 5, 6, 7, 8)},
}
"""pydantic 2's names that are `Annotated` aliases, with their metadata (pydantic 2.14); classes in
pydantic 1, so they count only where the project's FastAPI requires pydantic 2."""
PYDANTIC2_FASTAPI = (0, 126, 0)
"""The first FastAPI that requires pydantic 2."""
PYDANTIC_CLASSES = frozenset(
    {"BaseModel", "EmailStr", "NameEmail", "SecretStr", "SecretBytes", "Json", "ByteSize"}
    | {"PastDate", "FutureDate", "AwareDatetime", "NaiveDatetime"}
    | {"IPvAnyAddress", "IPvAnyNetwork", "IPvAnyInterface"}
)
"""pydantic names that are classes in every pydantic 2 release (its URL types were aliases before
2.10, so they stay unknown)."""
_MAX_DEPTH = 20
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Metadata:
    """One element of an annotation besides its type."""

    text: str
    alias: str = ""  # the alias that carries it; "" when written in the parameter's annotation
    marker: str = ""  # "Depends", "Query"...: a FastAPI marker
    inert: bool = False  # a literal or `Doc(...)`: nothing applies it
    constrained: bool = False  # `conint(gt=0)`: the constraints of a pydantic constrained type

    def describe(self) -> str:
        if self.constrained:
            if self.alias:
                return f"the constraints of `{self.alias}` (`{self.text}`)"
            return f"the constraints of `{self.text}`"
        return f"`{self.text}` of `{self.alias}`" if self.alias else f"`{self.text}`"


@dataclass
class AnnotationMetadata:
    """What a parameter's annotation carries besides its type, or why that cannot be told."""

    metadata: list[Metadata] = field(default_factory=list)
    unknown: str = ""
    statement: str = ""  # a type alias statement FastAPI unwraps (`type X = ...`), by name

    @property
    def applied(self) -> list[Metadata]:
        """What FastAPI applies in `Annotated` and ignores next to a marker default."""
        return [item for item in self.metadata if not item.inert and not item.marker]

    @property
    def markers(self) -> list[Metadata]:
        return [item for item in self.metadata if item.marker]


def describe(items: list[Metadata]) -> str:
    """`A`, `B` of `X` and `C`."""
    texts = [item.describe() for item in items]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def annotation_metadata(rule: FileRule, annotation: cst.BaseExpression) -> AnnotationMetadata:
    """What `annotation` (a parameter's) carries besides its type, as FastAPI sees it.

    Computed once per annotation text and file for an index (DF017 and DF006 ask about the same
    parameters, and a file's parameters often share annotations); callers must not change it.
    """
    version = rule.context.settings.fastapi_version
    pydantic2 = version is not None and version >= PYDANTIC2_FASTAPI
    facts = rule.context.facts
    by_path = cast(
        dict[str, tuple[FileFacts, dict[tuple[str, bool], AnnotationMetadata]]],
        rule.index.memo.setdefault("annotation_metadata", {}),
    )
    cached = by_path.get(rule.context.path)
    if cached is None or cached[0] is not facts:
        cached = by_path[rule.context.path] = (facts, {})
    key = (source_of(annotation), pydantic2)
    result = cached[1].get(key)
    if result is None:
        result = AnnotationMetadata()
        _Walker(rule.index, facts, result, pydantic2).node(annotation, "", top=True, depth=0)
        cached[1][key] = result
    return result


def fact_metadata(
    index: ProjectIndex, facts: FileFacts, param: ParamFact
) -> Optional[AnnotationMetadata]:
    """What a parameter's annotation carries, read from a module-level function's facts (no libcst).

    The metadata `annotation_metadata` finds, or more: pydantic 2's aliases count whatever the
    project's FastAPI, and a subscript's origin is read as a name (DF017's gate). The names are the
    ones the facts resolved where the function is defined, what `annotation_metadata` reads unless
    they name what an enclosing class or function binds (see `ParamFact.module_view`).
    None when the annotation is an `Annotated[...]` the facts did not look through (`Annotated`
    imported from a project module, or bound later): what it carries is not known.
    """
    for name in module_level_names(facts, param.annotation):
        if qualified_name(index.resolve(name)) in UNREADABLE:
            return None
    result = AnnotationMetadata()
    walker = _Walker(index, facts, result, pydantic2=True)
    for item in param.annotated_metadata:
        result.metadata.append(walker.alias_metadata(item, ""))
    top = not param.annotated_metadata  # a type inside `Annotated[...]` is not the whole annotation
    value = param.annotation
    if isinstance(value, Call):  # `conint(gt=0)`
        function = qualified_name(index.resolve(value.func))
        walker.constrained(f"{function}(...)", "", function)
    for name in module_level_names(facts, value):
        walker.qualified(name.qname, name.qname.rsplit(".", 1)[-1], top, depth=0)
    return result


def module_level_names(facts: FileFacts, value: Optional[Value]) -> list[Name]:
    """The names a module-level function's annotation or default may refer to (`FileRule.
    resolve_expression` reads them): the name the facts resolved, and for a builtin's name the
    module's own binding of it, made after the function's definition."""
    if not isinstance(value, Name):
        return []
    names = [value]
    if value.qname.startswith("builtins."):
        rest = value.qname[len("builtins.") :]
        head = rest.split(".")[0]
        if head in facts.bindings or head in facts.functions or head in facts.classes:
            names.append(Name(f"{facts.module}.{rest}"))
    return names


def _is_literal(text: str) -> bool:
    """Whether metadata is a literal (`"a note"`, `None`, `42`, `(1, 2)`): nothing acts on those."""
    try:
        ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


class _Walker:
    def __init__(
        self, index: ProjectIndex, facts: FileFacts, result: AnnotationMetadata, pydantic2: bool
    ) -> None:
        self.index = index
        self.facts = facts
        self.result = result
        self.pydantic2 = pydantic2

    def pydantic_version_unknown(self, name: str) -> None:
        self.unknown(
            f"`{name}` is an `Annotated` type in pydantic 2 and a class in pydantic 1, and the "
            f"project's FastAPI does not require pydantic 2 (FastAPI 0.126+ does)"
        )

    def constrained(self, text: str, alias: str, function: Optional[str]) -> bool:
        """`conint(gt=0)`: record its constraints (pydantic 2); False when `function` is another."""
        if function not in CONSTRAINED_TYPES:
            return False
        if self.pydantic2:
            self.result.metadata.append(Metadata(text, alias, constrained=True))
        else:
            self.pydantic_version_unknown(function.rsplit(".", 1)[-1] + "(...)")
        return True

    def unknown(self, reason: str) -> None:
        if not self.result.unknown:
            self.result.unknown = reason

    # ---- the parameter's own annotation (libcst) ----------------------------------------------
    def qualify(self, name: str) -> str:
        head = name.split(".")[0]
        facts = self.facts
        if head in facts.bindings or head in facts.functions or head in facts.classes:
            return f"{facts.module}.{name}"
        return f"builtins.{name}"

    def node(self, node: cst.BaseExpression, alias: str, top: bool, depth: int) -> None:
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            inner = node.evaluated_value if isinstance(node, cst.SimpleString) else None
            try:
                parsed = cst.parse_expression(inner.strip()) if isinstance(inner, str) else None
            except cst.ParserSyntaxError:
                parsed = None
            if parsed is None:
                self.unknown("its string annotation cannot be read")
                return
            self.node(parsed, alias, top, depth)
            return
        if isinstance(node, cst.Call):
            callee = dotted(node.func)
            function = self.external_name(self.qualify(callee)) if callee else None
            if self.constrained(" ".join(source_of(node).split()), alias, function):
                return
        if isinstance(node, cst.BinaryOperation) or (
            isinstance(node, cst.Name) and node.value == "None"
        ):
            return
        name = dotted(node.value) if isinstance(node, cst.Subscript) else dotted(node)
        if name is None:
            self.unknown(f"`{source_of(node)}` is not a type depfix can follow")
            return
        qname = self.qualify(name)
        if isinstance(node, cst.Subscript):
            if self.external_name(qname) in ANNOTATED_NAMES:
                elements = list(node.slice)
                first = elements[0].slice
                if isinstance(first, cst.Index):
                    self.node(first.value, alias, top=False, depth=depth + 1)
                for element in elements[1:]:
                    if isinstance(element.slice, cst.Index):
                        self.inline_metadata(element.slice.value, alias)
                return
            self.origin(qname, depth)
            return
        self.qualified(qname, name, top, depth)

    def external_name(self, qname: str) -> Optional[str]:
        return qualified_name(self.index.resolve_qualified(qname))

    def inline_metadata(self, node: cst.BaseExpression, alias: str) -> None:
        text = " ".join(source_of(node).split())
        if _is_literal(text):
            self.result.metadata.append(Metadata(text, alias, inert=True))
            return
        callee = dotted(node.func if isinstance(node, cst.Call) else node)
        resolved = self.index.resolve_qualified(self.qualify(callee)) if callee else None
        self.result.metadata.append(self.classify(text, alias, resolved))

    @staticmethod
    def classify(text: str, alias: str, resolved: Optional[Resolved]) -> Metadata:
        if isinstance(resolved, Instance):  # `marker = Query(None)` at module level, then `marker`
            resolved = resolved.of
        qname = qualified_name(resolved) if resolved is not None else None
        if qname in MARKERS:
            return Metadata(text, alias, marker=MARKERS[qname])
        return Metadata(text, alias, inert=qname in INERT)

    # ---- names, across files (facts) -----------------------------------------------------------
    def origin(self, qname: str, depth: int) -> None:
        """`origin[...]` for an origin other than `Annotated`: plain, unless it is an alias."""
        found = self.lookup(qname, depth)
        if isinstance(found, tuple):
            facts, name, alias = found
            self.alias(facts, name, alias, top=False, depth=depth + 1)

    def qualified(self, qname: str, written: str, top: bool, depth: int) -> None:
        found = self.lookup(qname, depth)
        if isinstance(found, tuple):
            facts, name, alias = found
            self.alias(facts, name, alias, top, depth + 1)
            return
        if isinstance(found, str):
            self.unknown(found)
            return
        if isinstance(found, Class):
            return
        if isinstance(found, External):
            self.external(found.qname, written)
            return
        self.unknown(f"`{written}` is not a class or a type alias depfix can read")

    def external(self, qname: str, written: str) -> None:
        module, _, short = qname.rpartition(".")
        root = qname.split(".")[0]
        if module in ("pydantic", "pydantic.types", "pydantic.networks"):
            if short in PYDANTIC_ALIASES:
                if self.pydantic2:
                    self.result.metadata.append(Metadata(PYDANTIC_ALIASES[short], short))
                else:
                    self.pydantic_version_unknown(short)
                return
            if short in PYDANTIC_CLASSES:
                return
        if qname in UNREADABLE:
            self.unknown(f"`{written}` cannot be read as a type")
        elif module == "builtins":
            if short not in _BUILTINS:
                self.unknown(f"`{written}` is not bound at module level")
        elif root not in STDLIB and root not in PLAIN_PACKAGES:
            self.unknown(f"`{written}` comes from `{module}`, which depfix does not read")

    def value(self, value: Optional[Value], top: bool, depth: int) -> None:
        if value is None:
            return
        if not isinstance(value, Name):
            self.unknown("an alias names a type depfix cannot follow")
            return
        self.qualified(value.qname, value.qname.rsplit(".", 1)[-1], top, depth)

    def alias(
        self, facts: FileFacts, name: str, alias: TypeAliasFact, top: bool, depth: int
    ) -> None:
        if alias.statement:
            if (
                not top
            ):  # inside `Annotated[X, ...]` or `X[...]` it is a type: its metadata stays in it
                return
            self.result.statement = name
        if alias.kind == "annotated":
            self.value(alias.base, top=False, depth=depth)
            for item in alias.metadata:
                self.result.metadata.append(self.alias_metadata(item, name))
        elif alias.kind == "subscript":
            if isinstance(alias.base, Name):
                self.origin(alias.base.qname, depth)
        elif alias.kind == "name":
            self.value(alias.base, top=False, depth=depth)
        elif alias.kind == "constrained":
            function = self.index.resolve(alias.base) if alias.base is not None else None
            text = " ".join(alias.metadata[0].text.split()) if alias.metadata else name
            if not self.constrained(text, name, qualified_name(function) if function else None):
                self.unknown(f"`{name}` is bound to a call depfix cannot read as a type")

    def alias_metadata(self, item: MetadataFact, alias: str) -> Metadata:
        text = " ".join(item.text.split())
        if item.value is None:
            return Metadata(text, alias, inert=True)
        return self.classify(text, alias, self.index.resolve(item.value))

    def lookup(
        self, qname: str, depth: int
    ) -> Union[tuple[FileFacts, str, TypeAliasFact], Resolved, str]:
        """A module-level alias (its module's facts, name and fact), what else it is, or why not."""
        if depth > _MAX_DEPTH:
            return "its aliases nest too deep"
        parts = qname.split(".")
        if parts[0] in ALWAYS_EXTERNAL:
            return External(qname)
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            facts = self.index.modules.get(module)
            if facts is None:
                continue
            name, *rest = parts[cut:]
            if rest:  # `module.name.attribute`: through an imported module, else a class attribute
                bound = facts.bindings.get(name)
                defined = name in facts.classes or name in facts.functions
                if isinstance(bound, Name) and not defined:
                    return self.lookup(".".join([bound.qname, *rest]), depth + 1)
                return self.index.resolve_qualified(qname)
            if name in facts.rebound:
                return f"`{name}` is bound more than once or conditionally in `{facts.module}`"
            if name in facts.type_aliases:
                return facts, name, facts.type_aliases[name]
            if name in facts.functions or name in facts.classes:
                return self.index.resolve_qualified(qname)
            bound = facts.bindings.get(name)
            if isinstance(bound, Name):
                return self.lookup(bound.qname, depth + 1)
            if bound is not None:
                return (
                    f"`{name}` in `{facts.module}` is bound to an expression depfix cannot read "
                    "as a type"
                )
            for star in facts.star_imports:
                source = self.index.modules.get(star)
                if source is not None and (name in source.bindings or name in source.type_aliases):
                    return self.lookup(f"{star}.{name}", depth + 1)
            return f"`{facts.module}` binds no `{name}`"
        return self.index.resolve_qualified(qname)
