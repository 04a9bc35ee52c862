"""Module identity: names from where a file can be imported, whatever paths a run is given, and
import roots that claim one name checked as separate projects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_depfix, write_tree

from depfix.discovery import discover
from depfix.engine import _jobs_for, _module_paths
from depfix.modules import Layout, module_names_at, split_scopes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def names(root: Path, *given: str) -> dict[str, str]:
    """Display path (relative to `root`) -> module name, for a run given these paths."""
    found = discover([root / path for path in given] or [root])
    assert found.layout is not None
    return {job.path: job.module for job in _jobs_for(found.project, found.layout, root)}


def test_a_file_passed_alone_has_the_name_a_run_on_the_tree_gives_it(tmp_path: Path) -> None:
    # a setup.cfg (linter settings) inside the package chain makes `tracing/` the root a run on
    # the one file finds; the name still follows the package chain up to `backend/`
    root = tmp_path / "repo"
    write_tree(
        root,
        {
            "pyproject.toml": "",
            "backend/pkg/__init__.py": "",
            "backend/pkg/tracing/__init__.py": "",
            "backend/pkg/tracing/setup.cfg": "[flake8]\n",
            "backend/pkg/tracing/framework/__init__.py": "",
            "backend/pkg/tracing/framework/scope.py": "import pkg.tracing.framework\n",
            "backend/pkg/tracing/framework/context.py": "",
            "backend/scripts/seed.py": "",
        },
    )
    whole = names(root)
    scope = "backend/pkg/tracing/framework/scope.py"
    assert whole[scope] == "pkg.tracing.framework.scope"
    one = names(root, scope)
    assert one[scope] == whole[scope]
    assert one["backend/pkg/tracing/framework/context.py"] == "pkg.tracing.framework.context"
    # from inside the tree, and for a directory, the same
    assert names(root, "backend/pkg/tracing")[scope] == whole[scope]
    # the files outside any package are named from the nearest project marker
    assert whole["backend/scripts/seed.py"] == "backend.scripts.seed"
    (root / "backend" / "pyproject.toml").write_text("")
    assert names(root)["backend/scripts/seed.py"] == "scripts.seed"
    assert names(root, "backend/scripts/seed.py")["backend/scripts/seed.py"] == "scripts.seed"


def test_the_package_chain_above_the_root_is_recorded_for_replay(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_tree(
        root,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/pyproject.toml": "",
            "pkg/sub/mod.py": "",
        },
    )
    found = discover([root / "pkg" / "sub" / "mod.py"])
    assert found.root == root / "pkg" / "sub"
    assert found.layout is not None
    assert module_names_at(root / "pkg" / "sub" / "mod.py", found.layout)[0] == "pkg.sub.mod"
    assert root / "pkg" / "__init__.py" in found.inputs
    assert root / "__init__.py" in found.inputs  # where the chain was found to end


def test_import_roots_claiming_one_name_are_split_into_scopes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    files = {
        "pyproject.toml": "",
        "app/__init__.py": "",
        "app/db.py": "",
        "tests/test_app.py": "",
        "examples/one/app/__init__.py": "",
        "examples/one/app/db.py": "",
        "examples/one/run.py": "",
        "examples/two/app/__init__.py": "",
        "examples/two/app/db.py": "",
        "examples/three/main.py": "",  # no package of its own: it uses the root's `app`
        "services/api/pyproject.toml": "",
        "services/api/src/app/__init__.py": "",
        "services/api/src/app/db.py": "",
        "services/api/scripts/seed.py": "",
    }
    write_tree(root, files)
    found = discover([root])
    assert found.layout is not None
    scopes = split_scopes(found.project, found.layout)
    by_scope = {
        os.path.relpath(scope.layout.scope, root) if scope.layout.scope else "": sorted(
            job.path for job in _jobs_for(scope.files, scope.layout, root)
        )
        for scope in scopes
    }
    assert by_scope == {
        "": [
            "app/__init__.py",
            "app/db.py",
            "examples/three/main.py",
            "tests/test_app.py",
        ],
        "examples/one": [
            "examples/one/app/__init__.py",
            "examples/one/app/db.py",
            "examples/one/run.py",
        ],
        "examples/two": ["examples/two/app/__init__.py", "examples/two/app/db.py"],
        "services/api": [
            "services/api/scripts/seed.py",
            "services/api/src/app/__init__.py",
            "services/api/src/app/db.py",
        ],
    }
    named = {
        job.path: job.module
        for scope in scopes
        for job in _jobs_for(scope.files, scope.layout, root)
    }
    assert named["examples/one/run.py"] == "run"  # as `python run.py` in its folder names it
    assert named["examples/one/app/db.py"] == "app.db"
    assert named["services/api/scripts/seed.py"] == "scripts.seed"
    assert named["examples/three/main.py"] == "examples.three.main"
    # without a collision, one scope: the project as before
    shutil.rmtree(root / "examples" / "two")
    shutil.rmtree(root / "examples" / "one")
    shutil.rmtree(root / "services")
    found = discover([root])
    assert found.layout is not None
    assert len(split_scopes(found.project, found.layout)) == 1


def test_a_name_two_files_of_one_scope_claim_resolves_to_neither(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_tree(root, {"pyproject.toml": "", "x.py": "", "src/x.py": "", "pkg.py": ""})
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    jobs = _jobs_for(
        sorted(
            [root / "x.py", root / "src" / "x.py", root / "pkg.py", root / "pkg" / "__init__.py"]
        ),
        Layout(str(root)),
        root,
    )
    paths = _module_paths(jobs)
    assert paths["x"] == []  # `x.py` or `src/x.py`: it depends on how the project runs
    assert paths["src.x"] == ["src/x.py"]  # its alias still names it alone
    assert paths["pkg"][0] == "pkg/__init__.py"  # beside its module, a package wins, as in Python


@pytest.mark.parametrize("unsafe", [False, True])
def test_rewritten_examples_import_and_answer_as_before(tmp_path: Path, unsafe: bool) -> None:
    """Each example runs from its own folder, before and after `depfix apply`: same answers."""
    case = FIXTURES / "DF007" / "examples_claiming_one_module_name" / "before"
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(case, before)
    shutil.copytree(case, after)
    run = run_depfix(after, "apply", "--no-cache", *(["--unsafe"] if unsafe else []), ".")
    assert run.code in (0, 1), run
    assert "0 changed" not in run.err  # example one is rewritten
    for example in ("one", "two", "three"):
        answers = [_answers(tree / "examples" / example, example) for tree in (before, after)]
        assert answers[0] == answers[1], example


def _answers(folder: Path, example: str) -> object:
    paths = ["/", "/me"] if example == "one" else ["/"]
    code = (
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        "from app.main import app\n"
        "with TestClient(app) as client:\n"
        f"    print(json.dumps({{p: client.get(p).json() for p in {paths!r}}}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    process = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, env=env
    )
    assert process.returncode == 0, process.stderr  # a NameError at import would show here
    return json.loads(process.stdout)


def test_verbose_says_which_roots_are_projects_of_their_own_and_which_names_are_claimed_twice(
    tmp_path: Path,
) -> None:
    shutil.copytree(
        FIXTURES / "DF001" / "monorepo_services_one_module_name" / "before", tmp_path / "repo"
    )
    root = tmp_path / "repo"
    write_tree(root, {"pyproject.toml": "", "x.py": "", "src/x.py": ""})
    run = run_depfix(root, "check", "--no-cache", "--verbose", "--select", "DF001")
    assert run.code == 1, run
    assert run.err.splitlines()[:4] == [
        "depfix: services/billing/: checked as a project of its own: its module app is also "
        "services/orders/app/__init__.py, of another import root",
        "depfix: services/orders/: checked as a project of its own: its module app is also "
        "services/billing/app/__init__.py, of another import root",
        "depfix: src/x.py: module x is also x.py: what imports it is not resolved to either",
        "depfix: x.py: module x is also src/x.py: what imports it is not resolved to either",
    ]
    assert "project of its own" not in run_depfix(root, "check", "--no-cache").err


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("services/a/app/db.py", ("app.db", ["services.a.app.db"])),
        ("services/a/app/__init__.py", ("app", ["services.a.app"])),
        ("services/a/src/core/x.py", ("core.x", ["src.core.x", "services.a.src.core.x"])),
        ("services/a/run.py", ("run", ["services.a.run"])),
        ("services/a/tools/seed.py", ("tools.seed", ["services.a.tools.seed"])),
        ("app/sub/deps.py", ("app.sub.deps", [])),  # a namespace portion inside a package
        ("my-scripts/run.py", ("my-scripts.run", [])),
    ],
)
def test_module_names_from_import_roots(path: str, expected: tuple[str, list[str]]) -> None:
    root = "/repo"
    layout = Layout(
        root,
        packages=frozenset(f"{root}/{p}" for p in ("services/a/app", "services/a/src/core", "app")),
        bases=frozenset({root, f"{root}/services/a"}),
    )
    assert module_names_at(Path(root, path), layout) == expected


PAGER_MAIN = """\
from fastapi import Depends, FastAPI

