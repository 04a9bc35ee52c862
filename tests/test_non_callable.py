"""DF012 on a running app: the instance it reports does make FastAPI fail at startup."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from depfix.cli import main

APP = textwrap.dedent(
    """
    from fastapi import Depends, FastAPI

    app = FastAPI()


    class CsvExporter:
        def export(self) -> str:
            return ""


    class Limiter:
        def __call__(self) -> bool:
            return True


    exporter_instance = CsvExporter()
    limiter = Limiter()


    @app.get("/ok")
    def ok(allowed: bool = Depends(limiter)):
        return allowed


    @app.get("/export")
    def export(exporter: CsvExporter = Depends(exporter_instance)):
        return exporter.export()
    """
)


def test_the_reported_instance_fails_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    app_file = tmp_path / "service.py"
    app_file.write_text(APP)
    spec = importlib.util.spec_from_file_location("depfix_df012_app", app_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["depfix_df012_app"] = module
    with pytest.raises(TypeError, match="is not a callable object"):
        spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    assert main(["check", ".", "--select", "DF012", "--quiet"]) == 1
    report = capsys.readouterr().out.splitlines()
    assert len(report) == 1
    assert report[0].startswith("service.py:27:")
    assert "`CsvExporter` instance" in report[0]


INLINE_APP = textwrap.dedent(
    """
    from dataclasses import dataclass

    from fastapi import Depends, FastAPI, Security
    from pydantic import BaseModel

    app = FastAPI()


    class Pager:
        def __init__(self, size: int = 10) -> None:
            self.size = size


    class RateLimiter:
        def __init__(self, times: int = 1) -> None:
            self.times = times

        def __call__(self) -> bool:
            return True


    class StrictLimiter(RateLimiter):
        pass


    @dataclass
    class Window:
        size: int = 5


    class Filters(BaseModel):
        q: str = ""


    class Singleton:
        def __new__(cls, name: str = "x"):
            return lambda: name


    @app.get("/")
    def route(value=MARKER):
        return {}
    """
)

# marker, whether FastAPI 0.165 fails when the route is declared
INLINE_CASES = [
    ("Depends(Pager(10))", True),
    ("Security(Pager(10))", True),
    ("Depends(Window(5))", True),
    ("Depends(Filters(q='x'))", True),
    ("Depends(RateLimiter(times=5))", False),
    ("Depends(StrictLimiter(times=1))", False),
    ("Depends(Pager)", False),
    ("Depends(Singleton('x'))", False),
]


@pytest.mark.parametrize(("marker", "fails"), INLINE_CASES, ids=[m for m, _ in INLINE_CASES])
def test_inline_instances_reported_exactly_when_fastapi_fails(
    marker: str,
    fails: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    app_file = tmp_path / "inline.py"
    app_file.write_text(INLINE_APP.replace("MARKER", marker))
    name = f"depfix_df012_inline_{abs(hash(marker))}"
    spec = importlib.util.spec_from_file_location(name, app_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        failed = False
    except TypeError as error:
        assert "is not a callable object" in str(error)
        failed = True
    finally:
        del sys.modules[name]
    assert failed == fails
    monkeypatch.chdir(tmp_path)
    status = main(["check", ".", "--select", "DF005,DF012", "--quiet", "--no-cache"])
    report = capsys.readouterr().out.splitlines()
    assert status == (1 if fails else 0)
    assert len(report) == (1 if fails else 0)
    if fails:
        assert "DF012" in report[0] and "instance made here" in report[0]
