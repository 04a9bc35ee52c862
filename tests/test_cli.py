"""The command line through its real entry point (`python -m depfix`), in small projects on disk.

Covers the SPEC contract: exit codes, the stdout/stderr split, usage errors, apply/check/dry-run, diffs
that `git apply` and `patch -p1` reproduce byte for byte, encodings and line endings, file modes, files
that cannot be processed, the JSON report, determinism across worker counts, rule selection,
suppression comments and cross-file resolution when a single file is passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
from conftest import (
    APP,
    APP_FIXED,
    CLEAN,
    PYPROJECT,
    Run,
    run_depfix,
    run_parallel,
    snapshot,
    write_tree,
)

import depfix

Project = Callable[..., Path]

DIAGNOSTIC = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<code>DF\d{3}) (?P<message>.+)$"
)
SUMMARY = re.compile(
    r"^depfix: \d+ files? scanned, \d+ (changed|would change), \d+ fix(es)?( available)?, "
    r"\d+ diagnostics? left, \d+ errors?$"
)
SYNTAX_ERROR = "x = 1\ndef broken(:\n    pass\n"  # the `:` is at line 2, column 12


def fixed(data: bytes) -> bytes:
    assert data.count(b"Depends(get_db())") >= 1
    return data.replace(b"Depends(get_db())", b"Depends(get_db)")


def diagnostics_in(text: str) -> list[re.Match[str]]:
    return [m for m in map(DIAGNOSTIC.match, text.splitlines()) if m]


def only_summary_and(text: str) -> list[str]:
    """stderr lines without the summary line, asserting the summary line is there exactly once."""
    lines = text.splitlines()
    summaries = [line for line in lines if SUMMARY.match(line)]
    assert len(summaries) == 1, text
    return [line for line in lines if not SUMMARY.match(line)]


# ---- exit codes -------------------------------------------------------------------------------
def test_clean_project_exits_0_with_empty_stdout(project: Project) -> None:
    root = project({"app.py": CLEAN})
    run = run_depfix(root, "check")
    assert run.code == 0, run
    assert run.stdout == b""
    assert only_summary_and(run.err) == []
    assert "1 file scanned" in run.err


def test_diagnostic_exits_1_and_prints_text_line(project: Project) -> None:
    root = project({"app.py": APP})
    run, absolute, quiet = run_parallel(
        (root, ["check"]), (root, ["check", str(root / "app.py")]), (root, ["check", "--quiet"])
    )
    assert run.code == 1, run
    found = diagnostics_in(run.out)
    assert len(found) == 1 == len(run.out.splitlines())
    assert found[0].group("path", "line", "column", "code") == ("app.py", "11", "13", "DF005")
    assert run.out.rstrip("\n").endswith(" [*]")
    assert snapshot(root)["app.py"][0] == APP.encode()  # check never writes
    assert (absolute.code, absolute.stdout) == (
        1,
        run.stdout,
    )  # paths are shown relative to the cwd
    assert (quiet.code, quiet.stdout, quiet.stderr) == (1, run.stdout, b"")


def test_syntax_error_alone_exits_2(project: Project) -> None:
    root = project({"bad.py": SYNTAX_ERROR, "ok.py": CLEAN})
    run = run_depfix(root, "check")
    assert run.code == 2, run
    assert run.stdout == b""
    assert only_summary_and(run.err) == ["bad.py:2:12: error: syntax error: invalid syntax"]


def test_findings_and_errors_exit_3(project: Project) -> None:
    root = project({"bad.py": SYNTAX_ERROR, "app.py": APP})
    run = run_depfix(root, "apply")
    assert run.code == 3, run
    assert (root / "app.py").read_bytes() == APP_FIXED.encode()
    assert (root / "bad.py").read_bytes() == SYNTAX_ERROR.encode()


def test_exit_zero_clears_findings_bit_only(project: Project) -> None:
    findings = project({"app.py": APP})
    both = project({"app.py": APP, "bad.py": SYNTAX_ERROR})
    run, errors = run_parallel(
        (findings, ["check", "--exit-zero"]), (both, ["check", "--exit-zero"])
    )
    assert run.code == 0, run
    assert len(diagnostics_in(run.out)) == 1  # still reported
    assert errors.code == 2, errors


USAGE_CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "unknown-option": (["apply", "--bogus"], {}),
    "unknown-format": (["apply", "--format", "xml"], {}),
    "unknown-select-code": (["apply", "--select", "DF999"], {}),
    "unknown-ignore-prefix": (["apply", "--ignore", "DF9"], {}),
    "not-a-code": (["apply", "--select", "E501"], {}),
    "nonexistent-path": (["apply", ".", "missing.py"], {}),
    "target-too-old": (["apply", "--target-version", "py27"], {}),
    "target-malformed": (["apply", "--target-version", "3.11"], {}),
    "negative-jobs": (["apply", "--jobs", "-1"], {}),
    "missing-config": (["apply", "--config", "missing.toml"], {}),
    "unknown-command": (["frobnicate"], {}),
    "unknown-key-in-pyproject": (
        ["apply"],
        {"pyproject.toml": PYPROJECT + "selectt = ['DF005']\n"},
    ),
    "unknown-key-in-config-file": (
        ["apply", "--config", "depfix.toml"],
        {"depfix.toml": "[tool.depfix]\nselectt = ['DF005']\n"},
    ),
    "invalid-toml": (["apply"], {"pyproject.toml": PYPROJECT + "[tool.depfix\n"}),
}


@pytest.fixture(scope="module")
def usage_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, bool]]:
    """Every bad-usage case run at once: its Run, and whether the project was left as it was."""
    roots = {}
    for name, (_, files) in USAGE_CASES.items():
        root = tmp_path_factory.mktemp(name)
        write_tree(root, {"pyproject.toml": PYPROJECT, "app.py": APP, **files})
        roots[name] = (root, snapshot(root))
    runs = run_parallel(
        *((roots[name][0], arguments) for name, (arguments, _) in USAGE_CASES.items())
    )
    return {
        name: (run, snapshot(roots[name][0]) == roots[name][1])
        for name, run in zip(USAGE_CASES, runs)
    }


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_bad_usage_exits_2_with_one_line_and_touches_nothing(
    usage_runs: dict[str, tuple[Run, bool]], case: str
) -> None:
    run, untouched = usage_runs[case]
    assert run.code == 2, run
    assert run.stdout == b""
    lines = run.err.splitlines()
    assert len(lines) == 1, run
    assert lines[0].startswith("depfix: error: "), run
    assert untouched
    if "unknown-key" in case:
        assert "selectt" in lines[0]


# ---- apply, --check, --dry-run ------------------------------------------------------------------
def test_apply_writes_then_second_run_is_a_no_op(project: Project) -> None:
    root = project({"app.py": APP})
    first = run_depfix(root, "apply")
    assert first.code == 1, first
    assert (root / "app.py").read_bytes() == APP_FIXED.encode()
    assert "1 changed" in first.err
    after_first = snapshot(root)
    second = run_depfix(root, "apply")
    assert second.code == 0, second
    assert second.stdout == b""
    assert "0 changed" in second.err
    assert snapshot(root) == after_first
    assert not [name for name in os.listdir(root) if name.startswith(".depfix-")]


def test_apply_check_writes_nothing_and_exits_1_only_when_a_fix_is_available(
    project: Project,
) -> None:
    root = project({"app.py": APP, "clean.py": CLEAN})
    clean = project({"app.py": CLEAN})
    before = snapshot(root)
    run, nothing = run_parallel((root, ["apply", "--check"]), (clean, ["apply", "--check"]))
    assert run.code == 1, run
    assert snapshot(root) == before
    assert "1 would change" in run.err
    assert nothing.code == 0, nothing
    assert nothing.stdout == b""


EXPECTED_DIFF = (
    b"diff --git a/app.py b/app.py\n"
    b"--- a/app.py\n"
    b"+++ b/app.py\n"
    b"@@ -8,5 +8,5 @@\n"
    b" \n"
    b" \n"
    b' @app.get("/")\n'
    b"-def read(db=Depends(get_db())):\n"
    b"+def read(db=Depends(get_db)):\n"
    b"     return db\n"
)


def test_dry_run_prints_only_the_diff_on_stdout_and_writes_nothing(project: Project) -> None:
    root = project({"app.py": APP, "clean.py": CLEAN})
    before = snapshot(root)
    run = run_depfix(root, "apply", "--dry-run")
    assert run.code == 1, run
    assert run.stdout == EXPECTED_DIFF
    assert snapshot(root) == before
    rest = only_summary_and(run.err)
    assert len(diagnostics_in("\n".join(rest))) == 1 == len(rest)
    assert "\x1b[" not in run.out  # no colour when stdout is not a terminal


def test_check_with_diff_prints_the_diff_and_writes_nothing(project: Project) -> None:
    root = project({"app.py": APP})
    before = snapshot(root)
    run = run_depfix(root, "apply", "--check", "--diff")  # `--diff` is `--dry-run`'s other name
    assert run.code == 1, run
    assert run.stdout == EXPECTED_DIFF
    assert snapshot(root) == before


# ---- the dry-run diff reproduces apply ----------------------------------------------------------
ROUND_TRIP_FILES: dict[str, bytes] = {
    "app.py": APP.encode(),
    "clean.py": CLEAN.encode(),
    "crlf.py": APP.replace("\n", "\r\n").encode(),
    "pkg/__init__.py": b"",
    "pkg/deps.py": b"async def get_db():\n    yield 1\n\n\ndef get_settings() -> dict:\n    return {}\n",
    "pkg/routes.py": (
        b"from fastapi import APIRouter, Depends\n\nfrom pkg.deps import get_db, get_settings\n\n"
        b"router = APIRouter()\n\n\n@router.get('/')\n"
        b"async def read(db=Depends(get_db()), s=Depends(get_settings())): return db"  # no final newline
    ),
    "pkg/first_line.py": b"from pkg.deps import get_db; from fastapi import Depends; x = Depends(get_db())",
    "with space/my app.py": APP.encode(),
    "café.py": APP.encode(),
}


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, dict[str, Any], Path]:
    """The untouched project, its dry-run, the tree `apply` left, and the applied project."""
    original = write_tree(
        tmp_path_factory.mktemp("original"), {"pyproject.toml": PYPROJECT, **ROUND_TRIP_FILES}
    )
    (original / "crlf.py").chmod(0o755)
    dry_root = tmp_path_factory.mktemp("dry") / "project"
    applied_root = tmp_path_factory.mktemp("applied") / "project"
    shutil.copytree(original, dry_root, symlinks=True)
    shutil.copytree(original, applied_root, symlinks=True)
    dry, applied = run_parallel((dry_root, ["apply", "--dry-run"]), (applied_root, ["apply"]))
    assert dry.code == 1, dry
    assert applied.code == 1, applied
    assert snapshot(dry_root) == snapshot(original)
    return original, dry, snapshot(applied_root), applied_root


def test_apply_changes_exactly_the_fixable_files(
    round_trip: tuple[Path, Run, dict[str, Any], Path],
) -> None:
    original, _, after, _ = round_trip
    before = snapshot(original)
    changed = [
        "app.py",
        "crlf.py",
        "pkg/routes.py",
        "pkg/first_line.py",
        "with space/my app.py",
        "café.py",
    ]
    expected = dict(before)
    for path in changed:
        data, mode = before[path]
        expected[path] = (
            fixed(data).replace(b"Depends(get_settings())", b"Depends(get_settings)"),
            mode,
        )
    assert after == expected


@pytest.mark.parametrize(
    "tool",
    [
        "git",
        pytest.param(
            "patch", marks=pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch")
        ),
    ],
)
def test_the_dry_run_diff_reproduces_apply(
    round_trip: tuple[Path, Run, dict[str, Any], Path], tmp_path: Path, tool: str
) -> None:
    original, dry, after, _ = round_trip
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    if tool == "git":
        subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
        command = ["git", "-c", "core.autocrlf=false", "apply", "--whitespace=nowarn", "-"]
    else:
        command = ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch"]
    result = subprocess.run(command, cwd=copy, input=dry.stdout, capture_output=True, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert snapshot(copy) == after


def test_second_apply_after_the_round_trip_changes_nothing(
    round_trip: tuple[Path, Run, dict[str, Any], Path],
) -> None:
    _, _, after, applied_root = round_trip
    again = run_depfix(applied_root, "apply", "--dry-run")
    assert again.code == 0, again
    assert again.stdout == b""
    assert snapshot(applied_root) == after


# ---- encodings, line endings, modes -------------------------------------------------------------
LATIN1 = (
    b"# -*- coding: latin-1 -*-\n"
    b"from fastapi import Depends, FastAPI\n\n"
    b"app = FastAPI()  # caf\xe9\n\n\n"
    b"def get_db():\n    yield 'd\xe9j\xe0 vu'\n\n\n"
    b"@app.get('/')\n"
    b"def read(db=Depends(get_db())):  # na\xefve\n"
    b"    return db\n"
)


ENCODING_CASES: dict[str, bytes] = {
    "crlf.py": APP.replace("\n", "\r\n").encode(),
    "latin1.py": LATIN1,
    "bom.py": b"\xef\xbb\xbf# \xc3\xa9t\xc3\xa9\n" + APP.encode(),
    "mixed.py": APP.replace("\n", "\r\n", 3).encode(),
    "tail.py": APP.encode().rstrip(b"\n"),
    "tabs.py": APP.replace("    ", "\t").encode(),
    "mode755.py": APP.encode(),
    "mode600.py": APP.encode(),
    "mode444.py": APP.encode(),
}
MODES = {"mode755.py": 0o755, "mode600.py": 0o600, "mode444.py": 0o444}


def test_apply_keeps_every_byte_but_the_fix_and_the_mode(project: Project) -> None:
    root = project(ENCODING_CASES)
    for name, mode in MODES.items():
        (root / name).chmod(mode)
    before = snapshot(root)
    run = run_depfix(root, "apply")
    assert run.code == 1, run
    assert "9 changed" in run.err
    expected = {
        name: (fixed(data), MODES.get(name, before[name][1]))
        for name, data in ENCODING_CASES.items()
    }
    assert snapshot(root) == {**before, **expected}


# ---- files that cannot be processed ---------------------------------------------------------------
def test_unprocessable_files_are_reported_with_position_and_the_rest_is_fixed(
    project: Project,
) -> None:
    root = project(
        {
            "pkg/__init__.py": "",
            "pkg/app.py": APP,
            "pkg/bad.py": SYNTAX_ERROR,
            "pkg/undecodable.py": b"x = 1\ny = 'caf\xc3\xa9 \xff'\n",
            "pkg/bad_cookie.py": b"# -*- coding: no-such-codec -*-\nx = 1\n",
        }
    )
    before = snapshot(root)
    run = run_depfix(root, "apply")
    assert run.code == 3, run
    errors = only_summary_and(run.err)
    assert errors == [
        "pkg/bad.py:2:12: error: syntax error: invalid syntax",
        "pkg/bad_cookie.py:1:1: error: unknown encoding: no-such-codec",
        "pkg/undecodable.py:2:11: error: cannot decode byte 0xff as utf-8",
    ]
    after = snapshot(root)
    assert after["pkg/app.py"][0] == APP_FIXED.encode()
    assert {k: v for k, v in after.items() if k != "pkg/app.py"} == {
        k: v for k, v in before.items() if k != "pkg/app.py"
    }
    inside = run_depfix(root / "pkg", "check", "--format", "json")  # paths relative to the cwd
    assert inside.code == 2, inside
    assert [(e["path"], e["line"], e["column"]) for e in json.loads(inside.stdout)["errors"]] == [
        ("bad.py", 2, 12),
        ("bad_cookie.py", 1, 1),
        ("undecodable.py", 2, 11),
    ]


# ---- JSON report --------------------------------------------------------------------------------
POSITION = {"type": "integer", "minimum": 1}
COUNT = {"type": "integer", "minimum": 0}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "summary", "diagnostics", "errors"],
    "properties": {
        "version": {"const": depfix.__version__},
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["files_scanned", "files_changed", "fixes", "diagnostics", "errors"],
            "properties": {
                key: COUNT
                for key in ("files_scanned", "files_changed", "fixes", "diagnostics", "errors")
            },
        },
        "diagnostics": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "path",
                    "line",
                    "column",
                    "end_line",
                    "end_column",
                    "code",
                    "name",
                    "message",
                    "fix",
                ],
                "properties": {
                    "path": {"type": "string", "pattern": r"^(?!/)(?!\.\./)[^\\]+\.py$"},
                    "line": POSITION,
                    "column": POSITION,
                    "end_line": POSITION,
                    "end_column": POSITION,
                    "code": {"type": "string", "pattern": r"^DF\d{3}$"},
                    "name": {"type": "string", "pattern": r"^[a-z]+(-[a-z]+)*$"},
                    "message": {"type": "string", "minLength": 1},
                    "fix": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["safety", "applied"],
                                "properties": {
                                    "safety": {"enum": ["safe", "unsafe"]},
                                    "applied": {"type": "boolean"},
                                },
                            },
                        ]
                    },
                },
            },
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "line", "column", "message"],
                "properties": {
                    "path": {"type": "string", "pattern": r"^(?!/)[^\\]+$"},
                    "line": {"oneOf": [{"type": "null"}, POSITION]},
                    "column": {"oneOf": [{"type": "null"}, POSITION]},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}

JSON_PROJECT = {
    "app/__init__.py": "",
    "app/main.py": """\
