"""The git plumbing of the CI bot: a work tree, its dirty files, one commit of given paths, one push.

It knows nothing of rules or reports: callers pass paths relative to the top of the work tree. Every
command runs `git` as a subprocess with pathspecs taken literally and no prompt for credentials; a
failure raises `GitError` with the command and git's own message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_IDENTITY = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")


class GitError(Exception):
    """A git command failed, or the work tree is not in a state the bot can use."""


@dataclass(frozen=True)
class Identity:
    """Author and committer of the bot's commits."""

    name: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        """`Name <email>`, as git writes it."""
        match = _IDENTITY.match(text)
        if match is None or not match["name"]:
            raise ValueError(f"expected 'Name <email>', got {text!r}")
        return cls(match["name"], match["email"])

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class PushTarget:
    remote: str
    branch: str

    def __str__(self) -> str:
        return f"{self.remote} {self.branch}"


class Repository:
    """A git work tree, driven through the `git` command."""

    def __init__(self, toplevel: Path) -> None:
        self.toplevel = toplevel

    @classmethod
    def containing(cls, directory: Path) -> Repository:
        if shutil.which("git") is None:
            raise GitError("git is not installed (or not on PATH)")
        try:
            output = _git(directory, ["rev-parse", "--show-toplevel"])
        except GitError as error:
            raise GitError(f"{directory} is not inside a git work tree ({error})") from None
        return cls(Path(os.path.realpath(output.strip())))

    def git(
        self, *args: str, stdin: Optional[str] = None, env: Optional[Mapping[str, str]] = None
    ) -> str:
        return _git(self.toplevel, list(args), stdin=stdin, env=env)

    def relative(self, path: Path) -> Optional[str]:
        """`path` relative to the top of the work tree (posix), or None when it is outside."""
        real = os.path.realpath(path)
        top = str(self.toplevel)
        if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
            return None
        return Path(os.path.relpath(real, top)).as_posix()

    def dirty(self, paths: Sequence[str]) -> list[str]:
        """Those of `paths` that differ from HEAD (staged or not) or exist without being tracked."""
        if not paths:
            return []
        wanted = set(paths)
        output = self.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=no")
        found: set[str] = set()
        entries = iter(output.split("\0"))
        for entry in entries:
            if not entry:
                continue
            status, path = entry[:2], entry[3:]
            found.add(path)
            if "R" in status or "C" in status:  # a rename's source follows as its own entry
                found.add(next(entries, ""))
        return sorted(found & wanted)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def current_branch(self) -> Optional[str]:
        try:
            return self.git("symbolic-ref", "--quiet", "--short", "HEAD").strip() or None
        except GitError:
            return None  # detached HEAD

    def _config(self, key: str) -> Optional[str]:
        try:
            return self.git("config", "--get", key).strip() or None
        except GitError:
            return None

    def push_target(self, remote: Optional[str], branch: Optional[str]) -> PushTarget:
        """Where to push HEAD: the given remote and branch, else the current branch's upstream, else
        `origin` and a branch of the same name."""
        current = self.current_branch()
        if branch is None:
            if current is None:
                raise GitError(
                    "HEAD is detached, so there is no branch to push to: check out the branch "
                    "(in GitHub Actions: actions/checkout with `ref: ${{ github.head_ref }}`) "
                    "or pass --branch NAME"
                )
            merge = self._config(f"branch.{current}.merge")
            branch = merge.removeprefix("refs/heads/") if merge else current
        if remote is None:
            upstream = self._config(f"branch.{current}.remote") if current else None
            remotes = self.git("remote").split()
            if upstream and upstream != ".":
                remote = upstream
            elif "origin" in remotes:
                remote = "origin"
            else:
                raise GitError(
                    "no remote to push to: the branch has no upstream and there is no 'origin' "
                    "(pass --remote NAME)"
                )
        return PushTarget(remote, branch)

    def commit(self, paths: Sequence[str], message: str, author: Identity) -> Optional[str]:
        """Commit exactly `paths` (as they are in the work tree) and nothing else that may be staged.

        Returns the new commit, or None when the paths do not differ from HEAD. Hooks are not run:
        the commit must hold the given changes and only those.
        """
        if not paths:
            return None
        with tempfile.TemporaryDirectory(prefix="depfix-git-") as scratch:
            pathspec = Path(scratch, "pathspec")
            pathspec.write_bytes("\0".join(paths).encode("utf-8", "surrogateescape"))
            spec = [f"--pathspec-from-file={pathspec}", "--pathspec-file-nul"]
            self.git("add", *spec)
            staged = set(self.git("diff", "--cached", "--name-only", "-z").split("\0"))
            if not staged & set(paths):
                return None
            identity = {
                "GIT_AUTHOR_NAME": author.name,
                "GIT_AUTHOR_EMAIL": author.email,
                "GIT_COMMITTER_NAME": author.name,
                "GIT_COMMITTER_EMAIL": author.email,
            }
            self.git(
                "commit",
                "--quiet",
                "--no-verify",
                "--only",
                "--cleanup=strip",
                "--file=-",
                *spec,
                stdin=message,
                env=identity,
            )
        return self.head()

    def push(self, target: PushTarget) -> None:
        self.git(
            "push", "--quiet", "--no-verify", target.remote, f"HEAD:refs/heads/{target.branch}"
        )


def _git(
    cwd: Path,
    args: list[str],
    *,
    stdin: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> str:
    environment = dict(os.environ)
    environment.update(
        {"GIT_TERMINAL_PROMPT": "0", "GIT_LITERAL_PATHSPECS": "1", "GIT_OPTIONAL_LOCKS": "0"}
    )
    environment.update(env or {})
    command = ["git", *args]
    try:
        process = subprocess.run(
            command,
            cwd=cwd,
            input=stdin.encode("utf-8", "surrogateescape") if stdin is not None else None,
            capture_output=True,
            env=environment,
            check=False,
        )
    except OSError as error:
        raise GitError(f"cannot run git: {error}") from None
    if process.returncode != 0:
        message = [line.strip() for line in process.stderr.decode("utf-8", "replace").splitlines()]
        detail = "; ".join([line for line in message if line][:3]) or "no message"
        raise GitError(f"`git {args[0]}` failed (exit {process.returncode}): {detail}")
    return process.stdout.decode("utf-8", "surrogateescape")
