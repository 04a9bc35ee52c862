"""Every position `check` prints is a place in the file as it is on disk.

Later rounds of a run (DF007 after DF006's rewrite, a use of an alias DF007 has just inserted) and
file rules that run after a planning rewrote their file see the rewritten text; what they report is
mapped back to the file on disk (`depfix.positions`). For every fixture case, with the case's
arguments and with every rule selected: each diagnostic lies inside its file, and where the message
says what it is about, the text at its position starts with that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from depfix.cli import main
from depfix.positions import DiskPositions
from tests.test_fixtures import _arguments, _cases, _prepare

PARAMETER = re.compile(r"^parameter `(\w+)`")
MARKER_CALL = re.compile(r"^[\w.]*(Depends|Security)\(")
PARAMETER_TEXT = re.compile(r"^\*{0,2}\w+\s*[:=,)]")  # `x: T`, or `x=Depends(f)` DF006 annotates


def _check(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    main(["check", ".", "--quiet", "--no-cache", "--format", "json", *arguments])
    diagnostics: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["diagnostics"]
    return diagnostics


def _every_rule(arguments: list[str]) -> list[str]:
    at = arguments.index("--select")
    return arguments[:at] + arguments[at + 2 :]


def _problems(tree: Path, diagnostics: list[dict[str, Any]]) -> list[str]:
    problems = []
    for diagnostic in diagnostics:
        where = f"{diagnostic['path']}:{diagnostic['line']}:{diagnostic['column']}"
        file = tree / diagnostic["path"]
        if not file.is_file():
            problems.append(f"{where}: no such file on disk")
            continue
        lines = file.read_text(encoding="utf-8").splitlines() or [""]
        line, column = diagnostic["line"], diagnostic["column"]
        if not 1 <= line <= len(lines) or not 1 <= column <= len(lines[line - 1]) + 1:
            problems.append(f"{where}: outside the file ({len(lines)} lines)")
            continue
        end = (diagnostic["end_line"], diagnostic["end_column"])
        if end < (line, column) or end[0] > len(lines) + 1:
            problems.append(f"{where}: ends at {end}")
        text = lines[line - 1][column - 1 :]
        message = diagnostic["message"]
        named = PARAMETER.match(message)
        if diagnostic["code"] == "DF006" and named and not text.lstrip("*").startswith(named[1]):
            problems.append(f"{where}: `{text}` is not parameter `{named[1]}`")
        if diagnostic["code"] == "DF007":
            # (a marker an earlier fix writes, as DF001's, is not on disk: its place is)
            written = "Depends(" in lines[line - 1] or "Security(" in lines[line - 1]
            if " is written at " in message and written and not MARKER_CALL.match(text):
                problems.append(f"{where}: `{text}` is not the dependency's marker")
            if message.endswith("; use it") and not PARAMETER_TEXT.match(text):
                problems.append(f"{where}: `{text}` is not an annotated parameter")
    return problems


@pytest.mark.parametrize("variant", ["case", "every-rule"])
@pytest.mark.parametrize("case", _cases(), ids=lambda case: f"{case.parent.name}/{case.name}")
def test_check_positions_are_on_disk(
    case: Path,
    variant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = tmp_path / "project"
    _prepare(case, tree)
    monkeypatch.chdir(tree)
    arguments = _arguments(case)
    if variant == "every-rule":
        arguments = _every_rule(arguments)
    assert _problems(tree, _check(arguments, capsys)) == []


def test_a_line_the_run_inserted_maps_to_where_it_was_inserted() -> None:
    original = b"import a\n\n\ndef f():\n    pass\n\n\ndef g(x: int = f()):\n    pass\n"
    rewritten = original.replace(b"import a\n", b"import a\nimport b\n").replace(
        b"    pass\n\n\ndef g(x: int = f()):",
        b"    pass\n\n\nAlias = int\n\n\ndef g(x: Annotated[int, f()]):",
    )
    positions = DiskPositions(rewritten, original)
    assert positions.point(2, 1) == (2, 1)  # `import b` was inserted before line 2
    assert positions.point(6, 5) == (5, 5)  # `pass`, one line up on disk
    assert positions.point(12, 7) == (8, 7)  # `x`
    assert positions.point(12, 10) == (8, 10)  # `Annotated[` replaces nothing: at `int`
    assert positions.point(12, 25) == (8, 16)  # `f()`
    assert positions.point(99, 1) == (10, 1)  # past the end: the end of the file
