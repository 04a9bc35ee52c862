"""The order Python runs modules in (`depfix.import_order`): the steps of a module, the import
cycles that fail and the ones that cannot, and a differential test against a real interpreter."""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from depfix.facts import extract_facts
from depfix.import_order import (
    BIND,
    FROM,
    IMPORT,
    READ,
    cycle_verdicts,
    failing_cycles,
    first_import_failure,
)
from depfix.index import ProjectIndex


def _index(files: dict[str, str]) -> ProjectIndex:
    facts = []
    for path, text in sorted(files.items()):
        parts = path.removesuffix(".py").split("/")
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        text = textwrap.dedent(text)
        facts.append(extract_facts(path, ".".join(parts), is_package, ast.parse(text), text))
    return ProjectIndex(facts)


def _failures(files: dict[str, str]) -> dict[str, str]:
    """Per module that fails when imported first: the message."""
    return {
        failure.entry: failure.describe()
        for verdict in cycle_verdicts(_index(files))
        for failure in verdict.failures
    }


def test_steps_follow_the_top_level_in_order() -> None:
    index = _index(
        {
            "pkg/m.py": """
                from __future__ import annotations
                import os.path
                from typing import TYPE_CHECKING
                from . import sibling as other
                if TYPE_CHECKING:
                    from app import Hidden
                try:
                    from app import x
                except ImportError:
                    x = None
                if __name__ == "__main__":
                    import app.main
                class K(other.Base):
                    import json
                    field: other.Type = other.VALUE
                def f(a: other.T = other.default) -> other.R:
                    return other.inside
            """
        }
    )
    steps = [(s.kind, s.module, s.names, s.bound, s.caught) for s in index.modules["pkg.m"].steps]
    assert steps == [
        (IMPORT, "os.path", (), (), ()),
        (FROM, "typing", ("TYPE_CHECKING",), ("TYPE_CHECKING",), ()),
        (FROM, "pkg", ("sibling",), ("other",), ()),
        (FROM, "app", ("x",), ("x",), ("ImportError",)),
        (BIND, "", ("x",), (), ()),
        (READ, "other", ("Base",), (), ()),
        (IMPORT, "json", (), ("",), ()),  # bound in the class, not the module
        (READ, "other", ("VALUE",), (), ()),  # annotations are not evaluated: future import
        (BIND, "", ("K",), (), ()),
        (READ, "other", ("default",), (), ()),
        (BIND, "", ("f",), (), ()),
    ]


def test_routers_and_dependencies_fail_whichever_is_first() -> None:
    failures = _failures(
        {
            "app/__init__.py": "",
            "app/deps.py": """
                from app.users import User

                def get_user() -> User:
                    return User()
            """,
            "app/users.py": """
                from app.deps import get_user

                class User:
                    pass
            """,
        }
    )
    assert failures == {
        "app.deps": "importing app.deps first fails: app/users.py:2 runs `from app.deps import "
        "get_user` while app.deps is still running its line 2, before its line 4 binds get_user",
        "app.users": "importing app.users first fails: app/deps.py:2 runs `from app.users import "
        "User` while app.users is still running its line 2, before its line 4 binds User",
    }


