"""Rendering a run for people and machines: text lines, the JSON report, GitHub annotations, SARIF."""

from __future__ import annotations

import json
from dataclasses import dataclass

from depfix import __version__
from depfix.engine import Diagnostic, FileError, RunResult
from depfix.sarif import render_sarif

FORMATS = ("text", "json", "github", "sarif")


@dataclass(frozen=True)
class Summary:
    files_scanned: int
    files_changed: int
    fixes: int
    diagnostics: int
    diagnostics_left: int
    errors: int


def summarize(result: RunResult) -> Summary:
    left = sum(1 for d in result.diagnostics if d.fix is None or not d.fix.applied)
    return Summary(
        files_scanned=result.files_scanned,
        files_changed=len(result.changes),
        fixes=result.fixes,
        diagnostics=len(result.diagnostics),
        diagnostics_left=left,
        errors=len(result.errors),
    )


def _position(error: FileError) -> str:
    if error.line is None:
        return error.path
    if error.column is None:
        return f"{error.path}:{error.line}"
    return f"{error.path}:{error.line}:{error.column}"


def error_line(error: FileError) -> str:
    return f"{_position(error)}: error: {error.message}"


def diagnostic_line(diagnostic: Diagnostic) -> str:
    line = f"{diagnostic.path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.code} {diagnostic.message}"
    if diagnostic.fix is not None:
        line += " [*]"
        if diagnostic.fix.safety != "safe" and not diagnostic.fix.applied:
            line += f" (unsafe fix, use --unsafe: {diagnostic.fix.reason})"
    return line


def render_text(result: RunResult) -> str:
    return "".join(diagnostic_line(d) + "\n" for d in result.diagnostics)


def render_json(result: RunResult) -> str:
    summary = summarize(result)
    document = {
        "version": __version__,
        "summary": {
            "files_scanned": summary.files_scanned,
            "files_changed": summary.files_changed,
            "fixes": summary.fixes,
            "diagnostics": summary.diagnostics,
            "errors": summary.errors,
        },
        "diagnostics": [
            {
                "path": d.path,
                "line": d.line,
                "column": d.column,
                "end_line": d.end_line,
                "end_column": d.end_column,
                "code": d.code,
                "name": d.name,
                "message": d.message,
                "fix": None
                if d.fix is None
                else {"safety": d.fix.safety, "applied": d.fix.applied},
            }
            for d in result.diagnostics
        ],
        "errors": [
            {"path": e.path, "line": e.line, "column": e.column, "message": e.message}
            for e in result.errors
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result: RunResult) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic and per error."""
    lines = []
    for d in result.diagnostics:
        properties = (
            f"file={_escape_property(d.path)},line={d.line},col={d.column},"
            f"endLine={d.end_line},endColumn={d.end_column},title={_escape_property(f'{d.code} {d.name}')}"
        )
        lines.append(f"::warning {properties}::{_escape_data(d.message)}\n")
    for e in result.errors:
        properties = f"file={_escape_property(e.path)}"
        if e.line is not None:
            properties += f",line={e.line}"
        if e.column is not None:
            properties += f",col={e.column}"
        lines.append(f"::error {properties}::{_escape_data(e.message)}\n")
    return "".join(lines)


def render(result: RunResult, output_format: str, *, unsafe: bool = False) -> str:
    """The report of a run; `unsafe` says whether unsafe fixes were part of it (SARIF's fixes)."""
    if output_format == "sarif":
        return render_sarif(result, unsafe=unsafe)
    if output_format == "json":
        return render_json(result)
    if output_format == "github":
        return render_github(result)
    return render_text(result)


def summary_line(result: RunResult, written: bool) -> str:
    summary = summarize(result)
    changed = "changed" if written else "would change"

    def plural(count: int, word: str, words: str = "") -> str:
        return f"{count} {word if count == 1 else words or word + 's'}"

    return (
        f"depfix: {plural(summary.files_scanned, 'file')} scanned, "
        f"{summary.files_changed} {changed}, {plural(summary.fixes, 'fix', 'fixes')}"
        f"{'' if written else ' available'}, "
        f"{plural(summary.diagnostics_left, 'diagnostic')} left, {plural(summary.errors, 'error')}"
    )
