"""DF006 and DF017 on a running app: the safe fix keeps every answer and the OpenAPI schema; the unsafe
fix changes exactly what its reason announces (FastAPI starts applying the aliases' metadata)."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from depfix.cli import main

pytest.importorskip("httpx2")
from fastapi.testclient import TestClient

ALIASES = textwrap.dedent(
    """
    from typing import Annotated, Optional

    from pydantic import StringConstraints
    from typing_extensions import Doc

    QueryStr = Annotated[str, StringConstraints(pattern=r"^[a-z]+$", min_length=1)]
    MaybeQueryStr = Optional[QueryStr]
    DocStr = Annotated[str, Doc("free text")]
    """
)

SERVICE = textwrap.dedent(
    """
    from typing import Annotated

    from annotated_types import MinLen
    from fastapi import Body, Cookie, Depends, FastAPI, File, Form, Header, Path, Query, Security
    from pydantic import PositiveInt

    from depfix_df017_aliases import DocStr, MaybeQueryStr, QueryStr

    app = FastAPI()


    def get_db():
        yield "db"


    def get_user():
        return "alice"


    def paginate(skip: int = Query(0), limit: int = Query(10), db: str = Depends(get_db)):
        return {"skip": skip, "limit": limit, "db": db}


    def first_page():
        return paginate(0, 5, "session")


    @app.get("/search")
    def search(q: QueryStr = Query(None, alias="q")):
        return {"q": q}


    @app.get("/limit")
    def limited(limit: PositiveInt = Query(10)):
        return {"limit": limit}


    @app.get("/plain")
    def plain(
        maybe: MaybeQueryStr = Query(None),
        doc: DocStr = Query(None),
        user: QueryStr = Depends(get_user),
    ):
        return {"maybe": maybe, "doc": doc, "user": user}


    @app.get("/page")
    def page(page: dict = Depends(paginate)):
        return page


    @app.get("/path/{item}")
    def by_path(item: QueryStr = Path(...)):
        return {"item": item}


    @app.get("/header")
    def by_header(x_token: QueryStr = Header(None)):
        return {"x_token": x_token}


    @app.get("/cookie")
    def by_cookie(session: QueryStr = Cookie(None)):
        return {"session": session}


    @app.post("/body")
    def by_body(name: QueryStr = Body(None, embed=True)):
        return {"name": name}


    @app.post("/form")
    def by_form(name: QueryStr = Form(None)):
        return {"name": name}


    @app.post("/file")
    def by_file(upload: Annotated[bytes, MinLen(5)] = File(None)):
        return {"size": len(upload or b"")}


    @app.get("/security")
    def by_security(user: QueryStr = Security(get_user, scopes=["me"])):
        return {"user": user}
    """
)

GETS = [
    "/search?q=abc",
    "/search?q=",
    "/search?q=%C3%A9t%C3%A9",
    "/search",
    "/limit?limit=3",
    "/limit?limit=-1",
    "/limit",
    "/plain?maybe=abc&doc=X",
    "/plain?maybe=A1",
    "/page?skip=2&limit=3",
    "/page",
    "/path/abc",
    "/path/A1",
    "/security",
]
REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    **{url: ("GET", url, {}) for url in GETS},
    "header ok": ("GET", "/header", {"headers": {"x-token": "abc"}}),
    "header bad": ("GET", "/header", {"headers": {"x-token": "A1"}}),
    "cookie bad": ("GET", "/cookie", {"cookies": {"session": "A1"}}),
    "body bad": ("POST", "/body", {"json": {"name": "A1"}}),
    "form ok": ("POST", "/form", {"data": {"name": "abc"}}),
    "form bad": ("POST", "/form", {"data": {"name": "A1"}}),
    "file short": ("POST", "/file", {"files": {"upload": ("a.txt", b"ab")}}),
    "file long": ("POST", "/file", {"files": {"upload": ("a.txt", b"abcdef")}}),
}
CHANGED_BY_UNSAFE = {
    "/search?q=",
    "/search?q=%C3%A9t%C3%A9",
    "/limit?limit=-1",
    "/path/A1",
    "header bad",
    "cookie bad",
    "body bad",
    "form bad",
    "file short",
}
""""Requests answered 200 before the unsafe fix and 422 after: the announced metadata now applies."""


def _load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def _behaviour(module: Any) -> tuple[dict[str, tuple[int, str]], dict[str, Any], object]:
    answers = {}
    with TestClient(module.app) as client:
        for key, (method, url, given) in REQUESTS.items():
            options = dict(given)
            client.cookies.clear()
            for name, value in options.pop("cookies", {}).items():
                client.cookies.set(name, value)
            response = client.request(method, url, **options)
            answers[key] = (response.status_code, response.text)
    schema = json.loads(json.dumps(module.app.openapi(), sort_keys=True))
    return answers, schema, module.first_page()


