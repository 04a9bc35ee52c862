"""Module names for the files of a project: flat, `src/` and several-root layouts.

A file inside a regular package (a chain of `__init__.py`) is named from the top of that chain. A file
in a directory without `__init__.py` is named relative to the project root, as an implicit namespace
package would be, and also (as an alias) relative to a `src/` directory. Imports in the project then
resolve whichever way the project runs.

Also the path arithmetic those names start from (a file's path relative to the root, as reports show
it) and the module names an import statement may run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
