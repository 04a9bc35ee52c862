"""Module names for the files of a project: flat, `src/` and several-root layouts.

A file inside a regular package (a chain of `__init__.py`) is named from the top of that chain. A file
in a directory without `__init__.py` is named relative to the project root, as an implicit namespace
package would be, and also (as an alias) relative to a `src/` directory. Imports in the project then
resolve whichever way the project runs.
"""

from __future__ import annotations

from pathlib import PurePosixPath

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
