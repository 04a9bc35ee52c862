"""The FastAPI conformance oracle: DF006's rewrites of FastAPI's own tutorials must keep their tests green.

FastAPI's source distribution ships `docs_src/` (the tutorials) and `tests/` (their tests). Most
tutorials that take parameters exist twice: an old-style variant with `x: T = Depends(f)` /
`q: str = Query(None)` defaults and an `Annotated` twin. FastAPI's tests import both by module name and
hold them to the same responses and the same OpenAPI snapshot. The oracle rewrites every old-style
variant with `depfix apply --unsafe --select DF006`, writes the result over its `Annotated` twin and
runs the tests of those tutorials: the twin's test cases then exercise depfix's output.

Pairing scheme (FastAPI 0.165.0; checked by `discover_pairs`, which refuses an unknown scheme)
---------------------------------------------------------------------------------------------
* Module pairs: `docs_src/<topic>/<stem>_non_an.py` (old style) <-> `docs_src/<topic>/<stem>.py`
  (Annotated), e.g. `dependencies/tutorial008b_non_an.py` <-> `dependencies/tutorial008b.py` and
  `request_files/tutorial001_02_non_an.py` <-> `request_files/tutorial001_02.py`. 87 pairs.
* Package pairs: `docs_src/<topic>/<name>_non_an/` <-> `docs_src/<topic>/<name>/`: every `.py` file of
  the old-style package is rewritten and written over the file with the same relative path in the
  twin (only `main.py` differs in 0.165.0). 3 pairs: `app_testing/app_b`, `settings/app02`,
  `settings/app03`. 90 pairs in all.
* This release has no `_an` / `_pyXY` variants (such as `tutorial001_an_py39.py` beside
  `tutorial001_py39.py`): the Python floor is 3.11, so each tutorial exists once per style.
  `discover_pairs` raises `SchemeChanged` if such names appear, so that a version bump that brings
  them back is noticed instead of silently testing fewer pairs.
* Tests of a pair: every `tests/**/*.py` that mentions both the dotted package `docs_src.<topic>`
  (not followed by a word character, so `request_forms` does not match `request_forms_and_files`) and
  the word `<stem>_non_an`. In 0.165.0 that is exactly one file per pair, 87 files (two files cover
  several pairs, e.g. `test_dependencies/test_tutorial002_tutorial003_tutorial004.py`). The files
  parametrize a fixture over `"<stem>_non_an"` and `"<stem>"` (`"app_b_non_an.test_main"` /
  `"app_b.test_main"` for a package) and import `docs_src.<topic>.<param>`. A test id that contains
  the word `<stem>` runs the twin (depfix's output), one with `<stem>_non_an` runs the untouched old
  file; an id that names neither counts for every pair of its file.

How one oracle run goes (`run_oracle`); every step is batched, about a minute on 2 cores
--------------------------------------------------------------------------------------------
1. `ensure_sdist`: `pip download --no-deps --no-binary :all: fastapi==FASTAPI_VERSION` into a cache
   directory, check its SHA-256, unpack it once (`SdistUnavailable` when it cannot be had).
2. Copy the unpacked tree to a fresh work directory (the cached copy is never modified).
3. Copy the work tree's `docs_src/` and `pyproject.toml` into an *application tree* and run ONE
   `python -m depfix apply --unsafe --select DF006 --format json <every old-style file>` there (cwd =
   that tree, `PYTHONSAFEPATH=1`). Why not in the sdist itself: there `fastapi/` is a first-party
   package of the tree, depfix resolves `from fastapi import Depends` to that local code instead of
   to the installed library, and DF006 reports nothing (0 of 90 files change with depfix 9e94c8b).
   The tutorials as an application with FastAPI installed is the case DF006 is for. Why one call:
   depfix indexes the whole tree on each call, so one call per pair would multiply that cost by 90.
   Every file of the application tree is hashed before and after; an edit to a file depfix was not
   given is reported (`Summary.stray_changes`).
4. ONE `python -m depfix check --select DF006 --format json <the same files>`: nothing may be left
   (except diagnostics without a fix in the pairs of NO_FIX_ALLOWED, each with its reason).
5. Write each rewritten file over its twin in the work tree; the old-style files stay as shipped and
   their test cases run as a control. (Baseline mode skips steps 3-4 and copies the untouched
   old-style files over the twins: a check of the harness itself, every test must pass then too.)
6. ONE inner pytest over the union of the pairs' test files, with cwd and rootdir at the sdist root,
   FastAPI's own configuration (`-c pyproject.toml`: `filterwarnings = ["error"]`, `--strict-config`,
   `--strict-markers`, `strict_xfail`, a 20 s per-test timeout), `PYTHONPATH=<root>:<root>/docs_src`
   as FastAPI's `scripts/test.sh` sets it (so the tree's own `fastapi/` package is the one imported),
   `-p no:cacheprovider`, and:
   * serially by default (see XDIST_WORKERS); with DEPFIX_ORACLE_WORKERS=N, `-n N --dist loadgroup`
     as FastAPI's own `scripts/test.sh` runs them (`loadgroup` because it marks tests `xdist_group`).
     pytest-xdist is needed either way: under `--strict-markers` that marker must be registered;
   * `--runxfail`: `test_dependencies/test_tutorial008.py` marks the Annotated `tutorial008` xfail
     ("NameError: name 'DepA' is not defined" in FastAPI's hand-written twin). Here the twin holds
     depfix's output, which must simply pass: an expected failure would hide a broken rewrite, and a
     strict XPASS would fail a correct one;
   * `--inline-snapshot=disable`: `snapshot(...)` values compare by plain equality and are never
     rewritten, whatever inline-snapshot's CI detection says;
   * no `-x`: all pairs run in one process, so stopping at the first failure would leave every later
     tutorial without a result. A small plugin (written to a temporary directory, not into the tree)
     records every test's outcome as JSON lines (on the controller when xdist runs).
7. Outcomes are mapped back to pairs (see above) and summarised; `Summary.to_json` is what the test
   writes to disk and prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

# --- The pin: the one place that names the FastAPI release the oracle runs. --------------------------
# Keep it equal to the FastAPI version the `test` extra installs (`pip show fastapi`). When bumping it,
# update the hash (`sha256sum fastapi-<v>.tar.gz` of the downloaded file) and FASTAPI_MIN_PYTHON
# (the release's `Requires-Python`), then run the oracle in baseline mode (see tests/test_fastapi_conformance.py).
FASTAPI_VERSION = "0.165.0"
FASTAPI_SDIST_SHA256 = "dd94d4128319c1e1d50535ab023ab698f850a4d2822f0e181747b46f4ff3c0ab"
FASTAPI_MIN_PYTHON = (3, 11)

RULE = "DF006"

# --- Known, explained exclusions. ---------------------------------------------------------------------
# Pair name ("<topic>/<stem>") -> why the pair is neither rewritten nor tested. Every entry needs a
# reason a reader can check. Empty for 0.165.0: every pair's tests run here, with the packages of the
# `test` extra, on Python >= FASTAPI_MIN_PYTHON.
EXCLUSIONS: dict[str, str] = {}

# Pair name -> why DF006 is right to report a site of that old-style file WITHOUT a fix. For these
# pairs only, DF006 diagnostics with `"fix": null` may be left after `apply`, and the file may stay
# unchanged. Anywhere else both are failures: a leftover means an unfinished migration, and an
# unchanged file would pass its tests without exercising any rewrite. A leftover that has a fix
# (refused or conflicting) is never allowed. Every old-style file in 0.165.0 has at least one site
# DF006 targets.
NO_FIX_ALLOWED: dict[str, str] = {
    # `dep_a=Depends(dependency_a)`: the parameter has no annotation and `dependency_a` declares no
    # return type. FastAPI's twin writes `Annotated[DepA, ...]` from knowledge the code does not state;
    # DF006 reports the site instead of guessing a type.
    "dependencies/tutorial008": "unannotated parameter whose provider declares no return type",
}

PIP_TIMEOUT = 300
DEPFIX_TIMEOUT = 600
PYTEST_TIMEOUT = 900
# Serial by default: measured on the 2-core machine, `-n 2` costs about 60% more CPU (each worker imports
# FastAPI, pydantic and the tutorials again) and was no faster in wall time when other work shares the
# cores; on an idle machine it saves a few seconds. DEPFIX_ORACLE_WORKERS=2 turns it on.
XDIST_WORKERS = int(os.environ.get("DEPFIX_ORACLE_WORKERS", "0") or 0)

_PLUGIN_NAME = "_depfix_oracle_plugin"
_PLUGIN_SOURCE = '''\
"""Written by depfix's conformance harness: one JSON line per test phase, on the controller only."""
import json
import os

