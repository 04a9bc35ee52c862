"""The repository index: module names, imports, routes, dependency references, across files."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codemods._import_graph import _file_edges
from depfix.engine import _closure_digests, _jobs_for, build_index
from depfix.facts import CallSite, FileFacts, extract_facts, fingerprint, resolve_relative
from depfix.index import EAGER, Class, External, Function, Instance, ProjectIndex
from depfix.modules import imported_names, module_names


def make_index(files: dict[str, str], root: Path, reverse: bool = False) -> ProjectIndex:
    paths = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    jobs = _jobs_for(sorted(paths), root, root)
    if reverse:
        jobs = list(reversed(jobs))
    facts = []
    for job in jobs:
        text = Path(job.absolute).read_text()
        facts.append(extract_facts(job.path, job.module, job.is_package, ast.parse(text), text))
    return build_index(jobs, facts)


# ---- module names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "packages", "expected"),
    [
        ("main.py", set(), ("main", [])),
        ("app/__init__.py", {"app"}, ("app", [])),
        ("app/routers/users.py", {"app", "app/routers"}, ("app.routers.users", [])),
        ("app/routers/users.py", set(), ("app.routers.users", [])),
        ("src/pkg/mod.py", {"src/pkg"}, ("pkg.mod", ["src.pkg.mod"])),
        ("src/pkg/mod.py", set(), ("pkg.mod", ["src.pkg.mod"])),
        ("services/api/app/main.py", {"services/api/app"}, ("app.main", ["services.api.app.main"])),
        ("my-scripts/run.py", set(), ("my-scripts.run", [])),
        ("server/app/sub/deps.py", {"server/app"}, ("app.sub.deps", ["server.app.sub.deps"])),
    ],
)
def test_module_names(path: str, packages: set[str], expected: tuple[str, list[str]]) -> None:
    assert module_names(path, frozenset(packages)) == expected


@pytest.mark.parametrize(
    ("module", "is_package", "level", "target", "expected"),
    [
        ("app.routers.users", False, 1, "auth", "app.routers.auth"),
        ("app.routers.users", False, 2, "db", "app.db"),
        ("app.routers", True, 1, "users", "app.routers.users"),
        ("app.routers.users", False, 1, None, "app.routers"),
        ("app.main", False, 0, "fastapi", "fastapi"),
    ],
)
def test_relative_imports(
    module: str, is_package: bool, level: int, target: str | None, expected: str
) -> None:
    assert resolve_relative(module, is_package, level, target) == expected


# ---- imports ---------------------------------------------------------------------------------------
def test_import_kinds(tmp_path: Path) -> None:
    index = make_index(
        {
            "app/__init__.py": "",
            "app/a.py": """
                from typing import TYPE_CHECKING
                import app.b
                if TYPE_CHECKING:
                    from app.c import Thing
                def f():
                    from app.d import helper
                    return helper()
            """,
        },
        tmp_path,
    )
    facts = index.modules["app.a"]
    kinds = {(fact.target, fact.kind) for fact in facts.imports}
    assert ("app.b", "eager") in kinds
    assert ("app.c", "type_checking") in kinds
    assert ("app.d", "local") in kinds
    assert ("typing", "eager") in kinds


def test_re_exports_and_star_imports_resolve_to_the_definition(tmp_path: Path) -> None:
    index = make_index(
        {
            "app/__init__.py": "",
            "app/db.py": "def get_db():\n    yield 1\n",
            "app/deps/__init__.py": "from app.db import get_db as provide\n",
            "app/star.py": "from app.db import *\n",
            "app/user.py": """
                from app.deps import provide
                from app import star
                from . import db as database
                a = provide
                b = star.get_db
                c = database.get_db
            """,
        },
        tmp_path,
    )
    for name in ("a", "b", "c"):
        resolved = index.resolve(index.modules["app.user"].bindings[name])
        assert isinstance(resolved, Function), name
        assert (resolved.fact.module, resolved.fact.qualname) == ("app.db", "get_db")


# ---- routes ---------------------------------------------------------------------------------------
ROUTES = {
    "app/__init__.py": "",
    "app/base.py": """
        from fastapi import APIRouter, FastAPI
        class VersionedRouter(APIRouter):
            pass
        class MyApp(FastAPI):
            pass
    """,
    "app/main.py": """
        import fastapi
        from fastapi import FastAPI, APIRouter
        from slack_bolt import App
        from app.base import VersionedRouter, MyApp

        app = FastAPI()
        router = APIRouter()
        versioned = VersionedRouter(prefix="/v2")
        custom = MyApp()
        slack = App()

        @app.get("/")
        def root(): ...

        @router.api_route("/any", methods=["GET", "POST"])
        def anything(): ...

        @versioned.websocket("/ws")
        async def socket(websocket): ...

        @custom.post("/custom")
        def custom_route(): ...

        @app.router.get("/inner")
        def inner(): ...

        @slack.options("/slack")
        def slack_handler(): ...

        def endpoint(): ...
        app.add_api_route("/added", endpoint, methods=["GET"])

        def applied(): ...
        app.get("/applied")(applied)

        def create_router() -> APIRouter:
            local = fastapi.APIRouter()

            @local.delete("/factory")
            def from_factory(): ...

            return local

        def register(target: APIRouter) -> None:
            @target.patch("/registered")
            def registered(): ...

        built = create_router()

        @built.put("/built")
        def on_built(): ...
    """,
    "app/other.py": """
        from app.main import router

        @router.head("/imported")
        def imported_router_route(): ...
    """,
}


def test_routes_on_apps_routers_subclasses_factories_and_imports(tmp_path: Path) -> None:
    index = make_index(ROUTES, tmp_path)
    routes = {(route.endpoint[1], route.method) for route in index.routes}
    assert routes == {
        ("root", "get"),
        ("anything", "api_route"),
        ("socket", "websocket"),
        ("custom_route", "post"),
        ("inner", "get"),
        ("endpoint", "add_api_route"),
        ("applied", "get"),
        ("create_router.<locals>.from_factory", "delete"),
        ("register.<locals>.registered", "patch"),
        ("on_built", "put"),
        ("imported_router_route", "head"),
    }
    assert index.fastapi_role(("app.main", "slack_handler")) is None
    assert index.fastapi_role(("app.main", "root")) == "route"


# ---- dependency references -------------------------------------------------------------------------
DEPENDENCIES = {
    "app/__init__.py": "",
    "app/deps.py": """
        from typing import Annotated
        from fastapi import Depends, Security

        def get_db():
            yield 1

        async def get_user(db=Depends(get_db)):
            return "user"

        def verify(): ...
        def audit(): ...
        def override_db():
            yield 2

        class Pagination:
            def __init__(self, skip: int = 0): ...

        class Limiter:
            def __call__(self): ...

        limiter = Limiter()
        UserDep = Annotated[str, Security(get_user, scopes=["me"])]
        db_marker = Depends(get_db)
        def helper_returning_depends():
            return Depends(audit)
    """,
    "app/main.py": """
        from typing import Annotated
        from fastapi import APIRouter, Depends, FastAPI
        from app.deps import Limiter, Pagination, get_db, limiter, override_db, verify, UserDep

        app = FastAPI(dependencies=[Depends(verify)])
        router = APIRouter(dependencies=[Depends(limiter)])

        @router.get("/")
        def route(page: Pagination = Depends(), user: UserDep = None, other: Annotated[Limiter, Depends()] = None):
            return page

        app.include_router(router, dependencies=[Depends(verify)])
        app.dependency_overrides[get_db] = override_db

        def not_a_route(db):
            return get_db()
    """,
}


def test_dependency_references_and_what_fastapi_calls(tmp_path: Path) -> None:
    index = make_index(DEPENDENCIES, tmp_path)
    contexts = {(ref.module, ref.fact.context) for ref in index.dependency_refs}
    assert contexts == {
        ("app.deps", "alias"),
        ("app.deps", "default"),
        ("app.deps", "other"),
        ("app.main", "default"),
        ("app.main", "dependencies"),
        ("app.main", "annotated"),
    }
    kinds = {ref.kind for ref in index.dependency_refs}
    assert kinds == {"depends", "security"}
    expected_dependencies = [
        ("app.deps", "get_db"),
        ("app.deps", "get_user"),
        ("app.deps", "verify"),
        ("app.deps", "audit"),
        ("app.deps", "override_db"),
        ("app.deps", "Pagination.__init__"),
        ("app.deps", "Limiter.__call__"),
    ]
    for key in expected_dependencies:
        assert index.fastapi_role(key) == "dependency", key
    assert index.fastapi_role(("app.main", "not_a_route")) is None
    assert index.direct_calls(("app.deps", "get_db")) == [("app/main.py", CallSite(17, 12, 0))]
    assert index.direct_calls(("app.deps", "verify")) == []


def test_function_facts(tmp_path: Path) -> None:
    index = make_index(DEPENDENCIES, tmp_path)
    get_db = index.function(("app.deps", "get_db"))
    get_user = index.function(("app.deps", "get_user"))
    assert get_db is not None and get_db.is_generator and not get_db.is_async
    assert get_user is not None and get_user.is_async and not get_user.is_generator
    assert [param.injected for param in get_user.params] == [True]
    resolved = index.resolve(index.modules["app.main"].bindings["limiter"])
    assert isinstance(resolved, Instance) and isinstance(resolved.of, Class)


REBOUND = {
    "main.py": """
        from fastapi import Depends, FastAPI

        app = FastAPI()


        def get_db():
            return "old"


        def get_db():
            yield "db"


        @app.get("/jobs")
        def create_job(db=Depends(get_db)):
            return db


        @app.post("/jobs")
        def create_job(db=Depends(get_db)):
            return db


        def helper():
            return 1


        @app.get("/helper")
        def helper():
            return 2


        @app.get("/export")
        def export():
            return 3


        def export(limit=1):
            return limit
        """
}


def test_every_route_definition_of_a_rebound_name_is_found_and_names_resolve_to_the_last(
    tmp_path: Path,
) -> None:
    index = make_index(REBOUND, tmp_path)
    facts = index.modules["main"]
    assert [(f.qualname, f.line) for f in facts.shadowed_functions] == [
        ("get_db", 7),
        ("create_job", 16),
        ("helper", 25),
        ("export", 35),
    ]
    resolved = index.resolve_qualified("main.get_db")
    assert isinstance(resolved, Function) and resolved.fact.line == 11
    assert index.fastapi_role(("main", "get_db")) == "dependency"
    assert index.fastapi_role(("main", "create_job")) == "route"
    assert index.fastapi_role(("main", "helper")) == "route"
    assert index.fastapi_role(("main", "export")) is None  # the last `export` is no route
    at = {line: index.function_at("main.py", line) for line in (7, 11, 16, 21, 25, 30, 35, 39)}
    found = {line: (fact.qualname, fact.line) for line, fact in at.items() if fact is not None}
    assert found == {
        11: ("get_db", 11),
        16: ("create_job", 16),  # a route although the name is rebound
        21: ("create_job", 21),
        30: ("helper", 30),
        39: ("export", 39),
    }
    assert [(route.endpoint, route.line) for route in index.routes] == [
        (("main", "create_job"), 20),
        (("main", "helper"), 29),
    ]


def test_markers_are_matched_by_qualified_name_only(tmp_path: Path) -> None:
    index = make_index(
        {
            "m.py": """
                import fastapi.params
                from fastapi import Depends as D
                from mylib import Depends
                def Security(x): return x
                def get(): ...
                def a(x=D(get), y=fastapi.params.Depends(get), z=Depends(get), w=Security(get)): ...
            """
        },
        tmp_path,
    )
    markers = sorted(ref.fact.parameter or "" for ref in index.dependency_refs)
    assert markers == ["x", "y"]
    resolved = index.resolve(index.modules["m"].bindings["Depends"])
    assert resolved == External("mylib.Depends")


def test_index_is_the_same_whatever_the_file_order(tmp_path: Path) -> None:
    forward = make_index(DEPENDENCIES | ROUTES, tmp_path / "a")
    backward = make_index(DEPENDENCIES | ROUTES, tmp_path / "b", reverse=True)
    assert [ref.fact for ref in forward.dependency_refs] == [
        ref.fact for ref in backward.dependency_refs
    ]
    assert forward.routes == backward.routes
    assert forward._fastapi_callees == backward._fastapi_callees


def test_called_and_inherited_class_dependencies(tmp_path: Path) -> None:
    index = make_index(
        {
            "m.py": """
                from fastapi import Depends, FastAPI

                app = FastAPI()

                class Checker:
                    def __init__(self, role: str) -> None:
                        self.role = role

                    def __call__(self, token: str = "") -> bool:
                        return True

                class Base:
                    def __init__(self, limit: int = 10) -> None:
                        self.limit = limit

                class Repo(Base):
                    pass

                @app.get("/")
                def root(ok: bool = Depends(Checker("admin")), repo: Repo = Depends(Repo)):
                    return ok
            """
        },
        tmp_path,
    )
    assert index.fastapi_role(("m", "Checker.__call__")) == "dependency"
    assert index.fastapi_role(("m", "Checker.__init__")) is None
    assert index.fastapi_role(("m", "Base.__init__")) == "dependency"


class _Fingerprints:
    """The one thing `_closure_digests` asks of the engine's loader."""

    @staticmethod
    def fingerprint(facts: FileFacts) -> str:
        return fingerprint(facts)


