"""The replay of an unchanged run (`depfix.replay`): the stored output only while nothing it read changed.

A replayed run must print exactly what a fresh run would print: after an edit, an added, removed or
ignored file, a configuration change, the replay is not used. Runs that write, or whose inputs changed
too recently to be told apart, are never stored.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from depfix import launch, replay
from depfix.cache import DIRECTORY
from depfix.signing import sign, signing_key
from tests.conftest import APP, PYPROJECT, write_tree

DEPS = """\
def get_db():
    yield 1
"""
ROUTES = """\
from fastapi import APIRouter, Depends

from app.deps import get_db

router = APIRouter()


@router.get("/")
def read(db=Depends(get_db())):
    return db
"""
ALL_RULES = '[project]\nname = "demo"\nrequires-python = ">=3.9"\n'


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPFIX_NO_CACHE", raising=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "project",
        {
            "pyproject.toml": ALL_RULES,
            "app/__init__.py": "",
            "app/deps.py": DEPS,
            "app/routes.py": ROUTES,
            "app/plain.py": "VALUE = 1\n",
        },
    )


class _Launch:
    """`depfix` run in this process through its console-script entry point, output captured."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.cli_calls = 0
        real = launch._cli

        def counting(argv: list[str]) -> int:
            self.cli_calls += 1
            return real(argv)

        monkeypatch.setattr(launch, "_cli", counting)
        monkeypatch.setattr(replay, "RACY_NS", 0)  # nothing here is edited within a clock tick

    def __call__(self, root: Path, *args: str) -> tuple[int, bytes]:
        """Exit code, and stdout and stderr interleaved as written (each line tagged)."""
        buffers = io.BytesIO(), io.BytesIO()
        streams = [io.TextIOWrapper(b, encoding="utf-8", write_through=True) for b in buffers]
        with self.monkeypatch.context() as patch:
            patch.chdir(root)
            patch.setattr(sys, "argv", ["depfix", *args])
            patch.setattr(sys, "stdout", streams[0])
            patch.setattr(sys, "stderr", streams[1])
            time.sleep(0.01)  # inputs written just now are older than the run's start
            code = launch.main()
        return code, buffers[0].getvalue() + b"\n--- stderr\n" + buffers[1].getvalue()


@pytest.fixture
def depfix(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Launch]:
    yield _Launch(monkeypatch)


def _fresh(depfix: _Launch, root: Path, *args: str) -> tuple[int, bytes]:
    code, output = depfix(root, *args, "--no-cache")
    return code, output


def _stored_and_replayed(depfix: _Launch, root: Path, *args: str) -> tuple[int, bytes]:
    """Run a command until it is stored (the first run creates the cache directory), then replay it."""
    first = depfix(root, *args)
    second = depfix(root, *args)
    calls = depfix.cli_calls
    third = depfix(root, *args)
    assert depfix.cli_calls == calls, "the unchanged run was not replayed"
    assert first == second == third
    return third


def _runs_again(depfix: _Launch, root: Path) -> tuple[int, bytes]:
    """Run `check` and assert that it ran (no replay) and reported what an uncached run reports."""
    calls = depfix.cli_calls
    after = depfix(root, "check", ".")
    assert depfix.cli_calls == calls + 1, "a stale output was replayed"
    assert after == _fresh(depfix, root, "check", ".")
    return after


def _edit_provider(root: Path) -> None:
    (root / "app/deps.py").write_text("class get_db:\n    pass\n")


def _same_size_same_mtime(root: Path) -> None:
    path = root / "app/routes.py"
    before = path.stat()
    text = path.read_text()
    edited = text.replace("Depends(get_db())", "Depends(get_db)  ")
    assert len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _add_file(root: Path) -> None:
    (root / "app/more.py").write_text(ROUTES.replace("read", "more"))


def _remove_file(root: Path) -> None:
    (root / "app/routes.py").unlink()


def _ignore_file(root: Path) -> None:
    (root / ".gitignore").write_text("app/routes.py\n")


def _configure(root: Path) -> None:
    (root / "pyproject.toml").write_text(ALL_RULES + '\n[tool.depfix]\nignore = ["DF005"]\n')


def _requirements(root: Path) -> None:
    (root / "requirements.txt").write_text("fastapi==0.100.0\n")


@pytest.mark.parametrize(
    "change",
    [
        _edit_provider,
        _same_size_same_mtime,
        _add_file,
        _remove_file,
        _ignore_file,
        _configure,
        _requirements,
    ],
)
def test_a_changed_input_is_never_replayed(
    depfix: _Launch, tree: Path, change: Callable[[Path], None]
) -> None:
    stored = _stored_and_replayed(depfix, tree, "check", ".")
    assert stored == _fresh(depfix, tree, "check", ".")
    change(tree)
    after = _runs_again(depfix, tree)
    if change is not _requirements:  # the others change what is reported
        assert after != stored


def test_replay_keeps_the_order_of_stdout_and_stderr(depfix: _Launch, tree: Path) -> None:
    (tree / "app/broken.py").write_text("def broken(:\n")
    code, output = _stored_and_replayed(depfix, tree, "apply", "--diff", ".")
    assert code == 3
    assert b"+++ b/app/routes.py" in output and b"app/broken.py:1" in output


def test_each_command_line_has_its_own_entry(depfix: _Launch, tree: Path) -> None:
    text = _stored_and_replayed(depfix, tree, "check", ".")
    as_json = _stored_and_replayed(depfix, tree, "check", "--format", "json", ".")
    assert text != as_json
    assert depfix(tree, "check", ".") == text


def test_a_run_that_writes_is_not_stored(depfix: _Launch, tree: Path) -> None:
    code, _ = depfix(tree, "apply", ".")
    assert code == 1 and "Depends(get_db))" in (tree / "app/routes.py").read_text()
    calls = depfix.cli_calls
    again = depfix(tree, "apply", ".")  # nothing left to fix: this one writes nothing
    assert depfix.cli_calls == calls + 1
    assert again == _fresh(depfix, tree, "apply", ".")
    assert depfix(tree, "apply", ".") == again and depfix.cli_calls == calls + 2


def test_a_run_with_a_job_summary_is_not_stored(depfix: _Launch, tree: Path) -> None:
    summary = tree.parent / "summary.md"
    depfix(tree, "check", "--summary", str(summary), ".")
    calls = depfix.cli_calls
    depfix(tree, "check", "--summary", str(summary), ".")
    assert depfix.cli_calls == calls + 1
    assert summary.read_text().count("depfix") >= 2  # both runs appended their summary


def _stored(root: Path) -> list[Path]:
    """The files of the replay store: one per command line."""
    store = root / DIRECTORY / replay.STORE
    return sorted(store.glob("*.json")) if store.is_dir() else []


def _entry(path: Path) -> dict[str, Any]:
    entry = json.loads(path.read_bytes().partition(b"\n")[2])
    assert isinstance(entry, dict)
    return entry


def _signed(entry: dict[str, Any]) -> bytes:
    key = signing_key()
    assert key is not None
    payload = json.dumps(entry).encode()
    return sign(key, payload).hex().encode() + b"\n" + payload


def test_an_input_changed_just_before_the_run_is_not_stored(
    depfix: _Launch, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "RACY_NS", 2_000_000_000)
    depfix(tree, "check", ".")
    depfix(tree, "check", ".")
    assert _stored(tree) == []
    assert depfix.cli_calls == 2


def test_a_damaged_or_foreign_store_is_ignored(depfix: _Launch, tree: Path) -> None:
    first = _stored_and_replayed(depfix, tree, "check", ".")
    [stored] = _stored(tree)
    entry = _entry(stored)
    forged = {**entry, "output": [[1, "all clean\n"]], "code": 0}
    damages = [
        b"{not json",
        b"",
        stored.read_bytes()[:-10],  # truncated
        json.dumps(forged).encode(),  # unsigned: brought in with a repository
        b"00" * 32 + b"\n" + json.dumps(forged).encode(),  # signed with another key
        _signed({**entry, "output": [[3, "x"]]}),  # no such stream
        _signed({**forged, "command": "another command line"}),  # copied from another name
    ]
    for damage in damages:
        stored.write_bytes(damage)
        calls = depfix.cli_calls
        assert depfix(tree, "check", ".") == first
        assert depfix.cli_calls == calls + 1
    stored.write_bytes(_signed(forged))  # signed with this user's key: trusted (the point of it)
    assert depfix(tree, "check", ".") == (0, b"all clean\n\n--- stderr\n")


