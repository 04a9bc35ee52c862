"""DF001 on a running app: it cannot start before the rewrite and answers after it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from depfix.cli import main

pytest.importorskip("sqlalchemy")
from fastapi.testclient import TestClient

APP = textwrap.dedent(
    """
    from collections.abc import Iterator

    from fastapi import FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite://")
    SessionLocal = sessionmaker(bind=engine)
    app = FastAPI()


    class Pagination:
        def __init__(self, skip: int = 0, limit: int = 10) -> None:
            self.skip = skip
            self.limit = limit


    def get_db() -> Iterator[Session]:
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()


    @app.get("/answer")
    def answer(db: Session, page: Pagination):
        return {"answer": db.execute(text("SELECT 42")).scalar(), "limit": page.limit}
    """
)


def _load(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_an_app_that_cannot_start_answers_after_the_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    app_file = tmp_path / "service.py"
    app_file.write_text(APP)
    with pytest.raises(Exception, match=r"Invalid args for response field|Session"):
        _load(app_file, "depfix_df001_before")
    monkeypatch.chdir(tmp_path)
    assert main(["apply", ".", "--select", "DF001", "--quiet"]) == 1
    assert "db: Annotated[Session, Depends(get_db)]" in app_file.read_text()
    module = _load(app_file, "depfix_df001_after")
    with TestClient(module.app) as client:  # type: ignore[attr-defined]
        response = client.get("/answer", params={"limit": 3})
    assert response.status_code == 200
    assert response.json() == {"answer": 42, "limit": 3}
