"""DF008's module analysis from `ast` against libcst's scope analysis (the oracle).

`codemods._module_analysis._analyse_ast` must give, field by field, what `analyse` (libcst's
ScopeProvider) gives, or refuse (`_Unsupported`) so that `analyse_source` falls back to libcst.
Compared on every .py file under fixtures/ and on snippets of the shapes where the two could part.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional

import libcst as cst
import pytest

from codemods._module_analysis import (
    ModuleAnalysis,
    _analyse_ast,
    _Unsupported,
    analyse,
    analyse_source,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILES = sorted((ROOT / "fixtures").rglob("*.py"))

FIELDS = (
    "definitions",
    "conditional",
    "type_checking",
    "mutated",
    "imports",
    "used_by",
    "unresolved",
)
STATEMENT_FIELDS = (
    "position",
    "kind",
    "defines",
    "definition_uses",
    "body_uses",
    "dunders",
    "movable",
)


def _differences(
    data: bytes, module: str = "app.mod", is_package: bool = False
) -> Optional[list[str]]:
    """None when the ast analysis falls back, else how it differs from libcst's (empty: equal)."""
    try:
        fast = _analyse_ast(module, is_package, data)
    except _Unsupported:
        return None
    slow = analyse(module, is_package, cst.parse_module(data))
    found: list[str] = []
    for name in FIELDS:
        mine, theirs = getattr(fast, name), getattr(slow, name)
        if name == "definitions":
            mine = {key: sorted(value) for key, value in mine.items()}
            theirs = {key: sorted(value) for key, value in theirs.items()}
        if name == "imports":
            # a name imported twice is in `mutated`; which binding libcst keeps depends on the
            # order of a set of objects hashed by id
            mine = {key: value for key, value in mine.items() if key not in slow.mutated}
            theirs = {key: value for key, value in theirs.items() if key not in slow.mutated}
        if mine != theirs:
            found.append(f"{name}: ast {mine!r} != libcst {theirs!r}")
    if len(fast.statements) != len(slow.statements):
        found.append(f"{len(fast.statements)} statements != {len(slow.statements)}")
    for mine_statement, their_statement in zip(fast.statements, slow.statements):
        for name in STATEMENT_FIELDS:
            mine, theirs = getattr(mine_statement, name), getattr(their_statement, name)
            if mine != theirs:
                found.append(f"statement {their_statement.position} {name}: {mine!r} != {theirs!r}")
    return found


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_fixture_files_match_libcst(path: Path) -> None:
    data = path.read_bytes()
    try:
        cst.parse_module(data)
    except cst.ParserSyntaxError:
        pytest.skip("libcst cannot parse it")
    assert _differences(data) in (None, [])


def test_fixture_files_rarely_fall_back() -> None:
    fell_back = []
    for path in FIXTURE_FILES:
        data = path.read_bytes()
        try:
            cst.parse_module(data)
        except cst.ParserSyntaxError:
            continue
        try:
            _analyse_ast("app.mod", False, data)
        except _Unsupported:
            fell_back.append(path)
    assert len(fell_back) <= len(FIXTURE_FILES) // 20, fell_back