def test_only_the_latest_command_lines_are_kept(depfix: _Launch, tree: Path) -> None:
    depfix(tree, "check", ".")  # creates the cache directory: not stored
    for number in range(replay.KEEP + 3):
        depfix(tree, "check", "--select", "DF00", f"--jobs={number + 1}", ".")
    assert len(_stored(tree)) == replay.KEEP
    calls = depfix.cli_calls
    depfix(tree, "check", "--select", "DF00", f"--jobs={replay.KEEP + 3}", ".")
    assert depfix.cli_calls == calls, "the latest command line was not kept"


def test_no_replay_for_a_terminal_or_without_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe = io.StringIO()
    assert replay.applies(["check"], pipe, pipe)
    assert not replay.applies(["check"], Terminal(), pipe)
    assert not replay.applies(["check"], pipe, Terminal())
    assert not replay.applies(["check", "--no-cache"], pipe, pipe)
    monkeypatch.setenv("DEPFIX_NO_CACHE", "1")
    assert not replay.applies(["check"], pipe, pipe)


def _entry_point(root: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEPFIX_NO_CACHE", "NO_COLOR")}
    env["PYTHONSAFEPATH"] = "1"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "depfix", "check", "."],
        cwd=root,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def _without_import_times(stderr: bytes) -> bytes:
    return b"".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(b"import time:")
    )


def test_the_entry_point_replays_without_importing_the_engine(tree: Path) -> None:
    write_tree(tree, {"pyproject.toml": PYPROJECT, "app/main.py": APP})
    _entry_point(tree)  # creates the cache: the project's directory changed just now
    time.sleep(2.1)  # older than the racy window (ctimes cannot be set back)
    stored = _entry_point(tree)
    assert b" libcst" in stored.stderr
    replayed = _entry_point(tree)
    assert b" libcst" not in replayed.stderr and b" typer" not in replayed.stderr
    assert replayed.returncode == stored.returncode == 1
    assert replayed.stdout == stored.stdout and b"DF005" in stored.stdout
    assert _without_import_times(replayed.stderr) == _without_import_times(stored.stderr)


HELPERS = """\
def helper() -> int:
    return 1
"""


@pytest.fixture
def layered(tree: Path) -> Path:
    """The tree with a module the routes import that no rule looks at (indexed, not concerned)."""
    write_tree(
        tree,
        {
            "app/helpers.py": HELPERS,
            "app/routes.py": ROUTES.replace(
                "from app.deps import get_db\n",
                "from app.deps import get_db\nfrom app.helpers import helper\n",
            ),
        },
    )
    return tree


