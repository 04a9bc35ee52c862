"""What `apply` says is left is what the next `check` reports; `check` offers the fixes `apply` makes.

For every fixture case and the demo app, with the case's arguments, with `--unsafe` added, and with
every rule selected: `check`, then `apply`, then `check` again, each through the real entry point on
a fresh copy of the input. The diagnostics `apply` leaves (not fixed) must be exactly as many as the
second check reports, and the fixes the first check lists as made (`[*]` and usable with these
options) must be as many as `apply` makes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from depfix.cli import main
from tests.test_fixtures import FIXTURES, _arguments, _cases, _prepare

VARIANTS = ("case", "unsafe", "every-rule")


def _report(command: str, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    main([command, ".", "--quiet", "--no-cache", "--format", "json", *arguments])
    return json.loads(capsys.readouterr().out)


def _variant(arguments: list[str], variant: str) -> list[str]:
    if variant == "unsafe" and "--unsafe" not in arguments:
        return [*arguments, "--unsafe"]
    if variant == "every-rule":
        at = arguments.index("--select")
        return arguments[:at] + arguments[at + 2 :]
    return arguments


def _usable(diagnostic: dict[str, Any], unsafe: bool) -> bool:
    fix = diagnostic["fix"]
    return fix is not None and (fix["safety"] == "safe" or unsafe)


def _left(report: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (d["path"], d["line"], d["code"])
        for d in report["diagnostics"]
        if d["fix"] is None or not d["fix"]["applied"]
    ]


def _check_counts(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = _report("check", arguments, capsys)
    applied = _report("apply", arguments, capsys)
    after = _report("check", arguments, capsys)
    left = _left(applied)
    found = [(d["path"], d["line"], d["code"]) for d in after["diagnostics"]]
    assert sorted(left) == sorted(found), "apply's left diagnostics are not what check reports"
    unsafe = "--unsafe" in arguments
    offered = sum(_usable(d, unsafe) for d in before["diagnostics"])
    assert offered == applied["summary"]["fixes"] == before["summary"]["fixes"]
    made = sum(1 for d in applied["diagnostics"] if d["fix"] is not None and d["fix"]["applied"])
    assert made == applied["summary"]["fixes"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", _cases(), ids=lambda case: f"{case.parent.name}/{case.name}")
def test_left_is_what_check_reports(
    case: Path,
    variant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = tmp_path / "project"
    _prepare(case, tree)
    monkeypatch.chdir(tree)
    _check_counts(_variant(_arguments(case), variant), capsys)


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
def test_demo_app_left_is_what_check_reports(
    unsafe: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = tmp_path / "demo_app"
    shutil.copytree(FIXTURES / "demo_app", tree)
    monkeypatch.chdir(tree)
    _check_counts(["--unsafe"] if unsafe else [], capsys)


def test_a_refusal_on_what_a_fix_wrote_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DF006 writes `Annotated[str, Security(api_key_header)]` twice; DF007 then refuses to alias it."""
    case = FIXTURES / "DF007" / "instance_provider_after_df006"
    tree = tmp_path / "project"
    _prepare(case, tree)
    monkeypatch.chdir(tree)
    applied = _report("apply", _arguments(case), capsys)
    assert [d[2] for d in _left(applied)] == ["DF007"]
    assert applied["summary"]["fixes"] == 2
    capsys.readouterr()
    main(["apply", ".", "--no-cache", "--select", "DF006,DF007"])
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.endswith("0 fixes, 1 diagnostic left, 0 errors")