SNIPPETS = {
    "ordering": """
        print(later)
        later = 1
        print(later)
        def f(a=x, b=later):
            return x + later + undefined_in_body
        x = 2
    """,
    "function_sees_later_globals": """
        def f():
            return helper() + CONSTANT
        def helper():
            return 1
        CONSTANT = 2
    """,
    "local_assigned_later_reads_global": """
        value = 1
        def f():
            print(value)
            value = 2
            return value
    """,
    "class_body": """
        BASE = 1
        class Settings(Base, metaclass=Meta):
            limit = BASE
            other = limit + 1
            items = [limit for _ in range(3)]
            pairs = [x for x in range(limit)]
            def method(self, default=limit):
                return limit + BASE
        class Base: ...
    """,
    "class_name_read_in_nested_scopes": """
        class A:
            x = 1
            def f(self):
                print(x)
                x = 2
    """,
    "comprehensions": """
        data = [[1]]
        flat = [y for x in data for y in x if y]
        odd = [z for x in data for y in x for z in y]
        shadow = [y for x in data for y in y]
        keyed = {k: v for k, v in pairs.items() if k}
        gen = list(a for a in data)
        nested = [[c for c in row] for row in data]
        s = {e async for e in aiter_}
        pairs = {}
    """,
    "decorators_and_annotations": """
        from typing import Optional
        from fastapi import Depends
        router = make()
        @router.get("/")
        @decorate(arg=router)
        def route(user: Optional[User] = Depends(get_user), *args: Extra, **kw: More) -> Out:
            return user
        def get_user(token: str = Depends(scheme)) -> "User":
            return find(token)
        class User: ...
        scheme = object()
    """,
    "lambdas": """
        key = lambda item, default=DEFAULT: item + default + OTHER
        DEFAULT = 1
        nested = lambda: (lambda y=key: y)
        def f(g=lambda x=NAME: x): ...
    """,
    "imports": """
        from __future__ import annotations
        import os
        import os.path
        import a.b.c
        import numpy as np, json
        from . import sibling
        from .. import parent as p
        from .pkg.mod import thing, other as alias
        from x import *
        from typing import TYPE_CHECKING
        import typing
        if TYPE_CHECKING:
            from app.models import Model
            import app.schemas
        if typing.TYPE_CHECKING:
            from app.other import Other
        else:
            Other = None
        try:
            import ujson as json_lib
        except ImportError:
            import json as json_lib
        if sys.version_info >= (3, 11):
            from typing import Self
        def uses() -> None:
            print(os.path.join(a.b.c.d, a.b.x, np.array, sibling, p, thing, alias, Model, Self))
            import local_module
            return local_module, json_lib, app.schemas.Schema, undefined_star_name
        print(os.getcwd(), os.path.sep)
    """,
    "dotted_imports_read_in_attribute_chains": """
        import xml.etree.ElementTree
        import a.b
        x = xml.etree.ElementTree.parse(a.b.c, a.b().c, a[0].b, (a).b.c)
        def f():
            return xml.etree, a.b.c.d, a.x
        import a.c
    """,
    "targets": """
        a, (b, c) = 1, (2, 3)
        d = e = 4
        [f, *g] = range(3)
        h: int = 5
        i: int
        j += 1
        k.attr = 1
        m[0] = 2
        for n, o in pairs:
            p = n
        else:
            q = 1
        while cond:
            r = 1
        with open(path) as handle, ctx() as (s, t), plain():
            u = handle
        try:
            v = 1
        except (ValueError, TypeError) as error:
            w = error
        except Exception:
            pass
        else:
            xx = 1
        finally:
            yy = 2
        for k in k:
            pass
        del a, m[0]
        del undefined_deleted
    """,
    "augmented_and_rebound": """
        count = 0
        count += 1
        def helper(): ...
        def helper(): ...
        class Twice: ...
        Twice = 1
        value = 1
        value = 2
    """,
    "semicolons": """
        a = 1; b = a
        c = 2  # comment; not a separator
        d = (c
        ); dd = d
        e = 3 ;
        f = 4; g = 5; h = f + g
        if a: i = 1; j = 2
        k = 1 \\
            ; m = k
    """,
    "dunders": """
        name = __name__
        here = __file__
        def f():
            return __spec__, __package__, __loader__, __doc__, __builtins__
        if __name__ == "__main__":
            main()
    """,
    "string_annotations": """
        from typing import List, Dict, Optional, Literal, cast, TypeVar, NewType
        import typing as t
        from typing_extensions import Annotated
        from fastapi import Query
        def f(a: "Model", b: List["Other"], c: Literal["not", "names"], d: "List['Nested']") -> "Out":
            e: "Local" = cast("Casted", x)
            return t.cast("AlsoCasted", e)
        def g(q: Annotated[str, Query(description="user")] = None, r: "int | None" = None): ...
        value = Optional["ForwardValue"]
        plain = {"key": "Model"}["key"]
        T = TypeVar("T", bound="Bound")
        U = TypeVar("U", "Constraint", int)
        UserId = NewType("UserId", int)
        hint: Dict["KeyName", "Model | None"] = {}
        described: Annotated[int, "Hello, world!", "a b", "1 +", ""] = 1
        class Model: ...
        class Out: ...
    """,
    "string_annotation_edges": """
        from typing import Annotated, Literal, List, Optional, cast, TypeVar
        import typing
        from fastapi import Query, APIRouter
        router = APIRouter()
        limit = 3
        def f(
            q: Annotated[str, Query(description="router")] = None,
            r: "Optional[List['limit']]" = None,
            s: Literal["limit", Optional["limit"]] = 1,
            u: "limit; limit" = 2,
            v: "f() = 1" = 3,
            w: "  limit" = 4,
        ): ...
        x = typing.cast("limit", 1)
        y = cast(typ="limit", val=2)
        T = TypeVar(limit, bound="router")
        z = Optional["router.x"]
        class C(typing.Generic["limit"]): ...
    """,
    "typing_names_bound_later": """
        x: List["Early"] = []
        from typing import List
        y = List["Late"]
    """,
    "fstrings": """
        name = "x"
        greeting = f"hello {name!r:>{width}} {other}"
        def f():
            return f"{name}{missing}"
    """,
    "nested_functions": """
        def outer(a):
            b = 1
            def inner(c=b):
                return a + b + c + GLOBAL + later_local
            later_local = 2
            class Local:
                attr = a
                def m(self):
                    return attr
            return inner
        GLOBAL = 1
    """,
    "async": """
        async def f(session=Depends(get_session)):
            async with session.begin() as transaction:
                async for row in transaction.stream(query):
                    await handle(row)
            return [x async for x in source() if await check(x)]
    """,
    "builtins_shadowed": """
        print(id)
        id = 1
        print(id)
        def list(): ...
        values = list()
    """,
}

