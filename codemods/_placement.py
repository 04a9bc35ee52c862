"""Where a new shared module (the `dependencies-module`) goes on disk."""

from __future__ import annotations

from pathlib import PurePosixPath

from depfix.facts import FileFacts


def new_module_path(module: str, anchor: FileFacts) -> str:
    """The display path of a new module `module`, laid out like the project module `anchor`.

    The anchor's path without its module parts is the directory its top package lives in (the
    project root, or `src/`); the new module goes under it.
    """
    anchor_path = PurePosixPath(anchor.path)
    depth = anchor.module.count(".") + (1 if anchor.is_package else 0)
    base = anchor_path.parents[depth] if depth < len(anchor_path.parents) else PurePosixPath(".")
    path = (base / PurePosixPath(*module.split(".")).with_suffix(".py")).as_posix()
    return path[2:] if path.startswith("./") else path
