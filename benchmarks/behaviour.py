"""Check that `depfix apply` keeps what real applications do: OpenAPI, test outcomes, leftovers.

Not part of the test suite. For each application the script copies its tree three times into a
temporary directory (the original is never touched): `before` (left as it is), `safe` (after
`depfix apply`) and `unsafe` (after `depfix apply --unsafe`). Then, for each copy:

1. it records the files depfix changed (the diff is computed by the script, file by file), the
   "N diagnostics left" that apply printed, and the count that a following `depfix check` reports
   (they must be equal), and whether a second `apply --dry-run` would still change something;
2. it imports the ASGI app in a subprocess with the app's own interpreter (from the working
   subdirectory) and dumps `app.openapi()` as sorted JSON, with the source file of every route's
   endpoint and dependencies (to attribute a change to the depfix edit responsible);
3. it runs the app's test command (with `--junitxml` and `-rA` added to a pytest command) and reads
   the outcome of every test id;
4. it counts ruff's `FAST002` (`ruff check --select FAST002 --no-cache --output-format json`) in the
   `before` and `unsafe` copies, and reports every new `F821` (undefined name) in the fixed copies.

It prints one table row per app, then, per app, everything that changed: OpenAPI paths and schemas
that differ, tests whose outcome differs, each with the depfix diff hunks of the files related to
it (the route's endpoint and dependency files, or the files named in the failure), and the leftover
counts that disagree.

Usage (one app):

    python benchmarks/behaviour.py /tmp/apps/shop --app shop.main:app \\
        --python /tmp/appvenvs/shop/bin/python --env DATABASE_URL=sqlite:// \\
        --test "python -m pytest -q -p no:cacheprovider tests"

Usage (several apps): `python benchmarks/behaviour.py --config apps.toml [--only NAME ...]`, with a
TOML (Python 3.11+) or JSON file:

    [[app]]
    name = "shop"                              # default: the directory's name
    path = "/tmp/apps/shop"                    # the tree that is copied (relative: to this file)
    app = "shop.main:app"                      # or "shop.main:create_app()", or a list of them
    python = "/tmp/appvenvs/shop/bin/python"   # the app's interpreter (its virtualenv's bin/python)
    cwd = "backend"                            # working subdirectory of the copy (default ".")
    env = { DATABASE_URL = "sqlite://" }
    test = "python -m pytest -q -p no:cacheprovider tests"  # `python` is the app's interpreter
    depfix_paths = ["."]                       # what depfix and ruff run on, relative to the copy
    depfix_args = []                           # extra arguments for apply and check
    timeout = 600                              # seconds, for each test run

The app's subprocesses get its virtualenv's `bin` first on PATH and no PYTHONPATH; depfix and ruff
run with this process's environment, so a checkout's depfix is tested with
`PYTHONPATH=/path/to/checkout python benchmarks/behaviour.py --depfix "python -m depfix" ...`.

Options: `--depfix CMD` (default `depfix` on PATH), `--ruff CMD`,
`--keep` (keep the copies and print where), `--max-diff N` (lines of diff shown per change,
default 80), `--json FILE` (write every result as JSON too). Commands run sequentially.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

COPIES = ("before", "safe", "unsafe")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".depfix_cache", ".pytest_cache", ".git")
LEFT = re.compile(r"(\d+) diagnostics? left")
RA_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(\S+)")

# Runs in the app's interpreter: import the app, dump its OpenAPI and where each route's code lives.
DUMP_OPENAPI = r"""
import importlib, inspect, json, sys
spec, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, ".")
module, _, attr = spec.partition(":")
call = attr.endswith("()")
obj = importlib.import_module(module)
for part in (attr[:-2] if call else attr or "app").split("."):
    obj = getattr(obj, part)
if call:
    obj = obj()

def source(fn):
    fn = getattr(fn, "__func__", fn)
    if not (inspect.isfunction(fn) or inspect.isclass(fn) or inspect.ismethod(fn)):
        fn = type(fn)
    try:
        return inspect.getsourcefile(fn)
    except (TypeError, OSError):
        return None

def files(dependant, seen):
    found = set()
    if dependant.call is not None and id(dependant) not in seen:
        seen.add(id(dependant))
        found.add(source(dependant.call))
        for sub in dependant.dependencies:
            found |= files(sub, seen)
    return found

