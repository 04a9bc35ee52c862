"""Module names for the files of a project: flat, `src/` and several-root layouts.

A file inside a regular package (a chain of `__init__.py`) is named from the top of that chain. A file
in a directory without `__init__.py` is named relative to its import root, as an implicit namespace
package would be, and also (as an alias) relative to a `src/` directory. Imports in the project then
resolve whichever way the project runs.

The import root of a file is found from the file itself, never from the paths a run was given (so
that `depfix check path/to/one/file.py` names it as a run on the whole tree does): the package chain
above it is followed up (past the project root too, while it stays unbroken), and a file outside any
package is named from the nearest directory holding a project marker (`pyproject.toml`, `setup.py`,
`setup.cfg`, `.git`) or the project root. Files of several import roots that claim one module name
(`examples/one/app/db.py` and `examples/two/app/db.py`, each example run from its own folder) are
split into scopes, each checked as its own project (`split_scopes`).

Also the path arithmetic those names start from (a file's path relative to the root, as reports show
it) and the module names an import statement may run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Optional

SOURCE_DIRS = ("src", "lib")


def module_names(relative_path: str, package_dirs: frozenset[str]) -> tuple[str, list[str]]:
    """The module name of a file and its aliases.

    `relative_path` is POSIX-style, relative to the project root; `package_dirs` holds the relative
    directories that contain an `__init__.py`.
    """
    path = PurePosixPath(relative_path)
    parts = list(path.parent.parts)
    leaf = [] if path.stem == "__init__" else [path.stem]
    # The topmost directory with an `__init__.py` above the file starts its package; directories
    # below it without one are namespace portions of that package (`app/sub/deps.py` -> app.sub.deps).
    top = next(
        (depth for depth in range(1, len(parts) + 1) if "/".join(parts[:depth]) in package_dirs),
        None,
    )
    candidates: list[list[str]] = []
    if top is not None:
        candidates.append(parts[top - 1 :] + leaf)
    if parts and parts[0] in SOURCE_DIRS:
        candidates.append(parts[1:] + leaf)
    candidates.append(parts + leaf)
    names: list[str] = []
    for candidate in candidates:
        name = ".".join(candidate)
        if name and name not in names and all(part.isidentifier() for part in candidate):
            names.append(name)
    if not names:
        names.append(".".join(parts + leaf) or path.stem)
    return names[0], names[1:]


@dataclass(frozen=True)
class Layout:
    """What module names are computed from: the project root, the directories that hold an
    `__init__.py` and the directories loose files are named from (absolute paths as strings)."""

    root: str
    packages: frozenset[str] = frozenset()
    bases: frozenset[str] = frozenset()
    """Import roots of files outside any package: directories with a project marker, scope roots."""
    scope: Optional[str] = None
    """The directory of a scope split off the project (`split_scopes`), else None."""

    def with_files(self, files: Iterable[Path]) -> Layout:
        """This layout with the packages that `__init__.py` files among `files` make."""
        found = {os.path.dirname(str(path)) for path in files if path.name == "__init__.py"}
        return self if found <= self.packages else replace(self, packages=self.packages | found)

    def key(self) -> tuple[str, list[str], list[str], Optional[str]]:
        """What a cache key needs of the layout (its packages follow from the files)."""
        return self.root, sorted(self.packages), sorted(self.bases), self.scope


def module_names_at(path: Path, layout: Layout) -> tuple[str, list[str]]:
    """The module name of a project file and its aliases, from where it can be imported."""
    return _names_and_root(str(path), layout)[:2]


def _names_and_root(path: str, layout: Layout) -> tuple[str, list[str], str]:
    """(module name, aliases, import root) of a file; see the module docstring."""
    anchor, packages, top = _anchor(os.path.dirname(path), layout)
    relative = relative_posix(Path(path), Path(anchor)) or os.path.basename(path)
    name, aliases = module_names(relative, packages)
    if anchor != layout.root:  # also as a namespace path from the project root (`services.a.app`)
        from_root = relative_posix(Path(path), Path(layout.root))
        parts = PurePosixPath(from_root).with_suffix("").parts if from_root else ()
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        dotted = ".".join(parts)
        if parts and all(p.isidentifier() for p in parts) and dotted not in (name, *aliases):
            aliases.append(dotted)
    if top is not None:
        import_root = os.path.dirname(top)
    elif name != ".".join(PurePosixPath(relative).with_suffix("").parts):  # named from `src/`
        import_root = os.path.join(anchor, relative.split("/", 1)[0])
    else:
        import_root = anchor
    return name, aliases, import_root


@functools.lru_cache(maxsize=4096)
def _anchor(directory: str, layout: Layout) -> tuple[str, frozenset[str], Optional[str]]:
    """What names the files of `directory`: the directory names are relative to, the packages
    between (relative to it) and the top of the package chain (None outside any package)."""
    root = layout.root
    top: Optional[str] = None
    base: Optional[str] = None
    chain: list[str] = []
    current = directory
    while True:
        if current in layout.packages:
            top = current  # a package: the chain goes on, marker or not (a setup.cfg of linters)
            chain.append(current)
        elif not _within(current, root):  # above the project root only an unbroken chain counts
            break
        elif current in layout.bases or current == root:
            base = current
            break
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    anchor = base if base is not None else (os.path.dirname(top) if top is not None else root)
    packages = frozenset(
        inner
        for package in chain
        if (inner := relative_posix(Path(package), Path(anchor))) not in (None, "", ".")
    )
    return anchor, packages, top


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


@dataclass
class Scope:
    """Files checked as one project, and the layout that names them."""

    layout: Layout
    files: list[Path] = field(default_factory=list)
    collision: Optional[tuple[str, Path]] = None
    """Why a scope was split off: one of its module names and another file that claims it."""


def split_scopes(files: Sequence[Path], layout: Layout) -> list[Scope]:
    """The project's files as one scope, or several when import roots collide.

    Two files of different import roots that claim one module name cannot be one project: an
    import of that name runs the one next to the importer (each example runs from its own folder,
    each service from its own directory). Every import root in such a collision, other than the
    project root itself (and its `src/`), becomes a scope of its own with every file below it; the
    rest stays in the first scope. Within a scope, a file outside any package is named from the
    scope's directory, as it is when run from there.
    """
    roots: dict[str, dict[str, Path]] = {}  # name -> import root -> the first file claiming it
    for path in files:
        name, _, import_root = _names_and_root(str(path), layout)
        roots.setdefault(name, {}).setdefault(import_root, path)
    home = {layout.root, *(os.path.join(layout.root, name) for name in SOURCE_DIRS)}
    why: dict[str, tuple[str, Path]] = {}
    for name, claims in sorted(roots.items()):
        for import_root in sorted(claims) if len(claims) > 1 else ():
            root = import_root
            # a `src/` layout's scope is its distribution: the scripts and tests beside `src/`
            if os.path.basename(root) in SOURCE_DIRS and os.path.dirname(root) in layout.bases:
                root = os.path.dirname(root)
            if root not in home:
                other = next(p for claimed, p in sorted(claims.items()) if claimed != import_root)
                why.setdefault(root, (name, other))
    if not why:
        return [Scope(layout, list(files))]
    split = sorted(why)
    scopes: dict[Optional[str], Scope] = {None: Scope(layout)}
    for directory in split:
        scopes[directory] = Scope(
            replace(layout, bases=layout.bases | {directory}, scope=directory),
            collision=why[directory],
        )
    for path in files:
        owner = max(
            (directory for directory in split if _within(str(path), directory)),
            key=len,
            default=None,
        )
        scopes[owner].files.append(path)
    return [scope for scope in scopes.values() if scope.files]


def imported_names(target: str, names: Sequence[str] = ()) -> list[str]:
    """Every module name `from target import names` may run: `a`, `a.b` and `a.b.x` for
    `from a.b import x` (a name may be a submodule). The prefixes of `target` are listed once."""
    parts = target.split(".")
    found = [".".join(parts[:cut]) for cut in range(1, len(parts) + 1)]
    for name in names:
        if "." in name:
            pieces = name.split(".")
            found.extend(f"{target}.{'.'.join(pieces[:cut])}" for cut in range(1, len(pieces) + 1))
        else:
            found.append(f"{target}.{name}")
    return found


def relative_posix(path: Path, base: Path) -> Optional[str]:
    """`path.relative_to(base).as_posix()`, or None when `path` is not below `base`."""
    below = _strictly_below(str(path), str(base))
    if below is not None:
        return below
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return None


def display_path(path: Path, cwd: Path) -> str:
    """`path` as reports show it: relative to `cwd` (with `..` when outside it), POSIX-style."""
    text, base = str(path), str(cwd)
    if ".." not in text and ".." not in base and text[:1] == base[:1] == "/":
        below = _strictly_below(text, base)  # what `relpath` gives for normalised absolute paths
        if below is not None:
            return below
    try:
        return os.path.relpath(path, cwd).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _strictly_below(text: str, base: str) -> Optional[str]:
    """The rest of `text` after the directory `base`, by string prefix (a run asks it for every
    file; `relative_to` and `relpath` split and compare both paths each time). None when that
    prefix test cannot decide: `relative_to` and `relpath` answer instead."""
    if os.sep != "/" or base.startswith("//"):
        return None
    prefix = base if base.endswith("/") else base + "/"
    if len(text) > len(prefix) and text.startswith(prefix):
        return text[len(prefix) :]
    return None
