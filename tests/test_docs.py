"""The rule pages under docs/rules are what `python -m depfix.docs` generates (a drift check), and
`depfix explain` prints the same documentation the pages are built around.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from depfix import docs
from depfix.cli import main
from depfix.rules import registered_rules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "rules"


def test_committed_pages_match_the_generator() -> None:
    problems = docs.drift(DOCS, docs.generate())
    assert not problems, "\n".join([*problems, "run: python -m depfix.docs write docs/rules"])


def test_check_command_reports_drift_and_write_repairs_it(tmp_path: Path) -> None:
    target = tmp_path / "rules"
    command = [sys.executable, "-m", "depfix.docs"]
    missing = subprocess.run([*command, "check", str(target)], capture_output=True, text=True)
    assert missing.returncode == 1 and "missing" in missing.stderr
    assert subprocess.run([*command, "write", str(target)], check=False).returncode == 0
    (target / "DF005.md").write_text("edited by hand\n")
    (target / "DF000.md").write_text("a rule that no longer exists\n")
    drifted = subprocess.run([*command, "check", str(target)], capture_output=True, text=True)
    assert drifted.returncode == 1
    assert "DF005.md: differs" in drifted.stderr and "DF000.md: no rule" in drifted.stderr
    assert subprocess.run([*command, "write", str(target)], check=False).returncode == 0
    clean = subprocess.run([*command, "check", str(target)], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(docs.generate())


def test_every_rule_has_a_page_with_its_docstring_and_an_example() -> None:
    pages = docs.generate()
    index = pages["README.md"]
    for rule in registered_rules():
        page = pages[f"{rule.CODE}.md"]
        assert page.count(rule.documentation()) == 1
        assert f"- Fix: {rule.FIX}" in page and rule.SUMMARY in page
        assert f"[{rule.CODE}]({rule.CODE}.md)" in index
        if (docs.FIXTURES / rule.CODE).is_dir():
            assert "## Examples from the test fixtures" in page, rule.CODE


@pytest.mark.parametrize("code", [rule.CODE for rule in registered_rules()])
def test_explain_prints_what_the_page_documents(
    code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", code]) == 0
    out = capsys.readouterr().out
    (rule,) = [r for r in registered_rules() if code == r.CODE]
    assert out == docs.explain_text(rule)
    body = out.split("\n\n", 1)[1]
    assert body.strip() in (DOCS / f"{code}.md").read_text(encoding="utf-8")


def test_tree_fixtures_and_diagnostic_only_cases(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    tree = fixtures / "DF005" / "a_tree"
    (tree / "before" / "app").mkdir(parents=True)
    (tree / "before" / "app" / "__init__.py").write_text("")
    (tree / "before" / "app" / "main.py").write_text("x = Depends(get_db())\n")
    (tree / "after" / "app").mkdir(parents=True)
    (tree / "after" / "app" / "__init__.py").write_text("")
    (tree / "after" / "app" / "main.py").write_text("x = Depends(get_db)\n")
    (tree / "after" / "app" / "dependencies.py").write_text("Dep = 1\n")
    only = fixtures / "DF005" / "reported"
    only.mkdir()
    (only / "input.py").write_text("y = 1\n")
    (only / "diagnostics.txt").write_text("input.py:1:1: DF005 something\n")
    (rule,) = [r for r in registered_rules() if r.CODE == "DF005"]
    page = docs.rule_page(rule, fixtures)
    assert "Empty files: `app/__init__.py`." in page
    assert "After `depfix apply`, `app/dependencies.py` (created):" in page
    assert "x = Depends(get_db)\n" in page
    assert "input.py:1:1: DF005 something" in page
    assert "`depfix apply` leaves the code as it is." in page