routes = []
for route in getattr(obj, "routes", []):
    dependant = getattr(route, "dependant", None)
    found = files(dependant, set()) if dependant is not None else set()
    endpoint = getattr(route, "endpoint", None)
    if endpoint is not None:
        found.add(source(endpoint))
    routes.append({"path": getattr(route, "path", ""), "files": sorted(f for f in found if f)})
with open(out, "w") as handle:
    json.dump({"openapi": obj.openapi(), "routes": routes}, handle, sort_keys=True, default=str)
"""

# Runs in the app's interpreter: which of the changed files no longer parse.
PARSE_CHECK = r"""
import ast, sys
for name in sys.argv[1:]:
    try:
        ast.parse(open(name, "rb").read(), name)
    except SyntaxError as error:
        print(f"{name}:{error.lineno}: {error.msg}")
"""


@dataclass
class AppConfig:
    name: str
    path: Path
    apps: list[str]
    python: str
    test: str
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    depfix_paths: list[str] = field(default_factory=lambda: ["."])
    depfix_args: list[str] = field(default_factory=list)
    timeout: float = 600.0


@dataclass
class CopyResult:
    label: str
    changed: dict[str, str] = field(default_factory=dict)
    """Changed file (relative path) -> unified diff against `before`."""
    apply_left: Optional[int] = None
    check_left: Optional[int] = None
    check_codes: dict[str, int] = field(default_factory=dict)
    idempotent: bool = True
    second_diff: str = ""
    depfix_errors: list[str] = field(default_factory=list)
    unparsable: list[str] = field(default_factory=list)
    openapi: dict[str, Any] = field(default_factory=dict)
    """App spec -> {"openapi": ..., "routes": [...]} or {"error": text}."""
    tests: dict[str, str] = field(default_factory=dict)
    """Test id -> passed/failed/skipped."""
    failures: dict[str, str] = field(default_factory=dict)
    test_rc: Optional[int] = None
    test_seconds: float = 0.0
    test_note: str = ""
    fast002: Optional[int] = None
    fast002_sites: list[str] = field(default_factory=list)
    undefined: list[str] = field(default_factory=list)
    """ruff F821 (undefined name) sites: an alias used where it is neither defined nor imported."""


@dataclass
class AppResult:
    name: str
    copies: dict[str, CopyResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def app_env(config: AppConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    bin_dir = str(Path(config.python).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(config.env)
    return env


def run(
    args: list[str], cwd: Path, env: Optional[dict[str, str]] = None, timeout: float = 600.0
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout if isinstance(expired.stdout, str) else ""
        return subprocess.CompletedProcess(args, -9, out, f"timed out after {timeout:.0f} s")
    except OSError as error:
        return subprocess.CompletedProcess(args, -1, "", f"cannot run {args[0]}: {error}")


def tree_diff(before: Path, after: Path) -> dict[str, str]:
    """Unified diff of every file that differs between two trees (added and removed included)."""

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and ".depfix_cache" not in p.parts and "__pycache__" not in p.parts
        }

    changed: dict[str, str] = {}
    old_files, new_files = files(before), files(after)
    for rel in sorted(old_files | new_files):
        old = (before / rel).read_bytes() if rel in old_files else b""
        new = (after / rel).read_bytes() if rel in new_files else b""
        if old == new:
            continue
        diff = difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            f"a/{rel}" if rel in old_files else "/dev/null",
            f"b/{rel}" if rel in new_files else "/dev/null",
        )
        changed[rel] = "".join(diff)
    return changed


def left_count(text: str) -> Optional[int]:
    found = LEFT.findall(text)
    return int(found[-1]) if found else None


def run_depfix(config: AppConfig, depfix: list[str], root: Path, result: CopyResult) -> None:
    paths = config.depfix_paths
    extra = ["--no-cache", *config.depfix_args]
    if result.label != "before":
        unsafe = ["--unsafe"] if result.label == "unsafe" else []
        applied = run([*depfix, "apply", *extra, *unsafe, *paths], root)
        result.apply_left = left_count(applied.stderr)
        result.depfix_errors += crash_lines(applied)
    checked = run([*depfix, "check", *extra, "--format", "json", *paths], root)
    try:
        report = json.loads(checked.stdout)
        result.check_left = int(report["summary"]["diagnostics"])
        for diagnostic in report["diagnostics"]:
            code = str(diagnostic["code"])
            result.check_codes[code] = result.check_codes.get(code, 0) + 1
    except (ValueError, KeyError, TypeError):
        result.depfix_errors.append(f"check: no JSON report (exit {checked.returncode})")
    result.depfix_errors += crash_lines(checked)
    if result.label != "before":
        unsafe = ["--unsafe"] if result.label == "unsafe" else []
        again = run([*depfix, "apply", *extra, *unsafe, "--dry-run", *paths], root)
        result.second_diff = again.stdout
        result.idempotent = not again.stdout.strip()


def crash_lines(process: subprocess.CompletedProcess[str]) -> list[str]:
    lines = [
        line
        for line in process.stderr.splitlines()
        if ": error:" in line or "internal error" in line or "Traceback" in line
    ]
    if process.returncode not in (0, 1, 2, 3):
        lines.append(f"exit {process.returncode}: {process.stderr.strip()[-300:]}")
    return lines


def dump_openapi(
    config: AppConfig, root: Path, workdir: Path, spec: str, out: Path
) -> dict[str, Any]:
    process = run([config.python, "-c", DUMP_OPENAPI, spec, str(out)], workdir, app_env(config))
    if process.returncode != 0 or not out.exists():
        tail = (process.stderr or process.stdout).strip().splitlines()[-3:]
        # The same failure in every copy must compare equal: the copy's path is not part of it.
        error = " | ".join(tail).replace(str(root), "<copy>")
        return {"error": error or f"exit {process.returncode}"}
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def is_pytest(args: list[str]) -> bool:
    return any(Path(a).name in ("pytest", "py.test") for a in args[:3]) or "pytest" in args[:3]


def run_tests(config: AppConfig, workdir: Path, scratch: Path, result: CopyResult) -> None:
    args = shlex.split(config.test)
    if not args:
        result.test_note = "no test command"
        return
    junit = scratch / f"junit-{result.label}.xml"
    if args and args[0] == "python":
        args[0] = config.python
    if is_pytest(args):
        args += ["-rA", f"--junitxml={junit}"]
    start = time.perf_counter()
    process = run(args, workdir, app_env(config), timeout=config.timeout)
    result.test_seconds = time.perf_counter() - start
    result.test_rc = process.returncode
    if process.returncode == -9:
        result.test_note = f"timed out after {config.timeout:.0f} s; "
    if junit.exists():
        read_junit(junit, result)
    else:
        for line in process.stdout.splitlines():
            match = RA_LINE.match(line)
            if match:
                outcome = {"XPASS": "passed", "XFAIL": "skipped"}.get(match[1], match[1].lower())
                result.tests[match[2]] = "failed" if outcome == "error" else outcome
    if not result.tests:
        result.test_note += "no test outcome read: " + (process.stdout + process.stderr)[-300:]


def read_junit(path: Path, result: CopyResult) -> None:
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as error:
        result.test_note += f" unreadable junit XML: {error}"
        return
    for case in tree.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                text = (child.get("message") or "") + "\n" + (child.text or "")
                result.failures[test_id] = text.strip()
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        # A test that passed and then errored in teardown appears twice: the failure wins.
        if result.tests.get(test_id) != "failed":
            result.tests[test_id] = outcome


def count_fast002(ruff: list[str], config: AppConfig, root: Path, result: CopyResult) -> str:
    args = [*ruff, "check", "--select", "FAST002,F821", "--no-cache", "--output-format", "json"]
    process = run([*args, "--exit-zero", *config.depfix_paths], root)
    note = ""
    if process.returncode != 0:  # a configuration this ruff does not understand
        process = run([*args, "--exit-zero", "--isolated", *config.depfix_paths], root)
        note = "ruff: the project's configuration was refused, counted with --isolated"
    try:
        found = json.loads(process.stdout)
    except ValueError:
        return f"ruff failed: {process.stderr.strip()[-200:]}"
    result.fast002 = 0
    for item in found:
        where = Path(item["filename"]).relative_to(root) if item.get("filename") else "?"
        row = item.get("location", {}).get("row", "?")
        site = f"{where}:{row}: {item.get('message', '')}"
        if item.get("code") == "F821":
            result.undefined.append(site)
        else:
            result.fast002 += 1
            result.fast002_sites.append(site)
    return note


def check_parse(config: AppConfig, root: Path, result: CopyResult) -> None:
    python_files = [rel for rel in result.changed if rel.endswith(".py") and (root / rel).exists()]
    if python_files:
        process = run([config.python, "-c", PARSE_CHECK, *python_files], root, app_env(config))
        result.unparsable = process.stdout.splitlines()


def run_app(
    config: AppConfig, depfix: list[str], ruff: list[str], keep: bool
) -> tuple[AppResult, Path]:
    result = AppResult(config.name)
    scratch = Path(tempfile.mkdtemp(prefix=f"behaviour-{config.name}-"))
    roots = {label: scratch / label / config.path.name for label in COPIES}
    for root in roots.values():
        shutil.copytree(config.path, root, symlinks=True, ignore=IGNORED)
    for label in COPIES:
        print(f"[{config.name}] {label}: depfix", file=sys.stderr, flush=True)
        copy = result.copies[label] = CopyResult(label)
        root = roots[label]
        run_depfix(config, depfix, root, copy)
        if label != "before":
            copy.changed = tree_diff(roots["before"], root)
            check_parse(config, root, copy)
        note = count_fast002(ruff, config, root, copy)
        if note and note not in result.notes:
            result.notes.append(note)
        workdir = root / config.cwd
        for spec in config.apps:
            out = scratch / f"openapi-{label}-{len(copy.openapi)}.json"
            copy.openapi[spec] = dump_openapi(config, root, workdir, spec, out)
        print(f"[{config.name}] {label}: tests", file=sys.stderr, flush=True)
        run_tests(config, workdir, scratch, copy)
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return result, scratch


# Comparison and attribution.


def openapi_changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, set[str]]]:
    """(what changed, the route paths it concerns) for every path and schema that differs."""
    if "error" in before or "error" in after:
        if before.get("error") == after.get("error"):
            return []
        return [
            (
                f"import: before {before.get('error', 'ok')!r}, after {after.get('error', 'ok')!r}",
                set(),
            )
        ]
    old, new = before["openapi"], after["openapi"]
    changes: list[tuple[str, set[str]]] = []
    old_paths, new_paths = old.get("paths", {}), new.get("paths", {})
    for path in sorted(set(old_paths) | set(new_paths)):
        if old_paths.get(path) != new_paths.get(path):
            changes.append((f"path {path}", {path}))
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    for name in sorted(set(old_schemas) | set(new_schemas)):
        if old_schemas.get(name) != new_schemas.get(name):
            ref = f'"#/components/schemas/{name}"'
            users = {
                path
                for doc in (old_paths, new_paths)
                for path, item in doc.items()
                if ref in json.dumps(item)
            }
            changes.append((f"schema {name}", users))
    rest = {k: v for k, v in old.items() if k not in ("paths", "components")}
    if rest != {k: v for k, v in new.items() if k not in ("paths", "components")}:
        changes.append(("top-level keys", set()))
    return changes


def json_diff(before: Any, after: Any, limit: int) -> str:
    lines = list(
        difflib.unified_diff(
            json.dumps(before, sort_keys=True, indent=1).splitlines(),
            json.dumps(after, sort_keys=True, indent=1).splitlines(),
            "before",
            "after",
            lineterm="",
        )
    )
    return clip(lines, limit)


def clip(lines: list[str], limit: int) -> str:
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def related_files(dump: dict[str, Any], paths: set[str], root_names: list[str]) -> set[str]:
    """Copy-relative files of the endpoints and dependencies of the routes at these paths."""
    found: set[str] = set()
    for route in dump.get("routes", []):
        if route["path"] in paths:
            for file in route["files"]:
                for marker in root_names:
                    if marker in file:
                        found.add(file.split(marker, 1)[1])
    return found


def hunks(changed: dict[str, str], files: set[str], limit: int) -> str:
    selected = [changed[f] for f in sorted(files) if f in changed]
    if not selected:
        selected = list(changed.values())
        header = ["(no changed file is related: the whole depfix diff)"]
    else:
        header = []
    return clip(header + "".join(selected).splitlines(), limit)


def responsible(copy: CopyResult, files: set[str], shown: set[str], limit: int) -> list[str]:
    """The depfix hunks behind a change, once per section (later: a reference to them)."""
    text = hunks(copy.changed, files, limit)
    lines = [
        "  depfix edit responsible:",
        "    (the same as above)" if text in shown else indent(text),
    ]
    shown.add(text)
    return lines


def report_app(result: AppResult, config: AppConfig, scratch: Path, limit: int) -> list[str]:
    out: list[str] = []
    before = result.copies["before"]
    markers = [f"/{label}/{config.path.name}/" for label in COPIES]
    for label in ("safe", "unsafe"):
        copy = result.copies[label]
        heading = f"### {config.name}: {label}"
        section: list[str] = []
        shown: set[str] = set()
        for spec in config.apps:
            old, new = before.openapi.get(spec, {}), copy.openapi.get(spec, {})
            for what, paths in openapi_changes(old, new):
                section.append(f"OpenAPI of {spec} changed: {what}")
                if "openapi" in old and "openapi" in new:
                    key = what.split(" ", 1)
                    if key[0] == "path":
                        a = old["openapi"].get("paths", {}).get(key[1])
                        b = new["openapi"].get("paths", {}).get(key[1])
                    elif key[0] == "schema":
                        a = old["openapi"].get("components", {}).get("schemas", {}).get(key[1])
                        b = new["openapi"].get("components", {}).get("schemas", {}).get(key[1])
                    else:
                        a, b = old["openapi"], new["openapi"]
                    section.append(indent(json_diff(a, b, limit)))
                files = related_files(new, paths, markers) | related_files(old, paths, markers)
                section += responsible(copy, files, shown, limit)
        for test_id in sorted(set(before.tests) | set(copy.tests)):
            was, now = before.tests.get(test_id, "absent"), copy.tests.get(test_id, "absent")
            if was == now:
                continue
            section.append(f"test {test_id}: {was} -> {now}")
            failure = copy.failures.get(test_id) or before.failures.get(test_id, "")
            if failure:
                section.append(indent(clip(failure.splitlines()[-15:], 15)))
            files = {rel for rel in copy.changed if rel in failure}
            section += responsible(copy, files, shown, limit)
        if copy.apply_left != copy.check_left:
            codes = ", ".join(f"{k} {v}" for k, v in sorted(copy.check_codes.items()))
            section.append(
                f"apply said {copy.apply_left} diagnostics left, the next check reports "
                f"{copy.check_left} ({codes})"
            )
        if not copy.idempotent:
            section.append("a second apply would change more:")
            section.append(indent(clip(copy.second_diff.splitlines(), limit)))
        if label == "unsafe" and copy.fast002:
            section.append(f"FAST002 left after apply --unsafe ({copy.fast002}):")
            section += [f"    {site}" for site in copy.fast002_sites[:limit]]
        for line in copy.unparsable:
            section.append(f"does not parse after apply: {line}")
        for site in sorted(set(copy.undefined) - set(before.undefined)):
            section.append(f"undefined name after apply (ruff F821): {site}")
        for line in copy.depfix_errors:
            section.append(f"depfix: {line}")
        if copy.test_note and copy.test_note != before.test_note:
            section.append(f"tests: {copy.test_note.strip()}")
        if section:
            out += [heading, *section, ""]
    for spec in config.apps:
        if "error" in before.openapi.get(spec, {}):
            out.append(
                f"{config.name}: {spec} does not import before depfix: {before.openapi[spec]['error']}"
            )
    if before.test_note:
        out.append(f"{config.name}: tests before depfix: {before.test_note.strip()}")
    out += [f"{config.name}: {note}" for note in result.notes]
    if scratch.exists():
        out.append(f"{config.name}: copies kept in {scratch}")
    return out


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def table_row(result: AppResult, config: AppConfig) -> str:
    before, safe, unsafe = (result.copies[label] for label in COPIES)

    def equal(copy: CopyResult) -> str:
        specs = [spec for spec in config.apps if "error" not in before.openapi.get(spec, {})]
        if not specs:
            return "n/a"
        same = all(not openapi_changes(before.openapi[s], copy.openapi[s]) for s in specs)
        text = "yes" if same else "**no**"
        return (
            text if len(specs) == len(config.apps) else f"{text} ({len(specs)}/{len(config.apps)})"
        )

    def passing(copy: CopyResult) -> str:
        passed = sum(1 for outcome in copy.tests.values() if outcome == "passed")
        changed = sum(
            1
            for t in set(before.tests) | set(copy.tests)
            if before.tests.get(t) != copy.tests.get(t)
        )
        mark = f" (**{changed} differ**)" if changed and copy is not before else ""
        return f"{passed}/{len(copy.tests)}{mark}"

    def left(copy: CopyResult) -> str:
        text = f"{copy.apply_left}/{copy.check_left}"
        return text if copy.apply_left == copy.check_left else f"**{text}**"

    problems = []
    for copy in (safe, unsafe):
        if not copy.idempotent:
            problems.append(f"{copy.label}: not idempotent")
        if copy.unparsable:
            problems.append(f"{copy.label}: {len(copy.unparsable)} unparsable")
        new_undefined = set(copy.undefined) - set(before.undefined)
        if new_undefined:
            problems.append(f"{copy.label}: {len(new_undefined)} new undefined names")
        if copy.depfix_errors:
            problems.append(f"{copy.label}: {len(copy.depfix_errors)} depfix errors")
    cells = [
        config.name,
        f"{len(safe.changed)} / {len(unsafe.changed)}",
        f"{equal(safe)} / {equal(unsafe)}",
        f"{passing(before)} / {passing(safe)} / {passing(unsafe)}",
        f"{before.fast002} / {unsafe.fast002}",
        f"{left(safe)} / {left(unsafe)}",
        "; ".join(problems) or "",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| app | files changed (safe / unsafe) | OpenAPI equal (safe / unsafe) "
    "| tests passing (before / safe / unsafe) | FAST002 (before / after unsafe) "
    "| left: apply/next check (safe / unsafe) | problems |\n"
    "|---|---|---|---|---|---|---|"
)


# Configuration.


def load_config(path: Path) -> list[AppConfig]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        if sys.version_info < (3, 11):
            sys.exit("behaviour.py: TOML needs Python 3.11+; use a JSON config")
        import tomllib

        data = tomllib.loads(text)
    entries = data.get("app", data.get("apps", []))
    return [make_config(entry, path.parent) for entry in entries]


def make_config(entry: dict[str, Any], base: Path) -> AppConfig:
    path = (base / str(entry["path"])).resolve()
    apps = entry.get("app", [])
    return AppConfig(
        name=str(entry.get("name", path.name)),
        path=path,
        apps=[apps] if isinstance(apps, str) else [str(a) for a in apps],
        python=str(entry.get("python", sys.executable)),
        test=str(entry.get("test", "")),
        cwd=str(entry.get("cwd", ".")),
        env={str(k): str(v) for k, v in entry.get("env", {}).items()},
        depfix_paths=[str(p) for p in entry.get("depfix_paths", ["."])],
        depfix_args=[str(a) for a in entry.get("depfix_args", [])],
        timeout=float(entry.get("timeout", 600)),
    )


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", help="the application's directory (without --config)")
    parser.add_argument("--config", type=Path, help="a TOML or JSON file listing apps ([[app]])")
    parser.add_argument("--only", nargs="*", default=[], help="with --config: these app names")
    parser.add_argument("--name", help="the app's name in the table")
    parser.add_argument("--app", action="append", default=[], help="import path, pkg.main:app")
    parser.add_argument("--python", default=sys.executable, help="the app's interpreter")
    parser.add_argument("--env", action="append", default=[], help="K=V for the app (repeatable)")
    parser.add_argument("--cwd", default=".", help="working subdirectory of the copy")
    parser.add_argument("--test", default="", help="test command, run from --cwd")
    parser.add_argument("--depfix-path", action="append", default=[], help="what depfix runs on")
    parser.add_argument("--depfix-arg", action="append", default=[], help="extra depfix argument")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    parser.add_argument("--depfix", default="depfix", help="the depfix command")
    parser.add_argument("--ruff", default="ruff", help="the ruff command")
    parser.add_argument("--keep", action="store_true", help="keep the copies")
    parser.add_argument("--max-diff", type=int, default=80, help="diff lines shown per change")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.config:
        configs = load_config(args.config)
        if args.only:
            configs = [c for c in configs if c.name in args.only]
    elif args.path:
        entry: dict[str, Any] = {
            "path": args.path,
            "app": args.app,
            "python": args.python,
            "cwd": args.cwd,
            "test": args.test,
            "env": dict(item.split("=", 1) for item in args.env),
            "depfix_paths": args.depfix_path or ["."],
            "depfix_args": args.depfix_arg,
            "timeout": args.timeout,
        }
        if args.name:
            entry["name"] = args.name
        configs = [make_config(entry, Path.cwd())]
    else:
        sys.exit("behaviour.py: give an application directory or --config FILE")
    depfix, ruff = shlex.split(args.depfix), shlex.split(args.ruff)
    rows, details, dumped = [], [], []
    for config in configs:
        result, scratch = run_app(config, depfix, ruff, args.keep)
        rows.append(table_row(result, config))
        details += report_app(result, config, scratch, args.max_diff)
        dumped.append(asdict(result))
        print(rows[-1], file=sys.stderr, flush=True)
    print(HEADER)
    print("\n".join(rows))
    print()
    print("\n".join(details) if details else "Nothing changed.")
    if args.json:
        args.json.write_text(json.dumps(dumped, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
