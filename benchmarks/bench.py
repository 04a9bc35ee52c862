"""Time depfix next to ruff on a synthetic FastAPI code base of any size.

Not part of the test suite. The script writes a realistic tree (an app package with routers, shared
dependencies, services, models, utilities and tests; about 10% of the files touch FastAPI) under a
temporary directory from a seed, then runs as subprocesses, in this order and on the same tree:

1. `ruff check --no-cache --select FAST` (cold) and `ruff check --select FAST` twice (cached);
2. `depfix check --no-cache` (cold, no cache), `depfix check` with an empty cache (cold, writing it),
   `depfix check` again (warm: the stored output is replayed), `depfix check --format json` (warm, a
   command line not seen before: the engine's cache), then `depfix check` after one edit each: a comment
   added to a plain module (a utility), a function added to it, a function added to a
   service a router imports (so in the index), a route's body edited, a function added to that
   router (before each edit the tree is settled: older than the cache's 2-second racy window and run
   once, as a pre-commit hook finds it); then `--ignore DF008` without cache (DF008 reports every
   import cycle, so it has the whole project indexed; without it the index is lazy).

It prints wall time, CPU time (user and system, workers included) and peak RSS (the largest process of
the run), all from `wait4`, for each, and the ratio of wall times to ruff. `--scaling 1000,3000,7000`
adds a table of cold runs for trees of those sizes. `--cycles 300` and `--trees DIR ...` add a table
of cold runs (medians of `--repeat` interleaved runs of ruff and depfix) on a synthetic tree of 300
routers in import cycles (rings of 2 to 6 routers importing each other's dependencies at the top:
the shape DF008 plans for) and on real trees. `--profile DIR` prints where a cold check's time goes
on DIR, by phase (one process, one job, under cProfile).

Usage: python benchmarks/bench.py [--files 7000] [--scaling 1000,3000,7000] [--seed 1] [--keep DIR]
       [--cycles 300] [--trees DIR ...] [--repeat 3] [--profile DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

HERE = Path(sys.executable).parent
FASTAPI_SHARE = 0.10


@dataclass
class Timing:
    label: str
    seconds: float
    peak_mb: float
    code: int
    cpu: float = 0.0
    """User and system time of the run and the workers it waited for: steadier than wall time on a
    shared machine, where another tenant can slow a run down by half within minutes."""


def _run(label: str, command: list[str], cwd: Path) -> Timing:
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if "Traceback" in stderr:
        raise SystemExit(f"{label} crashed:\n{stderr}")
    cpu = usage.ru_utime + usage.ru_stime
    return Timing(label, seconds, usage.ru_maxrss / 1024, process.returncode, cpu)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env.pop("DEPFIX_NO_CACHE", None)
    # An installed depfix runs from bytecode: where writing it is off, every run would time
    # compiling depfix's own modules (a fifth of a second here) instead of depfix.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _tool(name: str) -> str:
    found = HERE / name
    if found.exists():
        return str(found)
    located = shutil.which(name)
    if located is None:
        raise SystemExit(f"{name} not found next to {sys.executable} or on PATH")
    return located


# ---- the synthetic tree ----------------------------------------------------------------------------
DEPS = '''"""Shared dependencies."""
from collections.abc import Iterator

from fastapi import Depends, Header, HTTPException

from app.db import SessionLocal, Session
from app.services.s0 import Service0


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    yield db
    db.close()


def get_current_user(token: str = Header(...), db: Session = Depends(get_db)) -> dict:
    if not token:
        raise HTTPException(status_code=401)
    return {"token": token}


def get_service(db: Session = Depends(get_db)) -> Service0:
    return Service0(db)
'''

DB = '''"""The database session factory (no FastAPI here)."""


class Session:
    def close(self) -> None:
        pass

    def query(self, model: type) -> list:
        return []

    def rollback(self) -> None:
        pass


def SessionLocal() -> Session:
    return Session()
'''

ROUTER = '''"""Router {i}."""
from fastapi import APIRouter, Depends, Query

from app.api.deps import get_current_user, get_db, get_service
from app.db import Session
from app.models.m{m} import Model{m}
from app.services.s{s} import Service{s}

router = APIRouter(prefix="/r{i}")


@router.get("/items")
def list_items(
    limit: int = Query(10),
    db: Session = Depends(get_db),
    user: dict = Depends(get_current_user),
) -> list:
    return Service{s}(db).list(Model{m}, limit)


@router.get("/items/{{item_id}}")
async def read_item(item_id: int, db: Session = Depends(get_db())) -> dict:
    return {{"id": item_id}}


@router.post("/items")
def create_item(name: str, service: Service{s} = Depends(get_service)) -> dict:
    return {{"name": name, "service": str(service)}}


@router.delete("/items/{{item_id}}")
def delete_item(item_id: int, db: Session = Depends(get_db)) -> None:
    Service{s}(db).delete(Model{m}, item_id)
'''

SERVICE = '''"""Service {i}: business logic, no FastAPI."""
from app.db import Session
from app.models.m{m} import Model{m}
from app.utils.u{u} import helper{u}


class Service{i}:
    def __init__(self, db: Session) -> None:
        self.db = db

    def list(self, model: type, limit: int) -> list:
        rows = self.db.query(model)
        return [helper{u}(row) for row in rows[:limit]]

    def get(self, item_id: int) -> Model{m}:
        return Model{m}(id=item_id, name=str(item_id))

    def delete(self, model: type, item_id: int) -> None:
        for row in self.db.query(model):
            if getattr(row, "id", None) == item_id:
                self.db.rollback()
{body}
'''

MODEL = '''"""Model {i}."""
from dataclasses import dataclass, field


@dataclass
class Model{i}:
    id: int
    name: str
    tags: list[str] = field(default_factory=list)

    def label(self) -> str:
        return f"{{self.name}} ({{self.id}})"

    def tagged(self, tag: str) -> bool:
        return tag in self.tags
{body}
'''

UTIL = '''"""Utility module {i}."""
import json
import re
from pathlib import Path

PATTERN = re.compile(r"[a-z]+{i}")


def helper{i}(value: object) -> str:
    return json.dumps(str(value))


def read_config{i}(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def slug{i}(text: str) -> str:
    return "-".join(PATTERN.findall(text.lower()))
{body}
'''

API_TEST = '''"""Tests of router {i}."""
from fastapi.testclient import TestClient

from app.api.deps import get_db
from app.main import app


def fake_db():
    yield None


app.dependency_overrides[get_db] = fake_db
client = TestClient(app)


def test_list_{i}() -> None:
    assert client.get("/r{i}/items").status_code in (200, 422)
'''

PLAIN_TEST = '''"""Tests of utility {i}."""
from app.utils.u{i} import helper{i}, slug{i}


def test_helper_{i}() -> None:
    assert helper{i}(1) == '"1"'


def test_slug_{i}() -> None:
    assert slug{i}("Abc Def") == "abc-def" or True
{body}
'''


def _filler(rng: random.Random, count: int) -> str:
    lines = []
    for n in range(count):
        lines.append(f"\n\ndef extra_{n}(x: int, y: int = {rng.randint(0, 9)}) -> int:")
        lines.append(f"    total = x * {rng.randint(1, 99)} + y")
        lines.append("    for step in range(3):")
        lines.append("        total += step")
        lines.append("    return total")
    return "\n".join(lines)


def generate(root: Path, files: int, seed: int) -> None:
    """Write a tree of about `files` Python files under `root`."""
    rng = random.Random(seed)
    routers = max(1, int(files * FASTAPI_SHARE * 0.7))
    api_tests = max(1, int(files * FASTAPI_SHARE) - routers - 3)
    rest = max(4, files - routers - api_tests - 8)
    services, models, plain_tests = rest // 4, rest // 4, rest // 6
    utils = max(1, rest - services - models - plain_tests)

    def write(relative: str, text: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    for package in ("app", "app/api", "app/api/routers", "app/services", "app/models", "app/utils"):
        write(f"{package}/__init__.py", "")
    write("tests/__init__.py", "")
    write("app/db.py", DB)
    write("app/api/deps.py", DEPS)
    imports = "\n".join(
        f"from app.api.routers.r{i} import router as router{i}" for i in range(routers)
    )
    includes = "\n".join(f"app.include_router(router{i})" for i in range(routers))
    write("app/main.py", f"from fastapi import FastAPI\n{imports}\n\napp = FastAPI()\n{includes}\n")
    for i in range(routers):
        write(
            f"app/api/routers/r{i}.py",
            ROUTER.format(i=i, m=rng.randrange(models), s=rng.randrange(services)),
        )
    for i in range(services):
        text = SERVICE.format(
            i=i, m=rng.randrange(models), u=rng.randrange(utils), body=_filler(rng, 4)
        )
        write(f"app/services/s{i}.py", text)
    for i in range(models):
        write(f"app/models/m{i}.py", MODEL.format(i=i, body=_filler(rng, 3)))
    for i in range(utils):
        write(f"app/utils/u{i}.py", UTIL.format(i=i, body=_filler(rng, 6)))
    for i in range(api_tests):
        write(f"tests/test_api_{i}.py", API_TEST.format(i=rng.randrange(routers)))
    for i in range(plain_tests):
        write(f"tests/test_util_{i}.py", PLAIN_TEST.format(i=i % utils, body=_filler(rng, 2)))
    past = time.time() - 3600  # a checkout from an hour ago: no file is "just modified"
    for path in root.rglob("*.py"):
        os.utime(path, (past, past))


CYCLE_ROUTER = '''"""Router {i}: a ring of {size} routers that import each other's dependencies."""
from fastapi import APIRouter, Depends, Header, HTTPException

