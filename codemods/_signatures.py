"""Editing the signatures of functions FastAPI calls (DF006, DF001): `Annotated` and parameter order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import libcst as cst

from depfix.config import Settings
from depfix.facts import FileFacts, FunctionFact
from depfix.imports import bound_import, bound_module
from depfix.index import ProjectIndex

_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
MIN_FASTAPI_ANNOTATED = (0, 95, 1)


def annotated_unsupported(settings: Settings) -> Optional[str]:
    """Why `Annotated` parameters are not an option for this project, or None."""
    version = settings.fastapi_version
    if version is not None and version < MIN_FASTAPI_ANNOTATED:
        declared = ".".join(map(str, version))
        return f"the project's FastAPI ({declared}) predates `Annotated` support (0.95.1)"
    return None


@dataclass
class AnnotatedName:
    """How this module writes `Annotated`: an expression and the imports it needs, or why it cannot."""

    expression: Optional[cst.BaseExpression] = None
    imports: tuple[tuple[str, str], ...] = ()
    reason: str = ""


def annotated_name(module: cst.Module, facts: FileFacts, settings: Settings) -> AnnotatedName:
    """Reuse an imported `Annotated` (under any name), else import it when the name is free."""
    for source in ("typing", "typing_extensions"):
        local = bound_import(module, source, "Annotated")
        if local is not None:
            return AnnotatedName(cst.parse_expression(local))
    source = "typing_extensions" if settings.target_version < (3, 9) else "typing"
    if "Annotated" not in facts.bindings:
        return AnnotatedName(cst.Name("Annotated"), ((source, "Annotated"),))
    local_module = bound_module(module, source)
    if local_module is not None:
        return AnnotatedName(cst.parse_expression(f"{local_module}.Annotated"))
    return AnnotatedName(reason="the name `Annotated` is bound to something else in this module")


def annotated_subscript(
    annotated: cst.BaseExpression, type_node: cst.BaseExpression, marker: cst.BaseExpression
) -> cst.Subscript:
    """`Annotated[type, marker]`."""
    return cst.Subscript(
        value=annotated,
        slice=[
            cst.SubscriptElement(slice=cst.Index(value=type_node), comma=_COMMA),
            cst.SubscriptElement(slice=cst.Index(value=marker)),
        ],
    )


def plan_signature(
    index: ProjectIndex,
    params: cst.Parameters,
    replaced: dict[int, cst.Param],
    function: FunctionFact,
) -> tuple[Optional[cst.Parameters], str]:
    """The parameter list with some parameters replaced (by `id` of the old node), or why not.

    When a parameter without a default would follow one with a default, `*` is inserted before it:
    FastAPI passes every argument by keyword. That is refused when the project calls the function
    with that many positional arguments, for positional-only parameters, and next to `*args`.
    """

    def new(param: cst.Param) -> cst.Param:
        return replaced.get(id(param), param)

    posonly = [new(p) for p in params.posonly_params]
    normal = [new(p) for p in params.params]
    kwonly = [new(p) for p in params.kwonly_params]
    positional = posonly + normal
    seen_default = False
    first_bad: Optional[int] = None
    for position, param in enumerate(positional):
        if param.default is not None:
            seen_default = True
        elif seen_default:
            first_bad = position
            break
    if first_bad is None:
        return params.with_changes(posonly_params=posonly, params=normal, kwonly_params=kwonly), ""
    name = positional[first_bad].name.value
    if first_bad < len(posonly):
        return None, f"positional-only `{name}` would lose its default after an optional parameter"
    if isinstance(params.star_arg, cst.Param):
        return None, (
            f"`{name}` would lose its default after an optional parameter, before `*args`; "
            "reorder it by hand"
        )
    if function.name == "__call__":
        return (
            None,
            f"`{name}` would have to become keyword-only, and direct calls of instances cannot be "
            "checked",
        )
    offset = 1 if function.class_qualname else 0
    for path, site in index.direct_calls((function.module, function.qualname)):
        if site.star or site.positional + offset > first_bad:
            how = "with `*`/`**` arguments" if site.star else "passing it by position"
            return None, (
                f"`{name}` would lose its default after an optional parameter, and "
                f"{path}:{site.line} calls `{function.name}` {how}"
            )
    split = first_bad - len(posonly)
    moved = normal[split:]
    normal = normal[:split]
    slash = params.posonly_ind
    star = params.star_arg
    if not isinstance(star, cst.ParamStar):
        previous: Union[cst.Comma, cst.MaybeSentinel, None] = None
        if normal:
            previous = normal[-1].comma
        elif isinstance(slash, cst.ParamSlash):
            previous = slash.comma
        before, star_comma = _split_separator(previous)
        if normal:
            normal[-1] = normal[-1].with_changes(comma=before)
        elif isinstance(slash, cst.ParamSlash):
            slash = slash.with_changes(comma=before)
        star = cst.ParamStar(comma=star_comma)
    return (
        params.with_changes(
            posonly_params=posonly,
            posonly_ind=slash,
            params=normal,
            star_arg=star,
            kwonly_params=moved + kwonly,
        ),
        "",
    )


def out_of_order(params: cst.Parameters, replaced: dict[int, cst.Param]) -> Optional[int]:
    """The `id` of the first positional parameter left without a default after one with a default."""
    seen_default = False
    for param in (*params.posonly_params, *params.params):
        if replaced.get(id(param), param).default is not None:
            seen_default = True
        elif seen_default:
            return id(param)
    return None


def _split_separator(
    separator: Union[cst.Comma, cst.MaybeSentinel, None],
) -> tuple[Union[cst.Comma, cst.MaybeSentinel], cst.Comma]:
    """The comma before an inserted `*,` line and the comma of that line.

    Every comment keeps exactly one line: a comment trailing the previous parameter stays on its line,
    comment lines that stood before the next parameter move below `*,` (they describe what follows),
    and the inserted line gets none of them.
    """
    if not isinstance(separator, cst.Comma):
        return (separator if separator is not None else cst.MaybeSentinel.DEFAULT), _COMMA
    after = separator.whitespace_after
    if not isinstance(after, cst.ParenthesizedWhitespace):
        return separator, cst.Comma(whitespace_after=after)
    kept = separator.with_changes(whitespace_after=after.with_changes(empty_lines=()))
    inserted = cst.Comma(whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace()))
    return kept, inserted
