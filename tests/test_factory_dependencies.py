"""Dependencies returned by factories: `Depends(require_role("admin"))` makes FastAPI call the
function `require_role` returns, so the index counts that inner function as a dependency."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from depfix.cli import main
from depfix.index import ProjectIndex
from tests.conftest import run_depfix, write_tree
from tests.test_index import make_index

FACTORY = """
    from fastapi import Depends, FastAPI


    def get_user() -> str:
        return "alice"


    def require_role(role: str):
        def check_role(user: str = Depends(get_user)) -> str:
            return user

        return check_role
"""


def role(index: ProjectIndex, module: str, qualname: str) -> str | None:
    return index.fastapi_role((module, qualname))


def test_the_returned_function_is_a_dependency(tmp_path: Path) -> None:
    index = make_index(
        {
            "app.py": FACTORY
            + """
    app = FastAPI()


    @app.get("/")
    def root(user: str = Depends(require_role("admin"))):
        return user
    """
        },
        tmp_path,
    )
    assert role(index, "app", "require_role.<locals>.check_role") == "dependency"
    assert role(index, "app", "require_role") is None  # the factory runs at import, not per request


def test_across_files(tmp_path: Path) -> None:
    index = make_index(
        {
            "pkg/__init__.py": "",
            "pkg/auth.py": FACTORY,
            "pkg/routes.py": """
                from fastapi import APIRouter, Security

                from pkg import auth

                router = APIRouter()


                @router.get("/", dependencies=[Security(auth.require_role("admin"))])
                def root():
                    return {}
            """,
        },
        tmp_path,
    )
    assert role(index, "pkg.auth", "require_role.<locals>.check_role") == "dependency"


@pytest.mark.parametrize(
    "elsewhere",
    [
        "checker = require_role('admin')",  # the result is kept: any code may call it
        "print(require_role)",  # not a call of the factory: the result stays in Depends
    ],
)
def test_a_factory_called_elsewhere_hands_its_result_to_unknown_callers(
    tmp_path: Path, elsewhere: str
) -> None:
    source = (
        FACTORY
        + """
    app = FastAPI()


    @app.get("/")
    def root(user: str = Depends(require_role("admin"))):
        return user


    """
        + elsewhere
        + "\n"
    )
    index = make_index({"app.py": source}, tmp_path)
    expected = None if "checker" in elsewhere else "dependency"
    assert role(index, "app", "require_role.<locals>.check_role") == expected


@pytest.mark.parametrize(
    ("body", "returned"),
    [
        ("def inner(): ...\nreturn inner", ("f.<locals>.inner",)),
        (
            "def a(): ...\ndef b(): ...\nif x:\n    return a\nreturn b",
            ("f.<locals>.a", "f.<locals>.b"),
        ),
        ("def inner(): ...\nreturn lambda: inner", ()),
        ("def inner(): ...\nreturn functools.partial(inner)", ()),
        ("def inner(): ...\nif x:\n    return inner\nreturn None", ()),
        ("def inner(): ...\ninner = wrap(inner)\nreturn inner", ()),
        ("@wraps(x)\ndef inner(): ...\nreturn inner", ()),
        ("def inner(): ...\nyield inner", ()),
        ("return get_user", ()),
        ("inner = make()\nreturn inner", ()),
    ],
)
def test_returned_functions(tmp_path: Path, body: str, returned: tuple[str, ...]) -> None:
    source = "import functools\n\ndef f(x):\n" + textwrap.indent(body, "    ") + "\n"
    index = make_index({"m.py": source}, tmp_path)
    facts = index.file("m.py")
    assert facts is not None
    assert facts.functions["f"].returned_functions == returned


# ---- a rewrite on a running app -------------------------------------------------------------
APP = textwrap.dedent(
    """
    from fastapi import Depends, FastAPI, Header, HTTPException, Query, Security
    from fastapi.security import SecurityScopes


    class User:
        def __init__(self, name: str, role: str) -> None:
            self.name = name
            self.role = role


    def get_user(x_user: str = Header("guest"), x_role: str = Header("user")) -> User:
        return User(x_user, x_role)


    def scoped_user(scopes: SecurityScopes, user: User = Depends(get_user)) -> User:
        if user.role != "admin" and scopes.scopes:
            raise HTTPException(status_code=401, detail=" ".join(scopes.scopes))
        return user


    def require_role(role: str):
        def wanted() -> str:
            return role

        def check_role(
            user: User = Depends(get_user),
            reason: str = Query(role, max_length=12),
            needed: str = Depends(wanted),
        ) -> User:
            if user.role != needed:
                raise HTTPException(status_code=403, detail=reason)
            return user

        return check_role


    def require_scope(scope: str):
        def check_scope(user: User = Security(scoped_user, scopes=[scope])) -> User:
            return user

        return check_scope


    app = FastAPI()


    @app.get("/admin")
    def admin(user: User = Depends(require_role("admin"))):
        return {"name": user.name}


    @app.get("/read", dependencies=[Security(require_scope("items:read"))])
    def read():
        return {"ok": True}
    """
)

REQUESTS = [
    ("/admin", {}, {}),
    ("/admin", {}, {"x-role": "admin", "x-user": "bob"}),
    ("/admin", {"reason": "because"}, {}),
    ("/admin", {"reason": "far too long a reason"}, {"x-role": "admin"}),
    ("/read", {}, {}),
    ("/read", {}, {"x-role": "admin"}),
]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _behaviour(module: ModuleType) -> tuple[str, list[tuple[int, str]]]:
    with TestClient(module.app) as client:
        answers = [
            (response.status_code, response.text)
            for response in (
                client.get(path, params=params, headers=headers)
                for path, params, headers in REQUESTS
            )
        ]
    return json.dumps(module.app.openapi(), sort_keys=True), answers


@pytest.mark.parametrize("postponed", [False, True], ids=["annotations", "future_annotations"])
def test_rewriting_returned_functions_keeps_what_the_app_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postponed: bool
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    app_file = tmp_path / "service.py"
    app_file.write_text(("from __future__ import annotations\n" if postponed else "") + APP)
    before = _behaviour(_load(app_file, f"depfix_factory_before_{postponed}"))
    monkeypatch.chdir(tmp_path)
    assert main(["apply", ".", "--select", "DF006", "--quiet", "--no-cache"]) == 1
    text = app_file.read_text()
    assert "user: Annotated[User, Depends(get_user)]," in text
    assert "reason: Annotated[str, Query(max_length=12)] = role," in text
    if postponed:  # FastAPI would look `wanted` and `scope` up in the module's globals: left
        assert "needed: str = Depends(wanted)," in text
        assert "def check_scope(user: User = Security(scoped_user, scopes=[scope]))" in text
    else:  # evaluated when `def check_role` runs, where `wanted` and `scope` are in reach
        assert "needed: Annotated[str, Depends(wanted)]," in text
        assert (
            "def check_scope(user: Annotated[User, Security(scoped_user, scopes=[scope])])" in text
        )
    after = _behaviour(_load(app_file, f"depfix_factory_after_{postponed}"))
    assert after == before
    assert [status for status, _ in before[1]] == [403, 200, 403, 422, 401, 200]


def test_a_direct_call_of_the_factory_added_later_is_seen_through_the_cache(
    tmp_path: Path,
) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            "pyproject.toml": '[project]\nname = "demo"\nrequires-python = ">=3.9"\n',
            "app/__init__.py": "",
            "app/auth.py": textwrap.dedent(FACTORY),
            "app/main.py": textwrap.dedent(
                """
                from fastapi import FastAPI, Security

                from app.auth import require_role

                app = FastAPI()


                @app.get("/", dependencies=[Security(require_role("admin"))])
                def read():
                    return 1
                """
            ),
            "scripts/job.py": "print(1)\n",
        },
    )
    past = time.time() - 3600
    for path in root.rglob("*"):
        os.utime(path, (past, past))

    def lines(*args: str) -> list[str]:
        result = run_depfix(root, "check", "--select", "DF006", "--quiet", *args, ".")
        assert "Traceback" not in result.err, result
        return result.out.splitlines()

    before = lines()
    assert [line.split(":")[:2] for line in before] == [["app/auth.py", "10"]]
    (root / "scripts/job.py").write_text("from app.auth import require_role\n\nrequire_role('x')\n")
    after = lines()
    assert after == lines("--no-cache") == []