from fastapi import Depends, FastAPI

from app.deps import get_conn, get_db, get_page

app = FastAPI()


@app.get("/a")
def a(db=Depends(get_db())):
    return db


@app.get("/b")
def b(page=Depends(get_page())):
    return page


@app.get("/c")
def c(conn=Depends(get_conn("x"))):
    return conn
""",
    "app/deps.py": """\
def get_db():
    yield 1


async def get_page(limit: int = 10):
    return limit


def get_conn(url=None):
    yield url
""",
    "app/broken.py": SYNTAX_ERROR,
}


def _validate(document: Any) -> None:
    jsonschema.validate(document, REPORT_SCHEMA)  # a declared test dependency: never skipped


def test_json_report_matches_the_schema(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    root = project(JSON_PROJECT)
    (root / "app" / "link.py").symlink_to(outside)
    run = run_depfix(root, "check", "--format", "json")
    assert run.code == 3, run
    document = json.loads(run.stdout)  # stdout is one JSON document and nothing else
    _validate(document)
    assert only_summary_and(run.err) == []
    assert document["summary"] == {
        "files_scanned": 4,
        "files_changed": 1,
        "fixes": 1,
        "diagnostics": 3,
        "errors": 2,
    }
    assert [
        (
            d["path"],
            d["line"],
            d["column"],
            d["end_line"],
            d["end_column"],
            d["code"],
            d["name"],
            d["fix"],
        )
        for d in document["diagnostics"]
    ] == [
        (
            "app/main.py",
            9,
            10,
            9,
            27,
            "DF005",
            "called-dependency",
            {"safety": "safe", "applied": False},
        ),
        (
            "app/main.py",
            14,
            12,
            14,
            31,
            "DF005",
            "called-dependency",
            {"safety": "unsafe", "applied": False},
        ),
        ("app/main.py", 19, 12, 19, 34, "DF005", "called-dependency", None),
    ]
    assert [(e["path"], e["line"], e["column"]) for e in document["errors"]] == [
        ("app/broken.py", 2, 12),
        ("app/link.py", None, None),
    ]


def test_json_report_after_apply_marks_fixes_applied(project: Project) -> None:
    root = project({k: v for k, v in JSON_PROJECT.items() if k != "app/broken.py"})
    run = run_depfix(root, "apply", "--unsafe", "--format", "json")
    assert run.code == 1, run
    document = json.loads(run.stdout)
    _validate(document)
    assert [d["fix"] for d in document["diagnostics"]] == [
        {"safety": "safe", "applied": True},
        {"safety": "unsafe", "applied": True},
        None,
    ]
    assert document["summary"]["files_changed"] == 1
    assert document["summary"]["fixes"] == 2
    text = (root / "app" / "main.py").read_text()
    assert (
        "Depends(get_db)" in text
        and "Depends(get_page)" in text
        and 'Depends(get_conn("x"))' in text
    )


# ---- determinism ---------------------------------------------------------------------------------
def _big_project(count: int) -> dict[str, str]:
    files = {"svc/__init__.py": "", "svc/deps/__init__.py": "", "svc/routes/__init__.py": ""}
    for number in range(count):
        files[f"svc/deps/d{number:02}.py"] = (
            f"async def session_{number}():\n    yield {number}\n\n\n"
            f"def settings_{number}() -> dict:\n    return {{}}\n\n\n"
            f"def factory_{number}():\n    return lambda: {number}\n"
        )
        other = (number * 7 + 3) % count
        body = (
            "from fastapi import APIRouter, Depends\n\n"
            f"from svc.deps.d{other:02} import factory_{other}, session_{other}, settings_{other}\n\n"
            "router = APIRouter()\n\n\n"
        )
        if number % 3:
            body += (
                f"@router.get('/{number}')\n"
                f"async def read_{number}(s=Depends(session_{other}()), c=Depends(settings_{other}()),"
                f" f=Depends(factory_{other}())):\n    return s\n"
            )
        else:
            body += f"@router.get('/{number}')\nasync def read_{number}(s=Depends(session_{other})):\n    return s\n"
        files[f"svc/routes/r{number:02}.py"] = body
    return files


def test_output_is_the_same_for_any_job_count_and_path_order(project: Project) -> None:
    count = 29  # 61 files: above the 48 at which the engine starts worker processes
    files = _big_project(count)
    assert len(files) >= 60
    root = project(files)
    paths = sorted(files)
    every_rule = ["check", "--select", "ALL", "--format", "json"]
    one, two, dirs = run_parallel(
        (root, [*every_rule, "--jobs", "1", *paths]),
        (root, [*every_rule, "--jobs", "2", *reversed(paths)]),
        (root, [*every_rule, "--jobs", "2", "svc/routes", "svc/deps", "svc/__init__.py"]),
    )
    assert one.code == 1, one
    document = json.loads(one.stdout)
    called = [d for d in document["diagnostics"] if d["code"] == "DF005"]
    expected = sum(2 for number in range(count) if number % 3)
    assert len(called) == expected
    assert len({d["path"] for d in called}) == expected // 2
    assert document["summary"]["files_scanned"] == len(files)
    assert one.stdout == two.stdout == dirs.stdout
    assert one.code == two.code == dirs.code


# ---- rules, explain, version --------------------------------------------------------------------
def test_rules_lists_df005(project: Project) -> None:
    run = run_depfix(project({}), "rules")
    assert run.code == 0, run
    rows = [line.split() for line in run.out.splitlines()]
    assert rows[0][:3] == ["code", "name", "fix"]
    assert ["DF005", "called-dependency", "safe"] in [row[:3] for row in rows]


def test_explain_prints_the_rule_documentation(project: Project) -> None:
    root = project({})
    run, unknown, lower = run_parallel(
        (root, ["explain", "DF005"]), (root, ["explain", "DF999"]), (root, ["explain", "df005"])
    )
    assert run.code == 0, run
    assert lower.stdout == run.stdout
    assert run.out.startswith("DF005 called-dependency")
    assert "Before:" in run.out and "After:" in run.out
    assert (
        run.out.index("Depends(get_db())")
        < run.out.index("After:")
        < run.out.index("Depends(get_db)")
    )
    assert unknown.code == 2, unknown
    assert unknown.stdout == b""
    assert unknown.err.startswith("depfix: error: ") and len(unknown.err.splitlines()) == 1


def test_version_is_the_package_version(project: Project) -> None:
    run = run_depfix(project({}), "--version")
    assert run.code == 0, run
    assert run.out == f"depfix {depfix.__version__}\n"


# ---- selection and suppression ------------------------------------------------------------------
def test_select_and_ignore_accept_code_prefixes(project: Project) -> None:
    root = project({"app.py": APP})
    other = project({"app.py": APP})
    selected, ignored = run_parallel(
        (other, ["check", "--select", "DF00"]), (root, ["apply", "--ignore", "df005"])
    )
    assert selected.code == 1, selected
    assert "DF005" in [m.group("code") for m in diagnostics_in(selected.out)]
    assert ignored.code == 0, ignored
    assert ignored.stdout == b""
    assert (root / "app.py").read_bytes() == APP.encode()


SUPPRESSED = """\
from fastapi import Depends, FastAPI

