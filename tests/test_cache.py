"""The run cache (`.depfix_cache/`) and the lazy index: never a stale or different result.

Cached runs must report exactly what uncached runs report, after any edit anywhere; a damaged cache is a
miss; `--no-cache` writes nothing. The lazy index (only the files that matter to FastAPI, and what they
need) must give the same diagnostics and fixes as the index of every file.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

from depfix import cache as cache_module
from depfix import engine
from depfix.cache import DIRECTORY, FILE, KEEP_RUNS, RUN_FILE, Cache
from depfix.config import Settings
from depfix.engine import RunOptions, RunResult, run
from depfix.rules import FileRule, Rule, registered_rules
from tests.conftest import run_depfix, write_tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ALL_RULES = '[project]\nname = "demo"\nrequires-python = ">=3.9"\n'

PROVIDER_GENERATOR = """\
def get_db():
    yield 1
"""
PROVIDER_CLASS = """\
class get_db:
    def __init__(self) -> None:
        self.value = 1

    def __call__(self) -> int:
        return self.value
"""
ROUTES = """\
from fastapi import APIRouter, Depends

from app.deps import get_db

router = APIRouter()


@router.get("/")
def read(db=Depends(get_db())):
    return db
"""


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPFIX_NO_CACHE", raising=False)


def _age(root: Path, seconds: float = 3600) -> None:
    """Make every file look checked out a while ago (a cache may trust unchanged mtimes)."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)


