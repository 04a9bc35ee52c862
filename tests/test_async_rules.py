"""DF009 and DF010 on running apps: the failure each claims, before the rewrite, and after it."""

from __future__ import annotations

import gc
import importlib.util
import itertools
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from depfix.cli import main

pytest.importorskip("sqlalchemy")

DF009_APP = textwrap.dedent(
    """
    import asyncio

    from fastapi import Depends, FastAPI

    app = FastAPI()


    async def load_flags() -> dict:
        await asyncio.sleep(0)
        return {"beta": True}


    async def get_flags() -> dict:
        return asyncio.run(load_flags())


    @app.get("/flags")
    async def flags(values: dict = Depends(get_flags)):
        return values
    """
)

DF010_APP = textwrap.dedent(
    """
    import threading
    from collections.abc import Iterator

    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker
    from sqlalchemy.pool import StaticPool

    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SessionLocal = sessionmaker(bind=engine)
    THREADS = {}
    app = FastAPI()


    def get_db() -> Iterator[Session]:
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()


    @app.get("/loop")
    async def loop_thread():
        THREADS["loop"] = threading.get_ident()


    @app.get("/query")
    async def query(db: Session = Depends(get_db)):
        THREADS["query"] = threading.get_ident()
        return db.execute(text("SELECT 1")).scalar()
    """
)

_names = itertools.count()


def _load(path: Path) -> ModuleType:
    name = f"depfix_async_app_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _rewrite(
    tmp_path: Path, source: str, code: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    before = tmp_path / "before"
    before.mkdir()
    (before / "pyproject.toml").write_text("")
    (before / "service.py").write_text(source)
    after = tmp_path / "after"
    shutil.copytree(before, after)
    monkeypatch.chdir(after)
    assert main(["apply", ".", "--select", code, "--unsafe", "--quiet"]) == 1
    return before / "service.py", after / "service.py"


@pytest.mark.filterwarnings("ignore:coroutine 'load_flags' was never awaited:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_df009_an_async_dependency_running_asyncio_run_fails_then_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = _rewrite(tmp_path, DF009_APP, "DF009", monkeypatch)
    with (
        TestClient(_load(before).app) as client,
        pytest.raises(RuntimeError, match="running event loop"),
    ):
        client.get("/flags")
    gc.collect()  # the coroutine asyncio.run never started warns here, under this test's filters
    with TestClient(_load(after).app) as client:
        assert client.get("/flags").json() == {"beta": True}


def test_df010_the_sync_session_leaves_the_event_loop_after_the_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = _rewrite(tmp_path, DF010_APP, "DF010", monkeypatch)
    for path, on_loop in ((before, True), (after, False)):
        module = _load(path)
        with TestClient(module.app) as client:
            client.get("/loop")
            assert client.get("/query").json() == 1
        assert (module.THREADS["query"] == module.THREADS["loop"]) is on_loop
