"""The CI bot: commit (and push) exactly the fixes of an `apply` run, with a message listing them.

`depfix apply --commit [--push]` drives it on any CI; the GitHub Action (`action.yml`) calls that.
Everything that can be refused is refused before a file is written: no git work tree, a path outside
it, nowhere to push, or a file the run would change that already has uncommitted changes (the commit
must hold depfix's fixes and nothing else; other dirty files are left alone and out of the commit).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from depfix import __version__
from depfix.engine import Change, Diagnostic, RunResult
from depfix.gitops import GitError, Identity, PushTarget, Repository

DEFAULT_AUTHOR = "depfix[bot] <depfix-bot@users.noreply.github.com>"
MAX_BODY_LINES = 200


class BotError(Exception):
    """The bot cannot do what was asked; the message names the problem."""


@dataclass(frozen=True)
class Committed:
    """What `Bot.commit` did: `sha` is None when there was nothing to commit."""

    sha: Optional[str]
    pushed: Optional[PushTarget]
    files: int
    fixes: int
    push_error: Optional[str] = None


def applied_fixes(result: RunResult) -> list[Diagnostic]:
    """The diagnostics whose fix is in the files the run changed."""
    changed = {change.path for change in result.changes}
    return [
        d for d in result.diagnostics if d.fix is not None and d.fix.applied and d.path in changed
    ]


def commit_message(fixed: Sequence[Diagnostic], changed: Sequence[tuple[str, bool]]) -> str:
    """`depfix: fix 3 DF006, 1 DF002`, then the fixes per file; `changed` is (path, created)."""
    counts = Counter(d.code for d in fixed)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    subject = "depfix: fix " + ", ".join(f"{count} {code}" for code, count in ordered)
    if not counts:
        subject = "depfix: apply fixes"
    by_path: dict[str, list[Diagnostic]] = {}
    for d in fixed:
        by_path.setdefault(d.path, []).append(d)
    lines: list[str] = []
    for path, created in sorted(changed):
        lines.append(f"{path} (new file)" if created else path)
        for d in sorted(by_path.get(path, []), key=lambda d: (d.line, d.column, d.code)):
            lines.append(f"  {d.line}:{d.column} {d.code} {d.name}")
    if len(lines) > MAX_BODY_LINES:
        hidden = len(lines) - MAX_BODY_LINES + 1
        lines = [*lines[: MAX_BODY_LINES - 1], f"... and {hidden} more lines"]
    footer = f"Made by depfix {__version__} (`depfix apply --commit`)."
    return "\n".join([subject, "", *lines, "", footer]) + "\n"


class Bot:
    """Checks made before a run, then one commit (and push) of what the run wrote."""

    def __init__(
        self, repository: Repository, author: Identity, target: Optional[PushTarget]
    ) -> None:
        self.repository = repository
        self.author = author
        self.target = target

    @classmethod
    def prepare(
        cls,
        paths: Sequence[Path],
        *,
        author: str,
        push: bool,
        remote: Optional[str],
        branch: Optional[str],
    ) -> Bot:
        try:
            identity = Identity.parse(author)
        except ValueError as error:
            raise BotError(f"--author: {error}") from None
        first = Path(os.path.realpath(paths[0]))
        try:
            repository = Repository.containing(first if first.is_dir() else first.parent)
            outside = [str(path) for path in paths if repository.relative(path) is None]
            if outside:
                raise BotError(
                    f"--commit: {', '.join(outside)} is outside the git work tree "
                    f"{repository.toplevel}"
                )
            target = repository.push_target(remote, branch) if push else None
        except GitError as error:
            raise BotError(f"--commit: {error}") from None
        return cls(repository, identity, target)

    def _relative(self, changes: Sequence[Change]) -> list[str]:
        found = []
        for change in changes:
            relative = self.repository.relative(change.absolute)
            if relative is None:  # the engine writes only inside the given paths
                raise BotError(f"--commit: {change.path} is outside the git work tree")
            found.append(relative)
        return found

    def refuse_dirty(self, changes: Sequence[Change]) -> None:
        """Refuse (before anything is written) when a file to change has uncommitted changes."""
        try:
            dirty = self.repository.dirty(self._relative(changes))
        except GitError as error:
            raise BotError(f"--commit: {error}") from None
        if dirty:
            count = len(dirty)
            raise BotError(
                f"--commit: {count} file{'s' if count != 1 else ''} depfix would change "
                f"{'have' if count != 1 else 'has'} uncommitted changes or {'are' if count != 1 else 'is'} "
                f"untracked, so the commit would hold more than the fixes: {', '.join(dirty[:5])}"
                f"{' ...' if count > 5 else ''} (commit or stash them first)"
            )

    def commit(self, result: RunResult) -> Committed:
        """Commit the files the run wrote, then push when a target was prepared."""
        if not result.changes:
            return Committed(None, None, 0, 0)
        fixed = applied_fixes(result)
        paths = self._relative(result.changes)
        by_display = dict(zip((c.path for c in result.changes), paths))
        relocated = [dataclasses.replace(d, path=by_display.get(d.path, d.path)) for d in fixed]
        changed = [
            (relative, change.original is None) for relative, change in zip(paths, result.changes)
        ]
        message = commit_message(relocated, changed)
        try:
            sha = self.repository.commit(paths, message, self.author)
        except GitError as error:
            raise BotError(f"--commit: {error}") from None
        if sha is None or self.target is None:
            return Committed(sha, None, len(paths), len(fixed))
        try:
            self.repository.push(self.target)
        except GitError as error:  # the commit stays: the report says it was not pushed
            return Committed(sha, None, len(paths), len(fixed), f"--push to {self.target}: {error}")
        return Committed(sha, self.target, len(paths), len(fixed))
