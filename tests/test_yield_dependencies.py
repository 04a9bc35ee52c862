"""DF002-DF004 on running apps: what a failing request does to the session, before and after depfix.

Each app is written to a temporary project, imported and driven with TestClient; then depfix rewrites
a copy, which is imported and driven the same way. FastAPI's own tutorial008c (a swallowed exception)
rewritten by DF003 must pass the tests of tutorial008d (the re-raising version).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from depfix.cli import main

pytest.importorskip("sqlalchemy")
from fastapi.testclient import TestClient

APP = textwrap.dedent(
    """
    import httpx
    from fastapi import Depends, FastAPI, HTTPException
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker
    from sqlalchemy.pool import StaticPool

    EVENTS = []


    class TrackingSession(Session):
        def commit(self):
            EVENTS.append("commit")
            super().commit()

        def rollback(self):
            EVENTS.append("rollback")
            super().rollback()

        def close(self):
            EVENTS.append("close")
            super().close()


    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SessionLocal = sessionmaker(bind=engine, class_=TrackingSession)
    app = FastAPI()


    class Conflict(Exception):
        pass


    def get_db():
        db = SessionLocal()
        yield db
        db.commit()
        db.close()


    def get_plain_session():
        return SessionLocal()


    def get_audited():
        try:
            yield "audit"
        except Conflict:
            EVENTS.append("swallowed")


    @app.get("/ok")
    def ok(db: Session = Depends(get_db)):
        return {"ok": True}


    @app.get("/fail")
    def fail(db: Session = Depends(get_db)):
        raise HTTPException(status_code=409, detail="conflict")


    @app.get("/plain")
    def plain(db: Session = Depends(get_plain_session)):
        return {"plain": True}


    @app.get("/audited")
    def audited(audit: str = Depends(get_audited)):
        raise Conflict("stop")
    """
)

_counter = itertools.count()


def _load(path: Path) -> ModuleType:
    name = f"depfix_behaviour_app_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _events(module: ModuleType, path: str, **client: bool) -> tuple[int, list[str]]:
    module.EVENTS.clear()
    with TestClient(module.app, **client) as test_client:
        status = test_client.get(path).status_code
    return status, list(module.EVENTS)


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "service.py").write_text(APP)
    before = _load(project / "service.py")
    after_dir = tmp_path / "after"
    shutil.copytree(project, after_dir)
    monkeypatch.chdir(after_dir)
    assert main(["apply", ".", "--select", "DF002,DF003,DF004", "--unsafe", "--quiet"]) == 1
    after = _load(after_dir / "service.py")
    return before, after


def test_a_failing_request_rolls_back_and_closes_only_after_the_rewrite(
    apps: tuple[ModuleType, ModuleType],
) -> None:
    before, after = apps
    assert _events(before, "/fail") == (409, [])
    assert _events(after, "/fail") == (409, ["rollback", "close"])


def test_the_success_path_commits_exactly_as_before(apps: tuple[ModuleType, ModuleType]) -> None:
    before, after = apps
    assert _events(before, "/ok") == _events(after, "/ok") == (200, ["commit", "close"])


def test_a_returned_session_is_closed_after_the_rewrite(
    apps: tuple[ModuleType, ModuleType],
) -> None:
    before, after = apps
    assert _events(before, "/plain") == (200, [])
    assert _events(after, "/plain") == (200, ["close"])


def test_a_swallowed_exception_surfaces_after_the_rewrite(
    apps: tuple[ModuleType, ModuleType],
) -> None:
    before, after = apps
    with pytest.raises(Exception) as swallowed:  # FastAPI refuses a dependency that swallows
        _events(before, "/audited")
    assert not isinstance(swallowed.value, before.Conflict)
    with pytest.raises(after.Conflict):
        _events(after, "/audited")
    assert _events(after, "/audited", raise_server_exceptions=False) == (500, ["swallowed"])


HANDLED = textwrap.dedent(
    """
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    EVENTS = []


    class InternalError(Exception):
        pass


    class OtherError(Exception):
        pass


    @app.exception_handler(InternalError)
    async def on_internal_error(request: Request, exc: InternalError) -> JSONResponse:
        return JSONResponse({"detail": "handled"}, status_code=418)


    def get_username():
        try:
            yield "Rick"
        except (InternalError, OtherError):
            EVENTS.append("swallowed")


    @app.get("/handled")
    def handled(username: str = Depends(get_username)):
        raise InternalError("too dangerous")


    @app.get("/unhandled")
    def unhandled(username: str = Depends(get_username)):
        raise OtherError("too dangerous")
    """
)


def test_the_reraise_fix_is_unsafe_because_exception_handlers_then_see_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "service.py").write_text(HANDLED)
    before = _load(project / "service.py")
    monkeypatch.chdir(project)
    assert main(["apply", ".", "--select", "DF003", "--quiet"]) == 1  # reported, not applied
    assert (project / "service.py").read_text() == HANDLED
    assert main(["apply", ".", "--select", "DF003", "--unsafe", "--quiet"]) == 1
    assert (project / "service.py").read_text() != HANDLED
    after = _load(project / "service.py")

    # what the fix announces: the route's exception reaches its handler, which changes the response
    assert _events(before, "/handled", raise_server_exceptions=False) == (500, ["swallowed"])
    assert _events(after, "/handled", raise_server_exceptions=False) == (418, ["swallowed"])
    # without a handler the client still gets a 500, but the server error is the route's own
    assert _events(before, "/unhandled", raise_server_exceptions=False) == (500, ["swallowed"])
    assert _events(after, "/unhandled", raise_server_exceptions=False) == (500, ["swallowed"])
    with pytest.raises(Exception) as swallowed:
        _events(before, "/unhandled")
    assert type(swallowed.value).__name__ == "FastAPIError"
    with pytest.raises(after.OtherError):
        _events(after, "/unhandled")


def test_fastapi_tutorial008c_rewritten_passes_the_tests_of_008d(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from conformance import (
        FASTAPI_MIN_PYTHON,
        SdistUnavailable,
        ensure_sdist,
        run_fastapi_tests,
    )

    if sys.version_info < FASTAPI_MIN_PYTHON:
        pytest.skip("the pinned FastAPI release needs a newer Python")
    cache = getattr(request.config, "cache", None)
    cache_dir = Path(cache.mkdir("fastapi-sdist")) if cache else tmp_path_factory.mktemp("sdist")
    try:
        sdist = ensure_sdist(cache_dir)
    except SdistUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and FastAPI's sdist could not be downloaded: {error}")
        pytest.skip(f"FastAPI's sdist could not be downloaded: {error}")
    base = tmp_path_factory.mktemp("tutorial008")
    work = base / "work"
    shutil.copytree(sdist, work)
    app = base / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text("")
    original = (work / "docs_src" / "dependencies" / "tutorial008c.py").read_text(encoding="utf-8")
    (app / "tutorial008c.py").write_text(original, encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(app)
    try:
        assert main(["apply", ".", "--select", "DF003", "--unsafe", "--quiet"]) == 1
    finally:
        os.chdir(cwd)
    rewritten = (app / "tutorial008c.py").read_text(encoding="utf-8")
    assert rewritten.count("raise\n") == original.count("raise\n") + 1
    (work / "docs_src" / "dependencies" / "tutorial008d.py").write_text(rewritten, encoding="utf-8")
    outcomes, status, tail = run_fastapi_tests(
        work, ["tests/test_tutorial/test_dependencies/test_tutorial008d.py"], base / "scratch"
    )
    assert status == 0, tail
    passed = [o for o in outcomes if o.outcome == "passed" and "[tutorial008d]" in o.nodeid]
    assert len(passed) == 4, tail
