"""Which files a run sees: .gitignore files, `exclude` globs, default excludes, symlinks, the root."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Optional

import pytest
from conftest import APP, PYPROJECT, run_depfix, snapshot, write_tree
from hypothesis import given
from hypothesis import strategies as st

from depfix.config import load_settings
from depfix.discovery import Discovery, _in_path_order, discover
from depfix.modules import display_path, relative_posix
from depfix.roots import find_project_root

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def relative(root: Path, paths: list[Path]) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


def make(tmp_path: Path, files: list[str], pyproject: str = PYPROJECT) -> Path:
    root = tmp_path / "project"
    write_tree(root, {"pyproject.toml": pyproject, **{name: "x = 1\n" for name in files}})
    return root


def discover_in(root: Path, *paths: str) -> Discovery:
    settings = load_settings(root)
    return discover([root / path for path in paths] or [root], settings.exclude)


def test_gitignore_files_are_honoured_at_every_level(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            "app/main.py",
            "app/generated.py",
            "app/sub/keep.py",
            "app/sub/local_only.py",
            "app/sub/deeper/local_only.py",
            "scratch/tmp.py",
            "other/local_only.py",
        ],
    )
    (root / ".gitignore").write_text("scratch/\n/app/generated.py\n")
    (root / "app" / "sub" / ".gitignore").write_text("local_only.py\n")
    found = discover_in(root)
    assert relative(root, found.targets) == [
        "app/main.py",
        "app/sub/keep.py",
        "other/local_only.py",
    ]
    assert found.project == found.targets
    assert found.problems == []
    # walking only a subdirectory still applies the .gitignore files above it
    assert relative(root, discover_in(root, "app/sub").targets) == ["app/sub/keep.py"]


def test_exclude_globs_from_configuration(tmp_path: Path) -> None:
    pyproject = PYPROJECT + 'exclude = ["migrations/", "*_pb2.py", "/tools/gen.py"]\n'
    root = make(
        tmp_path,
        [
            "app/main.py",
            "app/migrations/0001.py",
            "app/api_pb2.py",
            "tools/gen.py",
            "app/tools/gen.py",
        ],
        pyproject,
    )
    found = discover_in(root)
    assert relative(root, found.targets) == ["app/main.py", "app/tools/gen.py"]
    assert relative(root, found.project) == ["app/main.py", "app/tools/gen.py"]
    # an excluded file passed by name (as pre-commit does) is still excluded
    assert discover_in(root, "app/api_pb2.py").targets == []


def test_default_excludes(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            "app/main.py",
            ".venv/lib/site.py",
            "venv/lib/site.py",
            "env311/lib/site.py",
            "build/lib/app/main.py",
            "dist/x.py",
            "node_modules/pkg/x.py",
            "app/__pycache__/main.py",
            "demo.egg-info/x.py",
            ".git/hooks/x.py",
            ".tox/py311/x.py",
            "app/notes.txt",
        ],
    )
    (root / "env311" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert relative(root, discover_in(root).targets) == ["app/main.py"]


def skipped(root: Path, found: Discovery) -> list[tuple[str, str]]:
    return [(path.relative_to(root).as_posix(), reason) for path, reason in found.skipped]


def test_directories_named_like_output_are_skipped_only_when_they_are_not_source(
    tmp_path: Path,
) -> None:
    root = make(
        tmp_path,
        [
            "app/__init__.py",
            "app/features/__init__.py",
            "app/features/build/__init__.py",
            "app/features/build/routes.py",
            "app/dist/views.py",  # no __init__.py of its own: a namespace portion of `app`
            "app/venv/__init__.py",
            "app/site-packages/x.py",
            "app/node_modules/x.py",
            "build/lib/app/main.py",
            "build/lib.linux-x86_64-cpython-311/app/main.py",
            "dist/x.py",
            ".venv/lib/site.py",
            "venv/x.py",
        ],
    )
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    found = discover_in(root)
    assert relative(root, found.targets) == [
        "app/__init__.py",
        "app/dist/views.py",
        "app/features/__init__.py",
        "app/features/build/__init__.py",
        "app/features/build/routes.py",
        "app/venv/__init__.py",
    ]
    assert skipped(root, found) == [
        (".venv", "skipped: a virtualenv (it holds lib/)"),
        ("app/dist", "checked although named like build output: it is part of a Python package"),
        (
            "app/features/build",
            "checked although named like build output: it is part of a Python package",
        ),
        ("app/venv", "checked although named like a virtualenv: it is part of a Python package"),
        ("build", "skipped: build output (a setuptools build tree: lib/)"),
        (
            "dist",
            "skipped: named like build output, not a Python package, and no .gitignore says "
            "otherwise",
        ),
        ("venv", "skipped: a virtualenv (pyvenv.cfg)"),
    ]
    # what decided it is recorded, so that a replay notices a change
    assert root / "dist" in found.inputs
    assert root / "dist" / "__init__.py" in found.inputs


def test_gitignore_decides_for_output_directories_that_are_not_packages(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            "app/__init__.py",
            "app/build/__init__.py",
            "app/build/routes.py",
            "app/build/generated.py",
            "build/x.py",
            "dist/tools/release.py",
            "tools/build/make.py",
        ],
    )
    (root / ".gitignore").write_text("build/\n")
    (root / "app" / "build" / ".gitignore").write_text("generated.py\n")
    found = discover_in(root)
    # the package is checked although `build/` matches it (git ignores only untracked files), and
    # the .gitignore files inside it still apply; `dist/` is not ignored: git tracks it
    assert relative(root, found.targets) == [
        "app/__init__.py",
        "app/build/__init__.py",
        "app/build/routes.py",
        "dist/tools/release.py",
    ]
    assert skipped(root, found) == [
        (
            "app/build",
            "checked although named like build output: it is part of a Python package (a "
            ".gitignore pattern matches it, but git ignores only untracked files)",
        ),
        ("build", "skipped: ignored by .gitignore"),
        (
            "dist",
            "checked although named like build output: no .gitignore of the project ignores it",
        ),
        ("tools/build", "skipped: ignored by .gitignore"),
    ]
    # configured excludes win over everything
    pyproject = PYPROJECT + 'exclude = ["app/build/"]\n'
    (root / "pyproject.toml").write_text(pyproject)
    assert "app/build/routes.py" not in relative(root, discover_in(root).targets)


def test_verbose_says_what_was_skipped_and_why(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_tree(
        root,
        {
            "pyproject.toml": PYPROJECT,
            "app/__init__.py": "",
            "app/build/__init__.py": "",
            "app/build/main.py": APP,
            "build/lib/app/main.py": APP,
        },
    )
    quiet = run_depfix(root, "check", "--no-cache")
    assert quiet.code == 1, quiet
    assert "app/build/main.py:11:" in quiet.out  # the package's route is checked
    assert "build/lib" not in quiet.out
    assert "skipped" not in quiet.err
    verbose = run_depfix(root, "check", "--no-cache", "--verbose")
    assert verbose.code == 1, verbose
    assert verbose.err.splitlines()[:2] == [
        "depfix: app/build/: checked although named like build output: it is part of a Python "
        "package",
        "depfix: build/: skipped: build output (a setuptools build tree: lib/)",
    ]


def test_symlink_out_of_the_given_paths_is_reported_and_not_followed(tmp_path: Path) -> None:
    root = make(tmp_path, ["app/main.py"])
    outside = tmp_path / "elsewhere"
    write_tree(outside, {"secret.py": "x = 1\n", "pkg/inner.py": "x = 1\n"})
    (root / "app" / "secret.py").symlink_to(outside / "secret.py")
    (root / "app" / "pkg").symlink_to(outside / "pkg", target_is_directory=True)
    found = discover_in(root)
    assert relative(root, found.targets) == ["app/main.py"]
    assert relative(root, found.project) == ["app/main.py"]
    assert [(path.relative_to(root).as_posix(), message) for path, message in found.problems] == [
        ("app/pkg", "symlink points outside the given paths; not followed"),
        ("app/secret.py", "symlink points outside the given paths; not followed"),
    ]


def test_symlink_inside_the_given_paths_is_visited_once_under_its_own_name(tmp_path: Path) -> None:
    root = make(tmp_path, ["app/main.py", "lib/util.py"])
    (root / "app" / "alias.py").symlink_to(root / "app" / "main.py")
    (root / "app" / "lib").symlink_to(root / "lib", target_is_directory=True)
    found = discover_in(root)
    assert relative(root, found.targets) == ["app/main.py", "lib/util.py"]
    assert found.problems == []


def test_symlink_loops_do_not_hang(tmp_path: Path) -> None:
    root = make(tmp_path, ["app/main.py"])
    (root / "app" / "self").symlink_to(root / "app", target_is_directory=True)
    (root / "app" / "up").symlink_to(root, target_is_directory=True)
    (root / "app" / "a.py").symlink_to(root / "app" / "b.py")
    (root / "app" / "b.py").symlink_to(root / "app" / "a.py")
    results: list[Discovery] = []
    worker = threading.Thread(target=lambda: results.append(discover_in(root)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "discovery did not finish: a symlink loop was followed"
    assert relative(root, results[0].targets) == ["app/main.py"]
    assert find_project_root([root / "app" / "a.py"]) == root
    assert find_project_root([root / "app" / "self"]) == root


def test_cli_reports_a_symlink_loop_passed_by_name(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_tree(root, {"pyproject.toml": PYPROJECT, "app/main.py": APP})
    (root / "app" / "a.py").symlink_to("b.py")
    (root / "app" / "b.py").symlink_to("a.py")
    run = run_depfix(root, "check", "app/a.py", "app/main.py")
    assert run.code == 3, run
    assert "internal error" not in run.err
    assert (
        "app/a.py: error: symlink points outside the given paths; not followed"
        in run.err.splitlines()
    )


def test_targets_are_sorted_and_deduplicated(tmp_path: Path) -> None:
    names = ["b/z.py", "b/a.py", "a/m.py", "a/sub/b.py", "c.py"]
    root = make(tmp_path, names)
    found = discover_in(root, "b", "a/sub/b.py", ".", "a", "b/z.py", "a/sub")
    assert relative(root, found.targets) == sorted(names)
    assert found.targets == discover_in(root).targets


def test_a_single_file_sees_the_whole_project_for_the_index(tmp_path: Path) -> None:
    root = make(tmp_path, ["core/deps.py", "web/api.py", "web/ignored.py", "build/lib/x.py"])
    (root / ".gitignore").write_text("ignored.py\n")
    found = discover_in(root, "web/api.py")
    assert found.root == root
    assert relative(root, found.targets) == ["web/api.py"]
    assert relative(root, found.project) == ["core/deps.py", "web/api.py"]


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git", "setup.cfg"])
def test_project_root_is_the_nearest_marked_directory(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "outer" / "repo"
    deep = root / "src" / "pkg" / "mod.py"
    write_tree(deep.parent, {"mod.py": "x = 1\n"})
    if marker == ".git":
        (root / ".git").mkdir()
    else:
        (root / marker).write_text("")
    assert find_project_root([deep]) == root
    assert find_project_root([root / "src" / "pkg", deep]) == root
    write_tree(root / "src", {"pyproject.toml": ""})  # a nearer marker wins
    assert find_project_root([deep]) == root / "src"


def test_without_markers_the_root_is_the_common_directory(tmp_path: Path) -> None:
    markers = ("pyproject.toml", ".git", "setup.py", "setup.cfg")
    if any((parent / marker).exists() for parent in tmp_path.parents for marker in markers):
        pytest.skip("a directory above the temporary directory holds a project marker")
    write_tree(tmp_path / "loose", {"a/x.py": "", "b/y.py": ""})
    assert (
        find_project_root([tmp_path / "loose" / "a" / "x.py", tmp_path / "loose" / "b"])
        == tmp_path / "loose"
    )
    assert find_project_root([tmp_path / "loose" / "a" / "x.py"]) == tmp_path / "loose" / "a"


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root can list any directory")
def test_unreadable_directory_is_a_problem(tmp_path: Path) -> None:
    root = make(tmp_path, ["app/main.py", "locked/x.py"])
    (root / "locked").chmod(0)
    try:
        found = discover_in(root)
    finally:
        (root / "locked").chmod(0o755)
    assert relative(root, found.targets) == ["app/main.py"]
    assert [path.name for path, _ in found.problems] == ["locked"]


def test_cli_never_reads_or_writes_through_an_outside_symlink(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_tree(root, {"pyproject.toml": PYPROJECT, "app/main.py": APP})
    outside = write_tree(
        tmp_path / "elsewhere", {"fixable.py": APP, "undecodable.py": b"x = '\xff'\n"}
    )
    (root / "app" / "fixable.py").symlink_to(outside / "fixable.py")
    (root / "app" / "undecodable.py").symlink_to(outside / "undecodable.py")
    before = snapshot(outside)
    run = run_depfix(root, "apply", "--format", "json")
    assert run.code == 3, run
    document = json.loads(run.stdout)
    assert [d["path"] for d in document["diagnostics"]] == ["app/main.py"]
    assert document["errors"] == [
        {
            "path": path,
            "line": None,
            "column": None,
            "message": "symlink points outside the given paths; not followed",
        }
        for path in ("app/fixable.py", "app/undecodable.py")
    ]
    assert snapshot(outside) == before
    assert (root / "app" / "fixable.py").is_symlink()


def test_a_nested_gitignore_can_re_include_what_a_parent_ignores(tmp_path: Path) -> None:
    root = make(tmp_path, ["app/keep_gen.py", "app/drop_gen.py", "top_gen.py", "app/main.py"])
    (root / ".gitignore").write_text("*_gen.py\n")
    (root / "app" / ".gitignore").write_text("!keep_gen.py\n")
    assert relative(root, discover_in(root).targets) == ["app/keep_gen.py", "app/main.py"]
    (root / "app" / "sub").mkdir()
    (root / "app" / "sub" / ".gitignore").write_text("main.py\n")
    write_tree(root, {"app/sub/main.py": "", "app/sub/keep_gen.py": ""})
    assert relative(root, discover_in(root, "app").targets) == [
        "app/keep_gen.py",
        "app/main.py",
        "app/sub/keep_gen.py",
    ]


_PARTS = st.sampled_from(["a", "b", "ab", ".", "..", "x..y", "c.py", "__init__.py"])


def _path(absolute: bool) -> st.SearchStrategy[Path]:
    return st.lists(_PARTS, max_size=5).map(
        lambda parts: Path("/" if absolute else ".", *parts) if absolute or parts else Path(".")
    )


@given(st.booleans().flatmap(lambda a: st.tuples(_path(a), _path(a))))
def test_paths_by_string_prefix_agree_with_pathlib_and_relpath(pair: tuple[Path, Path]) -> None:
    path, base = pair
    assert relative_posix(path, base) == _relative_to(path, base)
    descendant = base / path.relative_to(path.anchor) if path.is_absolute() else base / path
    for candidate in (path, descendant):
        shown = os.path.relpath(candidate, base).replace(os.sep, "/")
        assert display_path(candidate, base) == shown
        assert relative_posix(candidate, base) == _relative_to(candidate, base)


def _relative_to(path: Path, base: Path) -> Optional[str]:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return None


@given(st.sets(_path(True).map(lambda p: Path(os.path.normpath(p))), max_size=12))
def test_paths_are_listed_in_the_order_pathlib_sorts_them(paths: set[Path]) -> None:
    # names holding '-' or '.', which sort before '/', and a capital: where str order would differ
    paths |= {Path("/a-b/c"), Path("/a/b"), Path("/a.b"), Path("/A/b")}
    assert _in_path_order(paths) == sorted(paths)
