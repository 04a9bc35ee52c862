"""DF008 beyond the fixture pairs: the app really imports and serves after the move, notes for lazy
cycles, re-exports for files outside the given paths, and refusals with their reasons."""

from __future__ import annotations

import email
import importlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from depfix.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "DF008"

APP_TEST = """
from fastapi.testclient import TestClient

from app.main import app
from app.routers.auth import get_current_user
from app.routers.users import User


def test_token_is_the_user_name() -> None:
    client = TestClient(app)
    assert client.get("/users/me", headers={"Authorization": "Bearer alice"}).json() == {"name": "alice"}
    assert client.get("/users/me").status_code == 401


def test_override_keyed_by_the_dependency() -> None:
    app.dependency_overrides[get_current_user] = lambda: User(name="bob")
    try:
        assert TestClient(app).get("/users/me").json() == {"name": "bob"}
    finally:
        app.dependency_overrides.clear()
"""


def _project(tmp_path: Path, case: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / case / "before", project)
    (project / "pyproject.toml").write_text("")
    return project


def _pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def test_two_router_app_imports_and_serves_after_the_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, "two_routers")
    (project / "tests").mkdir()
    (project / "tests" / "test_app.py").write_text(APP_TEST)
    before = _pytest(project)
    assert before.returncode != 0
    assert "partially initialized module" in before.stdout

    monkeypatch.chdir(project)
    assert main(["apply", ".", "--quiet", "--select", "DF008"]) == 1  # fixes were made
    test_file = (project / "tests" / "test_app.py").read_text()
    assert "from app.dependencies import User, get_current_user" in test_file

    after = _pytest(project)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "2 passed" in after.stdout


def test_lazy_cycle_is_a_verbose_note_that_sets_no_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "lazy_import_cycle_untouched")
    monkeypatch.chdir(project)
    assert main(["check", ".", "--select", "DF008"]) == 0
    assert "note" not in capsys.readouterr().err
    assert main(["check", ".", "--select", "DF008", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "app/routers/auth.py:6:1: note: DF008 import cycle app.routers.auth <-> app.routers.users "
        "only through function-local or TYPE_CHECKING imports" in captured.err
    )
    assert main(["check", ".", "--select", "DF008", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"] == []


def test_cycle_without_a_dependency_is_a_verbose_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "cycle_without_dependency")
    monkeypatch.chdir(project)
    assert main(["check", ".", "--select", "DF008"]) == 0
    assert "note" not in capsys.readouterr().err
    assert main(["check", ".", "--select", "DF008", "-v"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "note: DF008 import cycle app.prices <-> app.taxes: importing app.prices first fails: "
    ) in captured.err
    assert "(left alone: no dependency, a Depends/Security target, is imported" in captured.err


def test_imports_of_module_objects_make_no_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package that imports its submodules, which import siblings through the package, works."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg import a\nfrom pkg.b import VALUE\n",
            "pkg/a.py": "import pkg.b\n\nfrom pkg import b\n",
            "pkg/b.py": "from pkg import a\n\nVALUE = 1\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", ".", "--select", "DF008"]) == 0
    assert "DF008" not in capsys.readouterr().err


def test_importer_outside_the_given_paths_keeps_a_re_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, "two_routers")
    (project / "tests").mkdir()
    outside = project / "tests" / "test_auth.py"
    outside.write_text("from app.routers.auth import get_current_user\n")
    monkeypatch.chdir(project)
    assert main(["apply", "app", "--quiet", "--select", "DF008"]) == 1
    assert outside.read_text() == "from app.routers.auth import get_current_user\n"
    auth = (project / "app" / "routers" / "auth.py").read_text()
    assert "from app.dependencies import get_current_user\n" in auth
    assert "def get_current_user" not in auth
    check = subprocess.run(
        [sys.executable, "-c", "import app.main, tests.test_auth"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def _check(project: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    main(["check", ".", "--quiet", "--select", "DF008"])
    return capsys.readouterr().out


def _write(project: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project / "pyproject.toml").write_text("")


def _code(text: str) -> str:
    return textwrap.dedent(text).lstrip()


CYCLE_BASE = {
    "app/__init__.py": "",
    "app/auth.py": _code("""
        from fastapi import Header

        from app.users import find

        def get_user(x_user: str = Header()) -> str:
            return find(x_user)
    """),
    "app/users.py": _code("""
        from fastapi import APIRouter, Depends

        from app.auth import get_user

        router = APIRouter()

        def find(name: str) -> str:
            return name

        @router.get("/me")
        def me(user: str = Depends(get_user)) -> str:
            return user
    """),
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"app/auth.py": CYCLE_BASE["app/auth.py"] + "\nVERSION = '1'\n"},
            None,  # control: an unrelated name does not block the move
        ),
        (
            {
                "app/users.py": CYCLE_BASE["app/users.py"].replace(
                    "from app.auth import get_user", "from app.auth import VERSION, get_user"
                )
                + "\nALL = {'alice'}\n",
                "app/auth.py": CYCLE_BASE["app/auth.py"].replace("import find", "import ALL, find")
                + "\nVERSION = '1'\n\ndef everyone() -> set[str]:\n    return ALL\n",
            },
            "the cycle would remain: importing app.auth first would still fail at `from app.auth import VERSION` in app/users.py",
        ),
        (
            {
                "app/auth.py": CYCLE_BASE["app/auth.py"].replace(
                    "return find", "return __name__ + find"
                )
            },
            "get_user in app/auth.py uses __name__, whose value would change",
        ),
        (
            {
                "app/auth.py": CYCLE_BASE["app/auth.py"]
                + "\ndef reset() -> None:\n    global get_user\n    get_user = None\n"
            },
            "get_user is rebound in app/auth.py",
        ),
        (
            {
                "tests/test_auth.py": _code("""
                    from unittest import mock

                    import app.auth

                    def test() -> None:
                        with mock.patch.object(app.auth, "get_user"):
                            pass
                        mock.patch('app.auth.get_user')
                """)
            },
            "tests/test_auth.py:8 names app.auth.get_user in a string",
        ),
        (
            {
                "tests/conftest.py": _code("""
                    import app.auth

                    app.auth.get_user = lambda: "test"
                """)
            },
            "tests/conftest.py:3 assigns get_user of app.auth, which the moved code would no longer see",
        ),
        (
            {
                "app/auth.py": _code("""
                    from fastapi import APIRouter, Header

                    from app.users import find

                    router = APIRouter()

                    @router.get("/whoami")
                    def get_user(x_user: str = Header()) -> str:
                        return find(x_user)
                """)
            },
            "get_user in app/auth.py is a route",
        ),
        (
            {
                "app/auth.py": _code("""
                    from fastapi import APIRouter, Header

                    from app.users import find

                    router = APIRouter()

                    def get_user(x_user: str = Header()) -> str:
                        return find(x_user) + str(router.prefix)
                """)
            },
            "router in app/auth.py is a FastAPI app or router",
        ),
    ],
    ids=[
        "control",
        "cycle-remains",
        "dunder-name",
        "rebound",
        "mock-patch-string",
        "module-state-assigned",
        "route",
        "router-object",
    ],
)
def test_refusals_say_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    reason: str | None,
) -> None:
    project = tmp_path / "project"
    _write(project, {**CYCLE_BASE, **change})
    monkeypatch.chdir(project)
    report = _check(project, capsys)
    assert "DF008 import cycle app.auth <-> app.users" in report
    if reason is None:
        assert report.rstrip().endswith("[*]")
    else:
        assert f"(no fix: {reason}" in report


