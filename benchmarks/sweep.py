"""Run depfix over copies of real repositories and tabulate what went wrong.

Not part of the test suite. For each directory given on the command line the script copies it to a
temporary directory (the original is never touched), then runs, with this interpreter's depfix:

1. `depfix check --format json .`: files scanned, diagnostics by code, errors, wall time;
2. `depfix apply --unsafe .`: every changed `.py` file must still parse;
3. `depfix apply --unsafe --dry-run .` again: it must print nothing (idempotence);
4. `ruff check --no-cache --select FAST .` when `ruff` is on PATH, for a timing comparison.

Usage: python benchmarks/sweep.py [--keep] DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

CRASH_MARKERS = ("internal error", "Traceback (most recent call last)")


@dataclass
class RepoResult:
    name: str
    files: int = 0
    check_rc: int = 0
    check_seconds: float = 0.0
    ruff_seconds: Optional[float] = None
    diagnostics: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    changed: int = 0
    unparsable: list[str] = field(default_factory=list)
    unverifiable: int = 0
    """Changed files whose original did not parse with this interpreter either."""
    non_idempotent: list[str] = field(default_factory=list)


def depfix(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "depfix", *args], cwd=cwd, capture_output=True, text=True
    )
    return process, time.perf_counter() - start


def crash_lines(process: subprocess.CompletedProcess[str]) -> list[str]:
    lines = [line for line in process.stderr.splitlines() if any(m in line for m in CRASH_MARKERS)]
    if process.returncode not in (0, 1, 2, 3):
        lines.append(f"exit status {process.returncode}")
    return lines


def python_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.py") if p.is_file() and not p.is_symlink()]


def digests(root: Path) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in python_files(root)}


def parses(data: bytes) -> bool:
    try:
        ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def run_check(copy: Path, result: RepoResult) -> None:
    process, result.check_seconds = depfix(["check", "--format", "json", "."], copy)
    result.check_rc = process.returncode
    result.crashes += crash_lines(process)
    try:
        report = json.loads(process.stdout)
    except json.JSONDecodeError:
        result.crashes.append(f"check: no JSON report (exit {process.returncode})")
        return
    result.files = report["summary"]["files_scanned"]
    result.diagnostics.update(d["code"] for d in report["diagnostics"])
    for error in report["errors"]:
        text = f"{error['path']}:{error.get('line') or 0}: {error['message']}"
        (result.crashes if "internal error" in error["message"] else result.errors).append(text)


def run_apply(copy: Path, originals: dict[Path, bytes], result: RepoResult) -> None:
    before = digests(copy)
    process, _ = depfix(["apply", "--unsafe", "."], copy)
    result.crashes += [f"apply: {line}" for line in crash_lines(process)]
    for path, digest in digests(copy).items():
        if before.get(path) == digest:
            continue
        result.changed += 1
        if not parses(path.read_bytes()):
            if parses(originals.get(path, b"")):
                result.unparsable.append(path.relative_to(copy).as_posix())
            else:
                result.unverifiable += 1
    second, _ = depfix(["apply", "--unsafe", "--dry-run", "."], copy)
    result.crashes += [f"rerun: {line}" for line in crash_lines(second)]
    result.non_idempotent = sorted(
        {line[6:] for line in second.stdout.splitlines() if line.startswith("+++ b/")}
    )


def run_ruff(copy: Path, result: RepoResult) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        return
    start = time.perf_counter()
    subprocess.run(
        [ruff, "check", "--no-cache", "--select", "FAST", "--exit-zero", "."],
        cwd=copy,
        capture_output=True,
    )
    result.ruff_seconds = time.perf_counter() - start


def sweep(source: Path, keep: bool) -> RepoResult:
    result = RepoResult(source.resolve().name)
    workdir = Path(tempfile.mkdtemp(prefix=f"sweep-{result.name}-"))
    copy = workdir / result.name
    try:
        shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        originals = {path: path.read_bytes() for path in python_files(copy)}
        run_check(copy, result)
        run_ruff(copy, result)
        run_apply(copy, originals, result)
    finally:
        if keep:
            print(f"kept {copy}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def table(results: list[RepoResult]) -> str:
    header = ("repo", "files", "diagnostics", "errors", "crashes", "changed", "unparsable",
              "non-idem", "depfix s", "ruff s", "ratio")  # fmt: skip
    rows = [header]
    for r in results:
        codes = " ".join(f"{code}:{n}" for code, n in sorted(r.diagnostics.items())) or "-"
        ruff = f"{r.ruff_seconds:.2f}" if r.ruff_seconds is not None else "-"
        ratio = f"{r.check_seconds / r.ruff_seconds:.0f}x" if r.ruff_seconds else "-"
        rows.append((r.name, str(r.files), codes, str(len(r.errors)), str(len(r.crashes)),
                     str(r.changed), str(len(r.unparsable)), str(len(r.non_idempotent)),
                     f"{r.check_seconds:.2f}", ruff, ratio))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def details(r: RepoResult) -> list[str]:
    lines = []
    if r.errors:
        lines.append(f"{r.name}: {len(r.errors)} errors, first: " + " | ".join(r.errors[:3]))
    lines += [f"{r.name}: CRASH {line}" for line in r.crashes]
    lines += [f"{r.name}: output does not parse: {path}" for path in r.unparsable]
    if r.unverifiable:
        lines.append(f"{r.name}: {r.unverifiable} changed files unparsable before and after")
    lines += [f"{r.name}: second run still changes {path}" for path in r.non_idempotent]
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the copies after the run")
    args = parser.parse_args(argv)
    results = []
    for directory in args.directories:
        print(f"sweeping {directory} ...", file=sys.stderr)
        results.append(sweep(directory, args.keep))
    print(table(results))
    for result in results:
        for line in details(result):
            print(line)
    bad = any(r.crashes or r.unparsable or r.non_idempotent for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