def test_a_cycle_through_a_package_init_that_cannot_fail() -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/apps/__init__.py": """
            from pkg.apps.auth.routers import router as auth_router
            from pkg.apps.users.routers import router as users_router

            ROUTERS = [auth_router, users_router]
        """,
        "pkg/apps/auth/__init__.py": "",
        "pkg/apps/auth/routers.py": """
            from pkg.apps import users
            from pkg.apps.users.models import User

            router = object()

            def me() -> User:
                return users.routers.current()
        """,
        "pkg/apps/users/__init__.py": "",
        "pkg/apps/users/models.py": "class User:\n    pass\n",
        "pkg/apps/users/routers.py": """
            import pkg.apps

            router = object()

            def current() -> object:
                return pkg.apps.ROUTERS
        """,
    }
    verdicts = cycle_verdicts(_index(files))
    assert [v.members for v in verdicts] == [
        ("pkg.apps", "pkg.apps.auth.routers", "pkg.apps.users.routers")
    ]
    assert not verdicts[0].fails
    assert failing_cycles(_index(files)) == []


def test_a_cycle_that_fails_for_one_entry_only() -> None:
    failures = _failures(
        {
            "app/__init__.py": "",
            "app/a.py": "import app.b\n\nVALUE = 1\n",
            "app/b.py": "from app.a import VALUE\n",
        }
    )
    assert failures == {
        "app.a": "importing app.a first fails: app/b.py:1 runs `from app.a import VALUE` while "
        "app.a is still running its line 1, before its line 3 binds VALUE"
    }


def test_module_attributes_read_in_functions_cannot_fail() -> None:
    files = {
        "app/__init__.py": "",
        "app/a.py": "import app.b\n\ndef f():\n    return app.b.g()\n",
        "app/b.py": "import app.a\n\ndef g():\n    return app.a.f\n",
    }
    verdicts = cycle_verdicts(_index(files))
    assert [v.members for v in verdicts] == [("app.a", "app.b")]
    assert not verdicts[0].fails
    assert not verdicts[0].takes_names


def test_module_attribute_read_while_it_runs_fails() -> None:
    failures = _failures(
        {
            "app/__init__.py": "",
            "app/a.py": "from app import b\n\ndef register(f):\n    return f\n",
            "app/b.py": "from app import a\n\n@a.register\ndef f():\n    pass\n",
        }
    )
    assert failures == {
        "app.a": "importing app.a first fails: app/b.py:3 reads `a.register` while app.a is still "
        "running its line 1, before its line 3 binds register",
    }


def test_a_failure_caught_around_the_import_that_ran_it_is_none() -> None:
    """`from app.b import x` fails inside app.b, but app's `except ImportError` catches it there;
    app.b is dropped from sys.modules and runs again, cleanly, once app has finished."""
    files = {
        "app/__init__.py": """
            try:
                from app.b import VALUE
            except ImportError:
                VALUE = None
            NAME = "app"
        """,
        "app/b.py": "from app import NAME\n\nVALUE = 1\n",
    }
    index = _index(files)
    assert [v.members for v in cycle_verdicts(index)] == [("app", "app.b")]
    assert failing_cycles(index) == []
    assert first_import_failure(index, "app.b") is None
    uncaught = {
        **files,
        "app/__init__.py": files["app/__init__.py"].replace("ImportError", "KeyError"),
    }
    assert set(_failures(uncaught)) == {"app", "app.b"}


def test_type_checking_imports_make_no_cycle() -> None:
    files = {
        "app/__init__.py": "",
        "app/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.b import B\nA = 1\n",
        "app/b.py": "from app.a import A\nB = 1\n",
    }
    assert cycle_verdicts(_index(files)) == []


def test_a_re_export_in_a_package_init() -> None:
    failures = _failures(
        {
            "app/__init__.py": "",
            "app/routers/__init__.py": "from .auth import get_user\nfrom . import users\n",
            "app/routers/auth.py": "from app.routers.users import User\n\ndef get_user():\n    pass\n",
            "app/routers/users.py": "from app.routers import get_user\n\nclass User:\n    pass\n",
        }
    )
    assert set(failures) == {"app.routers", "app.routers.auth", "app.routers.users"}
    assert failures["app.routers.users"] == (
        "importing app.routers.users first fails: app/routers/users.py:1 runs `from app.routers "
        "import get_user` while app.routers is still running its line 1, which binds get_user once it finishes"
    )


# ---- differential: the prediction against a real interpreter ---------------------------------------
MODULES = ("p", "p.a", "p.b", "p.c", "p.s", "p.s.d")
PACKAGES = ("p", "p.s")


def _value(module: str) -> str:
    return "v_" + module.replace(".", "_")


def _statements(rng: random.Random, module: str, counter: list[int]) -> list[str]:
    """A few top-level statements that import other modules in one of many shapes."""
    found: list[str] = []
    for _ in range(rng.randint(1, 3)):
        target = rng.choice([m for m in MODULES if m != module])
        counter[0] += 1
        i = counter[0]
        value = _value(target)
        parent, _, last = target.rpartition(".")
        package = module if module in PACKAGES else module.rpartition(".")[0]
        shape = rng.randrange(15)
        if shape == 0:
            found.append(f"from {target} import {value}")
        elif shape == 1:
            found.append(f"import {target}")
        elif shape == 2:
            found.append(f"import {target} as m{i}\nr{i} = m{i}.{value}")
        elif shape == 3:
            found.append(f"import {target} as m{i}\ndef f{i}():\n    return m{i}.{value}")
        elif shape == 4 and parent:
            found.append(f"from {parent} import {last}")
        elif shape == 5 and parent:
            found.append(f"from {parent} import {last} as m{i}\nr{i} = m{i}.{value}")
        elif shape == 6:
            found.append(
                f"try:\n    from {target} import {value}\nexcept ImportError:\n    {value} = None"
            )
        elif shape == 7:
            found.append(f"if {rng.choice(['True', 'False'])}:\n    from {target} import {value}")
        elif shape == 8:
            found.append(
                f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from {target} import {value}"
            )
        elif shape == 9:
            found.append(f"import {target} as m{i}\n@m{i}.deco\ndef g{i}():\n    pass")
        elif shape == 10:
            found.append(f"import {target}\nr{i} = {target}.{value}")
        elif shape == 11:
            found.append(f"import {target} as m{i}\nclass K{i}:\n    x = m{i}.{value}")
        elif shape == 12:
            found.append(f"import {target} as m{i}\ndef h{i}(x=m{i}.{value}):\n    pass")
        elif shape == 13:
            found.append(
                f"import {target} as m{i}\ntry:\n    r{i} = m{i}.{value}\n"
                f"except AttributeError:\n    r{i} = None"
            )
        elif shape == 14 and parent == package:  # relative, from inside the same package
            found.append(f"from .{last} import {value}\nfrom . import {last} as m{i}")
    return found


def _generate(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    counter = [0]
    files: dict[str, str] = {}
    for module in MODULES:
        definition = f"{_value(module)} = 1\ndef deco(f):\n    return f"
        statements = _statements(rng, module, counter) if rng.random() < 0.8 else []
        statements.insert(rng.randint(0, len(statements)), definition)
        is_package = module in PACKAGES
        path = module.replace(".", "/") + ("/__init__.py" if is_package else ".py")
        files[path] = "\n".join(statements) + "\n"
    return files


DRIVER = """
import os, sys
for module in os.environ.get("PRELOAD", "").split():  # not project modules: shared by every fork
    __import__(module)
