"""Adding `from module import name` where isort would put it, and finding names already bound.

libcst's `AddImportsVisitor` appends names and places new statements after the last import; reviewers
then see isort churn in every diff. Here a name joins an existing top-level `from module import ...`
in isort's order (constants, classes, then functions), or a new statement goes into its section
(future, standard library, third party, first party) in sorted position.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Optional, Union

import libcst as cst

from depfix.codegen import code, code_for_node


def _standard_library() -> frozenset[str]:
    if sys.version_info >= (3, 10):
        return frozenset(sys.stdlib_module_names)
    import pkgutil  # pragma: no cover - Python 3.9
    import sysconfig

    found = {module.name for module in pkgutil.iter_modules([sysconfig.get_paths()["stdlib"]])}
    return frozenset(found | set(sys.builtin_module_names))


STDLIB = _standard_library()

_EMPTY = cst.Module(body=[])


def dotted(node: cst.BaseExpression) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def _module_of(statement: cst.SimpleStatementLine) -> Optional[tuple[str, bool]]:
    """(module, is_from) of an import statement line, or None for any other statement."""
    if len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Import):
        return dotted(small.names[0].name) or "", False
    if isinstance(small, cst.ImportFrom):
        return _from_source(small), True
    return None


def _sort_name(module: str) -> tuple[int, str]:
    """isort's order of module names: `..a` before `.` before `.b`, absolute names by name."""
    dots = len(module) - len(module.lstrip("."))
    return -dots, module[dots:]


def section(module: str, first_party: frozenset[str]) -> int:
    """isort's sections: 0 future, 1 standard library, 2 third party, 3 first party, 4 local."""
    top = module.split(".")[0]
    if module == "__future__":
        return 0
    if module.startswith("."):
        return 4
    if top in first_party:
        return 3
    if top in STDLIB:
        return 1
    return 2


def _name_order(name: str) -> tuple[int, str, str]:
    """isort's order_by_type: CONSTANTS, then Classes, then functions and variables, each
    compared without case (`Header` before `HTTPException`)."""
    if name.isupper() and len(name) > 1:
        return 0, name.lower(), name
    if name[:1].isupper():
        return 1, name.lower(), name
    return 2, name.lower(), name


