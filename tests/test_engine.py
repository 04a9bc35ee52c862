"""The engine with rules of its own kind: nested fixes, multi-file changesets, new files, safety."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import libcst as cst
import pytest

from depfix.config import Settings
from depfix.diffing import unified_diff
from depfix.engine import RunOptions, RunResult, run
from depfix.io import PendingWrite, write_atomically
from depfix.rules import SAFE, UNSAFE, Changeset, FileRule, ProjectFinding, ProjectRule, Span


class UnwrapDouble(FileRule):
    """Test rule: `double(x)` becomes `x` (nested calls need a second pass)."""

    CODE = "DF901"
    NAME = "unwrap-double"
    SUMMARY = "test"
    FIX = SAFE
    NEEDLES = (b"double(",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "double" and len(node.args) == 1:
            self.report(node, "double call", replacement=node.args[0].value)


class BrokenFix(FileRule):
    """Test rule whose fix would produce code that does not parse."""

    CODE = "DF902"
    NAME = "broken-fix"
    SUMMARY = "test"
    FIX = SAFE
    NEEDLES = (b"broken",)

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "broken":
            self.report(node, "broken", replacement=cst.Name("lambda"))


class ExtractShared(ProjectRule):
    """Test project rule: moves `shared = 1` from a.py into a new common.py, importing it back."""

    CODE = "DF903"
    NAME = "extract-shared"
    SUMMARY = "test"
    FIX = UNSAFE

    def plan(self) -> Iterable[ProjectFinding]:
        for path in sorted(self.index.files):
            data = self.sources[path]
            if b"shared = 1\n" in data:
                new = data.replace(b"shared = 1\n", b"from common import shared\n")
                changes = {path: new, "common.py": b"shared = 1\n"}
                yield ProjectFinding(
                    self.CODE,
                    path,
                    Span(1, 1, 1, 11),
                    "move shared",
                    Changeset(changes),
                    UNSAFE,
                    "test",
                )


def run_in(tmp_path: Path, rules: list[type], unsafe: bool = False) -> RunResult:
    (tmp_path / "pyproject.toml").write_text("")
    options = RunOptions(rules=rules, settings=Settings(), unsafe=unsafe)
    return run([tmp_path], options, cwd=tmp_path)


def write(result: RunResult) -> None:
    for change in result.changes:
        write_atomically([PendingWrite(change.absolute, change.new, change.original)])


def test_nested_fixes_are_finished_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = double(double(double(1)))  # keep\n")
    result = run_in(tmp_path, [UnwrapDouble])
    assert [change.new for change in result.changes] == [b"x = 1  # keep\n"]
    assert result.fixes == 3
    write(result)
    assert run_in(tmp_path, [UnwrapDouble]).changes == []


def test_a_fix_that_would_not_parse_is_refused_and_reported(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("value = broken\n")
    result = run_in(tmp_path, [BrokenFix])
    assert result.changes == []
    assert len(result.errors) == 1
    assert "does not parse" in result.errors[0].message
    assert result.errors[0].path == "m.py"


def test_unsafe_changeset_waits_for_unsafe(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("shared = 1\n")
    result = run_in(tmp_path, [ExtractShared])
    assert result.changes == []
    assert [(d.code, d.fix.applied if d.fix else None) for d in result.diagnostics] == [
        ("DF903", False)
    ]


def test_changeset_edits_and_creates_files_as_one_diff_that_git_applies(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "a.py").write_text("shared = 1\nprint(shared)\n")
    result = run_in(project, [ExtractShared], unsafe=True)
    changes = {change.path: change for change in result.changes}
    assert sorted(changes) == ["a.py", "common.py"]
    assert changes["common.py"].original is None
    assert changes["common.py"].group == changes["a.py"].group
    diff = b"".join(
        unified_diff(c.path, c.original.data if c.original else None, c.new) for c in result.changes
    )
    assert b"--- /dev/null\n+++ b/common.py\n" in diff

    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "a.py").write_text("shared = 1\nprint(shared)\n")
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    subprocess.run(["git", "apply"], cwd=copy, input=diff, check=True)

    write_atomically([PendingWrite(c.absolute, c.new, c.original) for c in result.changes])
    for name in ("a.py", "common.py"):
        assert (copy / name).read_bytes() == (project / name).read_bytes()
    assert (project / "a.py").read_text() == "from common import shared\nprint(shared)\n"
    assert run_in(project, [ExtractShared], unsafe=True).changes == []


def test_changeset_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("shared = 1\n")
    result = run_in(tmp_path, [ExtractShared], unsafe=True)
    blocker = tmp_path / "common.py"
    blocker.write_text("someone else\n")  # appears between planning and writing
    with pytest.raises(Exception, match="created by someone else"):
        write_atomically([PendingWrite(c.absolute, c.new, c.original) for c in result.changes])
    assert (tmp_path / "a.py").read_text() == "shared = 1\n"
    assert blocker.read_text() == "someone else\n"
