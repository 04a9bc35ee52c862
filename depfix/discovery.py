"""Which files a run looks at: the ones it may change, and the whole project the index must see.

Directories are walked honouring every `.gitignore` on the way and the configured `exclude` globs
(gitignore syntax, relative to the project root), skipping virtualenvs and build output. Symlinks are
never followed: one that points outside the given paths is reported, one inside is skipped (its target
is visited under its own name).

Build output is recognised by what a directory is, not by its name alone: `build`, `dist`, `venv` and
`.venv` are skipped unless they are source, that is a Python package (an `__init__.py` in it or in
the directory holding it: `app/features/build/` is part of `app.features`), or a directory that the
project's `.gitignore` files do not ignore (git tracks it) and that does not hold a setuptools build
tree (`lib/`, `bdist.*`) or a virtualenv. Version-control, cache, `site-packages` and
`node_modules` directories and virtualenvs (`pyvenv.cfg`) are always skipped. `Discovery.skipped`
says what was skipped, or kept although named like output, and why (`--verbose` prints it).

The walk also records where module names start from (`depfix.modules.Layout`): the directories
holding an `__init__.py` or a project marker, and the package chain above the project root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pathspec

from depfix.modules import Layout, relative_posix
from depfix.roots import ROOT_MARKERS, root_search

_Spec = pathspec.GitIgnoreSpec

DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".tox",
    ".nox",
    ".eggs",
    "*.egg-info",
    "node_modules",
    "site-packages",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".depfix_cache",
)
"""Never source, whatever they hold."""

OUTPUT_DIRECTORIES = frozenset({"build", "dist", "venv", ".venv"})
"""Named like build output or a virtualenv: skipped unless they are source (see the docstring)."""

_BUILD_TREE = ("lib.", "bdist.", "temp.", "scripts-")
"""Entries of a setuptools `build/` directory besides `lib` (`lib.linux-x86_64-cpython-311`, ...)."""
_VIRTUALENV_TREE = frozenset({"bin", "Scripts", "lib", "Lib", "include", "Include", "conda-meta"})
"""Entries of an environment without `pyvenv.cfg` (an old virtualenv, conda)."""


@dataclass
class Discovery:
    root: Path
    targets: list[Path] = field(default_factory=list)
    """Files the run reports on and may change, sorted and de-duplicated (absolute)."""
    project: list[Path] = field(default_factory=list)
    """Every Python file of the project, for the index (absolute, sorted)."""
    problems: list[tuple[Path, str]] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    """What else decided these lists: the directories listed, the .gitignore and virtualenv marker
    files looked for, and the places searched for the project root (present or not)."""
    layout: Optional[Layout] = None
    """Where the module names of these files start from (`depfix.modules`)."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Directories named like build output or virtualenvs: skipped, or kept as source, and why."""


def _is_virtualenv(directory: Path) -> bool:
    return (directory / VIRTUALENV_MARKER).is_file()


VIRTUALENV_MARKER = "pyvenv.cfg"


