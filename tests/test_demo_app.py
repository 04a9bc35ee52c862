"""The demo app: broken at import before `depfix apply`, and its own TestClient suite passes after."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_app"

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


def _python(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    copy = tmp_path / "demo_app"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return copy


def test_demo_app_fails_at_import_before_and_passes_its_tests_after(demo: Path) -> None:
    before = _python(demo, "-c", "import app.main")
    assert before.returncode != 0
    assert "is not a callable object" in before.stderr

    original = {p: p.read_bytes() for p in demo.rglob("*.py")}
    applied = _python(demo, "-m", "depfix", "apply", "--unsafe", ".")
    assert applied.returncode == 1, applied.stderr
    changed = sorted(
        p.relative_to(demo).as_posix() for p, data in original.items() if p.read_bytes() != data
    )
    assert "app/routers/reports.py" in changed  # DF005, without which the app cannot start
    assert all(path.startswith("app/") for path in changed)
    for path in demo.rglob("*.py"):
        ast.parse(path.read_bytes(), filename=str(path))

    tests = _python(demo, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout

    again = _python(demo, "-m", "depfix", "apply", "--unsafe", "--dry-run", ".")
    assert again.stdout == "", "a second run would still change the demo app"


def test_dry_run_on_the_demo_app_writes_nothing_and_shows_the_fix(demo: Path) -> None:
    original = {p: p.read_bytes() for p in demo.rglob("*") if p.is_file()}
    result = _python(demo.parent, "-m", "depfix", "apply", "--dry-run", "demo_app")
    assert result.returncode == 1
    assert "-    settings: Settings = Depends(get_settings()),\n" in result.stdout
    assert "+    settings: SettingsDep,\n" in result.stdout
    assert "--- /dev/null\n+++ b/demo_app/app/dependencies.py\n" in result.stdout
    assert result.stdout.startswith("diff --git a/demo_app/")
    assert (
        "diff --git a/demo_app/app/routers/reports.py b/demo_app/app/routers/reports.py\n"
        in result.stdout
    )
    assert {p: p.read_bytes() for p in demo.rglob("*") if p.is_file()} == original