CHAIN = {
    "app/__init__.py": "",
    "app/routes.py": "from app import services\n",
    "app/services.py": "from app import deps\n",
    "app/deps.py": "from app import services\n\ndef get_db():\n    yield 1\n",  # a cycle
    "app/other.py": "import json\n",
}


@pytest.mark.parametrize(
    ("edited", "changed"),
    [
        # an edit two imports away, inside a cycle, reaches the importer of the cycle
        ("app/deps.py", {"app.routes", "app.services", "app.deps"}),
        ("app/services.py", {"app.routes", "app.services", "app.deps"}),
        ("app/routes.py", {"app.routes"}),
        ("app/other.py", {"app.other"}),
    ],
)
def test_a_closure_digest_changes_with_every_module_it_reaches(
    tmp_path: Path, edited: str, changed: set[str]
) -> None:
    before = _closure_digests(make_index(CHAIN, tmp_path / "a"), _Fingerprints())  # type: ignore[arg-type]
    files = dict(CHAIN, **{edited: "\n" + CHAIN[edited]})  # every position in it moves
    after = _closure_digests(make_index(files, tmp_path / "b"), _Fingerprints())  # type: ignore[arg-type]
    assert (
        set(before)
        == set(after)
        == {
            m.removesuffix(".__init__")
            for m in (p.removesuffix(".py").replace("/", ".") for p in CHAIN)
        }
    )
    assert {module for module in before if before[module] != after[module]} == changed