class _Walker:
    def __init__(self, root: Path, exclude: Sequence[str]) -> None:
        self.root = root
        self.exclude = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_EXCLUDES, *exclude])
        self.user_exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude))
        self.problems: list[tuple[Path, str]] = []
        self.inputs: list[Path] = []
        self.skipped: set[tuple[Path, str]] = set()
        self.packages: set[str] = set()
        self.markers: set[str] = set()

    def relative(self, path: Path) -> Optional[str]:
        return relative_posix(path, self.root)

    def excluded(self, path: Path, is_dir: bool, ignores: list[tuple[Path, _Spec]]) -> bool:
        return self.configured(path, is_dir) or self.gitignored(path, is_dir, ignores)

    def configured(self, path: Path, is_dir: bool) -> bool:
        """Whether the default excludes or the configured `exclude` globs skip `path`."""
        relative = self.relative(path)
        if relative is not None:
            candidate = relative + "/" if is_dir else relative
            if self.exclude.match_file(candidate):
                return True
        return False

    def gitignored(self, path: Path, is_dir: bool, ignores: list[tuple[Path, _Spec]]) -> bool:
        # as git does: the deepest .gitignore with a matching pattern decides, so that a nested
        # `!pattern` re-includes what a parent ignores (within one file the last match wins)
        for base, spec in reversed(ignores):
            inner = relative_posix(path, base)
            if inner is None:
                continue
            verdict: Optional[bool] = spec.check_file(inner + "/" if is_dir else inner).include
            if verdict is not None:
                return verdict
        return False

    def gitignores(self, directory: Path) -> list[tuple[Path, _Spec]]:
        """The .gitignore files that apply inside `directory`, from the project root down."""
        found = []
        chain = [directory, *directory.parents]
        for candidate in reversed(chain):
            if candidate != self.root and self.root not in candidate.parents:
                continue
            ignore = candidate / ".gitignore"
            self.inputs.append(ignore)
            if ignore.is_file():
                found.append((candidate, self._load(ignore)))
        return found

    def _load(self, ignore: Path) -> _Spec:
        try:
            lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        return pathspec.GitIgnoreSpec.from_lines(lines)

    def walk(self, top: Path, inside: Sequence[Path], report: bool = True) -> Iterator[Path]:
        """Python files below `top`; `inside` are the trees symlinks may point into.

        With `report`, unreadable directories and symlinks out of `inside` become problems.
        """
        ignores = self.gitignores(top)
        stack: list[tuple[Path, list[tuple[Path, _Spec]]]] = [(top, ignores)]
        while stack:
            directory, active = stack.pop()
            self.inputs.append(directory)
            try:
                entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
            except OSError as error:
                if report:
                    message = f"cannot list directory: {error.strerror or error}"
                    self.problems.append((directory, message))
                continue
            children = []
            names = {entry.name for entry in entries}
            in_package = "__init__.py" in names
            if in_package:
                self.packages.add(str(directory))
            if not names.isdisjoint(ROOT_MARKERS):
                self.markers.add(str(directory))
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    if report:
                        self._symlink(path, inside)
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                if self.configured(path, is_dir):
                    continue
                output = is_dir and entry.name in OUTPUT_DIRECTORIES
                ignored = self.gitignored(path, is_dir, active)
                if ignored and not output:
                    continue
                if is_dir:
                    self.inputs.append(path / VIRTUALENV_MARKER)
                    if _is_virtualenv(path):
                        self.skipped.add((path, f"skipped: a virtualenv ({VIRTUALENV_MARKER})"))
                        continue
                    if output:
                        skipped, reason = self._output(path, in_package, active, ignored)
                        self.skipped.add((path, reason))
                        if skipped:
                            continue
                    # a package kept although ignored: the pattern that matched it would match
                    # everything in it, so only the .gitignore files inside it apply there
                    nested = [] if ignored else active
                    self.inputs.append(path / ".gitignore")
                    if (path / ".gitignore").is_file():
                        nested = [*nested, (path, self._load(path / ".gitignore"))]
                    children.append((path, nested))
                elif entry.name.endswith(".py"):
                    yield path
            stack.extend(reversed(children))

    def _output(
        self, path: Path, in_package: bool, active: list[tuple[Path, _Spec]], ignored: bool
    ) -> tuple[bool, str]:
        """Whether a directory named like output is skipped, and why.

        A Python package is checked even when a .gitignore pattern matches it (`build/` of a
        template): git ignores only untracked files, and a source package is tracked.
        """
        venv = "venv" in path.name
        named = f"named like {'a virtualenv' if venv else 'build output'}"
        despite = " (a .gitignore pattern matches it, but git ignores only untracked files)"
        if in_package:
            return False, f"checked although {named}: it is part of a Python package" + (
                despite if ignored else ""
            )
        self.inputs.append(path / "__init__.py")
        if (path / "__init__.py").is_file():
            return False, f"checked although {named}: it is a Python package" + (
                despite if ignored else ""
            )
        if ignored:
            return True, "skipped: ignored by .gitignore"
        self.inputs.append(path)  # listed: what it holds decides
        try:
            entries = sorted(os.listdir(path))
        except OSError:
            entries = []
        if venv:
            found = [e for e in entries if e in _VIRTUALENV_TREE]
            if found:
                return True, f"skipped: a virtualenv (it holds {found[0]}/)"
        else:
            found = [e for e in entries if e == "lib" or e.startswith(_BUILD_TREE)]
            if found:
                return True, f"skipped: build output (a setuptools build tree: {found[0]}/)"
        if not active:
            return True, f"skipped: {named}, not a Python package, and no .gitignore says otherwise"
        return False, f"checked although {named}: no .gitignore of the project ignores it"

    def _symlink(self, path: Path, inside: Sequence[Path]) -> None:
        if not path.name.endswith(".py") and not path.is_dir():
            return
        target = Path(os.path.realpath(path))
        if not any(target == tree or tree in target.parents for tree in inside):
            self.problems.append((path, "symlink points outside the given paths; not followed"))


def discover(
    paths: Sequence[Path], exclude: Sequence[str] = (), root: Optional[Path] = None
) -> Discovery:
    """Find the files to check under `paths` and the project files the index covers."""
    absolute = [Path(os.path.abspath(path)) for path in paths]
    searched = root_search(absolute)
    root = root or searched[-1]
    walker = _Walker(root, exclude)
    walker.inputs.extend(absolute)
    walker.inputs.extend(place / marker for place in searched for marker in ROOT_MARKERS)
    resolved_trees = [Path(os.path.realpath(path)) for path in absolute]
    targets: set[Path] = set()
    walked: set[Path] = set()
    for path in absolute:
        if path.is_symlink():
            walker._symlink(path, [Path(os.path.realpath(p)) for p in absolute if p != path])
            continue
        if path.is_dir():
            targets.update(walker.walk(path, resolved_trees))
            walked.add(path)
        elif not _explicitly_excluded(walker, path):
            targets.add(path)
    project: set[Path] = set(targets)
    if root.is_dir() and root not in walked:  # `depfix check .` at the root: walked already
        project.update(walker.walk(root, [root], report=False))
    walker.problems = sorted(set(walker.problems))
    packages = walker.packages | {
        str(path.parent) for path in targets if path.name == "__init__.py"
    }
    above = root
    while str(above) in packages and above.parent != above:  # the package chain goes on up
        above = above.parent
        walker.inputs.append(above / "__init__.py")
        if (above / "__init__.py").is_file():
            packages.add(str(above))
    layout = Layout(
        str(root), frozenset(packages), frozenset(walker.markers | {str(root)}) - packages
    )
    return Discovery(
        root=root,
        targets=_in_path_order(targets),
        project=_in_path_order(project),
        problems=walker.problems,
        inputs=_in_path_order(set(walker.inputs)),
        layout=layout,
        skipped=sorted(walker.skipped),
    )


def _in_path_order(paths: set[Path]) -> list[Path]:
    """`sorted(paths)`, with each path's parts taken once instead of at every comparison."""
    if os.name == "posix":  # absolute POSIX paths order by their parts, case-sensitively
        return sorted(paths, key=lambda path: path.parts)
    return sorted(paths)


def _explicitly_excluded(walker: _Walker, path: Path) -> bool:
    relative = walker.relative(path)
    return relative is not None and walker.user_exclude.match_file(relative)
