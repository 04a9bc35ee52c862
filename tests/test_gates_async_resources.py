"""The gates of DF004, DF009 and DF010: open for odd shapes the rules report, closed for look-alikes.

Each project is checked under `depfix.gate_audit.audit`, which also runs every needle-matching rule its
gate turned away: a gate must never refuse a file its rule reports in, and should refuse the rest.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from depfix.cli import main
from depfix.gate_audit import GateAudit, audit


def _check(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: str,
    files: dict[str, str],
) -> tuple[GateAudit, list[str]]:
    """The gate audit of `depfix check` on a new project, and the check's report lines."""
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    with audit(count=True) as found:
        main(["check", ".", "--quiet", "--no-cache", "-j", "1", "--select", code])
    return found, capsys.readouterr().out.splitlines()


ODD_RUNNERS = {
    "app/__init__.py": "",
    "app/shadowed.py": """
        import asyncio


        async def load() -> dict:
            return {}


        def shadowed(asyncio=None) -> dict:  # the rule reads `asyncio` as the module's name
            return asyncio.run(load())
    """,
    "app/rebound.py": """
        from trio import run

        from app.shadowed import load


        def rebound() -> dict:  # `run` is `asyncio.run` once the module has run
            return run(load())


        from asyncio import run  # noqa: E402
    """,
    "app/main.py": """
        import asyncio

        from fastapi import Depends, FastAPI

        from app.rebound import rebound
        from app.shadowed import load, shadowed

        app = FastAPI()


        @app.get("/")
        def index(a: dict = Depends(shadowed), b: dict = Depends(rebound)):
            return Depends(asyncio.run(load()))  # a call a marker's argument makes
    """,
}


def test_the_df009_gate_admits_runners_read_at_module_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found, report = _check(tmp_path, monkeypatch, capsys, "DF009", ODD_RUNNERS)
    assert found.misses == []
    assert [line.split(":")[0] for line in report] == [
        "app/main.py",
        "app/rebound.py",
        "app/shadowed.py",
    ]


def test_the_df009_gate_refuses_runners_outside_what_fastapi_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
        import asyncio

        from fastapi import FastAPI

        app = FastAPI()


        async def load() -> dict:
            return {}


        @app.get("/")
        def index():
            def later() -> dict:
                return asyncio.run(load())

            asyncio.run(load(), debug=True)  # not one argument alone
            return {"later": later.__name__}


        def script() -> None:
            asyncio.get_event_loop().run_until_complete(load())


        if __name__ == "__main__":
            asyncio.run(load())
    """
    found, report = _check(tmp_path, monkeypatch, capsys, "DF009", {"app/main.py": source})
    assert found.misses == []
    assert found.ran["DF009"] == 0
    assert report == []


ODD_RESOURCES = {
    "app/__init__.py": "",
    "app/db.py": """
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker()
        flag = False
    """,
    "app/rebound.py": """
        from app.db import SessionLocal, flag


        def rebound():  # the rule reads the last top-level assignment
            db = SessionLocal()
            if flag:
                db = None
            return db
    """,
    "app/shadowed.py": """
        from app.db import SessionLocal


        def shadowed(SessionLocal=None):  # the rule reads the module's `SessionLocal`
            return SessionLocal()
    """,
    "app/main.py": """
        from fastapi import Depends, FastAPI

        from app.db import SessionLocal
        from app.rebound import rebound
        from app.shadowed import shadowed

        app = FastAPI()


        def trailing():
            db = SessionLocal()
            return db; print("never")  # noqa: E702


        @app.get("/")
        def index(a=Depends(rebound), b=Depends(shadowed), c=Depends(trailing)):
            return {}
    """,
}


def test_the_df004_gate_admits_what_the_rule_reads_of_a_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found, report = _check(tmp_path, monkeypatch, capsys, "DF004", ODD_RESOURCES)
    assert found.misses == []
    assert [line.split(":")[0] for line in report] == [
        "app/main.py",
        "app/rebound.py",
        "app/shadowed.py",
    ]


def test_the_df004_gate_refuses_dependencies_returning_no_new_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
        from fastapi import Depends, FastAPI, Request
        from sqlalchemy.orm import sessionmaker

        SessionLocal = sessionmaker()
        app = FastAPI()


        def from_state(request: Request):
            return request.state.db


        def two_returns(flag: bool = False):
            if flag:
                return None
            return SessionLocal()


        def nested():
            db = SessionLocal()
            if db:
                return db


        def not_a_dependency():
            return SessionLocal()


        @app.get("/")
        def index(a=Depends(from_state), b=Depends(two_returns), c=Depends(nested)):
            return {}
    """
    found, report = _check(tmp_path, monkeypatch, capsys, "DF004", {"app/main.py": source})
    assert found.misses == []
    assert found.ran["DF004"] == 0
    assert report == []


def test_the_df010_gate_admits_sessions_named_by_strings_and_security(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "app/__init__.py": "",
        "app/db.py": """
            from sqlmodel import Session

            def get_session() -> Session:
                return Session()
        """,
        "app/a.py": """
            from fastapi import APIRouter, Security
            from sqlalchemy.orm import Session

            from app.db import get_session

            router = APIRouter()


            @router.get("/a")
            async def a(db: "Session" = Security(get_session)):
                return {}
        """,
        "app/b.py": """
            from fastapi import APIRouter, Security

            from app.db import get_session

            router = APIRouter()


            @router.get("/b")
            async def b(db=Security(get_session)):
                return {}
        """,
    }
    found, report = _check(tmp_path, monkeypatch, capsys, "DF010", files)
    assert found.misses == []
    assert [line.split(":")[0] for line in report] == ["app/a.py", "app/b.py"]


def test_the_df010_gate_refuses_async_functions_without_a_sync_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """
        from collections.abc import AsyncIterator

        from fastapi import Depends, FastAPI
        from sqlalchemy.ext.asyncio import AsyncSession
        from sqlalchemy.orm import Session

        app = FastAPI()


        async def get_session() -> AsyncIterator[AsyncSession]:
            yield AsyncSession()


        @app.get("/a")
        async def a(db: AsyncSession = Depends(get_session)):
            return {}


        @app.get("/b")
        def b(db: Session = Depends()):  # a sync route: the threadpool runs it
            return {}


        async def helper(db: Session = Depends(get_session)):  # nothing FastAPI calls
            return {}
    """
    found, report = _check(tmp_path, monkeypatch, capsys, "DF010", {"app/main.py": source})
    assert found.misses == []
    assert found.ran["DF010"] == 0
    assert report == []