from app.deps import pager

app = FastAPI()


@app.get("/items")
def list_items(page: dict = Depends(pager)):
    return page
"""


def test_each_example_resolves_its_own_module_of_a_shared_name(tmp_path: Path) -> None:
    """DF012: example one's `Pager` has `__call__`, example two's has not. Resolved in one project,
    `app.deps` was example two's module for both, and example one was reported too."""
    root = tmp_path / "repo"
    write_tree(
        root,
        {
            "pyproject.toml": "",
            "examples/one/app/__init__.py": "",
            "examples/one/app/main.py": PAGER_MAIN,
            "examples/one/app/deps.py": PAGER.replace("def page(", "def __call__("),
            "examples/two/app/__init__.py": "",
            "examples/two/app/main.py": PAGER_MAIN,
            "examples/two/app/deps.py": PAGER,
        },
    )
    run = run_depfix(root, "check", "--no-cache", "--quiet", "--select", "DF012")
    assert run.code == 1, run
    assert run.out == (
        "examples/two/app/main.py:9:29: DF012 Depends receives a `Pager` instance, which has no "
        "`__call__`: FastAPI fails at startup (no fix: pass a function or a class; which one "
        "depends on what the instance is for)\n"
    )


PAGER = """\
class Pager:
    def __init__(self, size: int) -> None:
        self.size = size

    def page(self, skip: int = 0) -> dict:
        return {"skip": skip, "limit": self.size}


pager = Pager(10)
"""