for module in sys.argv[1:]:
    child = os.fork()
    if child == 0:
        if "=" in module:  # root=module: the module of another tree
            root, module = module.rsplit("=", 1)
            os.chdir(root)
            sys.path.insert(0, root)
        try:
            __import__(module)
        except (ImportError, AttributeError) as error:
            circular = "circular import" in str(error)
            print(module, type(error).__name__, error, file=sys.stderr)
            os._exit(3 if circular else 4)
        os._exit(0)
    status = os.waitpid(child, 0)[1]
    print(os.waitstatus_to_exitcode(status), module)
"""


def _real_failures(root: Path, modules: tuple[str, ...] = MODULES, preload: str = "") -> set[str]:
    """The modules whose import, first in a fresh interpreter, fails on a circular import."""
    done = subprocess.run(
        [sys.executable, "-B", *(["-S"] if not preload else []), "-c", DRIVER, *modules],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PRELOAD": preload, "PYTHONPATH": ""},
    )
    codes = [line.split(" ", 1) for line in done.stdout.splitlines()]
    assert {code for code, _ in codes} <= {"0", "3"}, done.stderr
    return {module for code, module in codes if code == "3"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a fresh interpreter per import")
@pytest.mark.parametrize("seed", range(int(os.environ.get("IMPORT_ORDER_CASES", "30"))))
def test_prediction_matches_a_real_first_import(seed: int, tmp_path: Path) -> None:
    files = _generate(seed)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    index = _index(files)
    verdicts = cycle_verdicts(index)
    failing_entries = {f.entry for v in verdicts for f in v.failures}
    real = _real_failures(tmp_path)
    for module in MODULES:
        predicted = first_import_failure(index, module)
        assert (predicted is not None) == (module in real), (module, predicted, files)
        # A cycle's own verdict (only its modules run) agrees with the whole simulation: when the
        # first failure is in the module's cycle, the verdict has it; a module the verdict says
        # fails does fail (maybe first in another cycle it imports on the way).
        cycle = next((v.members for v in verdicts if module in v.members), ())
        if predicted is not None and predicted.unfinished in cycle:
            assert module in failing_entries
        if module in failing_entries:
            assert predicted is not None


def test_new_imports_are_refused_only_into_cycles_that_can_fail() -> None:
    """What DF001, DF006 and DF007 ask before adding an import."""
    harmless = {
        "app/__init__.py": "",
        "app/core/__init__.py": 'NAME = "demo"\nfrom app.core.config import settings\n',
        "app/core/config.py": "from app.core import NAME\n\nsettings = NAME\n",
        "app/db.py": "from app.core.config import settings\n\ndef get_db():\n    yield settings\n",
        "app/routers.py": "",
    }
    index = _index(harmless)
    assert [v.members for v in cycle_verdicts(index)] == [("app.core", "app.core.config")]
    assert index.cycle_members() == frozenset()
    assert index.new_import_risk("app.routers", "app.db") is None
    failing = {
        **harmless,
        "app/core/__init__.py": 'from app.core.config import settings\nNAME = "demo"\n',
    }
    index = _index(failing)
    assert index.cycle_members() == frozenset({"app.core", "app.core.config"})
    assert index.new_import_risk("app.routers", "app.db") == (
        "app.db imports app.core, which is in an import cycle (see DF008)"
    )


DF008_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "DF008"
TREES = sorted(path for path in DF008_FIXTURES.glob("*/*") if path.name in ("before", "after"))


def _tree_files(tree: Path) -> dict[str, str]:
    return {
        path.relative_to(tree).as_posix(): path.read_text()
        for path in sorted(tree.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _import_roots(tree: Path) -> list[Path]:
    """Where a fixture tree's packages are imported from: the tree itself, or each folder holding
    a top-level package when there are several (examples that each run from their own folder)."""
    tops = {
        init.parent.parent
        for init in tree.rglob("__init__.py")
        if not (init.parent.parent / "__init__.py").exists()
    }
    return sorted(tops) if len(tops) > 1 else [tree]


@pytest.fixture(scope="module")
def real_tree_failures() -> dict[Path, set[str]]:
    """Per DF008 fixture tree: the modules that fail when imported first (one interpreter that
    has imported FastAPI forks once per module)."""
    pairs = []
    tree_of: dict[Path, Path] = {}
    for tree in TREES:
        for root in _import_roots(tree):
            tree_of[root] = tree
            index = _index(_tree_files(root))
            pairs += [f"{root}={facts.module}" for facts in index.files.values()]
    failing = _real_failures(Path.cwd(), tuple(pairs), preload="fastapi fastapi.security pydantic")
    found: dict[Path, set[str]] = {tree: set() for tree in TREES}
    for pair in failing:
        root, module = pair.rsplit("=", 1)
        found[tree_of[Path(root)]].add(f"{root}={module}")
    return found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a fresh interpreter per import")
@pytest.mark.parametrize("tree", TREES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_fixture_trees_fail_where_predicted(
    tree: Path, real_tree_failures: dict[Path, set[str]]
) -> None:
    """Every DF008 fixture, before and after the fix: the modules that fail when imported first
    are the ones the simulation says, and none fails after a fix."""
    predicted = set()
    for root in _import_roots(tree):
        index = _index(_tree_files(root))
        predicted |= {
            f"{root}={facts.module}"
            for facts in index.files.values()
            if first_import_failure(index, facts.module) is not None
        }
    assert predicted == real_tree_failures[tree]
    if tree.name == "after":
        assert predicted == set()
    elif (tree.parent / "after").is_dir():
        assert predicted, "a fix for a cycle that cannot fail"