app = FastAPI()


def get_db():
    yield 1


@app.get("/a")
def on_line(db=Depends(get_db())):  # depfix: ignore
    return db


@app.get("/b")
def on_def(  # depfix: ignore[DF005]
    db=Depends(get_db()),
):
    return db


@app.get("/c")
def other_code(  # depfix: ignore[DF001]
    db=Depends(get_db()),
):
    return db
"""


def test_suppression_comments_and_no_suppress(project: Project) -> None:
    skipped = "# depfix: skip-file\n" + APP
    root = project({"a.py": SUPPRESSED, "b.py": skipped})
    run, audit = run_parallel((root, ["check"]), (root, ["check", "--no-suppress"]))
    assert run.code == 1, run
    assert [m.group("path", "line") for m in diagnostics_in(run.out)] == [("a.py", "24")]
    assert audit.code == 1, audit
    assert [m.group("path", "line") for m in diagnostics_in(audit.out)] == [
        ("a.py", "11"),
        ("a.py", "17"),
        ("a.py", "24"),
        ("b.py", "12"),
    ]
    applied = run_depfix(root, "apply")
    assert applied.code == 1, applied
    assert (root / "a.py").read_text() == SUPPRESSED.replace(
        "def other_code(  # depfix: ignore[DF001]\n    db=Depends(get_db()),",
        "def other_code(  # depfix: ignore[DF001]\n    db=Depends(get_db),",
    )
    assert (root / "b.py").read_text() == skipped


# ---- a single file still sees the whole project ------------------------------------------------
def test_single_file_resolves_providers_in_other_files(project: Project) -> None:
    root = project(
        {
            "core/__init__.py": "",
            "core/deps.py": "async def get_session():\n    yield 's'\n",
            "web/__init__.py": "",
            "web/api.py": (
                "from fastapi import APIRouter, Depends\n\nfrom core.deps import get_session\n\n"
                "router = APIRouter()\n\n\n@router.get('/')\n"
                "async def read(s=Depends(get_session())):\n    return s\n"
            ),
        }
    )
    run = run_depfix(
        root / "web", "check", "--format", "json", "api.py"
    )  # as pre-commit passes files
    assert run.code == 1, run
    document = json.loads(run.stdout)
    assert document["summary"]["files_scanned"] == 1
    assert [(d["path"], d["line"], d["code"]) for d in document["diagnostics"]] == [
        ("api.py", 9, "DF005")
    ]
    applied = run_depfix(root, "apply", "web/api.py")
    assert applied.code == 1, applied
    assert "Depends(get_session))" in (root / "web" / "api.py").read_text()
    assert (root / "core" / "deps.py").read_text() == "async def get_session():\n    yield 's'\n"
