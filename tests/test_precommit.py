"""The pre-commit hooks (`.pre-commit-hooks.yaml`), run by pre-commit itself against a temporary repository.

pre-commit installs hooks from a git repository at a commit, so the test commits a copy of this working
tree (what `pip install` needs plus the hooks file, uncommitted edits included) into a temporary
repository and points a `.pre-commit-config.yaml` at it. pre-commit then pip-installs depfix into an
environment of its own (under a temporary PRE_COMMIT_HOME, shared by the tests of this module).

The project's provider lives in a file that is not staged: the fix in the staged file proves that depfix
indexes the whole project even when pre-commit passes it a single file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

REPOSITORY = Path(__file__).resolve().parent.parent
INSTALLED = ("pyproject.toml", "README.md", "depfix", "codemods", ".pre-commit-hooks.yaml")

DEPS = """\
from collections.abc import Iterator


class Session:
    def close(self) -> None: ...


def get_db() -> Iterator[Session]:
    db = Session()
    try:
        yield db
    finally:
        db.close()
"""
MAIN = """\
from fastapi import FastAPI

from app.deps import Session

app = FastAPI()


@app.get("/")
def read(db: Session):
    return db
"""
MAIN_FIXED = """\
from typing import Annotated

from fastapi import Depends, FastAPI

from app.deps import Session, get_db

app = FastAPI()


@app.get("/")
def read(db: Annotated[Session, Depends(get_db)]):
    return db
"""
PYPROJECT = (
    '[project]\nname = "demo"\nrequires-python = ">=3.9"\n\n[tool.depfix]\nselect = ["DF001"]\n'
)


def isolated_environment() -> dict[str, str]:
    """This process's environment without git's global and system configuration or GIT_ variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def git(cwd: Path, *args: str) -> str:
    process = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=isolated_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return process.stdout


def commit_all(repository: Path, message: str) -> str:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--message", message)
    return git(repository, "rev-parse", "HEAD").strip()


def new_repository(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "--quiet")
    git(path, "config", "user.name", "Developer")
    git(path, "config", "user.email", "dev@example.com")
    return path


@dataclass(frozen=True)
class Hooks:
    repository: Path
    rev: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Hooks:
    """This working tree, committed to a repository of its own, and an environment for pre-commit."""
    base = tmp_path_factory.mktemp("precommit")
    env = isolated_environment()
    env.update(
        {
            "PRE_COMMIT_HOME": str(base / "home"),
            "PRE_COMMIT_COLOR": "never",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    repository = new_repository(base / "depfix")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in INSTALLED:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, repository / name, ignore=ignore)
        else:
            shutil.copy2(source, repository / name)
    return Hooks(repository, commit_all(repository, "depfix under test"), env)


@pytest.fixture
def project(tmp_path: Path, hooks: Hooks) -> Path:
    """A repository using both hooks, with the provider committed and a clean route."""
    root = new_repository(tmp_path / "project")
    config = {
        "repos": [
            {
                "repo": str(hooks.repository),
                "rev": hooks.rev,
                "hooks": [{"id": "depfix"}, {"id": "depfix-check"}],
            }
        ]
    }
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "deps.py").write_text(DEPS)
    (root / "app" / "main.py").write_text(MAIN_FIXED)
    (root / "pyproject.toml").write_text(PYPROJECT)
    commit_all(root, "initial")
    return root


def pre_commit(root: Path, hooks: Hooks, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=root,
        env=hooks.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_hooks_file_declares_a_fixing_and_a_checking_hook() -> None:
    declared = yaml.safe_load((REPOSITORY / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in declared}
    assert set(by_id) == {"depfix", "depfix-check"}
    assert by_id["depfix"]["entry"] == "depfix apply"
    assert by_id["depfix-check"]["entry"] == "depfix check"
    for hook in declared:
        assert hook["language"] == "python"
        assert hook["types"] == ["python"]
        assert hook["require_serial"] is True


def test_fixing_hook_fixes_a_staged_file_with_the_whole_project_indexed(
    project: Path, hooks: Hooks
) -> None:
    (project / "app" / "main.py").write_text(MAIN)
    git(project, "add", "app/main.py")

    run = pre_commit(project, hooks, "run", "depfix")  # pre-commit passes the staged file only

    assert run.returncode == 1, run.stdout + run.stderr
    assert "files were modified by this hook" in run.stdout
    assert "depfix: 1 file scanned, 1 changed, 1 fix, 0 diagnostics left, 0 errors" in run.stdout
    assert (project / "app" / "main.py").read_text() == MAIN_FIXED  # get_db found in app/deps.py
    assert (project / "app" / "deps.py").read_text() == DEPS

    git(project, "add", "app/main.py")
    again = pre_commit(project, hooks, "run", "--all-files")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("Passed") == 2


def test_check_hook_reports_and_writes_nothing(project: Path, hooks: Hooks) -> None:
    (project / "app" / "main.py").write_text(MAIN)

    run = pre_commit(project, hooks, "run", "depfix-check", "--files", "app/main.py")

    assert run.returncode == 1, run.stdout + run.stderr
    assert "app/main.py:9:10: DF001 parameter `db: Session` has no `Depends()`" in run.stdout
    assert "inject it with `get_db`" in run.stdout
    assert (project / "app" / "main.py").read_text() == MAIN


def test_readme_config_names_the_declared_hooks() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## pre-commit\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(block)
    declared = yaml.safe_load((REPOSITORY / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (repo,) = config["repos"]
    assert {hook["id"] for hook in repo["hooks"]} <= {hook["id"] for hook in declared}
    assert "depfix-check" in section
