"""A run as a Markdown job summary: counts per rule, what the bot committed, the diff, the errors.

Written for GitHub's `$GITHUB_STEP_SUMMARY` (appended to, as every step does) and readable on any CI
that shows Markdown. The diff sits in a collapsible `<details>` block, cut to whole files past a size
that keeps the summary under GitHub's 1 MiB limit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from depfix.diffing import unified_diff
from depfix.engine import Change, Diagnostic, RunResult

DIFF_BUDGET = 400_000
"""Characters of diff shown at most (GitHub accepts 1 MiB of summary per step)."""


MODES = ("apply", "dry-run", "check")
_HEADERS = {"apply": "Fixed", "dry-run": "Fixable", "check": "With a fix"}


@dataclass(frozen=True)
class CommitNote:
    """What the bot did with the fixes, for the summary's first line."""

    sha: Optional[str]
    pushed_to: Optional[str]
    push_error: Optional[str] = None


def _plural(count: int, word: str, words: str = "") -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def _fixed(d: Diagnostic, mode: str) -> bool:
    if d.fix is None:
        return False
    # `check` grades fixes without applying them: there, every offered fix counts
    return d.fix.applied or mode == "check"


def _table(diagnostics: Sequence[Diagnostic], mode: str) -> list[str]:
    rows: dict[tuple[str, str], list[int]] = {}
    for d in diagnostics:
        row = rows.setdefault((d.code, d.name), [0, 0])
        row[0] += 1
        row[1] += _fixed(d, mode)
    lines = [
        f"| Rule | Name | Found | {_HEADERS[mode]} | Left |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (code, name), (found, fixed) in sorted(rows.items()):
        lines.append(f"| {code} | `{name}` | {found} | {fixed} | {found - fixed} |")
    return lines


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _diff_block(changes: Sequence[Change], budget: int) -> list[str]:
    parts: list[str] = []
    used = 0
    shown = 0
    for change in sorted(changes, key=lambda c: c.path):
        old = change.original.data if change.original is not None else None
        text = unified_diff(change.path, old, change.new).decode("utf-8", "replace")
        if parts and used + len(text) > budget:
            break
        parts.append(text)
        used += len(text)
        shown += 1
    diff = "".join(parts)
    fence = _fence(diff)
    title = f"Diff: {_plural(len(changes), 'file')}"
    lines = [
        "<details>",
        f"<summary>{title}</summary>",
        "",
        f"{fence}diff",
        diff.rstrip("\n"),
        fence,
    ]
    if shown < len(changes):
        lines += [
            "",
            f"Diff cut to {shown} of {len(changes)} files; `depfix apply --dry-run` shows it all.",
        ]
    return [*lines, "", "</details>"]


def render_summary(
    result: RunResult,
    *,
    mode: str,
    commit: Optional[CommitNote] = None,
    budget: int = DIFF_BUDGET,
) -> str:
    """The summary of one run; `mode` is how it ran: apply (fixes written), dry-run or check."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    fixed = sum(_fixed(d, mode) for d in result.diagnostics)
    left = len(result.diagnostics) - fixed
    changed = len(result.changes)
    if mode == "apply":
        done = f"{_plural(fixed, 'fix', 'fixes')} applied in {_plural(changed, 'file')}"
    else:
        done = f"{_plural(fixed, 'fix', 'fixes')} available"
        if changed:
            done += f" in {_plural(changed, 'file')}"
    if commit is not None and commit.sha is not None:
        done += f", committed as `{commit.sha[:12]}`"
        if commit.pushed_to is not None:
            done += f" and pushed to `{commit.pushed_to}`"
    first = (
        f"{_plural(result.files_scanned, 'file')} scanned: {done}, "
        f"{_plural(left, 'diagnostic')} left, {_plural(len(result.errors), 'error')}."
    )
    if not result.diagnostics and not result.errors:
        first = f"{_plural(result.files_scanned, 'file')} scanned: nothing to fix."
    lines = ["## depfix", "", first, ""]
    if commit is not None and commit.push_error is not None:
        lines += [
            f"**The fixes were committed but not pushed:** {html.escape(commit.push_error)}",
            "",
        ]
    if result.diagnostics:
        lines += [*_table(result.diagnostics, mode), ""]
    if result.changes:
        lines += [*_diff_block(result.changes, budget), ""]
    if result.errors:
        lines += [f"**{_plural(len(result.errors), 'file')} could not be processed:**", ""]
        for error in result.errors:
            where = error.path if error.line is None else f"{error.path}:{error.line}"
            lines.append(f"- `{where}`: {html.escape(error.message)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def append_summary(path: Path, text: str) -> None:
    """Append to `path` (GitHub gives each step one file; earlier content stays)."""
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(text)
