"""`--format sarif`: valid SARIF 2.1.0 (the OASIS schema in tests/data), consistent rules and results,
paths relative to %SRCROOT%, file errors as notifications, and fixes that reproduce `depfix apply`.

Every run goes through the real entry point (`python -m depfix`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import APP, PYPROJECT, run_depfix, run_parallel, snapshot, write_tree

from depfix import __version__
from depfix.docs import page_url
from depfix.rules import registered_rules

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo_app"
SYNTAX_ERROR = "x = 1\ndef broken(:\n    pass\n"  # the `:` is at line 2, column 12
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

Log = dict[str, Any]


def validated(stdout: bytes) -> Log:
    log: Log = json.loads(stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    return log


def _offset(text: str, line: int, column: int) -> int:
    """The character offset of a SARIF position (1-based, code points, lines end at CRLF/LF/CR)."""
    lines = LINE.findall(text)
    assert 1 <= line <= len(lines) + 1, (line, len(lines))
    offset = sum(len(previous) for previous in lines[: line - 1])
    width = len(lines[line - 1]) if line <= len(lines) else 0
    assert 1 <= column <= width + 1, (line, column)
    return offset + column - 1


def apply_replacements(text: str, replacements: list[Log]) -> str:
    edits = []
    for replacement in replacements:
        region = replacement["deletedRegion"]
        start = _offset(text, region["startLine"], region["startColumn"])
        end = _offset(text, region["endLine"], region["endColumn"])
        assert start <= end
        edits.append((start, end, replacement.get("insertedContent", {}).get("text", "")))
    edits.sort()
    for (_, end, _), (start, _, _) in zip(edits, edits[1:]):
        assert end <= start, "overlapping replacements"
    for start, end, inserted in reversed(edits):
        text = text[:start] + inserted + text[end:]
    return text


def fixed_by_sarif(log: Log, root: Path) -> dict[str, bytes]:
    """The files the log's fixes rewrite, with the fixes applied to what is on disk in `root`."""
    changes: dict[str, list[Log]] = {}
    for result in log["runs"][0]["results"]:
        for fix in result.get("fixes", []):
            for artifact in fix["artifactChanges"]:
                location = artifact["artifactLocation"]
                assert location["uriBaseId"] == "%SRCROOT%"
                seen = changes.setdefault(location["uri"], artifact["replacements"])
                assert seen == artifact["replacements"], "one file, two different fixes"
    out = {}
    for uri, replacements in changes.items():
        path = root / uri
        original = path.read_bytes().decode("utf-8") if path.exists() else ""
        out[uri] = apply_replacements(original, replacements).encode("utf-8")
    return out


def sources(root: Path) -> dict[str, tuple[bytes, int]]:
    return {path: value for path, value in snapshot(root).items() if "__pycache__" not in path}


def changed_files(before: dict[str, tuple[bytes, int]], root: Path) -> dict[str, bytes]:
    after = snapshot(root)
    return {
        path: data
        for path, (data, _) in after.items()
        if path not in before or before[path][0] != data
    }