def _append(relative: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / relative
        path.write_text(path.read_text() + text)

    change.__name__ = f"append to {relative}: {text!r}"
    return change


HARMLESS = [
    _append("app/helpers.py", "# a comment\n"),
    _append("app/helpers.py", "\n\n# the body of a function edited below its last line\n"),
    _append("app/plain.py", "OTHER = 2  # not indexed, and it stays out\n"),
    _append("app/plain.py", "# get_db, called directly, never by FastAPI\n"),
    _append("app/deps.py", "# get_db is called, not a dependency: no rule looks here\n"),
    # no rule acts on app/deps.py, so who imports from it cannot matter to a fix there
    _append("app/plain.py", "from app.deps import get_db\n\nVALUE = get_db()\n"),
]
MAY_MATTER = [
    _append("app/helpers.py", "\n\ndef more() -> int:\n    return 2\n"),
    _append("app/helpers.py", "def broken(:\n"),
    _append("app/plain.py", "from fastapi import Depends\n"),
    _append("app/plain.py", "from app.routes import router\n\nVALUE = router\n"),  # rules act there
    _append("app/plain.py", "# `read`, a route, is mentioned here\n"),
    _append("app/routes.py", "# a comment in a file rules ran on\n"),
]


@pytest.mark.parametrize(
    ("change", "harmless"),
    [(change, True) for change in HARMLESS] + [(change, False) for change in MAY_MATTER],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_an_edit_is_replayed_only_when_it_cannot_change_the_result(
    depfix: _Launch, layered: Path, change: Callable[[Path], None], harmless: bool
) -> None:
    stored = _stored_and_replayed(depfix, layered, "check", ".")
    change(layered)
    if not harmless:
        _runs_again(depfix, layered)
        return
    calls = depfix.cli_calls
    assert depfix(layered, "check", ".") == stored
    assert depfix.cli_calls == calls, "the edit was not recognised as harmless"
    assert _fresh(depfix, layered, "check", ".") == stored


def test_an_edit_of_a_dependency_runs_again(depfix: _Launch, tree: Path) -> None:
    write_tree(
        tree,
        {
            "app/routes.py": ROUTES.replace("Depends(get_db())", "Depends(get_db)"),
            "app/deps.py": "def get_db():\n    db = 1\n    yield db\n    print('closed')\n",
        },
    )
    stored = _stored_and_replayed(depfix, tree, "check", ".")
    assert b"app/deps.py:3:5: DF002" in stored[1]
    _append("app/deps.py", "# only a comment, but a rule reports in this file\n")(tree)
    _runs_again(depfix, tree)


def test_an_edit_of_a_dependency_no_gate_admits_is_replayed(depfix: _Launch, tree: Path) -> None:
    """No rule runs on `get_db` (a generator with nothing after its `yield`): while the file's facts
    stay the same, so do the gates' answers, and an edit cannot change the output."""
    write_tree(tree, {"app/routes.py": ROUTES.replace("Depends(get_db())", "Depends(get_db)")})
    stored = _stored_and_replayed(depfix, tree, "check", ".")
    _append("app/deps.py", "# a comment: yield, Depends, asyncio.run\n")(tree)
    calls = depfix.cli_calls
    replayed = depfix(tree, "check", ".")
    assert depfix.cli_calls == calls, "the unchanged output was not replayed"
    assert replayed == stored == _fresh(depfix, tree, "check", ".")


def test_an_edit_that_lets_a_rule_run_on_a_file_runs_again(depfix: _Launch, tree: Path) -> None:
    """A dependency whose gate admits a rule that never ran on it (none of its needles was there:
    `asyncio` is imported under another name) gets one, in a comment."""
    write_tree(
        tree,
        {
            "app/flags.py": (
                "import asyncio as aio\n\n\nasync def work():\n    return 1\n\n\n"
                "def get_flag():\n    return aio.run(work())\n"
            ),
            "app/routes.py": ROUTES.replace(
                "import get_db\n", "import get_db\nfrom app.flags import get_flag\n"
            )
            + "\n\n@router.get('/flag')\ndef flag(value=Depends(get_flag)):\n    return value\n",
        },
    )
    stored = _stored_and_replayed(depfix, tree, "check", ".")
    _append(
        "app/flags.py",
        "# asyncio.run(...) in a comment: the asyncio.run rule now reads this file\n",
    )(tree)
    after = _runs_again(depfix, tree)
    assert b"DF009" not in stored[1] and b"app/flags.py:9:12: DF009" in after[1]


def test_depfix_and_its_libraries_are_inputs(depfix: _Launch, tree: Path) -> None:
    _stored_and_replayed(depfix, tree, "check", ".")
    [stored] = _stored(tree)
    inputs = {path for path, _ in _entry(stored)["inputs"]}
    assert replay.__file__ in inputs
    import libcst

    assert libcst.__file__ in inputs  # an upgrade rewrites it: the next run is not replayed