def _report(root: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = run_depfix(root, "check", "--format", "json", *args, ".")
    assert "Traceback" not in result.err, result
    return result.code, json.loads(result.stdout)


def _codes(report: dict[str, object]) -> list[tuple[str, str]]:
    diagnostics = report["diagnostics"]
    assert isinstance(diagnostics, list)
    return [(d["path"], d["code"]) for d in diagnostics]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = write_tree(
        tmp_path / "p",
        {
            "pyproject.toml": ALL_RULES,
            "app/__init__.py": "",
            "app/deps.py": PROVIDER_GENERATOR,
            "app/routes.py": ROUTES,
        },
    )
    _age(root)
    return root


def test_editing_a_provider_updates_diagnostics_in_the_files_that_use_it(app: Path) -> None:
    code, first = _report(app)
    assert ("app/routes.py", "DF005") in _codes(first), first
    assert (app / DIRECTORY / FILE).is_file()
    assert _report(app) == (code, first)  # warm: the same report

    (app / "app/deps.py").write_text(PROVIDER_CLASS)  # `get_db()` is now an instance: callable
    cached = _report(app)
    uncached = _report(app, "--no-cache")
    assert cached == uncached
    assert ("app/routes.py", "DF005") not in _codes(cached[1]), cached

    (app / "app/deps.py").write_text(PROVIDER_GENERATOR)  # and back
    assert _report(app) == (code, first)


def test_an_edit_that_keeps_the_size_and_the_mtime_is_not_missed(app: Path) -> None:
    """The whole-run entry is keyed by every file's status: the change time catches this edit."""
    deps = app / "app/deps.py"
    first = _report(app)
    assert ("app/routes.py", "DF005") in _codes(first[1]), first
    before = deps.stat()
    same_size = PROVIDER_GENERATOR.replace("    yield 1\n", "    return \n")
    assert len(same_size) == len(PROVIDER_GENERATOR)
    deps.write_text(same_size)  # no longer a generator: `get_db()` is no longer reported as one
    os.utime(deps, ns=(before.st_atime_ns, before.st_mtime_ns))
    cached = _report(app)
    assert cached == _report(app, "--no-cache")
    assert cached != first


def test_a_direct_call_added_in_a_file_without_fastapi_updates_the_fix_grading(
    tmp_path: Path,
) -> None:
    root = write_tree(
        tmp_path / "p",
        {
            "pyproject.toml": ALL_RULES,
            "app/__init__.py": "",
            "app/deps.py": (
                "import httpx\n\n\ndef get_client() -> httpx.Client:\n"
                "    client = httpx.Client()\n    return client\n"
            ),
            "app/main.py": (
                "from fastapi import Depends, FastAPI\n\nfrom app.deps import get_client\n\n"
                'app = FastAPI()\n\n\n@app.get("/")\ndef read(client=Depends(get_client)):\n'
                "    return 1\n"
            ),
            "scripts/job.py": "print(1)\n",
        },
    )
    _age(root)
    _, before = _report(root)
    (root / "scripts/job.py").write_text("from app.deps import get_client\n\nget_client()\n")
    cached = _report(root)
    assert cached == _report(root, "--no-cache")
    assert cached[1] != before  # the DF004 fix is now unsafe: the dependency is called directly


def test_a_corrupt_or_foreign_cache_is_ignored(app: Path) -> None:
    expected = _report(app, "--no-cache")
    directory = app / DIRECTORY
    directory.mkdir()
    for name in (FILE, RUN_FILE):
        cache = directory / name
        for damage in (b"", b"\x00" * 10, b"garbage" * 100):
            (directory / RUN_FILE).unlink(missing_ok=True)
            cache.write_bytes(damage)
            assert _report(app) == expected
        blob = cache.read_bytes()  # a valid cache, truncated
        cache.write_bytes(blob[: len(blob) // 2])
        assert _report(app) == expected
        cache.write_bytes(blob[:32] + blob[33:] + b"x")  # altered after signing
        assert _report(app) == expected


def test_no_cache_writes_nothing(app: Path) -> None:
    _report(app, "--no-cache")
    run_depfix(app, "apply", "--no-cache", "--dry-run", ".")
    assert not (app / DIRECTORY).exists()


def test_the_cache_directory_ignores_itself(app: Path) -> None:
    _report(app)
    assert (app / DIRECTORY / ".gitignore").read_text().splitlines()[-1] == "*"


def _trees() -> list[Path]:
    """The demo app (a mistake of every rule) and a project tree of each cross-file rule: DF001
    providers, DF007 aliases, DF008 moves. Every tree costs several full runs."""
    cases = sorted(p.parent for p in FIXTURES.glob("DF00[17]/*/before/pyproject.toml"))
    first: dict[str, Path] = {}
    for case in cases:
        first.setdefault(case.parent.parent.name, case)
    return [
        FIXTURES / "demo_app",
        *first.values(),
        FIXTURES / "DF008/service_imports_router/before",
    ]


@pytest.mark.parametrize("tree", _trees(), ids=lambda p: p.parent.name + "/" + p.name)
def test_cached_and_uncached_runs_report_the_same(tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(tree, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    _age(root)
    uncached = _report(root, "--no-cache")
    assert _report(root) == uncached  # cold, filling the cache
    assert _report(root) == uncached  # warm
    first = sorted(root.rglob("*.py"))[0]
    first.write_bytes(first.read_bytes() + b"\n# edited\n")
    assert _report(root) == _report(root, "--no-cache")


class _WholeProject(FileRule):
    """Does nothing, but asks for every file in the index: the full index, for comparison."""

    CODE = "DF990"
    NAME = "whole-project"
    SUMMARY = "test rule"
    FIX = "none"
    NEEDLES = (b"\x00never",)
    INDEX_NEEDLES = None


def _run(root: Path, rules: list[Rule]) -> RunResult:
    options = RunOptions(rules=rules, settings=Settings(), apply_fixes=True, unsafe=True)
    return run([root], options, cwd=root)


def _summary(result: RunResult) -> tuple[object, ...]:
    return (
        result.diagnostics,
        result.errors,
        [(c.path, c.new) for c in result.changes],
        result.fixes,
    )


LAZY_RULES: list[Rule] = [rule for rule in registered_rules() if rule.FASTAPI_ONLY]

NOT_MENTIONING_FASTAPI = {
    "app/__init__.py": "",
    "app/params.py": "from fastapi import Query, Depends\n",  # re-exports FastAPI's markers
    "app/db.py": (
        "import httpx\n\n\ndef get_client() -> httpx.Client:\n"
        "    client = httpx.Client()\n    return client\n\n\n"
        "def get_db():\n    yield 1\n    print('closed')\n"
    ),
    "app/base.py": "class Base:\n    def __call__(self) -> int:\n        return 1\n",
    "app/checker.py": "from app.base import Base\n\n\nclass Checker(Base):\n    pass\n",
    "app/query.py": (
        "from app.params import Query\nfrom app.texts import GREETING\n\n\n"
        "def search(q: str = Query(None)) -> str:\n    return q\n"
    ),
    "app/main.py": (
        "from fastapi import Depends, FastAPI\n\nfrom app.checker import Checker\n"
        "from app.db import get_client, get_db\nfrom app.query import search\n\n"
        'app = FastAPI()\n\n\n@app.get("/")\n'
        "def read(client=Depends(get_client), db=Depends(get_db), c=Depends(Checker())):\n"
        "    return 1\n\n\napp.get('/s')(search)\n"
    ),
    "scripts/job.py": "from app.db import get_client\n\nget_client()\n",
    "tests/test_db.py": "from app.db import get_db\n\n\ndef test_db():\n    next(get_db())\n",
    "plain.py": "import os\n\nprint(os.sep)\n",
    "app/texts.py": "GREETING = 'hi'\n",
    "tools/report.py": "from app import texts\n\nprint(texts.GREETING)\n",  # no rule acts there
    "tools/audit.py": "from app import db\n\nprint(db)\n",  # rules act on `app.db`
}


@pytest.mark.parametrize("tree", [*_trees(), None], ids=lambda p: p.name if p else "indirect")
def test_the_lazy_index_gives_the_results_of_the_full_index(
    tree: Path | None, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    if tree is None:
        write_tree(root, {"pyproject.toml": ALL_RULES, **NOT_MENTIONING_FASTAPI})
    else:
        shutil.copytree(tree, root, ignore=shutil.ignore_patterns("__pycache__"))
    lazy = _run(root, LAZY_RULES)
    full = _run(root, [*LAZY_RULES, _WholeProject])
    assert _summary(lazy) == _summary(full)
    if tree is None:  # the files that never mention FastAPI still count
        codes = {(d.path, d.code) for d in lazy.diagnostics}
        assert ("app/query.py", "DF006") in codes, lazy.diagnostics
        assert any(
            d.code == "DF004" and d.fix and d.fix.safety == "unsafe" for d in lazy.diagnostics
        )


def test_the_lazy_index_does_not_parse_files_that_cannot_matter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import depfix.engine as engine

    parsed: list[str] = []
    extract: Callable[..., object] = engine._extract

    def spy(job: engine._Job, data: bytes | None = None) -> object:
        parsed.append(job.path)
        return extract(job, data)

    monkeypatch.setattr(engine, "_extract", spy)
    root = write_tree(tmp_path / "tree", {"pyproject.toml": ALL_RULES, **NOT_MENTIONING_FASTAPI})
    _run(root, LAZY_RULES)
    assert "plain.py" not in parsed
    # a file naming a target module is parsed only when some rule acts on that module
    assert "tools/report.py" not in parsed
    assert "tools/audit.py" in parsed
    assert "app/query.py" in parsed and "app/base.py" in parsed


PAGE_SIZE = """\
from fastapi import Query


def page_size(size: int = Query(10)) -> int:
    return size
"""
USES_PAGE_SIZE = """
from app.limits import page_size


@router.get("/health/page")
def page(size: int = Depends(page_size)) -> int:
    return size
"""
EDITS: list[tuple[str, Callable[[str], str]]] = [
    ("app/services/tasks.py", lambda text: text + "\n# a comment: the facts stay\n"),
    ("app/db.py", lambda text: "\n" + text),  # every position moves
    ("app/limits.py", lambda text: PAGE_SIZE),  # a plain function: nothing to report
    # another file makes it a dependency: its `Query` default is now reported, in app/limits.py
    ("app/routers/health.py", lambda text: text + USES_PAGE_SIZE),
    ("app/routers/health.py", lambda text: text.replace(USES_PAGE_SIZE, "")),
]


def test_a_sequence_of_edits_never_gives_a_stale_result(tmp_path: Path) -> None:
    """Edits that keep an imported module's facts, move its lines, add a module, make its function a
    dependency from another file and take that back: after each one, a run with the cache reports and
    fixes exactly what a run without it does."""
    root = tmp_path / "demo"
    shutil.copytree(FIXTURES / "demo_app", root, ignore=shutil.ignore_patterns("__pycache__"))

    def both() -> tuple[tuple[object, ...], tuple[object, ...]]:
        results = []
        for cache in (True, False):
            options = RunOptions(
                rules=registered_rules(), settings=Settings(), apply_fixes=True, cache=cache
            )
            results.append(_summary(run([root], options, cwd=root)))
        return results[0], results[1]

    cached, uncached = both()
    assert cached == uncached
    for relative, edit in EDITS:
        path = root / relative
        path.write_text(edit(path.read_text() if path.exists() else ""))
        cached, uncached = both()
        assert cached == uncached, relative
        if relative == "app/routers/health.py" and USES_PAGE_SIZE in path.read_text():
            diagnostics = cached[0]
            assert isinstance(diagnostics, list)
            assert any(d.path == "app/limits.py" for d in diagnostics), diagnostics


def test_a_run_on_a_few_files_keeps_what_the_whole_tree_run_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pre-commit run on one file must not evict the entries of the last run on the whole tree."""
    root = tmp_path / "demo"
    shutil.copytree(FIXTURES / "demo_app", root, ignore=shutil.ignore_patterns("__pycache__"))
    options = RunOptions(rules=registered_rules(), settings=Settings(), cache=True, jobs=1)
    whole = _summary(run([root], options, cwd=root))
    run([root / "app" / "routers" / "health.py"], options, cwd=root)

    work: list[str] = []
    for name in ("_extract", "_process"):
        original = getattr(engine, name)

        def counting(*args: object, _original: Callable[..., object] = original) -> object:
            work.append(str(args[0]))
            return _original(*args)

        monkeypatch.setattr(engine, name, counting)
    assert _summary(run([root], options, cwd=root)) == whole
    # only the module the run creates (nothing on disk to key it by) is checked again
    assert [path for path in work if (root / path).exists()] == [], "parsed or checked again"


def _cache_run(root: Path, **entries: object) -> Cache:
    """One run of the cache: read `entries`' keys (a value of None) or store them, then save."""
    cache = Cache(root)
    for key, value in entries.items():
        if value is None:
            cache.get("facts", key)
        else:
            cache.put("facts", key, value)
    cache.save()
    return Cache(root)


def test_an_entry_no_run_used_for_keep_runs_runs_is_dropped(tmp_path: Path) -> None:
    after = _cache_run(tmp_path, old=("kept", 1), recent=("kept", 2))
    for number in range(KEEP_RUNS - 1):
        after = _cache_run(tmp_path, recent=None, **{f"other{number}": number})
    assert after.get("facts", "old") == ("kept", 1)  # last used KEEP_RUNS - 1 runs ago
    for number in range(KEEP_RUNS):
        after = _cache_run(tmp_path, recent=None, **{f"more{number}": number})
    assert after.get("facts", "old") is None
    assert after.get("facts", "recent") == ("kept", 2)


def test_past_the_size_limit_the_entries_used_longest_ago_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "MAX_BYTES", 2000)
    _cache_run(tmp_path, first="x" * 900)
    after = _cache_run(tmp_path, second="y" * 900, third="z" * 900)
    assert after.get("facts", "first") is None
    assert after.get("facts", "second") == "y" * 900 or after.get("facts", "third") == "z" * 900


def test_a_damaged_entry_is_a_miss_and_the_others_still_hit(tmp_path: Path) -> None:
    cache = _cache_run(tmp_path, good=("facts", 1), bad=("facts", 2))
    cache._load()
    generation, _ = cache.old["facts"]["bad"]
    cache.old["facts"]["bad"] = (generation, b"\x80\x05not a pickle")
    cache.dirty = True
    cache.save()  # signed: only the entry is damaged
    after = Cache(tmp_path)
    assert after.get("facts", "bad") is None
    assert after.get("facts", "good") == ("facts", 1)