def _parameters(schema: dict[str, Any], path: str) -> list[Any]:
    parameters: list[Any] = schema["paths"][path]["get"]["parameters"]
    return parameters


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # FastAPI 0.126+ requires pydantic 2, where `PositiveInt` is `Annotated[int, Gt(gt=0)]`
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "shop"\ndependencies = ["fastapi>=0.126"]\n'
    )
    (tmp_path / "depfix_df017_aliases.py").write_text(ALIASES)
    (tmp_path / "service.py").write_text(SERVICE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_reports_name_the_ignored_metadata(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["check", ".", "--select", "DF006,DF017", "--quiet", "--no-cache"])
    report = capsys.readouterr().out
    search = [line for line in report.splitlines() if "parameter `q`" in line]
    assert len(search) == 2
    assert all(
        'StringConstraints(pattern=r"^[a-z]+$", min_length=1)` of `QueryStr`' in line
        for line in search
    )
    assert "unsafe fix" in search[0] and "DF017" in search[1]
    assert any(
        "`Gt(gt=0)` of `PositiveInt`" in line and "DF017" in line for line in report.splitlines()
    )
    assert not any(
        "DF017" in line and ("`maybe`" in line or "`doc`" in line or "`user`" in line)
        for line in report.splitlines()
    )
    for name in ("item", "x_token", "session", "upload"):  # every value marker, `name` twice
        lines = [line for line in report.splitlines() if f"parameter `{name}`" in line]
        assert len(lines) == 2 and "unsafe fix" in lines[0] and "DF017" in lines[1], lines
    assert (
        sum(
            "DF006 parameter `name`" in line and "unsafe fix" in line
            for line in report.splitlines()
        )
        == 2
    )
    assert not any("parameter `user`" in line and "unsafe" in line for line in report.splitlines())


def test_the_safe_fix_keeps_behaviour_and_the_unsafe_one_changes_what_it_announces(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = project / "service.py"
    before = _behaviour(_load(service, "depfix_df017_before", monkeypatch))
    assert before[0]["/search?q="][0] == 200 and before[0]["/limit?limit=-1"][0] == 200

    assert main(["apply", ".", "--select", "DF006", "--quiet", "--no-cache"]) == 1
    text = service.read_text()
    assert 'def search(q: QueryStr = Query(None, alias="q"))' in text  # unsafe: left
    assert "skip: Annotated[int, Query()] = 0" in text and "db: str = Depends(get_db)" in text
    assert "maybe: Annotated[MaybeQueryStr, Query()] = None" in text
    assert _behaviour(_load(service, "depfix_df017_safe", monkeypatch)) == before

    assert main(["apply", ".", "--select", "DF006", "--unsafe", "--quiet", "--no-cache"]) == 1
    assert 'q: Annotated[QueryStr, Query(alias="q")] = None' in service.read_text()
    answers, schema, first = _behaviour(_load(service, "depfix_df017_unsafe", monkeypatch))
    assert first == before[2]
    changed = {key for key in REQUESTS if answers[key] != before[0][key]}
    assert changed == CHANGED_BY_UNSAFE
    assert all(before[0][key][0] == 200 and answers[key][0] == 422 for key in changed)
    # the schema gains exactly the announced constraints, on the announced parameters only
    q = _parameters(schema, "/search")[0]["schema"]
    assert (q.get("pattern"), q.get("minLength")) == ("^[a-z]+$", 1)
    assert _parameters(schema, "/limit")[0]["schema"].get("exclusiveMinimum") == 0
    assert _parameters(schema, "/header")[0]["schema"].get("pattern") == "^[a-z]+$"
    announced = {
        "/search",
        "/limit",
        "/path/{item}",
        "/header",
        "/cookie",
        "/body",
        "/form",
        "/file",
    }
    for version in (schema, before[1]):
        for path in announced:
            del version["paths"][path]
        bodies = [name for name in version["components"]["schemas"] if name.startswith("Body_")]
        for name in bodies:  # the request bodies of /body, /form and /file
            del version["components"]["schemas"][name]
    assert schema == before[1]


def test_facts_record_type_aliases_and_call_keywords() -> None:
    from depfix.facts import extract_facts, parse_source
    from depfix.values import Name

    source = textwrap.dedent(
        """
        from typing import Annotated, Optional
        import annotated_types as at
        from typing_extensions import TypeAliasType

        Short = Annotated[str, at.MaxLen(3)]
        Flat = Annotated[Annotated[str, at.MinLen(1)], "note", at.MaxLen(3)]
        OfAlias = Annotated[Short, at.MinLen(1)]
        Maybe = Optional[Short]
        Either = str | None
        Statement = TypeAliasType("Statement", Annotated[int, at.Gt(0)])
        Rebound = Annotated[str, at.MaxLen(3)]
        Rebound = 3


        def f():
            Local = Annotated[str, at.MaxLen(3)]
            return g(1, key=Local, **{})
        """
    )
    text, tree = parse_source("m.py", source.encode())
    facts = extract_facts("m.py", "m", False, tree, text)
    aliases = facts.type_aliases
    assert set(aliases) == {"Short", "Flat", "OfAlias", "Maybe", "Either", "Statement"}
    assert [(m.text, m.value) for m in aliases["Flat"].metadata] == [
        ("at.MinLen(1)", Name("annotated_types.MinLen")),
        ('"note"', None),
        ("at.MaxLen(3)", Name("annotated_types.MaxLen")),
    ]
    assert (aliases["Flat"].kind, aliases["Flat"].base) == ("annotated", Name("builtins.str"))
    assert aliases["OfAlias"].base == Name("m.Short")
    assert (aliases["Maybe"].kind, aliases["Maybe"].base) == ("subscript", Name("typing.Optional"))
    assert aliases["Either"].kind == "union"
    assert aliases["Statement"].statement and aliases["Statement"].kind == "annotated"
    [site] = facts.calls["m.g"]
    assert (site.positional, site.star, site.keywords) == (1, True, ("key",))