FALLBACK_SNIPPETS = {
    "global": """
        counter = 0
        def bump():
            global counter
            counter += 1
    """,
    "nonlocal": """
        def outer():
            x = 1
            def inner():
                nonlocal x
                x = 2
    """,
    "walrus": """
        if (n := compute()) > 1:
            print(n)
    """,
    "match": """
        match command:
            case [x, y]:
                pass
    """,
    "statement_in_annotation": """
        def f(a: "x = 1"): ...
    """,
    "fstring_in_annotation": """
        def f(a: "Model" f"{x}"): ...
    """,
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippets_match_libcst(name: str) -> None:
    data = textwrap.dedent(SNIPPETS[name]).encode()
    assert _differences(data) == []


@pytest.mark.parametrize("name", sorted(FALLBACK_SNIPPETS))
def test_unmirrored_constructs_fall_back(name: str) -> None:
    data = textwrap.dedent(FALLBACK_SNIPPETS[name]).encode()
    assert _differences(data) is None
    analysis = analyse_source("app.mod", False, data)
    assert analysis.tree is not None  # the libcst analysis, with its tree


def test_statements_and_tree_are_parsed_lazily() -> None:
    data = b"import os\na = 1; b = a\ndef f():\n    return b\nclass C: ...\nx: int = 1\n"
    analysis = _analyse_ast("app.mod", False, data)
    assert isinstance(analysis, ModuleAnalysis)
    assert analysis._tree is None
    assert [s.movable for s in analysis.statements] == [False, False, True, True, True]
    assert analysis.statements[1].defines == set()  # two assignments on a line: not movable
    assert analysis.definitions == {"f": [2], "C": [3], "x": [4]}
    node = analysis.statements[2].node
    assert isinstance(node, cst.FunctionDef) and node.name.value == "f"
    assert analysis._tree is None  # not kept on the analysis: parsed trees are shared by content
    assert analysis._matched  # the libcst statements were checked against the ast ones
    assert analysis.tree.body[2] is node
    assert [s.node for s in analysis.statements] == list(analysis.tree.body)


def test_other_encodings_fall_back() -> None:
    data = "# -*- coding: latin-1 -*-\nname = 'café'; other = name\n".encode("latin-1")
    assert _differences(data) is None


def test_analyse_source_falls_back_for_syntax_ast_rejects() -> None:
    with pytest.raises(cst.ParserSyntaxError):
        analyse_source("app.broken", False, b"def f(:\n")