def _add_to_from_import(small: cst.ImportFrom, name: str) -> cst.ImportFrom:
    assert isinstance(small.names, Sequence)
    names = list(small.names)
    alias = cst.ImportAlias(name=cst.Name(name))
    position = len(names)
    for index, existing in enumerate(names):
        existing_name = dotted(existing.name) or ""
        if _name_order(name) < _name_order(existing_name):
            position = index
            break
    if position < len(names):
        # take the place of the name it goes before, followed by the layout that preceded that
        # name (without its comment, which stays with the name)
        alias = alias.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        if small.lpar is not None:
            preceding = (
                small.lpar.whitespace_after
                if position == 0
                else getattr(names[position - 1].comma, "whitespace_after", None)
            )
            if isinstance(preceding, cst.ParenthesizedWhitespace):
                preceding = preceding.with_changes(
                    first_line=cst.TrailingWhitespace(newline=preceding.first_line.newline)
                )
                alias = alias.with_changes(comma=cst.Comma(whitespace_after=preceding))
        names.insert(position, alias)
    else:
        last = names[-1]
        trailing = last.comma
        names[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        if small.lpar is not None and isinstance(trailing, cst.Comma):
            # keep the multi-line layout: the new name gets the layout of the old last one
            previous = names[-2].comma if len(names) > 1 else None
            if isinstance(previous, cst.Comma):
                names[-1] = last.with_changes(comma=previous)
            names.append(alias.with_changes(comma=trailing))
        else:
            names.append(alias.with_changes(comma=trailing))
    return small.with_changes(names=names)


def _from_source(small: cst.ImportFrom) -> str:
    """The module of a from-import as written: `a.b`, `..db`, `.`."""
    name = (dotted(small.module) if small.module is not None else None) or ""
    return "." * len(small.relative) + name


def bound_import(module: cst.Module, source: str, name: str) -> Optional[str]:
    """The local name under which a top-level `from source import name [as x]` binds it."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.ImportFrom)
                and _from_source(small) == source
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if dotted(alias.name) == name:
                        return alias.evaluated_alias or name
    return None


def bound_module(module: cst.Module, source: str) -> Optional[str]:
    """The local name of a top-level `import source [as x]`, when there is one."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if dotted(alias.name) == source:
                        if alias.asname is not None:
                            return alias.evaluated_alias
                        return source
    return None


def add_from_import(
    module: cst.Module, source: str, name: str, first_party: frozenset[str] = frozenset()
) -> cst.Module:
    """`module` with `from source import name` added where isort would put it (no-op if bound)."""
    if bound_import(module, source, name) == name:
        return module
    body = list(module.body)
    for position, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            continue
        small = statement.body[0]
        if (
            isinstance(small, cst.ImportFrom)
            and _from_source(small) == source
            and not isinstance(small.names, cst.ImportStar)
        ):
            body[position] = statement.with_changes(body=[_add_to_from_import(small, name)])
            return module.with_changes(body=body)
    dots = len(source) - len(source.lstrip("."))
    target = source[dots:]
    new = cst.SimpleStatementLine(
        body=[
            cst.ImportFrom(
                module=_parse_dotted(target) if target else None,
                relative=[cst.Dot()] * dots,
                names=[cst.ImportAlias(name=cst.Name(name))],
            )
        ]
    )
    wanted = (section(source, first_party), True, _sort_name(source))
    return _insert_sorted(module, new, wanted, first_party)


def add_import(
    module: cst.Module,
    source: str,
    asname: Optional[str] = None,
    first_party: frozenset[str] = frozenset(),
) -> cst.Module:
    """`module` with `import source [as asname]` added where isort would put it (no-op if bound)."""
    bound = bound_module(module, source)
    if bound is not None and bound == (asname or source):
        return module
    alias = cst.ImportAlias(
        name=_parse_dotted(source),
        asname=cst.AsName(name=cst.Name(asname)) if asname else None,
    )
    new = cst.SimpleStatementLine(body=[cst.Import(names=[alias])])
    wanted = (section(source, first_party), False, _sort_name(source))
    return _insert_sorted(module, new, wanted, first_party)


def _insert_sorted(
    module: cst.Module,
    new: cst.SimpleStatementLine,
    wanted: tuple[int, bool, tuple[int, str]],
    first_party: frozenset[str],
) -> cst.Module:
    """Insert an import statement among the top-level imports where isort would put it."""
    body = list(module.body)
    imports: list[tuple[int, tuple[int, bool, tuple[int, str]]]] = []
    for position, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine):
            found = _module_of(statement)
            if found is not None:
                key = (section(found[0], first_party), found[1], _sort_name(found[0]))
                imports.append((position, key))
                continue
        if imports or not _is_preamble(statement, position):
            break
    if not imports:
        insert_at = _after_preamble(body)
        blank = [cst.EmptyLine()] if insert_at > 0 else []
        new = new.with_changes(leading_lines=blank)
        following = body[insert_at] if insert_at < len(body) else None
        if following is not None and not following.leading_lines:
            # isort leaves two blank lines before a definition, one before anything else
            blank_lines = 2 if isinstance(following, (cst.FunctionDef, cst.ClassDef)) else 1
            body[insert_at] = following.with_changes(leading_lines=[cst.EmptyLine()] * blank_lines)
        body.insert(insert_at, new)
        return module.with_changes(body=body)
    same_section = [(p, key) for p, key in imports if key[0] == wanted[0]]
    if same_section:
        after = [p for p, key in same_section if key <= wanted]
        if after:
            body.insert(after[-1] + 1, new)
        else:
            first = same_section[0][0]
            new = new.with_changes(leading_lines=body[first].leading_lines)
            body[first] = body[first].with_changes(leading_lines=[])
            body.insert(first, new)
        return module.with_changes(body=body)
    earlier = [p for p, key in imports if key[0] < wanted[0]]
    if earlier:
        position = earlier[-1] + 1
        body.insert(position, new.with_changes(leading_lines=[cst.EmptyLine()]))
    else:
        first = imports[0][0]
        new = new.with_changes(leading_lines=body[first].leading_lines)
        body[first] = body[first].with_changes(leading_lines=[cst.EmptyLine()])
        body.insert(first, new)
    return module.with_changes(body=body)