def check_rules_and_results(log: Log, root: Path) -> None:
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "depfix" and driver["version"] == __version__
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == sorted(rule.CODE for rule in registered_rules())
    by_code = {rule.CODE: rule for rule in registered_rules()}
    for descriptor in rules:
        rule = by_code[descriptor["id"]]
        assert descriptor["name"] == rule.NAME
        assert descriptor["shortDescription"]["text"] == rule.SUMMARY
        assert descriptor["help"]["text"] == rule.documentation()
        assert descriptor["fullDescription"]["text"] in rule.documentation().replace("\n", " ")
        assert descriptor.get("helpUri") == page_url(rule.CODE)
        assert descriptor["defaultConfiguration"]["level"] in ("note", "warning", "error")
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == root.resolve().as_uri() + "/"
    fingerprints = set()
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert not artifact["uri"].startswith("/") and ":" not in artifact["uri"]
        assert (root / artifact["uri"]).is_file()
        region = location["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) <= (
            region["endLine"],
            region["endColumn"],
        )
        fingerprints.add(json.dumps(result["partialFingerprints"], sort_keys=True))
    assert len(fingerprints) == len(run["results"]), "every result has its own fingerprint"


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo app: check and dry-run in SARIF, and what `apply` writes, each in its own copy."""
    copies = {}
    for name in ("check", "dry_run", "apply"):
        copies[name] = tmp_path_factory.mktemp(name) / "demo_app"
        shutil.copytree(DEMO, copies[name])
    before = snapshot(copies["apply"])
    check, dry_run, applied = run_parallel(
        (copies["check"], ["check", "--format", "sarif"]),
        (copies["dry_run"], ["apply", "--dry-run", "--format", "sarif"]),
        (copies["apply"], ["apply"]),
    )
    return {
        "copies": copies,
        "check": check,
        "dry_run": dry_run,
        "written": changed_files(before, copies["apply"]),
        "applied": applied,
    }


@pytest.mark.parametrize("mode", ["check", "dry_run"])
def test_demo_app_log_is_valid_and_consistent(demo_runs: dict[str, Any], mode: str) -> None:
    run = demo_runs[mode]
    assert run.code == 1, run
    root = demo_runs["copies"][mode]
    assert sources(root) == sources(DEMO), "a SARIF run writes nothing"
    log = validated(run.stdout)
    check_rules_and_results(log, root)
    results = log["runs"][0]["results"]
    assert {result["ruleId"] for result in results} >= {"DF002", "DF005", "DF006", "DF007"}
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["toolExecutionNotifications"] == []


@pytest.mark.parametrize("mode", ["check", "dry_run"])
def test_demo_app_fixes_reproduce_apply(demo_runs: dict[str, Any], mode: str) -> None:
    log = validated(demo_runs[mode].stdout)
    written = demo_runs["written"]
    assert written, demo_runs["applied"]
    assert fixed_by_sarif(log, demo_runs["copies"][mode]) == written
    results = log["runs"][0]["results"]
    # safe fixes carry a fix; unsafe ones (not applied without --unsafe) and diagnostics do not
    for result in results:
        safety = result.get("properties", {}).get("fix")
        assert ("fixes" in result) == (safety == "safe"), result
    # a changeset that creates a module carries every file it writes
    created = [path for path in written if not (DEMO / path).exists()]
    assert created
    multi = [
        fix
        for result in results
        for fix in result.get("fixes", [])
        if len(fix["artifactChanges"]) > 1
    ]
    assert any(
        {a["artifactLocation"]["uri"] for a in fix["artifactChanges"]} >= set(created)
        for fix in multi
    )


def test_unsafe_fixes_are_included_with_unsafe(project: Any) -> None:
    source = (
        "from fastapi import Depends, FastAPI\n\napp = FastAPI()\n\n\n"
        "def get_settings(prefix: str = 'x'):\n    yield prefix\n\n\n"
        '@app.get("/")\ndef read(s=Depends(get_settings())):\n    return s\n'
    )
    root = project({"app.py": source})
    plain, unsafe = run_parallel(
        (root, ["check", "--format", "sarif"]), (root, ["check", "--unsafe", "--format", "sarif"])
    )
    (result,) = validated(plain.stdout)["runs"][0]["results"]
    assert result["properties"]["fix"] == "unsafe"
    assert "fixes" not in result
    (result,) = validated(unsafe.stdout)["runs"][0]["results"]
    assert "fixes" in result
    applied = run_depfix(root, "apply", "--unsafe")
    assert applied.code == 1, applied
    assert (root / "app.py").read_text() == apply_replacements(
        source, result["fixes"][0]["artifactChanges"][0]["replacements"]
    )


def test_crlf_and_non_ascii_regions_count_code_points(project: Any) -> None:
    source = (
        "from fastapi import Depends, FastAPI\r\n\r\napp = FastAPI()\r\n\r\n\r\n"
        "def get_db():\r\n    yield 'é'\r\n\r\n\r\n"
        '@app.get("/é")\r\ndef read(ü=Depends(get_db())):\r\n    return ü\r\n'
    )
    root = project({"app.py": source.encode("utf-8")})
    sarif_run = run_depfix(root, "check", "--format", "sarif")
    log = validated(sarif_run.stdout)
    (result,) = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    line = source.split("\r\n")[region["startLine"] - 1]
    assert line[region["startColumn"] - 1 : region["endColumn"] - 1] == "Depends(get_db())"
    before = snapshot(root)
    assert run_depfix(root, "apply").code == 1
    written = changed_files(before, root)
    (root / "app.py").write_bytes(source.encode("utf-8"))
    assert fixed_by_sarif(log, root) == written
    assert b"\r\n" in written["app.py"] and b"\n\n" not in written["app.py"]


def test_file_errors_are_notifications_and_the_log_stays_valid(project: Any) -> None:
    root = project({"bad.py": SYNTAX_ERROR, "app.py": "x = 1\n"})
    run = run_depfix(root, "check", "--format", "sarif")
    assert run.code == 2, run
    log = validated(run.stdout)
    check_rules_and_results(log, root)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "error"
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "bad.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 2, "startColumn": 12}
    assert log["runs"][0]["results"] == []


def test_paths_with_spaces_are_uri_encoded(project: Any) -> None:
    root = project({"my app/main file.py": APP})
    log = validated(run_depfix(root, "check", "--format", "sarif").stdout)
    (result,) = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20app/main%20file.py"


def test_sarif_is_a_listed_format(project: Any) -> None:
    root = write_tree(project({}), {"pyproject.toml": PYPROJECT})
    run = run_depfix(root, "check", "--format", "sarif")
    assert run.code == 0, run
    assert validated(run.stdout)["runs"][0]["results"] == []
