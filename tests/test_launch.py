"""The console script's exit: output flushed, the code of the run, no teardown of the heap."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from depfix import launch
from tests.conftest import run_depfix, write_tree

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _hard_exit(code: int) -> NoReturn:
    raise _Exited(code)


class _Stream(io.StringIO):
    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken
        self.flushes = 0

    def flush(self) -> None:
        if self.broken:
            raise BrokenPipeError("the reader went away")
        self.flushes += 1


def test_the_console_script_and_python_m_both_enter_through_run() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["depfix"] == "depfix.launch:run"
    assert "run()" in (ROOT / "depfix" / "__main__.py").read_text()


def test_run_flushes_both_streams_then_exits_with_the_code_of_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, err = _Stream(), _Stream()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(launch, "main", lambda: 3)
    monkeypatch.setattr(launch.os, "_exit", _hard_exit)
    with pytest.raises(_Exited) as exited:
        launch.run()
    assert exited.value.code == 3
    assert (out.flushes, err.flushes) == (1, 1)


def test_run_leaves_a_stream_it_cannot_flush_to_the_normal_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", _Stream(broken=True))
    monkeypatch.setattr(launch, "main", lambda: 1)
    monkeypatch.setattr(launch.os, "_exit", _hard_exit)
    with pytest.raises(SystemExit) as exited:  # not _Exited: Python reports the pipe as before
        launch.run()
    assert exited.value.code == 1


def test_output_larger_than_a_pipe_arrives_whole_through_the_real_entry_point(
    tmp_path: Path,
) -> None:
    files = {
        f"app/r{i}.py": (
            "from fastapi import APIRouter, Depends\n\nrouter = APIRouter()\n\n\n"
            "def get_db():\n    return 1\n\n\n"
            f"@router.get('/{i}')\ndef read(db=Depends(get_db)):\n    return db\n"
        )
        for i in range(200)
    }
    write_tree(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", **files})
    run = run_depfix(tmp_path, "check", "--no-cache", "--format", "json", ".")
    assert run.code == 1, run
    assert len(run.stdout) > 64 * 1024  # more than a pipe holds, and than a stream buffers
    report = json.loads(run.stdout)
    assert {d["path"] for d in report["diagnostics"]} == {f"app/r{i}.py" for i in range(200)}