def _facts_of(path: str, module: str, text: str, is_package: bool = False) -> FileFacts:
    return extract_facts(path, module, is_package, ast.parse(text), text)


def test_import_edges_are_reused_only_while_their_lookups_find_the_same_modules(
    tmp_path: Path,
) -> None:
    index = make_index(
        {
            "app/__init__.py": "",
            "app/a.py": "from app.b import x\n",
            "app/b/__init__.py": "x = 1\n",
        },
        tmp_path,
    )
    importer = index.file("app/a.py")
    assert importer is not None
    runs, fetches = _file_edges(index, importer, EAGER)
    assert runs == {"app.b"} and fetches == {("app.a", "app.b")}

    unrelated = ProjectIndex([*index.files.values(), _facts_of("app/d.py", "app.d", "")])
    again = _file_edges(unrelated, importer, EAGER)
    assert again[0] is runs and again[1] is fetches  # the same file, the same lookups: reused

    # `app.b.x` becomes a module: the import now runs it and reads no name off `app.b`
    submodule = ProjectIndex([*index.files.values(), _facts_of("app/b/x.py", "app.b.x", "y = 2\n")])
    assert _file_edges(submodule, importer, EAGER) == ({"app.b", "app.b.x"}, set())


def test_import_edges_of_each_kind_come_from_one_reading_of_the_file(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": "",
        "app/a.py": "from app.b import x\n\ndef f():\n    from app.c import y\n    return y\n",
        "app/b.py": "x = 1\n",
        "app/c.py": "y = 2\n",
    }
    every = frozenset({"eager", "local", "type_checking"})
    index = make_index(files, tmp_path)
    importer = index.file("app/a.py")
    assert importer is not None
    assert _file_edges(index, importer, EAGER) == ({"app.b"}, {("app.a", "app.b")})
    both = ({"app.b", "app.c"}, {("app.a", "app.b"), ("app.a", "app.c")})
    assert _file_edges(index, importer, every) == both
    assert _file_edges(index, importer, every) is _file_edges(index, importer, every)
    fresh = make_index(files, tmp_path / "again")  # the wider kinds asked first: the same answer
    importer = fresh.file("app/a.py")
    assert importer is not None
    assert _file_edges(fresh, importer, every) == both
    assert _file_edges(fresh, importer, EAGER) == ({"app.b"}, {("app.a", "app.b")})


_NAME = st.text("ab.", min_size=1, max_size=5)


@given(_NAME, st.lists(_NAME, max_size=3))
def test_imported_names_are_every_prefix_of_the_target_and_of_each_name_under_it(
    target: str, names: list[str]
) -> None:
    every = set()
    for name in (target, *(f"{target}.{n}" for n in names)):  # each name's prefixes, one by one
        parts = name.split(".")
        every.update(".".join(parts[:cut]) for cut in range(1, len(parts) + 1))
    found = imported_names(target, names)
    assert set(found) == every
    assert imported_names("a.b", ["x", "y"]) == ["a", "a.b", "a.b.x", "a.b.y"]  # prefixes once
