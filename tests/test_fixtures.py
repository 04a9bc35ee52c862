"""Every fixture case under fixtures/<CODE>/<case>/, run through the real `depfix` entry point.

A case is either `input.py` (+ `expected.py`) or a `before/` tree (+ `after/`); a missing expected
side means the rule must leave the input untouched. Optional files:
- `case.toml`: `args = [...]` extra command-line arguments (e.g. `["--unsafe"]`) and `select`, the
  rules to run (default: the rule the case is filed under);
- `diagnostics.txt`: the exact text report of `depfix check` on the input.

For every case: the output equals the expected side byte for byte, every output file parses (with
libcst, and with this Python's `ast`, through `depfix.lowering` for syntax newer than it), and a
second run changes nothing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import libcst as cst
import pytest

from depfix.cli import main
from depfix.facts import parse_source
from depfix.gate_audit import audit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _cases() -> list[Path]:
    return sorted(
        case
        for rule in FIXTURES.glob("DF[0-9][0-9][0-9]")
        for case in rule.iterdir()
        if case.is_dir()
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _layout(case: Path) -> tuple[Path, Path | None]:
    if (case / "before").is_dir():
        after = case / "after"
        return case / "before", after if after.is_dir() else None
    expected = case / "expected.py"
    return case / "input.py", expected if expected.is_file() else None


def _prepare(case: Path, tree: Path) -> bool:
    """Copy the case's input to `tree`; True when a marker pyproject.toml had to be added."""
    source, _ = _layout(case)
    if source.is_dir():
        shutil.copytree(source, tree)
    else:
        tree.mkdir()
        shutil.copy(source, tree / "input.py")
    if (tree / "pyproject.toml").exists():
        return False
    (tree / "pyproject.toml").write_text("")  # marks the project root, as a real project has
    return True


def _expected(case: Path) -> dict[str, bytes]:
    source, expected = _layout(case)
    if source.is_dir():
        return _tree(expected if expected is not None else source)
    return {"input.py": (expected or source).read_bytes()}


def _arguments(case: Path) -> list[str]:
    config = case / "case.toml"
    settings = tomllib.loads(config.read_text()) if config.is_file() else {}
    return ["--select", settings.get("select", case.parent.name), *settings.get("args", [])]


def _run(command: str, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main([command, ".", "--quiet", *arguments])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("case", _cases(), ids=lambda case: f"{case.parent.name}/{case.name}")
def test_fixture_case(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "project"
    added_marker = _prepare(case, tree)
    monkeypatch.chdir(tree)
    arguments = _arguments(case)

    def output() -> dict[str, bytes]:
        files = _tree(tree)
        if added_marker:
            del files["pyproject.toml"]
        return files

    diagnostics = case / "diagnostics.txt"
    if diagnostics.is_file():
        status, report = _run("check", arguments, capsys)
        assert report == diagnostics.read_text(), "the check report differs from diagnostics.txt"
        assert status == (1 if report else 0)

    _run("apply", arguments, capsys)
    result = output()
    assert result == _expected(case)
    for name, data in result.items():
        if name.endswith(".py"):
            cst.parse_module(data)
            parse_source(name, data)

    _run("apply", arguments, capsys)
    assert output() == result, "a second run changed the output"


@pytest.mark.parametrize("case", _cases(), ids=lambda case: f"{case.parent.name}/{case.name}")
def test_gates_turn_away_no_finding(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule's `wants` never keeps it from a file it reports in, in any round (see gate_audit)."""
    tree = tmp_path / "project"
    _prepare(case, tree)
    monkeypatch.chdir(tree)
    with audit() as found:
        _run("check", [*_arguments(case), "--no-cache", "-j", "1"], capsys)
        _run("apply", [*_arguments(case), "--unsafe", "--no-cache", "-j", "1"], capsys)
    assert found.misses == []


def test_every_rule_has_fixture_cases() -> None:
    from depfix.rules import registered_rules

    covered = {case.parent.name for case in _cases()}
    missing = [rule.CODE for rule in registered_rules() if rule.CODE not in covered]
    assert not missing, f"rules without fixture cases: {missing}"