_PATH = os.environ["DEPFIX_ORACLE_RESULTS"]


def _message(report):
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:2000]
    text = getattr(report, "longreprtext", "") or ""
    return text.strip().splitlines()[-1][:2000] if text.strip() else ""


def _write(record):
    with open(_PATH, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\\n")


def pytest_runtest_logreport(report):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller receives (and records) every worker's reports
    _write({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
            "message": _message(report) if report.outcome != "passed" else ""})


def pytest_collectreport(report):
    if os.environ.get("PYTEST_XDIST_WORKER") or report.outcome != "failed":
        return
    _write({"nodeid": report.nodeid, "when": "collect", "outcome": "failed", "message": _message(report)})
'''


class SdistUnavailable(Exception):
    """The source distribution could not be downloaded (no network, registry down, ...)."""


class SchemeChanged(Exception):
    """The sdist's tutorial layout is not the one this module knows: update `discover_pairs`."""


class HarnessError(Exception):
    """A step of the oracle itself failed (not a tutorial test): the message says which and why."""


class RuleMissing(Exception):
    """depfix answered 'no rule matches' for the rule under test."""


# --- Downloading and unpacking. ----------------------------------------------------------------------


def ensure_sdist(
    cache_dir: Path, version: str = FASTAPI_VERSION, sha256: Optional[str] = FASTAPI_SDIST_SHA256
) -> Path:
    """The unpacked `fastapi-<version>` tree under `cache_dir`, downloaded and unpacked on first use."""
    root = cache_dir / f"fastapi-{version}"
    marker = root / ".depfix-oracle-complete"
    if marker.is_file():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="download-") as scratch:
        scratch_dir = Path(scratch)
        archive = _download(scratch_dir, version)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if sha256 is not None and digest != sha256:
            raise HarnessError(
                f"{archive.name}: sha256 {digest}, expected {sha256} (pin in tests/conformance.py)"
            )
        unpacked = scratch_dir / "unpacked"
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(unpacked, filter="data")
            else:  # pragma: no cover - Pythons without extraction filters
                tar.extractall(unpacked)  # a pinned, hash-checked archive
        tops = list(unpacked.iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise HarnessError(
                f"{archive.name}: expected one top-level directory, found {sorted(p.name for p in tops)}"
            )
        (tops[0] / marker.name).write_text(f"{archive.name} sha256={digest}\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)  # an earlier, interrupted unpack (no marker)
        tops[0].rename(root)
    return root


def _download(directory: Path, version: str) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(directory),
        f"fastapi=={version}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise SdistUnavailable(
            f"`pip download fastapi=={version}` timed out after {PIP_TIMEOUT} s"
        ) from error
    archives = sorted(directory.glob(f"fastapi-{version}.tar.gz"))
    if done.returncode != 0 or not archives:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SdistUnavailable(
            f"`pip download fastapi=={version}` failed (exit {done.returncode}):\n{tail}"
        )
    return archives[0]


# --- Pairs and their tests. ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One old-style tutorial and its Annotated twin, with the FastAPI test files that import them."""

    name: str  # "<topic>/<stem>", e.g. "dependencies/tutorial008b" or "settings/app02"
    kind: str  # "module" or "package"
    stem: str
    # (old-style file, twin file), paths relative to the sdist root
    files: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]  # test files relative to the sdist root


# `_an.py`, `_an_py39.py`, `_py310.py`: names of other pairing schemes
_SUSPECT_NAMES = re.compile(r"(?:(?<!_non)_an|_py3\d+)(?:\.py)?$")


def discover_pairs(root: Path) -> list[Pair]:
    """Every (old style, Annotated) tutorial pair under `root/docs_src`, with its tests, sorted by name."""
    docs = root / "docs_src"
    if not docs.is_dir():
        raise SchemeChanged(f"{root}: no docs_src/ directory")
    suspects = sorted(
        p.relative_to(root).as_posix()
        for p in docs.rglob("*")
        if _SUSPECT_NAMES.search(p.name) and p.name != "__init__.py"
    )
    if suspects:
        raise SchemeChanged(
            "tutorial variants with an `_an` or `_pyXY` suffix exist in this release, which the pairing scheme "
            f"in tests/conformance.py does not cover: {suspects[:10]}"
        )
    tests = _read_tests(root)
    pairs: list[Pair] = []
    for old in sorted(docs.rglob("*_non_an.py")):
        if any(part.endswith("_non_an") for part in old.relative_to(docs).parent.parts):
            continue  # a module inside an old-style package: part of that package's pair
        stem = old.name[: -len("_non_an.py")]
        twin = old.with_name(f"{stem}.py")
        if not twin.is_file():
            raise SchemeChanged(
                f"{old.relative_to(root)} has no Annotated twin {twin.relative_to(root)}"
            )
        single: tuple[tuple[str, str], ...] = (
            (old.relative_to(root).as_posix(), twin.relative_to(root).as_posix()),
        )
        pairs.append(_pair(root, old.parent, stem, "module", single, tests))
    for package in sorted(p for p in docs.rglob("*_non_an") if p.is_dir()):
        stem = package.name[: -len("_non_an")]
        twin_dir = package.with_name(stem)
        if not twin_dir.is_dir():
            raise SchemeChanged(
                f"{package.relative_to(root)} has no Annotated twin {twin_dir.relative_to(root)}"
            )
        files = tuple(
            (
                module.relative_to(root).as_posix(),
                (twin_dir / module.relative_to(package)).relative_to(root).as_posix(),
            )
            for module in sorted(package.rglob("*.py"))
        )
        pairs.append(_pair(root, package.parent, stem, "package", files, tests))
    return sorted(pairs, key=lambda pair: pair.name)


def _read_tests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / "tests").rglob("*.py"))
    }


def _pair(
    root: Path,
    topic_dir: Path,
    stem: str,
    kind: str,
    files: tuple[tuple[str, str], ...],
    tests: Mapping[str, str],
) -> Pair:
    topic = topic_dir.relative_to(root / "docs_src").as_posix()
    package = re.compile(re.escape("docs_src." + topic.replace("/", ".")) + r"(?!\w)")
    old_name = re.compile(rf"\b{re.escape(stem)}_non_an\b")
    found = tuple(
        path for path, text in tests.items() if package.search(text) and old_name.search(text)
    )
    return Pair(name=f"{topic}/{stem}", kind=kind, stem=stem, files=files, tests=found)


def variant_of(pair: Pair, nodeid: str) -> str:
    """Which variant a test id runs: "twin" (the rewritten file), "old" (untouched) or "both" (unknown)."""
    params = nodeid[nodeid.index("[") :] if "[" in nodeid else ""
    if re.search(rf"\b{re.escape(pair.stem)}\b", params):
        return "twin"
    if re.search(rf"\b{re.escape(pair.stem)}_non_an\b", params):
        return "old"
    return "both"


# --- Running depfix. -------------------------------------------------------------------------------------


def _depfix(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONSAFEPATH"] = (
        "1"  # the sdist's own packages (fastapi/, tests/, scripts/) never shadow depfix's
    )
    env.pop("PYTHONPATH", None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "depfix", *args],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
            timeout=DEPFIX_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise HarnessError(
            f"`depfix {' '.join(args[:4])} ...` timed out after {DEPFIX_TIMEOUT} s"
        ) from error


def _json_report(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    if done.returncode == 2 and "no rule matches" in done.stderr:
        raise RuleMissing(done.stderr.strip())
    if done.returncode not in (0, 1):
        raise HarnessError(
            f"{what} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError as error:
        raise HarnessError(
            f"{what}: stdout is not a JSON report\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        ) from error
    return report


def _tree_hashes(root: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            path = Path(directory, name)
            hashes[path.relative_to(root).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return hashes


def _by_path(
    entries: Iterable[Mapping[str, Any]], work: Path
) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        path = Path(str(entry.get("path", "")))
        resolved = (path if path.is_absolute() else work / path).resolve()
        try:
            relative = resolved.relative_to(work.resolve()).as_posix()
        except ValueError:
            relative = str(path)
        found.setdefault(relative, []).append(entry)
    return found


# --- The inner pytest run. ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    # "passed", "failed" or "skipped" (a failed setup or teardown makes the test "failed")
    outcome: str
    message: str = ""


def run_fastapi_tests(
    work: Path, test_files: Sequence[str], scratch: Path
) -> tuple[list[TestOutcome], int, str]:
    """Run `test_files` (relative to `work`) once under FastAPI's config; outcomes, exit code, output tail."""
    plugin_dir = scratch / "plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / f"{_PLUGIN_NAME}.py").write_text(_PLUGIN_SOURCE, encoding="utf-8")
    results = scratch / "results.jsonl"
    results.unlink(missing_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COV_CORE_")) and k != "PYTHONSAFEPATH"
    }
    env["PYTHONPATH"] = os.pathsep.join([str(work), str(work / "docs_src"), str(plugin_dir)])
    env["DEPFIX_ORACLE_RESULTS"] = str(results)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        "pyproject.toml",
        "--rootdir",
        ".",
        "-p",
        "no:cacheprovider",
        "-p",
        _PLUGIN_NAME,
        "-q",
        "-rfE",
        "--runxfail",
        "--inline-snapshot=disable",
        *(["-n", str(XDIST_WORKERS), "--dist", "loadgroup"] if XDIST_WORKERS > 0 else []),
        *test_files,
    ]
    try:
        done = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
            timeout=PYTEST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise HarnessError(f"FastAPI's tests timed out after {PYTEST_TIMEOUT} s") from error
    output = done.stdout + done.stderr
    if done.returncode not in (0, 1):  # 2 interrupted, 3 internal error, 4 usage error, 5 no tests
        raise HarnessError(f"FastAPI's pytest exited {done.returncode}:\n{output[-6000:]}")
    return _outcomes(results), done.returncode, "\n".join(output.strip().splitlines()[-40:])


def _outcomes(results: Path) -> list[TestOutcome]:
    merged: dict[str, TestOutcome] = {}
    lines = results.read_text(encoding="utf-8").splitlines() if results.is_file() else []
    for line in lines:
        record = json.loads(line)
        nodeid, outcome, when = record["nodeid"], record["outcome"], record["when"]
        earlier = merged.get(nodeid)
        if earlier is not None and earlier.outcome == "failed":
            continue  # a failure in any phase stands
        if outcome == "failed" or (outcome == "skipped" and when in ("setup", "call", "collect")):
            merged[nodeid] = TestOutcome(nodeid, outcome, record.get("message", ""))
        elif outcome == "passed" and when == "call":
            merged[nodeid] = TestOutcome(nodeid, "passed")
    return [merged[k] for k in sorted(merged)]


# --- One run of the oracle. -------------------------------------------------------------------------------


@dataclass
class PairResult:
    name: str
    kind: str
    files: list[str]
    tests: list[str]
    excluded: str = ""  # the reason, for a pair in EXCLUSIONS
    changed: Optional[bool] = None  # did depfix change the old-style file(s)? None in baseline mode
    matches_twin: Optional[bool] = None  # is depfix's output byte-identical to FastAPI's own twin?
    # What `depfix check --select DF006` still reports after apply: sites with a fix, sites without
    left: list[str] = field(default_factory=list)
    left_no_fix: list[str] = field(default_factory=list)
    depfix_errors: list[str] = field(default_factory=list)
    # Passed tests whose id names the twin (the rewritten file); at least one is required.
    twin_passed: int = 0
    passed: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "nodeid: message"

    def problems(self, baseline: bool) -> list[str]:
        """Why this pair does not conform (empty when it does, or when it is excluded)."""
        return self.test_problems() + ([] if baseline else self.depfix_problems())

    def test_problems(self) -> list[str]:
        """What went wrong in FastAPI's tests of this pair."""
        if self.excluded:
            return []
        found: list[str] = []
        if not self.tests:
            found.append("no FastAPI test imports this tutorial")
        found += [f"test failed: {f}" for f in self.failed]
        if self.tests and not self.failed and self.twin_passed == 0:
            found.append(
                "no test whose id names the rewritten twin passed (all skipped, or not collected)"
            )
        return found

    def depfix_problems(self) -> list[str]:
        """What depfix left undone on this pair: errors, leftover diagnostics, no change at all."""
        found: list[str] = []
        if not self.excluded:
            found += [f"depfix error: {e}" for e in self.depfix_errors]
            found += [f"{RULE} left after apply, with a fix: {d}" for d in self.left]
            if self.name not in NO_FIX_ALLOWED:
                found += [f"{RULE} left after apply, no fix: {d}" for d in self.left_no_fix]
                if self.changed is False:
                    found.append("depfix did not change the old-style file")
                if self.left_no_fix or self.changed is False:
                    found.append(
                        f"(NO_FIX_ALLOWED takes this pair, with a reason, if {RULE} is right)"
                    )
        return found


@dataclass
class Summary:
    fastapi_version: str
    baseline: bool
    pairs: list[PairResult]
    test_files: list[str]
    tests_passed: int
    tests_failed: int
    tests_skipped: int
    pytest_exit: int
    pytest_tail: str
    stray_changes: list[str]  # files of the application tree depfix changed that it was not given
    seconds: dict[str, float]

    @property
    def failing(self) -> dict[str, list[str]]:
        return {p.name: p.problems(self.baseline) for p in self.pairs if p.problems(self.baseline)}

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["pairs_total"] = len(self.pairs)
        document["pairs_excluded"] = sum(1 for p in self.pairs if p.excluded)
        document["pairs_failing"] = self.failing
        return document

    def table(self) -> str:
        """One line per pair, then the totals: what the test prints."""
        mode = (
            "baseline (old-style files copied unchanged)"
            if self.baseline
            else f"depfix apply --unsafe --select {RULE}"
        )
        lines = [f"FastAPI {self.fastapi_version} conformance oracle, {mode}"]
        for p in self.pairs:
            if p.excluded:
                lines.append(f"  EXCL {p.name}: {p.excluded}")
                continue
            status = "FAIL" if p.problems(self.baseline) else "ok  "
            extra = (
                ""
                if self.baseline
                else f" changed={p.changed} same-as-twin={p.matches_twin}"
                f" left={len(p.left)}+{len(p.left_no_fix)} without fix"
            )
            lines.append(
                f"  {status} {p.name}: {p.passed} passed ({p.twin_passed} on the twin), {len(p.failed)} failed, {len(p.skipped)} skipped{extra}"
            )
        active = [p for p in self.pairs if not p.excluded]
        ok = sum(1 for p in active if not p.problems(self.baseline))
        lines.append(
            f"pairs: {ok}/{len(active)} conform ({len(self.pairs) - len(active)} excluded); tests: {self.tests_passed} passed, "
            f"{self.tests_failed} failed, {self.tests_skipped} skipped in {len(self.test_files)} files; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        )
        return "\n".join(lines)


def run_oracle(sdist: Path, work: Path, scratch: Path, *, baseline: bool) -> Summary:
    """Copy `sdist` to `work`, rewrite (or, in baseline mode, copy) every pair, run the tests, summarise."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(
        sdist, work, ignore=shutil.ignore_patterns("__pycache__", ".depfix-oracle-complete")
    )
    seconds["copy"] = time.monotonic() - started

    pairs = discover_pairs(work)
    results = {
        p.name: PairResult(
            p.name,
            p.kind,
            [old for old, _ in p.files],
            list(p.tests),
            excluded=EXCLUSIONS.get(p.name, ""),
        )
        for p in pairs
    }
    unknown = sorted((set(EXCLUSIONS) | set(NO_FIX_ALLOWED)) - set(results))
    if unknown:
        raise HarnessError(
            f"EXCLUSIONS / NO_FIX_ALLOWED name pairs this release does not have: {unknown}"
        )
    active = [p for p in pairs if not results[p.name].excluded]
    old_files = [old for p in active for old, _ in p.files]
    originals = {old: (work / old).read_bytes() for old in old_files}
    twins = {twin: (work / twin).read_bytes() for p in active for _, twin in p.files}

    rewritten = dict(originals)  # old-style file -> what goes over its twin
    stray: list[str] = []
    if not baseline:
        # What depfix sees: the tutorials as an application, with FastAPI installed (step 3 above).
        app = scratch / "app"
        if app.exists():
            shutil.rmtree(app)
        shutil.copytree(work / "docs_src", app / "docs_src")
        shutil.copy2(work / "pyproject.toml", app / "pyproject.toml")
        started = time.monotonic()
        before = _tree_hashes(app)
        applied = _json_report(
            _depfix(app, "apply", "--unsafe", "--select", RULE, "--format", "json", *old_files),
            f"depfix apply --select {RULE}",
        )
        after = _tree_hashes(app)
        seconds["depfix apply"] = time.monotonic() - started
        stray = sorted(
            k
            for k in before.keys() | after.keys()
            if before.get(k) != after.get(k) and k not in originals
        )
        errors = _by_path(applied.get("errors", []), app)

        started = time.monotonic()
        checked = _json_report(
            _depfix(app, "check", "--select", RULE, "--format", "json", *old_files),
            f"depfix check --select {RULE}",
        )
        seconds["depfix check"] = time.monotonic() - started
        left = _by_path(checked.get("diagnostics", []), app)
        errors_after = _by_path(checked.get("errors", []), app)
        rewritten = {old: (app / old).read_bytes() for old in old_files}
        for p in active:
            result = results[p.name]
            result.changed = any(rewritten[old] != originals[old] for old, _ in p.files)
            result.matches_twin = all(rewritten[old] == twins[twin] for old, twin in p.files)
            for old, _ in p.files:
                for d in left.get(old, []):
                    line = f"{old}:{d.get('line')}:{d.get('column')}: {d.get('code')} {d.get('message')}"
                    (result.left if d.get("fix") is not None else result.left_no_fix).append(line)
                result.depfix_errors += [
                    f"{old}: {e.get('message', e)}"
                    for e in errors.get(old, []) + errors_after.get(old, [])
                ]

    # The twins get the rewrite; the old-style files stay as shipped and run as a control.
    for p in active:
        for old, twin in p.files:
            (work / twin).write_bytes(rewritten[old])

    started = time.monotonic()
    test_files = sorted({t for p in active for t in p.tests})
    outcomes, exit_code, tail = (
        run_fastapi_tests(work, test_files, scratch) if test_files else ([], 0, "")
    )
    seconds["FastAPI tests"] = time.monotonic() - started

    by_file: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        by_file.setdefault(outcome.nodeid.split("::", 1)[0], []).append(outcome)
    for p in active:
        result = results[p.name]
        for test_file in p.tests:
            for outcome in by_file.get(test_file, []):
                variant = variant_of(p, outcome.nodeid)
                others = [q for q in active if test_file in q.tests and q is not p]
                if variant == "both" and any(
                    variant_of(q, outcome.nodeid) != "both" for q in others
                ):
                    continue  # the id names another pair of the same file
                if outcome.outcome == "passed":
                    result.passed += 1
                    result.twin_passed += variant == "twin"
                elif outcome.outcome == "skipped":
                    result.skipped.append(f"{outcome.nodeid}: {outcome.message}")
                else:
                    result.failed.append(f"{outcome.nodeid}: {outcome.message}")
    counts = {
        kind: sum(1 for o in outcomes if o.outcome == kind)
        for kind in ("passed", "failed", "skipped")
    }
    return Summary(
        fastapi_version=FASTAPI_VERSION,
        baseline=baseline,
        pairs=[results[p.name] for p in pairs],
        test_files=test_files,
        tests_passed=counts["passed"],
        tests_failed=counts["failed"],
        tests_skipped=counts["skipped"],
        pytest_exit=exit_code,
        pytest_tail=tail,
        stray_changes=stray,
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )
