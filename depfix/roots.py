"""Where a project starts: the nearest directory holding a pyproject.toml, .git, setup.py or setup.cfg.

Its own module, free of third-party imports, because the replay of an unchanged run needs it before
anything else is imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ROOT_MARKERS = ("pyproject.toml", ".git", "setup.py", "setup.cfg")
CACHE_DIRECTORY = ".depfix_cache"
"""What depfix keeps under a project root (the cache and the replay store); git ignores it."""


def find_project_root(paths: Sequence[Path]) -> Path:
    """The nearest directory above the given paths that holds a pyproject.toml or .git."""
    return root_search(paths)[-1]


def root_search(paths: Sequence[Path]) -> list[Path]:
    """The directories looked at to find the project root, the root last."""
    # os.path.realpath, not Path.resolve(): the latter raises on a symlink loop
    resolved = [Path(os.path.realpath(path)) for path in paths]
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    start = common if common.is_dir() else common.parent
    searched = []
    for candidate in [start, *start.parents]:
        searched.append(candidate)
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return searched
    return [*searched, start]