def test_dry_run_shows_the_whole_changeset_and_git_applies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "two_routers")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert main(["apply", ".", "--dry-run", "--quiet", "--select", "DF008"]) == 1
    patch = capsys.readouterr().out
    assert "--- /dev/null\n+++ b/app/dependencies.py\n" in patch
    for changed in ("app/routers/auth.py", "app/routers/users.py"):
        assert f"--- a/{changed}\n+++ b/{changed}\n" in patch
    (tmp_path / "patch.diff").write_text(patch)
    subprocess.run(["git", "apply", str(tmp_path / "patch.diff")], cwd=project, check=True)
    expected = FIXTURES / "two_routers" / "after"
    for path in expected.rglob("*.py"):
        assert (project / path.relative_to(expected)).read_text() == path.read_text()


def test_after_the_cycle_is_broken_nothing_stale_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo app's aliases wait for DF008 in the first round; once made, they are not "left"."""
    project = tmp_path / "demo_app"
    shutil.copytree(FIXTURES.parent / "demo_app", project)
    monkeypatch.chdir(project)
    capsys.readouterr()
    main(["apply", ".", "--unsafe", "--no-cache", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    left = [d for d in report["diagnostics"] if d["fix"] is None or not d["fix"]["applied"]]
    assert sorted(d["code"] for d in left) == ["DF011", "DF012"]
    assert not [d for d in report["diagnostics"] if d["path"] == "app/dependencies.py"]
    assert any(d["code"] == "DF008" and d["fix"]["applied"] for d in report["diagnostics"])
    assert (project / "app" / "dependencies.py").is_file()


def test_a_type_checking_import_the_moved_code_needs_becomes_a_real_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI evaluates a dependency's annotations at startup: `if TYPE_CHECKING:` is not enough."""
    _write(
        tmp_path,
        {
            **CYCLE_BASE,
            "app/models.py": "Name = str\n",
            "app/auth.py": _code("""
                from typing import TYPE_CHECKING

                from fastapi import Header

                from app.users import find

                if TYPE_CHECKING:
                    from app.models import Name

                def get_user(x_user: str = Header()) -> "Name":
                    return find(x_user)
            """),
        },
    )
    monkeypatch.chdir(tmp_path)
    assert main(["apply", ".", "--quiet", "--no-cache", "--select", "DF008"]) == 1
    created = (tmp_path / "app" / "dependencies.py").read_text()
    assert "\nfrom app.models import Name\n" in created
    assert "TYPE_CHECKING" not in created
    check = subprocess.run(
        [sys.executable, "-c", "import app.auth, app.users, app.dependencies"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_standard_library_gets_no_output_without_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Code FastAPI never calls: its import cycles (all harmless here) are --verbose notes."""
    for package in (json, email, importlib):
        shutil.copytree(
            Path(package.__file__).parent,
            tmp_path / package.__name__,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["check", ".", "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("depfix: ")
    assert captured.err.count("\n") == 1  # the summary line alone
    assert main(["check", ".", "--no-cache", "--verbose"]) == 0
    notes = capsys.readouterr().err
    # which cycles are looked at depends on which files the rules' gates admit (and the lazy
    # index loads what they import): the ones found are notes, none of them an error
    cycles = [line for line in notes.splitlines() if "note: DF008 import cycle " in line]
    assert cycles
    assert all("cannot fail" in line or "only through" in line for line in cycles), cycles
    assert "fails" not in notes.replace("cannot fail", "")
