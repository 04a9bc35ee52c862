"""The SARIF 2.1.0 report (`--format sarif`), as GitHub code scanning reads it.

One run: `tool.driver` lists every registered rule (help from its docstring, `helpUri` to its page),
each diagnostic is a result at a path relative to `%SRCROOT%` (the current directory), and file
errors are tool execution notifications. A result whose fix this run makes (or would make) carries
it as replacements in the original text: the minimal regions that differ between the original file
and what depfix writes, for every file of the change (a changeset that creates a module includes
that module). depfix plans the fixes of a file together (imports added once, signatures rewritten
whole), so every result of a file carries the same, complete fix; applying it yields exactly what
`depfix apply` writes.

Regions are 1-based lines and columns counted in Unicode code points (`columnKind`), an end column
being one past the last character; a line ends at CR LF, LF or CR.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from depfix import __version__
from depfix.docs import REPOSITORY_URL, page_url
from depfix.engine import Change, Diagnostic, FileError, RunResult
from depfix.io import SourceError, decode_source
from depfix.rules import SAFE, Rule, registered_rules

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
FINGERPRINT = "depfixResultHash/v1"
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

Json = dict[str, Any]


def split_lines(text: str) -> list[str]:
    """Lines with their terminators (CR LF, LF or CR), as SARIF counts them."""
    return _LINES.findall(text)


class LineIndex:
    """Converts between character offsets and SARIF's 1-based line and column."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        for line in split_lines(text):
            self.starts.append(self.starts[-1] + len(line))
        self.starts.pop()  # the offset after the last terminator starts a line only if text follows
        if text.endswith(("\n", "\r")) or not text:
            self.starts.append(len(text))

    def position(self, offset: int) -> tuple[int, int]:
        low, high = 0, len(self.starts) - 1
        while low < high:  # the last line that starts at or before offset
            middle = (low + high + 1) // 2
            if self.starts[middle] <= offset:
                low = middle
            else:
                high = middle - 1
        return low + 1, offset - self.starts[low] + 1

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1


def text_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """Minimal (start, end, inserted) edits of `old`, in order, that turn it into `new`."""
    old_lines, new_lines = split_lines(old), split_lines(new)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    offsets = [0]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, inserted = "".join(old_lines[i1:i2]), "".join(new_lines[j1:j2])
        prefix = len(_common_prefix(removed, inserted))
        suffix = len(_common_prefix(removed[prefix:][::-1], inserted[prefix:][::-1]))
        start, end = offsets[i1] + prefix, offsets[i2] - suffix
        edits.append((start, end, inserted[prefix : len(inserted) - suffix]))
    return edits


def _common_prefix(first: str, second: str) -> str:
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return first[:length]


def _texts(change: Change) -> Optional[tuple[str, str]]:
    """The original and new text of a change, decoded as Python would (None when impossible)."""
    path = change.absolute
    try:
        old = "" if change.original is None else decode_source(path, change.original.data)
        return old, decode_source(path, change.new)
    except SourceError:
        return None


def _location(path: str) -> Json:
    return {"uri": _uri(path), "uriBaseId": SRCROOT}


def _uri(path: str) -> str:
    return quote(path, safe="/")


def artifact_change(change: Change) -> Optional[Json]:
    texts = _texts(change)
    if texts is None:
        return None
    old, new = texts
    lines = LineIndex(old)
    replacements = []
    for start, end, inserted in text_edits(old, new):
        start_line, start_column = lines.position(start)
        end_line, end_column = lines.position(end)
        replacement: Json = {
            "deletedRegion": {
                "startLine": start_line,
                "startColumn": start_column,
                "endLine": end_line,
                "endColumn": end_column,
            }
        }
        if inserted:
            replacement["insertedContent"] = {"text": inserted}
        replacements.append(replacement)
    return {"artifactLocation": _location(change.path), "replacements": replacements}


def _rule_descriptor(rule: Rule) -> Json:
    documentation = rule.documentation()
    first_paragraph = documentation.split("\n\n", 1)[0].replace("\n", " ")
    return {
        "id": rule.CODE,
        "name": rule.NAME,
        "shortDescription": {"text": rule.SUMMARY},
        "fullDescription": {"text": first_paragraph},
        "help": {"text": documentation, "markdown": documentation},
        **({"helpUri": url} if (url := page_url(rule.CODE)) else {}),
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["fastapi", "dependency-injection"], "fix": rule.FIX},
    }