def _parse_dotted(source: str) -> Union[cst.Name, cst.Attribute]:
    parts = source.split(".")
    node: Union[cst.Name, cst.Attribute] = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def _is_preamble(statement: cst.BaseStatement, position: int) -> bool:
    """A module docstring (first statement) may stand before the imports."""
    return (
        position == 0
        and isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _after_preamble(body: Sequence[cst.BaseStatement]) -> int:
    return 1 if body and _is_preamble(body[0], 0) else 0


def _import_bindings(module: cst.Module) -> set[str]:
    """Names bound by the module's top-level import statements."""
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                    small.names, cst.ImportStar
                ):
                    names.update(_bound_name(alias) for alias in small.names)
    return names


def _uses(module: cst.Module, names: set[str], text: Optional[str] = None) -> dict[str, int]:
    """How often each name appears as a word outside top-level import statements.

    Text, not scope analysis: a name in a string, a comment or after a dot counts as a use, so the
    count can only err towards keeping an import. `text`: the module's code, when known.
    """
    counts = dict.fromkeys(names, 0)
    for word in _WORD.findall(module_code(module) if text is None else text):
        if word in counts:
            counts[word] += 1
    for statement in module.body:  # the module's code is its statements' codes joined
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
        ):
            for word in _WORD.findall(code_for_node(module, statement)):
                if word in counts:
                    counts[word] -= 1
    return counts


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LAST_CODE: list[tuple[cst.Module, str]] = []


def module_code(module: cst.Module) -> str:
    """`module.code`, remembered for the last module asked: a fix pass needs it twice."""
    if _LAST_CODE and _LAST_CODE[0][0] is module:
        return _LAST_CODE[0][1]
    text = code(module)
    _LAST_CODE[:] = [(module, text)]
    return text


def remove_imports_made_unused(
    before: cst.Module,
    after: cst.Module,
    keep: frozenset[str],
    before_text: Optional[str] = None,
) -> cst.Module:
    """Drop top-level imports that `before` used and `after` no longer uses.

    Imports that were unused already are left alone (they may be re-exports), and so are the names
    in `keep` (imported from this module elsewhere, or listed in `__all__`). `before_text`: the
    code of `before` when the caller has it (the file as read), which spares generating it.
    """
    imported = _import_bindings(after) - keep
    used_after = _uses(after, imported)
    candidates = {name for name, count in used_after.items() if count == 0}
    if not candidates:
        return after
    used_before = _uses(before, candidates, before_text)
    unused = {name for name in candidates if used_before[name] > 0}
    if not unused:
        return after
    body: list[cst.BaseStatement] = []
    carried: Optional[Sequence[cst.EmptyLine]] = (
        None  # blank lines and comments of a removed import
    )
    for statement in after.body:
        if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
            small = statement.body[0]
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                small.names, cst.ImportStar
            ):
                kept = [alias for alias in small.names if _bound_name(alias) not in unused]
                if not kept:
                    if carried is None:
                        carried = statement.leading_lines
                    elif body and len(statement.leading_lines) > len(carried):
                        carried = statement.leading_lines  # keep a section's separating blank line
                    continue
                if len(kept) < len(small.names):
                    kept[-1] = kept[-1].with_changes(comma=small.names[-1].comma)
                    statement = statement.with_changes(body=[small.with_changes(names=kept)])
        if carried is not None and (not body or len(carried) > len(statement.leading_lines)):
            statement = statement.with_changes(leading_lines=carried)
        carried = None
        body.append(statement)
    return after.with_changes(body=body)


def _bound_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return alias.evaluated_alias or ""
    name = dotted(alias.name) or ""
    return name.split(".")[0]


def uses_relative_imports(module: cst.Module) -> bool:
    """Whether the module's top-level imports include a relative one (its style for first party)."""
    return any(
        isinstance(small, cst.ImportFrom) and small.relative
        for statement in module.body
        if isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
    )


def relative_source(current: str, is_package: bool, target: str) -> Optional[str]:
    """`target` written relative to module `current` (`..db`), when both share a top package."""
    package = current.split(".") if is_package else current.split(".")[:-1]
    wanted = target.split(".")
    if not package or wanted[0] != package[0]:
        return None
    common = 0
    while common < min(len(package), len(wanted)) and package[common] == wanted[common]:
        common += 1
    rest = ".".join(wanted[common:])
    return "." * (len(package) - common + 1) + rest
