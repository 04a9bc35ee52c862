"""Shared helpers: running the real `depfix` entry point and building small projects on disk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import pytest
from hypothesis import HealthCheck, given, settings

Content = Union[str, bytes]

# Projects run DF005 only, so that rules added later do not change what these tests expect.
PYPROJECT = (
    '[project]\nname = "demo"\nrequires-python = ">=3.9"\n\n[tool.depfix]\nselect = ["DF005"]\n'
)

APP = """\
from fastapi import Depends, FastAPI

app = FastAPI()


def get_db():
    yield 1


@app.get("/")
def read(db=Depends(get_db())):
    return db
"""
APP_FIXED = APP.replace("Depends(get_db())", "Depends(get_db)")
CLEAN = APP_FIXED


@dataclass(frozen=True)
class Run:
    """One finished `python -m depfix` process."""

    code: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def __str__(self) -> str:  # shown by pytest when an assertion on a Run fails
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def run_depfix(cwd: Path, *args: str) -> Run:
    """Run the real entry point (`python -m depfix`) in `cwd`; stdout is a pipe, not a terminal."""
    env = dict(os.environ)
    env["PYTHONSAFEPATH"] = "1"  # the project under test must never shadow depfix's own imports
    env.pop("NO_COLOR", None)
    env.pop(
        "PYTHONDONTWRITEBYTECODE", None
    )  # let start-up use cached bytecode: dozens of runs follow
    process = subprocess.run(
        [sys.executable, "-m", "depfix", *args],
        cwd=cwd,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    return Run(process.returncode, process.stdout, process.stderr)


def write_tree(root: Path, files: Mapping[str, Content]) -> Path:
    """Write `files` (relative path -> text or bytes) under `root`; text is written as UTF-8 as is."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mode of every regular file below `root` (symlinks not followed, .git skipped)."""
    found: dict[str, tuple[bytes, int]] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_symlink():
                continue
            found[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                stat.S_IMODE(path.stat().st_mode),
            )
    return found


@pytest.fixture(autouse=True, scope="session")
def _no_cache() -> Iterator[None]:
    """Runs leave no `.depfix_cache/` in the trees tests compare (tests/test_cache.py turns it on)."""
    previous = os.environ.get("DEPFIX_NO_CACHE")
    os.environ["DEPFIX_NO_CACHE"] = "1"
    yield
    if previous is None:
        del os.environ["DEPFIX_NO_CACHE"]
    else:
        os.environ["DEPFIX_NO_CACHE"] = previous


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Build a project (a pyproject.toml plus `files`) in a fresh directory and return its path."""
    counter = iter(range(1_000_000))

    def build(files: Mapping[str, Content], pyproject: str = PYPROJECT) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        write_tree(root, {"pyproject.toml": pyproject, **files})
        return root

    return build


def run_parallel(*calls: tuple[Path, Sequence[str]]) -> list[Run]:
    """Run independent `depfix` invocations at the same time (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda call: run_depfix(call[0], *call[1]), calls))


def compiles(source: bytes | str) -> bool:
    """Whether Python compiles `source` (its warnings silenced: generated programs have odd ones)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<generated>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    path
    for folder in ("fixtures", "tests", "depfix", "codemods")
    for path in (ROOT / folder).rglob("*.py")
    if "__pycache__" not in path.parts
)
"""Every Python file of this repository: fixtures, tests and the tool's own source."""


def generated_programs(test: Callable[[str], None]) -> Callable[..., None]:
    """`test` over hypothesmith's grammar-based programs that compile, as its `source` argument."""
    import hypothesmith  # not at conftest import: it reads hypothesis's storage, which pytest forbids

    return settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )(given(source=hypothesmith.from_grammar().filter(compiles))(test))