def _region(line: int, column: int, end_line: int, end_column: int) -> Json:
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


class _Fixes:
    """The SARIF fix of each changed file's change group, built once per group."""

    def __init__(self, changes: Sequence[Change]) -> None:
        self.by_path = {change.path: change for change in changes}
        self.groups: dict[int, list[Change]] = {}
        for change in sorted(changes, key=lambda c: c.path):
            self.groups.setdefault(change.group, []).append(change)
        self.built: dict[int, Optional[Json]] = {}

    def fix_for(self, path: str) -> Optional[Json]:
        change = self.by_path.get(path)
        if change is None:
            return None
        if change.group not in self.built:
            members = self.groups[change.group]
            artifacts = [artifact_change(member) for member in members]
            if any(artifact is None for artifact in artifacts):
                self.built[change.group] = None
            else:
                paths = ", ".join(member.path for member in members)
                self.built[change.group] = {
                    "description": {"text": f"Apply depfix's fixes to {paths}"},
                    "artifactChanges": artifacts,
                }
        return self.built[change.group]


def _result(
    diagnostic: Diagnostic,
    rule_index: dict[str, int],
    fixes: _Fixes,
    unsafe: bool,
    seen: dict[str, int],
) -> Json:
    identity = f"{diagnostic.code}\0{diagnostic.path}\0{diagnostic.message}"
    occurrence = seen.get(identity, 0)
    seen[identity] = occurrence + 1
    fingerprint = hashlib.sha256(f"{identity}\0{occurrence}".encode()).hexdigest()[:32]
    result: Json = {
        "ruleId": diagnostic.code,
        "level": "warning",
        "message": {"text": diagnostic.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _location(diagnostic.path),
                    "region": _region(
                        diagnostic.line,
                        diagnostic.column,
                        diagnostic.end_line,
                        diagnostic.end_column,
                    ),
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT: fingerprint},
    }
    if diagnostic.code in rule_index:
        result["ruleIndex"] = rule_index[diagnostic.code]
    fix_info = diagnostic.fix
    if fix_info is not None:
        result["properties"] = {"fix": fix_info.safety, "fixApplied": fix_info.applied}
        if fix_info.reason:
            result["properties"]["fixReason"] = fix_info.reason
        if fix_info.applied or fix_info.safety == SAFE or unsafe:
            fix = fixes.fix_for(diagnostic.path)
            if fix is not None:
                result["fixes"] = [fix]
    return result


def _notification(error: FileError) -> Json:
    location: Json = {"artifactLocation": _location(error.path)}
    if error.line is not None:
        region: Json = {"startLine": error.line}
        if error.column is not None:
            region["startColumn"] = error.column
        location["region"] = region
    return {
        "level": "error",
        "message": {"text": error.message},
        "locations": [{"physicalLocation": location}],
    }


def render_sarif(result: RunResult, *, unsafe: bool = False, root: Optional[Path] = None) -> str:
    """The SARIF log of a run; paths are relative to `root` (default: the current directory)."""
    rules = sorted(registered_rules(), key=lambda rule: rule.CODE)
    rule_index = {rule.CODE: number for number, rule in enumerate(rules)}
    fixes = _Fixes(result.changes)
    seen: dict[str, int] = {}
    base = (root or Path.cwd()).resolve().as_uri().rstrip("/") + "/"
    run: Json = {
        "tool": {
            "driver": {
                "name": "depfix",
                "version": __version__,
                "semanticVersion": __version__,
                **({"informationUri": REPOSITORY_URL} if REPOSITORY_URL else {}),
                "rules": [_rule_descriptor(rule) for rule in rules],
            }
        },
        "invocations": [
            {
                "executionSuccessful": not result.errors,
                "toolExecutionNotifications": [_notification(e) for e in result.errors],
            }
        ],
        "originalUriBaseIds": {SRCROOT: {"uri": base}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, rule_index, fixes, unsafe, seen) for d in result.diagnostics],
    }
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