from app.api.cycles.c{next} import LIMIT_{next}, get_user_{next}

LIMIT_{i} = {limit}
router = APIRouter(prefix="/c{i}")


def get_user_{i}(x_user: str = Header(...)) -> dict:
    if len(x_user) > LIMIT_{next}:
        raise HTTPException(status_code=400)
    return {{"name": x_user}}


@router.get("/items/{{item_id}}")
def read_item_{i}(item_id: int, user: dict = Depends(get_user_{next})) -> dict:
    return {{"id": item_id, "user": user["name"]}}
'''


def generate_cycles(root: Path, modules: int, seed: int) -> None:
    """A tree where `modules` routers sit in import cycles (rings of 2 to 6) that fail at import."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "cycles"\nversion = "0"\n')
    package = root / "app/api/cycles"
    package.mkdir(parents=True, exist_ok=True)
    for folder in (root / "app", root / "app/api", package):
        (folder / "__init__.py").write_text("")
    start = 0
    while start < modules:
        size = min(rng.randint(2, 6), modules - start)
        for offset in range(size):
            i = start + offset
            text = CYCLE_ROUTER.format(
                i=i, next=start + (offset + 1) % size, size=size, limit=rng.randint(8, 64)
            )
            (package / f"c{i}.py").write_text(text)
        start += size
    imports = "\n".join(
        f"from app.api.cycles.c{i} import router as router{i}" for i in range(modules)
    )
    includes = "\n".join(f"app.include_router(router{i})" for i in range(modules))
    (root / "app/main.py").write_text(
        f"from fastapi import FastAPI\n{imports}\n\napp = FastAPI()\n{includes}\n"
    )
    past = time.time() - 3600
    for path in root.rglob("*.py"):
        os.utime(path, (past, past))


def count(root: Path) -> tuple[int, int]:
    python = list(root.rglob("*.py"))
    touching = sum(1 for p in python if b"fastapi" in p.read_bytes())
    return len(python), touching


# ---- the measurements ------------------------------------------------------------------------------
def measure(root: Path) -> list[Timing]:
    ruff, depfix = _tool("ruff"), _tool("depfix")
    cache = root / ".depfix_cache"
    timings = [
        _run("ruff cold (--no-cache)", [ruff, "check", "--no-cache", "--select", "FAST", "."], root)
    ]
    _run("ruff (filling its cache)", [ruff, "check", "--select", "FAST", "."], root)
    timings.append(_run("ruff cached", [ruff, "check", "--select", "FAST", "."], root))
    check = [depfix, "check", "--quiet", "."]
    timings.append(_run("depfix cold (--no-cache)", [*check, "--no-cache"], root))
    shutil.rmtree(cache, ignore_errors=True)
    timings.append(_run("depfix cold (empty cache)", check, root))
    _settle(check, root)
    timings.append(_run("depfix warm (replayed)", check, root))
    as_json = [depfix, "check", "--quiet", "--format", "json", "."]
    timings.append(_run("depfix warm, new command line (cache)", as_json, root))
    router = root / "app/api/routers/r0.py"
    plain = root / "app/utils/u0.py"
    imported = re.search(r"^from (app\.services\.s\d+) import", router.read_text(), re.M)
    assert imported is not None
    # a service the router imports: unlike the plain module, it is in the index
    service = root / (imported.group(1).replace(".", "/") + ".py")
    edits: list[tuple[str, Path, Callable[[str], str]]] = [
        ("a plain module edited", plain, lambda text: text + "\n# touched\n"),
        ("a function added to a plain module", plain, lambda text: text + ADDED),
        ("a function added to a service a router imports", service, lambda text: text + ADDED),
        (
            "a route body edited",
            router,
            lambda text: text.replace('{"id": item_id}', '{"id": item_id, "edited": True}'),
        ),
        ("a function added to a router", router, lambda text: text + ADDED),
    ]
    for label, path, edit in edits:
        _settle(check, root)  # a pre-commit hook runs on a tree its last run saw
        path.write_text(edit(path.read_text()))
        timings.append(_run(f"depfix, {label}", check, root))
    lazy = [*check, "--no-cache", "--ignore", "DF008"]
    timings.append(_run("depfix --ignore DF008 (no cache)", lazy, root))
    return timings


ADDED = "\n\ndef added() -> int:\n    return 1\n"


def _settle(check: list[str], root: Path) -> None:
    """Let the last edit age past the cache's racy window, then run once so that the run is stored."""
    time.sleep(2.1)
    _run("settle", check, root)


def table(timings: list[Timing], ruff_cold: float, ruff_cached: float) -> None:
    """Cold runs next to ruff's cold run; warm runs and runs after an edit next to ruff's cached run."""
    print(f"{'run':46} {'wall s':>8} {'CPU s':>7} {'peak MB':>8} {'x ruff':>7}")
    for timing in timings:
        warm = "cold" not in timing.label and "no cache" not in timing.label
        base = ruff_cached if warm else ruff_cold
        ratio = timing.seconds / base if base else float("nan")
        print(
            f"{timing.label:46} {timing.seconds:8.2f} {timing.cpu:7.2f} {timing.peak_mb:8.0f}"
            f" {ratio:7.1f}"
        )


def scaling(sizes: list[int], seed: int, keep: Optional[Path]) -> None:
    ruff, depfix = _tool("ruff"), _tool("depfix")
    print(
        f"\n{'files':>6} {'FastAPI':>8} {'ruff s':>7} {'depfix s':>9} {'CPU s':>7} {'x ruff':>7}"
        f" {'peak MB':>8} {'no DF008 s':>14}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"depfix-bench-{size}-") as directory:
            root = Path(directory)
            generate(root, size, seed)
            files, touching = count(root)
            r = _run("ruff", [ruff, "check", "--no-cache", "--select", "FAST", "."], root)
            d = _run("depfix", [depfix, "check", "--quiet", "--no-cache", "."], root)
            lazy = _run(
                "depfix", [depfix, "check", "--quiet", "--no-cache", "--ignore", "DF008", "."], root
            )
            print(
                f"{files:6} {touching:8} {r.seconds:7.2f} {d.seconds:9.2f} {d.cpu:7.2f} "
                f"{d.seconds / r.seconds:7.1f} {d.peak_mb:8.0f} {lazy.seconds:14.2f}"
            )


def cold_rows(trees: list[tuple[str, Path]], repeat: int) -> None:
    """Cold `check --no-cache` next to ruff's cold run on each tree: medians of interleaved runs."""
    ruff, depfix = _tool("ruff"), _tool("depfix")
    print(
        f"\n{'tree':28} {'files':>6} {'FastAPI':>8} {'ruff s':>7} {'depfix s':>9} {'CPU s':>7}"
        f" {'peak MB':>8} {'x ruff':>7}"
    )
    for label, root in trees:
        files, touching = count(root)
        ruffs: list[Timing] = []
        depfixes: list[Timing] = []
        for _ in range(repeat):
            ruffs.append(_run("ruff", [ruff, "check", "--no-cache", "--select", "FAST", "."], root))
            depfixes.append(_run("depfix", [depfix, "check", "--quiet", "--no-cache", "."], root))
        r = statistics.median(t.seconds for t in ruffs)
        d = statistics.median(t.seconds for t in depfixes)
        cpu = statistics.median(t.cpu for t in depfixes)
        peak = max(t.peak_mb for t in depfixes)
        print(
            f"{label[:28]:28} {files:6} {touching:8} {r:7.2f} {d:9.2f} {cpu:7.2f} {peak:8.0f}"
            f" {d / r:7.1f}"
        )


PHASES = (
    ("facts (ast)", "depfix/engine.py", "_extract"),
    ("index", "depfix/engine.py", "_lazy_index"),
    ("project planning (DF008, DF007)", "depfix/engine.py", "_plan_projects"),
    ("file rules", "depfix/engine.py", "process_file"),
    ("  libcst parse", "libcst/_parser/entrypoints.py", "parse_module"),
    ("  rule traversal", "depfix/engine.py", "_run_rules"),
    ("    libcst positions", "depfix/codegen.py", "positions"),
    ("  code generation", "depfix/imports.py", "module_code"),
)


def profile(root: Path) -> None:
    """Where a cold check's time goes, by phase: one process, one job, under cProfile."""
    import contextlib
    import cProfile
    import io
    import pstats

    from depfix.cli import main as cli_main

    profiler = cProfile.Profile()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(contextlib.suppress(SystemExit))
            profiler.enable()
            cli_main(["check", "--quiet", "--no-cache", "-j", "1", "."])
        profiler.disable()
    finally:
        os.chdir(cwd)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(timing[2] for timing in stats.values())
    print(f"\nprofile of a cold check, one job ({root}): {total:.2f} s under cProfile")
    for label, file, function in PHASES:
        seconds = sum(
            timing[3]
            for (filename, _, name), timing in stats.items()
            if filename.endswith(file) and name == function
        )
        print(f"{label:34} {seconds:7.2f} s {100 * seconds / total:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=7000)
    parser.add_argument("--scaling", default="", help="comma-separated sizes, e.g. 1000,3000,7000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the tree here and keep it")
    parser.add_argument(
        "--cycles", type=int, default=0, help="add a tree of this many routers in import cycles"
    )
    parser.add_argument(
        "--trees", type=Path, nargs="*", default=[], help="real trees to add to the cold table"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tree in the cold table")
    parser.add_argument("--profile", type=Path, help="print the phase profile of this tree")
    arguments = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if arguments.cycles or arguments.trees:
        with tempfile.TemporaryDirectory(prefix="depfix-bench-cycles-") as directory:
            trees = [(tree.name, tree) for tree in arguments.trees]
            if arguments.cycles:
                generate_cycles(Path(directory), arguments.cycles, arguments.seed)
                trees.insert(0, (f"synthetic, {arguments.cycles} in cycles", Path(directory)))
            cold_rows(trees, arguments.repeat)
    if arguments.profile:
        profile(arguments.profile)
    if arguments.files:
        with tempfile.TemporaryDirectory(prefix="depfix-bench-") as directory:
            root = arguments.keep or Path(directory)
            if arguments.keep:
                shutil.rmtree(root, ignore_errors=True)
            generate(root, arguments.files, arguments.seed)
            files, touching = count(root)
            print(f"tree: {files} files, {touching} import FastAPI ({root})\n")
            timings = measure(root)
            table(timings, timings[0].seconds, timings[1].seconds)
    if arguments.scaling:
        sizes = [int(size) for size in arguments.scaling.split(",")]
        scaling(sizes, arguments.seed, arguments.keep)


if __name__ == "__main__":
    main()
