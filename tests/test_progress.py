"""The progress bar on stderr, and what `apply` lists after writing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from depfix.cli import ProgressBar, main


def test_progress_bar_shows_long_stages_only() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=80)
    with ProgressBar(enabled=True, console=console) as bar:
        bar.update("indexing", 5, 10)  # short: no bar
        assert output.getvalue() == ""
        bar.update("indexing", 150, 300)
        bar.update("checking", 300, 300)
    assert "indexing" in output.getvalue()
    assert "checking" in output.getvalue()


def test_apply_lists_only_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "main.py").write_text(
        "from fastapi import Depends, FastAPI\n\napp = FastAPI()\n\n\n"
        "def get_db():\n    yield 1\n\n\n"
        "def get_conn(url):\n    yield url\n\n\n"
        '@app.get("/")\ndef root(db=Depends(get_db()), conn=Depends(get_conn("x"))):\n    return db\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", ".", "--select", "DF005"]) == 1
    checked = capsys.readouterr().out.splitlines()
    assert len(checked) == 2
    assert main(["apply", ".", "--select", "DF005"]) == 1
    applied = capsys.readouterr()

    def message(line: str) -> str:
        return line.split(": ", 1)[1]

    left = [message(line) for line in checked if "no fix" in line]
    assert [message(line) for line in applied.out.splitlines()] == left
    assert "1 changed, 1 fix" in applied.err
    # at its position in the fixed file: where the next check reports it
    assert main(["check", ".", "--select", "DF005"]) == 1
    assert capsys.readouterr().out == applied.out
