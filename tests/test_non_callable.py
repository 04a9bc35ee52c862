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
